"""A live rich table of trials, fed by Ray Tune callbacks in the driver (the CLI's view of a search)."""

from __future__ import annotations

from rich.console import Console
from rich.live import Live
from rich.table import Table

try:
    from ray.tune import Callback
except ImportError:  # pragma: no cover - ray is a dependency
    Callback = object


class LiveTrials(Callback):
    def __init__(self, console: Console, planned: int) -> None:
        self.console, self.planned = console, planned
        self.rows: dict[str, dict[str, str]] = {}
        self.live = Live(self._render(), console=console, refresh_per_second=2, transient=False)

    def __getstate__(self) -> dict:
        # Tune pickles its callbacks with the experiment state; the live display stays in this process
        return {"planned": self.planned, "rows": {}}

    def __setstate__(self, state: dict) -> None:
        self.planned, self.rows, self.console, self.live = state["planned"], state["rows"], None, None

    def __enter__(self) -> LiveTrials:
        self.live.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.live.__exit__(*exc)
        if not self.console.is_terminal:  # rich ends the final table with a newline on terminals only
            self.console.line()

    def _render(self) -> Table:
        table = Table(title=f"trials ({len(self.rows)} of {self.planned} started)")
        for column in ("trial", "status", "epoch", "val_score", "held-out composite", "composition"):
            table.add_column(column)
        for trial_id, row in self.rows.items():
            table.add_row(
                trial_id,
                row.get("status", ""),
                row.get("epoch", ""),
                row.get("val", ""),
                row.get("objective", ""),
                row.get("composition", ""),
            )
        return table

    def _update(self, trial, **values: str) -> None:
        row = self.rows.setdefault(trial.trial_id, {})
        composition = (trial.config or {}).get("trial_config", {}).get("composition", {})
        row["composition"] = ", ".join(f"{k} {v:.2f}" for k, v in composition.items())
        row.update(values)
        if self.live is not None:
            self.live.update(self._render())

    def on_trial_start(self, iteration, trials, trial, **info) -> None:
        self._update(trial, status="running")

    def on_trial_result(self, iteration, trials, trial, result, **info) -> None:
        values = {"epoch": str(result.get("epoch", ""))}
        if "val_score" in result:
            values["val"] = f"{result['val_score']:.3f}"
        if "objective" in result:
            values["objective"] = f"{result['objective']:.3f}"
        self._update(trial, **values)

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:
        scored = "objective" in self.rows.get(trial.trial_id, {})
        self._update(trial, status="done" if scored else "stopped early")

    def on_trial_error(self, iteration, trials, trial, **info) -> None:
        self._update(trial, status="failed")
