"""Benchmarks contribute rows to one results file: ``$MLOPS_BENCH_OUT/results.json``, printed as a table at the end.

Each benchmark calls ``bench_results.add(step, ours, raw, unit, target)`` before its assertions, so a step that
misses its target is still recorded (with ``pass: false``). See ``bench_results.py`` for the row format.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from bench_results import RESULTS_FILE, BenchResults, format_text

_SESSION = BenchResults()


@pytest.fixture(scope="session")
def bench_results() -> BenchResults:
    return _SESSION


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not _SESSION.rows:
        return
    terminalreporter.section("benchmark results")
    terminalreporter.write_line(format_text(_SESSION.rows))
    out = os.environ.get("MLOPS_BENCH_OUT")
    if out:
        path = Path(out) / RESULTS_FILE
        payload = _SESSION.merge_into(path)
        retired = f", retired: {', '.join(sorted(_SESSION.retired))}" if _SESSION.retired else ""
        terminalreporter.write_line(
            f"{path}: {len(_SESSION.rows)} row(s) measured now, {len(payload['rows'])} in all{retired}"
        )
