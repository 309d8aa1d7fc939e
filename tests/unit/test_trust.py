"""Issue 10, reproduced: each attack or fault of the report, and what happens now.

* a run's conf relaxing the gates or pointing the trainer's MLflow credentials elsewhere is refused;
* a secret planted in env, config and trigger reaches no MLflow artifact or tag, lake file, log line or pod spec;
* an alias moved by hand in MLflow is refused by every reader until ``mlops models --resync``;
* two rollbacks in a row walk back (v3 -> v2 -> v1) and a rolled-back version never returns;
* ``mlops promote`` compares with the champion the version was gated against;
* registration is idempotent per training run and never leaves a half-registered pass;
* unknown versions and bad ledger URIs are one-line errors.

Transient reads during validation are in ``test_validation.py``; the trigger-time refusal by Airflow is in
``tests/dags/test_continuous_training_dag.py``.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from mlops import aliases, models
from mlops.config import ConfigError, Settings, load_settings
from mlops.errors import InfrastructureError
from mlops.ledger import AliasOutOfSync, Ledger, RegistryError
from mlops.registry import CHALLENGER, CHAMPION, Registry
from tests.unit.ledger_verdicts import record_verdict

RUN_ID = "manual__2026-11-10T06:30:00+00:00"


# -- fixtures: a tiny logged model, a registry of its own per test ---------------------------------------------
@pytest.fixture(scope="module")
def mlops_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("trust-home")


@pytest.fixture(scope="module")
def model_uri(mlops_home: Path) -> str:
    """A tiny xgboost booster logged once; every version below is registered from it (each with a run of its own)."""
    import mlflow
    import numpy as np
    import xgboost as xgb

    settings = load_settings(env={"MLOPS_HOME": str(mlops_home)})
    client = models.client(settings)
    experiment = client.create_experiment("trust-tests", artifact_location=settings.mlflow_artifacts_uri)
    booster = xgb.train({"objective": "binary:logistic", "nthread": 1},
                        xgb.DMatrix(np.eye(4), label=[0, 1, 0, 1]), num_boost_round=1)  # fmt: skip
    previous = os.environ.get("MLFLOW_TRACKING_URI")
    models.use_tracking(settings)
    try:
        with mlflow.start_run(experiment_id=experiment):
            return mlflow.xgboost.log_model(booster, name="model", pip_requirements=["xgboost"]).model_uri
    finally:
        mlflow.set_tracking_uri(previous)


@pytest.fixture
def settings(mlops_home: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The shared MLflow home, a model name of this test's own; the same settings for the CLI (env)."""
    env = {"MLOPS_HOME": str(mlops_home), "MLOPS_MODEL": "card_transactions",  # the CLI's model (several exist)
           "MLOPS__MODEL__NAME": f"fraud_{uuid.uuid4().hex[:10]}"}  # fmt: skip
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("MLOPS_CONFIG", raising=False)
    return load_settings(env=env)


@pytest.fixture
def registry(settings: Settings, model_uri: str) -> Iterator[Registry]:
    registry = Registry(settings)
    yield registry
    registry.ledger().dispose()


def _version(registry: Registry, model_uri: str, passed: bool = True, compared: str = "none") -> str:
    """A version from a training run of its own, tagged as the pipeline tags it."""
    experiment = registry.client.get_experiment_by_name("trust-tests").experiment_id
    run_id = registry.client.create_run(experiment).info.run_id
    tags = {"gates.passed": str(passed).lower(), "gates.champion_compared": compared}
    version = registry.register(run_id, model_uri, tags)
    record_verdict(registry, version, passed, None if compared == "none" else compared)  # what `assess` records
    return version


def _who(reason: str = "test") -> dict[str, str]:
    return {"actor": "alice", "reason": reason, "run": "manual__test"}


def _cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    from mlops.cli import main

    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# -- 1. a run's conf is an allow-list -------------------------------------------------------------------------
def test_the_trainer_refuses_a_request_that_points_mlflow_elsewhere(tmp_path: Path) -> None:
    """The pod's entrypoint: its MLflow credentials (from the Secret) must never go to a host a run names."""
    conf = {"mlflow": {"tracking_uri": "http://elsewhere.example.com"}}
    env = {**os.environ, "MLOPS_HOME": str(tmp_path), "MLFLOW_TRACKING_PASSWORD": "from-the-kubernetes-secret"}
    result = subprocess.run([sys.executable, "-m", "mlops.training", "--as-of", "2026-11-10", "--conf-json",
                             json.dumps(conf)], env=env, capture_output=True, text=True)  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert "config.mlflow: set only by the deployment's reviewed config file" in result.stderr
    assert not (tmp_path / "mlflow").exists(), "nothing talked to any MLflow"


