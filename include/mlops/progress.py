"""A long command's steps as it runs them: ``[3/9] scoring ... 0:42 elapsed (expected ~0:30)``.

A newcomer waiting on ``make demo`` should always see which step runs, how long it has taken and how long it
usually takes. On a terminal a live line (rich's progress bar, measured against the expected time) is redrawn
while a step runs; elsewhere (CI, a pipe, a file) plain lines: one when a step starts, one every ``heartbeat``
seconds while it runs, one when it ends. Both end a step with the same line.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import TextIO

from rich.console import Console
from rich.progress import Progress, ProgressColumn, Task, TextColumn
from rich.progress_bar import ProgressBar
from rich.text import Text


def clock(seconds: float) -> str:
    """``0:42``, ``12:05``: minutes and seconds, as the step lines show them."""
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes}:{secs:02d}"


class Steps:
    """A fixed number of steps, each with its expected duration in seconds (by key); what each one took."""

    def __init__(self, total: int, expected: Mapping[str, float], stream: TextIO | None = None,
                 live: bool | None = None, heartbeat: float = 30.0,
                 now: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        self.total, self.expected = total, dict(expected)
        self.stream = stream or sys.stdout
        self.live = self.stream.isatty() if live is None else live
        self.heartbeat, self.now = heartbeat, now
        self.measured: dict[str, float] = {}  # key -> seconds, for the next run's expectations
        self._done = 0
        self._detail: Callable[[str], None] = lambda text: None  # the running step's live line, on a terminal
        self._console = Console(file=self.stream, force_terminal=True, highlight=False) if self.live else None

    def say(self, text: str = "") -> None:
        """A line of output; on a terminal, printed above the live line."""
        if self._console is not None:
            self._console.out(text, highlight=False)
        else:
            self.stream.write(text + "\n")
            self.stream.flush()

    def detail(self, text: str) -> None:
        """Name what the running step does now (a DAG run, a day) at the end of its live line; plain lines do not
        repeat it: the step's own lines say it."""
        self._detail(text)

    def expected_total(self) -> float:
        return sum(self.expected.values())

    @contextmanager
    def step(self, key: str, title: str) -> Iterator[None]:
        """Run one step: its counter and title, its elapsed and expected time while it runs, its duration."""
        self._done += 1
        label = f"[{self._done}/{self.total}] {title}"
        expected = self.expected.get(key)
        hint = f"expected ~{clock(expected)}" if expected else "no expected time yet"
        started = self.now()
        if self.live:
            with self._live(label, expected):
                yield
        else:
            self.say(f"{label} ... ({hint})")
            stop = threading.Event()
            ticker = threading.Thread(target=self._tick, args=(label, hint, started, stop), daemon=True)
            ticker.start()
            try:
                yield
            finally:
                stop.set()
                ticker.join()
        self.measured[key] = self.now() - started
        self.say(f"{label} done in {clock(self.measured[key])} ({hint})")

    def _tick(self, label: str, hint: str, started: float, stop: threading.Event) -> None:
        """Plain mode: a line every ``heartbeat`` seconds, so a long step never looks stuck in a CI log."""
        while not stop.wait(self.heartbeat):
            self.say(f"{label} ... {clock(self.now() - started)} elapsed ({hint})")

    @contextmanager
    def _live(self, label: str, expected: float | None) -> Iterator[None]:
        """Terminal mode: rich's progress bar, the elapsed time against the expected one, redrawn twice a second."""
        progress = Progress(TextColumn("{task.description}"), _TimeBar(), _Times(), TextColumn("{task.fields[detail]}"),
                            console=self._console, transient=True, refresh_per_second=2, redirect_stdout=False,
                            redirect_stderr=False, get_time=self.now)  # fmt: skip
        task = progress.add_task(label, expected=expected, detail="")
        self._detail = lambda text: progress.update(task, detail=text, refresh=True)
        try:
            with progress:
                yield
        finally:
            self._detail = lambda text: None


class _TimeBar(ProgressColumn):
    """Elapsed against expected; a pulsing bar once past it (or with no expectation)."""

    def render(self, task: Task) -> ProgressBar:
        expected, elapsed = task.fields.get("expected"), task.elapsed or 0.0
        if not expected or elapsed > expected:
            return ProgressBar(total=None, width=20, pulse=True, animation_time=task.get_time())
        return ProgressBar(total=expected, completed=elapsed, width=20)


class _Times(ProgressColumn):
    """``0:42 elapsed (expected ~0:30)``."""

    def render(self, task: Task) -> Text:
        expected = task.fields.get("expected")
        hint = f"expected ~{clock(expected)}" if expected else "no expected time yet"
        return Text(f"{clock(task.elapsed or 0.0)} elapsed ({hint})")
