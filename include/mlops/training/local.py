"""The ``local`` backend: the training entrypoint in a subprocess, exactly what the GPU pod runs."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from collections import deque
from typing import Any

from mlops.errors import InputError
from mlops.training.__main__ import EXIT_BAD_REQUEST
from mlops.training.request import TrainingRequest

log = logging.getLogger(__name__)


class TrainingRefused(InputError):
    """``python -m mlops.training`` refused the request or the config (exit 2): a retry cannot help."""


def run_local(request: TrainingRequest) -> dict[str, Any]:
    """Run the entrypoint on this machine, streaming its log; return its JSON result (last stdout line)."""
    command = [sys.executable, "-m", "mlops.training", *request.to_argv()]
    log.info("running python -m mlops.training (as of %s, device %s)", request.as_of, request.device)
    tail: deque[str] = deque(maxlen=30)
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as process:
        assert process.stdout is not None
        for line in process.stdout:
            line = line.rstrip()
            tail.append(line)
            log.info("trainer | %s", line)
        code = process.wait()
    if code != 0:
        last = "\n".join(list(tail)[-8:])
        error = TrainingRefused if code == EXIT_BAD_REQUEST else RuntimeError
        raise error(f"python -m mlops.training exited with {code}:\n{last}")
    return json.loads(tail[-1])
