# syntax=docker/dockerfile:1
# The Airflow image of the platform: api-server, scheduler (with the LocalExecutor it also runs the tasks),
# dag-processor and triggerer. The exact package set of `make install`: requirements.lock, then the
# `mlops` package installed editable, so /opt/mlops/include can be bind-mounted over in development.
# Installing the package registers the MLOps page (its `airflow.plugins` entry point): plugins/ holds no plugin of
# ours. To add the platform to an image built FROM apache/airflow instead, see docs/installing.md.
#
# Build from the repository root (docker-compose.yaml does):
#   docker build -f include/docker/airflow.Dockerfile -t mlops-airflow:local .
# requirements.lock is resolved for linux/x86_64 (CPython 3.11): on an ARM host build with --platform linux/amd64.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm
FROM ${PYTHON_IMAGE}

ARG AIRFLOW_UID=50000
# The same uv as the Makefile's `make install` (also pinned in requirements.lock).
ARG UV_VERSION=0.13.8
# Postgres drivers come from requirements.lock: psycopg2 serves the sync URL (postgresql+psycopg2://);
# Airflow 3 also opens an async engine on the same DB (postgresql+asyncpg://), so asyncpg is locked too.

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    UV_NO_CACHE=1 \
    UV_LINK_MODE=copy \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:${PATH} \
    AIRFLOW_HOME=/opt/airflow \
    MLOPS_HOME=/opt/mlops/var \
    MLOPS_MODELS_DIR=/opt/mlops/include/models \
    AIRFLOW__CORE__DAGS_FOLDER=/opt/mlops/dags \
    AIRFLOW__CORE__PLUGINS_FOLDER=/opt/mlops/plugins \
    AIRFLOW__CORE__LOAD_EXAMPLES=False \
    GX_ANALYTICS_ENABLED=false \
    DVC_NO_ANALYTICS=1

# git: DVC's data registry is a git repository (revisions are git commits). tini: PID 1 that forwards
# signals to Airflow and reaps the task subprocesses. Debian packages float with bookworm's security fixes.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends git tini ca-certificates \
    && rm -rf /var/lib/apt/lists/*

RUN python -m venv "${VIRTUAL_ENV}" \
    && "${VIRTUAL_ENV}/bin/pip" install "uv==${UV_VERSION}"

WORKDIR /opt/mlops

# Dependencies first (their own layer: rebuilt only when the lock changes).
COPY requirements.lock ./
RUN uv pip sync --python "${VIRTUAL_ENV}/bin/python" requirements.lock

# The project: package, model files and contracts (include/), the DAG factory (dags/), the plugins folder (for
# your own plugins). README.md is optional (glob).
COPY pyproject.toml README.m[d] ./
COPY include/ include/
COPY dags/ dags/
COPY plugins/ plugins/
# The uv form of `pip install --no-deps -e .` (pip is not needed in the image; same as `make install`).
RUN uv pip install --python "${VIRTUAL_ENV}/bin/python" --no-deps -e . \
    && python -c "import mlops.config, airflow.providers.amazon, psycopg2, asyncpg; \
from importlib.metadata import entry_points; \
from mlops.config import load_settings, model_names; \
assert [ep.value for ep in entry_points(group='airflow.plugins', name='mlops')] == ['mlops.airflow.plugin:MlopsPlugin']; \
assert model_names() and all(load_settings(model=name).contract_path.is_file() for name in model_names())"

# Non-root: uid 50000, group 0 (the Airflow image convention; works with arbitrary uids in group 0).
# The directories that docker-compose mounts named volumes on are created here with their owner, so a
# fresh volume starts owned by this user.
RUN useradd --uid "${AIRFLOW_UID}" --gid 0 --home-dir /opt/airflow --no-create-home --shell /bin/bash airflow \
    && mkdir -p /opt/airflow/logs "${MLOPS_HOME}" \
    && chown -R "${AIRFLOW_UID}:0" /opt/airflow "${MLOPS_HOME}" \
    && chmod -R g+rwX /opt/airflow "${MLOPS_HOME}"
USER ${AIRFLOW_UID}

EXPOSE 8080 8974
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["airflow", "version"]