def test_a_training_request_carries_only_allowed_overrides_and_a_masked_trigger() -> None:
    from mlops.training.request import TrainingRequest

    with pytest.raises(ConfigError, match=r"config\.gates"):
        TrainingRequest(as_of="2026-11-10", overrides={"gates": {"absolute": {}}})
    trigger = {"reason": "drift", "drift": {"report_uri": "https://rep:hunter2-secret@reports/x.html"}}
    request = TrainingRequest(as_of="2026-11-10", overrides={"model": {"num_boost_round": 5}}, trigger=trigger)
    assert request.trigger["drift"]["report_uri"] == "https://rep:***@reports/x.html"
    assert "hunter2-secret" not in " ".join(request.to_argv())


# -- 2. secrets never leave their place --------------------------------------------------------------------------
PLANTED = {
    "env": "planted-env-secret-7d41c",  # MLFLOW_TRACKING_PASSWORD / AWS_SECRET_ACCESS_KEY of the process
    "config": "planted-config-secret-93be0",  # a password inside a URI of the reviewed config file
    "trigger": "planted-trigger-secret-5aa17",  # a password inside the drift report URI of the trigger
}


def _files_holding(root: Path, needles: list[str]) -> list[str]:
    hits = []
    for path in root.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            hits += [f"{path.relative_to(root)}: {needle}" for needle in needles if needle.encode() in data]
    return hits


