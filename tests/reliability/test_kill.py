"""SIGKILL at every step of the commits that make things visible: nothing partial shows, nothing is lost.

Each case kills a real process (``faults.child``) at one named point of one step, then checks what a user of
the platform would see: readers trust only complete outputs (old, none or new, never a mixture), the
champion is where it was in MLflow and in the ledger, nothing half-registered can be promoted, and a re-run
of the step succeeds and gives its result exactly once.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from mlops.config import Settings
from mlops.data.lake import SUCCESS, Lake
from tests.reliability.faults import POINTS
from tests.reliability.world import (
    AS_OF,
    CANDIDATE_RUN,
    NEW_DAY,
    ROWS,
    SCORED_DAY,
    Base,
    alias_moves,
    champion,
    promotable,
    pull_revision,
    run_killed,
    scores_seen,
    side_folders,
    snapshot_commits,
    validated,
    versions_of_run,
)

pytestmark = pytest.mark.reliability


def points(step: str, xfail: dict[str, str] | None = None) -> list[Any]:
    """The step's kill points as test parameters; those in ``xfail`` (point -> the product bug) must fail."""
    xfail = xfail or {}
    return [pytest.param(point, marks=pytest.mark.xfail(strict=True, reason=xfail[point])) if point in xfail else point
            for point in POINTS[step]]  # fmt: skip


def env(home: Path) -> dict[str, str]:
    return {"MLOPS_HOME": str(home)}


def assert_champion_untouched(settings: Settings) -> None:
    assert champion(settings) == ("1", "1"), "MLflow's champion and the ledger head must still be version 1"


# -- batch scoring's commit -----------------------------------------------------------------------------------
#: What a scores reader sees once the commit was killed at each point.
SEEN_AFTER_KILL = {
    "before-the-swap": "old",
    "staging-moved-beside": "old",
    "stats-written": "old",
    "old-moved-away": "none",
    "new-moved-in": "none",
    "old-removed": "none",
    "data-synced": "none",
    "marker-half-written": "none",
    "marker-written": "new",
}


def stage_rescoring(settings: Settings, run_id: str) -> dict[str, Any]:
    """Score SCORED_DAY again into the run's staging folder (the mapped tasks), return the commit task's inputs."""
    from mlops.aliases import pin_champion
    from mlops.scoring import plan_chunks, score_chunk

    lake = Lake.from_settings(settings)
    pinned = pin_champion(settings)
    chunks = [chunk.stamped("2026-09-10T01:00:00+00:00") for chunk in plan_chunks(settings, lake, SCORED_DAY, pinned)]
    results = [score_chunk(settings, lake, SCORED_DAY, pinned, chunk, run_id).to_dict() for chunk in chunks]
    return {"env": env(settings.home), "day": SCORED_DAY.isoformat(), "pinned": pinned.to_dict(), "results": results,
            "run_id": run_id}  # fmt: skip


def seen(lake: Lake, base: Base, run_id: str) -> str:
    """'old', 'none' or 'new': what a reader of SCORED_DAY sees; anything else fails the test."""
    found = scores_seen(lake, SCORED_DAY)
    if found is None:
        return "none"
    table, stats = found
    if table.equals(base.old_scores) and stats == base.old_stats:
        return "old"
    assert table.num_rows == stats["rows"] == ROWS, "a trusted output must be complete"
    assert set(table.column("airflow_run_id").to_pylist()) == {run_id} == {stats["run_id"]}, "a mixture of runs"
    return "new"


def assert_scored_once(lake: Lake, settings: Settings, run_id: str) -> None:
    table, stats = scores_seen(lake, SCORED_DAY)
    ids = table.column(settings.dataset.id_column).to_pylist()
    assert len(ids) == len(set(ids)) == stats["rows"] == ROWS, "every row exactly once"
    assert set(table.column("airflow_run_id").to_pylist()) == {run_id} and stats["model_version"] == "1"
    assert side_folders(lake, "scores") == [], "the killed run's side folders are cleaned up"
    assert not lake.exists(f"{lake.partition('scores', SCORED_DAY)}/_staging"), "no staging is left inside the day"


@pytest.mark.parametrize("point", points("commit_scores"))
def test_killed_scoring_commit_shows_old_none_or_new_and_the_day_scores_again(
    point: str, forkserver: Any, base: Base, settings: Settings, tmp_path: Path
) -> None:
    lake = Lake.from_settings(settings)
    args = stage_rescoring(settings, "scheduled__killed")

    run_killed(forkserver, "commit_scores", point, args, tmp_path / "child.log")

    assert seen(lake, base, "scheduled__killed") == SEEN_AFTER_KILL[point]
    assert_champion_untouched(settings)

    from mlops.scoring import score_day  # what a cleared run of the day does: pin, plan, score, commit

    score_day(settings, SCORED_DAY, run_id="manual__rerun")
    assert_scored_once(lake, settings, "manual__rerun")


