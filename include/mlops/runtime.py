"""The embedded runtime: the environment that runs Airflow, MLflow and DVC on one machine with no services.

Defaults: ``MLOPS_HOME=./var``, ``AIRFLOW_HOME=$MLOPS_HOME/airflow`` with SQLite and the
LocalExecutor, DAGs from ``./dags``, plugins from ``./plugins``, no examples, MLflow on SQLite under
``$MLOPS_HOME/mlflow``. Anything already set in the environment wins, so Postgres, an MLflow server or
S3 are switched on by env alone. The Makefile, the demo and the tests all take their env from here.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from mlops.config import PROJECT_ROOT, Settings, load_settings

FS_DEFAULT = json.dumps({"conn_type": "fs", "extra": {"path": "/"}})


def embedded_env(settings: Settings | None = None, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The variables the embedded stack needs, on top of ``base`` (default: this process's env)."""
    base = dict(os.environ if base is None else base)
    settings = settings or load_settings(env=base)
    airflow_home = Path(base.get("AIRFLOW_HOME") or settings.home / "airflow")
    defaults = {
        "MLOPS_HOME": str(settings.home),
        "AIRFLOW_HOME": str(airflow_home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(PROJECT_ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{airflow_home / 'airflow.db'}",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        "AIRFLOW_CONN_FS_DEFAULT": FS_DEFAULT,
        "MLFLOW_TRACKING_URI": settings.mlflow_tracking_uri,
        "GX_ANALYTICS_ENABLED": "false",
        "DVC_NO_ANALYTICS": "1",
        "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
        "PYTHONWARNINGS": base.get("PYTHONWARNINGS", "ignore::DeprecationWarning,ignore::FutureWarning"),
    }
    for key, value in defaults.items():
        base.setdefault(key, value)
    airflow_home.mkdir(parents=True, exist_ok=True)
    return base


def shell_exports(env: Mapping[str, str]) -> str:
    """``export K=V`` lines for the variables this module manages (for ``eval "$(mlops env)"``)."""
    keys = [k for k in env if k.startswith(("AIRFLOW", "MLOPS", "MLFLOW_", "GX_", "DVC_"))]
    return "\n".join(f"export {key}={shlex.quote(env[key])}" for key in sorted(keys))


def airflow(
    args: Sequence[str], env: Mapping[str, str], check: bool = True, **kwargs: object
) -> subprocess.CompletedProcess:
    """Run the ``airflow`` CLI of this virtualenv with ``env``."""
    binary = Path(sys.executable).with_name("airflow")
    return subprocess.run([str(binary), *args], env=dict(env), check=check, text=True, **kwargs)  # type: ignore[call-overload]


def ensure_airflow_db(env: Mapping[str, str]) -> None:
    """Create or upgrade the Airflow metadata DB (idempotent; a no-op when it is current)."""
    airflow(["db", "migrate"], env, capture_output=True)
