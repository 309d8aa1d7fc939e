"""batch_scoring: score every validated day once with the champion pinned once per run; atomic, idempotent output.

At parse time only the Airflow SDK, ``mlops.config`` and ``mlops.airflow`` are imported; the tasks import
the work (``mlops.models``, ``mlops.scoring``, ``mlops.data.lake``) when they run.
"""

from __future__ import annotations

import datetime as dt
from textwrap import dedent

from airflow.sdk import DAG, AssetOrTimeSchedule, CronDataIntervalTimetable, task

from mlops.airflow import (
    dag_defaults,
    error_policy,
    run_days,
    run_settings,
    scores_asset,
    validated_data_asset,
)
from mlops.airflow.assets import champion_asset
from mlops.airflow.defaults import scoring_deadline
from mlops.airflow.links import ScoresLink, add_links
from mlops.airflow.runs import follow_plan, max_map_length, run_param
from mlops.config import Settings

#: How the grid names a mapped ``score_chunk`` instead of its map index: the chunk's day and row range
#: (``dt=2026-07-07 rows 2,000-3,999``). Airflow renders it with the task's context, which holds the mapped
#: ``chunk`` once the task has run (``first_row`` comes from ``plan_chunks``).
CHUNK_NAME = (
    "dt={{ chunk.day }} rows {{ '{:,}'.format(chunk.first_row) }}-{{ '{:,}'.format(chunk.first_row + chunk.rows - 1) }}"
)


