"""A real multi-node Ray cluster on loopback: ``ray start --head`` plus ``ray start --address`` per extra node."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.s3server import free_port

RAY = str(Path(sys.executable).parent / "ray")
# prints the node ids of the cluster once it has as many live nodes as asked (run in a fresh interpreter,
# since the test process may already hold a local Ray)
NODES_PROBE = """
import sys, time, ray
ray.init(address=sys.argv[1], log_to_driver=False)
while len(alive := [n["NodeID"] for n in ray.nodes() if n["Alive"]]) < int(sys.argv[2]):
    time.sleep(0.5)
print(" ".join(alive))
"""


@dataclass
class LoopbackCluster:
    address: str
    node_ids: list[str]
    env: dict[str, str]  # what a client needs to join: the environment plus the cluster's auth token


@contextmanager
def loopback_cluster(nodes: int, cpus_per_node: int, temp_dir: str | None = None) -> Iterator[LoopbackCluster]:
    """Starts a head and ``nodes - 1`` worker nodes on 127.0.0.1 with token authentication, their sessions and logs
    in ``temp_dir`` (default Ray's); stops them all.

    Each node runs ``ray start --block`` in its own session, so stopping it never touches other Ray instances.
    """
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
    port = free_port()
    address = f"127.0.0.1:{port}"
    common = ["--block", f"--num-cpus={cpus_per_node}", "--node-ip-address=127.0.0.1", "--disable-usage-stats"]
    common += [f"--temp-dir={temp_dir}"] if temp_dir else []
    head = [RAY, "start", "--head", f"--port={port}", f"--dashboard-port={free_port()}", *common]
    started: list[subprocess.Popen] = []

    def start(command: list[str]) -> None:
        started.append(
            subprocess.Popen(
                command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
            )
        )

    try:
        start(head)
        time.sleep(3)
        for _ in range(nodes - 1):
            start([RAY, "start", f"--address={address}", *common])
        probe = subprocess.run(
            [sys.executable, "-c", NODES_PROBE, address, str(nodes)], env=env, capture_output=True, text=True,
            timeout=120,
        )  # fmt: skip
        assert probe.returncode == 0, probe.stderr[-2000:]
        yield LoopbackCluster(address, probe.stdout.split(), env)
    finally:
        for process in reversed(started):
            os.killpg(process.pid, signal.SIGTERM)
        for process in reversed(started):
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        # `ray start` records its head here for later `ray.init()` calls; do not leave them a dead cluster
        current = Path(tempfile.gettempdir()) / "ray" / "ray_current_cluster"
        if current.exists() and current.read_text().strip().endswith(f":{port}"):
            current.unlink()
