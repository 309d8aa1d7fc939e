# syntax=docker/dockerfile:1
# MLflow tracking server + model registry: Postgres backend store, artifacts proxied to S3 (MinIO).
# mlflow and boto3 (and every dependency they pull in) come at the versions of requirements.lock, used as
# a constraints file, so the server runs the same MLflow as the Airflow tasks that talk to it.
#
# Build from the repository root (docker-compose.yaml does):
#   docker build -f include/docker/mlflow.Dockerfile -t mlops-mlflow:local .
ARG PYTHON_IMAGE=python:3.11-slim-bookworm
FROM ${PYTHON_IMAGE}

ARG MLFLOW_UID=50001
ARG UV_VERSION=0.13.8
# Postgres driver for the backend store: psycopg2-binary, at the version requirements.lock pins (constraints below).

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    UV_NO_CACHE=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:${PATH}

RUN python -m venv "${VIRTUAL_ENV}" \
    && "${VIRTUAL_ENV}/bin/pip" install "uv==${UV_VERSION}"

COPY requirements.lock /tmp/requirements.lock
# mlflow, boto3 and psycopg2-binary are unpinned here on purpose: the lock, used as a constraints file,
# pins them and would reject any other version. The basic-auth app (`--app-name basic-auth`, mlflow[auth])
# also needs Flask-WTF and WTForms, at the versions the lock pins (the topology suite runs this server too).
RUN uv pip install --python "${VIRTUAL_ENV}/bin/python" --constraint /tmp/requirements.lock \
        mlflow boto3 psycopg2-binary flask-wtf==1.3.0 wtforms==3.3.2 \
    && rm /tmp/requirements.lock \
    && python -c "import mlflow, boto3, psycopg2, mlflow.server.auth; print('mlflow', mlflow.__version__)"

# /var/lib/mlflow-auth: the basic-auth app's user store (docker-compose mounts the mlflow-auth volume there; a
# fresh volume takes this owner).
RUN useradd --uid "${MLFLOW_UID}" --gid 0 --create-home --home-dir /home/mlflow --shell /usr/sbin/nologin mlflow \
    && mkdir -p /var/lib/mlflow-auth \
    && chown "${MLFLOW_UID}:0" /var/lib/mlflow-auth \
    && chmod 0770 /var/lib/mlflow-auth
USER ${MLFLOW_UID}
WORKDIR /home/mlflow

EXPOSE 5000
# docker-compose.yaml passes the real command line (backend store, basic auth, artifact destination, host, port).
CMD ["mlflow", "server", "--host", "0.0.0.0", "--port", "5000"]