def build(settings: Settings) -> DAG:
    """``<model>__batch_scoring`` for the model of ``settings`` (what the DAG factory calls per model file)."""
    VALIDATED = validated_data_asset(settings)
    CHAMPION = champion_asset(settings)
    SCORES = scores_asset(settings)

    hours = settings.scoring.deadline_hours
    late = (
        f"a run that has not committed its scores {hours:g} h after it was queued (`scoring.deadline_hours`) sends a "
        "**LATE** alert naming this DAG, the run's day and the deadline (Airflow's deadline alert, run by the "
        "triggerer); a run that ends in time, or skipped, cancels it."
        if hours is not None
        else "none (`scoring.deadline_hours` is null): a late run sends no alert."
    )
    DOC = dedent(f"""
    ### Score every validated day once with the champion of `{settings.model_name}`

    Runs whenever a day is validated (Asset `{VALIDATED.name}`), whenever the champion changes (Asset
    `{CHAMPION.name}`) and as a sweep on `{settings.dags.scoring_schedule}` (logical date = the day that just ended). One run at a time. No run
    waits for data: the validated-data event of a day starts the run that scores it, so a late day never holds
    the one run slot.

    **What a run scores**: every validated day (`raw/dt=D/_VALIDATED.json`) up to the run's day (its logical
    date, `params.date` or its newest event's date: a backfill of an old date never scores newer days) that has
    no committed scores yet (`scores/dt=D/_SUCCESS`), oldest first, at most {settings.scoring.backlog_days} (`scoring.backlog_days`; the rest
    are scored by the next run, the log says how many wait). So days validated while there was no champion,
    during an outage or in a backfill are scored as soon as a champion exists, each exactly once, without
    anyone re-triggering anything. `params.date` names a day to score **again** (a re-score replaces its output).
    The day a run was started for (its logical date, or the validated-data events' dates) is scored like any
    waiting day; if it was scored already (e.g. by the run of its validated-data event), the log says
    `dt=D already scored by <run id> with v<version>` and the run does nothing more for it.

    **Runs that cannot do anything yet end SKIPPED, with the reason on the task**: no champion yet (the
    waiting days are scored by the run the first promotion starts), or nothing waiting.

    | step | what happens |
    |---|---|
    | `resolve_day` | the run's day(s): `params.date` (forced), else the triggering events' dates, else the logical date |
    | `pin_champion` | the run's plan: the waiting days up to the run's day, and alias `champion` resolved **once**; every task of the run uses that version (a promotion mid-run cannot mix models); SKIPPED when there is no champion or nothing waits |
    | `plan_chunks`, `days_of` | the planned days, each split by parquet row groups into at most {settings.scoring.max_chunks} chunks; checks the pinned model's feature columns before any scoring |
    | `score_chunk` (mapped over the chunks of every day, each named `dt=D rows A-B` in the grid) | streams record batches of {settings.scoring.batch_rows:,} rows: shared feature assembly, `inplace_predict`, parquet part in the day's staging area |
    | `commit_scores` (mapped over the days) | verifies the day's parts, writes `_STATS.json`, swaps `scores/dt=D/` into place, `_SUCCESS` last; one Asset event `{SCORES.name}` per day (date, model version, rows) |
    | `shadow_score` | with a distinct `challenger`, scores a sample of the run's newest day with both models into `scores/shadow/dt=D/` |

    Output columns: id, score, decision (threshold {settings.model.decision_threshold}), model version, model run id,
    Airflow run id, scored-at. Re-running a date replaces its output exactly; a killed run leaves no visible output
    (the next run scores the day). A day that breaks the model's inputs fails the run at once without retries when
    the run was asked for it (or when no waiting day can be scored); otherwise it is left out with a failure alert and
    the other days are scored (it stays waiting until it is fixed and re-validated). I/O failures are retried.

    **Deadline**: {late}
    """)

    with DAG(
        dag_id=settings.dag_id("batch_scoring"),
        description="Champion scoring of every validated day once (backlogs too): streaming, bounded memory, atomic output",
        schedule=AssetOrTimeSchedule(
            timetable=CronDataIntervalTimetable(settings.dags.scoring_schedule, timezone="UTC"),
            assets=VALIDATED | CHAMPION,
        ),
        max_active_runs=1,  # two runs never score the same day at once: the second one finds it scored
        doc_md=DOC,
        params={"date": run_param(None, type=["null", "string"], format="date", description="score this day (again)")},
        deadline=scoring_deadline(settings),
        **dag_defaults(settings, "scoring", "xgboost"),
    ) as dag:

        @task
        @error_policy
        def resolve_day(params: dict | None = None, dag_run=None, triggering_asset_events=None) -> dict:  # type: ignore[no-untyped-def]
            """The run's day(s) and its single scored-at time (re-runs write identical rows)."""
            requested = run_days(params or {}, dag_run, triggering_asset_events)
            scored_at = (dag_run.data_interval_end or dag_run.run_after).isoformat()
            print(f"run for {', '.join(f'dt={day}' for day in requested.days) or 'no particular day'} "
                  f"({requested.source}{', forced re-score' if requested.forced else ''})")  # fmt: skip
            return {**requested.to_dict(), "scored_at": scored_at}

        @task
        @error_policy
        def pin_champion(resolved: dict) -> dict:
            """The run's plan (`mlops.plans.plan_scoring`): the waiting days up to the run's day and the champion
            pinned once for all of them; SKIPPED with the plan's reason (no champion yet, nothing waits)."""
            from mlops.plans import plan_scoring

            plan = follow_plan(plan_scoring, run_settings(), resolved)
            pinned = plan.champion
            print(f"pinned {pinned.name} v{pinned.version} (run {pinned.run_id}) for this scoring run; "
                  f"{len(plan.days)} day(s) wait: {', '.join(day.isoformat() for day in plan.days)}")  # fmt: skip
            return {"pinned": pinned.to_dict(), "days": [day.isoformat() for day in plan.days]}

        @task
        @error_policy
        def plan_chunks(resolved: dict, planned: dict, run_id: str | None = None) -> list[dict]:
            """The planned days' row-group chunks (bounded); fails on missing features before anything is scored."""
            from mlops.airflow.notifiers import Alert, deliver
            from mlops.data.lake import Lake
            from mlops.models import PinnedModel
            from mlops.scoring import ScoringInputError
            from mlops.scoring import plan_chunks as plan

            settings = run_settings()
            lake = Lake.from_settings(settings)
            model = PinnedModel.from_dict(planned["pinned"])
            waiting = [dt.date.fromisoformat(day) for day in planned["days"]]
            budget = max_map_length()
            days: list[str] = []
            chunks: list[dict] = []
            unscorable: list[ScoringInputError] = []
            for index, day in enumerate(waiting):
                try:
                    planned_chunks = plan(settings, lake, day, model)
                except ScoringInputError as exc:
                    if resolved["forced"] and day.isoformat() in resolved["days"]:
                        raise  # a day asked for by name: fail at once, without retries
                    # One bad day must not hold the backlog back: the others are scored, this one is alerted on.
                    unscorable.append(exc)
                    deliver(Alert("failure", dag_id=settings.dag_id("batch_scoring"), day=day.isoformat(), task_id="plan_chunks",
                                  run_id=str(run_id), reason=f"dt={day} cannot be scored with v{model.version} and "
                                  f"was left out (the other waiting days are scored): {exc}"))  # fmt: skip
                    continue
                if days and len(chunks) + len(planned_chunks) > budget:
                    print(f"{len(waiting) - index} more day(s) from dt={day} wait for the next run "
                          f"(more than [core] max_map_length={budget} chunks in one run)")  # fmt: skip
                    break
                days.append(day.isoformat())
                first_row = 0  # where each chunk starts in its day: the grid names the chunk by its rows
                for chunk in planned_chunks:
                    chunks.append({**chunk.stamped(resolved["scored_at"], day).to_dict(), "first_row": first_row})
                    first_row += chunk.rows
            if not days:
                raise unscorable[0]  # every waiting day breaks the model's inputs: fail, without retries
            print(f"scoring {len(days)} day(s) with v{model.version}: {', '.join(days)} ({len(chunks)} chunk(s))")
            return chunks

        @task
        @error_policy
        def days_of(chunks: list[dict]) -> list[str]:
            """The days of the planned chunks, oldest first: one commit per day."""
            return sorted({chunk["day"] for chunk in chunks})

        @task(max_active_tis_per_dagrun=4, map_index_template=CHUNK_NAME)
        @error_policy
        def score_chunk(chunk: dict, planned: dict, run_id: str | None = None) -> dict:
            """Stream one chunk of one day through the pinned model into that day's staging area."""
            from mlops.data.lake import Lake
            from mlops.models import PinnedModel
            from mlops.scoring import Chunk
            from mlops.scoring import score_chunk as score

            settings = run_settings()
            day = dt.date.fromisoformat(str(Chunk.from_dict(chunk).day))
            pinned = PinnedModel.from_dict(planned["pinned"])
            result = score(settings, Lake.from_settings(settings), day, pinned, Chunk.from_dict(chunk), run_id)
            return result.to_dict()

        @task(outlets=[SCORES])
        @error_policy
        def commit_scores(day: str, results: list[dict], planned: dict, run_id: str | None = None,
                          outlet_events=None) -> dict:  # type: ignore[no-untyped-def]  # fmt: skip
            """Make one day's output visible atomically (`_SUCCESS` last) and announce it."""
            from mlops.data.lake import Lake
            from mlops.models import PinnedModel
            from mlops.scoring import ChunkResult
            from mlops.scoring import commit_scores as commit

            settings = run_settings()
            pinned = planned["pinned"]
            mine = [ChunkResult.from_dict(result) for result in results if result.get("day") == day]
            stats = commit(settings, Lake.from_settings(settings), dt.date.fromisoformat(day), PinnedModel.from_dict(pinned),
                           mine, run_id)  # fmt: skip
            outlet_events[SCORES].extra = {"date": day, "model_version": pinned["version"], "rows": stats["rows"]}
            print(f"dt={day}: {stats['rows']} rows scored with v{pinned['version']}, "
                  f"positive rate {stats['positive_rate']:.4f}")  # fmt: skip
            return stats

        @task
        @error_policy
        def shadow_score(days: list[str], planned: dict, run_id: str | None = None) -> dict | None:
            """Challenger beside champion on a sample of the run's newest day (never changes the champion's output)."""
            from mlops.data.lake import Lake
            from mlops.models import PinnedModel
            from mlops.scoring import shadow_score as shadow

            settings = run_settings()
            day = dt.date.fromisoformat(max(days))
            return shadow(settings, Lake.from_settings(settings), day, PinnedModel.from_dict(planned["pinned"]), run_id)

        resolved = resolve_day()
        planned = pin_champion(resolved)
        chunks = plan_chunks(resolved, planned)
        days = days_of(chunks)
        results = score_chunk.partial(planned=planned).expand(chunk=chunks)
        committed = add_links(commit_scores.partial(results=results, planned=planned).expand(day=days), ScoresLink())
        committed >> shadow_score(days, planned)
    return dag
