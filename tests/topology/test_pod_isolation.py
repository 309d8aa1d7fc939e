"""The GPU pod needs only URLs and its Secret: its exact command, run where none of the worker's disk is visible.

The ``train`` task of a model's real ``<model>__continuous_training`` DAG (kubernetes backend), as the DAG
factory (``dags/mlops_models.py``) builds it from the model file, is rendered by the provider into the pod
manifest it would submit (validated against the Kubernetes schema). Its container's command,
arguments and environment -- plus the Secret's keys, as ``envFrom`` would add them -- then run as a process
in a fresh mount namespace with an empty tmpfs over ``$MLOPS_HOME`` and over the checkout's ``var/``: the
worker's registry working copy, lake caches and MLflow files are gone, so the trainer can reach the data
only through the registry's git URL, the DVC remote and the lake on S3, and MLflow only over HTTP. The
worker side then finds the run and gates it, as the DAG's ``assess`` step does.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

from mlops.config import Settings, deep_merge, load_settings
from tests.services import ObjectStore, mlflow_server

pytestmark = pytest.mark.topology

ROOT = Path(__file__).resolve().parents[2]
FIRST_DAY = dt.date(2026, 11, 1)
DAYS = 6
ROWS = 3_000
RUN_ID = "manual__2026-11-08T00:00:00+00:00"
#: The model trained here: a copy of the shipped model file, in the worker's models folder.
MODEL = "card_transactions"
#: The keys of the Kubernetes Secret ``kubernetes.credentials_secret`` (include/k8s/secret.example.yaml).
SECRET = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


def _can_unshare() -> bool:
    return os.geteuid() == 0 and shutil.which("unshare") is not None


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Services only: S3 (moto over HTTP), an MLflow server with artifacts on it, a bare git remote."""
    if not _can_unshare():
        pytest.skip("needs root and unshare(1) for a private mount namespace")
    root = tmp_path_factory.mktemp("pod-isolation")
    with ObjectStore(buckets=("lake", "dvc", "mlflow")) as s3, mlflow_server(root / "mlflow", s3) as tracking:
        bare = root / "registry.git"
        subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(bare)], check=True)
        home = root / "worker-home"
        config = {  # the deployment's: every model's lake is <lake_root>/<model>
            "storage": {"lake_root": "s3://lake/lake", "s3_endpoint_url": s3.endpoint},
            "versioning": {"remote_url": "s3://dvc/remote", "registry_remote": f"file://{bare}"},
            "mlflow": {"tracking_uri": tracking},
            "kubernetes": {"gpu_count": 0},
        }
        config_file = root / "mlops.yaml"
        config_file.write_text(json.dumps(config))
        models = root / "models"
        models.mkdir()
        small = {
            "dataset": {"label": {"delay_days": 0}, "contract": str(ROOT / "include/contracts/card_transactions.yaml")},
            "training": {"window_days": DAYS, "holdout_days": 1, "validation_days": 1, "min_positives": 5},
            "model": {"num_boost_round": 20, "early_stopping_rounds": 5},
        }
        shipped = yaml.safe_load((ROOT / "include" / "models" / f"{MODEL}.yaml").read_text())
        (models / f"{MODEL}.yaml").write_text(yaml.safe_dump(deep_merge(shipped, small)))
        env = {**s3.env, "MLOPS_HOME": str(home), "MLOPS_CONFIG": str(config_file), "MLOPS_MODELS_DIR": str(models),
               "MLOPS_TRAINING_BACKEND": "kubernetes", "AIRFLOW_HOME": str(root / "airflow"),
               "AIRFLOW__CORE__LOAD_EXAMPLES": "False", "AIRFLOW__CORE__UNIT_TEST_MODE": "True"}  # fmt: skip
        with pytest.MonkeyPatch.context() as patch:
            for key, value in env.items():
                patch.setenv(key, value)
            yield {"settings": load_settings(model=MODEL), "home": home, "s3": s3, "root": root}


def _validated_days(settings: Settings) -> None:
    """Land, validate and snapshot the days on the worker: the registry is pushed to its git remote."""
    from mlops.data.landing import land_days
    from mlops.validation import validate_and_version

    land_days(settings, FIRST_DAY, days=DAYS, rows_per_day=ROWS, seed=3,
              labels_until=FIRST_DAY + dt.timedelta(days=DAYS))  # fmt: skip
    for offset in range(DAYS):
        marker = validate_and_version(settings, FIRST_DAY + dt.timedelta(days=offset))
        assert marker["dvc"]["registry"] == settings.versioning.registry_remote


