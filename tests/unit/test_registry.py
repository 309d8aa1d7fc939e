"""The registry against a real MLflow (SQLite store under a temporary MLOPS_HOME) and real logged models.

One xgboost model is logged once per module; every test registers versions of it under its own model
name, so tests share the MLflow database (migrations run once) but not their registry state.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlops.config import Settings, load_settings
from mlops.errors import InfrastructureError
from mlops.registry import CHALLENGER, CHAMPION, AliasOutOfSync, PromotionConflict, Registry, RegistryError
from tests.unit.ledger_verdicts import record_verdict

PG_BIN = Path("/usr/lib/postgresql/15/bin")


# -- fixtures ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def mlops_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("registry-home")


@pytest.fixture(scope="module")
def logged_model(mlops_home: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """(run_id, model_uri) of a tiny xgboost booster logged the way training logs it."""
    import mlflow
    import numpy as np
    import xgboost as xgb

    settings = load_settings(env={"MLOPS_HOME": str(mlops_home)})
    (mlops_home / "mlflow").mkdir(parents=True, exist_ok=True)
    cwd = tmp_path_factory.mktemp("log-cwd")
    previous_uri = os.environ.get("MLFLOW_TRACKING_URI")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(cwd)
        mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
        try:
            experiment_id = mlflow.MlflowClient(settings.mlflow_tracking_uri).create_experiment(
                "registry-tests", artifact_location=settings.mlflow_artifacts_uri
            )
            features = np.array([[0.0, 1.0], [1.0, 0.0], [0.2, 0.9], [0.9, 0.1], [0.5, 0.5], [0.1, 0.2]])
            booster = xgb.train(
                {"objective": "binary:logistic", "nthread": 1},
                xgb.DMatrix(features, label=[0, 1, 0, 1, 1, 0]),
                num_boost_round=2,
            )
            with mlflow.start_run(experiment_id=experiment_id) as run:
                info = mlflow.xgboost.log_model(booster, name="model", pip_requirements=["xgboost"])
        finally:
            mlflow.set_tracking_uri(previous_uri)  # None unsets it: no global state leaks to other modules
        assert list(cwd.iterdir()) == [], "MLflow wrote into the current directory"
    assert info.model_uri.startswith("models:/")
    return run.info.run_id, info.model_uri


@pytest.fixture(autouse=True)
def empty_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Every test runs in an empty directory that must still be empty afterwards."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    yield cwd
    assert sorted(p.name for p in cwd.iterdir()) == [], "something was written into the current directory"


@pytest.fixture
def settings(mlops_home: Path) -> Settings:
    """The shared MLflow home with a model name of this test's own (the default ledger under MLOPS_HOME)."""
    name = f"fraud_{uuid.uuid4().hex[:10]}"
    return load_settings(env={"MLOPS_HOME": str(mlops_home), "MLOPS__MODEL__NAME": name})


@pytest.fixture
def registry(settings: Settings, logged_model: tuple[str, str]) -> Iterator[Registry]:
    registry = Registry(settings)
    yield registry
    registry.ledger().dispose()


def _new_run(registry: Registry) -> str:
    """A training run of its own (registration is idempotent per run): an empty MLflow run is enough."""
    experiment = registry.client.get_experiment_by_name("registry-tests")
    return registry.client.create_run(experiment.experiment_id).info.run_id


def _register(
    registry: Registry, logged_model: tuple[str, str], passed: bool | None = True, run_id: str | None = None
) -> str:
    _, model_uri = logged_model
    tags = {"lineage.data_rev": "abc123", "metrics.auc_pr": "0.42"}
    if passed is not None:
        tags["gates.passed"] = "true" if passed else "false"
    version = registry.register(run_id or _new_run(registry), model_uri, tags)
    if passed is not None:
        record_verdict(registry, version, passed)  # the ledger's verdict, as `assess` records it
    return version


def _who(**extra: str) -> dict[str, str]:
    return {"actor": "alice", "reason": "better auc_pr", "run": "manual__2026-11-10", **extra}


