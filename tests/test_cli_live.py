"""The live trials table in piped output (CI logs, files)."""

import io

from rich.console import Console

from vsearch.cli_live import LiveTrials


def test_piped_table_ends_its_line_so_the_next_output_starts_on_its_own():
    piped = io.StringIO()
    console = Console(file=piped, width=100)
    with LiveTrials(console, planned=2):
        pass
    console.print("8 trials: 8 completed")
    lines = piped.getvalue().splitlines()
    assert lines[-2].startswith("└") and lines[-2].endswith("┘")
    assert lines[-1] == "8 trials: 8 completed"
