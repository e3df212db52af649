"""A trial that stops making progress fails instead of waiting forever. Its training workers tell a per-trial
``ProgressBoard`` actor what they last did (a training batch, validation, an epoch report, held-out scoring); the
trial's driver fits in a thread and, when the board has heard nothing for ``stall_timeout_s``, raises
``TrialStalled`` naming the trial, what it waited for, and the resources it asks and the cluster holds."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import ray

POLL_S = 1.0
BEAT_EVERY_S = 1.0  # a worker tells the board at most this often (and always on a new kind of progress)
# what a trial waits for after each kind of progress
NEXT = {
    None: "its training workers to start and get their first batch from the data stream",
    "training batch": "the next training batch from the data stream",
    "validation": "validation to finish",
    "epoch reported": "the next epoch's first training batch",
    "held-out scoring": "held-out scoring to finish",
}


class TrialStalled(RuntimeError):
    """A trial made no progress for its stall timeout."""


@ray.remote(num_cpus=0)
class ProgressBoard:
    """The last progress of one trial's workers: (what, Unix time)."""

    def __init__(self) -> None:
        self.last: tuple[str, float] | None = None

    def beat(self, what: str) -> None:
        self.last = (what, time.time())

    def latest(self) -> tuple[str, float] | None:
        return self.last


class Heartbeat:
    """A worker's side of the board: ``beat`` sends at most one message per ``BEAT_EVERY_S`` for the same kind of
    progress, never waiting for the board."""

    def __init__(self, board=None) -> None:
        self.board = board  # None: nobody watches (a plain `vsearch train`)
        self.sent: tuple[str, float] = ("", 0.0)

    def beat(self, what: str) -> None:
        if self.board is None:
            return
        now = time.monotonic()
        if what != self.sent[0] or now - self.sent[1] >= BEAT_EVERY_S:
            self.board.beat.remote(what)
            self.sent = (what, now)

    def batches(self, batches: Iterable) -> Iterator:
        """``batches``, beating on each one as it arrives."""
        for batch in batches:
            self.beat("training batch")
            yield batch


def watched_fit(fit: Callable[[], Any], board, *, trial: str, stall_timeout_s: float, asks: str) -> Any:
    """``fit()`` in a thread; its result, or its exception re-raised; ``TrialStalled`` when ``board`` has heard no
    progress (and the trial has not ended) for ``stall_timeout_s``."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["result"] = fit()
        except BaseException as error:  # re-raised in the trial's own thread below
            outcome["error"] = error

    fitting = threading.Thread(target=run, name=f"fit-{trial}", daemon=True)
    started = time.time()
    fitting.start()
    while fitting.is_alive():
        fitting.join(POLL_S)
        if not fitting.is_alive():
            break
        last = ray.get(board.latest.remote())
        since = last[1] if last else started
        if time.time() - since > stall_timeout_s:
            raise TrialStalled(stall_message(trial, last, time.time() - since, asks))
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"]


def stall_message(trial: str, last: tuple[str, float] | None, idle_s: float, asks: str) -> str:
    """One line: the trial, what it waited for and since when, what it asks and what the cluster holds."""
    total, free = ray.cluster_resources(), ray.available_resources()
    held = ", ".join(f"{k} {free.get(k, 0):g} of {v:g} free" for k, v in sorted(total.items()) if k in ("CPU", "GPU"))
    if "GPU" not in total:
        held += ", no GPU"
    progress = f"after its last progress ({last[0]})" if last else "since it started"
    waited = NEXT[last[0] if last else None]
    return (
        f"trial {trial} made no progress for {idle_s:.0f} s {progress}: it waited for {waited}; it asks {asks}; "
        f"the cluster has {held}"
    )
