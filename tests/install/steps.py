"""The steps of docs/installing.md, as the install suite runs them.

Every ```bash block of docs/installing.md is, verbatim, one of the scripts below (``test_packaging`` checks it),
and ``test_install`` runs each one with ``bash -euo pipefail`` in a fresh venv and Airflow home outside the
checkout. Scripts that read from the checkout (``dist/``, ``requirements.lock``, ``dags/``, ``include/``) run
in a copy of it; the others run in the deployment's own folder. The variables they use (``$VENV``,
``$AIRFLOW_HOME``, ``$MLOPS_MODELS_DIR``...) are the settings of the docs' ```shell blocks, set by the test.
"""

from __future__ import annotations

#: The version in pyproject.toml; the wheel's file name in every install command.
WHEEL = "dist/mlops-0.1.0-py3-none-any.whl"
#: The Airflow the platform is tested with (requirements.lock).
AIRFLOW_PIN = "apache-airflow==3.3.2"

BUILD = "uv build --wheel --out-dir dist --build-constraint requirements.lock"

AIRFLOW_VENV = f"""\
uv venv --python 3.11 "$VENV"
uv pip install --python "$VENV/bin/python" -c requirements.lock {AIRFLOW_PIN}"""

INSTALL = f'uv pip install --python "$VENV/bin/python" -c requirements.lock "{WHEEL}[airflow]"'

FILES = """\
mkdir -p "$AIRFLOW_HOME/dags" "$MLOPS_MODELS_DIR/contracts"
cp dags/mlops_models.py dags/mlops_model_check.py "$AIRFLOW_HOME/dags/"
for model in card_transactions customer_churn; do
  cp "include/contracts/$model.yaml" "$MLOPS_MODELS_DIR/contracts/"
  sed 's#include/contracts/#contracts/#' "include/models/$model.yaml" > "$MLOPS_MODELS_DIR/$model.yaml"
done"""

MIGRATE = "airflow db migrate"
IMPORT_ERRORS = "airflow dags list-import-errors --local -o json"
DAGS = "airflow dags list --local -o json"
PLUGINS = "airflow plugins -o json"

#: The chain of one model: land 10 days, validate them, train. Days 2026-10-04..10 are validated like 10-03
#: (``mlops validate``), in one process to save the interpreter start-ups (see ``test_install``).
MODEL = "card_transactions"
START, DAYS, AS_OF = "2026-10-01", 10, "2026-10-10"
GENERATE = f"mlops data generate --model {MODEL} --start {START} --days {DAYS} --rows-per-day 6000"
VALIDATE = f"""\
airflow dags test {MODEL}__data_validation 2026-10-01
airflow dags test {MODEL}__data_validation 2026-10-02
mlops validate --model {MODEL} --date 2026-10-03"""
TRAIN = f"airflow dags test {MODEL}__continuous_training {AS_OF}"
CHAMPION = f"mlops models --model {MODEL}"

TRAINER_VENV = f"""\
uv venv --python 3.11 "$TRAINER_VENV"
uv pip install --python "$TRAINER_VENV/bin/python" -c requirements.lock "{WHEEL}[trainer]"
"$TRAINER_VENV/bin/python" -m mlops.training --help"""
TRAINER_RUN = f'MLOPS_MODEL={MODEL} "$TRAINER_VENV/bin/python" -m mlops.training --as-of {AS_OF}'

#: What docs/installing.md may show in ```bash blocks.
DOCUMENTED = (BUILD, AIRFLOW_VENV, INSTALL, FILES, MIGRATE, IMPORT_ERRORS, DAGS, PLUGINS, GENERATE, VALIDATE, TRAIN,
              CHAMPION, TRAINER_VENV, TRAINER_RUN)  # fmt: skip

#: The settings of the docs' ```shell blocks: the test sets each one (to folders of its own).
SETTINGS = (
    *("VENV", "TRAINER_VENV", "AIRFLOW_HOME", "MLOPS_HOME", "MLOPS_MODELS_DIR", "AIRFLOW_CONN_FS_DEFAULT"),
    *("AIRFLOW__CORE__LOAD_EXAMPLES", "GX_ANALYTICS_ENABLED", "DVC_NO_ANALYTICS", "MLFLOW_DISABLE_TELEMETRY"),
)
