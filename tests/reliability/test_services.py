"""Services taken away mid-run: MLflow, the DVC remote, the ledger database, lake writes.

Each case takes a real service away at a precise moment of a step (the MLflow server process is SIGKILLed,
the Postgres cluster shut down immediately, the DVC remote replaced by a file, lake writes refused with the
errno of a read-only or full disk), then checks: the step fails with one clear error, nothing partial is
visible, the champion is where it was, and once the service is back a re-run succeeds exactly once.
"""

from __future__ import annotations

import errno
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine

from mlops.config import Settings
from mlops.data.lake import SUCCESS, Lake
from tests.reliability.world import (
    CANDIDATE_RUN,
    NEW_DAY,
    ROWS,
    SCORED_DAY,
    Base,
    MlflowServer,
    Postgres,
    alias_moves,
    champion,
    lake_writes_fail,
    promotable,
    pull_revision,
    scores_seen,
    settings_for,
    side_folders,
    validated,
    versions_of_run,
)

pytestmark = pytest.mark.reliability


@pytest.fixture
def mlflow_server(forkserver: Any, home: Path, tmp_path: Path) -> Iterator[MlflowServer]:
    server = MlflowServer(forkserver, home, tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def served(home: Path, mlflow_server: MlflowServer) -> Settings:
    """The case's home with MLflow behind its tracking server (as in docker compose)."""
    return settings_for(home, MLOPS__MLFLOW__TRACKING_URI=mlflow_server.uri)


def away_when_called(monkeypatch: pytest.MonkeyPatch, owner: Any, name: str, take_away: Callable[[], None]) -> None:
    """Take the service away the moment ``owner.name`` is first called (the call itself then meets the outage)."""
    real = getattr(owner, name)
    taken: list[bool] = []

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not taken:
            taken.append(True)
            take_away()
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, wrapper)


def one_line(error: BaseException) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