@pytest.mark.parametrize(
    "point",
    points("commit_scores"),
)
def test_a_retried_commit_task_completes_the_day(
    point: str, forkserver: Any, base: Base, settings: Settings, tmp_path: Path
) -> None:
    """Airflow retries the killed commit task alone, with the same staged parts and chunk results."""
    from mlops.models import PinnedModel
    from mlops.scoring import ChunkResult, commit_scores

    lake = Lake.from_settings(settings)
    args = stage_rescoring(settings, "scheduled__killed")
    run_killed(forkserver, "commit_scores", point, args, tmp_path / "child.log")

    results = [ChunkResult.from_dict(result) for result in args["results"]]
    commit_scores(settings, lake, SCORED_DAY, PinnedModel.from_dict(args["pinned"]), results, "scheduled__killed")
    assert seen(lake, base, "scheduled__killed") == "new"
    assert_scored_once(lake, settings, "scheduled__killed")


# -- data validation's publish (DVC snapshot, then _VALIDATED.json) ----------------------------------------------
@pytest.mark.parametrize("point", points("publish_validated"))
def test_killed_validation_publish_never_marks_a_day_it_cannot_serve(
    point: str, forkserver: Any, base: Base, settings: Settings, tmp_path: Path
) -> None:
    from mlops.validation import mark_validated
    from mlops.versioning import snapshot_partition

    lake = Lake.from_settings(settings)
    raw_files = [path.rsplit("/", 1)[-1] for path in lake.data_files(lake.partition("raw", NEW_DAY))]
    remote = str(Path(settings.dvc_remote_url).resolve())
    args = {"env": env(settings.home), "day": NEW_DAY.isoformat(), "verdict": base.verdict, "remote": remote}

    run_killed(forkserver, "publish_validated", point, args, tmp_path / "child.log")

    marker = validated(lake, NEW_DAY)
    if point == "marker-written":
        assert marker is not None and pull_revision(settings, marker["dvc"]["revision"], NEW_DAY, tmp_path) == raw_files
    else:
        assert marker is None, "a day must not be marked validated before its snapshot is in the remote"
    assert NEW_DAY in lake.days("raw", SUCCESS) and lake.data_files(lake.partition("raw", NEW_DAY)), "data kept"
    assert_champion_untouched(settings)

    snapshot = snapshot_partition(settings, lake, NEW_DAY, base.verdict["rows"])  # the tasks, retried
    mark_validated(lake, NEW_DAY, base.verdict, snapshot.to_dict())
    marker = validated(lake, NEW_DAY)
    assert marker is not None and marker["dvc"]["revision"] == snapshot.revision
    assert snapshot_commits(settings, NEW_DAY) == [snapshot.revision], "one snapshot commit for the day"
    assert pull_revision(settings, snapshot.revision, NEW_DAY, tmp_path / "after") == raw_files, "in the remote"


# -- training -----------------------------------------------------------------------------------------------------
def finished_runs(settings: Settings, airflow_run_id: str) -> list[str]:
    import mlflow

    from mlops import models

    experiment = models.experiment_id(settings)
    runs = mlflow.search_runs([experiment], filter_string=f"tags.`{models.Tags.AIRFLOW_RUN_ID}` = '{airflow_run_id}' "
                              "and attributes.status = 'FINISHED'", output_format="list")  # fmt: skip
    return [run.info.run_id for run in runs]


@pytest.mark.parametrize("point", points("train"))
def test_killed_training_leaves_no_finished_run_and_a_retry_trains(
    point: str, forkserver: Any, base: Base, settings: Settings, tmp_path: Path
) -> None:
    from mlops import models
    from mlops.training.snapshot import TrainingSnapshot
    from mlops.training.train import train

    airflow_run = f"manual__killed-{point}"
    trigger = {"reason": "fault suite", "airflow_dag_id": "continuous_training", "airflow_run_id": airflow_run}
    before = promotable(settings)
    args = {"env": env(settings.home), "snapshot": base.snapshot, "trigger": trigger}

    run_killed(forkserver, "train", point, args, tmp_path / "child.log")

    with pytest.raises(LookupError):  # what assess looks for: a FINISHED run of this Airflow run
        models.find_training_run(settings, "continuous_training", airflow_run)
    assert promotable(settings) == before
    assert_champion_untouched(settings)

    result = train(settings, TrainingSnapshot.from_dict(base.snapshot), trigger)
    found = models.find_training_run(settings, "continuous_training", airflow_run)
    assert found.run_id == result.run_id and finished_runs(settings, airflow_run) == [result.run_id]
    assert models.load_booster(settings, found.model_uri).num_boosted_rounds() == result.rounds


