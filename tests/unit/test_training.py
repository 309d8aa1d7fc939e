"""Training in-process: the window, its failure modes, lineage in MLflow, features, and reproducibility."""

from __future__ import annotations

import datetime as dt
import os
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mlops.config import Settings, load_settings
from mlops.data.contract import Contract
from mlops.data.lake import Lake
from mlops.data.landing import land_days
from mlops.features import build_matrix, feature_spec
from mlops.training.snapshot import NoTrainingData, resolve_snapshot
from mlops.validation import validate_and_version

START, DAYS = dt.date(2026, 8, 1), 9
AS_OF = START + dt.timedelta(days=DAYS + 2)  # labels of every day have arrived (delay 3)


@pytest.fixture(scope="module")
def trained_home(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """A lake with nine validated, labelled days; trained once for the module."""
    settings = load_settings(env={"MLOPS_HOME": str(tmp_path_factory.mktemp("home"))})
    land_days(settings, START, DAYS, rows_per_day=5_000, seed=13, labels_until=AS_OF)
    for offset in range(DAYS):
        validate_and_version(settings, START + dt.timedelta(days=offset))
    return settings


def test_window_is_split_by_time_with_the_holdout_last(trained_home: Settings) -> None:
    snapshot = resolve_snapshot(trained_home, AS_OF)
    days = [START + dt.timedelta(days=i) for i in range(DAYS)]
    assert snapshot.days["holdout"] == [d.isoformat() for d in days[-3:]]
    assert snapshot.days["valid"] == [d.isoformat() for d in days[-5:-3]]
    assert snapshot.days["train"] == [d.isoformat() for d in days[:-5]]
    assert len(snapshot.registry_revision) == 40 and set(snapshot.day_revisions) == {d.isoformat() for d in days}


def test_days_whose_labels_have_not_arrived_are_left_out(trained_home: Settings) -> None:
    early = resolve_snapshot(trained_home, START + dt.timedelta(days=DAYS - 1))  # last 3 days still unlabelled
    assert early.days["holdout"][-1] == (START + dt.timedelta(days=DAYS - 4)).isoformat()
    with pytest.raises(NoTrainingData, match=r"has 3 validated day\(s\) with labels; need at least 6"):
        resolve_snapshot(trained_home, START + dt.timedelta(days=5))


def test_training_logs_lineage_artifacts_and_a_loadable_model(trained_home: Settings, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    import mlflow

    from mlops.training.train import train

    monkeypatch.chdir(tmp_path)
    snapshot = resolve_snapshot(trained_home, AS_OF)
    result = train(trained_home, snapshot, {"reason": "unit test", "airflow_dag_id": "continuous_training"})
    assert os.listdir(tmp_path) == [], "MLflow must not write into the current directory"
    run = mlflow.get_run(result.run_id)
    tags = run.data.tags
    assert tags["mlops.dvc_revision"] == snapshot.registry_revision
    assert tags["mlops.trigger_reason"] == "unit test" and tags["airflow.dag_id"] == "continuous_training"
    assert len(tags["mlops.git_commit"]) == 40 and len(tags["mlops.config_hash"]) == 64
    artifacts = {a.path for a in mlflow.artifacts.list_artifacts(run_id=result.run_id)} if hasattr(
        mlflow.artifacts, "list_artifacts") else set()  # fmt: skip
    for name in ("feature_spec.json", "reference_profile.json", "shap_summary.json", "feature_importance.json"):
        assert name in artifacts
    profile = mlflow.artifacts.load_dict(f"runs:/{result.run_id}/reference_profile.json")
    assert set(profile["features"]) == set(feature_spec(trained_home, Contract.load(trained_home.contract_path)).names)
    assert abs(sum(profile["features"]["channel"]["freq"]) + profile["features"]["channel"]["missing"] - 1) < 1e-9
    model = mlflow.xgboost.load_model(result.model_uri)
    assert model.num_boosted_rounds() == result.rounds and 0.0 < result.valid_aucpr <= 1.0


def test_a_single_class_in_the_labels_is_a_clear_error(trained_home: Settings, tmp_path: Path) -> None:
    from mlops.training.train import train

    registry = trained_home.versioning.model_copy(update={"registry_path": str(trained_home.dvc_registry_path)})
    settings = trained_home.model_copy(update={"home": tmp_path, "versioning": registry})  # own lake, same DVC
    shutil.copytree(trained_home.lake_uri, settings.lake_uri)
    lake = Lake.from_settings(settings)
    for day in lake.days("labels"):
        path = lake.data_files(lake.partition("labels", day))[0]
        labels = pq.read_table(path)
        pq.write_table(labels.set_column(1, "is_fraud", pa.array(np.zeros(labels.num_rows, np.int64))), path)
    with pytest.raises(NoTrainingData, match="0 positive label"):
        train(settings, resolve_snapshot(settings, AS_OF), {"reason": "unit test"})


def test_training_and_scoring_build_the_same_features(trained_home: Settings) -> None:
    """One feature function: batches of a day give the rows of the whole-day matrix, unknown categories NaN."""
    lake = Lake.from_settings(trained_home)
    spec = feature_spec(trained_home, Contract.load(trained_home.contract_path))
    table = lake.read_partition(lake.partition("raw", START))
    whole = build_matrix(table, spec)
    batched = np.vstack([build_matrix(batch, spec) for batch in table.to_batches(max_chunksize=777)])
    np.testing.assert_array_equal(whole, batched)
    odd = table.slice(0, 3).set_column(table.schema.get_field_index("channel"), "channel",
                                       pa.array(["pos", "carrier-pigeon", None]))  # fmt: skip
    channel = build_matrix(odd, spec)[:, spec.names.index("channel")]
    assert channel[0] == spec.categories["channel"].index("pos") and np.isnan(channel[1:]).all()
    with pytest.raises(KeyError, match="amount"):
        build_matrix(table.drop_columns(["amount"]), spec)


def test_reproducing_a_version_gives_the_same_metrics(trained_home: Settings) -> None:
    from mlops.registry import Registry
    from mlops.training.train import reproduce, train

    result = train(trained_home, resolve_snapshot(trained_home, AS_OF), {"reason": "to reproduce"})
    version = Registry(trained_home).register(result.run_id, result.model_uri, {"gates.passed": "true"})
    again = reproduce(trained_home, version)
    assert again["reproduced_run"] != again["original_run"]
    assert again["reproduced_valid_aucpr"] == again["original_valid_aucpr"]
    assert again["reproduced_rounds"] == again["original_rounds"]


def test_unreachable_mlflow_fails_cleanly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """MLflow down: a clear error naming the server (the Airflow task then retries with backoff), no version."""
    import socket

    from mlops.registry import Registry

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "3")
    settings = load_settings(
        env={"MLOPS_HOME": str(tmp_path), "MLOPS__MLFLOW__TRACKING_URI": f"http://127.0.0.1:{port}"}
    )
    registry = Registry(settings)
    with pytest.raises(Exception, match=f"127.0.0.1:{port}"):
        registry.register("0" * 32, "models:/m-0", {"gates.passed": "true"})
    assert registry.ledger().moves(settings.model_name) == [], "nothing was recorded"


def test_a_local_trainer_dies_with_its_killed_task_process() -> None:
    """Task timeout or lost worker SIGKILLs the task process: its trainer must stop too, not run on orphaned."""
    import signal
    import subprocess
    import sys
    import time

    if not sys.platform.startswith("linux"):
        pytest.skip("the parent-death signal is Linux's prctl")

    parent_code = (
        "import sys, time\n"
        "from mlops.training.local import spawn_trainer\n"
        "child = spawn_trainer([sys.executable, '-c', \"import time; print('up', flush=True); time.sleep(600)\"])\n"
        "print(child.stdout.readline().strip(), child.pid, flush=True)\n"
        "time.sleep(600)\n"
    )

    def alive(pid: int) -> bool:  # a zombie waiting for its reaper has stopped running
        try:
            with open(f"/proc/{pid}/stat") as stat:
                return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
        except FileNotFoundError:
            return False

    parent = subprocess.Popen([sys.executable, "-c", parent_code], stdout=subprocess.PIPE, text=True)
    child = None
    try:
        assert parent.stdout is not None
        up, pid = parent.stdout.readline().split()
        child = int(pid)
        assert up == "up" and alive(child), "the trainer started"
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=10)
        deadline = time.monotonic() + 5
        while alive(child) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not alive(child), "the trainer outlived its SIGKILLed task process"
    finally:
        parent.kill()
        parent.wait()
        if child is not None and alive(child):
            os.kill(child, signal.SIGKILL)


