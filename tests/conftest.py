"""Shared fixtures: a real S3 endpoint (moto_server on loopback) and small synthetic screens."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

from vsearch.data.synth import SynthSpec, synthesize

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
SMALL_SPEC = SynthSpec(plates=1, wells_per_condition=2, sites=1, size=96, bf_planes=2, seed=7)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def s3_endpoint() -> str:
    """Starts ``moto_server`` on a free 127.0.0.1 port and points vsearch (and s3fs) at it."""
    port = _free_port()
    server = shutil.which("moto_server", path=str(Path(sys.executable).parent)) or "moto_server"
    proc = subprocess.Popen(
        [server, "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(endpoint, timeout=1)
            break
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise RuntimeError("moto_server did not start") from None
            time.sleep(0.2)
    saved = {k: os.environ.get(k) for k in ("VSEARCH_S3_ENDPOINT", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    os.environ.update(VSEARCH_S3_ENDPOINT=endpoint, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing")
    yield endpoint
    proc.terminate()
    proc.wait(timeout=10)
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