# -- registration ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("point", points("register"))
def test_killed_registration_leaves_nothing_half_promotable_and_a_retry_registers_once(
    point: str, forkserver: Any, base: Base, settings: Settings, tmp_path: Path
) -> None:
    from mlops.ledger import Ledger
    from mlops.models import CHALLENGER, Tags
    from mlops.registry import Registry
    from mlops.training.pipeline import Assessment, register

    run_id = base.assessment["run_id"]
    args = {"env": env(settings.home), "assessment": base.assessment, "actor": "airflow:continuous_training",
            "run": CANDIDATE_RUN}  # fmt: skip

    run_killed(forkserver, "register", point, args, tmp_path / "child.log")

    for version, tags in versions_of_run(settings, run_id).items():
        if tags.get(Tags.GATES_PASSED) == "true":  # promotable: then it must carry its whole evidence
            missing = {key for key in base.assessment["evidence"] if key not in tags}
            assert not missing, f"version {version} can be promoted but lacks {missing}"
    assert_champion_untouched(settings)

    version = register(settings, Assessment.from_dict(base.assessment), actor="airflow:continuous_training",
                       run=CANDIDATE_RUN)  # fmt: skip
    assert list(versions_of_run(settings, run_id)) == [version], "one version per training run"
    assert versions_of_run(settings, run_id)[version][Tags.GATES_PASSED] == "true"
    ledger = Ledger(settings.ledger_uri)
    try:
        assert ledger.head(settings.model_name, CHALLENGER) == version
    finally:
        ledger.dispose()
    assert Registry(settings).alias_version(CHALLENGER) == version
    assert_champion_untouched(settings)


# -- promotion ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("point", points("promote"))
def test_killed_promotion_moves_the_champion_completely_or_not_at_all_and_a_retry_finishes(
    point: str, forkserver: Any, base: Base, settings: Settings, tmp_path: Path
) -> None:
    from mlops.aliases import alias_version
    from mlops.models import CHAMPION
    from mlops.training.pipeline import Assessment, promote, register

    version = register(settings, Assessment.from_dict(base.assessment), actor="airflow:continuous_training",
                       run=CANDIDATE_RUN)  # fmt: skip
    run = f"manual__promote-{point}"
    moves = alias_moves(settings)
    args = {"env": env(settings.home), "version": version, "expected": "1", "actor": "airflow:continuous_training",
            "reason": "fault suite", "run": run}  # fmt: skip

    run_killed(forkserver, "promote", point, args, tmp_path / "child.log")

    # The ledger commits first and MLflow mirrors it: killed in between, MLflow is one move behind until
    # the next reader (scoring, monitoring, the CLI) or the retry brings it up to the ledger head.
    resolved = alias_version(settings, CHAMPION)
    mlflow_alias, ledger_head = champion(settings)
    assert mlflow_alias == ledger_head == resolved, f"MLflow says v{mlflow_alias}, the ledger v{ledger_head}"
    if ledger_head == "1":
        assert alias_moves(settings) == moves, "nothing recorded for a move that did not happen"
    else:
        assert ledger_head == version and alias_moves(settings) == [*moves, (CHAMPION, "1", version, run)]

    move = promote(settings, version, "1", actor="airflow:continuous_training", reason="fault suite", run=run)
    assert (move["from_version"], move["to_version"]) == ("1", version)
    assert champion(settings) == (version, version)
    assert [m for m in alias_moves(settings) if m[0] == CHAMPION and m[3] == run] == [(CHAMPION, "1", version, run)]


def test_the_base_state_is_what_the_cases_assume(base: Base, settings: Settings) -> None:
    """Guards the fixtures: if this fails, every case above may pass or fail for the wrong reason."""
    lake = Lake.from_settings(settings)
    assert champion(settings) == ("1", "1")
    assert lake.days("raw", "_VALIDATED.json")[-1] == SCORED_DAY and NEW_DAY not in lake.days("raw", "_VALIDATED.json")
    assert scores_seen(lake, SCORED_DAY) is not None and base.assessment["passed"]
    assert dt.date.fromisoformat(base.snapshot["as_of"]) == AS_OF
