"""The public API: every exported name resolves to what its module defines, and importing a light module does
not load the heavy ones."""

import importlib
import subprocess
import sys

import pytest

PACKAGES = ["vsearch", "vsearch.data", "vsearch.evaluate", "vsearch.models", "vsearch.train", "vsearch.search",
            "vsearch.report", "vsearch.study"]  # fmt: skip


@pytest.mark.parametrize("name", PACKAGES)
def test_every_export_is_the_object_its_module_defines(name):
    package = importlib.import_module(name)
    assert package.__all__ and sorted(package.__all__) == dir(package)
    for export in package.__all__:
        module = importlib.import_module(f"{name}.{package._EXPORTS[export]}")
        assert getattr(package, export) is getattr(module, export), export
    with pytest.raises(AttributeError, match=f"module '{name}' has no attribute 'no_such_name'"):
        _ = package.no_such_name


def test_a_light_module_does_not_import_torch_ray_or_cp_measure():
    code = (
        "import sys, vsearch, vsearch.data, vsearch.data.storage, vsearch.search.composition;"
        "print(sorted(m for m in ('torch', 'ray', 'cp_measure') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
