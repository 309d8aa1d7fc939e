"""The one mapping of :mod:`mlops.errors` to Airflow behaviour, applied to every task body.

* :class:`~mlops.errors.InputError` (contract breach, no champion, bad conf, no training data): retrying
  the same input fails the same way, so the task fails at once, without retries, with one clear line
  (:class:`InputFailure`, an ``AirflowFailException``, the original traceback suppressed).
* :class:`~mlops.errors.InfrastructureError` (I/O, network, database): re-raised as is; the task is
  retried with exponential backoff (:func:`mlops.airflow.defaults.default_args`).
* Anything else keeps Airflow's default (retried like an infrastructure error).

A run that cannot do anything *yet* (no champion, nothing waiting, too little labelled data) is neither:
its task calls :func:`skip` with the reason, which is logged and ends the task (and what follows it)
SKIPPED, the reason on the task.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import NoReturn, ParamSpec, TypeVar

from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from mlops.errors import InputError, Quarantined

P = ParamSpec("P")
R = TypeVar("R")

#: Set on every function wrapped by :func:`error_policy` (the DAG integrity test checks every task has it).
MARKER = "mlops_error_policy"

log = logging.getLogger("mlops.airflow")


class InputFailure(AirflowFailException):
    """A task failed on its input: fails at once, no retry. ``quarantined``: the data went to quarantine, so
    the failure notifier says QUARANTINED (decided by the error's type, never by its text)."""

    def __init__(self, error: InputError) -> None:
        super().__init__(f"{type(error).__name__}: {error}")
        self.quarantined = isinstance(error, Quarantined)


def skip(reason: str) -> NoReturn:
    """End the running task SKIPPED (not failed, no retry) because there is nothing it can do yet; says why."""
    log.info("SKIPPED: %s", reason)
    raise AirflowSkipException(reason)


def error_policy(body: Callable[P, R]) -> Callable[P, R]:
    """Apply the mapping above to a task body: put it under ``@task``.

    ``functools.wraps`` keeps the signature, so TaskFlow still injects ``params``, ``ti``, ``dag_run``...
    """

    @functools.wraps(body)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return body(*args, **kwargs)
        except InputError as exc:
            raise InputFailure(exc) from None

    setattr(run, MARKER, True)
    return run
