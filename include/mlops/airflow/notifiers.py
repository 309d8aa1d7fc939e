"""Where failures and drift breaches are reported: log lines today, the place to add Slack or e-mail."""

from __future__ import annotations

import logging
from typing import Any

from airflow.sdk import BaseNotifier

log = logging.getLogger("mlops.notify")


class LogFailureNotifier(BaseNotifier):
    """Say in one line which task failed, for which run and why.

    ``hint`` (templated) tells the reader what the failure usually means and what to do.
    """

    template_fields = ("hint",)

    def __init__(self, hint: str = "") -> None:
        super().__init__()
        self.hint = hint

    def notify(self, context: Any) -> None:
        ti = context.get("ti") or context.get("task_instance")
        exception = context.get("exception")
        log.error(
            "FAILED dag=%s task=%s run=%s try=%s: %s",
            getattr(ti, "dag_id", "?"),
            getattr(ti, "task_id", "?"),
            getattr(ti, "run_id", "?"),
            getattr(ti, "try_number", "?"),
            str(exception).splitlines()[0] if exception else "no exception recorded",
        )
        if self.hint:
            log.error("%s", self.hint)


class DriftBreachNotifier(BaseNotifier):
    """Every drift breach goes through here, so delivery (log, Slack, e-mail) is decided in one place."""

    template_fields = ("message",)

    def __init__(self, message: str) -> None:
        super().__init__()
        self.message = message

    def notify(self, context: Any) -> None:
        log.warning("DRIFT %s", self.message)