def test_no_usable_training_data_is_its_own_exit_code_and_ends_the_task_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The trainer says "no data yet" with exit 4, distinct from a crash (1, retried): the runner raises NoTrainingData
    (the DAG's task then ends skipped) and the GPU pod's operator skips on that code."""
    import subprocess
    import sys

    from mlops.training import __main__ as entrypoint
    from mlops.training import local, train
    from mlops.training.request import EXIT_NO_TRAINING_DATA, TrainingRequest

    monkeypatch.setenv("MLOPS_HOME", str(tmp_path))

    def no_positives(*args: object, **kwargs: object) -> None:
        raise NoTrainingData("the train split has 0 positive labels")

    monkeypatch.setattr(train, "train", no_positives)
    snapshot = {"dataset": "card_transactions", "as_of": "2026-11-10", "registry": "unused", "registry_revision": "r",
                "days": {"train": [], "valid": [], "holdout": []}, "day_revisions": {}}  # fmt: skip
    request = TrainingRequest(as_of="2026-11-10", snapshot=snapshot)
    assert entrypoint.main(request.to_argv()) == EXIT_NO_TRAINING_DATA != 1

    def trainer_exiting(code: int) -> object:
        script = f"import sys; print('no usable training data: 0 positive labels'); sys.exit({code})"
        return lambda command, env=None: subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                                                stderr=subprocess.STDOUT, text=True)  # fmt: skip

    monkeypatch.setattr(local, "spawn_trainer", trainer_exiting(EXIT_NO_TRAINING_DATA))
    with pytest.raises(NoTrainingData, match="0 positive labels"):
        local.run_local(request)
    monkeypatch.setattr(local, "spawn_trainer", trainer_exiting(1))  # a crash stays an error Airflow retries
    with pytest.raises(RuntimeError, match="exited with 1"):
        local.run_local(request)


def test_a_window_after_a_change_starts_at_it_with_a_shorter_split(trained_home: Settings) -> None:
    """After a confirmed change in what the labels say, days before it teach the old concept: the window starts at
    the change, splits the few days since it (train keeps about half), and needs three of them."""
    days = [(START + dt.timedelta(days=i)).isoformat() for i in range(DAYS)]
    since = START + dt.timedelta(days=5)  # four labelled days since (days 5..8)
    snapshot = resolve_snapshot(trained_home, AS_OF, since=since)
    assert snapshot.days == {"train": days[5:7], "valid": days[7:8], "holdout": days[8:9]}
    assert resolve_snapshot(trained_home, AS_OF, since=START).days == resolve_snapshot(trained_home, AS_OF).days
    with pytest.raises(NoTrainingData, match=r"labels changed from dt=2026-08-08 .* 2 labelled day\(s\) since then"):
        resolve_snapshot(trained_home, AS_OF, since=START + dt.timedelta(days=7))


def test_the_run_shows_its_datasets_and_a_learning_curve(trained_home: Settings, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    """The MLflow run lists the train and validation splits it used (DVC registry and revision as the source) and
    the validation metric of every boosting round."""
    import json

    from mlops.models import client
    from mlops.training.snapshot import load_split
    from mlops.training.train import train

    monkeypatch.chdir(tmp_path)
    snapshot = resolve_snapshot(trained_home, AS_OF)
    result = train(trained_home, snapshot, {"reason": "unit test"})
    mlflow_client = client(trained_home)
    run = mlflow_client.get_run(result.run_id)

    inputs = {item.dataset.name: item for item in run.inputs.dataset_inputs}
    name = trained_home.dataset.name
    assert set(inputs) == {f"{name}.train", f"{name}.valid"}
    spec = feature_spec(trained_home, Contract.load(trained_home.contract_path))
    for split, context in (("train", "training"), ("valid", "validation")):
        item = inputs[f"{name}.{split}"]
        assert {tag.key: tag.value for tag in item.tags}["mlflow.data.context"] == context
        assert item.dataset.source_type == "dvc"
        source = json.loads(item.dataset.source)
        assert source["url"] == snapshot.registry and source["rev"] == snapshot.registry_revision
        assert source["days"] == snapshot.days[split]
        data = load_split(trained_home, snapshot, split, spec)
        assert item.dataset.digest == data.ids_sha256[:16]  # the same rows give the same digest
        assert json.loads(item.dataset.profile)["num_rows"] == len(data.y)
        assert [col["name"] for col in json.loads(item.dataset.schema)["mlflow_colspec"]] == list(spec.names)

    curve = mlflow_client.get_metric_history(result.run_id, "curve/valid-aucpr")
    steps = sorted(point.step for point in curve)
    grown = result.rounds + trained_home.model.early_stopping_rounds  # early stopping ran this many more rounds
    assert steps == list(range(len(steps))) and result.rounds <= len(steps) <= grown
    best = max(curve, key=lambda point: (point.value, -point.step))
    assert best.step == result.rounds - 1 and best.value == pytest.approx(result.valid_aucpr)
