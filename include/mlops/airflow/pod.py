"""The GPU training pod: ``python -m mlops.training`` in a KubernetesPodOperator (``training.backend: kubernetes``).

The pod runs the same entrypoint as the local backend and hands its results back through MLflow and S3,
never through the XCom sidecar. Everything about the pod comes from ``settings.kubernetes``, checked by
the rules of :mod:`mlops.training.pod_spec` (GPU limits, credentials only through the Secret, scheduling).

* A cold GPU node pool can take many minutes to scale up, so ``startup_timeout_seconds`` and
  ``schedule_timeout_seconds`` come from config.
* The pod is deleted when it succeeds and kept when it fails (for ``kubectl describe/logs``); its events are
  logged on failure; its logs stream into the task log; a restarted worker reattaches to the running pod
  (``durable``) instead of starting a second GPU job.
* The task is deferrable unless ``kubernetes.deferrable`` is false: the triggerer watches the pod and streams
  its logs, so hours of GPU training hold no worker slot (the triggerer needs the same RBAC as the workers).
* The container's root filesystem is read-only; its scratch folders are one ``emptyDir``
  (:func:`~mlops.training.pod_spec.scratch_volume`).

Imported at DAG-parse time: the cncf.kubernetes provider and the Kubernetes client are imported inside
:func:`training_pod_operator`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlops.config import Settings
from mlops.training.pod_spec import (
    APP_NAME,
    TERMINATION_GRACE_SECONDS,
    TRAINER_GID,
    TRAINER_UID,
    TRAINING_COMMAND,
    check_arguments,
    check_env,
    check_node_selector,
    pod_name,
    resource_requirements,
    scratch_volume,
    tolerations,
    trainer_env,
)
from mlops.training.request import EXIT_NO_TRAINING_DATA

if TYPE_CHECKING:
    from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator

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
        "volumes",
        "volume_mounts",
        "full_pod_spec",
        "pod_template_file",
        "pod_template_dict",
        "skip_on_exit_code",
    }
)


def safe_label_template(expression: str) -> str:
    """A Jinja expression rendered into a valid label value (``[A-Za-z0-9_.-]``, <= 63, alnum at both ends).

    Run ids such as ``manual__2026-11-10T00:00:00+00:00`` hold ``:`` and ``+``, which labels refuse; the full
    value goes into an annotation as well.
    """
    cleaned = f"({expression}) | string | replace(':', '-') | replace('+', '-') | replace('~', '-')"
    return "{{ (" + cleaned + ")[:63].strip('-_.') }}"


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
    env_vars = check_env({**trainer_env(settings), **env})  # the trainer's config travels with the pod
    args = check_arguments(arguments)
    requests, limits = resource_requirements(settings)
    pod_tolerations = tolerations(settings)
    node_selector = check_node_selector(settings)
    scratch, scratch_mounts = scratch_volume()

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
        # Hours of GPU training hold no worker slot: the triggerer follows the pod (`kubernetes.deferrable`).
        "deferrable": spec.deferrable,
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
        # The trainer found no usable data yet (too few labelled days or positives): skipped, not retried.
        skip_on_exit_code=EXIT_NO_TRAINING_DATA,
        env_from=[k8s.V1EnvFromSource(secret_ref=k8s.V1SecretEnvSource(name=spec.credentials_secret))],
        container_resources=k8s.V1ResourceRequirements(requests=requests, limits=limits),
        node_selector=node_selector,
        tolerations=pod_tolerations,
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
            read_only_root_filesystem=True,
        ),
        volumes=[scratch],
        volume_mounts=scratch_mounts,
        **options,
    )
