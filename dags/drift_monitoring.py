"""drift_monitoring: PSI + Evidently against the champion's reference; debounced trigger of continuous_training.

At parse time only the Airflow SDK, the standard provider's TriggerDagRunOperator, ``mlops.config`` and
``mlops.airflow`` are imported; the check imports ``mlops.monitoring`` when it runs.
"""

from __future__ import annotations

from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.sdk import DAG, AssetOrTimeSchedule, CronDataIntervalTimetable, Param, task

from mlops.airflow import (
    DriftBreachNotifier,
    dag_defaults,
    error_policy,
    lake_sensor,
    partition_day,
    run_settings,
    scores_asset,
)
from mlops.airflow.links import DriftReportLink, add_links
from mlops.config import load_settings

settings = load_settings()
SCORES = scores_asset(settings)
DAY = "{{ ti.xcom_pull(task_ids='resolve_day') }}"
policy = settings.drift

DOC = f"""
### Watch `{settings.model_name}`'s inputs, scores and performance; retrain on drift

Runs after each day is scored (Asset `{SCORES.name}`) and daily on its own schedule. It compares the
last {policy.window_days} validated day(s) with the **reference profile stored with the champion** (never
re-reading training data):

* **feature drift**: PSI on the reference bins for every feature (breach at PSI >= {policy.psi_threshold},
  severe at >= {policy.severe_psi}) and a chi-square test per column;
* **prediction drift**: PSI of the score distribution;
* **performance drift** once delayed labels arrived: champion AUC-PR vs its holdout value (breach at a
  relative drop >= {policy.performance_drop});
* an **Evidently** data-drift report (HTML, seeded sample of {policy.report_sample_rows:,} rows) under `reports/drift/`.

Trigger policy: {policy.consecutive_windows} breaching window(s) in a row (or one severe breach), no trigger
within {policy.cooldown_days} day(s) after a training run, none while `continuous_training` is queued or
running. The trigger passes `{{reason, window, breached_features, report_uri}}` to `continuous_training`,
which records it on the MLflow run and the model version. Every breach goes through the drift notifier.
"""

with DAG(
    dag_id="drift_monitoring",
    description="Feature, prediction and performance drift vs the champion; debounced retraining trigger",
    schedule=AssetOrTimeSchedule(timetable=CronDataIntervalTimetable("@daily", timezone="UTC"), assets=SCORES),
    max_active_runs=1,
    doc_md=DOC,
    params={"date": Param(None, type=["null", "string"], format="date", description="check this day instead")},
    render_template_as_native_obj=True,
    **dag_defaults("drift", "evidently"),
) as dag:

    @task
    @error_policy
    def resolve_day(params: dict | None = None, dag_run=None, triggering_asset_events=None) -> str:  # type: ignore[no-untyped-def]
        """The day whose window is checked (params, scores event, or logical date)."""
        return partition_day(params, dag_run, triggering_asset_events)

    wait_for_scores = lake_sensor(
        settings,
        "wait_for_scores",
        f"scores/dt={DAY}/_SUCCESS",
        hint=f"scores/dt={DAY} did not appear: see the batch_scoring run of that day.",
    )

    @task
    @error_policy
    def check_drift(day: str, ti=None) -> dict:  # type: ignore[no-untyped-def]
        """Drift statistics, Evidently report, history entry and the trigger decision."""
        import datetime as dt

        from mlops.monitoring import check_day

        settings = run_settings()
        active = ti.get_dr_count(dag_id="continuous_training", states=["queued", "running"]) > 0
        outcome = check_day(settings, dt.date.fromisoformat(day), training_active=active)
        result = outcome.result
        if result["breached"]:
            DriftBreachNotifier(
                message=f"{settings.model_name} v{outcome.champion_version} dt={day}: "
                f"features {result['breached_features']}, severe={result['severe']}; report {outcome.report_uri}; "
                f"decision: {outcome.decision['reason']}",
                day=day,
            ).notify({"ti": ti})
        print(f"report: {outcome.report_uri}")
        return outcome.to_dict()

    @task.short_circuit
    @error_policy
    def should_retrain(outcome: dict) -> bool:
        """Only a debounced, out-of-cooldown breach with no training in flight goes on to the trigger."""
        print(f"decision: {outcome['decision']}")
        return bool(outcome["decision"]["trigger"])

    trigger = TriggerDagRunOperator(
        task_id="trigger_retraining",
        trigger_dag_id="continuous_training",
        conf="{{ ti.xcom_pull(task_ids='check_drift')['conf'] }}",
        wait_for_completion=False,
        retries=1,
    )

    day = resolve_day()
    outcome = add_links(check_drift(day), DriftReportLink())
    day >> wait_for_scores >> outcome
    should_retrain(outcome) >> trigger
