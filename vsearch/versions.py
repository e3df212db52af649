"""The software a node runs, for ``vsearch version`` (the container image's default command)."""

from __future__ import annotations

import platform
from importlib.metadata import version


def software_versions() -> dict[str, str]:
    """vsearch, Python, Ray and PyTorch versions, the CUDA PyTorch was built for, and the GPUs it sees."""
    import torch

    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    gpus = [torch.cuda.get_device_name(i) for i in range(count)]
    return {
        "vsearch": version("vsearch"),
        "python": platform.python_version(),
        "ray": version("ray"),
        "torch": torch.__version__,
        "cuda": torch.version.cuda or "none (a CPU build)",
        "gpus": ", ".join(gpus) or "none",
    }
