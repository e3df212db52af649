"""A page as a person sees it: rendered by headless Chromium (Debian's ``chromium``), its scripts run."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

PLOT = re.compile(r'<div[^>]*class="[^"]*\bjs-plotly-plot\b')
HEATMAP = re.compile(r'<g class="hm"')  # plotly draws each heatmap trace in one such group


@dataclass
class RenderedPage:
    dom: str
    console: list[str]  # every console message or uncaught error the page's scripts produced

    @property
    def plots(self) -> int:
        return len(PLOT.findall(self.dom))

    @property
    def heatmaps(self) -> int:
        return len(HEATMAP.findall(self.dom))


def render(page: Path) -> RenderedPage:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.fail("this test renders the report in headless Chromium: install Debian's chromium", pytrace=False)
    with tempfile.TemporaryDirectory() as profile:
        run = subprocess.run(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={profile}",
             "--enable-logging=stderr", "--v=0", "--virtual-time-budget=20000", "--dump-dom", page.as_uri()],
            capture_output=True, text=True, timeout=180,
        )  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    return RenderedPage(run.stdout, [line for line in run.stderr.splitlines() if ":CONSOLE" in line])
