"""The GPU training pod: ``python -m mlops.training`` in a KubernetesPodOperator (``training.backend: kubernetes``).

The pod runs the same entrypoint as the local backend and hands its results back through MLflow and S3,
never through the XCom sidecar. Everything about the pod comes from ``settings.kubernetes``:

* GPUs are requested in ``limits`` only (``nvidia.com/gpu: "1"``), as Kubernetes requires for extended
  resources; the scheduler uses the limit as the request. ``NVIDIA_VISIBLE_DEVICES`` is left to the device
  plugin. ``requests`` may not exceed ``limits`` (checked here, before the API server would refuse the pod).
* Credentials reach the container only through ``envFrom`` of the Kubernetes Secret
  ``kubernetes.credentials_secret``: no secret value is ever in DAG code, run conf, task env or logs.
  :func:`check_env` refuses environment variables that look like secrets (the rule is documented there).
* GPU nodes are found by ``node_selector`` and ``tolerations``; a cold GPU node pool can take many minutes to
  scale up, so ``startup_timeout_seconds`` and ``schedule_timeout_seconds`` come from config.
* The pod is deleted when it succeeds and kept when it fails (for ``kubectl describe/logs``); its events are
  logged on failure; its logs stream into the task log; a restarted worker reattaches to the running pod
  (``durable``) instead of starting a second GPU job.

This module is imported by DAG files at parse time: it imports only :mod:`mlops.config` at top level. The
provider and the Kubernetes client are imported inside :func:`training_pod_operator`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from mlops.config import ENV_PREFIX, Settings

if TYPE_CHECKING:
    from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator

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

# --- the env rule ------------------------------------------------------------------------------------------
#: A word of an env key (split on ``_``) that contains one of these marks a secret ...
SECRET_WORD_PARTS = ("SECRET", "PASSWORD", "PASSWD", "TOKEN", "CREDENTIAL", "PRIVATE")
#: ... as does a word that ends with ``KEY`` (``KEY``, ``APIKEY``, ``ACCESSKEY``). Deliberately broad: a harmless
#: name caught by it (``HOTKEY``) is renamed; a secret let through would end up in the pod spec.
SECRET_WORD_SUFFIX = "KEY"
#: Variables the GPU device plugin owns: setting them would override the GPUs the pod was given.
DEVICE_PLUGIN_ENV = frozenset({"NVIDIA_VISIBLE_DEVICES", "CUDA_VISIBLE_DEVICES", "NVIDIA_DRIVER_CAPABILITIES"})
_URL_CREDENTIALS = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^/\s:@]+:[^/\s@]+@")
_AWS_ACCESS_KEY_ID = re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b")
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
#: Constructor arguments this module derives from settings or from its security rules; callers change them
#: through ``mlops.yaml`` (``kubernetes.*``), not through ``**kwargs``.
MANAGED_ARGUMENTS = frozenset(
    {
        "image",
        "image_pull_policy",
        "namespace",
        "service_account_name",
        "automount_service_account_token",
        "cmds",
        "arguments",
        "env_vars",
        "env_from",
        "secrets",
        "configmaps",
        "container_resources",
        "node_selector",
        "tolerations",
        "kubernetes_conn_id",
        "in_cluster",
        "do_xcom_push",
        "security_context",
        "container_security_context",
        "full_pod_spec",
        "pod_template_file",
        "pod_template_dict",
    }
)


def is_config_key(name: str) -> bool:
    """True when ``name`` is ``MLOPS__<SECTION>__<FIELD>...`` naming a real field of :class:`Settings`.

    The path is walked through the pydantic models; once it reaches a field that is not a model (a dict such
    as ``model.params``, a list, a scalar) the rest of the path is that field's value and is accepted.
    """
    if not name.startswith(ENV_PREFIX):
        return False
    keys = [part.lower() for part in name[len(ENV_PREFIX) :].split("__") if part]
    model: type[BaseModel] | None = Settings
    for key in keys:
        if model is None:
            return True
        field = model.model_fields.get(key)
        if field is None:
            return False
        annotation = field.annotation
        model = annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None
    return bool(keys)


def looks_like_secret_key(name: str) -> bool:
    """The key rule: a word of ``name`` (split on ``_``, case-insensitive) contains SECRET, PASSWORD, PASSWD,
    TOKEN, CREDENTIAL or PRIVATE, or ends with KEY -- unless ``name`` is an ``MLOPS__...`` key that names a
    real settings field (:func:`is_config_key`): :class:`Settings` holds no secrets by design, so
    ``MLOPS__KUBERNETES__CREDENTIALS_SECRET`` (the *name* of a Secret) is config, not a secret.

    ``AWS_SECRET_ACCESS_KEY``, ``MLFLOW_TRACKING_TOKEN``, ``DB_PASSWORD``, ``OPENAI_API_KEY``, ``APIKEY`` and
    ``MLOPS__STORAGE__SECRET_KEY`` (no such field) are secrets; ``MLFLOW_TRACKING_URI``, ``MLOPS_HOME``,
    ``AWS_DEFAULT_REGION`` and ``MLOPS__DATASET__ID_COLUMN`` are not.
    """
    if is_config_key(name):
        return False
    words = [word for word in name.upper().split("_") if word]
    return any(any(part in word for part in SECRET_WORD_PARTS) or word.endswith(SECRET_WORD_SUFFIX) for word in words)


def looks_like_secret_value(value: str) -> str | None:
    """Why ``value`` must not be a plain env value or argument (``None`` when it may).

    URLs with a password (``https://user:pass@host``, ``postgresql://u:p@db/x``), AWS access key ids and
    Jinja templates that read an Airflow connection (``{{ conn.x.password }}`` would render the secret into
    the pod spec, which anyone who can read pods sees).
    """
    if _URL_CREDENTIALS.search(value):
        return "a URL with an embedded password"
    if _AWS_ACCESS_KEY_ID.search(value):
        return "an AWS access key id"
    if _TEMPLATE_CONNECTION.search(value):
        return "a template that reads an Airflow connection"
    return None


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


def pod_name(settings: Settings) -> str:
    """``train-<dataset>`` as a DNS-1123 name (KPO appends a random suffix)."""
    slug = re.sub(r"[^a-z0-9-]+", "-", settings.dataset.name.lower()).strip("-")
    return f"train-{slug}"[:50].rstrip("-")


def safe_label_template(expression: str) -> str:
    """A Jinja expression rendered into a valid label value (``[A-Za-z0-9_.-]``, <= 63, alnum at both ends).

    Run ids such as ``manual__2026-11-10T00:00:00+00:00`` hold ``:`` and ``+``, which labels refuse; the full
    value goes into an annotation as well.
    """
    cleaned = f"({expression}) | string | replace(':', '-') | replace('+', '-') | replace('~', '-')"
    return "{{ (" + cleaned + ")[:63].strip('-_.') }}"


def _tolerations(settings: Settings) -> list[Any]:
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


def training_pod_operator(
    settings: Settings, *, task_id: str, arguments: list[str], env: dict[str, str], **kwargs: Any
) -> KubernetesPodOperator:
    """The GPU training pod: same entrypoint as the local backend, results written to MLflow/S3 (no XCom sidecar).

    ``arguments`` and ``env`` values are templated (``{{ ds }}``, ``{{ run_id }}``). ``env`` carries
    non-secret settings only (``MLOPS_*``, ``MLFLOW_TRACKING_URI``...); secret-looking keys or values raise
    ValueError (:func:`check_env`). ``**kwargs`` go to the operator (``retries``, ``execution_timeout``,
    ``on_failure_callback``, ``deferrable``, ``labels``/``annotations`` to add...); the arguments in
    :data:`MANAGED_ARGUMENTS` come from config and raise TypeError when passed.
    """
    from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
    from kubernetes.client import models as k8s

    spec = settings.kubernetes
    managed = sorted(MANAGED_ARGUMENTS & set(kwargs))
    if managed:
        raise TypeError(
            f"training_pod_operator() manages {', '.join(managed)}: set them in the kubernetes section of the config"
        )
    env_vars = check_env(env)
    args = check_arguments(arguments)
    requests, limits = resource_requirements(settings)
    tolerations = _tolerations(settings)
    for key, value in spec.node_selector.items():
        if not _LABEL_VALUE.match(value):
            raise ValueError(f"kubernetes.node_selector.{key}: {value!r} is not a valid label value")

    labels = {
        "app.kubernetes.io/name": APP_NAME,
        "app.kubernetes.io/component": "training",
        "app.kubernetes.io/part-of": "mlops",
        "mlops/dataset": pod_name(settings).removeprefix("train-"),
        "mlops/dag-id": safe_label_template("dag.dag_id"),
        "mlops/run-id": safe_label_template("run_id"),
        **(kwargs.pop("labels", None) or {}),
    }
    annotations = {
        "mlops/dag-id": "{{ dag.dag_id }}",
        "mlops/run-id": "{{ run_id }}",
        "mlops/model-name": settings.model_name,
        **(kwargs.pop("annotations", None) or {}),
    }
    options: dict[str, Any] = {
        "name": pod_name(settings),
        "random_name_suffix": True,
        "labels": labels,
        "annotations": annotations,
        # Reattach to the running pod after a worker restart (10.25 on Airflow 3.3: `durable` replaces the
        # deprecated `reattach_on_restart`, and persists the pod's identity in the task state store).
        "durable": True,
        "get_logs": True,
        "log_events_on_failure": True,
        "on_finish_action": "delete_succeeded_pod",
        "termination_grace_period": TERMINATION_GRACE_SECONDS,
        # The last log lines become the pod's termination message when the trainer dies without writing one.
        "termination_message_policy": "FallbackToLogsOnError",
        "startup_timeout_seconds": spec.startup_timeout_seconds,
        "schedule_timeout_seconds": spec.schedule_timeout_seconds,
    }
    options.update(kwargs)
    return KubernetesPodOperator(
        task_id=task_id,
        namespace=spec.namespace,
        image=spec.image,
        image_pull_policy=spec.image_pull_policy,
        service_account_name=spec.service_account,
        # The trainer never talks to the Kubernetes API (IRSA / workload identity tokens are projected apart).
        automount_service_account_token=False,
        cmds=list(TRAINING_COMMAND),
        arguments=args,
        env_vars=env_vars,
        env_from=[k8s.V1EnvFromSource(secret_ref=k8s.V1SecretEnvSource(name=spec.credentials_secret))],
        container_resources=k8s.V1ResourceRequirements(requests=requests, limits=limits),
        node_selector=dict(spec.node_selector),
        tolerations=tolerations,
        kubernetes_conn_id=spec.kubernetes_conn_id,
        in_cluster=spec.kubernetes_conn_id is None,
        do_xcom_push=False,
        security_context=k8s.V1PodSecurityContext(
            run_as_non_root=True,
            run_as_user=TRAINER_UID,
            run_as_group=TRAINER_GID,
            fs_group=TRAINER_GID,
            seccomp_profile=k8s.V1SeccompProfile(type="RuntimeDefault"),
        ),
        container_security_context=k8s.V1SecurityContext(
            allow_privilege_escalation=False,
            capabilities=k8s.V1Capabilities(drop=["ALL"]),
            run_as_non_root=True,
        ),
        **options,
    )
