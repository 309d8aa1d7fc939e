"""The model contract: the one place that talks to MLflow about runs, artifacts and model versions.

Everything that reads or writes a model goes through here: the training step, assessment, scoring,
monitoring, the CLI, the DAGs and the UI. It owns

* **the MLflow connection**: :func:`use_tracking` is the only caller of ``mlflow.set_tracking_uri`` and
  :func:`client` the only constructor of ``MlflowClient`` (with no URI set, MLflow writes ``mlflow.db``
  and ``mlruns/`` into the current directory of whichever process first touches it);
* **the names** of artifacts (:class:`Artifacts`), metrics (:func:`holdout_metric`) and tags
  (:class:`Tags`) that one step writes and another reads;
* **the experiment** (:func:`experiment_id`) and **the last training** (:func:`last_training`,
  :func:`find_training_run`);
* **"which model"**: :func:`pin_version` pins a version ONCE to a :class:`PinnedModel` that a whole run
  uses, and :func:`booster` loads it once per process (aliases are resolved by :mod:`mlops.aliases`,
  which reads the ledger through :mod:`mlops.registry`).

MLflow and XGBoost are imported inside the functions: importing this module is cheap.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING, Any

from mlops.errors import InputError
from mlops.features import FeatureSpec
from mlops.ledger import RegistryError, ensure_sqlite_parent
from mlops.redact import redact_text

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from mlops.config import Settings

log = logging.getLogger(__name__)

CHAMPION, CHALLENGER = "champion", "challenger"


class Artifacts:
    """Artifact names of a training run (written by training, read by assessment, scoring and monitoring)."""

    MODEL = "model"  # the logged XGBoost model (``name=`` of ``mlflow.xgboost.log_model``)
    FEATURE_SPEC = "feature_spec.json"
    REFERENCE_PROFILE = "reference_profile.json"
    SNAPSHOT = "snapshot.json"
    CONFIG = "config.json"
    FEATURE_IMPORTANCE = "feature_importance.json"
    SHAP_SUMMARY = "shap_summary.json"
    GATE_REPORT_JSON = "gate_report.json"
    GATE_REPORT_HTML = "gate_report.html"
    GATE_REPORT_FIGURES = "gate_report_figures"  # <chart id>.svg: the page's charts, shown as figures by MLflow


class Tags:
    """Run and version tag keys. Lineage tags start with ``mlops.`` or ``airflow.`` (:data:`LINEAGE_PREFIXES`)."""

    GIT_COMMIT = "mlops.git_commit"
    DVC_REGISTRY = "mlops.dvc_registry"
    DVC_REVISION = "mlops.dvc_revision"
    DATA_HASH = "mlops.data_hash"
    CONFIG_HASH = "mlops.config_hash"
    SNAPSHOT = "mlops.snapshot"
    AS_OF = "mlops.as_of"
    BACKEND = "mlops.backend"
    TRIGGER_REASON = "mlops.trigger_reason"
    RUN_OVERRIDES = "mlops.run_overrides"  # the run's allow-listed config overrides as JSON ("{}": none)
    TRIGGER_PREFIX = "mlops.trigger_"  # + report_uri, window, breached_features
    VERSIONS = "mlops.versions"
    MODEL_URI = "mlops.model_uri"  # how the DAG finds the model, whichever backend trained it
    AIRFLOW_DAG_ID = "airflow.dag_id"
    AIRFLOW_RUN_ID = "airflow.run_id"
    AIRFLOW_TRY_NUMBER = "airflow.try_number"
    # gate evidence, on the run and on the version
    GATES_PASSED = "gates.passed"  # only "true" may become champion
    GATES_SUMMARY = "gates.summary"
    GATES_CHAMPION_COMPARED = "gates.champion_compared"
    HOLDOUT_DAYS = "holdout.days"
    HOLDOUT_IDS_SHA256 = "holdout.ids_sha256"
    HOLDOUT_DVC_REVISION = "holdout.dvc_revision"
    # registry convenience tags on the version (the ledger is the record)
    ROLLED_BACK = "registry.rolled_back"  # when, by whom, why: never champion again


LINEAGE_PREFIXES = ("mlops.", "airflow.")
#: Run metrics of the training step.
VALID_AUCPR, BOOSTED_ROUNDS = "valid_aucpr", "boosted_rounds"


#: Prefix of the run metrics measured on the frozen holdout by ``assess``.
HOLDOUT_PREFIX = "holdout_"


def holdout_metric(name: str) -> str:
    """The run metric holding a holdout metric (``auc_pr`` -> ``holdout_auc_pr``)."""
    return f"{HOLDOUT_PREFIX}{name}"


def holdout_metrics(metrics: dict[str, float]) -> dict[str, float]:
    """A run's holdout metrics by their own names (``holdout_auc_pr`` -> ``auc_pr``)."""
    return {k.removeprefix(HOLDOUT_PREFIX): v for k, v in metrics.items() if k.startswith(HOLDOUT_PREFIX)}


