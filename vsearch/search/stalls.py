"""A search that can make no progress stops: when a trial stalls (``TrialStalled``) before any trial of the search
reported an epoch, nothing on this cluster will, so the search ends then rather than stalling trial after trial."""

from __future__ import annotations

from pathlib import Path

import ray.tune
from ray.tune.stopper import Stopper

from vsearch.train.watchdog import TrialStalled


class SearchStalled(RuntimeError):
    """No trial of a search made progress."""


class StallWatch(ray.tune.Callback):
    """A Tune callback that notes the first stall of a search without progress; ``stopper`` then ends it."""

    def __init__(self) -> None:
        self.progressed = False
        self.stall: str | None = None  # the stalled trial's error, one line
        self.stopper = _StopOnStall(self)

    def on_trial_result(self, iteration, trials, trial, result, **info) -> None:
        self.progressed = True

    def on_trial_error(self, iteration, trials, trial, **info) -> None:
        # Tune has just written the error on this machine; it reaches the experiment's storage later
        text = Path(trial.error_file).read_text() if trial.error_file else ""
        lines = [line for line in text.splitlines() if TrialStalled.__name__ in line]
        if not self.progressed and self.stall is None and lines:
            self.stall = lines[-1].strip()


class _StopOnStall(Stopper):
    def __init__(self, watch: StallWatch) -> None:
        self.watch = watch

    def __call__(self, trial_id: str, result: dict) -> bool:
        return False

    def stop_all(self) -> bool:
        return self.watch.stall is not None
