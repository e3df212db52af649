"""One writer per results folder, local and on S3 (moto): a live owner refuses a second writer by name; a dead
owner's lock is stale and only --resume takes it over."""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
from typer.testing import CliRunner

from tests.test_search import write_space
from vsearch.cli import app
from vsearch.data import storage
from vsearch.lock import LOCK_FILE, ResultsLocked, acquire, read_lock, results_lock

HOLDER = """
import sys, time
from vsearch.lock import results_lock
with results_lock(sys.argv[1], resume=False, command="vsearch run", lease_s=float(sys.argv[2])):
    print("held", flush=True)
    time.sleep(600)
"""


def hold(results: str, lease_s: float = 60) -> subprocess.Popen:
    """Another process holding the lock of ``results`` (as a second `vsearch run` would)."""
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, results, str(lease_s)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    return holder


@pytest.fixture(params=["local", "s3"])
def results(request, tmp_path) -> str:
    if request.param == "local":
        return str(tmp_path / "results")
    return f"{request.getfixturevalue('s3_bucket')}/results"


def test_a_live_owner_refuses_a_second_writer_and_a_dead_ones_lock_goes_only_to_resume(results):
    holder = hold(results)
    try:
        for resume in (False, True):
            with pytest.raises(ResultsLocked) as refused:
                acquire(results, resume=resume, command="vsearch run")
            assert str(refused.value).startswith(f"{results} is being written by {socket.gethostname()}:{holder.pid}")
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert read_lock(results).pid == holder.pid  # the dead owner's lock is still there
    with pytest.raises(ResultsLocked, match=f"{holder.pid} .*stopped without finishing; continue its work with"):
        acquire(results, resume=False, command="vsearch run")
    with results_lock(results, resume=True, command="vsearch run") as mine:
        assert read_lock(results) == mine and mine.pid == os.getpid()
    assert read_lock(results) is None  # released


def test_a_lock_not_renewed_within_its_lease_is_stale_even_from_another_machine(results):
    fs, root = storage.filesystem(results)
    lock = {"owner": "gpu-node-7:4242", "token": "t", "command": "vsearch run", "acquired": "2026-12-01T00:00:00+00:00",
            "heartbeat": time.time(), "lease_s": 60.0}  # fmt: skip
    fs.pipe_file(f"{root}/{LOCK_FILE}", json.dumps(lock).encode())
    with pytest.raises(ResultsLocked, match="being written by gpu-node-7:4242"):
        acquire(results, resume=True, command="vsearch run")  # its pid cannot be checked from here: the lease counts
    fs.pipe_file(f"{root}/{LOCK_FILE}", json.dumps(lock | {"heartbeat": time.time() - 61}).encode())
    with results_lock(results, resume=True, command="vsearch run"):
        assert read_lock(results).owner.startswith(socket.gethostname())


def test_the_owner_renews_its_lease(tmp_path):
    results = str(tmp_path / "results")
    with results_lock(results, resume=False, command="vsearch run", lease_s=0.6) as mine:
        time.sleep(1.0)  # past the lease: renewed every 0.2 s
        renewed = read_lock(results)
        assert renewed.token == mine.token and renewed.heartbeat > mine.heartbeat
        assert not renewed.stale(time.time())


def test_vsearch_run_on_a_held_folder_is_refused_naming_the_owner_and_writes_nothing(small_screen, tmp_path):
    results = tmp_path / "results"
    holder = hold(str(results))
    try:
        path = write_space(tmp_path / "s.yaml", small_screen, str(results))
        ran = CliRunner().invoke(app, ["run", str(path)])
    finally:
        holder.kill()
        holder.wait()
    assert ran.exit_code == 2
    assert f"is being written by {socket.gethostname()}:{holder.pid}" in " ".join(ran.output.split())
    assert sorted(p.name for p in results.iterdir()) == [LOCK_FILE]  # nothing of a search was written
