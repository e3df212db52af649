"""Killing a driver the way a crash would: with everything it started."""

import contextlib
import os

import psutil


def kill_session(session_id: int) -> None:
    """SIGKILL every live process of a session (a driver started with ``start_new_session=True`` leads one), and
    wait until they are gone. Killing the driver's process group is not enough: Ray's workers put themselves in
    process groups of their own, and would go on reporting (and checkpointing) for a moment after the driver."""

    def members() -> list[psutil.Process]:
        found = []
        for process in psutil.process_iter(["status"]):
            with contextlib.suppress(ProcessLookupError):
                if os.getsid(process.pid) == session_id and process.info["status"] != psutil.STATUS_ZOMBIE:
                    found.append(process)
        return found

    while alive := members():
        for process in alive:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.kill()
        psutil.wait_procs(alive, timeout=10)
