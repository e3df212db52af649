"""Datasets on a real S3 endpoint (moto_server on loopback), through s3fs and the CLI."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import SMALL_SPEC
from tests.test_ingest import isl_layout
from vsearch.data.dataset import open_dataset
from vsearch.data.layout import ingest

pytestmark = pytest.mark.slow  # Ray jobs: `pytest -m "not slow"` leaves them out

VSEARCH = str(Path(sys.executable).parent / "vsearch")


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([VSEARCH, *args], capture_output=True, text=True, env=os.environ.copy(), timeout=300)


def test_cli_synth_and_describe_on_s3_match_local(s3_bucket, small_screen):
    uri = f"{s3_bucket}/screens/small"
    spec = SMALL_SPEC
    synth = _cli(
        "data",
        "synth",
        "--out",
        uri,
        "--plates",
        str(spec.plates),
        "--wells-per-condition",
        str(spec.wells_per_condition),
        "--sites",
        str(spec.sites),
        "--size",
        str(spec.size),
        "--bf-planes",
        str(spec.bf_planes),
        "--seed",
        str(spec.seed),
    )
    assert synth.returncode == 0, synth.stderr
    described = _cli("data", "describe", uri)
    assert described.returncode == 0, described.stderr
    # 1 plate: 6 conditions x 2 treated wells + 3 cell types x (2 neg + 2 pos) control wells, 1 site each
    assert "breast" in described.stdout and "fields: 24" in described.stdout
    assert "stains: nuclei (nuclei), cytoplasm (cytoplasm), dna_damage (foci)" in described.stdout
    remote, local = open_dataset(uri), open_dataset(small_screen)
    assert list(remote.manifest.field_id) == list(local.manifest.field_id)
    local_fields = {f.field_id: f for f in local.iter_fields()}
    for field in remote.iter_fields():
        expected = local_fields[field.field_id]
        assert np.array_equal(field.bf, expected.bf)
        for name in expected.stains:
            assert np.array_equal(field.stains[name], expected.stains[name])
        for name in expected.labels:
            assert np.array_equal(field.labels[name], expected.labels[name])
    one = remote.manifest.field_id[5]
    assert np.array_equal(remote.read(one).stains["nuclei"], local_fields[one].stains["nuclei"])


def test_ingest_to_s3_reads_back_bit_identical(s3_bucket, tmp_path):
    uri = f"{s3_bucket}/isl"
    ingest(str(isl_layout(tmp_path / "isl.csv")), uri, tile=512)
    local = tmp_path / "local"
    ingest(str(tmp_path / "isl.csv"), str(local), tile=512)
    remote = open_dataset(uri)
    assert len(remote.manifest) == 4
    for a, b in zip(remote.iter_fields(), open_dataset(str(local)).iter_fields(), strict=True):
        assert a.field_id == b.field_id
        assert np.array_equal(a.bf, b.bf) and a.bf.dtype == np.uint16
        assert all(np.array_equal(a.stains[k], b.stains[k]) for k in b.stains)


def test_cli_describe_missing_s3_dataset_names_it(s3_bucket):
    result = _cli("data", "describe", f"{s3_bucket}/nothing")
    assert result.returncode == 2
    assert f"{s3_bucket}/nothing is not a vsearch dataset" in result.stderr
