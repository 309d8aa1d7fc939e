"""continuous_training: snapshot -> train (GPU pod or local) -> assess -> register -> [approval] -> promote.

At parse time only the Airflow SDK (and, by config, the cncf.kubernetes provider for the GPU pod and the
standard provider's ApprovalOperator), ``mlops.config``, ``mlops.airflow`` and ``mlops.training.request``
are imported; the work happens inside the tasks (and, with the kubernetes backend, inside the training pod).
"""

from __future__ import annotations

import datetime as dt
from textwrap import dedent

from airflow.sdk import DAG, AssetOrTimeSchedule, CronTriggerTimetable, task

from mlops.airflow import (
    CONFIG_PARAM,
    dag_defaults,
    error_policy,
    run_settings,
    skip,
    training_pod_operator,
    validated_data_asset,
)
from mlops.airflow.assets import champion_asset, record_champion_change
from mlops.airflow.links import GateReportLink, MlflowRunLink, ModelVersionLink, add_links
from mlops.airflow.notifiers import ChampionChangeNotifier
from mlops.airflow.runs import config_param, run_param, run_type
from mlops.config import ConfigError, Settings
from mlops.redact import redact_text
from mlops.training.request import TrainingRequest


def _triggering_user(dag_run) -> str:  # type: ignore[no-untyped-def]
    """Who started the run (recorded in the ledger next to the DAG); a scheduled or asset-triggered run has none."""
    return getattr(dag_run, "triggering_user_name", None) or "scheduler"


