"""Train XGBoost on a snapshot and track everything in MLflow: lineage, params, metrics, model, evidence.

The same function runs in the GPU pod (``device="cuda"``) and locally (CPU); results go to MLflow
(and its artifact store), never through the Airflow XCom sidecar. The run is tagged with the Airflow
dag/run/try ids so the DAG finds it afterwards whichever backend ran it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import subprocess
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from mlops import models
from mlops.config import PROJECT_ROOT
from mlops.data.contract import Contract
from mlops.features import FeatureSpec, feature_spec
from mlops.models import Artifacts, Tags
from mlops.redact import redact, redact_settings
from mlops.training.snapshot import NoTrainingData, SplitData, TrainingSnapshot, load_features, load_split

if TYPE_CHECKING:
    from mlops.config import Settings

log = logging.getLogger(__name__)
#: Sections of a version's stored config that ``reproduce`` replays; the rest (where MLflow, the lake, the
#: ledger are) belongs to the deployment that reproduces it (the stored copy has its secrets masked).
REPRODUCED_SECTIONS = ("dataset", "training", "model")
#: The learning curve: one MLflow metric per evaluated split and metric (``curve/valid-aucpr``), a step per round.
CURVE_PREFIX = "curve/"
#: MLflow's input tag for what a logged dataset was used for, and ours per split.
DATASET_CONTEXT = {"train": "training", "valid": "validation"}
SHAP_SAMPLE = 500  # exact TreeSHAP costs ~0.3 ms a row: enough rows for a stable mean |SHAP| ranking
PROFILE_SAMPLE = 200_000  # reference bins from a seeded sample: quantiles are stable, the cost is not


@dataclass(frozen=True)
class TrainResult:
    run_id: str
    model_uri: str
    rounds: int
    valid_aucpr: float

    def to_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


def git_commit() -> str:
    """The code version: the image's baked-in commit, else this checkout's HEAD."""
    if os.environ.get("MLOPS_GIT_COMMIT"):
        return os.environ["MLOPS_GIT_COMMIT"]
    result = subprocess.run(["git", "rev-parse", "HEAD"], cwd=PROJECT_ROOT, capture_output=True, text=True)
    return result.stdout.strip() if result.returncode == 0 else "unknown"


def lineage_tags(settings: Settings, snapshot: TrainingSnapshot, trigger: dict[str, Any],
                 overrides: dict[str, Any] | None = None) -> dict[str, str]:  # fmt: skip
    """Everything needed to say where a model came from and to re-run it (secrets masked).

    ``overrides`` (the run's allow-listed config overrides) are always recorded, ``{}`` when none, so a
    version says whether it was trained on the deployment's config as reviewed.
    """
    import mlflow
    import xgboost

    config = redact_settings(settings)
    config.pop("home", None)
    config_json = json.dumps(config, sort_keys=True)
    data_hash = hashlib.sha256(json.dumps(snapshot.day_revisions, sort_keys=True).encode()).hexdigest()
    tags = {
        Tags.GIT_COMMIT: git_commit(),
        Tags.DVC_REGISTRY: snapshot.registry,
        Tags.DVC_REVISION: snapshot.registry_revision,
        Tags.DATA_HASH: data_hash,
        Tags.CONFIG_HASH: hashlib.sha256(config_json.encode()).hexdigest(),
        Tags.SNAPSHOT: json.dumps(snapshot.days),
        Tags.AS_OF: snapshot.as_of,
        Tags.BACKEND: settings.training.backend,
        Tags.TRIGGER_REASON: str(trigger.get("reason") or "manual"),
        Tags.RUN_OVERRIDES: json.dumps(overrides or {}, sort_keys=True),
        Tags.VERSIONS: f"xgboost={xgboost.__version__} mlflow={mlflow.__version__} python={platform.python_version()}",
    }
    evidence = trigger.get("drift") or {}  # what drift_monitoring passed: window, breached_features, report_uri
    for key in ("report_uri", "window", "breached_features"):
        if evidence.get(key) is not None:
            tags[f"{Tags.TRIGGER_PREFIX}{key}"] = (
                json.dumps(evidence[key]) if not isinstance(evidence[key], str) else evidence[key]
            )
    airflow_ids = {"dag_id": Tags.AIRFLOW_DAG_ID, "run_id": Tags.AIRFLOW_RUN_ID, "try_number": Tags.AIRFLOW_TRY_NUMBER}
    for key, tag in airflow_ids.items():
        if trigger.get(f"airflow_{key}") is not None:
            tags[tag] = str(trigger[f"airflow_{key}"])
    return redact(tags)


def _progress(every: int) -> Any:
    import xgboost as xgb

    class Progress(xgb.callback.TrainingCallback):
        """Log the validation score every ``every`` rounds: long trainings say where they are."""

        def after_iteration(self, model: Any, epoch: int, evals_log: dict) -> bool:
            if epoch % every == 0:
                latest = {f"{d}-{m}": round(v[-1], 5) for d, ms in evals_log.items() for m, v in ms.items()}
                log.info("round %d: %s", epoch, latest)
            return False

    return Progress()


def fit_booster(settings: Settings, spec: FeatureSpec, X_train: np.ndarray, y_train: np.ndarray,
                X_valid: np.ndarray, y_valid: np.ndarray, device: str = "cpu",
                evals_result: dict[str, dict[str, list[float]]] | None = None) -> tuple[Any, float]:  # fmt: skip
    """xgb.train with early stopping; the only place model parameters meet the data.

    Returns the booster cut at its best iteration (so every later predict uses the right trees)
    and the best validation score. ``evals_result`` (XGBoost's own argument) receives every round's
    validation metrics, the evaluation early stopping does anyway.
    """
    import xgboost as xgb

    model = settings.model
    params = {**model.params, "device": device, "seed": settings.training.seed}
    if model.nthread:
        params["nthread"] = model.nthread
    dtrain = xgb.DMatrix(X_train, label=y_train, feature_names=list(spec.names))
    dvalid = xgb.DMatrix(X_valid, label=y_valid, feature_names=list(spec.names))
    booster = xgb.train(
        params,
        dtrain,
        num_boost_round=model.num_boost_round,
        evals=[(dvalid, "valid")],
        early_stopping_rounds=model.early_stopping_rounds,
        verbose_eval=False,
        callbacks=[_progress(25)],
        evals_result=evals_result,
    )
    return booster[: booster.best_iteration + 1], float(booster.best_score)


def _sample_rows(X: np.ndarray, size: int, seed: int) -> np.ndarray:
    """A seeded sample of rows in their original order (all rows when there are fewer)."""
    if X.shape[0] <= size:
        return X
    return X[np.sort(np.random.default_rng(seed).choice(X.shape[0], size=size, replace=False))]


def _shap_summary(booster: Any, X: np.ndarray, spec: FeatureSpec, seed: int) -> dict[str, float]:
    """Mean |SHAP| per feature on a seeded sample (XGBoost's exact TreeSHAP via pred_contribs)."""
    import xgboost as xgb

    sample = _sample_rows(X, SHAP_SAMPLE, seed)
    contribs = booster.predict(xgb.DMatrix(sample, feature_names=list(spec.names)), pred_contribs=True)
    mean_abs = np.abs(contribs[:, :-1]).mean(axis=0)  # last column is the bias
    return dict(sorted(zip(spec.names, mean_abs.round(6).tolist(), strict=True), key=lambda kv: -kv[1]))


def train(settings: Settings, snapshot: TrainingSnapshot, trigger: dict[str, Any], device: str = "cpu",
          overrides: dict[str, Any] | None = None) -> TrainResult:  # fmt: skip
    """Load the snapshot by DVC revision, train, and log the run; returns where the model is.

    ``overrides`` are the run's config overrides already applied to ``settings``: recorded, not applied.
    """
    contract = Contract.load(settings.contract_path)
    spec = feature_spec(settings, contract)
    started = time.monotonic()
    train_split = load_split(settings, snapshot, "train", spec)
    valid_split = load_split(settings, snapshot, "valid", spec)
    positives = int(train_split.y.sum())
    if positives < settings.training.min_positives or positives == len(train_split.y):
        raise NoTrainingData(
            f"the train split ({snapshot.days['train'][0]}..{snapshot.days['train'][-1]}, {len(train_split.y)} rows) "
            f"has {positives} positive label(s); need at least {settings.training.min_positives} and both classes"
        )
    if valid_split.y.min() == valid_split.y.max():
        raise NoTrainingData(f"the validation days {snapshot.days['valid']} hold a single class: cannot early-stop")
    log.info("loaded train %d rows (%d positive), valid %d rows in %.1f s", len(train_split.y), positives,
             len(valid_split.y), time.monotonic() - started)  # fmt: skip

    reference = load_features(settings, snapshot, snapshot.reference, spec) if snapshot.reference else None
    tags = lineage_tags(settings, snapshot, trigger, overrides)
    # The config as JSON, never the raw dump: a ledger or tracking URI with a password stays out of MLflow.
    artifacts = {Artifacts.SNAPSHOT: redact(snapshot.to_dict()), Artifacts.CONFIG: redact_settings(settings)}
    return fit_and_log(settings, spec, train_split, valid_split, tags, f"train-{snapshot.as_of}", device,
                       artifacts=artifacts, reference=reference, snapshot=snapshot)  # fmt: skip


def reproduce(settings: Settings, version: str) -> dict[str, Any]:
    """Re-run a registered version's training on the same data (its DVC revision) with its config.

    XGBoost's hist method on CPU is deterministic for a fixed seed, data order and thread count, so the
    metrics match exactly on the same machine; across CPU/GPU or thread counts tiny float differences in
    histogram sums can change a split, so compare with a tolerance there.
    """
    from mlops.config import Settings as SettingsModel

    original = models.pin_version(settings, version)  # an unknown version: RegistryError, one line
    run = models.get_run(settings, original.run_id)
    snapshot = TrainingSnapshot.from_dict(models.load_artifact(settings, original.run_id, Artifacts.SNAPSHOT))
    stored = models.load_artifact(settings, original.run_id, Artifacts.CONFIG)
    current = settings.model_dump(mode="json")
    replayed = {section: stored[section] for section in REPRODUCED_SECTIONS if section in stored}
    replayed.setdefault("dataset", {})["lake_uri"] = current["dataset"]["lake_uri"]
    replayed.setdefault("training", {})["backend"] = current["training"]["backend"]
    replay = SettingsModel.model_validate({**current, **replayed})
    trigger = {"reason": f"reproduce v{version} (run {original.run_id})"}
    result = train(replay, snapshot, trigger)
    metrics = run.data.metrics
    return {"version": version, "original_run": original.run_id, "reproduced_run": result.run_id,
            "original_valid_aucpr": metrics[models.VALID_AUCPR], "reproduced_valid_aucpr": result.valid_aucpr,
            "original_rounds": int(metrics[models.BOOSTED_ROUNDS]), "reproduced_rounds": result.rounds}  # fmt: skip


def _dataset_inputs(snapshot: TrainingSnapshot, spec: FeatureSpec, splits: dict[str, SplitData]) -> list[Any]:
    """The run's inputs as MLflow datasets (the run page's "Datasets used"): metadata only, no copy of the data.

    Each split is named ``<dataset>.<split>``; its source (type ``dvc``) is the data registry's URL and the
    revision that pins its days, so ``dvc get`` or ``mlops`` can read the very same rows; its digest is the
    hash of its ids in order; its context says what training used it for.
    """
    from mlflow.entities import Dataset, DatasetInput, InputTag
    from mlflow.types import ColSpec, DataType, Schema
    from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

    schema = json.dumps({"mlflow_colspec": Schema([ColSpec(DataType.float, name) for name in spec.names]).to_dict()})
    inputs = []
    for split, data in splits.items():
        source = {"url": snapshot.registry, "rev": snapshot.registry_revision, "days": snapshot.days[split]}
        dataset = Dataset(
            name=f"{snapshot.dataset}.{split}",
            digest=data.ids_sha256[:16],
            source_type="dvc",
            source=json.dumps(redact(source)),
            schema=schema,
            profile=json.dumps({"num_rows": len(data.y), "num_positives": int(data.y.sum())}),
        )
        inputs.append(DatasetInput(dataset, tags=[InputTag(MLFLOW_DATASET_CONTEXT, DATASET_CONTEXT[split])]))
    return inputs


def _learning_curve(evals_result: dict[str, dict[str, list[float]]], timestamp_ms: int) -> list[Any]:
    """Every round's evaluation as MLflow metrics (``curve/valid-aucpr``, step = round): the run's learning curve."""
    from mlflow.entities import Metric

    return [
        Metric(f"{CURVE_PREFIX}{split}-{metric}", float(value), timestamp_ms, step)
        for split, metrics in evals_result.items()
        for metric, values in metrics.items()
        for step, value in enumerate(values)
    ]


def fit_and_log(settings: Settings, spec: FeatureSpec, train_split: SplitData, valid_split: SplitData,
                tags: dict[str, str], run_name: str, device: str = "cpu", artifacts: dict[str, Any] | None = None,
                reference: np.ndarray | None = None,
                snapshot: TrainingSnapshot | None = None) -> TrainResult:  # fmt: skip
    """The tracked training step on data in memory: what the training benchmark compares with raw xgb.train.

    The drift reference profile is made from ``reference`` (the snapshot's newest validated days), else from
    the train split. With ``snapshot``, the splits are logged as the run's dataset inputs.
    """
    import mlflow
    import pandas as pd
    import xgboost as xgb
    from mlflow.models import infer_signature

    from mlops.profiling import reference_profile

    positives = int(train_split.y.sum())
    tags = redact(tags)  # every tag of a training run passes here
    with mlflow.start_run(experiment_id=models.experiment_id(settings), run_name=run_name, tags=tags) as run:
        mlflow.log_params({**{f"xgb.{k}": v for k, v in settings.model.params.items()},
                           "num_boost_round": settings.model.num_boost_round,
                           "early_stopping_rounds": settings.model.early_stopping_rounds, "device": device,
                           "train_rows": len(train_split.y), "valid_rows": len(valid_split.y),
                           "window_days": settings.training.window_days})  # fmt: skip
        client = models.client(settings)
        if snapshot is not None:
            client.log_inputs(run.info.run_id, _dataset_inputs(snapshot, spec, {"train": train_split,
                                                                                "valid": valid_split}))  # fmt: skip
        fit_started = time.monotonic()
        evals_result: dict[str, dict[str, list[float]]] = {}
        booster, valid_aucpr = fit_booster(settings, spec, train_split.X, train_split.y, valid_split.X,
                                           valid_split.y, device, evals_result)  # fmt: skip
        fit_seconds = time.monotonic() - fit_started
        client.log_batch(run.info.run_id, metrics=_learning_curve(evals_result, int(time.time() * 1000)))
        rounds = booster.num_boosted_rounds()
        mlflow.log_metrics({models.VALID_AUCPR: valid_aucpr, models.BOOSTED_ROUNDS: rounds, "fit_seconds": fit_seconds,
                            "train_positives": positives})  # fmt: skip
        source = reference if reference is not None else train_split.X
        profile_rows = _sample_rows(source, PROFILE_SAMPLE, settings.training.seed)
        mlflow.log_dict(spec.to_dict(), Artifacts.FEATURE_SPEC)
        mlflow.log_dict(booster.get_score(importance_type="gain"), Artifacts.FEATURE_IMPORTANCE)
        mlflow.log_dict(_shap_summary(booster, valid_split.X, spec, settings.training.seed), Artifacts.SHAP_SUMMARY)
        profile = reference_profile(profile_rows, spec, booster.inplace_predict(profile_rows))
        mlflow.log_dict(profile, Artifacts.REFERENCE_PROFILE)
        for name, payload in (artifacts or {}).items():
            mlflow.log_dict(payload, name)
        example = pd.DataFrame(valid_split.X[:5], columns=list(spec.names))
        info = mlflow.xgboost.log_model(
            booster,
            name=Artifacts.MODEL,
            signature=infer_signature(example, booster.inplace_predict(valid_split.X[:5])),
            input_example=example,
            pip_requirements=[f"xgboost=={xgb.__version__}", f"mlflow=={mlflow.__version__}"],
            model_format="ubj",
        )
        mlflow.set_tag(Tags.MODEL_URI, info.model_uri)  # how the DAG finds the model, whichever backend ran
        log.info("trained in %.1f s (%d rounds, valid AUC-PR %.4f); MLflow run %s", fit_seconds, rounds,
                 valid_aucpr, run.info.run_id)  # fmt: skip
        return TrainResult(run.info.run_id, info.model_uri, rounds, valid_aucpr)
