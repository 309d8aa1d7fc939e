"""The GPU training pod, rendered without a cluster and checked against the Kubernetes schema.

The KubernetesPodOperator is built inside a DAG, its templates are rendered with a minimal task context, and
``build_pod_request_obj(dry_run=True)`` gives the V1Pod the operator would submit.
``ApiClient().sanitize_for_serialization`` turns it into the camelCase manifest the API server receives, and
kubernetes-validate checks it in strict mode (unknown fields are errors) against the newest schema it ships
and against 1.33.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

from mlops.config import PROJECT_ROOT, Settings, load_settings
from mlops.training.pod_spec import (
    SCRATCH_MOUNTS,
    TRAINING_COMMAND,
    check_env,
    looks_like_secret_key,
    looks_like_secret_value,
)

K8S_DIR = PROJECT_ROOT / "include" / "k8s"
RUN_ID = "manual__2026-11-10T06:30:00.123456+00:00"
LABEL_VALUE = re.compile(r"^(?:[A-Za-z0-9](?:[A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?)?$")
DNS_1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
#: Fake credentials put into this process's environment: none of them may reach the manifest.
FAKE_SECRETS = {
    "AWS_ACCESS_KEY_ID": "AKIAFAKEFAKEFAKEFAKE",
    "AWS_SECRET_ACCESS_KEY": "fake-secret-access-key-value",
    "MLFLOW_TRACKING_PASSWORD": "fake-mlflow-password",
    "MLFLOW_TRACKING_TOKEN": "fake-mlflow-token",
}
#: The plain env a DAG passes to the trainer (non-secret settings only).
TRAINER_ENV = {
    "MLOPS_HOME": "/opt/mlops/var",
    "MLOPS_CONFIG": "/opt/mlops/include/mlops.yaml",
    "MLOPS__DATASET__LAKE_URI": "s3://lake/prod",
    "MLOPS__KUBERNETES__CREDENTIALS_SECRET": "mlops-trainer-credentials",
    "MLOPS__MODEL__PARAMS__EVAL_METRIC": "aucpr",
    "MLFLOW_TRACKING_URI": "https://mlflow.example.com",
    "AWS_ENDPOINT_URL": "http://minio.minio.svc:9000",
    "AWS_DEFAULT_REGION": "us-east-1",
    "MLOPS_AS_OF": "{{ ds }}",
}
ARGUMENTS = ["--as-of", "{{ ds }}", "--device", "cuda", "--trigger-json", '{"run_id": "{{ run_id }}"}']
KUBERNETES_CONF = {
    "kubernetes": {
        "namespace": "ml-training",
        "image": "registry.example.com/mlops/trainer:1.2.3",
        "image_pull_policy": "Always",
        "service_account": "trainer-sa",
        "credentials_secret": "trainer-creds",
        "gpu_count": 2,
        "node_selector": {"cloud.google.com/gke-accelerator": "nvidia-l4", "pool": "gpu"},
        "tolerations": [
            {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
            {"key": "spot", "operator": "Equal", "value": "true", "effect": "NoExecute", "tolerationSeconds": "600"},
        ],
        "requests": {"cpu": "3500m", "memory": "14Gi"},
        "limits": {"cpu": "4", "memory": "16Gi", "ephemeral-storage": "20Gi"},
        "startup_timeout_seconds": 2400,
        "schedule_timeout_seconds": 1200,
    }
}


@pytest.fixture(scope="module")
def airflow_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """A throwaway AIRFLOW_HOME, set before airflow is first imported; fake secrets in the environment."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AIRFLOW_HOME", str(tmp_path_factory.mktemp("airflow")))
        patch.setenv("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
        patch.setenv("AIRFLOW__CORE__UNIT_TEST_MODE", "True")
        for key, value in FAKE_SECRETS.items():
            patch.setenv(key, value)
        yield


@pytest.fixture(scope="module")
def validate() -> Any:
    import kubernetes_validate

    return kubernetes_validate


@pytest.fixture(scope="module")
def newest_schema(validate: Any) -> str:
    """The newest Kubernetes minor version whose schemas kubernetes-validate ships (1.37 with 1.37.0)."""
    return validate.utils.major_minor(validate.utils.latest_version())


def make_settings(tmp_path: Path, conf: dict[str, Any] | None = None) -> Settings:
    return load_settings(conf=conf, env={"MLOPS_HOME": str(tmp_path / "mlops")})


def training_pod_operator(settings: Settings, **kwargs: Any) -> Any:
    from mlops.airflow.pod import training_pod_operator as build

    return build(settings, **kwargs)


def build_operator(settings: Settings, **kwargs: Any) -> Any:
    from airflow.sdk import DAG

    with DAG("continuous_training", schedule=None, start_date=dt.datetime(2026, 11, 1), catchup=False) as dag:
        operator = training_pod_operator(
            settings, task_id="train", arguments=list(ARGUMENTS), env=dict(TRAINER_ENV), **kwargs
        )
    return dag, operator


def render_manifest(settings: Settings, **kwargs: Any) -> dict[str, Any]:
    """The camelCase pod manifest the operator would submit for run RUN_ID (no cluster involved)."""
    from kubernetes.client import ApiClient

    dag, operator = build_operator(settings, **kwargs)
    ti = SimpleNamespace(dag_id=dag.dag_id, task_id=operator.task_id, map_index=-1, try_number=1)
    context = {"dag": dag, "task": operator, "ti": ti, "run_id": RUN_ID, "ds": "2026-11-10"}
    operator.render_template_fields(context)
    pod = operator.build_pod_request_obj(context, dry_run=True)
    return ApiClient().sanitize_for_serialization(pod)


@pytest.fixture(scope="module")
def default_manifest(airflow_env: None, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return render_manifest(make_settings(tmp_path_factory.mktemp("default")))


@pytest.fixture(scope="module")
def custom_manifest(airflow_env: None, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return render_manifest(make_settings(tmp_path_factory.mktemp("custom"), KUBERNETES_CONF))


def container(manifest: dict[str, Any]) -> dict[str, Any]:
    (only,) = manifest["spec"]["containers"]  # one container: no XCom sidecar
    return only


def strings(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield str(key)
            yield from strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from strings(item)
    elif node is not None:
        yield str(node)


# --- the manifest -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["default_manifest", "custom_manifest"])
def test_manifest_validates_strictly(which: str, request: pytest.FixtureRequest, validate: Any, newest_schema) -> None:
    manifest = request.getfixturevalue(which)
    for version in sorted({"1.33", newest_schema}):
        assert validate.validate(manifest, version, strict=True) == version
    assert manifest["kind"] == "Pod" and manifest["apiVersion"] == "v1"


def test_gpu_is_a_limit_only_and_resources_match_config(default_manifest, custom_manifest) -> None:
    resources = container(default_manifest)["resources"]
    assert resources["limits"] == {"cpu": "8", "memory": "32Gi", "nvidia.com/gpu": "1"}
    assert resources["requests"] == {"cpu": "4", "memory": "16Gi"}
    assert "nvidia.com/gpu" not in resources["requests"]

    resources = container(custom_manifest)["resources"]
    assert resources["limits"] == {"cpu": "4", "memory": "16Gi", "ephemeral-storage": "20Gi", "nvidia.com/gpu": "2"}
    assert resources["requests"] == {"cpu": "3500m", "memory": "14Gi"}


def test_scheduling_identity_and_image_follow_config(default_manifest, custom_manifest) -> None:
    spec = default_manifest["spec"]
    assert spec["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert spec["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    assert spec["serviceAccountName"] == "mlops-trainer"
    assert default_manifest["metadata"]["namespace"] == "mlops"
    assert container(default_manifest)["image"] == "ghcr.io/mlops-airflow/trainer:0.1.0"

    spec = custom_manifest["spec"]
    assert spec["nodeSelector"] == {"cloud.google.com/gke-accelerator": "nvidia-l4", "pool": "gpu"}
    assert spec["tolerations"] == [
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
        {"key": "spot", "operator": "Equal", "value": "true", "effect": "NoExecute", "tolerationSeconds": 600},
    ]
    assert spec["serviceAccountName"] == "trainer-sa"
    assert custom_manifest["metadata"]["namespace"] == "ml-training"
    assert container(custom_manifest)["image"] == "registry.example.com/mlops/trainer:1.2.3"
    assert container(custom_manifest)["imagePullPolicy"] == "Always"
    assert container(custom_manifest)["envFrom"] == [{"secretRef": {"name": "trainer-creds"}}]


def test_entrypoint_and_templated_arguments(default_manifest) -> None:
    main = container(default_manifest)
    assert main["command"] == TRAINING_COMMAND == ["python", "-m", "mlops.training"]
    assert main["args"] == ["--as-of", "2026-11-10", "--device", "cuda", "--trigger-json", f'{{"run_id": "{RUN_ID}"}}']
    env = {item["name"]: item["value"] for item in main["env"]}
    assert env["MLOPS_AS_OF"] == "2026-11-10"
    assert "NVIDIA_VISIBLE_DEVICES" not in env  # the device plugin sets it


def test_pod_arguments_carry_the_training_request(airflow_env, tmp_path: Path) -> None:
    """The DAG's pod renders its argv from the request XCom; the trainer parses back the very same request."""
    from airflow.sdk import DAG
    from kubernetes.client import ApiClient

    from mlops.training.request import TrainingRequest

    request = TrainingRequest(
        as_of="2026-11-10",
        snapshot={"dataset": "card_transactions", "days": {"train": ["2026-11-01"], "holdout": ["2026-11-09"]}},
        trigger={"reason": "drift: amount", "airflow_run_id": RUN_ID},
        overrides={"model": {"params": {"max_depth": 4}}},
        device="cuda",
    )
    with DAG("continuous_training", schedule=None, start_date=dt.datetime(2026, 11, 1), catchup=False) as dag:
        operator = training_pod_operator(
            make_settings(tmp_path),
            task_id="train",
            arguments=TrainingRequest.templated_argv("ti.xcom_pull(task_ids='resolve_snapshot')"),
            env={},
        )
    xcoms = {"resolve_snapshot": request.to_strings()}
    ti = SimpleNamespace(dag_id=dag.dag_id, task_id="train", map_index=-1, try_number=1,
                         xcom_pull=lambda task_ids: xcoms[task_ids])  # fmt: skip
    context = {"dag": dag, "task": operator, "ti": ti, "run_id": RUN_ID, "ds": "2026-11-10"}
    operator.render_template_fields(context)
    manifest = ApiClient().sanitize_for_serialization(operator.build_pod_request_obj(context, dry_run=True))
    assert TrainingRequest.from_argv(container(manifest)["args"]) == request


def test_credentials_only_through_the_secret(default_manifest) -> None:
    main = container(default_manifest)
    assert main["envFrom"] == [{"secretRef": {"name": "mlops-trainer-credentials"}}]
    env = main["env"]
    assert set(TRAINER_ENV) <= {item["name"] for item in env}
    assert all(item["name"] in TRAINER_ENV or item["name"].startswith("MLOPS__") for item in env)
    for item in env:
        assert set(item) == {"name", "value"}, item  # plain values; no valueFrom/secretKeyRef smuggled in
        assert not looks_like_secret_key(item["name"]), item["name"]
        assert looks_like_secret_value(item["value"]) is None, item
    # The fake credentials of this process's environment are nowhere in the pod (keys or values).
    text = json.dumps(default_manifest)
    for value in FAKE_SECRETS.values():
        assert value not in text
    for key in FAKE_SECRETS:
        assert key not in {item["name"] for item in env}


def test_pod_hardening_and_metadata(default_manifest) -> None:
    spec, metadata = default_manifest["spec"], default_manifest["metadata"]
    assert spec["securityContext"]["runAsNonRoot"] is True and spec["securityContext"]["runAsUser"] == 10001
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container(default_manifest)["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "runAsNonRoot": True,
        "readOnlyRootFilesystem": True,
    }
    assert spec["automountServiceAccountToken"] is False
    assert spec["restartPolicy"] == "Never"
    assert spec["terminationGracePeriodSeconds"] == 120
    assert re.fullmatch(r"train-card-transactions-[a-z0-9]{8}", metadata["name"])
    assert DNS_1123_SUBDOMAIN.match(metadata["name"]) and len(metadata["name"]) <= 63
    labels = metadata["labels"]
    assert labels["app.kubernetes.io/name"] == "mlops-trainer"
    assert labels["mlops/dag-id"] == "continuous_training"
    assert labels["mlops/run-id"] == "manual__2026-11-10T06-30-00.123456-00-00"
    assert labels["dag_id"] == "continuous_training" and labels["task_id"] == "train"  # KPO's own, for reattach
    for key, value in labels.items():
        assert LABEL_VALUE.match(value), (key, value)
    assert metadata["annotations"]["mlops/run-id"] == RUN_ID


def test_root_filesystem_is_read_only_and_scratch_is_one_empty_dir(default_manifest) -> None:
    """A compromised trainer cannot rewrite the image; what it may write dies with the pod, within a limit."""
    main = container(default_manifest)
    assert main["securityContext"]["readOnlyRootFilesystem"] is True
    (volume,) = default_manifest["spec"]["volumes"]
    assert set(volume) == {"name", "emptyDir"} and volume["emptyDir"]["sizeLimit"], "scratch is an emptyDir, bounded"
    mounts = {mount["mountPath"]: mount for mount in main["volumeMounts"]}
    assert set(mounts) == set(SCRATCH_MOUNTS)
    assert all(mount["name"] == volume["name"] and not mount.get("readOnly") for mount in mounts.values())
    assert len({mount["subPath"] for mount in mounts.values()}) == len(mounts), "each folder gets its own sub-path"
    # Every folder the trainer image declares writable (and /tmp) is on the scratch volume.
    dockerfile = (K8S_DIR / "trainer.Dockerfile").read_text()
    writable = {"/tmp", *(re.search(rf"\b{name}=(\S+)", dockerfile).group(1) for name in ("HOME", "MLOPS_HOME"))}
    assert writable == set(mounts)
    env = {item["name"]: item["value"] for item in main["env"]}
    assert env["MLOPS_HOME"] in mounts, "the DAG's MLOPS_HOME must be writable in the pod"


def test_operator_lifecycle_options(airflow_env, tmp_path: Path) -> None:
    from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
    from airflow.providers.cncf.kubernetes.utils.pod_manager import OnFinishAction

    def on_failure(context: Any) -> None:
        pass

    settings = make_settings(tmp_path, KUBERNETES_CONF)
    _, op = build_operator(settings, retries=3, execution_timeout=dt.timedelta(hours=6), on_failure_callback=on_failure)
    assert isinstance(op, KubernetesPodOperator)
    assert op.retries == 3 and op.execution_timeout == dt.timedelta(hours=6)
    assert op.on_failure_callback == [on_failure] or op.on_failure_callback == on_failure
    assert op.durable is True and op.reattach_on_restart is True
    assert op.get_logs is True and op.log_events_on_failure is True
    assert op.on_finish_action == OnFinishAction.DELETE_SUCCEEDED_POD
    assert op.do_xcom_push is False
    assert op.startup_timeout_seconds == 2400 and op.schedule_timeout_seconds == 1200
    assert op.random_name_suffix is True
    assert op.in_cluster is True and op.kubernetes_conn_id is None

    remote = make_settings(tmp_path, {"kubernetes": {"kubernetes_conn_id": "gpu_cluster"}})
    _, op = build_operator(remote, deferrable=True, labels={"team": "risk"})
    assert op.in_cluster is False and op.kubernetes_conn_id == "gpu_cluster"
    assert op.deferrable is True and op.labels["team"] == "risk"
    assert op.labels["app.kubernetes.io/name"] == "mlops-trainer"


def test_the_pod_is_watched_by_the_triggerer_unless_switched_off(airflow_env, tmp_path: Path) -> None:
    """Deferrable by default: hours of GPU training hold no worker slot; ``kubernetes.deferrable: false`` waits.

    (The worker parses the DAG file itself, so the operator it runs is the one built here.)"""
    assert build_operator(make_settings(tmp_path))[1].deferrable is True
    assert build_operator(make_settings(tmp_path, {"kubernetes": {"deferrable": False}}))[1].deferrable is False
    switched = load_settings(env={"MLOPS_HOME": str(tmp_path / "env"), "MLOPS__KUBERNETES__DEFERRABLE": "false"})
    assert build_operator(switched)[1].deferrable is False


def test_operator_serializes_like_the_dag_processor_does(airflow_env, tmp_path: Path) -> None:
    from airflow.serialization.serialized_objects import DagSerialization

    dag, _ = build_operator(make_settings(tmp_path, KUBERNETES_CONF))
    serialized = DagSerialization.to_dict(dag)
    text = json.dumps(serialized)
    assert "trainer-creds" in text and "nvidia.com/gpu" in text
    for value in FAKE_SECRETS.values():
        assert value not in text
    task = DagSerialization.from_dict(serialized).get_task("train")
    assert task.task_type == "KubernetesPodOperator"


def test_managed_arguments_cannot_be_overridden(airflow_env, tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    for name, value in [("do_xcom_push", True), ("env_from", []), ("image", "evil:latest"), ("volumes", [])]:
        with pytest.raises(TypeError, match=name):
            build_operator(settings, **{name: value})


# --- what the schema and the checks refuse ------------------------------------------------------------------


def _corrupt(manifest: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    broken = json.loads(json.dumps(manifest))
    node: Any = broken
    *parents, last = [int(part) if part.isdigit() else part for part in path.split(".")]
    for part in parents:
        node = node[part]
    node[last] = value
    return broken


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("spec.containers.0.resources.limits", [{"nvidia.com/gpu": "1"}]),  # a list, not a map
        ("spec.containers.0.resources.requests.cpu", {"cores": 4}),  # not a quantity
        ("spec.tolerations.0.tolerationSeconds", "forever"),  # not an integer
        ("spec.tolerations.0.operatr", "Exists"),  # unknown field (strict)
        ("spec.containers.0.envFrom.0.secretRef", "mlops-trainer-credentials"),  # not an object
        ("spec.nodeSelector", ["nvidia.com/gpu.present=true"]),
    ],
)
def test_schema_catches_a_corrupted_manifest(default_manifest, validate, newest_schema, path, value) -> None:
    with pytest.raises(validate.ValidationError):
        validate.validate(_corrupt(default_manifest, path, value), newest_schema, strict=True)


@pytest.mark.parametrize(
    ("conf", "message"),
    [
        ({"requests": {"cpu": "16"}}, r"kubernetes\.requests\.cpu \(16\) exceeds kubernetes\.limits\.cpu \(8\)"),
        ({"requests": {"memory": "40Gi"}}, r"kubernetes\.requests\.memory"),
        ({"requests": {"memory": "1Ti"}, "limits": {"memory": "1000Gi"}}, r"kubernetes\.requests\.memory"),
        ({"requests": {"cpu": "4500m"}, "limits": {"cpu": "4"}}, r"kubernetes\.requests\.cpu"),
        ({"requests": {"cpu": "four"}}, r"kubernetes\.requests\.cpu: 'four' is not a Kubernetes quantity"),
        ({"requests": {"nvidia.com/gpu": "1"}}, r"kubernetes\.requests\.nvidia\.com/gpu: GPUs are set in limits"),
        ({"limits": {"cpu": "8", "nvidia.com/gpu": "4"}}, r"kubernetes\.limits\.nvidia\.com/gpu"),
        ({"tolerations": [{"key": "gpu", "operator": "Exist"}]}, r"tolerations\[0\]\.operator: 'Exist'"),
        ({"tolerations": [{"key": "gpu", "effect": "NoScheduling"}]}, r"tolerations\[0\]\.effect"),
        ({"tolerations": [{"key": "gpu", "operator": "Exists", "value": "x"}]}, r"tolerations\[0\]\.value"),
        ({"tolerations": [{"key": "gpu", "operatr": "Exists"}]}, r"tolerations\[0\]: unknown field\(s\) operatr"),
        ({"node_selector": {"pool": "gpu nodes"}}, r"kubernetes\.node_selector\.pool"),
    ],
)
def test_bad_kubernetes_config_raises_naming_the_key(airflow_env, tmp_path: Path, conf, message) -> None:
    settings = make_settings(tmp_path, {"kubernetes": conf})
    with pytest.raises(ValueError, match=message):
        build_operator(settings)


def test_requests_equal_to_limits_and_no_gpu_are_fine(airflow_env, tmp_path: Path, validate, newest_schema) -> None:
    conf = {"kubernetes": {"requests": {"cpu": "8", "memory": "32768Mi"}, "gpu_count": 0}}
    manifest = render_manifest(make_settings(tmp_path, conf))
    assert validate.validate(manifest, newest_schema, strict=True)
    assert container(manifest)["resources"]["limits"] == {"cpu": "8", "memory": "32Gi"}


@pytest.mark.parametrize(
    "key",
    [
        "AWS_SECRET_ACCESS_KEY",
        "AWS_ACCESS_KEY_ID",
        "MLFLOW_TRACKING_PASSWORD",
        "MLFLOW_TRACKING_TOKEN",
        "DB_PASSWD",
        "OPENAI_API_KEY",
        "APIKEY",
        "github_token",
        "GOOGLE_APPLICATION_CREDENTIALS",
        "SSH_PRIVATE_KEY",
        "MLOPS__STORAGE__SECRET_KEY",  # no such settings field: a secret smuggled under the prefix
        "MLOPS__KUBERNETES__TOKEN",
    ],
)
def test_secret_looking_env_key_is_refused(airflow_env, tmp_path: Path, key: str) -> None:
    assert looks_like_secret_key(key)
    from airflow.sdk import DAG

    with DAG("continuous_training", schedule=None), pytest.raises(ValueError, match=f"{key}.*looks like a secret"):
        training_pod_operator(make_settings(tmp_path), task_id="train", arguments=[], env={key: "x"})


@pytest.mark.parametrize(
    "key",
    [
        "MLFLOW_TRACKING_URI",
        "MLFLOW_TRACKING_USERNAME",  # a user name is not a secret (it still lives in the Secret by convention)
        "AWS_DEFAULT_REGION",
        "AWS_ENDPOINT_URL",
        "MLOPS_HOME",
        "MLOPS_CONFIG",
        "MLOPS_TRAINING_BACKEND",
        "MLOPS__KUBERNETES__CREDENTIALS_SECRET",  # the *name* of a Secret: a real settings field
        "MLOPS__DATASET__ID_COLUMN",
        "MLOPS__MODEL__PARAMS__EVAL_METRIC",  # inside a dict-valued field
        "KEYBOARD_LAYOUT",
    ],
)
def test_config_and_plain_env_keys_are_allowed(key: str) -> None:
    assert not looks_like_secret_key(key)
    assert check_env({key: "value"}) == {key: "value"}


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"MLFLOW_TRACKING_URI": "https://user:hunter2@mlflow.example.com"}, "URL with an embedded password"),
        ({"MLOPS__REGISTRY__LEDGER_URI": "postgresql://ledger:pw@db/ledger"}, "URL with an embedded password"),
        ({"SOME_ID": "AKIAABCDEFGHIJKLMNOP"}, "AWS access key id"),
        ({"S3_PROFILE": "{{ conn.aws_default.password }}"}, "reads an Airflow connection"),
        ({"NVIDIA_VISIBLE_DEVICES": "all"}, "device plugin"),
        ({"BAD KEY": "x"}, "not a valid environment variable name"),
        ({"MLOPS_SEED": 42}, "values must be strings"),
    ],
)
def test_secret_looking_values_and_bad_env_are_refused(env: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_env(env)


def test_secret_looking_arguments_are_refused(airflow_env, tmp_path: Path) -> None:
    from airflow.sdk import DAG

    with DAG("continuous_training", schedule=None), pytest.raises(ValueError, match=r"arguments\[1\]"):
        training_pod_operator(
            make_settings(tmp_path),
            task_id="train",
            arguments=["--conf-json", '{"mlflow": {"tracking_uri": "https://u:p@mlflow"}}'],
            env={},
        )


# --- parse-time cost, image and manifests -------------------------------------------------------------------


def test_modules_import_nothing_heavy(tmp_path: Path) -> None:
    """The rules need neither Airflow nor the Kubernetes client; the operator module loads its provider lazily."""
    code = (
        "import sys, mlops.training.pod_spec\n"
        "heavy = [m for m in ('airflow', 'kubernetes', 'xgboost', 'mlflow') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "import mlops.airflow.pod\n"
        "heavy = [m for m in ('kubernetes', 'airflow.providers.cncf.kubernetes.operators', 'xgboost', 'mlflow')\n"
        "         if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "AIRFLOW_HOME": str(tmp_path / "airflow")}
    subprocess.run([sys.executable, "-c", code], check=True, env=env)


def test_trainer_dockerfile_uses_cuda_the_lock_and_the_entrypoint() -> None:
    text = (K8S_DIR / "trainer.Dockerfile").read_text()
    instructions = [line for line in text.splitlines() if line and not line.lstrip().startswith("#")]
    body = "\n".join(instructions)
    base = re.search(r"^ARG CUDA_IMAGE=(\S+)$", body, re.M)
    assert base and re.fullmatch(r"nvidia/cuda:12\.\d+\.\d+-runtime-ubuntu\d\d\.04", base.group(1)), base
    assert re.search(r"^FROM \$\{CUDA_IMAGE\}$", body, re.M)
    assert re.search(r"^COPY requirements\.lock ", body, re.M)
    assert re.search(r"uv pip sync .*requirements\.lock", body)
    install = re.search(r"uv pip install [^\n]*--no-deps[^\n]* \.(\s|$)", body)
    assert install and " -e " not in install.group(0)  # the project itself, non-editable
    assert body.index("uv pip sync") < body.index("--no-deps")
    assert re.search(r"^ARG PYTHON_VERSION=3\.11", body, re.M)
    assert re.search(r'^ENTRYPOINT \[.*"python", "-m", "mlops\.training"\]$', body, re.M)
    user = re.findall(r"^USER (\S+)$", body, re.M)
    assert user and not user[-1].startswith(("root", "0")), user  # ends non-root
    assert "10001" in body  # the uid the pod's securityContext runs as


def test_example_manifests_validate_and_hold_no_secrets(validate, newest_schema) -> None:
    documents = [
        doc
        for name in ("namespace-rbac.yaml", "secret.example.yaml", "networkpolicy.example.yaml")
        for doc in yaml.safe_load_all((K8S_DIR / name).read_text())
        if doc
    ]
    kinds = {doc["kind"]: doc for doc in documents}
    assert set(kinds) == {"Namespace", "ServiceAccount", "Role", "RoleBinding", "Secret", "NetworkPolicy"}
    for doc in documents:
        assert validate.validate(doc, newest_schema, strict=True)
    assert kinds["Namespace"]["metadata"]["name"] == "mlops"
    assert kinds["ServiceAccount"]["metadata"] == {**kinds["ServiceAccount"]["metadata"], "name": "mlops-trainer"}
    rules = {(tuple(rule["resources"]), tuple(sorted(rule["verbs"]))) for rule in kinds["Role"]["rules"]}
    assert (("pods",), ("create", "delete", "get", "list", "patch", "watch")) in rules
    assert (("pods/log",), ("get",)) in rules
    assert not any("secrets" in rule["resources"] for rule in kinds["Role"]["rules"])
    assert kinds["RoleBinding"]["roleRef"]["name"] == kinds["Role"]["metadata"]["name"]
    secret = kinds["Secret"]
    assert secret["metadata"]["name"] == "mlops-trainer-credentials" and "data" not in secret
    assert set(secret["stringData"]) == {
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "MLFLOW_TRACKING_USERNAME",
        "MLFLOW_TRACKING_PASSWORD",
    }
    assert all(re.fullmatch(r"<[a-z-]+>", value) for value in secret["stringData"].values())  # placeholders
    settings = Settings()
    assert settings.kubernetes.credentials_secret == secret["metadata"]["name"]
    assert settings.kubernetes.service_account == kinds["ServiceAccount"]["metadata"]["name"]
    assert settings.kubernetes.namespace == kinds["Namespace"]["metadata"]["name"]


def test_network_policy_isolates_the_training_pod(default_manifest) -> None:
    """No inbound connection; outbound only to named services and public HTTPS, never the metadata service."""
    (policy,) = [doc for doc in yaml.safe_load_all((K8S_DIR / "networkpolicy.example.yaml").read_text()) if doc]
    spec = policy["spec"]
    assert policy["metadata"]["namespace"] == Settings().kubernetes.namespace
    selected = spec["podSelector"]["matchLabels"]
    assert selected.items() <= default_manifest["metadata"]["labels"].items(), "the policy must select the pod"
    assert set(spec["policyTypes"]) == {"Ingress", "Egress"} and spec["ingress"] == []
    for rule in spec["egress"]:
        assert rule.get("ports"), "every egress rule names its ports"
        for peer in rule["to"]:
            block = peer.get("ipBlock")
            if block and block["cidr"] == "0.0.0.0/0":
                assert "169.254.0.0/16" in block["except"], "the cloud metadata service must stay unreachable"
                assert {port["port"] for port in rule["ports"]} == {443}
    dns = [rule for rule in spec["egress"] if {port["port"] for port in rule["ports"]} == {53}]
    assert dns, "without DNS the pod cannot resolve MLflow or S3"


def test_the_pod_carries_the_trainer_config_and_no_worker_path(airflow_env, tmp_path: Path) -> None:
    """Loaded from the pod's env alone (no config file, its own MLOPS_HOME), the trainer sees the worker's config."""
    conf = {
        "dataset": {"lake_uri": "s3://lake/prod", "label": {"positive": "1", "delay_days": 2}},
        "storage": {"s3_endpoint_url": "http://minio:9000"},
        "versioning": {"registry_remote": "https://git.example.com/data-registry.git",
                       "registry_path": "/var/lib/worker-only/data-registry"},
        "model": {"params": {"max_depth": 4}, "num_boost_round": 50},
        "mlflow": {"tracking_uri": "http://mlflow:5000"},
    }  # fmt: skip
    worker = make_settings(tmp_path, conf)
    env = {item["name"]: item["value"] for item in container(render_manifest(worker))["env"]}
    assert "/var/lib/worker-only" not in json.dumps(env)  # a worker's local path means nothing in the pod
    pod = load_settings(env={**{k: v for k, v in env.items() if k.startswith("MLOPS__")}, "MLOPS_HOME": "/pod-home"})
    for section in ("dataset", "storage", "training", "model", "mlflow"):
        assert getattr(pod, section) == getattr(worker, section), section
    assert pod.dataset.label.positive == "1"  # a string stays a string through the env
    assert pod.registry_url == "https://git.example.com/data-registry.git"


def test_a_pod_that_finds_no_usable_training_data_ends_skipped(airflow_env, tmp_path: Path) -> None:
    """Exit 4 of the trainer (too few labelled days or positives) skips the task; a crash (1) is retried."""
    from mlops.training.request import EXIT_NO_TRAINING_DATA

    _, operator = build_operator(make_settings(tmp_path))
    assert EXIT_NO_TRAINING_DATA in operator.skip_on_exit_code and 1 not in operator.skip_on_exit_code
    with pytest.raises(TypeError, match="skip_on_exit_code"):
        build_operator(make_settings(tmp_path), skip_on_exit_code=1)