def build(settings: Settings) -> DAG:
    """``<model>__continuous_training`` for the model of ``settings`` (what the DAG factory calls per model file)."""
    VALIDATED = validated_data_asset(settings)
    CHAMPION = champion_asset(settings)
    KUBERNETES = settings.training.backend == "kubernetes"
    MANUAL = settings.promotion.policy == "manual"
    #: The training request, as strings, that `resolve_snapshot` returns (read by `train` and the tasks after it).
    REQUEST = "ti.xcom_pull(task_ids='resolve_snapshot')"

    DOC = dedent(f"""
    ### Train, gate and promote `{settings.model_name}`

    Triggers: the schedule `{settings.dags.training_schedule}` (UTC, `dags.training_schedule`), **or** new validated data (Asset `{VALIDATED.name}`), a manual trigger
    (form below), or `{settings.dag_id("drift_monitoring")}` (conf: reason, and drift: window, breached features, report URI). New validated
    data trains the **first** model (bootstrap); once a champion exists, a run started by new data ends skipped
    unless `training.retrain_on_new_data` is set (now {settings.training.retrain_on_new_data}), so daily data does
    not retrain every day nor hold off the drift trigger ("training in flight").
    One run at a time. The trigger reason is recorded on the MLflow run and on the model version.
    The run's `config` may override only the model parameters and rounds and the training window; it applies
    to every task of the run and to the trainer, and is recorded on the MLflow run and the version
    (`mlops.run_overrides`). Any other key (gates, promotion, MLflow, registry...) is refused when the run is
    triggered: those come only from the deployment's reviewed config file and env.

    | step | what happens |
    |---|---|
    | `resolve_snapshot` | last {settings.training.window_days} validated days whose labels arrived, pinned to a DVC revision; split train / early-stopping ({settings.training.validation_days} d) / frozen holdout ({settings.training.holdout_days} d); too few labelled days (fewer than {settings.training.holdout_days + settings.training.validation_days + 1}) ends the run **SKIPPED** with the reason, not failed: a later run (the next validated day, the weekly schedule) trains once there are enough |
    | `train` | `python -m mlops.training` — backend **{settings.training.backend}** ({"KubernetesPodOperator on a GPU node" if KUBERNETES else "a local subprocess on CPU"}); logs lineage, params, metrics, model, SHAP summary and the drift reference profile to MLflow |
    | `assess` | candidate and champion scored on the same holdout; gates: absolute thresholds, paired-bootstrap comparison, per-slice non-regression, feature contract; report logged to MLflow |
    | `register` | model version tagged with lineage + gate evidence; `challenger` if the gates passed |
    | `gates_passed` | a failed gate ends the run here as **not promoted** (a normal outcome) |
    | {"`approve_promotion` | human approval in the UI (Required actions; the request shows candidate vs champion per metric, the bootstrap CI, the slices that moved and links to the gate report and the MLflow run) by one of " + (", ".join(settings.promotion.approvers) or "nobody: set `promotion.approvers`") + ", never the user who triggered the run; every answer is recorded in the ledger; no answer in " + str(settings.promotion.approval_timeout_hours) + " h = reject |" if MANUAL else "(approval) | policy `auto`: no human step |"}
    | `promote` | compare-and-set `champion` (only if it still points at the version compared against), recorded in the ledger; emits Asset `{CHAMPION.name}`, which starts `{settings.dag_id("batch_scoring")}` (a first champion scores every validated day that waited) |

    MLflow: `{redact_text(settings.mlflow_tracking_uri)}`. Roll back with the `{settings.dag_id("model_rollback")}` DAG.
    """)

    #: The run's params; a conf key outside them is refused (config overrides go under `config`).
    PARAMS = {
        "reason": run_param("manual", type="string", description="why this run (recorded on the model version)"),
        "as_of": run_param(None, type=["null", "string"], format="date", description="train on data known by this day"),
        CONFIG_PARAM: config_param(),
        "drift": run_param(
            None,
            type=["null", "object"],
            description="drift evidence (set by drift_monitoring): window, breached_features, report_uri",
        ),  # fmt: skip
    }

    with DAG(
        dag_id=settings.dag_id("continuous_training"),
        description="Snapshot, train XGBoost, gate against the champion, register and promote",
        schedule=AssetOrTimeSchedule(
            timetable=CronTriggerTimetable(settings.dags.training_schedule, timezone="UTC"), assets=VALIDATED
        ),
        max_active_runs=1,
        doc_md=DOC,
        params=PARAMS,
        **dag_defaults(settings, "training", "xgboost", "mlflow"),
    ) as dag:

        @task
        @error_policy
        def resolve_snapshot(params: dict | None = None, dag_run=None, ti=None) -> dict:  # type: ignore[no-untyped-def]
            """Pin the training window to a DVC revision; record why this run happens: the run's TrainingRequest."""
            from mlops.plans import Skip, plan_training

            unknown = sorted(set(dag_run.conf or {}) - set(PARAMS))
            if unknown:
                raise ConfigError(f"conf key(s) {', '.join(unknown)} are not params of this DAG ({', '.join(PARAMS)}); "
                                  f"config overrides go under {CONFIG_PARAM!r}")  # fmt: skip
            settings = run_settings()
            as_of = (
                dt.date.fromisoformat(params["as_of"])
                if params["as_of"]
                else (dag_run.logical_date or dag_run.run_after).date()
            )
            plan = plan_training(settings, as_of=as_of, run_kind=run_type(dag_run), reason=params["reason"],
                                 drift=params["drift"])  # fmt: skip
            if isinstance(plan, Skip):
                skip(plan.reason)
            snapshot = plan.snapshot
            trigger = {**plan.trigger, "airflow_dag_id": dag_run.dag_id, "airflow_run_id": dag_run.run_id,
                       "airflow_try_number": ti.try_number}  # fmt: skip
            print(f"trigger: {plan.reason}; window {snapshot.days['train'][0]}..{snapshot.days['holdout'][-1]} "
                  f"at DVC revision {snapshot.registry_revision}")  # fmt: skip
            request = TrainingRequest(as_of=as_of.isoformat(), snapshot=snapshot.to_dict(), trigger=trigger,
                                      overrides=params[CONFIG_PARAM], device="cuda" if KUBERNETES else "cpu")  # fmt: skip
            return request.to_strings()

        resolved = resolve_snapshot()

        if KUBERNETES:
            train = training_pod_operator(
                settings,
                task_id="train",
                arguments=TrainingRequest.templated_argv(REQUEST),
                env={"MLOPS__MLFLOW__TRACKING_URI": settings.mlflow_tracking_uri},
                execution_timeout=dt.timedelta(hours=6),
            )
        else:

            @task(execution_timeout=dt.timedelta(hours=6))
            @error_policy
            def train(resolved: dict) -> dict:
                """Run `python -m mlops.training` here on CPU: the same entrypoint as the GPU pod."""
                from mlops.training.local import run_local
                from mlops.training.snapshot import NoTrainingData

                try:
                    return run_local(TrainingRequest.from_strings(resolved), model=settings.model_name)
                except NoTrainingData as exc:  # too few positives or one class: a later run trains, nothing to retry
                    skip(str(exc))

            train = train(resolved)

        @task
        @error_policy
        def assess(resolved: dict, dag_run=None) -> dict:  # type: ignore[no-untyped-def]
            """Candidate vs champion on the same frozen holdout; gate report to MLflow."""
            from mlops.models import find_training_run
            from mlops.training.pipeline import assess as run_assessment
            from mlops.training.snapshot import TrainingSnapshot

            settings = run_settings()
            request = TrainingRequest.from_strings(resolved)
            found = find_training_run(settings, dag_run.dag_id, dag_run.run_id)
            snapshot = TrainingSnapshot.from_dict(request.snapshot)
            assessment = run_assessment(settings, snapshot, found.run_id, found.model_uri,
                                        actor=f"airflow:{dag_run.dag_id}", run=dag_run.run_id)  # fmt: skip
            print(f"gate report: {assessment.report_uri}")
            return assessment.to_dict()

        @task
        @error_policy
        def register(assessment: dict, dag_run=None) -> dict:  # type: ignore[no-untyped-def]
            """Register the version with lineage and evidence; set `challenger` when it passed."""
            from mlops.training.pipeline import Assessment
            from mlops.training.pipeline import register as register_version

            settings = run_settings()
            assessed = Assessment.from_dict(assessment)
            version = register_version(settings, assessed, actor=f"airflow:{dag_run.dag_id}", run=dag_run.run_id,
                                       human=_triggering_user(dag_run))  # fmt: skip
            return {"version": version, "passed": assessed.passed, "summary": assessed.summary,
                    "champion_version": assessed.champion_version, "metrics": assessed.metrics}  # fmt: skip

        @task.short_circuit
        @error_policy
        def gates_passed(registered: dict) -> bool:
            """A failed gate is a normal outcome: the run ends here, `not promoted`, reasons in the log and MLflow."""
            if not registered["passed"]:
                print(f"v{registered['version']} NOT promoted: {registered['summary']}")
            return bool(registered["passed"])

        @task(outlets=[CHAMPION], on_success_callback=[ChampionChangeNotifier()])
        @error_policy
        def promote(registered: dict, resolved: dict, dag_run=None, ti=None, outlet_events=None) -> dict:  # type: ignore[no-untyped-def]
            """Compare-and-set champion; fails without changing anything if champion moved meanwhile.

            Manual policy: only after an approval by a user of `promotion.approvers` who did not trigger the run
            (that user is recorded in the ledger next to the DAG)."""
            from mlops.training.pipeline import promote as promote_version

            settings = run_settings()
            reason = TrainingRequest.from_strings(resolved).trigger["reason"]
            human = _triggering_user(dag_run)
            if MANUAL:
                from mlops.airflow.dags.approval import responder_of
                from mlops.verdicts import check_approver

                answer = ti.xcom_pull(task_ids="approve_promotion")
                human = check_approver(settings.promotion.approvers, responder_of(answer), dag_run.triggering_user_name)
                reason = f"{reason}; approved by {human}"
            move = promote_version(settings, registered["version"], registered["champion_version"],
                                   actor=f"airflow:{dag_run.dag_id}", reason=f"gates passed; trigger: {reason}",
                                   run=dag_run.run_id, human=human)  # fmt: skip
            print(
                f"champion is now v{move['to_version']} (was {move['from_version']}); metrics {registered['metrics']}"
            )
            record_champion_change(outlet_events, CHAMPION, move)
            return move

        assessed = assess(resolved)
        resolved >> train >> assessed
        registered = register(assessed)
        add_links(train, MlflowRunLink())
        add_links(assessed, MlflowRunLink(), GateReportLink())
        add_links(registered, MlflowRunLink(), ModelVersionLink())
        passed = gates_passed(registered)
        promoted = promote(registered, resolved)
        if MANUAL:
            from mlops.airflow.dags.approval import LedgerApprovalOperator

            approval = LedgerApprovalOperator(
                settings=settings,
                task_id="approve_promotion",
                subject=f"Promote {settings.model_name} v{{{{ ti.xcom_pull(task_ids='register')['version'] }}}} to champion?",
                defaults="Reject",
                response_timeout=dt.timedelta(hours=settings.promotion.approval_timeout_hours),
                execution_timeout=None,
                retries=0,
            )
            passed >> approval >> promoted
        else:
            passed >> promoted
    return dag
