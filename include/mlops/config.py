"""One typed settings object for every step: defaults < YAML (``MLOPS_CONFIG``) < env < a run's overrides.

The reviewed config file and the deployment's env decide everything; a DAG run (its ``config`` param)
or a training request (``--conf-json``) may override only the fields of :class:`RunOverrides` (model
parameters and rounds, the training window). Gates, promotion, registry, MLflow, storage, versioning,
dataset, Kubernetes and ``home`` are never per-run: a run that relaxed the gates or pointed MLflow
elsewhere (and so sent the deployment's MLflow credentials there) is refused, naming the key.

This module is imported when Airflow parses ``dags/``, so it depends on pydantic, PyYAML and ``mlops.errors`` only.
A wrong value fails at load time with a message that names the key and the layer that set it.
"""

from __future__ import annotations

import copy
import functools
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from mlops.errors import InputError


def _project_root() -> Path:
    """Where relative paths in the config resolve: ``MLOPS_PROJECT_ROOT``, else the checkout this module runs from
    (``include/mlops/config.py`` -> repo), else, installed as a wheel (no checkout around it), the working
    directory: a deployment then names its folders absolutely (``MLOPS_MODELS_DIR``, ``MLOPS_CONFIG``)."""
    if os.environ.get("MLOPS_PROJECT_ROOT"):
        return Path(os.environ["MLOPS_PROJECT_ROOT"])
    checkout = Path(__file__).resolve().parents[2]
    return checkout if (checkout / "pyproject.toml").is_file() else Path.cwd()


PROJECT_ROOT = _project_root()
ENV_PREFIX = "MLOPS__"