def _rendered_train_pod(settings: Settings, request_strings: dict[str, str]) -> dict[str, Any]:
    """The manifest the `train` task of the model's real DAG (made by the DAG factory from the models folder)
    submits for RUN_ID, rendered by the KubernetesPodOperator."""
    from kubernetes.client import ApiClient

    path = ROOT / "dags" / "mlops_models.py"
    spec = importlib.util.spec_from_file_location("mlops_models_under_test", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    dag = getattr(module, settings.dag_id("continuous_training"))
    operator = dag.get_task("train")
    assert type(operator).__name__ == "KubernetesPodOperator"
    xcoms = {"resolve_snapshot": request_strings}
    ti = SimpleNamespace(dag_id=dag.dag_id, task_id="train", map_index=-1, try_number=1,
                         xcom_pull=lambda task_ids: xcoms[task_ids])  # fmt: skip
    context = {"dag": dag, "task": operator, "ti": ti, "run_id": RUN_ID, "ds": "2026-11-08"}
    operator.render_template_fields(context)
    manifest = ApiClient().sanitize_for_serialization(operator.build_pod_request_obj(context, dry_run=True))
    import kubernetes_validate

    kubernetes_validate.validate(manifest, "1.33", strict=True)
    return manifest


def _run_isolated(container: dict[str, Any], manifest: dict[str, Any], home: Path, log: Path) -> int:
    """The container's command in a private mount namespace: empty tmpfs over MLOPS_HOME and the checkout's var/."""
    volumes = [v for v in manifest["spec"].get("volumes", []) if "hostPath" in v or "persistentVolumeClaim" in v]
    assert not volumes, f"the pod mounts node or shared storage: {volumes}"
    env = {item["name"]: item["value"] for item in container.get("env", [])}
    assert [source["secretRef"]["name"] for source in container["envFrom"]] == ["mlops-trainer-credentials"]
    env.update(SECRET)  # what envFrom adds from the Secret
    # What the trainer image sets (include/k8s/trainer.Dockerfile): its own MLOPS_HOME and HOME, the project on PATH.
    env.update({"MLOPS_HOME": str(home), "HOME": str(home / "home"), "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
                "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin"})  # fmt: skip
    var = ROOT / "var"
    var.mkdir(exist_ok=True)
    home.mkdir(parents=True, exist_ok=True)
    hide = f"mount -t tmpfs tmpfs {home} && mount -t tmpfs tmpfs {var} && mkdir -p {home}/home"
    pod_command = [*container["command"], *container["args"]]
    command = ["unshare", "-m", "--", "sh", "-c", f'{hide} && exec "$@"', "pod", *pod_command]
    with log.open("w") as out:
        return subprocess.run(command, env=env, stdout=out, stderr=subprocess.STDOUT, timeout=600).returncode


def test_the_training_pod_needs_only_urls_and_its_secret(deployment: dict[str, Any]) -> None:
    from mlops import models
    from mlops.models import Artifacts, Tags
    from mlops.training.pipeline import assess
    from mlops.training.request import TrainingRequest
    from mlops.training.snapshot import TrainingSnapshot, resolve_snapshot

    settings: Settings = deployment["settings"]
    _validated_days(settings)
    snapshot = resolve_snapshot(settings, FIRST_DAY + dt.timedelta(days=DAYS))
    assert snapshot.registry == settings.versioning.registry_remote  # a URL, not the worker's working copy
    request = TrainingRequest(as_of=snapshot.as_of, snapshot=snapshot.to_dict(), device="cuda",
                              trigger={"reason": "pod isolation test", "airflow_run_id": RUN_ID,
                                       "airflow_dag_id": settings.dag_id("continuous_training")})  # fmt: skip
    manifest = _rendered_train_pod(settings, request.to_strings())
    (container,) = manifest["spec"]["containers"]
    # The pod is told its model's lake (<lake_root>/<model>), as the worker resolves it.
    pod_env = {item["name"]: item["value"] for item in container.get("env", [])}
    assert settings.lake_uri == f"s3://lake/lake/{MODEL}"
    assert json.loads(pod_env["MLOPS__DATASET__LAKE_URI"]) == settings.lake_uri

    log = deployment["root"] / "pod.log"
    code = _run_isolated(container, manifest, deployment["home"], log)
    assert code == 0, f"the pod's command failed ({code}):\n{log.read_text()[-4000:]}"
    assert (deployment["home"] / "data-registry").exists()  # the worker's copy is still here, the pod never saw it

    # The worker side finds the pod's run in MLflow and gates it, as `assess` does after `train`.
    found = models.find_training_run(settings, settings.dag_id("continuous_training"), RUN_ID)
    run = models.get_run(settings, found.run_id)
    assert run.data.tags[Tags.DVC_REGISTRY] == settings.versioning.registry_remote
    assert run.data.tags[Tags.DVC_REVISION] == snapshot.registry_revision
    assert models.load_artifact(settings, found.run_id, Artifacts.REFERENCE_PROFILE)["features"]
    assessment = assess(settings, TrainingSnapshot.from_dict(snapshot.to_dict()), found.run_id, found.model_uri)
    assert assessment.run_id == found.run_id and assessment.metrics["rows"] > 0
    assert assessment.report_uri.startswith("mlflow-artifacts:")  # on the server's S3, not a local path
