"""What a valid GPU training pod is: the rules the kubernetes backend's pod must follow, without Airflow.

* GPUs are requested in ``limits`` only (``nvidia.com/gpu: "1"``), as Kubernetes requires for extended
  resources; the scheduler uses the limit as the request. ``NVIDIA_VISIBLE_DEVICES`` is left to the device
  plugin. ``requests`` may not exceed ``limits`` (:func:`resource_requirements`, before the API server
  would refuse the pod).
* Credentials reach the container only through ``envFrom`` of the Kubernetes Secret
  ``kubernetes.credentials_secret``: no secret value is ever in DAG code, run conf, task env or logs.
  :func:`check_env` refuses environment variables that look like secrets (the rule is documented there).
* GPU nodes are found by ``node_selector`` and ``tolerations`` (:func:`tolerations`,
  :func:`check_node_selector` apply the API server's rules early).
* The root filesystem is read-only: a compromised trainer cannot change the image's code. The only writable
  paths are the image's scratch folders (:data:`SCRATCH_MOUNTS`), all on one ``emptyDir`` that dies with the
  pod (:func:`scratch_volume`); results go to MLflow and S3.

:mod:`mlops.airflow.pod` builds the KubernetesPodOperator from these. Imported at DAG-parse time:
:mod:`mlops.config` (and pydantic) only at top level; the Kubernetes client inside the functions using it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel

from mlops.config import ENV_PREFIX, Settings
from mlops.redact import looks_like_secret_key
from mlops.secret_rules import AWS_ACCESS_KEY_ID, SECRET_PARAMETER, SLACK_WEBHOOK, URL_CREDENTIALS

#: The container's command: the same entrypoint as the local backend.
TRAINING_COMMAND = ["python", "-m", "mlops.training"]

#: ``app.kubernetes.io/name`` of every training pod (and of the ServiceAccount in include/k8s/).
APP_NAME = "mlops-trainer"
#: Seconds between SIGTERM and SIGKILL: enough for the trainer to close its MLflow run as failed. The pod's
#: command replaces the image's tini entrypoint, so python is PID 1 and ignores SIGTERM unless
#: ``mlops.training`` installs a handler; without one the pod dies by SIGKILL after this grace period.
TERMINATION_GRACE_SECONDS = 120
#: The non-root uid/gid of the trainer image (include/k8s/trainer.Dockerfile).
TRAINER_UID = 10001
TRAINER_GID = 10001
#: The pod's one writable volume (an ``emptyDir``; the root filesystem is read-only) ...
SCRATCH_VOLUME = "scratch"
#: ... mounted over the trainer image's writable folders (mount path -> sub-path in the volume): ``/tmp``
#: (MLflow stages artifacts there), ``HOME`` and ``MLOPS_HOME`` (MLflow, XGBoost and DVC caches, the DVC
#: registry checkout) as set by include/k8s/trainer.Dockerfile.
SCRATCH_MOUNTS = {"/tmp": "tmp", "/home/trainer": "home", "/opt/mlops/var": "mlops-home"}
#: The emptyDir's size limit: the kubelet evicts a pod that writes more (the snapshot's DVC cache dominates).
SCRATCH_SIZE_LIMIT = "20Gi"

# --- the env rule ------------------------------------------------------------------------------------------
#: Variables the GPU device plugin owns: setting them would override the GPUs the pod was given.
DEVICE_PLUGIN_ENV = frozenset({"NVIDIA_VISIBLE_DEVICES", "CUDA_VISIBLE_DEVICES", "NVIDIA_DRIVER_CAPABILITIES"})
_TEMPLATE_CONNECTION = re.compile(r"(\{\{|\{%)[^}]*\bconn\s*[.\[]")

_LABEL_VALUE = re.compile(r"^(?:[A-Za-z0-9](?:[A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?)?$")
_TOLERATION_FIELDS = {
    "key": "key",
    "operator": "operator",
    "value": "value",
    "effect": "effect",
    "tolerationSeconds": "toleration_seconds",
    "toleration_seconds": "toleration_seconds",
}
# The API server's rules for tolerations; the JSON schema types these fields as plain strings, so a typo such
# as ``operator: Exist`` would pass kubernetes-validate and fail only at pod creation.
TOLERATION_OPERATORS = ("Exists", "Equal")
TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")


def looks_like_secret_value(value: str) -> str | None:
    """Why ``value`` must not be a plain env value or argument (``None`` when it may).

    What redaction masks (the rules of :mod:`mlops.secret_rules`, so the two never disagree): URLs with a
    password (``https://user:pass@host``, ``postgresql://u:p@db/x``), secret parameters (``?token=``,
    ``api_key=``, ``X-Amz-Signature=``, ``password=``), Slack webhook URLs and AWS access key ids; and Jinja
    templates that read an Airflow connection (``{{ conn.x.password }}`` would render the secret into the pod
    spec, which anyone who can read pods sees).
    """
    if URL_CREDENTIALS.search(value):
        return "a URL with an embedded password"
    if match := SECRET_PARAMETER.search(value):
        return f"a secret parameter ({match.group(1)}...)"
    if SLACK_WEBHOOK.search(value):
        return "a Slack webhook URL (its path is the credential)"
    if AWS_ACCESS_KEY_ID.search(value):
        return "an AWS access key id"
    if _TEMPLATE_CONNECTION.search(value):
        return "a template that reads an Airflow connection"
    return None


#: The config the trainer reads, handed to the pod as ``MLOPS__*`` env (everything else stays on the workers:
#: the ledger, gates, promotion, kubernetes). ``versioning.registry_path`` is a worker's local working copy:
#: the pod opens the registry by the URL and revision of its snapshot instead.
TRAINER_CONFIG_SECTIONS = ("dataset", "storage", "versioning", "training", "model", "mlflow")
TRAINER_CONFIG_EXCLUDED = {"versioning": {"registry_path"}, "training": {"backend"}}


def trainer_env(settings: Settings) -> dict[str, str]:
    """The deployment's trainer config as ``MLOPS__SECTION__FIELD`` env: the pod needs no file and no volume.

    Values are JSON (which the config's env layer reads as YAML, so ``"1"`` stays a string); unset (null)
    fields are left out, so the image's defaults apply as on the worker. A value holding a credential is
    left out too: put that setting in the pod's Secret (``envFrom``) instead.
    """
    import json

    env: dict[str, str] = {}

    def flatten(prefix: str, section: BaseModel, excluded: set[str]) -> None:
        values = section.model_dump(mode="json")
        for name in type(section).model_fields:
            value = getattr(section, name)
            if name in excluded or value is None:
                continue
            key = f"{prefix}__{name.upper()}"
            if isinstance(value, BaseModel):
                flatten(key, value, set())
            elif looks_like_secret_value(encoded := json.dumps(values[name])) is None:
                env[key] = encoded
            # else: a credential inside a config value (a URL with a password) stays out of the pod spec; the
            # pod gets that setting from its Secret (envFrom), where such values belong.

    for section in TRAINER_CONFIG_SECTIONS:
        excluded = TRAINER_CONFIG_EXCLUDED.get(section, set())
        flatten(f"{ENV_PREFIX}{section.upper()}", getattr(settings, section), excluded)
    lake_key = f"{ENV_PREFIX}DATASET__LAKE_URI"
    if lake_key not in env and looks_like_secret_value(settings.lake_uri) is None:
        env[lake_key] = json.dumps(settings.lake_uri)  # the model's lake as the worker resolves it (its own folder)
    return env


def check_env(env: Mapping[str, str]) -> dict[str, str]:
    """Return ``env`` as a plain dict of strings, or raise ValueError naming the first offending key.

    Secrets go into the Kubernetes Secret ``kubernetes.credentials_secret`` (``envFrom``), never here.
    """
    checked: dict[str, str] = {}
    for key, value in env.items():
        if not isinstance(key, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.-]*", key):
            raise ValueError(f"env key {key!r} is not a valid environment variable name")
        if key.upper() in DEVICE_PLUGIN_ENV:
            raise ValueError(f"env key {key!r} is set by the GPU device plugin for the GPUs the pod was given")
        if looks_like_secret_key(key):
            raise ValueError(
                f"env key {key!r} looks like a secret: put it in the Kubernetes Secret named by "
                "kubernetes.credentials_secret (it reaches the pod through envFrom), not in the task env"
            )
        if not isinstance(value, str):
            raise ValueError(f"env key {key!r}: values must be strings, got {type(value).__name__}")
        reason = looks_like_secret_value(value)
        if reason:
            raise ValueError(f"env key {key!r}: the value is {reason}; move the secret into the Kubernetes Secret")
        checked[key] = value
    return checked


def check_arguments(arguments: Iterable[str]) -> list[str]:
    """Return the container arguments as a list of strings; refuse secret-looking values (see above)."""
    checked = []
    for index, argument in enumerate(arguments):
        if not isinstance(argument, str):
            raise ValueError(f"arguments[{index}] must be a string, got {type(argument).__name__}")
        reason = looks_like_secret_value(argument)
        if reason:
            raise ValueError(f"arguments[{index}] is {reason}; secrets reach the pod only through its Secret")
        checked.append(argument)
    return checked


def resource_requirements(settings: Settings) -> tuple[dict[str, str], dict[str, str]]:
    """``(requests, limits)`` of the training container, GPU in the limits only; ValueError names the key."""
    from kubernetes.utils.quantity import parse_quantity

    spec = settings.kubernetes
    gpu = spec.gpu_resource
    if gpu in spec.requests:
        raise ValueError(
            f"kubernetes.requests.{gpu}: GPUs are set in limits only (extended resources are requested by their "
            "limit); use kubernetes.gpu_count"
        )
    if gpu in spec.limits:
        raise ValueError(f"kubernetes.limits.{gpu}: set the number of GPUs with kubernetes.gpu_count")
    parsed: dict[str, dict[str, Any]] = {}
    for section, values in (("requests", spec.requests), ("limits", spec.limits)):
        parsed[section] = {}
        for key, quantity in values.items():
            try:
                parsed[section][key] = parse_quantity(quantity)
            except (ValueError, TypeError) as exc:
                raise ValueError(f"kubernetes.{section}.{key}: {quantity!r} is not a Kubernetes quantity") from exc
    for key, requested in parsed["requests"].items():
        limit = parsed["limits"].get(key)
        if limit is not None and requested > limit:
            raise ValueError(
                f"kubernetes.requests.{key} ({spec.requests[key]}) exceeds kubernetes.limits.{key} "
                f"({spec.limits[key]}): Kubernetes refuses a request above its limit"
            )
    limits = dict(spec.limits)
    if spec.gpu_count > 0:
        limits[gpu] = str(spec.gpu_count)
    return dict(spec.requests), limits


def scratch_volume() -> tuple[Any, list[Any]]:
    """The ``emptyDir`` volume and its mounts: the only writable paths of the read-only root filesystem."""
    from kubernetes.client import models as k8s

    volume = k8s.V1Volume(name=SCRATCH_VOLUME, empty_dir=k8s.V1EmptyDirVolumeSource(size_limit=SCRATCH_SIZE_LIMIT))
    mounts = [k8s.V1VolumeMount(name=SCRATCH_VOLUME, mount_path=path, sub_path=sub_path)
              for path, sub_path in SCRATCH_MOUNTS.items()]  # fmt: skip
    return volume, mounts


def pod_name(settings: Settings) -> str:
    """``train-<dataset>`` as a DNS-1123 name (KPO appends a random suffix)."""
    slug = re.sub(r"[^a-z0-9-]+", "-", settings.dataset.name.lower()).strip("-")
    return f"train-{slug}"[:50].rstrip("-")


def tolerations(settings: Settings) -> list[Any]:
    """``kubernetes.tolerations`` as V1Toleration objects; ValueError names the offending entry and field."""
    from kubernetes.client import models as k8s

    tolerations = []
    for index, raw in enumerate(settings.kubernetes.tolerations):
        unknown = sorted(set(raw) - set(_TOLERATION_FIELDS))
        if unknown:
            raise ValueError(f"kubernetes.tolerations[{index}]: unknown field(s) {', '.join(unknown)}")
        fields: dict[str, Any] = {_TOLERATION_FIELDS[key]: value for key, value in raw.items()}
        if "toleration_seconds" in fields:
            try:
                fields["toleration_seconds"] = int(fields["toleration_seconds"])
            except ValueError as exc:
                raise ValueError(f"kubernetes.tolerations[{index}].tolerationSeconds must be an integer") from exc
        where = f"kubernetes.tolerations[{index}]"
        operator = fields.setdefault("operator", "Equal")
        if operator not in TOLERATION_OPERATORS:
            raise ValueError(f"{where}.operator: {operator!r} is not one of {', '.join(TOLERATION_OPERATORS)}")
        if fields.get("effect") not in (None, "", *TAINT_EFFECTS):
            raise ValueError(f"{where}.effect: {fields['effect']!r} is not one of {', '.join(TAINT_EFFECTS)}")
        if operator == "Exists" and fields.get("value"):
            raise ValueError(f"{where}.value must be empty when the operator is Exists")
        if not fields.get("key") and operator != "Exists":
            raise ValueError(f"{where}: an empty key matches every taint and needs operator Exists")
        tolerations.append(k8s.V1Toleration(**fields))
    return tolerations


def check_node_selector(settings: Settings) -> dict[str, str]:
    """``kubernetes.node_selector`` as a dict; ValueError names a value that is not a valid label value."""
    for key, value in settings.kubernetes.node_selector.items():
        if not _LABEL_VALUE.match(value):
            raise ValueError(f"kubernetes.node_selector.{key}: {value!r} is not a valid label value")
    return dict(settings.kubernetes.node_selector)
