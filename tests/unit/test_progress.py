"""The step counter of ``make demo``: which step runs, for how long, against how long it usually takes.

On a terminal a live line redrawn in place (rich's progress bar); in CI or a pipe plain lines only, one when a
step starts, one every heartbeat while it runs, one when it ends. Time comes from a fake clock: no test waits
on the wall clock.
"""

from __future__ import annotations

import io
import re
import threading

import pytest

from mlops.progress import Steps, clock

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


class FakeClock:
    """Seconds that advance only when the test says so."""

    def __init__(self) -> None:
        self.seconds = 1000.0

    def __call__(self) -> float:
        return self.seconds


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_clock_shows_minutes_and_seconds() -> None:
    assert [clock(s) for s in (0, 42.4, 90, 754.6)] == ["0:00", "0:42", "1:30", "12:35"]


def test_plain_lines_when_no_terminal_is_attached() -> None:
    out, now = io.StringIO(), FakeClock()
    steps = Steps(2, {"score": 30}, stream=out, heartbeat=0.01, now=now)
    assert not steps.live  # a StringIO, like a CI log, is no terminal
    with steps.step("score", "batch_scoring"):
        steps.detail("card_transactions__batch_scoring 2026-11-14")  # named on a live line only
        now.seconds += 42
        heartbeat = threading.Event()
        while not heartbeat.wait(0.01):  # the heartbeat thread writes while the step runs
            if "0:42 elapsed" in out.getvalue():
                heartbeat.set()
    with steps.step("simulate", "simulation"):
        now.seconds += 5
    lines = out.getvalue().splitlines()
    assert lines[0] == "[1/2] batch_scoring ... (expected ~0:30)"
    assert "[1/2] batch_scoring ... 0:42 elapsed (expected ~0:30)" in lines
    assert "[1/2] batch_scoring done in 0:42 (expected ~0:30)" in lines
    assert lines[-2:] == [
        "[2/2] simulation ... (no expected time yet)",
        "[2/2] simulation done in 0:05 (no expected time yet)",
    ]
    assert not ANSI.search(out.getvalue()) and "\r" not in out.getvalue()  # nothing but plain text in a log
    assert "2026-11-14" not in out.getvalue()
    assert steps.measured == {"score": 42, "simulate": 5}


def test_a_live_line_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "160")  # a wide terminal: the live line is not cut
    out, now = Terminal(), FakeClock()
    steps = Steps(3, {"validate": 90}, stream=out, now=now)
    assert steps.live
    steps.say("==> header [min] stays as written")  # no rich markup: quarantine reasons read "[min] column ..."
    with steps.step("validate", "data_validation for each day"):
        now.seconds += 42
        steps.detail("card_transactions__data_validation 2026-11-05")
        live = ANSI.sub("", out.getvalue())
        steps.say("    a run's line")
    text = ANSI.sub("", out.getvalue())
    # the live line, redrawn in place: counter, what runs now, a bar and the times
    assert re.search(
        r"\[1/3\] data_validation for each day [━╸╺]+ 0:42 elapsed \(expected ~1:30\) "
        r"card_transactions__data_validation 2026-11-05",
        live,
    ), live
    assert "\r" in out.getvalue() or "\x1b[" in out.getvalue()
    # lines said while it runs, and the end of the step, stay on screen as plain lines
    assert "==> header [min] stays as written\n" in text
    assert "    a run's line\n" in text
    assert text.rstrip().endswith("[1/3] data_validation for each day done in 0:42 (expected ~1:30)")
    assert steps.measured == {"validate": 42}
