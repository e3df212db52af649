"""One writer per results folder: a lock object (``RESULTS/.lock.json``, local or ``s3://``) that names its owner
and carries a lease the owner renews; a lock whose owner died (its process is gone, or its lease ran out) is stale,
and only ``--resume`` takes it over, so a crashed search is continued rather than overwritten."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import psutil

from vsearch.data import storage

LOCK_FILE = ".lock.json"
LEASE_S = 60.0  # a lock not renewed for this long is stale (its owner renews it every third of it)


class ResultsLocked(ValueError):
    """Another writer holds the results folder, or a dead one left it to be resumed."""


@dataclass(frozen=True)
class Lock:
    owner: str  # host:pid
    token: str
    command: str
    acquired: str  # ISO time
    heartbeat: float  # Unix time of the last renewal
    lease_s: float

    @property
    def host(self) -> str:
        return self.owner.rsplit(":", 1)[0]

    @property
    def pid(self) -> int:
        return int(self.owner.rsplit(":", 1)[1])

    def stale(self, now: float) -> bool:
        """Its lease ran out, or its owner ran on this machine and is gone."""
        if now - self.heartbeat > self.lease_s:
            return True
        return self.host == socket.gethostname() and not psutil.pid_exists(self.pid)


def read_lock(results: str) -> Lock | None:
    fs, root = storage.filesystem(results)
    path = f"{root}/{LOCK_FILE}"
    try:
        with fs.open(path, "rb") as f:
            return Lock(**json.loads(f.read()))
    except FileNotFoundError:
        return None
    except (ValueError, TypeError) as error:
        raise ResultsLocked(f"{storage.join(results, LOCK_FILE)}: not a vsearch lock ({error}); remove it") from None


def _create(results: str, lock: Lock) -> bool:
    """Writes ``lock`` only if no lock exists (an exclusive create); False if one does."""
    fs, root = storage.filesystem(results)
    data = json.dumps(asdict(lock)).encode()
    if storage.is_remote(results):
        try:
            fs.pipe_file(f"{root}/{LOCK_FILE}", data, mode="create")  # S3's If-None-Match: *
        except (FileExistsError, OSError) as error:
            if isinstance(error, FileExistsError) or "PreconditionFailed" in str(error):
                return False
            raise
        return True
    Path(root).mkdir(parents=True, exist_ok=True)
    try:
        descriptor = os.open(f"{root}/{LOCK_FILE}", os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    except FileExistsError:
        return False
    with os.fdopen(descriptor, "wb") as f:
        f.write(data)
    return True


def _remove(results: str) -> None:
    fs, root = storage.filesystem(results)
    with contextlib.suppress(FileNotFoundError):
        fs.rm(f"{root}/{LOCK_FILE}")


def acquire(results: str, *, resume: bool, command: str, lease_s: float = LEASE_S) -> Lock:
    """Takes the lock of ``results``; refuses, naming the folder and the owner, when another writer holds it,
    or when a dead writer left it and this is not a ``resume``."""
    mine = Lock(
        owner=f"{socket.gethostname()}:{os.getpid()}",
        token=uuid.uuid4().hex,
        command=command,
        acquired=datetime.now(UTC).isoformat(timespec="seconds"),
        heartbeat=time.time(),
        lease_s=lease_s,
    )
    for _ in range(3):  # a lock removed between our read and our create is retried
        if _create(results, mine):
            return mine
        held = read_lock(results)
        if held is None:
            continue
        if not held.stale(time.time()):
            age = time.time() - held.heartbeat
            raise ResultsLocked(
                f"{results} is being written by {held.owner} ({held.command}, since {held.acquired}, renewed "
                f"{age:.0f} s ago); wait for it or stop it (a lock its owner stops renewing goes stale after "
                f"{held.lease_s:.0f} s, and --resume then takes it over)"
            )
        if not resume:
            raise ResultsLocked(
                f"{results}: {held.owner} ({held.command}, since {held.acquired}) stopped without finishing; "
                "continue its work with --resume"
            )
        _remove(results)  # a stale lock: taken over by this resume
    raise ResultsLocked(f"{results}: could not take the lock of {storage.join(results, LOCK_FILE)}")


def _renew(results: str, lock: Lock, stop: threading.Event) -> None:
    while not stop.wait(lock.lease_s / 3):
        held = read_lock(results)
        if held is None or held.token != lock.token:
            return  # taken over: stop renewing
        storage.publish(
            storage.join(results, LOCK_FILE), json.dumps(asdict(lock) | {"heartbeat": time.time()}).encode()
        )


@contextlib.contextmanager
def results_lock(results: str, *, resume: bool, command: str, lease_s: float = LEASE_S) -> Iterator[Lock]:
    """Holds the lock of ``results`` while the block runs, renewing its lease; releases it after."""
    lock = acquire(results, resume=resume, command=command, lease_s=lease_s)
    stop = threading.Event()
    renewer = threading.Thread(target=_renew, args=(results, lock, stop), name="vsearch-lock", daemon=True)
    renewer.start()
    try:
        yield lock
    finally:
        stop.set()
        renewer.join()
        held = read_lock(results)
        if held is not None and held.token == lock.token:
            _remove(results)
