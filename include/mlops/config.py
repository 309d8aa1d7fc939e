"""One typed settings object for every step: defaults < YAML (``MLOPS_CONFIG``) < env < DAG-run conf.

This module is imported when Airflow parses ``dags/``, so it depends on pydantic and PyYAML only.
A wrong value fails at load time with a message that names the key and the layer that set it.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

#: The repository root (``include/mlops/config.py`` -> repo). Relative paths in the config resolve here.
PROJECT_ROOT = Path(__file__).resolve().parents[2]
ENV_PREFIX = "MLOPS__"


class ConfigError(ValueError):
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
    s3_endpoint_url: str | None = Field(None, description="MinIO / moto endpoint; null = AWS (or AWS_ENDPOINT_URL)")
    s3_region: str = "us-east-1"


class VersioningSpec(_Section):
    registry_path: str | None = Field(None, description="DVC data-registry git repo; null = $MLOPS_HOME/data-registry")
    remote_url: str | None = Field(None, description="DVC remote; null = $MLOPS_HOME/dvc-remote; or s3://...")


class ValidationSpec(_Section):
    sensor_timeout_seconds: int = Field(6 * 3600, gt=0, description="how long to wait for raw/dt=D/_SUCCESS")
    sensor_poke_seconds: int = Field(60, gt=0)
    sensor_deferrable: bool = Field(True, description="wait in the triggerer (false: poke in a worker slot)")
    offending_ids_sample: int = Field(10, ge=1, le=1000, description="ids quoted per failed rule")
    history_days: int = Field(7, ge=1, description="validated days that set the expected row count")


class TrainingSpec(_Section):
    backend: Literal["local", "kubernetes"] = "local"
    window_days: int = Field(28, ge=1)
    holdout_days: int = Field(3, ge=1)


class PromotionSpec(_Section):
    policy: Literal["auto", "manual"] = "auto"


class MlflowSpec(_Section):
    tracking_uri: str | None = Field(None, description="null = sqlite under $MLOPS_HOME/mlflow")


class Settings(_Section):
    home: Path = Field(default_factory=lambda: Path("var").resolve())
    dataset: DatasetSpec = DatasetSpec()
    storage: StorageSpec = StorageSpec()
    versioning: VersioningSpec = VersioningSpec()
    validation: ValidationSpec = ValidationSpec()
    training: TrainingSpec = TrainingSpec()
    promotion: PromotionSpec = PromotionSpec()
    mlflow: MlflowSpec = MlflowSpec()

    # Resolved locations: one place decides where the embedded defaults live.
    @property
    def lake_uri(self) -> str:
        if self.dataset.lake_uri:
            return self.dataset.lake_uri.removeprefix("file://").rstrip("/")
        return str(self.home / "lake")

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
    def dvc_remote_url(self) -> str:
        return self.versioning.remote_url or str(self.home / "dvc-remote")

    @property
    def reports_dir(self) -> Path:
        """Local folder for rendered reports (GX Data Docs, later Evidently and gate reports)."""
        return self.home / "reports"

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


def _project_path(value: str) -> Path:
    path = Path(value)
    return path if path.is_absolute() else PROJECT_ROOT / path


def _deep_merge(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _env_layer(env: Mapping[str, str]) -> dict[str, Any]:
    """``MLOPS__DATASET__LABEL__DELAY_DAYS=2`` -> ``{"dataset": {"label": {"delay_days": 2}}}``.

    Values are parsed as YAML scalars so numbers, booleans and ``[a, b]`` lists keep their type.
    ``MLOPS_HOME`` and ``MLOPS_TRAINING_BACKEND`` are the documented shortcuts.
    """
    layer: dict[str, Any] = {}
    if env.get("MLOPS_HOME"):
        layer["home"] = env["MLOPS_HOME"]
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


def _yaml_layer(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"MLOPS_CONFIG points to {path}, which does not exist")
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


def load_settings(conf: Mapping[str, Any] | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """Build the settings from every layer; ``conf`` is a DAG run's conf (or CLI overrides)."""
    env = os.environ if env is None else env
    layers: list[tuple[str, dict[str, Any]]] = []
    config_file = env.get("MLOPS_CONFIG")
    if config_file:
        layers.append((f"file {config_file}", _yaml_layer(_project_path(config_file))))
    layers.append(("environment (MLOPS_*)", _env_layer(env)))
    if conf:
        layers.append(("DAG-run conf", dict(conf)))
    merged: dict[str, Any] = {}
    for _, layer in layers:
        merged = _deep_merge(merged, layer)
    try:
        settings = Settings.model_validate(merged)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            loc = tuple(error["loc"])
            source = next((name for name, layer in reversed(layers) if _has_key(layer, loc)), "defaults")
            key = ".".join(str(part) for part in loc)
            given = f" (got {error['input']!r})" if error["type"] != "missing" and _has_key(merged, loc) else ""
            problems.append(f"  {key}: {error['msg']}{given} [set by {source}]")
        raise ConfigError("invalid configuration:\n" + "\n".join(problems)) from None
    return settings.model_copy(update={"home": settings.home.expanduser().resolve()})
