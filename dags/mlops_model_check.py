"""The model files' health: an import error here names every model file that cannot be loaded, and the key.

Kept apart from ``mlops_models.py`` so that one broken model file never stops the other models' DAGs
(Airflow marks every DAG of a file with an import error stale). This file defines no DAG.
"""

from mlops.models_folder import check_model_files

check_model_files()