# -- registration -----------------------------------------------------------------------------------------
def test_register_creates_ready_versions_with_tags(registry: Registry, logged_model: tuple[str, str]) -> None:
    _, model_uri = logged_model
    run_id = _new_run(registry)
    first = _register(registry, logged_model, run_id=run_id)
    second = _register(registry, logged_model, passed=False)

    assert (first, second) == ("1", "2")
    tags = registry.version_tags(first)
    assert tags["gates.passed"] == "true"
    assert tags["lineage.data_rev"] == "abc123"
    assert registry.version_tags(second)["gates.passed"] == "false"
    version = registry.client.get_model_version(registry.name, first)
    assert version.status == "READY"
    assert version.run_id == run_id
    assert tags["source_model_uri"] == model_uri  # the lineage back to the logged model
    logged = registry.client.get_logged_model(model_uri.removeprefix("models:/"))
    listed = json.loads(logged.tags["mlflow.modelVersions"])
    assert {"name": registry.name, "version": first} in listed
    assert registry.alias_version(CHAMPION) is None
    assert registry.ledger().moves(registry.name) == []

    registry.tag_version(first, {"reviewed_by": "bob"})
    assert registry.version_tags(first)["reviewed_by"] == "bob"
    with pytest.raises(RegistryError, match="no version '99'"):
        registry.version_tags("99")