class NoChampion(InputError):
    """The registered model has no ``champion`` yet: nothing can be scored or monitored."""


# -- the connection ---------------------------------------------------------------------------------------
#: MLflow's HTTP retries unless the operator set them. MLflow's own (7 retries, backoff factor 2, 120 s timeout)
#: keep a task silent for minutes against a dead server; with these a refused connection fails within seconds
#: with MLflow's one line naming the URL, and Airflow's retries (with their own backoff) take over.
HTTP_RETRY_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "3",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "20",
}


def bound_http_retries() -> None:
    """Set :data:`HTTP_RETRY_DEFAULTS` where the environment does not: MLflow reads them at every request."""
    for key, value in HTTP_RETRY_DEFAULTS.items():
        os.environ.setdefault(key, value)


def use_tracking(settings: Settings) -> None:
    """Point MLflow's fluent API (``mlflow.start_run``, ``log_*``, ``artifacts``, ``load_model``) at our store.

    The only call of ``mlflow.set_tracking_uri``: every function here that uses the fluent API calls it
    first, so no step depends on another step having set the global before it. Its HTTP retries are
    bounded (:func:`bound_http_retries`).
    """
    import mlflow

    bound_http_retries()
    ensure_sqlite_parent(settings.mlflow_tracking_uri)
    mlflow.set_tracking_uri(settings.mlflow_tracking_uri)


def client(settings: Settings) -> MlflowClient:
    """An MLflow client with explicit tracking and registry URIs."""
    import mlflow

    uri = settings.mlflow_tracking_uri
    bound_http_retries()
    ensure_sqlite_parent(uri)
    return mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)


def experiment_id(settings: Settings) -> str:
    """Get or create the model's experiment, with artifacts under the configured store (never the cwd).

    Two workers creating it at once: the loser's create fails and the experiment is read again.
    """
    import mlflow

    use_tracking(settings)
    name = settings.model_name
    experiment = mlflow.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    location: str | None = None
    if not settings.mlflow_tracking_uri.startswith(("http://", "https://")):
        # A tracking server owns its artifact store (`--artifacts-destination s3://...`, proxied to clients as
        # mlflow-artifacts:/); without one, artifacts go under the configured folder, never the cwd.
        root = settings.mlflow_artifacts_uri
        location = f"{root if '://' in root else f'file://{root}'}/{name}"
    try:
        return mlflow.create_experiment(name, artifact_location=location)
    except mlflow.exceptions.MlflowException:
        experiment = mlflow.get_experiment_by_name(name)  # another worker created it first
        if experiment is None:
            raise
        return experiment.experiment_id


# -- runs -------------------------------------------------------------------------------------------------
def load_artifact(settings: Settings, run_id: str, name: str) -> Any:
    """A JSON artifact of a run (one of :class:`Artifacts`)."""
    import mlflow

    use_tracking(settings)
    return mlflow.artifacts.load_dict(f"runs:/{run_id}/{name}")


def load_text_artifact(settings: Settings, run_id: str, name: str) -> str:
    """A text artifact of a run (an HTML report)."""
    import mlflow

    use_tracking(settings)
    return mlflow.artifacts.load_text(f"runs:/{run_id}/{name}")


def run_feature_spec(settings: Settings, run_id: str) -> FeatureSpec:
    """The features (names, order, categorical codes) a run's model was trained on."""
    return FeatureSpec.from_dict(load_artifact(settings, run_id, Artifacts.FEATURE_SPEC))


def get_run(settings: Settings, run_id: str) -> Any:
    import mlflow

    use_tracking(settings)
    return mlflow.get_run(run_id)


def load_booster(settings: Settings, model_uri: str) -> Any:
    """Load an XGBoost booster from MLflow (uncached; scoring uses :func:`booster`)."""
    import mlflow

    use_tracking(settings)
    booster = mlflow.xgboost.load_model(model_uri)
    if settings.model.nthread:
        booster.set_param({"nthread": settings.model.nthread})
    return booster


