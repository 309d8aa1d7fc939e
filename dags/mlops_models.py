"""Every model's DAGs: one file per model in the models folder gives five DAGs named ``<model>__<kind>``.

``<model>__data_validation``, ``__continuous_training``, ``__batch_scoring``, ``__drift_monitoring`` and
``__model_rollback``, built by :mod:`mlops.airflow.dags` from the model file (``include/models/<model>.yaml``
by default; ``models_dir`` in the deployment config or ``MLOPS_MODELS_DIR`` elsewhere). Adding a file adds a
model's DAGs, removing it removes them. Copy this file (and ``mlops_model_check.py``) into your DAGs folder.
"""

from mlops.airflow.dags import generate

generate(globals())
