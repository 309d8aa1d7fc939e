"""One typed settings object for every step: defaults < YAML (``MLOPS_CONFIG``) < env < a run's overrides.

The reviewed config file and the deployment's env decide everything; a DAG run (its ``config`` param)
or a training request (``--conf-json``) may override only the fields of :class:`RunOverrides` (model
parameters and rounds, the training window). Gates, promotion, registry, MLflow, storage, versioning,
dataset, Kubernetes and ``home`` are never per-run: a run that relaxed the gates or pointed MLflow
elsewhere (and so sent the deployment's MLflow credentials there) is refused, naming the key.

This module is imported when Airflow parses ``dags/``, so it depends on pydantic, PyYAML and ``mlops.errors`` only
(``mlops.secret_rules`` when it reports a refused value). The sections live in :mod:`mlops.config_sections` and
the run allow-list in :mod:`mlops.config_overrides`; both are re-exported here, so ``from mlops.config import X``
is the one import. A wrong value fails at load time with a message that names the key and the layer that set it.
"""

from __future__ import annotations

import copy
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, ValidationError

from mlops.config_overrides import (
    FIXED_XGB_PARAMS,
    JSON_SCHEMA_DRAFT,
    NOT_PER_RUN,
    ModelRunOverrides,
    RunOverrides,
    TrainingRunOverrides,
    overridable_keys,
    run_overrides_schema,
)
from mlops.config_sections import (
    DEFAULT_XGB_PARAMS,
    GIT_URL_SCHEMES,
    LEDGER_SCHEMES,
    AlertsSpec,
    Bound,
    DagsSpec,
    DatasetSpec,
    DriftPolicySpec,
    GatesSpec,
    KubernetesSpec,
    LabelSpec,
    MlflowSpec,
    ModelSpec,
    PromotionSpec,
    RegistrySpec,
    ScoringSpec,
    StorageSpec,
    TrainingSpec,
    UiSpec,
    ValidationSpec,
    VersioningSpec,
    _Section,
)
from mlops.errors import InputError

# Re-exported: every section and the run allow-list are imported from here.
# fmt: off
__all__ = [
    "DAG_ID_SEPARATOR", "DAG_KINDS", "DEFAULT_XGB_PARAMS", "DEPLOYMENT_ONLY", "ENV_PREFIX", "FIXED_XGB_PARAMS",
    "GIT_URL_SCHEMES", "JSON_SCHEMA_DRAFT", "LEDGER_SCHEMES", "MODEL_NAME", "NOT_PER_RUN", "PROJECT_ROOT",
    "AlertsSpec", "Bound", "ConfigError", "DagsSpec", "DatasetSpec", "DriftPolicySpec", "GatesSpec",
    "KubernetesSpec", "LabelSpec", "MlflowSpec", "ModelRunOverrides", "ModelSpec", "PromotionSpec", "RegistrySpec",
    "RunOverrides", "ScoringSpec", "Settings", "StorageSpec", "TrainingRunOverrides", "TrainingSpec", "UiSpec",
    "ValidationSpec", "VersioningSpec", "check_run_overrides", "deep_merge", "deployment_settings", "load_settings",
    "model_files", "model_names", "model_of_dag", "overridable_keys", "resolve_model", "run_overrides_schema",
]
# fmt: on


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


#: Model names: a file name, a DAG-id prefix, an MLflow registered model and a lake folder at once.
MODEL_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
#: The DAGs every model gets; a model's DAG id is ``<model>__<kind>`` (:meth:`Settings.dag_id`).
DAG_KINDS = ("data_validation", "continuous_training", "batch_scoring", "drift_monitoring", "model_rollback")
DAG_ID_SEPARATOR = "__"
#: Sections only the deployment config (``MLOPS_CONFIG``) and env set: what models share, and what decides
#: where credentials go. A model file that sets one is refused, naming the file and the key.
DEPLOYMENT_ONLY = (
    "home",
    "models_dir",
    "storage",
    "versioning",
    "registry",
    "kubernetes",
    "mlflow",
    "alerts",
    "ui",
)


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
    alerts: AlertsSpec = AlertsSpec()
    ui: UiSpec = UiSpec()

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
def deployment_settings(env: Mapping[str, str] | None = None) -> Settings:
    """The deployment's settings alone (no model file): where the models folder is, where alerts go."""
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
    folder = deployment_settings(env).models_path
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
    folder = deployment_settings(env).models_path
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
        raise ConfigError(f"no model {name!r}: no {name}.yaml in {deployment_settings(env).models_path}")
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
            # mask() hides URL passwords (user:***@); a user-only userinfo may be a token: hide it too.
            shown = re.sub(r"://[^/\s@:'\"]+@", "://***@", mask(repr(error["input"]), secret_values()))
            given = f" (got {shown})" if error["type"] != "missing" and _has_key(merged, loc) else ""
            problems.append(f"  {key}: {error['msg']}{given} [set by {source}]")
        raise ConfigError("invalid configuration:\n" + "\n".join(problems)) from None
    return settings.model_copy(update={"home": settings.home.expanduser().resolve()})