def last_training(settings: Settings) -> dt.date | None:
    """The newest data day the latest training run learned from, for the drift cooldown.

    Data days, not wall-clock days: backfills and catch-up runs then see the cooldown they would have
    seen in real time. The newest day of its snapshot, not its ``as_of``: a run started by the clock
    or an Asset has today as ``as_of``, which would put every day of a backlog "before the training"
    although the model never saw it (older runs without the snapshot tag fall back to ``as_of``).
    """
    import mlflow

    experiment = experiment_id(settings)
    runs = mlflow.search_runs([experiment], order_by=["attributes.start_time DESC"], max_results=1,
                              output_format="list")  # fmt: skip
    if not runs:
        return None
    tags = runs[0].data.tags
    if tags.get(Tags.SNAPSHOT):
        days = [day for split in json.loads(tags[Tags.SNAPSHOT]).values() for day in split]
        if days:
            return dt.date.fromisoformat(max(days))
    as_of = tags.get(Tags.AS_OF)
    return dt.date.fromisoformat(as_of) if as_of else None


@dataclass(frozen=True)
class TrainingRun:
    """A finished training run found in MLflow: where its model is."""

    run_id: str
    model_uri: str


def find_training_run(settings: Settings, dag_id: str, run_id: str) -> TrainingRun:
    """The newest finished training run tagged with this Airflow run (a retried pod makes a new one)."""
    import mlflow

    experiment = experiment_id(settings)
    runs = mlflow.search_runs(
        experiment_ids=[experiment],
        filter_string=f"tags.`{Tags.AIRFLOW_DAG_ID}` = '{dag_id}' and tags.`{Tags.AIRFLOW_RUN_ID}` = '{run_id}' "
        "and attributes.status = 'FINISHED'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
        output_format="list",
    )
    if not runs:
        raise LookupError(f"no finished MLflow training run is tagged with Airflow run {dag_id}/{run_id}")
    run = runs[0]
    return TrainingRun(run.info.run_id, run.data.tags[Tags.MODEL_URI])


# -- which model ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PinnedModel:
    """The model version a whole run uses, resolved once and handed to every task (XCom-safe)."""

    name: str
    version: str
    run_id: str
    model_uri: str
    feature_spec: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PinnedModel:
        return cls(**{f.name: data[f.name] for f in fields(cls)})

    @property
    def spec(self) -> FeatureSpec:
        return FeatureSpec.from_dict(self.feature_spec)


def pin_version(settings: Settings, version: str) -> PinnedModel:
    """Pin one version: its MLflow run, model URI and the feature spec it was trained with."""
    from mlflow.exceptions import MlflowException

    try:
        model_version = client(settings).get_model_version(settings.model_name, str(version))
    except MlflowException as exc:
        if exc.error_code not in ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND", "INVALID_PARAMETER_VALUE"):
            raise
        raise RegistryError(
            f"model {settings.model_name!r} has no version {str(version)!r} in MLflow at "
            f"{redact_text(settings.mlflow_tracking_uri)}: `mlops models` lists the champion and the ledger"
        ) from None
    spec = load_artifact(settings, model_version.run_id, Artifacts.FEATURE_SPEC)
    FeatureSpec.from_dict(spec)  # malformed specs fail here, not in every task
    return PinnedModel(
        name=settings.model_name,
        version=str(version),
        run_id=str(model_version.run_id),
        model_uri=f"models:/{settings.model_name}/{version}",
        feature_spec=spec,
    )


#: Boosters loaded by this process, keyed by (tracking URI, model URI, MLflow run): loaded once per task process.
_BOOSTERS: dict[tuple[str, str, str], Any] = {}
_BOOSTER_CACHE_SIZE = 4


def booster(settings: Settings, pinned: PinnedModel) -> Any:
    """The pinned model's XGBoost booster, loaded once per process (mapped tasks load it once each)."""
    key = (settings.mlflow_tracking_uri, pinned.model_uri, pinned.run_id)
    cached = _BOOSTERS.get(key)
    if cached is None:
        cached = load_booster(settings, pinned.model_uri)
        while len(_BOOSTERS) >= _BOOSTER_CACHE_SIZE:
            _BOOSTERS.pop(next(iter(_BOOSTERS)))
        _BOOSTERS[key] = cached
    return cached