def test_a_planted_secret_reaches_no_artifact_tag_lake_file_log_or_pod_spec(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The chain with secrets planted: land, validate, train (the entrypoint), assess, register, promote, score."""
    from mlops.data.landing import land_days
    from mlops.scoring import score_day
    from mlops.training.local import run_local
    from mlops.training.pipeline import assess, promote, register
    from mlops.training.request import TrainingRequest
    from mlops.training.snapshot import TrainingSnapshot, resolve_snapshot
    from mlops.validation import validate_and_version

    home = tmp_path / "home"
    config = tmp_path / "mlops.yaml"  # the reviewed file lives outside MLOPS_HOME: searching home must not find it
    config.write_text(f"storage:\n  s3_endpoint_url: http://minio:{PLANTED['config']}@127.0.0.1:9\n")
    env = {"MLOPS_HOME": str(home), "MLOPS_CONFIG": str(config),
           "MLFLOW_TRACKING_PASSWORD": PLANTED["env"], "AWS_SECRET_ACCESS_KEY": PLANTED["env"]}  # fmt: skip
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    caplog.set_level(logging.INFO)
    settings = load_settings()
    start, days = dt.date(2026, 9, 1), 7
    as_of = start + dt.timedelta(days=days + 2)
    land_days(settings, start, days, rows_per_day=3_000, seed=21, labels_until=as_of)
    for offset in range(days):
        validate_and_version(settings, start + dt.timedelta(days=offset))

    snapshot = resolve_snapshot(settings, as_of)
    trigger = {"reason": "drift: amount", "drift": {"report_uri": f"https://reports:{PLANTED['trigger']}@reports.example/r.html"},
               "airflow_dag_id": "continuous_training", "airflow_run_id": RUN_ID}  # fmt: skip
    request = TrainingRequest(as_of=as_of.isoformat(), snapshot=snapshot.to_dict(), trigger=trigger,
                              overrides={"model": {"num_boost_round": 60}})  # fmt: skip
    trained = run_local(request)  # `python -m mlops.training`, its output streamed into this log
    assessment = assess(settings, TrainingSnapshot.from_dict(request.snapshot), trained["run_id"], trained["model_uri"])
    version = register(settings, assessment, actor="test", run=RUN_ID)
    assert assessment.passed, assessment.summary
    promote(settings, version, assessment.champion_version, actor="test", reason="trust test", run=RUN_ID)
    score_day(settings, start + dt.timedelta(days=days - 1), run_id=RUN_ID)
    manifest = _rendered_pod_spec(settings, request, monkeypatch)

    needles = list(PLANTED.values())
    assert _files_holding(home, needles) == [], "a secret reached MLflow's store, the lake or the registry"
    assert not [n for n in needles if n in caplog.text], "a secret reached a log line"
    assert not [n for n in needles if n in json.dumps(manifest)], "a secret reached the pod spec"
    # ... and what was masked is still useful: which host, which overrides
    tags = Registry(settings).version_tags(version)
    assert tags["mlops.trigger_report_uri"] == "https://reports:***@reports.example/r.html"
    assert json.loads(tags["mlops.run_overrides"]) == {"model": {"num_boost_round": 60}}
    stored = models.load_artifact(settings, trained["run_id"], models.Artifacts.CONFIG)
    assert stored["storage"]["s3_endpoint_url"] == "http://minio:***@127.0.0.1:9"
    assert models.get_run(settings, trained["run_id"]).data.params["num_boost_round"] == "60"


def _rendered_pod_spec(settings: Settings, request: Any, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The GPU pod the DAG would submit for ``request`` (argv rendered from its XCom), without a cluster."""
    monkeypatch.setenv("AIRFLOW_HOME", str(settings.home.parent / "airflow"))
    monkeypatch.setenv("AIRFLOW__CORE__UNIT_TEST_MODE", "True")
    from airflow.sdk import DAG
    from kubernetes.client import ApiClient

    from mlops.airflow.pod import training_pod_operator
    from mlops.training.request import TrainingRequest

    with DAG("continuous_training", schedule=None, start_date=dt.datetime(2026, 11, 1), catchup=False) as dag:
        operator = training_pod_operator(settings, task_id="train",
                                         arguments=TrainingRequest.templated_argv("ti.xcom_pull(task_ids='r')"),
                                         env={"MLOPS__MLFLOW__TRACKING_URI": settings.mlflow_tracking_uri})  # fmt: skip
    ti = SimpleNamespace(dag_id=dag.dag_id, task_id="train", map_index=-1, try_number=1,
                         xcom_pull=lambda task_ids: request.to_strings())  # fmt: skip
    context = {"dag": dag, "task": operator, "ti": ti, "run_id": RUN_ID, "ds": "2026-11-10"}
    operator.render_template_fields(context)
    return ApiClient().sanitize_for_serialization(operator.build_pod_request_obj(context, dry_run=True))


# -- 3. the ledger is the truth -----------------------------------------------------------------------------------
def test_an_alias_moved_by_hand_in_mlflow_is_refused_until_resynced(
    registry: Registry, settings: Settings, model_uri: str, capsys: pytest.CaptureFixture[str]
) -> None:
    v1, v2 = _version(registry, model_uri), _version(registry, model_uri)
    registry.promote(v1, None, **_who())
    registry.client.set_registered_model_alias(registry.name, CHAMPION, v2)  # the tampering

    for read in (lambda: aliases.alias_version(settings, CHAMPION), lambda: aliases.pin_champion(settings)):
        with pytest.raises(AliasOutOfSync, match=r"points to version 2 but the ledger .* says version 1") as refused:
            read()
        assert "`mlops models --resync`" in str(refused.value)
    code, _, err = _cli(["score", "--date", "2026-11-10"], capsys)
    assert code == 1 and "mlops models --resync" in err and len(err.strip().splitlines()) == 1
    code, out, _ = _cli(["models"], capsys)
    assert code == 1 and "WARNING: MLflow alias 'champion' points to v2, the ledger to v1" in out

    code, out, _ = _cli(["models", "--resync"], capsys)
    assert code == 0 and "WARNING" not in out
    assert registry.alias_version(CHAMPION) == v1 and aliases.alias_version(settings, CHAMPION) == v1
    assert [m.to_version for m in registry.ledger().moves(registry.name, CHAMPION)] == [v1]


def test_the_failure_notifier_fires_with_the_resync_hint(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                         caplog: pytest.LogCaptureFixture,
                                                         capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    """A refused read fails the Airflow task at once (input error) and the failure notifier says what to do."""
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "airflow"))
    monkeypatch.setenv("AIRFLOW__CORE__UNIT_TEST_MODE", "True")
    from airflow.sdk.exceptions import AirflowFailException

    from mlops.airflow import LogFailureNotifier, error_policy

    def score() -> None:
        raise AliasOutOfSync("MLflow alias 'champion' ... Run `mlops models --resync` to put MLflow back")

    with pytest.raises(AirflowFailException) as failed:
        error_policy(score)()
    ti = SimpleNamespace(dag_id="batch_scoring", task_id="pin_champion", run_id=RUN_ID, try_number=1)
    LogFailureNotifier().notify({"ti": ti, "exception": failed.value})
    logged = caplog.text + capsys.readouterr().out  # Airflow's logging (structlog) may print instead
    assert "FAILED dag=batch_scoring task=pin_champion" in logged and "mlops models --resync" in logged


