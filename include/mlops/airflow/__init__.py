"""The Airflow adapters: the only part of :mod:`mlops` that imports Airflow.

DAG files import from here; the steps they run (:mod:`mlops.validation`, :mod:`mlops.scoring`, ...) know
nothing about Airflow and raise :mod:`mlops.errors`, which :func:`error_policy` maps to Airflow behaviour.

* :mod:`~mlops.airflow.defaults`: the ``DAG(...)`` keywords and default task arguments every DAG shares;
* :mod:`~mlops.airflow.errors`: the one mapping of our exceptions to fail-fast or retry, and :func:`skip`;
* :mod:`~mlops.airflow.runs`: a run's settings (its ``config`` overrides) and the partition day(s) it works on;
* :mod:`~mlops.airflow.assets`: the Assets that chain the DAGs;
* :mod:`~mlops.airflow.notifiers` and :mod:`~mlops.airflow.sensors`: failure and drift notifiers, the lake wait;
* :mod:`~mlops.airflow.pod`: the GPU training pod (KubernetesPodOperator) and its security rules;
* :mod:`~mlops.airflow.dags`: the DAG factory, five DAGs per model file;
* :mod:`~mlops.airflow.plugin`: the MLOps page, registered by the package's ``airflow.plugins`` entry point.

Imported at DAG-parse time: the Airflow SDK, :mod:`mlops.config`, :mod:`mlops.errors` and the pod rules
(:mod:`mlops.training.pod_spec`) only; providers and the Kubernetes client are imported inside the
functions that build their operators.
"""

from __future__ import annotations

from mlops.airflow.assets import scores_asset, validated_data_asset
from mlops.airflow.defaults import OWNER, START_DATE, TAG, dag_defaults, default_args
from mlops.airflow.errors import error_policy, skip
from mlops.airflow.notifiers import DriftBreachNotifier, LogFailureNotifier
from mlops.airflow.pod import training_pod_operator
from mlops.airflow.runs import CONFIG_PARAM, RunDays, run_days, run_settings
from mlops.airflow.sensors import lake_sensor

__all__ = [
    "CONFIG_PARAM",
    "OWNER",
    "START_DATE",
    "TAG",
    "DriftBreachNotifier",
    "LogFailureNotifier",
    "RunDays",
    "dag_defaults",
    "default_args",
    "error_policy",
    "lake_sensor",
    "run_days",
    "run_settings",
    "scores_asset",
    "skip",
    "training_pod_operator",
    "validated_data_asset",
]
