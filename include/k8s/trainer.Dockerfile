# syntax=docker/dockerfile:1
# The GPU trainer image: `python -m mlops.training` in the KubernetesPodOperator pod of the continuous_training DAG
# (training.backend: kubernetes; see include/mlops/airflow/pod.py and include/k8s/README.md).
#
# Only what `python -m mlops.training` needs: the `trainer` extra of pyproject.toml (XGBoost, MLflow, DVC, pandas,
# pyarrow...; no Airflow, no test tools) at the versions of requirements.lock, then the project itself, installed
# non-editable (the image needs no source checkout). tests/install proves that set: the wheel with this extra in
# a fresh venv trains a model and cannot import Airflow (docs/installing.md gives its size). XGBoost 3.2's PyPI
# wheels are built with CUDA 12.9 and NCCL (nvidia-nccl-cu12 comes with xgboost), so no extra GPU package is needed: the CUDA
# runtime base supplies the user-space libraries, the node's NVIDIA driver (>= 525 through CUDA minor-version
# compatibility; >= 575 natively) and the device plugin supply the GPU.
#
# Build from the repository root, for linux/amd64 (requirements.lock is resolved for x86_64, CPython 3.11):
#   docker build --platform linux/amd64 -f include/k8s/trainer.Dockerfile \
#     --build-arg GIT_COMMIT="$(git rev-parse HEAD)" -t ghcr.io/mlops-airflow/trainer:0.1.0 .
# For production, pin CUDA_IMAGE by digest as well (nvidia/cuda:12.9.1-runtime-ubuntu22.04@sha256:...).
ARG CUDA_IMAGE=nvidia/cuda:12.9.1-runtime-ubuntu22.04
# The same uv as the Makefile's `make install` and include/docker/airflow.Dockerfile (pinned in requirements.lock).
ARG UV_VERSION=0.13.8

FROM ghcr.io/astral-sh/uv:${UV_VERSION} AS uv

FROM ${CUDA_IMAGE}

# Python 3.11 from uv's managed CPython builds (Ubuntu 22.04 ships 3.10): a pinned uv resolves "3.11" to the
# same patch release every time; pin a patch here (e.g. 3.11.13) to decouple it from uv upgrades.
ARG PYTHON_VERSION=3.11
ARG TRAINER_UID=10001
ARG TRAINER_GID=10001
# The code version recorded on every MLflow run (mlops.training reads MLOPS_GIT_COMMIT; no .git in the image).
ARG GIT_COMMIT=unknown

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    UV_NO_CACHE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_INSTALL_DIR=/opt/python \
    UV_PYTHON_PREFERENCE=only-managed \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:${PATH} \
    HOME=/home/trainer \
    MLOPS_HOME=/opt/mlops/var \
    MLOPS_GIT_COMMIT=${GIT_COMMIT} \
    GX_ANALYTICS_ENABLED=false \
    DVC_NO_ANALYTICS=1

# git: DVC reads snapshot revisions from the data registry (a git repository). tini: PID 1 for `docker run`
# (the pod's `command` replaces the ENTRYPOINT). Ubuntu packages float with jammy's security fixes.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates git tini \
    && rm -rf /var/lib/apt/lists/*

COPY --from=uv /uv /usr/local/bin/uv
RUN uv python install "${PYTHON_VERSION}" \
    && uv venv --python "${PYTHON_VERSION}" "${VIRTUAL_ENV}"

WORKDIR /opt/mlops

# Dependencies first (their own layer: rebuilt only when the lock or pyproject.toml changes): the trainer extra
# resolved with requirements.lock as constraints into a lock of its own, then synced exactly (nothing else stays).
COPY requirements.lock pyproject.toml ./
RUN uv pip compile pyproject.toml --extra trainer --constraint requirements.lock \
        --python "${VIRTUAL_ENV}/bin/python" --no-header --quiet --output-file /tmp/trainer-requirements.lock \
    && uv pip sync --python "${VIRTUAL_ENV}/bin/python" /tmp/trainer-requirements.lock \
    && rm /tmp/trainer-requirements.lock

# The project, non-editable, built with the locked setuptools (--build-constraint: no unpinned download).
# include/ stays in the image: the model files (include/models, MLOPS_MODELS_DIR's default) and relative paths in
# them such as dataset.contract (include/contracts/...) resolve against MLOPS_PROJECT_ROOT (here /opt/mlops); the
# check below proves every model file loads and finds its contract, and that Airflow is not in the image.
ENV MLOPS_PROJECT_ROOT=/opt/mlops
COPY README.m[d] ./
COPY include/ include/
RUN uv pip install --python "${VIRTUAL_ENV}/bin/python" --no-deps --build-constraint requirements.lock . \
    && rm -rf build include/*.egg-info \
    && python -c "import importlib.util, mlops.training.__main__, xgboost; \
from mlops.config import load_settings, model_names; \
assert xgboost.build_info()['USE_CUDA'], 'this xgboost wheel has no CUDA support'; \
assert importlib.util.find_spec('airflow') is None, 'Airflow does not belong in the trainer image'; \
paths = [load_settings(model=name).contract_path for name in model_names()]; \
assert paths and all(path.is_file() for path in paths), paths"

# Non-root (uid/gid 10001: the pod's securityContext in mlops/training/pod_spec.py runs as these ids).
# HOME and MLOPS_HOME are writable scratch: MLflow, XGBoost and DVC write small caches there; results go to
# MLflow and S3, never to the container's disk.
RUN groupadd --gid "${TRAINER_GID}" trainer \
    && useradd --uid "${TRAINER_UID}" --gid "${TRAINER_GID}" --home-dir /home/trainer --create-home \
        --shell /usr/sbin/nologin trainer \
    && mkdir -p "${MLOPS_HOME}" \
    && chown -R "${TRAINER_UID}:${TRAINER_GID}" "${MLOPS_HOME}"
USER ${TRAINER_UID}:${TRAINER_GID}

ENTRYPOINT ["/usr/bin/tini", "--", "python", "-m", "mlops.training"]
CMD ["--help"]
