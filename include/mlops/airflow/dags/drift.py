"""drift_monitoring: PSI + Evidently against the champion's reference; debounced trigger of continuous_training.

At parse time only the Airflow SDK, the standard provider's TriggerDagRunOperator, ``mlops.config`` and
``mlops.airflow`` are imported; the check imports ``mlops.monitoring`` when it runs.
"""

from __future__ import annotations

from textwrap import dedent

from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.sdk import DAG, AssetOrTimeSchedule, CronDataIntervalTimetable, task

from mlops.airflow import (
    DriftBreachNotifier,
    dag_defaults,
    error_policy,
    run_days,
    run_settings,
    scores_asset,
)
from mlops.airflow.links import DriftReportLink, add_links
from mlops.airflow.runs import follow_plan, run_param
from mlops.config import Settings


def build(settings: Settings) -> DAG:
    """``<model>__drift_monitoring`` for the model of ``settings`` (what the DAG factory calls per model file)."""
    SCORES = scores_asset(settings)
    policy = settings.drift

    DOC = dedent(f"""
    ### Watch `{settings.model_name}`'s inputs, scores and performance; retrain on drift

    Runs after days are scored (Asset `{SCORES.name}`) and daily as a sweep; one run at a time. No run waits
    for data: a day's scores event starts the run that checks it.

    **What a run checks**: every scored day (`scores/dt=D/_SUCCESS`) that has no drift-history entry yet,
    oldest first, at most {policy.backlog_days} (`drift.backlog_days`; the rest are checked by the next run). So a
    backlog scored in one go (after a backfill, an outage or a first champion) is checked day by day, in order,
    each day once; the trigger decision sees each day's predecessors. `params.date` names a day to check
    **again**. A day already checked is not checked again: the log says so. A run checks only days up to its
    own day (its logical date, `params.date` or its newest event's date), so a backfill or a re-run of an old
    date never judges newer data, and never the days the champion was trained on (its reference comes from them). **A run that cannot do anything
    yet ends SKIPPED, with the reason on the task**: no champion, or no scored day waiting for its check.

    Each day's window (the last {policy.window_days} validated day(s) up to it) is compared with the
    **reference profile stored with the champion** (never re-reading training data):

    * **feature drift**: PSI on the reference bins for every feature (breach at PSI >= {policy.psi_threshold},
      severe at >= {policy.severe_psi}) and a chi-square test per column;
    * **prediction drift**: PSI of the score distribution;
    * **performance drift** once delayed labels arrived: champion AUC-PR vs its holdout value (breach at a
      relative drop >= {policy.performance_drop});
    * an **Evidently** data-drift report (HTML, seeded sample of {policy.report_sample_rows:,} rows) under `reports/drift/`.

    Trigger policy: {policy.consecutive_windows} breaching window(s) in a row (or one severe breach), no trigger
    within {policy.cooldown_days} day(s) after a training run, none while `{settings.dag_id("continuous_training")}` is queued or
    running; at most one trigger per run (the days after a triggering day see a training as active). The trigger
    passes `{{reason, drift: {{window, breached_features, report_uri}}}}` of the triggering day to `{settings.dag_id("continuous_training")}`,
    which records it on the MLflow run and the model version. Every breach goes through the drift notifier.

    | step | what happens |
    |---|---|
    | `resolve_day` | the run's day(s): `params.date` (forced), else the scores events' dates, else the logical date |
    | `check_drift` | the waiting days, oldest first: statistics, Evidently report, history entry and trigger decision each |
    | `should_retrain` | only a debounced, out-of-cooldown breach goes on |
    | `trigger_retraining` | queues `{settings.dag_id("continuous_training")}` with the evidence |
    """)

    with DAG(
        dag_id=settings.dag_id("drift_monitoring"),
        description="Feature, prediction and performance drift vs the champion; debounced retraining trigger",
        schedule=AssetOrTimeSchedule(
            timetable=CronDataIntervalTimetable(settings.dags.drift_schedule, timezone="UTC"), assets=SCORES
        ),
        max_active_runs=1,
        doc_md=DOC,
        params={"date": run_param(None, type=["null", "string"], format="date", description="check this day (again)")},
        render_template_as_native_obj=True,
        **dag_defaults(settings, "drift", "evidently"),
    ) as dag:

        @task
        @error_policy
        def resolve_day(params: dict | None = None, dag_run=None, triggering_asset_events=None) -> dict:  # type: ignore[no-untyped-def]
            """The run's day(s): params, the scores events' dates, or the logical date (no run waits for data)."""
            requested = run_days(params or {}, dag_run, triggering_asset_events)
            print(f"run for {', '.join(f'dt={day}' for day in requested.days) or 'no particular day'} "
                  f"({requested.source}{', forced re-check' if requested.forced else ''})")  # fmt: skip
            return requested.to_dict()

        @task
        @error_policy
        def check_drift(resolved: dict, ti=None) -> dict:  # type: ignore[no-untyped-def]
            """Each waiting day, oldest first: drift statistics, Evidently report, history entry, trigger decision."""

            from mlops.monitoring import check_days
            from mlops.plans import plan_drift

            settings = run_settings()
            days = follow_plan(plan_drift, settings, resolved).days
            print(f"checking {len(days)} day(s), oldest first: {', '.join(d.isoformat() for d in days)}")
            active = ti.get_dr_count(dag_id=settings.dag_id("continuous_training"), states=["queued", "running"]) > 0
            outcomes = check_days(settings, days, training_active=active)
            for day, outcome in zip(sorted(days), outcomes, strict=True):
                result = outcome.result
                print(f"dt={day}: breached={result['breached']} severe={result['severe']} -> {outcome.decision['reason']}; "
                      f"report: {outcome.report_uri}")  # fmt: skip
                if result["breached"]:
                    DriftBreachNotifier(
                        message=f"{settings.model_name} v{outcome.champion_version} dt={day}: "
                        f"features {result['breached_features']}, severe={result['severe']}; report {outcome.report_uri}; "
                        f"decision: {outcome.decision['reason']}",
                        day=day.isoformat(),
                    ).notify({"ti": ti})
            # What goes on: the triggering day's outcome (at most one per run), else the newest day's.
            chosen = next((outcome for outcome in outcomes if outcome.trigger), outcomes[-1])
            return {**chosen.to_dict(), "checked": [d.isoformat() for d in sorted(days)]}

        @task.short_circuit
        @error_policy
        def should_retrain(outcome: dict) -> bool:
            """Only a debounced, out-of-cooldown breach with no training in flight goes on to the trigger."""
            print(f"decision: {outcome['decision']}")
            return bool(outcome["decision"]["trigger"])

        trigger = TriggerDagRunOperator(
            task_id="trigger_retraining",
            trigger_dag_id=settings.dag_id("continuous_training"),  # this model's own, never another's
            conf="{{ ti.xcom_pull(task_ids='check_drift')['conf'] }}",
            wait_for_completion=False,
            retries=1,
        )

        resolved = resolve_day()
        outcome = add_links(check_drift(resolved), DriftReportLink())
        should_retrain(outcome) >> trigger
    return dag