def test_failed_register_leaves_no_half_registered_version(
    registry: Registry, logged_model: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def unreachable(version: str) -> None:
        raise ConnectionError("MLflow went away")

    monkeypatch.setattr(registry, "_wait_ready", unreachable)
    with pytest.raises(ConnectionError):
        _register(registry, logged_model)
    monkeypatch.undo()

    assert registry.client.search_model_versions(f"name='{registry.name}'") == []
    assert _register(registry, logged_model) == "2"  # the next version number; "1" is gone


# -- promotion --------------------------------------------------------------------------------------------
def test_promote_without_champion_sets_alias_and_records_one_move(
    registry: Registry, logged_model: tuple[str, str]
) -> None:
    version = _register(registry, logged_model)

    move = registry.promote(version, None, **_who())

    assert registry.alias_version(CHAMPION) == version
    assert registry.ledger().head(registry.name, CHAMPION) == version
    assert registry.ledger().moves(registry.name) == [move]
    assert (move.alias, move.from_version, move.to_version) == (CHAMPION, None, version)
    assert (move.actor, move.reason, move.run) == ("alice", "better auc_pr", "manual__2026-11-10")
    assert move.at.endswith("+00:00")
    tags = registry.version_tags(version)
    assert tags["promoted_by"] == "alice"
    assert tags["promoted_at"] == move.at


def test_stale_expected_champion_conflicts_and_changes_nothing(
    registry: Registry, logged_model: tuple[str, str]
) -> None:
    v1, v2, v3 = (_register(registry, logged_model) for _ in range(3))
    registry.promote(v1, None, **_who())
    registry.promote(v2, v1, **_who())
    before = registry.ledger().moves(registry.name)

    with pytest.raises(PromotionConflict, match=rf"is version {v2}, not version {v1}") as excinfo:
        registry.promote(v3, v1, **_who())
    assert f"version {v3} was NOT made champion" in str(excinfo.value)
    with pytest.raises(PromotionConflict, match=r"not version <none>"):
        registry.promote(v3, None, **_who())

    assert registry.alias_version(CHAMPION) == v2
    assert registry.ledger().head(registry.name, CHAMPION) == v2
    assert registry.ledger().moves(registry.name) == before
    assert "promoted_at" not in registry.version_tags(v3)


@pytest.mark.parametrize("passed", [False, None], ids=["gates-failed", "never-gated"])
def test_version_without_passed_gates_is_refused(
    registry: Registry, logged_model: tuple[str, str], passed: bool | None
) -> None:
    version = _register(registry, logged_model, passed=passed)

    with pytest.raises(RegistryError, match="its gates failed" if passed is False else "no gate verdict in the ledger"):
        registry.promote(version, None, **_who())
    with pytest.raises(RegistryError, match="has no version '7'"):
        registry.promote("7", None, **_who())

    assert registry.alias_version(CHAMPION) is None
    assert registry.ledger().moves(registry.name) == []


def test_mlflow_failure_after_the_ledger_commit_is_mirrored_by_the_next_reader(
    registry: Registry, logged_model: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    version = _register(registry, logged_model)

    def down(*args: object) -> None:
        raise ConnectionError("MLflow is down")

    monkeypatch.setattr(registry.client, "set_registered_model_alias", down)
    with pytest.raises(InfrastructureError, match="MLflow is down.*brings MLflow up to the ledger"):
        registry.promote(version, None, **_who())
    monkeypatch.undo()

    assert registry.ledger().head(registry.name, CHAMPION) == version, "the ledger (the truth) kept the move"
    assert registry.alias_version(CHAMPION) is None, "MLflow's alias (its mirror) is one move behind"
    assert registry.resolve(CHAMPION) == version, "a reader gets the ledger head ..."
    assert registry.alias_version(CHAMPION) == version, "... and brings the mirror up to it"
    assert len(registry.ledger().moves(registry.name)) == 1


def test_mlflow_and_ledger_disagreeing_is_reported_and_repairable(
    registry: Registry, logged_model: tuple[str, str]
) -> None:
    v1, v2 = _register(registry, logged_model), _register(registry, logged_model)
    registry.promote(v1, None, **_who())
    # An alias moved by hand in MLflow (not the mirror of a move the ledger recorded):
    registry.client.set_registered_model_alias(registry.name, CHAMPION, v2)

    with pytest.raises(
        AliasOutOfSync, match=r"points to version 2 but the ledger .* says version 1.*mlops models --resync"
    ):
        registry.promote(v2, v1, **_who())
    assert len(registry.ledger().moves(registry.name)) == 1

    registry.resync_alias(CHAMPION, **_who(), trust="ledger")
    assert registry.alias_version(CHAMPION) == v1
    assert len(registry.ledger().moves(registry.name)) == 1

    registry.client.set_registered_model_alias(registry.name, CHAMPION, v2)
    move = registry.resync_alias(CHAMPION, **_who(reason="record the lost promotion"), trust="mlflow")
    assert move is not None and (move.from_version, move.to_version) == (v1, v2)
    assert registry.ledger().head(registry.name, CHAMPION) == v2
    registry.promote(v1, v2, **_who())  # consistent again
    assert registry.alias_version(CHAMPION) == v1


def test_set_challenger_is_recorded_and_leaves_champion_alone(
    registry: Registry, logged_model: tuple[str, str]
) -> None:
    v1, v2 = _register(registry, logged_model), _register(registry, logged_model, passed=False)
    registry.promote(v1, None, **_who())

    move = registry.set_challenger(v2, **_who(reason="candidate from weekly retrain"))

    assert registry.alias_version(CHALLENGER) == v2
    assert registry.alias_version(CHAMPION) == v1
    assert registry.ledger().moves(registry.name, CHALLENGER) == [move]
    assert len(registry.ledger().moves(registry.name)) == 2
    with pytest.raises(RegistryError, match="already version"):
        registry.set_challenger(v2, **_who())
    with pytest.raises(RegistryError, match="no version"):
        registry.set_challenger("42", **_who())


# -- rollback ---------------------------------------------------------------------------------------------
def test_rollback_to_previous_and_to_a_named_version(registry: Registry, logged_model: tuple[str, str]) -> None:
    v1, v2, v3 = (_register(registry, logged_model) for _ in range(3))
    failed = _register(registry, logged_model, passed=False)
    registry.promote(v1, None, **_who())
    registry.promote(v2, v1, **_who())
    registry.promote(v3, v2, **_who())

    back = registry.rollback(None, **_who(actor="oncall", reason="precision dropped"))
    assert registry.alias_version(CHAMPION) == v2
    assert (back.from_version, back.to_version, back.reason) == (v3, v2, "precision dropped")

    named = registry.rollback(v1, **_who(actor="oncall", reason="known good"))
    assert registry.alias_version(CHAMPION) == v1
    assert (named.from_version, named.to_version) == (v2, v1)

    with pytest.raises(RegistryError, match="its gates failed"):
        registry.rollback(failed, **_who())
    with pytest.raises(RegistryError, match="no version"):
        registry.rollback("99", **_who())
    assert registry.alias_version(CHAMPION) == v1
    history = [(m.from_version, m.to_version) for m in registry.ledger().moves(registry.name, CHAMPION)]
    assert history == [(None, v1), (v1, v2), (v2, v3), (v3, v2), (v2, v1)]


def test_rollback_without_a_previous_champion_errors(registry: Registry, logged_model: tuple[str, str]) -> None:
    assert registry.alias_version(CHAMPION) is None  # not even registered yet
    with pytest.raises(RegistryError, match="no earlier champion"):
        registry.rollback(None, **_who())
    version = _register(registry, logged_model)
    registry.promote(version, None, **_who())
    with pytest.raises(RegistryError, match="no earlier champion"):
        registry.rollback(None, **_who())
    assert registry.alias_version(CHAMPION) == version
    assert len(registry.ledger().moves(registry.name)) == 1


# -- the ledger itself ------------------------------------------------------------------------------------
def test_ledger_refuses_to_rewrite_history(registry: Registry, logged_model: tuple[str, str]) -> None:
    import sqlalchemy as sa

    registry.promote(_register(registry, logged_model), None, **_who())
    engine = sa.create_engine(registry.settings.ledger_uri)
    try:
        for statement in ("UPDATE alias_moves SET actor = 'mallory'", "DELETE FROM alias_moves"):
            with pytest.raises(sa.exc.DatabaseError, match="append-only"), engine.begin() as conn:
                conn.exec_driver_sql(statement)
    finally:
        engine.dispose()
    assert [m.actor for m in registry.ledger().moves(registry.name)] == ["alice"]


def test_import_is_cheap() -> None:
    code = "import sys, mlops.registry; print(sorted(m for m in ('mlflow', 'sqlalchemy') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# -- the race: two processes, same expected champion ------------------------------------------------------
# Each racer is a separate OS process. The pair is started when the module starts, so their slow imports
# (mlflow: several seconds each) overlap the single-threaded fixtures and tests before them, and is reused
# by every race: for job N it waits for job-N.json, warms up on it, reports ready-N-<name>, and promotes
# when go-N appears. One JSON line per job on stdout.
RACER = r"""
import json, sys, time
from pathlib import Path

workdir, me = Path(sys.argv[1]), sys.argv[2]


def wait_for(*paths):
    deadline = time.monotonic() + 300
    while not any(path.exists() for path in paths):
        if time.monotonic() > deadline:
            sys.exit(f"{paths[0].name} never appeared")
        time.sleep(0.001)


import mlflow  # noqa: the slow part, done before any job arrives
from mlops.config import load_settings
from mlops.registry import CHAMPION, PromotionConflict, Registry

for n in range(1, 100):
    wait_for(workdir / f"job-{n}.json", workdir / "stop")
    if (workdir / "stop").exists():
        break
    job = json.loads((workdir / f"job-{n}.json").read_text())
    settings = load_settings(env={
        "MLOPS_HOME": job["home"], "MLOPS__MODEL__NAME": job["model"], "MLOPS__REGISTRY__LEDGER_URI": job["ledger_uri"],
    })
    registry = Registry(settings)
    registry.alias_version(CHAMPION)  # warm up: MLflow store, ledger engine and tables
    registry.ledger().head(job["model"], CHAMPION)
    set_alias = registry.client.set_registered_model_alias

    def slow_set_alias(*args, set_alias=set_alias):
        # Widen the window between compare and commit: without a real lock both racers would pass the compare.
        time.sleep(0.5)
        return set_alias(*args)

    registry.client.set_registered_model_alias = slow_set_alias
    version = job["versions"][me]
    Path(workdir, f"ready-{n}-{me}").touch()
    wait_for(workdir / f"go-{n}")
    try:
        move = registry.promote(version, job["expected"], actor=me, reason="race", run=me)
        result = {"me": me, "version": version, "won": True, "move": move.id}
    except PromotionConflict as exc:
        result = {"me": me, "version": version, "won": False, "error": str(exc)}
    registry.ledger().dispose()
    print(json.dumps(result), flush=True)
"""


class Racers:
    """Two racer processes sharing a work directory (job, ready and go files, their own empty cwd)."""

    names = ("a", "b")

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.cwd = workdir / "racers-cwd"
        self.cwd.mkdir()
        self.jobs = 0
        script = workdir / "racer.py"
        script.write_text(RACER)
        self.processes = {
            me: subprocess.Popen(
                [sys.executable, str(script), str(workdir), me],
                cwd=self.cwd,
                stdout=subprocess.PIPE,
                stderr=(workdir / f"stderr-{me}.log").open("w"),
                text=True,
            )
            for me in self.names
        }

    def _stderr(self) -> str:
        return "\n".join(f"--- {me}:\n" + (self.workdir / f"stderr-{me}.log").read_text()[-3000:] for me in self.names)

    def run(self, job: dict[str, object]) -> list[dict[str, object]]:
        self.jobs += 1
        n = self.jobs
        pending = self.workdir / f"job-{n}.json.tmp"
        pending.write_text(json.dumps(job))
        pending.rename(self.workdir / f"job-{n}.json")  # atomic: a racer never reads half a job
        deadline = time.monotonic() + 120
        while not all((self.workdir / f"ready-{n}-{me}").exists() for me in self.names):
            crashed = [me for me, p in self.processes.items() if p.poll() is not None]
            if crashed or time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"racers {crashed or 'timed out'} before the start:\n{self._stderr()}")
            time.sleep(0.01)
        (self.workdir / f"go-{n}").touch()
        lines = {me: p.stdout.readline() for me, p in self.processes.items()}  # type: ignore[union-attr]
        if not all(lines.values()):
            self.stop()
            pytest.fail(f"a racer died during the race:\n{self._stderr()}")
        return [json.loads(line) for line in lines.values()]

    def stop(self) -> None:
        """End both racers (their work is done or failed; a graceful exit only costs MLflow's shutdown)."""
        (self.workdir / "stop").touch()
        for process in self.processes.values():
            if process.poll() is None:
                process.kill()
            process.wait()


def _postgres_driver() -> str | None:
    for module, dialect in (("psycopg2", "postgresql+psycopg2"), ("psycopg", "postgresql+psycopg")):
        try:
            __import__(module)
        except ImportError:
            continue
        return dialect
    return None


@pytest.fixture(scope="module", autouse=True)
def racers(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Racers | None]:
    """The racer pair, started as early as possible, and only when a race test was selected."""
    selected = {item.name for item in request.session.items if item.path == request.path}
    postgres_possible = _postgres_driver() is not None and (PG_BIN / "initdb").exists()
    if not (
        "test_race_on_sqlite_exactly_one_promotion_wins" in selected
        or (postgres_possible and "test_race_on_postgres_exactly_one_promotion_wins" in selected)
    ):
        yield None
        return
    pool = Racers(tmp_path_factory.mktemp("racers"))
    try:
        yield pool
    finally:
        pool.stop()


def _race(racers: Racers | None, settings: Settings, registry: Registry, logged_model: tuple[str, str]) -> None:
    assert racers is not None
    v1, v2, v3 = (_register(registry, logged_model) for _ in range(3))
    registry.promote(v1, None, **_who())
    job = {
        "home": str(settings.home),
        "model": registry.name,
        "ledger_uri": settings.ledger_uri,
        "expected": v1,
        "versions": {"a": v2, "b": v3},
    }

    results = racers.run(job)

    winners = [r for r in results if r["won"]]
    losers = [r for r in results if not r["won"]]
    assert len(winners) == 1 and len(losers) == 1, results
    winner, loser = winners[0], losers[0]
    assert f"is version {winner['version']}, not version {v1}" in str(loser["error"])
    assert registry.alias_version(CHAMPION) == winner["version"]
    moves = registry.ledger().moves(registry.name, CHAMPION)
    assert [(m.from_version, m.to_version, m.actor) for m in moves[1:]] == [(v1, winner["version"], winner["me"])]
    assert registry.ledger().head(registry.name, CHAMPION) == winner["version"]
    assert list(racers.cwd.iterdir()) == [], "a racer wrote into its current directory"


def test_race_on_sqlite_exactly_one_promotion_wins(
    racers: Racers | None, registry: Registry, settings: Settings, logged_model: tuple[str, str]
) -> None:
    _race(racers, settings, registry, logged_model)


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    """A throwaway PostgreSQL 15 cluster on a free port (run as the postgres user when we are root)."""
    dialect = _postgres_driver()
    if dialect is None:
        pytest.skip(
            "no PostgreSQL driver in the venv (psycopg2-binary is not in requirements.lock): Postgres race not run"
        )
    if not (PG_BIN / "initdb").exists():
        pytest.skip(f"PostgreSQL 15 binaries not found under {PG_BIN}: Postgres race not run")
    as_user: list[str] = []
    # pytest's tmp dirs are private to root (0700): the server gets a directory of its own.
    root = Path(tempfile.mkdtemp(prefix="mlops-pg-"))
    if os.geteuid() == 0:
        if shutil.which("runuser") is None:
            pytest.skip("running as root without runuser: cannot start PostgreSQL as a normal user")
        as_user = ["runuser", "-u", "postgres", "--"]
        shutil.chown(root, "postgres", "postgres")
    data = root / "data"
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    pg_ctl = [*as_user, str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", str(root / "log"), "-w"]
    try:
        subprocess.run(
            [*as_user, str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust", "--no-sync"],
            check=True,
            capture_output=True,
        )
        options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
        subprocess.run([*pg_ctl, "-o", options, "start"], check=True, capture_output=True)
        yield f"{dialect}://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*pg_ctl, "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def test_race_on_postgres_exactly_one_promotion_wins(
    postgres_url: str, racers: Racers | None, mlops_home: Path, logged_model: tuple[str, str]
) -> None:
    name = f"fraud_{uuid.uuid4().hex[:10]}"
    settings = load_settings(
        env={"MLOPS_HOME": str(mlops_home), "MLOPS__MODEL__NAME": name, "MLOPS__REGISTRY__LEDGER_URI": postgres_url}
    )
    registry = Registry(settings)
    assert registry.ledger().dialect == "postgresql"
    try:
        _race(racers, settings, registry, logged_model)
    finally:
        registry.ledger().dispose()
