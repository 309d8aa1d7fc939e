"""The manual policy's approval step: Airflow's ApprovalOperator, assigned to ``promotion.approvers``, whose
every answer is a ledger record.

Imported only by a DAG whose policy is ``manual`` (it imports the standard provider's HITL operator). An
approval counts only from a user of ``promotion.approvers`` who did not trigger the run
(:func:`mlops.verdicts.check_approver`); any other approval is recorded as ``refused`` and fails the step,
so nothing downstream promotes. A rejection (or no answer before the timeout) is recorded as ``rejected``.
The ``promote`` task checks the same rule again on this step's output before it moves ``champion``.

The request's body is written when the step starts: the gate report of the assessed run (from MLflow) as
Markdown (:func:`mlops.training.approval_text.approval_request`), with the gate report and MLflow run links
the ``assess`` and ``register`` tasks already show. The approvers are then told (log, e-mail, Slack:
:func:`mlops.airflow.notifiers.approval_requested`), with a link to the DAG's Required actions page.
"""

from __future__ import annotations

from typing import Any

from airflow.providers.standard.operators.hitl import ApprovalOperator

from mlops.airflow import error_policy, run_settings
from mlops.config import Settings


def responder_of(answer: dict[str, Any] | None) -> str | None:
    """The user name who answered the request (None: nobody, it timed out), from the operator's output."""
    user = (answer or {}).get("responded_by_user") or {}
    return user.get("name") or user.get("id")


class LedgerApprovalOperator(ApprovalOperator):
    """:class:`ApprovalOperator` assigned to the approvers; records each answer in the ledger before acting on it."""

    def __init__(self, *, settings: Settings, **kwargs: Any) -> None:
        approvers = [{"id": name, "name": name} for name in settings.promotion.approvers]
        super().__init__(assigned_users=approvers, **kwargs)

    def execute(self, context: Any) -> Any:
        settings = run_settings()
        self.body = _request_body(context, settings)
        _announce(context, settings)
        return super().execute(context)

    def execute_complete(self, context: Any, event: dict[str, Any]) -> Any:
        if "error" not in event:
            _record(context, event)
        return super().execute_complete(context=context, event=event)


def _request_body(context: Any, settings: Settings) -> str:
    """The approval request (Markdown) from the run's gate report; the register step's metrics when MLflow fails."""
    from mlflow.exceptions import MlflowException

    from mlops.airflow.links import GateReportLink, MlflowRunLink
    from mlops.models import Artifacts, load_artifact
    from mlops.training.approval_text import approval_request

    ti = context["ti"]
    registered, assessed = ti.xcom_pull(task_ids="register"), ti.xcom_pull(task_ids="assess")
    report, unreadable = None, None
    try:
        report = load_artifact(settings, assessed["run_id"], Artifacts.GATE_REPORT_JSON)
    except (MlflowException, OSError) as exc:  # the approver still gets the verdict and the candidate's metrics
        unreadable = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return approval_request(
        model=settings.model_name,
        version=str(registered["version"]),
        champion_version=registered.get("champion_version"),
        report=report,
        summary=registered["summary"],
        candidate_metrics=registered["metrics"],
        gate_report_url=ti.xcom_pull(task_ids="assess", key=GateReportLink().xcom_key),
        mlflow_run_url=ti.xcom_pull(task_ids="register", key=MlflowRunLink().xcom_key),
        timeout_hours=settings.promotion.approval_timeout_hours,
        slice_tolerance=settings.gates.slice_tolerance,
        approvers=list(settings.promotion.approvers),
        unreadable=unreadable,
    )


def _announce(context: Any, settings: Settings) -> None:
    """Tell the approvers the request is open; a channel that fails is logged, never fails the step."""
    from mlops.airflow.links import GateReportLink
    from mlops.airflow.notifiers import approval_requested

    ti = context["ti"]
    approval_requested(
        settings.model_name,
        str(ti.xcom_pull(task_ids="register")["version"]),
        ti.dag_id,
        approvers=list(settings.promotion.approvers),
        timeout_hours=settings.promotion.approval_timeout_hours,
        gate_report_url=ti.xcom_pull(task_ids="assess", key=GateReportLink().xcom_key),
        run_id=ti.run_id,
        task_id=ti.task_id,
    )


@error_policy
def _record(context: Any, event: dict[str, Any]) -> None:
    from mlops.registry import Registry, RegistryError
    from mlops.verdicts import check_approver

    settings = run_settings()
    dag_run, ti = context["dag_run"], context["ti"]
    version = str(ti.xcom_pull(task_ids="register")["version"])
    human = responder_of(event)
    registry = Registry(settings)
    who = {"actor": f"airflow:{dag_run.dag_id}", "run": dag_run.run_id}
    try:
        if list(event.get("chosen_options") or []) != [ApprovalOperator.APPROVE]:
            reason = "rejected" if human else f"no answer within {settings.promotion.approval_timeout_hours} h"
            registry.record_decision(version, "rejected", human=human, reason=reason, **who)
            return
        try:
            check_approver(settings.promotion.approvers, human, getattr(dag_run, "triggering_user_name", None))
        except RegistryError as refused:
            registry.record_decision(version, "refused", human=human, reason=str(refused), **who)
            raise
        registry.record_decision(version, "approved", human=human, reason="approved", **who)
    finally:
        registry.ledger().dispose()
