"""Alerts that reach people: failures, quarantines, days that passed validation with warnings, drift breaches,
approval requests, promotions, rollbacks and scoring runs late for their deadline.

Every alert is one log line (the default, always), and also an e-mail and a Slack message when a connection
is configured. The deployment's ``alerts:`` section configures delivery (the deployment config file
``MLOPS_CONFIG`` or ``MLOPS__ALERTS__*`` env; a model file may not set it):

* ``smtp_conn_id``: an Airflow SMTP connection (SMTP provider); the mail goes to ``email_to``, from
  ``email_from`` or the connection's ``from_email``;
* ``slack_conn_id``: an Airflow Slack incoming-webhook connection (``slackwebhook``, Slack provider);
* ``airflow_url``: the Airflow UI, to put a link to the task (and to the page where an approver answers)
  in the message.

Each field left unset falls back to its legacy environment variable (:data:`LEGACY_ENV`:
``MLOPS_ALERT_SMTP_CONN_ID``, ``MLOPS_ALERT_EMAIL_TO`` comma-separated, ``MLOPS_ALERT_EMAIL_FROM``,
``MLOPS_ALERT_SLACK_CONN_ID``, ``MLOPS_AIRFLOW_URL``, which ``make up`` sets), so older deployments keep working.
Without either, links are built on Airflow's own ``[api] base_url`` (``AIRFLOW__API__BASE_URL``): the URL a
deployment sets for its Airflow UI anyway (the compose stack does), so its links are right without more config.

Mail and Slack go out through the providers' notifiers (``SmtpNotifier``, ``SlackWebhookNotifier``).
:func:`scores_late` is the scoring DAGs' deadline callback (Airflow's ``DeadlineAlert``, run by the triggerer).

Every message names the DAG, the day it is about and the reason. A delivery that fails is logged and never
raised: an alert must not fail (or retry) the task it reports on. A reason quotes data and errors, so it is
escaped for each channel: HTML in the mail, Slack's ``&``/``<``/``>`` in Slack (no ``<!channel>``, no links).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import html
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from airflow.sdk import BaseNotifier

from mlops.config import AlertsSpec, deployment_settings
from mlops.web.urls import required_actions, without_userinfo

log = logging.getLogger("mlops.notify")

#: Each field of the ``alerts`` section and the environment variable it falls back to when unset.
LEGACY_ENV = {
    "smtp_conn_id": "MLOPS_ALERT_SMTP_CONN_ID",
    "email_to": "MLOPS_ALERT_EMAIL_TO",
    "email_from": "MLOPS_ALERT_EMAIL_FROM",
    "slack_conn_id": "MLOPS_ALERT_SLACK_CONN_ID",
    "airflow_url": "MLOPS_AIRFLOW_URL",
}

TITLES = {
    "failure": "FAILED",
    "quarantine": "QUARANTINED",
    "warnings": "WARNINGS",
    "drift": "DRIFT",
    "promotion": "PROMOTED",
    "rollback": "ROLLED BACK",
    "approval": "APPROVAL NEEDED",
    "late": "LATE",
}
_LEVELS = {
    "failure": logging.ERROR,
    "quarantine": logging.ERROR,
    "late": logging.ERROR,
    "warnings": logging.WARNING,
    "drift": logging.WARNING,
}
#: A "passed with warnings" notice lists at most this many warnings (a contract has few rules; a verdict is data).
WARNINGS_LISTED = 20


@dataclass(frozen=True)
class Alert:
    """One thing people should hear about."""

    kind: str  # one of TITLES
    dag_id: str
    day: str
    reason: str
    task_id: str = "?"
    run_id: str = "?"
    details: str = ""
    action: str = ""  # a page of the Airflow UI (relative to its root) where the reader acts on the alert

    @property
    def subject(self) -> str:
        first = self.reason.splitlines()[0] if self.reason else ""
        return f"[mlops] {TITLES[self.kind]} {self.dag_id} {self.day}: {first[:140]}"

    def text(self, airflow_url: str | None = None) -> str:
        """The message; with ``airflow_url`` (the Airflow UI), a link to the task."""
        lines = [
            f"{TITLES[self.kind]}: {self.dag_id} for {self.day}",
            f"reason: {self.reason}",
            f"task: {self.dag_id}.{self.task_id}, run {self.run_id}",
        ]
        base = (airflow_url or "").rstrip("/")
        if base and self.run_id != "?":
            where = f"{base}/dags/{quote(self.dag_id, safe='')}/runs/{quote(self.run_id, safe='')}"
            lines.append(
                f"open: {where}/tasks/{quote(self.task_id, safe='')}" if self.task_id != "?" else f"open: {where}"
            )
        if base and self.action:
            lines.append(f"act here: {base}/{self.action}")
        if self.details:
            lines += ["", self.details]
        return "\n".join(lines)


def alert_settings(env: Mapping[str, str] | None = None) -> AlertsSpec:
    """The deployment's ``alerts`` section, each field it leaves unset filled from its :data:`LEGACY_ENV` variable.

    A deployment config that does not load is logged, and the legacy variables alone decide: the task that
    alerts has already failed on it, and the alert must still go out.
    """
    env = os.environ if env is None else env
    try:
        section = deployment_settings(env).alerts
    except Exception:
        log.exception("the deployment config does not load: alerts use the legacy MLOPS_ALERT_* variables only")
        section = AlertsSpec()
    fallback: dict[str, Any] = {}
    for field, variable in LEGACY_ENV.items():
        raw = (env.get(variable) or "").strip()
        if raw and not getattr(section, field):
            fallback[field] = [part.strip() for part in raw.split(",") if part.strip()] if field == "email_to" else raw
    if "airflow_url" in fallback:  # unchecked, unlike the section's: at least never show its credentials
        fallback["airflow_url"] = without_userinfo(fallback["airflow_url"])
    if not section.airflow_url and "airflow_url" not in fallback:
        fallback["airflow_url"] = airflow_base_url()
    return section.model_copy(update=fallback)


def airflow_base_url() -> str | None:
    """Airflow's own ``[api] base_url`` (the UI as people reach it), without ``user:password@``; None when unset.

    The last fallback of the links in alerts: a deployment that sets nothing of ours still links to its UI.
    """
    from airflow.configuration import conf

    base = without_userinfo((conf.get("api", "base_url", fallback="") or "").strip()).rstrip("/")
    return base if base.startswith(("http://", "https://")) else None


def _send_email(alert: Alert, alerts: AlertsSpec) -> None:
    from airflow.providers.smtp.notifications.smtp import SmtpNotifier

    if not alerts.email_to:
        raise ValueError(f"alerts.smtp_conn_id is set but alerts.email_to (or {LEGACY_ENV['email_to']}) names nobody")
    body = f"<pre>{html.escape(alert.text(alerts.airflow_url), quote=False)}</pre>"
    notifier = SmtpNotifier(
        to=list(alerts.email_to),
        from_email=alerts.email_from or None,  # None: the connection's from_email
        subject=alert.subject,
        html_content=body,
        smtp_conn_id=alerts.smtp_conn_id,
    )
    # notify(), not notifier(context): calling the notifier renders subject and body as Jinja templates, and
    # both quote data and errors ("{{" in a reason must be sent as written, never evaluated).
    notifier.notify({})


def slack_escaped(text: str) -> str:
    """Text Slack shows as written: ``&``, ``<``, ``>`` escaped as Slack's formatting rules ask.

    Unescaped, ``<!channel>`` in a reason pings everyone and ``<https://evil|click>`` is a disguised link.
    """
    return html.escape(text, quote=False)


def _send_slack(alert: Alert, alerts: AlertsSpec) -> None:
    from airflow.providers.slack.notifications.slack_webhook import SlackWebhookNotifier

    text = f"*{slack_escaped(alert.subject)}*\n{slack_escaped(alert.text(alerts.airflow_url))}"
    # notify(), not notifier(context): the text quotes data, which must not be rendered as a Jinja template.
    SlackWebhookNotifier(slack_webhook_conn_id=str(alerts.slack_conn_id), text=text).notify({})


def deliver(alert: Alert, env: Mapping[str, str] | None = None) -> dict[str, str]:
    """Log the alert, then send it through every configured channel; returns ``{channel: outcome}``.

    ``env`` (default: the process's) is where the deployment config and the legacy variables are read.
    """
    log.log(_LEVELS.get(alert.kind, logging.INFO), "%s", alert.subject)
    outcomes = {"log": "written"}
    alerts = alert_settings(env)
    channels = (("email", alerts.smtp_conn_id, _send_email), ("slack", alerts.slack_conn_id, _send_slack))
    for channel, conn_id, send in channels:
        if not conn_id:
            continue
        try:
            send(alert, alerts)
            outcomes[channel] = "sent"
        except Exception as exc:  # an alert must never fail the task it reports on
            log.exception("could not send the %s alert through connection %r", channel, conn_id)
            outcomes[channel] = f"failed: {exc}"
    return outcomes


def approval_requested(
    model: str,
    version: str,
    dag_id: str,
    *,
    approvers: Sequence[str],
    timeout_hours: float,
    gate_report_url: str | None = None,
    run_id: str = "?",
    task_id: str = "?",
    env: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Tell the approvers a promotion waits for them, with the page where they answer (:func:`deliver`'s outcomes).

    Airflow shows a pending request only to whoever opens its UI: unannounced, it times out as rejected.
    """
    who = ", ".join(approvers) or "nobody (promotion.approvers is empty: the request will time out as rejected)"
    details = [f"approvers: {who}", f"answer within {timeout_hours:g} h; no answer means rejected"]
    if gate_report_url:
        details.append(f"gate report: {gate_report_url}")
    alert = Alert(
        "approval",
        dag_id=dag_id,
        day=dt.datetime.now(dt.UTC).date().isoformat(),
        reason=f"promotion of {model} v{version} waits for approval",
        task_id=task_id,
        run_id=run_id,
        details="\n".join(details),
        action=required_actions(dag_id),
    )
    return deliver(alert, env)


def describe_warning(warning: Mapping[str, Any]) -> str:
    """One line for a tolerated breach (a ``Failure`` as ``Verdict.to_dict()`` or the marker has it), as
    ``Failure.describe`` writes it. The validation has already cut the values it quotes short."""
    column, observed, expected = warning.get("column"), warning.get("observed"), warning.get("expected")
    where = f"column '{column}'" if column else "table"
    text = f"[{warning.get('rule')}] {where}: observed {observed!r}, expected {expected!r}"
    if warning.get("file"):
        text += f" (file {warning.get('file')})"
    if warning.get("sample_ids"):
        text += f"; offending ids e.g. {warning.get('sample_ids')}"
    return text


def validation_warnings(
    verdict: Mapping[str, Any], context: Mapping[str, Any] | None = None, env: Mapping[str, str] | None = None
) -> dict[str, str] | None:
    """A day that passed its contract with warnings (breaches within its tolerances): send a
    "passed ... with K warning(s)" notice (:func:`deliver`'s outcomes). None, and nothing sent, without warnings.

    ``verdict`` is ``Verdict.to_dict()``; ``context`` the running task's (DAG, task, run; the day is the verdict's).
    Not a failure: the day is validated and used downstream; the notice says what was tolerated.
    """
    warnings = [w for w in verdict.get("warnings") or [] if isinstance(w, Mapping)]
    if not warnings:
        return None
    lines = [describe_warning(warning) for warning in warnings]  # the validation step logged each one already
    where = _where(context or {})
    where["day"] = str(verdict.get("day") or where["day"])
    contract = verdict.get("contract") or {}
    passed = f"{verdict.get('rows')} rows passed contract {contract.get('name')} v{contract.get('version')}"
    reason = f"{passed} with {len(warnings)} warning(s)"
    shown = lines[:WARNINGS_LISTED]
    if len(lines) > len(shown):
        shown.append(f"... and {len(lines) - len(shown)} more")
    details = "\n".join([f"partition: {verdict.get('partition')}", *(f"- {line}" for line in shown)])
    return deliver(Alert("warnings", reason=reason, details=details, **where), env)


def _where(context: Mapping[str, Any]) -> dict[str, str]:
    """DAG, task, run and the day the run is about (``params.date`` when given, else the logical date)."""
    ti = context.get("ti") or context.get("task_instance")
    params = context.get("params") or {}
    day = params.get("date") if isinstance(params, Mapping) else None
    day = day or context.get("ds")
    if not day:
        dag_run = context.get("dag_run")
        when = getattr(dag_run, "logical_date", None) or getattr(dag_run, "run_after", None)
        day = when.date().isoformat() if when is not None else "?"
    return {
        "dag_id": str(getattr(ti, "dag_id", "?")),
        "task_id": str(getattr(ti, "task_id", "?")),
        "run_id": str(getattr(ti, "run_id", "?")),
        "day": str(day),
    }


def _moment(value: Any) -> str:
    """A time from a deadline callback's context (a datetime, or an ISO string in the run's JSON), to the minute."""
    when = value
    if isinstance(value, str):
        try:
            when = dt.datetime.fromisoformat(value)
        except ValueError:
            return value
    if not isinstance(when, dt.datetime):
        return "?"
    if when.tzinfo is not None:
        when = when.astimezone(dt.UTC)
    return when.strftime("%Y-%m-%d %H:%M UTC")


def late_alert(context: Mapping[str, Any], model: str, deadline_hours: float) -> Alert:
    """The LATE alert of a scoring run that missed its deadline, from the context Airflow hands the callback:
    ``dag_run`` (the run as the REST API returns it) and ``deadline`` (its ``deadline_time``).

    The day is ``params.date`` when the run was asked for one, else its logical date (a scheduled sweep: the day
    that just ended), else the day it was started (a run started by validated days or a champion change has no
    logical date; it scores every waiting day up to then).
    """
    run = context.get("dag_run") or {}
    conf = run.get("conf") if isinstance(run.get("conf"), Mapping) else {}
    times = (run.get("logical_date"), run.get("run_after"))
    day = conf.get("date") or next((_moment(when)[:10] for when in times if when), "?")
    deadline = (context.get("deadline") or {}).get("deadline_time")
    reason = f"scores not committed by {_moment(deadline)} ({deadline_hours:g} h after the run was queued)"
    details = "\n".join([
        f"model: {model}; deadline: scoring.deadline_hours = {deadline_hours:g}",
        f"run: {run.get('dag_run_id', '?')} ({run.get('run_type', '?')}), {run.get('state', '?')} now, "
        f"queued at {_moment(run.get('queued_at'))}",
        "The run is still working, waits for a worker slot or its pool, or failed: open it. Days it did not "
        "commit stay waiting; the next scoring run scores them.",
    ])  # fmt: skip
    return Alert(
        "late",
        dag_id=str(run.get("dag_id") or "?"),
        day=str(day),
        reason=reason,
        run_id=str(run.get("dag_run_id") or "?"),
        details=details,
    )


async def scores_late(context: Mapping[str, Any], model: str = "?", deadline_hours: float = 0.0) -> dict[str, str]:
    """The scoring DAGs' deadline callback (``mlops.airflow.defaults.scoring_deadline``): a LATE alert through
    every channel; returns :func:`deliver`'s outcomes (Airflow records them with the callback).

    Airflow's triggerer awaits it with ``context`` (see :func:`late_alert`). Delivery blocks (SMTP, HTTP), so it
    runs in a thread: the triggerer's event loop serves every deferred task of the deployment meanwhile.
    """
    return await asyncio.to_thread(deliver, late_alert(context or {}, model, deadline_hours))


class LogFailureNotifier(BaseNotifier):
    """A failed task: which task, which run, which day and why; a broken data contract is a quarantine.

    ``hint`` (templated) tells the reader what the failure usually means and what to do.
    """

    template_fields = ("hint",)

    def __init__(self, hint: str = "") -> None:
        super().__init__()
        self.hint = hint

    def notify(self, context: Any) -> None:
        exception = context.get("exception")
        text = str(exception) if exception else "no exception recorded"
        first = text.splitlines()[0] if text else text
        # The error policy raises InputFailure(quarantined=True) for data moved to quarantine/ with its reason.json.
        kind = "quarantine" if getattr(exception, "quarantined", False) else "failure"
        where = _where(context)
        try_number = getattr(context.get("ti") or context.get("task_instance"), "try_number", "?")
        log.error("FAILED dag=%s task=%s run=%s try=%s: %s", where["dag_id"], where["task_id"], where["run_id"],
                  try_number, first)  # fmt: skip
        if self.hint:
            log.error("%s", self.hint)
        details = "\n".join(part for part in (self.hint, text if text != first else "") if part)
        deliver(Alert(kind, reason=first, details=details, **where))


class DriftBreachNotifier(BaseNotifier):
    """A drift breach of the champion's inputs or scores (whether or not it triggers a training run)."""

    template_fields = ("message",)

    def __init__(self, message: str, day: str | None = None) -> None:
        super().__init__()
        self.message = message
        self.day = day

    def notify(self, context: Any) -> None:
        where = _where(context)
        if self.day:
            where["day"] = self.day
        deliver(Alert("drift", reason=self.message, **where))


class ChampionChangeNotifier(BaseNotifier):
    """A promotion or a rollback: put on the task that moves ``champion`` (it returns the ledger move)."""

    def notify(self, context: Any) -> None:
        ti = context.get("ti") or context.get("task_instance")
        move = ti.xcom_pull(task_ids=ti.task_id) if hasattr(ti, "xcom_pull") else None
        if not isinstance(move, Mapping) or not move.get("to_version"):
            log.warning("champion change alert: task %s returned no ledger move", getattr(ti, "task_id", "?"))
            return
        where = _where(context)
        kind = "rollback" if where["dag_id"].endswith("model_rollback") else "promotion"
        previous = f"v{move['from_version']}" if move.get("from_version") else "none"
        reason = f"champion {previous} -> v{move['to_version']}: {move.get('reason', '')}"
        deliver(Alert(kind, reason=reason, details=f"by {move.get('actor')} in run {move.get('run')}", **where))