# -- MLflow away ---------------------------------------------------------------------------------------------------
def test_mlflow_away_during_promotion_keeps_the_ledger_move_and_the_retry_mirrors_it(
    served: Settings, mlflow_server: MlflowServer, base: Base, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlflow import MlflowClient

    from mlops.training.pipeline import Assessment, promote, register

    version = register(served, Assessment.from_dict(base.assessment), actor="airflow:ct", run=CANDIDATE_RUN)
    moves = alias_moves(served)
    away_when_called(monkeypatch, MlflowClient, "set_registered_model_alias", mlflow_server.stop)
    with pytest.raises(Exception, match=rf"127\.0\.0\.1:{mlflow_server.port}") as failure:
        promote(served, version, "1", actor="airflow:ct", reason="fault suite", run="manual__mlflow-away")
    monkeypatch.undo()
    assert str(mlflow_server.port) in one_line(failure.value), "the error names the server that went away"

    mlflow_server.start()
    # The ledger (the truth) committed the move; MLflow's alias, its mirror, is one move behind.
    assert champion(served) == ("1", version) and alias_moves(served) == [*moves, ("champion", "1", version,
                                                                                    "manual__mlflow-away")]  # fmt: skip
    promote(served, version, "1", actor="airflow:ct", reason="fault suite", run="manual__mlflow-away")
    assert champion(served) == (version, version) and len(alias_moves(served)) == len(moves) + 1


def test_mlflow_away_during_registration_leaves_nothing_promotable_and_the_retry_registers_once(
    served: Settings, mlflow_server: MlflowServer, base: Base, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlflow import MlflowClient

    from mlops.training.pipeline import Assessment, register

    before = promotable(served)
    real_create = MlflowClient.create_model_version

    def created_then_away(*args: Any, **kwargs: Any) -> Any:
        created = real_create(*args, **kwargs)
        mlflow_server.stop()  # the version exists; nothing after it reaches MLflow
        return created

    monkeypatch.setattr(MlflowClient, "create_model_version", created_then_away)
    with pytest.raises(Exception, match=rf"127\.0\.0\.1:{mlflow_server.port}"):
        register(served, Assessment.from_dict(base.assessment), actor="airflow:ct", run=CANDIDATE_RUN)
    monkeypatch.undo()

    mlflow_server.start()
    assert promotable(served) == before, "a version left behind by the outage must not be promotable"
    assert champion(served) == ("1", "1")
    version = register(served, Assessment.from_dict(base.assessment), actor="airflow:ct", run=CANDIDATE_RUN)
    assert list(versions_of_run(served, base.assessment["run_id"])) == [version], "one version per training run"
    assert promotable(served) == {*before, version}


def test_mlflow_away_during_training_finishes_no_run_and_the_retry_trains(
    served: Settings, mlflow_server: MlflowServer, base: Base, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mlflow.xgboost

    from mlops import models
    from mlops.training.snapshot import TrainingSnapshot
    from mlops.training.train import train

    trigger = {"reason": "fault suite", "airflow_dag_id": "continuous_training", "airflow_run_id": "manual__away"}
    snapshot = TrainingSnapshot.from_dict(base.snapshot)
    away_when_called(monkeypatch, mlflow.xgboost, "log_model", mlflow_server.stop)
    with pytest.raises(Exception, match=rf"127\.0\.0\.1:{mlflow_server.port}"):
        train(served, snapshot, trigger)
    monkeypatch.undo()

    mlflow_server.start()
    with pytest.raises(LookupError):
        models.find_training_run(served, "continuous_training", "manual__away")
    result = train(served, snapshot, trigger)
    assert models.find_training_run(served, "continuous_training", "manual__away").run_id == result.run_id
    assert champion(served) == ("1", "1")


def test_mlflow_away_during_scoring_keeps_the_old_output_and_the_retry_scores(
    served: Settings, mlflow_server: MlflowServer, base: Base, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlops import models
    from mlops.scoring import score_day

    lake = Lake.from_settings(served)
    away_when_called(monkeypatch, models, "load_booster", mlflow_server.stop)  # pinned, then the model is fetched
    with pytest.raises(Exception, match=rf"127\.0\.0\.1:{mlflow_server.port}"):
        score_day(served, SCORED_DAY, run_id="scheduled__mlflow-away")
    monkeypatch.undo()

    table, stats = scores_seen(lake, SCORED_DAY)
    assert table.equals(base.old_scores) and stats == base.old_stats, "readers still see the last good output"
    mlflow_server.start()
    score_day(served, SCORED_DAY, run_id="scheduled__mlflow-back")
    table, stats = scores_seen(lake, SCORED_DAY)
    assert set(table.column("airflow_run_id").to_pylist()) == {"scheduled__mlflow-back"} and stats["rows"] == ROWS
    assert champion(served) == ("1", "1")


# -- the DVC remote away -------------------------------------------------------------------------------------------
def test_dvc_remote_away_during_validation_marks_nothing_and_the_retry_publishes(
    settings: Settings, base: Base, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dvc.repo import Repo

    from mlops.validation import mark_validated
    from mlops.versioning import snapshot_partition

    lake = Lake.from_settings(settings)
    remote = Path(settings.dvc_remote_url)
    parked = tmp_path / "remote-parked"

    def remote_away() -> None:  # the mount is gone: a plain file where the remote was, not even root writes there
        shutil.move(remote, parked)
        remote.write_text("not a DVC remote")

    away_when_called(monkeypatch, Repo, "push", remote_away)
    with pytest.raises(Exception) as failure:
        snapshot_partition(settings, lake, NEW_DAY, base.verdict["rows"])
    monkeypatch.undo()
    assert str(remote) in one_line(failure.value), "one line names the remote that failed"
    assert validated(lake, NEW_DAY) is None, "a day whose data is not in the remote is never marked validated"

    remote.unlink()
    shutil.move(parked, remote)
    snapshot = snapshot_partition(settings, lake, NEW_DAY, base.verdict["rows"])
    mark_validated(lake, NEW_DAY, base.verdict, snapshot.to_dict())
    marker = validated(lake, NEW_DAY)
    assert marker is not None and marker["dvc"]["revision"] == snapshot.revision
    raw_files = [path.rsplit("/", 1)[-1] for path in lake.data_files(lake.partition("raw", NEW_DAY))]
    assert pull_revision(settings, snapshot.revision, NEW_DAY, tmp_path) == raw_files


# -- the ledger database away (Postgres) ---------------------------------------------------------------------------
@pytest.fixture
def on_postgres(home: Path, postgres: Postgres, base: Base) -> Settings:
    """The case's home with its ledger on a fresh Postgres database: the gate verdicts ``assess`` recorded (v1's
    and the candidate's) moved with it, seeded with MLflow's aliases (both v1)."""
    from mlops.ledger import Ledger
    from mlops.models import CHALLENGER, CHAMPION
    from mlops.registry import Registry

    settings = settings_for(home, MLOPS__REGISTRY__LEDGER_URI=postgres.new_database())
    registry = Registry(settings)
    was = Ledger(settings_for(home).ledger_uri)
    try:
        for run_id in (registry.client.get_model_version(settings.model_name, "1").run_id, base.assessment["run_id"]):
            verdict = was.verdict(settings.model_name, str(run_id))
            assert verdict is not None, f"assess recorded no verdict for training run {run_id}"
            registry.ledger().record_verdict(verdict)
    finally:
        was.dispose()
    for alias in (CHAMPION, CHALLENGER):
        registry.resync_alias(alias, actor="fixture", reason="ledger moved to Postgres", run="fixture", trust="mlflow")
    registry.ledger().dispose()
    assert champion(settings) == ("1", "1")
    return settings


def test_ledger_database_away_before_promotion_fails_cleanly_and_the_retry_promotes(
    on_postgres: Settings, postgres: Postgres, base: Base
) -> None:
    from mlops.errors import InfrastructureError
    from mlops.training.pipeline import Assessment, promote, register

    settings = on_postgres
    version = register(settings, Assessment.from_dict(base.assessment), actor="airflow:ct", run=CANDIDATE_RUN)
    postgres.stop()
    try:
        with pytest.raises(InfrastructureError, match="ledger database"):  # retried by Airflow, with backoff
            promote(settings, version, "1", actor="airflow:ct", reason="fault suite", run="manual__db-away")
    finally:
        postgres.start()
    assert champion(settings) == ("1", "1")
    promote(settings, version, "1", actor="airflow:ct", reason="fault suite", run="manual__db-away")
    assert champion(settings) == (version, version)


def test_ledger_database_away_under_the_lock_rolls_back_and_the_retry_promotes(
    on_postgres: Settings, postgres: Postgres, base: Base, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The database dies after the head row was locked and read, before the move is written."""
    from mlops.errors import InfrastructureError
    from mlops.ledger import Ledger
    from mlops.training.pipeline import Assessment, promote, register

    settings = on_postgres
    version = register(settings, Assessment.from_dict(base.assessment), actor="airflow:ct", run=CANDIDATE_RUN)
    moves = alias_moves(settings)
    real = Ledger.locked_head
    taken: list[str | None] = []

    @contextmanager
    def away_once_locked(self: Ledger, model: str, alias: str) -> Iterator[tuple[Any, str | None]]:
        with real(self, model, alias) as (conn, head):
            taken.append(head)
            postgres.stop()
            yield conn, head

    monkeypatch.setattr(Ledger, "locked_head", away_once_locked)
    try:
        with pytest.raises(InfrastructureError, match="ledger database"):
            promote(settings, version, "1", actor="airflow:ct", reason="fault suite", run="manual__db-away")
    finally:
        monkeypatch.undo()
        postgres.start()
    assert taken == ["1"], "the database was not taken away inside the move"
    assert champion(settings) == ("1", "1") and alias_moves(settings) == moves
    promote(settings, version, "1", actor="airflow:ct", reason="fault suite", run="manual__db-away")
    assert champion(settings) == (version, version)


def test_ledger_database_away_at_the_commit_leaves_the_champion_where_it_was(
    on_postgres: Settings, postgres: Postgres, base: Base, monkeypatch: pytest.MonkeyPatch
) -> None:

    from mlops.training.pipeline import Assessment, promote, register

    settings = on_postgres
    version = register(settings, Assessment.from_dict(base.assessment), actor="airflow:ct", run=CANDIDATE_RUN)

    def database_away_at_commit(conn: Any) -> None:  # the move is written; its COMMIT never reaches the server
        if conn.engine.url.get_backend_name() == "postgresql":
            postgres.stop()

    event.listen(Engine, "commit", database_away_at_commit)
    try:
        with pytest.raises(Exception, match="ledger database|server closed|terminat|connection"):
            promote(settings, version, "1", actor="airflow:ct", reason="fault suite", run="manual__db-away")
    finally:
        event.remove(Engine, "commit", database_away_at_commit)
        postgres.start()
    assert champion(settings) == ("1", "1"), "no commit, no move: MLflow mirrors only committed moves"
    promote(settings, version, "1", actor="airflow:ct", reason="fault suite", run="manual__db-away")
    assert champion(settings) == (version, version)


def test_mlflow_away_after_the_ledger_commit_is_caught_up_by_the_retry(
    on_postgres: Settings, base: Base, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlflow import MlflowClient

    from mlops.aliases import alias_version
    from mlops.errors import InfrastructureError
    from mlops.models import CHAMPION
    from mlops.training.pipeline import Assessment, promote, register

    settings = on_postgres
    version = register(settings, Assessment.from_dict(base.assessment), actor="airflow:ct", run=CANDIDATE_RUN)
    real = MlflowClient.set_registered_model_alias

    def mlflow_away(self: MlflowClient, name: str, alias: str, to: str) -> None:
        if alias == CHAMPION:
            raise ConnectionError("mlflow server went away")
        real(self, name, alias, to)

    monkeypatch.setattr(MlflowClient, "set_registered_model_alias", mlflow_away)
    with pytest.raises(InfrastructureError, match="brings MLflow up to the ledger"):
        promote(settings, version, "1", actor="airflow:ct", reason="fault suite", run="manual__mlflow-away")
    monkeypatch.undo()
    assert champion(settings) == ("1", version), "the ledger recorded the move; MLflow is one move behind"
    move = promote(settings, version, "1", actor="airflow:ct", reason="fault suite", run="manual__mlflow-away")
    assert (move["from_version"], move["to_version"]) == ("1", version)
    assert champion(settings) == (version, version) and alias_version(settings, CHAMPION) == version


def test_ledger_database_away_during_registration_registers_nothing_and_the_retry_registers_once(
    on_postgres: Settings, postgres: Postgres, base: Base
) -> None:
    from mlops.errors import InfrastructureError
    from mlops.training.pipeline import Assessment, register

    settings = on_postgres
    postgres.stop()
    try:
        with pytest.raises(InfrastructureError, match="ledger database"):
            register(settings, Assessment.from_dict(base.assessment), actor="airflow:ct", run=CANDIDATE_RUN)
    finally:
        postgres.start()
    assert versions_of_run(settings, base.assessment["run_id"]) == {}, "no version without its ledger record"
    version = register(settings, Assessment.from_dict(base.assessment), actor="airflow:ct", run=CANDIDATE_RUN)
    assert list(versions_of_run(settings, base.assessment["run_id"])) == [version]
    assert champion(settings) == ("1", "1")


# -- lake writes away ------------------------------------------------------------------------------------------------
def test_read_only_lake_at_the_scoring_commit_keeps_the_old_output_and_the_retried_commit_completes(
    settings: Settings, base: Base
) -> None:
    from mlops.aliases import pin_champion
    from mlops.scoring import commit_scores, plan_chunks, score_chunk

    lake = Lake.from_settings(settings)
    pinned = pin_champion(settings)
    chunks = [chunk.stamped("2026-09-10T01:00:00+00:00") for chunk in plan_chunks(settings, lake, SCORED_DAY, pinned)]
    results = [score_chunk(settings, lake, SCORED_DAY, pinned, chunk, "scheduled__ro") for chunk in chunks]
    with lake_writes_fail(lake.root, errno.EROFS) as refused, pytest.raises(OSError, match="Read-only file system"):
        commit_scores(settings, lake, SCORED_DAY, pinned, results, "scheduled__ro")
    assert refused, "no write was refused: the fault was not injected"
    table, stats = scores_seen(lake, SCORED_DAY)
    assert table.equals(base.old_scores) and stats == base.old_stats

    commit_scores(settings, lake, SCORED_DAY, pinned, results, "scheduled__ro")  # the disk is writable again
    table, stats = scores_seen(lake, SCORED_DAY)
    assert set(table.column("airflow_run_id").to_pylist()) == {"scheduled__ro"} and stats["rows"] == ROWS
    assert side_folders(lake, "scores") == []


def test_full_disk_in_the_middle_of_the_scoring_commit_keeps_the_old_output_and_the_day_scores_again(
    settings: Settings, base: Base
) -> None:
    from mlops.scoring import score_day

    lake = Lake.from_settings(settings)
    real_commit = __import__("mlops.scoring.score", fromlist=["commit_staged"]).commit_staged

    def full_after_the_first_rename(*args: Any, **kwargs: Any) -> None:
        with lake_writes_fail(lake.root, errno.ENOSPC, after=1):  # the staging moved aside, then the disk is full
            real_commit(*args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("mlops.scoring.score.commit_staged", full_after_the_first_rename)
        with pytest.raises(OSError, match="No space left on device"):
            score_day(settings, SCORED_DAY, run_id="scheduled__full")
    table, stats = scores_seen(lake, SCORED_DAY)
    assert table.equals(base.old_scores) and stats == base.old_stats

    score_day(settings, SCORED_DAY, run_id="scheduled__space-again")
    table, stats = scores_seen(lake, SCORED_DAY)
    assert set(table.column("airflow_run_id").to_pylist()) == {"scheduled__space-again"} and stats["rows"] == ROWS
    assert side_folders(lake, "scores") == [] and champion(settings) == ("1", "1")


def test_full_disk_when_marking_a_day_validated_marks_nothing_and_the_retry_marks_it(
    settings: Settings, base: Base
) -> None:
    from mlops.validation import mark_validated
    from mlops.versioning import snapshot_partition

    lake = Lake.from_settings(settings)
    snapshot = snapshot_partition(settings, lake, NEW_DAY, base.verdict["rows"]).to_dict()
    with lake_writes_fail(lake.root, errno.ENOSPC), pytest.raises(OSError, match="No space left on device"):
        mark_validated(lake, NEW_DAY, base.verdict, snapshot)
    assert validated(lake, NEW_DAY) is None and NEW_DAY not in lake.days("raw", "_VALIDATED.json")

    mark_validated(lake, NEW_DAY, base.verdict, snapshot)
    assert validated(lake, NEW_DAY)["dvc"]["revision"] == snapshot["revision"]


def test_full_disk_while_a_producer_lands_a_day_shows_nothing_and_the_retry_lands_it(settings: Settings) -> None:
    from mlops.data.landing import land_days

    lake = Lake.from_settings(settings)
    day = NEW_DAY.replace(day=NEW_DAY.day + 5)
    with lake_writes_fail(lake.root, errno.ENOSPC, after=2), pytest.raises(OSError, match="No space left"):
        land_days(settings, day, 1, rows_per_day=ROWS, seed=5)
    assert day not in lake.days("raw", SUCCESS) and day not in lake.days("raw")
    assert side_folders(lake, "raw") == [], "the failed staging folder is removed"

    land_days(settings, day, 1, rows_per_day=ROWS, seed=5)
    assert day in lake.days("raw", SUCCESS)
    assert lake.read_partition(lake.partition("raw", day)).num_rows == ROWS


# -- the snapshot writers' lock (Postgres) -------------------------------------------------------------------------
def test_snapshot_lock_serialises_workers_and_a_killed_holder_releases_it(postgres: Postgres, tmp_path: Path) -> None:
    """Two workers' snapshots never interleave; a holder killed mid-snapshot (SIGKILL) does not block the next."""
    import signal
    import subprocess
    import sys
    import threading

    from mlops.ledger import exclusive

    url = postgres.new_database()
    holder_code = (
        "import sys, time, pathlib\nfrom mlops.ledger import exclusive\n"
        f"with exclusive({url!r}, 'data-registry', pathlib.Path({str(tmp_path)!r})):\n"
        "    print('held', flush=True)\n    time.sleep(600)\n"
    )
    holder = subprocess.Popen([sys.executable, "-c", holder_code], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        acquired = threading.Event()

        def second_worker() -> None:
            with exclusive(url, "data-registry", tmp_path / "elsewhere"):  # another host: no shared folder
                acquired.set()

        waiter = threading.Thread(target=second_worker, daemon=True)
        waiter.start()
        assert not acquired.wait(3), "the second writer got the lock while the first held it"
        with exclusive(url, "another-lock", tmp_path):  # locks are by name: other work is not blocked
            pass
        holder.send_signal(signal.SIGKILL)
        holder.wait()
        assert acquired.wait(60), "the lock of a killed holder was never released"
        waiter.join(10)
    finally:
        holder.kill()
        holder.wait()
