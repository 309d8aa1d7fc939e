"""The ``local`` backend: the training entrypoint in a subprocess, exactly what the GPU pod runs."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
from collections import deque
from collections.abc import Callable
from typing import Any

from mlops.errors import InputError
from mlops.training.request import EXIT_BAD_REQUEST, EXIT_NO_TRAINING_DATA, TrainingRequest

log = logging.getLogger(__name__)


class TrainingRefused(InputError):
    """``python -m mlops.training`` refused the request or the config (exit 2): a retry cannot help."""


#: ``prctl(2)`` option: the signal the kernel sends a process when its parent dies (Linux only).
PR_SET_PDEATHSIG = 1


def _die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` making the child get SIGTERM when its parent dies; ``None`` where that is not possible.

    Without it a trainer whose task process is SIGKILLed (task timeout, worker lost) keeps running as an
    orphan, holding its MLflow run open and the machine busy. The trainer exits on SIGTERM (128+15) and
    closes its MLflow run as failed. libc is resolved here, in the parent: the function runs between fork
    and exec, where it must not import or load anything. The signal follows the death of the *thread* that
    started the child; :func:`run_local` waits for the child in that thread, so that is the task's death.
    """
    if not sys.platform.startswith("linux"):
        return None
    import ctypes
    import ctypes.util

    try:
        prctl = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True).prctl
    except (OSError, AttributeError):
        log.warning("prctl is unavailable: the trainer will not stop if this task process is killed")
        return None
    parent = os.getpid()

    def preexec() -> None:
        prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl took effect: nobody will signal us
            os._exit(128 + signal.SIGTERM)

    return preexec


def spawn_trainer(command: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """Start ``command`` with stdout and stderr on one text pipe, dying (SIGTERM) with this process on Linux."""
    return subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, preexec_fn=_die_with_parent(), env=env
    )


def run_local(request: TrainingRequest, model: str | None = None) -> dict[str, Any]:
    """Run the entrypoint on this machine, streaming its log; return its JSON result (last stdout line).

    ``model`` names the model file the trainer loads (``MLOPS_MODEL``), as the task that starts it does.
    """
    command = [sys.executable, "-m", "mlops.training", *request.to_argv()]
    env = {**os.environ, "MLOPS_MODEL": model} if model else None
    log.info("running python -m mlops.training (as of %s, device %s)", request.as_of, request.device)
    tail: deque[str] = deque(maxlen=30)
    with spawn_trainer(command, env) as process:
        assert process.stdout is not None
        for line in process.stdout:
            line = line.rstrip()
            tail.append(line)
            log.info("trainer | %s", line)
        code = process.wait()
    if code != 0:
        last = "\n".join(list(tail)[-8:])
        if code == EXIT_NO_TRAINING_DATA:
            from mlops.training.snapshot import NoTrainingData

            raise NoTrainingData(f"python -m mlops.training found no usable training data:\n{last}")
        error = TrainingRefused if code == EXIT_BAD_REQUEST else RuntimeError
        raise error(f"python -m mlops.training exited with {code}:\n{last}")
    return json.loads(tail[-1])