def test_two_rollbacks_walk_back_and_a_rolled_back_version_never_returns(
    registry: Registry, model_uri: str, capsys: pytest.CaptureFixture[str]
) -> None:
    v1, v2, v3 = (_version(registry, model_uri) for _ in range(3))
    registry.promote(v1, None, **_who())
    registry.promote(v2, v1, **_who())
    registry.promote(v3, v2, **_who())

    code, out, _ = _cli(["rollback", "--reason", "v3 is bad"], capsys)
    assert code == 0 and "v3 -> v2" in out
    code, out, _ = _cli(["rollback", "--reason", "v2 is bad too"], capsys)
    assert code == 0 and "v2 -> v1" in out, "the second rollback walks further back, it does not flip to v3"
    assert registry.alias_version(CHAMPION) == v1 and set(registry.retired()) == {v2, v3}
    assert registry.version_tags(v3)["registry.rolled_back"].endswith("by cli:" + _user() + ": v3 is bad")

    code, _, err = _cli(["rollback", "--reason", "again"], capsys)
    assert code == 1 and "no earlier champion" in err
    for attempt in (lambda: registry.rollback(v3, **_who()), lambda: registry.promote(v3, v1, **_who())):
        with pytest.raises(RegistryError, match=r"version 3 .* was rolled back .* never champion again"):
            attempt()
    registry.client.set_registered_model_alias(registry.name, CHAMPION, v3)  # by hand, then "record it"
    with pytest.raises(RegistryError, match="rolled back"):
        registry.resync_alias(CHAMPION, **_who(), trust="mlflow")
    registry.resync_alias(CHAMPION, **_who(), trust="ledger")
    assert registry.alias_version(CHAMPION) == v1
    history = [(m.from_version, m.to_version) for m in registry.ledger().moves(registry.name, CHAMPION)]
    assert history == [(None, v1), (v1, v2), (v2, v3), (v3, v2), (v2, v1)]


def _user() -> str:
    import getpass

    return getpass.getuser()


def test_promote_compares_with_the_champion_the_version_was_gated_against(
    registry: Registry, model_uri: str, capsys: pytest.CaptureFixture[str]
) -> None:
    v1 = _version(registry, model_uri)
    never_compared = _version(registry, model_uri, compared="none")  # gated when there was no champion yet
    registry.promote(v1, None, **_who())
    v3 = _version(registry, model_uri, compared=v1)

    code, _, err = _cli(["promote", "--version", never_compared], capsys)
    assert code == 1 and "is version 1, not version <none>" in err and "NOT made champion" in err
    assert registry.alias_version(CHAMPION) == v1
    code, out, _ = _cli(["promote", "--version", v3], capsys)
    assert code == 0 and f"v{v1} -> v{v3}" in out
    code, out, _ = _cli(["promote", "--version", never_compared, "--expected", v3], capsys)  # an explicit decision
    assert code == 0 and registry.alias_version(CHAMPION) == never_compared


def test_register_is_idempotent_per_training_run(registry: Registry, model_uri: str) -> None:
    experiment = registry.client.get_experiment_by_name("trust-tests").experiment_id
    run_id = registry.client.create_run(experiment).info.run_id
    first = registry.register(run_id, model_uri, {"gates.passed": "true"})
    again = registry.register(run_id, model_uri, {"gates.passed": "true"})  # the task's retry
    assert first == again
    assert len(registry.client.search_model_versions(f"name='{registry.name}'")) == 1


