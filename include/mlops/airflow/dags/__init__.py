"""The DAG factory: one set of five DAGs per model file (Airflow's dynamic DAG generation from config files).

``dags/mlops_models.py`` calls :func:`generate` with its module globals; ``dags/mlops_model_check.py`` calls
:func:`check_model_files`. Parsing reads only the small model YAML files (never the lake or MLflow) and
imports only the Airflow SDK and the light :mod:`mlops` modules (``make bench`` measures the cost per model file).

A broken model file must not take the other models down: Airflow records an import error per *Python* file
and marks every DAG of that file stale, so the factory skips a broken model (its DAGs disappear: they never
run on a config nobody could load) and the separate check file fails with an import error naming each
broken model file and key (:func:`mlops.models_folder.check_model_files`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, MutableMapping
from typing import Any

from airflow.sdk import DAG

from mlops.airflow.dags import drift, rollback, scoring, training, validation
from mlops.config import Settings, load_settings, model_of_dag
from mlops.models_folder import load_models

log = logging.getLogger(__name__)

#: One builder per DAG kind (:data:`mlops.config.DAG_KINDS`).
BUILDERS: dict[str, Callable[[Settings], DAG]] = {
    "data_validation": validation.build,
    "continuous_training": training.build,
    "batch_scoring": scoring.build,
    "drift_monitoring": drift.build,
    "model_rollback": rollback.build,
}


def model_dags(settings: Settings) -> dict[str, DAG]:
    """The five DAGs of one model, by DAG id."""
    dags = (build(settings) for build in BUILDERS.values())
    return {dag.dag_id: dag for dag in dags}


def generate(namespace: MutableMapping[str, Any]) -> list[str]:
    """Put every loadable model's DAGs into ``namespace`` (a DAG file's ``globals()``); returns their ids.

    A task process parses the DAG file only to find its own DAG: Airflow's parsing context names it, and
    then only that model's DAGs are built (Airflow's documented optimisation for generated DAGs), so a
    task's start-up does not grow with the number of model files. All five of the model, not the one DAG:
    ``airflow dags test`` parses under that context too and then writes the bag to the database, where a
    drift run's trigger must find its model's training DAG.
    """
    from airflow.sdk import get_parsing_context

    wanted = get_parsing_context().dag_id
    if wanted:
        try:
            model = model_of_dag(wanted)
        except ValueError:
            return []  # another file's DAG: nothing of ours to build
        dags = model_dags(load_settings(model=model))
        namespace.update(dags)
        return list(dags)
    loaded, broken = load_models()
    for path, why in broken.items():
        log.error("model file %s skipped, its DAGs are not generated: %s", path, why)
    ids: list[str] = []
    for settings in loaded.values():
        for dag_id, dag in model_dags(settings).items():
            namespace[dag_id] = dag
            ids.append(dag_id)
    return ids
