"""batch_scoring: score a validated day with the champion pinned once per run; atomic, idempotent output.

At parse time only the Airflow SDK, ``mlops.config`` and ``mlops.airflow`` are imported; the tasks import
the work (``mlops.models``, ``mlops.scoring``, ``mlops.data.lake``) when they run.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import DAG, AssetOrTimeSchedule, CronDataIntervalTimetable, Param, task

from mlops.airflow import (
    dag_defaults,
    error_policy,
    lake_sensor,
    partition_day,
    run_settings,
    scores_asset,
    validated_data_asset,
)
from mlops.airflow.links import ScoresLink, add_links
from mlops.config import load_settings

settings = load_settings()
VALIDATED = validated_data_asset(settings)
SCORES = scores_asset(settings)
DAY = "{{ ti.xcom_pull(task_ids='resolve_day')['day'] }}"

DOC = f"""
### Score each validated day with the champion of `{settings.model_name}`

Runs nightly for the day that just ended (logical date = partition date; safe under catchup and
backfill) and whenever a day is validated (Asset `{VALIDATED.name}`: the event names the day).

| step | what happens |
|---|---|
| `resolve_day` | the partition date: `params.date`, else the validated-data event's date, else the logical date |
| `wait_for_validated` | deferrable sensor on `raw/dt=D/_VALIDATED.json` |
| `pin_champion` | resolves alias `champion` **once**; every task of the run uses that version (a promotion mid-run cannot mix models) |
| `plan_chunks` | splits the day by parquet row groups into at most {settings.scoring.max_chunks} chunks; checks the pinned model's feature columns before any scoring |
| `score_chunk` (mapped) | streams record batches of {settings.scoring.batch_rows:,} rows: shared feature assembly, `inplace_predict`, parquet part in a staging area |
| `commit_scores` | verifies the parts, writes `_STATS.json`, swaps `scores/dt=D/` into place, `_SUCCESS` last; emits Asset `{SCORES.name}` |
| `shadow_score` | with a distinct `challenger`, scores a sample with both models into `scores/shadow/dt=D/` |

Output columns: id, score, decision (threshold {settings.model.decision_threshold}), model version, model run id,
Airflow run id, scored-at. Re-running a date replaces its output exactly; a killed run leaves no visible output.
No champion, or a day that breaks the model's inputs, fails at once without retries; I/O failures are retried.
"""

with DAG(
    dag_id="batch_scoring",
    description="Nightly champion scoring of validated days: streaming, bounded memory, atomic output",
    schedule=AssetOrTimeSchedule(timetable=CronDataIntervalTimetable("@daily", timezone="UTC"), assets=VALIDATED),
    max_active_runs=2,
    doc_md=DOC,
    params={"date": Param(None, type=["null", "string"], format="date", description="score this day instead")},
    **dag_defaults("scoring", "xgboost"),
) as dag:

    @task
    @error_policy
    def resolve_day(params: dict | None = None, dag_run=None, triggering_asset_events=None) -> dict:  # type: ignore[no-untyped-def]
        """Which partition this run scores, and the run's single scored-at time (re-runs write identical rows)."""
        day = partition_day(params, dag_run, triggering_asset_events)
        scored_at = (dag_run.data_interval_end or dag_run.run_after).isoformat()
        print(f"scoring dt={day}")
        return {"day": day, "scored_at": scored_at}

    wait_for_validated = lake_sensor(
        settings,
        "wait_for_validated",
        f"raw/dt={DAY}/_VALIDATED.json",
        hint=f"raw/dt={DAY} was not validated in time: see the data_validation run of that day.",
    )

    @task
    @error_policy
    def pin_champion() -> dict:
        """Resolve `champion` once for the whole run."""
        from mlops.models import pin_champion as pin

        settings = run_settings()
        pinned = pin(settings)
        print(f"pinned {pinned.name} v{pinned.version} (run {pinned.run_id}) for this scoring run")
        return pinned.to_dict()

    @task
    @error_policy
    def plan_chunks(resolved: dict, pinned: dict) -> list[dict]:
        """Row-group chunks (bounded count); fails on missing features before anything is scored."""
        from mlops.data.lake import Lake
        from mlops.models import PinnedModel
        from mlops.scoring import plan_chunks as plan

        settings = run_settings()
        day = dt.date.fromisoformat(resolved["day"])
        chunks = plan(settings, Lake.from_settings(settings), day, PinnedModel.from_dict(pinned))
        return [chunk.stamped(resolved["scored_at"]).to_dict() for chunk in chunks]

    @task(max_active_tis_per_dagrun=4)
    @error_policy
    def score_chunk(chunk: dict, resolved: dict, pinned: dict, run_id: str | None = None) -> dict:
        """Stream one chunk through the pinned model into the staging area."""
        from mlops.data.lake import Lake
        from mlops.models import PinnedModel
        from mlops.scoring import Chunk
        from mlops.scoring import score_chunk as score

        settings = run_settings()
        day = dt.date.fromisoformat(resolved["day"])
        result = score(settings, Lake.from_settings(settings), day, PinnedModel.from_dict(pinned),
                       Chunk.from_dict(chunk), run_id)  # fmt: skip
        return result.to_dict()

    @task(outlets=[SCORES])
    @error_policy
    def commit_scores(results: list[dict], resolved: dict, pinned: dict, run_id: str | None = None,
                      outlet_events=None) -> dict:  # type: ignore[no-untyped-def]  # fmt: skip
        """Make the day's output visible atomically (`_SUCCESS` last) and announce it."""
        from mlops.data.lake import Lake
        from mlops.models import PinnedModel
        from mlops.scoring import ChunkResult
        from mlops.scoring import commit_scores as commit

        settings = run_settings()
        day = dt.date.fromisoformat(resolved["day"])
        stats = commit(settings, Lake.from_settings(settings), day, PinnedModel.from_dict(pinned),
                       [ChunkResult.from_dict(result) for result in results], run_id)  # fmt: skip
        outlet_events[SCORES].extra = {"date": resolved["day"], "model_version": pinned["version"],
                                       "rows": stats["rows"]}  # fmt: skip
        print(f"dt={resolved['day']}: {stats['rows']} rows scored with v{pinned['version']}, "
              f"positive rate {stats['positive_rate']:.4f}")  # fmt: skip
        return stats

    @task
    @error_policy
    def shadow_score(resolved: dict, pinned: dict, run_id: str | None = None) -> dict | None:
        """Challenger beside champion on a sample, for comparison (never changes the champion's output)."""
        from mlops.data.lake import Lake
        from mlops.models import PinnedModel
        from mlops.scoring import shadow_score as shadow

        settings = run_settings()
        day = dt.date.fromisoformat(resolved["day"])
        return shadow(settings, Lake.from_settings(settings), day, PinnedModel.from_dict(pinned), run_id)

    resolved = resolve_day()
    pinned = pin_champion()
    chunks = plan_chunks(resolved, pinned)
    resolved >> wait_for_validated >> pinned
    results = score_chunk.partial(resolved=resolved, pinned=pinned).expand(chunk=chunks)
    committed = add_links(commit_scores(results, resolved, pinned), ScoresLink())
    committed >> shadow_score(resolved, pinned)