class ConfigError(InputError):
    """A configuration value is missing, mistyped or unknown; the message names the key."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LabelSpec(_Section):
    column: str = "is_fraud"
    positive: int | str = 1
    delay_days: int = Field(3, ge=0, description="labels/dt=D land this many days after D")


class DatasetSpec(_Section):
    name: str = Field("card_transactions", min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    lake_uri: str | None = Field(None, description="null = $MLOPS_HOME/lake; or s3://bucket/prefix")
    id_column: str = "transaction_id"
    time_column: str = "event_time"
    label: LabelSpec = LabelSpec()
    features: Literal["auto"] | list[str] = "auto"
    categorical: list[str] = ["merchant_category", "country", "channel"]
    slices: list[str] = ["merchant_category", "country", "channel"]
    contract: str = "include/contracts/card_transactions.yaml"

    @field_validator("lake_uri")
    @classmethod
    def _known_scheme(cls, value: str | None) -> str | None:
        if value is not None and "://" in value and not value.startswith(("s3://", "file://")):
            raise ValueError(f"lake_uri must be a local path, file:// or s3:// URI, got {value!r}")
        return value


class StorageSpec(_Section):
    lake_root: str | None = Field(
        None,
        description="where every model's lake lives, one folder per model (<lake_root>/<model>); null = "
        "$MLOPS_HOME/lake; or s3://bucket/prefix. A model's dataset.lake_uri, when set, wins",
    )
    s3_endpoint_url: str | None = Field(None, description="MinIO / moto endpoint; null = AWS (or AWS_ENDPOINT_URL)")
    s3_region: str = "us-east-1"


#: Git URL schemes the data registry's remote may use (``git@host:path`` is written ``ssh://git@host/path``).
GIT_URL_SCHEMES = ("file://", "https://", "http://", "ssh://")


class VersioningSpec(_Section):
    registry_path: str | None = Field(None, description="DVC data-registry git repo; null = $MLOPS_HOME/data-registry")
    remote_url: str | None = Field(None, description="DVC remote; null = $MLOPS_HOME/dvc-remote; or s3://...")
    registry_remote: str | None = Field(
        None,
        description="git URL the data registry is pushed to after each snapshot and read from by every worker and "
        "the training pod (file://, https://, ssh://); null = the registry is the local repo registry_path",
    )

    @field_validator("registry_remote")
    @classmethod
    def _git_url(cls, value: str | None) -> str | None:
        if value is None:
            return value
        if not value.startswith(GIT_URL_SCHEMES):
            raise ValueError(f"registry_remote must be a git URL ({', '.join(GIT_URL_SCHEMES)}), got {value!r}")
        if re.match(r"^[a-z]+://[^/@]*:[^/@]*@", value):
            # The URL travels in XCom, MLflow tags and the pod's arguments: a password in it would leak.
            raise ValueError(
                "registry_remote must not embed a password: give git its credentials through a credential "
                "helper or an SSH key (the pod's Secret), not in the URL"
            )
        return value


class ValidationSpec(_Section):
    sensor_timeout_seconds: int = Field(6 * 3600, gt=0, description="how long to wait for raw/dt=D/_SUCCESS")
    sensor_poke_seconds: int = Field(60, gt=0)
    sensor_deferrable: bool = Field(True, description="wait in the triggerer (false: poke in a worker slot)")
    offending_ids_sample: int = Field(10, ge=1, le=1000, description="ids quoted per failed rule")
    history_days: int = Field(7, ge=1, description="validated days that set the expected row count")


class TrainingSpec(_Section):
    backend: Literal["local", "kubernetes"] = "local"
    window_days: int = Field(28, ge=1, description="last N validated, labelled days used for training")
    holdout_days: int = Field(3, ge=1, description="the most recent labelled days: the frozen holdout")
    validation_days: int = Field(2, ge=1, description="days before the holdout: early-stopping set")
    min_positives: int = Field(20, ge=1, description="fewer positive labels in the train split is an error")
    seed: int = 42
    retrain_on_new_data: bool = Field(
        False,
        description="a run started by a validated day retrains even when a champion exists; false: new data "
        "trains the first model only, and retraining is weekly, on drift or manual",
    )


DEFAULT_XGB_PARAMS: dict[str, Any] = {
    "objective": "binary:logistic",
    "eval_metric": "aucpr",
    "tree_method": "hist",
    "max_depth": 6,
    "eta": 0.1,
    "subsample": 0.8,
    "colsample_bytree": 0.8,
    "min_child_weight": 1.0,
}


class ModelSpec(_Section):
    name: str | None = Field(None, description="registered model name; null = dataset.name")
    params: dict[str, Any] = Field(
        DEFAULT_XGB_PARAMS, description="XGBoost parameters, merged over the defaults (set one, keep the rest)"
    )
    num_boost_round: int = Field(300, ge=1)
    early_stopping_rounds: int = Field(30, ge=1)
    nthread: int = Field(0, ge=0, description="0 = all cores")
    decision_threshold: float = Field(0.5, gt=0.0, lt=1.0, description="score >= threshold -> positive")

    @field_validator("params")
    @classmethod
    def _over_defaults(cls, value: dict[str, Any]) -> dict[str, Any]:
        # Other mappings (gates.absolute, kubernetes.node_selector...) are replaced whole: a selector or a
        # gate set is one decision. XGBoost parameters are tuned one at a time, so they merge.
        return {**DEFAULT_XGB_PARAMS, **value}


class Bound(_Section):
    min: float | None = None
    max: float | None = None


class GatesSpec(_Section):
    """Evaluation gates as data (TFX-style blessing: value thresholds *and* change thresholds)."""

    precision_target: float = Field(0.5, gt=0.0, lt=1.0, description="recall_at_precision is measured here")
    absolute: dict[str, Bound] = {
        "auc_pr": Bound(min=0.15),
        "recall_at_precision": Bound(min=0.05),
        "brier": Bound(max=0.05),
        "ece": Bound(max=0.05),
        "latency_p95_ms_per_10k": Bound(max=500.0),
        "model_size_mb": Bound(max=100.0),
    }
    champion_metric: str = "auc_pr"
    # Non-inferiority: the lower end of the paired-bootstrap CI of (candidate - champion) must be >= -tolerance.
    # A 3-day holdout of 20k rows a day (~600 positives) gives a CI of about +/-0.02 on AUC-PR, so a tighter
    # tolerance rejects equally good retrains; tighten it together with a bigger holdout.
    champion_tolerance: float = Field(0.03, ge=0.0, description="candidate may be this much worse, no more")
    require_improvement: bool = False
    bootstrap_samples: int = Field(300, ge=50)
    confidence: float = Field(0.95, gt=0.5, lt=1.0)
    slice_metric: str = "auc_pr"
    slice_tolerance: float = Field(0.05, ge=0.0)
    slice_min_rows: int = Field(500, ge=1)
    slice_min_positives: int = Field(10, ge=1)


class PromotionSpec(_Section):
    policy: Literal["auto", "manual"] = "auto"
    approval_timeout_hours: float = Field(24.0, gt=0, description="manual policy: no answer in time = rejected")
    approvers: list[str] = Field(
        default_factory=list,
        description="manual policy: Airflow user names allowed to approve or reject a promotion (never the run's "
        "triggering user); empty means nobody can approve, so the request times out as rejected",
    )


#: Databases the ledger runs on (``postgresql+psycopg2://...`` and other drivers included).
LEDGER_SCHEMES = ("sqlite", "postgresql")


class RegistrySpec(_Section):
    ledger_uri: str | None = Field(None, description="SQLAlchemy URL; null = sqlite under $MLOPS_HOME/registry")

    @field_validator("ledger_uri")
    @classmethod
    def _known_database(cls, value: str | None) -> str | None:
        if value is None:
            return value
        scheme = value.split("://", 1)[0].split("+", 1)[0] if "://" in value else ""
        if scheme not in LEDGER_SCHEMES:
            raise ValueError(
                "ledger_uri must be a SQLAlchemy URL of SQLite or PostgreSQL (sqlite:///path/ledger.db or "
                "postgresql://user@host:5432/db)"
            )
        return value


class KubernetesSpec(_Section):
    """The GPU training pod (backend: kubernetes). Credentials come from a Secret, never from here."""

    namespace: str = "mlops"
    image: str = "ghcr.io/mlops-airflow/trainer:0.1.0"
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] = "IfNotPresent"
    service_account: str = "mlops-trainer"
    credentials_secret: str = "mlops-trainer-credentials"
    kubernetes_conn_id: str | None = Field(None, description="null = in-cluster config")
    gpu_resource: str = "nvidia.com/gpu"
    gpu_count: int = Field(1, ge=0)
    node_selector: dict[str, str] = {"nvidia.com/gpu.present": "true"}
    tolerations: list[dict[str, str]] = [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    requests: dict[str, str] = {"cpu": "4", "memory": "16Gi"}
    limits: dict[str, str] = {"cpu": "8", "memory": "32Gi"}
    startup_timeout_seconds: int = Field(1800, gt=0, description="GPU node scale-up can take many minutes")
    schedule_timeout_seconds: int = Field(1800, gt=0)


class ScoringSpec(_Section):
    """Nightly batch scoring: streaming record batches, chunks mapped as tasks (bounded)."""

    batch_rows: int = Field(262_144, ge=1_024, description="record-batch size: bounds scoring memory")
    chunk_rows: int = Field(2_000_000, ge=1, description="rows per mapped scoring task")
    max_chunks: int = Field(32, ge=1, le=1000, description="upper bound on mapped tasks per day")
    shadow_sample_rows: int = Field(50_000, ge=0, description="challenger shadow sample; 0 disables it")
    backlog_days: int = Field(
        31, ge=1, description="most validated, unscored days one run scores (oldest first); the rest: next run"
    )


class DriftPolicySpec(_Section):
    """Drift monitoring thresholds and the trigger policy (debounce, cooldown)."""

    window_days: int = Field(1, ge=1, description="current window: the last K validated days")
    psi_threshold: float = Field(0.2, gt=0, description="a feature breaches when its PSI >= this")
    severe_psi: float = Field(0.5, gt=0, description="trigger at once, without debounce")
    score_psi_threshold: float = Field(0.2, gt=0)
    pvalue_threshold: float = Field(0.01, gt=0, lt=1, description="per-column test, reported")
    min_breaching_features: int = Field(1, ge=1)
    consecutive_windows: int = Field(2, ge=1, description="debounce: breaching windows in a row before a trigger")
    cooldown_days: int = Field(3, ge=0, description="no trigger this many days after a training run")
    reference_days: int = Field(
        3,
        ge=1,
        description="the reference profile's days: the newest N validated days up to a training run's "
        "as_of (labels not needed), so the distribution a champion was promoted into stops breaching",
    )
    performance_drop: float = Field(0.2, gt=0, lt=1, description="relative AUC-PR drop vs the holdout that breaches")
    report_sample_rows: int = Field(20_000, ge=100, description="Evidently HTML report sample per side")
    backlog_days: int = Field(
        31, ge=1, description="most scored, unchecked days one run checks (oldest first); the rest: next run"
    )
    seed: int = 0


class DagsSpec(_Section):
    """How one model's DAGs run in Airflow: their schedules and their share of the deployment's workers."""

    validation_schedule: str = Field("@daily", description="cron or preset: one data_validation run per day")
    training_schedule: str = Field("0 3 * * 1", description="cron: the periodic retraining (also on drift, manual)")
    scoring_schedule: str = Field("@daily", description="cron or preset: the nightly scoring sweep")
    drift_schedule: str = Field("@daily", description="cron or preset: the daily drift sweep")
    max_active_tasks: int = Field(8, ge=1, description="tasks of one of this model's DAGs running at once")
    pool: str | None = Field(None, description="an Airflow pool every task of this model uses; null = default_pool")


class MlflowSpec(_Section):
    tracking_uri: str | None = Field(None, description="null = sqlite under $MLOPS_HOME/mlflow")


#: Model names: a file name, a DAG-id prefix, an MLflow registered model and a lake folder at once.
MODEL_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
#: The DAGs every model gets; a model's DAG id is ``<model>__<kind>`` (:meth:`Settings.dag_id`).
DAG_KINDS = ("data_validation", "continuous_training", "batch_scoring", "drift_monitoring", "model_rollback")
DAG_ID_SEPARATOR = "__"
#: Sections only the deployment config (``MLOPS_CONFIG``) and env set: what models share, and what decides
#: where credentials go. A model file that sets one is refused, naming the file and the key.
DEPLOYMENT_ONLY = ("home", "models_dir", "storage", "versioning", "registry", "kubernetes", "mlflow")


class Settings(_Section):
    home: Path = Field(default_factory=lambda: Path("var").resolve())
    models_dir: str | None = Field(
        None, description="the folder of model files, one <model>.yaml per model; null = include/models"
    )
    dataset: DatasetSpec = DatasetSpec()
    storage: StorageSpec = StorageSpec()
    versioning: VersioningSpec = VersioningSpec()
    validation: ValidationSpec = ValidationSpec()
    training: TrainingSpec = TrainingSpec()
    model: ModelSpec = ModelSpec()
    gates: GatesSpec = GatesSpec()
    promotion: PromotionSpec = PromotionSpec()
    registry: RegistrySpec = RegistrySpec()
    kubernetes: KubernetesSpec = KubernetesSpec()
    scoring: ScoringSpec = ScoringSpec()
    drift: DriftPolicySpec = DriftPolicySpec()
    dags: DagsSpec = DagsSpec()
    mlflow: MlflowSpec = MlflowSpec()

    # Resolved locations: one place decides where the embedded defaults live.
    @property
    def lake_uri(self) -> str:
        """This model's lake: ``dataset.lake_uri``, else ``<storage.lake_root>/<model>``: models never share one."""
        if self.dataset.lake_uri:
            return self.dataset.lake_uri.removeprefix("file://").rstrip("/")
        root = (self.storage.lake_root or str(self.home / "lake")).removeprefix("file://").rstrip("/")
        return f"{root}/{self.model_name}"

    @property
    def models_path(self) -> Path:
        return _project_path(self.models_dir or "include/models")

    def dag_id(self, kind: str) -> str:
        """``<model>__<kind>``: this model's DAG of one of :data:`DAG_KINDS`."""
        if kind not in DAG_KINDS:
            raise ValueError(f"unknown DAG kind {kind!r}; expected one of {DAG_KINDS}")
        return f"{self.model_name}{DAG_ID_SEPARATOR}{kind}"

    @property
    def lake_is_s3(self) -> bool:
        return self.lake_uri.startswith("s3://")

    @property
    def contract_path(self) -> Path:
        return _project_path(self.dataset.contract)

    @property
    def dvc_registry_path(self) -> Path:
        return Path(self.versioning.registry_path) if self.versioning.registry_path else self.home / "data-registry"

    @property
    def registry_url(self) -> str:
        """Where readers (workers, the training pod, monitoring) open the data registry: its git remote if any."""
        return self.versioning.registry_remote or str(self.dvc_registry_path)

    @property
    def dvc_remote_url(self) -> str:
        return self.versioning.remote_url or str(self.home / "dvc-remote")

    @property
    def reports_dir(self) -> Path:
        """Local scratch folder where reports are rendered before they are published to the lake.

        Only GX Data Docs on an S3 lake use it (GX renders its site locally); drift reports render in a
        temporary folder and gate reports are MLflow artifacts. What readers open is always in the lake.
        """
        return self.home / "reports" / self.model_name

    @property
    def model_name(self) -> str:
        return self.model.name or self.dataset.name

    @property
    def ledger_uri(self) -> str:
        return self.registry.ledger_uri or f"sqlite:///{self.home / 'registry' / 'ledger.db'}"

    @property
    def mlflow_artifacts_uri(self) -> str:
        """Where experiments store artifacts (never the process's current directory)."""
        return str(self.home / "mlflow" / "artifacts")

    @property
    def mlflow_tracking_uri(self) -> str:
        return self.mlflow.tracking_uri or f"sqlite:///{self.home / 'mlflow' / 'mlflow.db'}"

    def s3_storage_options(self) -> dict[str, Any]:
        """fsspec/s3fs options; credentials come from the usual AWS env vars or instance roles."""
        client_kwargs: dict[str, Any] = {"region_name": self.storage.s3_region}
        endpoint = self.storage.s3_endpoint_url or os.environ.get("AWS_ENDPOINT_URL")
        if endpoint:
            client_kwargs["endpoint_url"] = endpoint
        return {"client_kwargs": client_kwargs, "use_listings_cache": False, "skip_instance_cache": True}