def test_a_registration_that_fails_half_way_is_never_tagged_passed_and_the_retry_completes_it(
    registry: Registry, model_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    experiment = registry.client.get_experiment_by_name("trust-tests").experiment_id
    run_id = registry.client.create_run(experiment).info.run_id

    def away(*args: object) -> None:
        raise ConnectionError("MLflow went away")

    monkeypatch.setattr(registry, "_wait_ready", away)  # the version was created, then MLflow went away ...
    monkeypatch.setattr(registry.client, "delete_model_version", away)  # ... so it cannot be deleted either
    with pytest.raises(ConnectionError):
        registry.register(run_id, model_uri, {"gates.passed": "true", "lineage": "x"})
    left = registry.client.search_model_versions(f"name='{registry.name}'")
    assert len(left) == 1 and "gates.passed" not in left[0].tags, "half-registered, never tagged passed"
    with pytest.raises(RegistryError, match="gates.passed"):
        registry.promote(str(left[0].version), None, **_who())
    monkeypatch.undo()

    assert registry.register(run_id, model_uri, {"gates.passed": "true", "lineage": "x"}) == str(left[0].version)
    assert registry.version_tags(str(left[0].version))["gates.passed"] == "true"


def test_ledger_down_during_register_leaves_no_version_and_the_retry_registers_one(
    settings: Settings, model_uri: str, tmp_path: Path
) -> None:
    from mlops.training.pipeline import Assessment, register

    client = models.client(settings)
    run_id = client.create_run(client.get_experiment_by_name("trust-tests").experiment_id).info.run_id
    evidence = {"gates.passed": "true", "gates.champion_compared": "none"}
    assessment = Assessment(run_id, model_uri, True, "passed", None, {}, "", evidence)
    broken = tmp_path / "ledger.db"
    broken.mkdir()  # a directory where the database file should be: SQLite cannot open it
    down = settings.model_copy(
        update={"registry": settings.registry.model_copy(update={"ledger_uri": f"sqlite:///{broken}"})}
    )

    with pytest.raises(InfrastructureError, match=r"ledger database sqlite:///.* failed: .*retry once it is back"):
        register(down, assessment, actor="test", run=RUN_ID)
    assert client.search_model_versions(f"name='{settings.model_name}'") == [], "no orphan version"

    version = register(settings, assessment, actor="test", run=RUN_ID)
    assert register(settings, assessment, actor="test", run=RUN_ID) == version, "a retry finds it"
    assert Registry(settings).alias_version(CHALLENGER) == version
    assert len(client.search_model_versions(f"name='{settings.model_name}'")) == 1


def test_an_existing_ledger_is_migrated_in_place(tmp_path: Path) -> None:
    """A ledger made before rollbacks were recorded gains `retired_versions`; its history is untouched."""
    import sqlalchemy as sa

    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE alias_heads (model VARCHAR(255), alias VARCHAR(64), version VARCHAR(64), "
                             "PRIMARY KEY (model, alias))")  # fmt: skip
        conn.exec_driver_sql("CREATE TABLE alias_moves (id INTEGER PRIMARY KEY AUTOINCREMENT, model VARCHAR(255), "
                             "alias VARCHAR(64), from_version VARCHAR(64), to_version VARCHAR(64), actor VARCHAR(255), "
                             "reason TEXT, run VARCHAR(255), at VARCHAR(40))")  # fmt: skip
        for action in ("update", "delete"):
            conn.exec_driver_sql(f"CREATE TRIGGER alias_moves_no_{action} BEFORE {action.upper()} ON alias_moves "
                                 "BEGIN SELECT RAISE(ABORT, 'alias_moves is append-only'); END")  # fmt: skip
        conn.exec_driver_sql("INSERT INTO alias_heads VALUES ('m', 'champion', '1')")
        conn.exec_driver_sql("INSERT INTO alias_moves (model, alias, from_version, to_version, actor, reason, "
                             "run, at) VALUES ('m', 'champion', NULL, '1', 'old', 'a', 'r', '2026-01')")  # fmt: skip
    for _ in range(2):  # idempotent
        ledger = Ledger(url)
        assert ledger.head("m", CHAMPION) == "1" and [m.actor for m in ledger.moves("m")] == ["old"]
        assert ledger.retired("m") == {}
        ledger.dispose()
    with engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO retired_versions VALUES ('m', '1', 1, 'bob', 'bad', '2026-02')")
    with pytest.raises(sa.exc.DatabaseError, match="append-only"), engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM retired_versions")  # a rolled-back version cannot be smuggled back
    engine.dispose()


# -- 7. one line naming what to do ----------------------------------------------------------------------------------
def test_unknown_versions_and_bad_ledger_uris_are_one_line_errors(
    settings: Settings, model_uri: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for argv in (["reproduce", "--version", "999"], ["promote", "--version", "999"]):
        code, _, err = _cli(argv, capsys)
        assert code == 1 and len(err.strip().splitlines()) == 1 and "no version '999'" in err, err

    for uri in ("foo://ledger:pw-in-uri@db/x", "not a url"):
        with pytest.raises(RegistryError, match="ledger URI .*expected sqlite:///path") as refused:
            Ledger(uri)
        assert "pw-in-uri" not in str(refused.value)
    monkeypatch.setenv("MLOPS__REGISTRY__LEDGER_URI", "foo://ledger:pw-in-uri@db/x")
    code, _, err = _cli(["models"], capsys)
    assert code == 2 and "registry.ledger_uri" in err and "pw-in-uri" not in err and len(err.strip().splitlines()) == 1
