"""``make down`` stops exactly what ``make up`` started: a process group recorded in a PID file (with the
process's start time), and nothing else, even when the PID was reused by another process."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from mlops import stack
from mlops.config import Settings


def _record(settings: Settings, name: str, pid: int, started: int | None) -> None:
    stack.run_dir(settings).mkdir(parents=True, exist_ok=True)
    (stack.run_dir(settings) / f"{name}.pid").write_text(json.dumps({"pid": pid, "started": started, "argv": []}))


def test_down_stops_the_recorded_group_and_its_children(settings: Settings) -> None:
    # A parent with a child in the same group, like the scheduler and its LocalExecutor workers.
    script = "import subprocess, time; subprocess.Popen(['sleep', '300']); time.sleep(300)"
    process = subprocess.Popen([sys.executable, "-c", script], start_new_session=True)
    _record(settings, "scheduler", process.pid, stack._start_ticks(process.pid))
    assert stack.status(settings)["scheduler"] == process.pid

    assert stack.down(settings) == ["scheduler"]
    assert process.wait(timeout=10) is not None
    assert not stack._group_alive(process.pid), "the child in the group is gone too"
    assert not (stack.run_dir(settings) / "scheduler.pid").exists()


def test_down_leaves_a_reused_pid_alone(settings: Settings) -> None:
    me = os.getpid()
    _record(settings, "api-server", me, (stack._start_ticks(me) or 0) + 1)  # same PID, another start time
    _record(settings, "mlflow", 2**22 + 7, 1)  # a process that does not exist
    assert stack.status(settings) == dict.fromkeys(stack.COMPONENTS)
    assert stack.down(settings) == []
    assert not list(stack.run_dir(settings).glob("*.pid")), "stale PID files are removed"
