"""Shared fixtures: a real S3 endpoint (moto_server on loopback) and small synthetic screens."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.s3server import moto_server
from vsearch.cluster import connect
from vsearch.data.synth import SynthSpec, synthesize

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
ISL_SAMPLE = "isl_condition_b"


def isl_sample() -> Path:
    """The real ISL field in ``../shared/data``; a test that needs it fails with one line saying where it looked."""
    folder = SHARED_DATA / ISL_SAMPLE
    if not any(folder.glob("*.png")):
        pytest.fail(f"this test needs the ISL sample at {folder} (../shared/data beside the repository)", pytrace=False)
    return folder


SMALL_SPEC = SynthSpec(plates=1, wells_per_condition=2, sites=1, size=96, bf_planes=2, seed=7)


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """Starts ``moto_server`` on a free 127.0.0.1 port and points vsearch (and s3fs) at it."""
    saved = {k: os.environ.get(k) for k in ("VSEARCH_S3_ENDPOINT", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    with moto_server() as endpoint:
        os.environ.update(VSEARCH_S3_ENDPOINT=endpoint, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing")
        yield endpoint
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture
def s3_bucket(s3_endpoint: str) -> str:
    """A fresh bucket; returns its ``s3://`` URI."""
    import s3fs

    name = f"test-{uuid.uuid4().hex[:10]}"
    s3fs.S3FileSystem(endpoint_url=s3_endpoint, skip_instance_cache=True).mkdir(name)
    return f"s3://{name}"


@pytest.fixture(scope="session")
def small_screen(tmp_path_factory: pytest.TempPathFactory) -> str:
    out = str(tmp_path_factory.mktemp("screen") / "small")
    synthesize(SMALL_SPEC, out)
    return out


@pytest.fixture(scope="session")
def default_screen(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The default synthetic screen (256 px, all conditions, controls), for tests of its biology."""
    out = str(tmp_path_factory.mktemp("screen") / "default")
    synthesize(SynthSpec(), out)
    return out


@pytest.fixture(scope="session")
def ray_local() -> Iterator[None]:
    """A real local Ray instance with two CPUs, shared by the tests that fan out."""
    import ray

    connect(num_cpus=2)
    yield
    ray.shutdown()