# -- what a run may change ----------------------------------------------------------------------------------
#: XGBoost parameters a run may not set: they decide what the model predicts and how it is judged (the
#: gates and ``valid_aucpr`` assume ``binary:logistic`` scored by AUC-PR) or are set by the platform.
FIXED_XGB_PARAMS = ("objective", "eval_metric", "device", "seed", "nthread", "random_state")
#: Why a setting outside :class:`RunOverrides` is refused (said at trigger time and at load time).
NOT_PER_RUN = "set only by the deployment's reviewed config file (MLOPS_CONFIG) and env (MLOPS__*), never per run"


class ModelRunOverrides(_Section):
    """Bounded, so that a run asking for 10**12 rounds or a megabyte parameter fails at once, naming the key."""

    params: dict[str, float | int | str | bool] | None = Field(
        None, description=f"XGBoost parameters merged over the deployment's (not {', '.join(FIXED_XGB_PARAMS)})"
    )
    num_boost_round: int | None = Field(None, ge=1, le=10_000)
    early_stopping_rounds: int | None = Field(None, ge=1, le=1_000)

    @field_validator("params")
    @classmethod
    def _not_fixed(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        fixed = sorted(set(value or {}) & set(FIXED_XGB_PARAMS))
        if fixed:
            raise ValueError(f"{', '.join(fixed)} is set by the deployment, not per run")
        long = sorted(key for key, item in (value or {}).items() if isinstance(item, str) and len(item) > 100)
        if long:  # XGBoost's text parameters are short words (tree_method=hist)
            raise ValueError(f"{', '.join(long)}: a text value has at most 100 characters")
        return value


class TrainingRunOverrides(_Section):
    """Bounded: at most ten years of days."""

    window_days: int | None = Field(
        None, ge=1, le=3_650, description="last N validated, labelled days used for training"
    )


class RunOverrides(_Section):
    """The allow-list of a run's overrides (the ``config`` param of ``continuous_training``, ``--conf-json``).

    Only what is safe to change for one run: model parameters and rounds, the training window. ``as_of``,
    the reason and the drift evidence are the run's own params, not config. Everything else is the
    deployment's decision, reviewed in its config file.
    """

    model: ModelRunOverrides = ModelRunOverrides()
    training: TrainingRunOverrides = TrainingRunOverrides()


def overridable_keys() -> list[str]:
    """``["model.params", "model.num_boost_round", ...]``: the dotted keys a run may set."""
    return [
        f"{section}.{name}"
        for section, field in RunOverrides.model_fields.items()
        for name in field.annotation.model_fields  # type: ignore[union-attr]
    ]


def _why_refused(loc: tuple[Any, ...]) -> str:
    """Why ``config.<loc>`` may not be set: a real setting outside the allow-list, or no setting at all."""
    node: Any = Settings
    for key in loc:
        fields = getattr(node, "model_fields", {})
        if key not in fields:
            return "unknown setting"
        node = fields[key].annotation
    return NOT_PER_RUN


def check_run_overrides(overrides: Mapping[str, Any] | None) -> dict[str, Any]:
    """The run's overrides, checked against :class:`RunOverrides` (unset keys dropped).

    Raises :class:`ConfigError` naming every refused key and why, in one line.
    """
    if not overrides:
        return {}
    if not isinstance(overrides, Mapping):
        raise ConfigError(f"run config must be a JSON object, got {type(overrides).__name__}")
    try:
        checked = RunOverrides.model_validate(dict(overrides))
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            loc = tuple(error["loc"])
            key = "config." + ".".join(str(part) for part in loc)
            why = _why_refused(loc) if error["type"] == "extra_forbidden" else error["msg"]
            problems.append(f"{key}: {why}")
        if any(error["type"] == "extra_forbidden" for error in exc.errors()):
            problems.append(f"a run may set only {', '.join(overridable_keys())}")
        raise ConfigError("run config refused: " + "; ".join(problems)) from None
    return checked.model_dump(exclude_none=True, exclude_defaults=True)


#: The JSON-schema draft of every DAG param: Airflow checks each param's schema against its draft's meta-schema
#: whenever it resolves the param (many times per DAG while serialising, and at every task), and a draft-7
#: check costs about a sixth of the default 2020-12 one.
JSON_SCHEMA_DRAFT = "http://json-schema.org/draft-07/schema#"


@functools.cache
def run_overrides_schema() -> dict[str, Any]:
    """The JSON schema of the keys :class:`RunOverrides` allows (``additionalProperties: false`` at every level).

    Airflow validates DAG params when a run is created (trigger form, REST API, ``dags trigger``), so a
    refused key (a setting outside the allow-list, a fixed XGBoost parameter, a typo) is rejected before the
    run exists. Values are checked when the run starts (:func:`check_run_overrides`, the first task fails
    at once): Airflow re-checks this schema against its meta-schema each time it resolves the param, ~15
    times per model while the dag-processor serialises its training DAG, and value rules would double that.
    Built once per process; callers must not modify it.
    """
    # Shown with a refusal (Airflow prints the failing schema): which keys a run may set, and why no other.
    why = f"a run may set only {', '.join(overridable_keys())}; every other setting is {NOT_PER_RUN}"
    sections: dict[str, Any] = {
        name: {"type": "object", "additionalProperties": False, "description": why,
               "properties": {key: {} for key in field.annotation.model_fields}}  # type: ignore[union-attr]
        for name, field in RunOverrides.model_fields.items()
    }  # fmt: skip
    sections["model"]["properties"]["params"] = {"propertyNames": {"not": {"enum": list(FIXED_XGB_PARAMS)}}}
    # No root "title" or "description": Airflow passes the root keys as Param arguments when it deserializes.
    return {"$schema": JSON_SCHEMA_DRAFT, "type": "object", "additionalProperties": False, "properties": sections}


def _project_path(value: str) -> Path:
    path = Path(value)
    return path if path.is_absolute() else PROJECT_ROOT / path


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Nested mappings merged key by key (``override`` wins); the inputs are not modified."""
    merged = copy.deepcopy(dict(base))
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _env_layer(env: Mapping[str, str]) -> dict[str, Any]:
    """``MLOPS__DATASET__LABEL__DELAY_DAYS=2`` -> ``{"dataset": {"label": {"delay_days": 2}}}``.

    Values are parsed as YAML scalars so numbers, booleans and ``[a, b]`` lists keep their type.
    ``MLOPS_HOME``, ``MLOPS_MODELS_DIR`` and ``MLOPS_TRAINING_BACKEND`` are the documented shortcuts.
    """
    layer: dict[str, Any] = {}
    if env.get("MLOPS_HOME"):
        layer["home"] = env["MLOPS_HOME"]
    if env.get("MLOPS_MODELS_DIR"):
        layer["models_dir"] = env["MLOPS_MODELS_DIR"]
    if env.get("MLOPS_TRAINING_BACKEND"):
        layer.setdefault("training", {})["backend"] = env["MLOPS_TRAINING_BACKEND"]
    for name, raw in env.items():
        if not name.startswith(ENV_PREFIX):
            continue
        keys = [part.lower() for part in name[len(ENV_PREFIX) :].split("__") if part]
        node = layer
        for key in keys[:-1]:
            node = node.setdefault(key, {})
        node[keys[-1]] = yaml.safe_load(raw) if raw != "" else None
    return layer


def _yaml_layer(path: Path, what: str = "MLOPS_CONFIG") -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"{what} points to {path}, which does not exist")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of sections, got {type(data).__name__}")
    return data


def _has_key(layer: Mapping[str, Any], loc: tuple[Any, ...]) -> bool:
    node: Any = layer
    for key in loc:
        if not isinstance(node, Mapping) or key not in node:
            return False
        node = node[key]
    return True


# -- models: one file each -----------------------------------------------------------------------------------
def _deployment(env: Mapping[str, str] | None) -> Settings:
    """The deployment's settings alone (no model file): where the models folder is."""
    env = os.environ if env is None else env
    return load_settings(env={key: value for key, value in env.items() if key != "MLOPS_MODEL"})


def model_of_dag(dag_id: str) -> str:
    """The model a DAG id of :meth:`Settings.dag_id` belongs to (``fraud__batch_scoring`` -> ``fraud``)."""
    model, _, kind = dag_id.rpartition(DAG_ID_SEPARATOR)
    if not model or kind not in DAG_KINDS:
        raise ValueError(f"{dag_id!r} is not a model's DAG id (<model>{DAG_ID_SEPARATOR}<kind>)")
    return model


def model_files(env: Mapping[str, str] | None = None) -> dict[str, Path]:
    """``{model name: its file}`` for every ``<name>.yaml`` in the models folder, sorted by name.

    The folder is ``models_dir`` of the deployment config (or ``MLOPS__MODELS_DIR``); files whose name starts
    with ``.`` or ``_`` are not models. Only names are read here: a broken file is found when it is loaded.
    """
    folder = _deployment(env).models_path
    if not folder.is_dir():
        return {}
    files = sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")])
    return {path.stem: path for path in files if not path.name.startswith((".", "_"))}


def model_names(env: Mapping[str, str] | None = None) -> list[str]:
    return list(model_files(env))


def resolve_model(name: str | None, env: Mapping[str, str] | None = None) -> str:
    """The model a command is for: ``name`` if it has a file, else the only model; a clear error otherwise."""
    env = os.environ if env is None else env
    names = model_names(env)
    folder = _deployment(env).models_path
    if name:
        if name not in names:
            known = ", ".join(names) or "none"
            raise ConfigError(f"no model {name!r}: no {name}.yaml in {folder} (models: {known})")
        return name
    if env.get("MLOPS_MODEL"):
        return resolve_model(env["MLOPS_MODEL"], env)
    if len(names) == 1:
        return names[0]
    if not names:
        raise ConfigError(f"no model files in {folder}: add <model>.yaml there (see `mlops dataset init`)")
    raise ConfigError(f"{len(names)} models ({', '.join(names)}): say which one with --model NAME")


def _model_layer(name: str, env: Mapping[str, str]) -> tuple[str, dict[str, Any]]:
    """The model file's layer, checked: its name is its model's name, it sets no deployment-only section."""
    if not re.fullmatch(MODEL_NAME, name):
        raise ConfigError(f"model name {name!r} must match {MODEL_NAME} (it is a file, DAG-id and MLflow name)")
    path = model_files(env).get(name)
    if path is None:
        raise ConfigError(f"no model {name!r}: no {name}.yaml in {_deployment(env).models_path}")
    layer = _yaml_layer(path, what="model file")
    shared = sorted(set(layer) & set(DEPLOYMENT_ONLY))
    if shared:
        raise ConfigError(
            f"{path}: {', '.join(shared)}: set only by the deployment config (MLOPS_CONFIG) and env, which every "
            "model shares; a model file holds its dataset, contract, training, model, gates, promotion, "
            "validation, scoring, drift and dags sections"
        )
    named = (layer.get("model") or {}).get("name") if isinstance(layer.get("model"), Mapping) else None
    if named not in (None, name):
        raise ConfigError(f"{path}: model.name is {named!r}, but a model is named by its file: {name!r}")
    contract = (layer.get("dataset") or {}).get("contract") if isinstance(layer.get("dataset"), Mapping) else None
    if isinstance(contract, str) and not Path(contract).is_absolute() and (path.parent / contract).is_file():
        layer["dataset"]["contract"] = str(path.parent / contract)  # beside the model file wins
    return f"model file {path}", deep_merge({"model": {"name": name}, "dataset": {"name": name}}, layer)


def load_settings(
    conf: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    *,
    model: str | None = None,
    run_overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Build the settings from every layer: defaults < deployment file < model file < env < conf < run.

    ``model`` (or ``MLOPS_MODEL``) names a file of the models folder; without one, the settings are the
    deployment's alone (its own ``dataset`` block, if any): what single-dataset tools and tests use.
    ``conf`` is a trusted layer set by code (tests, benchmarks, the deployment's own tools): any key.
    ``run_overrides`` is what a run asks for (a DAG run's ``config``, a training request's overrides): only
    the allow-list of :class:`RunOverrides`, anything else raises :class:`ConfigError` naming the key and why.
    """
    env = os.environ if env is None else env
    checked = check_run_overrides(run_overrides)
    layers: list[tuple[str, dict[str, Any]]] = []
    config_file = env.get("MLOPS_CONFIG")
    if config_file:
        layers.append((f"file {config_file}", _yaml_layer(_project_path(config_file))))
    model = model or env.get("MLOPS_MODEL") or None
    if model:
        layers.append(_model_layer(model, env))
    layers.append(("environment (MLOPS_*)", _env_layer(env)))
    if conf:
        layers.append(("code overrides", dict(conf)))
    if checked:
        layers.append(("run config", checked))
    merged: dict[str, Any] = {}
    for _, layer in layers:
        merged = deep_merge(merged, layer)
    try:
        settings = Settings.model_validate(merged)
    except ValidationError as exc:
        from mlops.secret_rules import mask, secret_values  # a refused URI may carry a password: never echo it

        problems = []
        for error in exc.errors():
            loc = tuple(error["loc"])
            source = next((name for name, layer in reversed(layers) if _has_key(layer, loc)), "defaults")
            key = ".".join(str(part) for part in loc)
            shown = mask(repr(error["input"]), secret_values())
            given = f" (got {shown})" if error["type"] != "missing" and _has_key(merged, loc) else ""
            problems.append(f"  {key}: {error['msg']}{given} [set by {source}]")
        raise ConfigError("invalid configuration:\n" + "\n".join(problems)) from None
    return settings.model_copy(update={"home": settings.home.expanduser().resolve()})
