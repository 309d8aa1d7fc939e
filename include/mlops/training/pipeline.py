"""The steps after training, shared by the DAG tasks and ``mlops train``: assess, register, promote.

assess: candidate and champion scored on the SAME frozen holdout (rows read by DVC revision), gates
evaluated as data, the gate report (JSON + HTML) logged to the candidate's MLflow run.
register: a model version tagged with lineage and gate evidence; `challenger` when the gates passed.
promote: compare-and-set on `champion` against the champion the candidate was compared with.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING, Any

import numpy as np

from mlops import aliases, models
from mlops.data.contract import Contract
from mlops.features import build_matrix, feature_spec
from mlops.models import Artifacts, Tags
from mlops.training.snapshot import TrainingSnapshot, load_split

if TYPE_CHECKING:
    from mlops.config import Settings

log = logging.getLogger(__name__)
LATENCY_ROWS = 10_000
LATENCY_REPEATS = 20


def _latency_p95_ms(booster: Any, X: np.ndarray) -> float:
    """p95 wall time of scoring 10k rows with inplace_predict (the scoring path), in milliseconds."""
    rows = X[:LATENCY_ROWS] if X.shape[0] >= LATENCY_ROWS else np.resize(X, (LATENCY_ROWS, X.shape[1]))
    booster.inplace_predict(rows)  # warm-up
    times = []
    for _ in range(LATENCY_REPEATS):
        started = time.perf_counter()
        booster.inplace_predict(rows)
        times.append((time.perf_counter() - started) * 1000)
    return float(np.percentile(times, 95))


@dataclass(frozen=True)
class Assessment:
    """The verdict on a candidate, with where its evidence is (XCom-safe through ``to_dict``).

    ``champion_version`` is the champion the candidate was compared against: promotion is a
    compare-and-set against exactly that version.
    """

    run_id: str
    model_uri: str
    passed: bool
    summary: str
    champion_version: str | None
    metrics: dict[str, Any]
    report_uri: str
    evidence: dict[str, str]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Assessment:
        return cls(**{f.name: data[f.name] for f in fields(cls)})


def assess(settings: Settings, snapshot: TrainingSnapshot, run_id: str, model_uri: str, *, actor: str = "mlops",
           run: str | None = None) -> Assessment:  # fmt: skip
    """Score candidate and champion on the frozen holdout, evaluate the gates, log the evidence.

    The verdict is recorded in the ledger (the only evidence promotion trusts), bound to the training run, the
    booster's hash, the holdout's hash and the gate report's hash; the MLflow tags only mirror it.
    """
    import mlflow
    from mlflow.exceptions import MlflowException

    from mlops.evaluation import holdout_curves
    from mlops.gate_report import render_gate_report_html, report_figures
    from mlops.gates import evaluate_gates
    from mlops.ledger import GateVerdict
    from mlops.registry import Registry
    from mlops.verdicts import booster_sha256

    spec = feature_spec(settings, Contract.load(settings.contract_path))
    candidate_spec = models.run_feature_spec(settings, run_id)
    holdout = load_split(settings, snapshot, "holdout", candidate_spec)
    candidate = models.load_booster(settings, model_uri)
    candidate_scores = candidate.inplace_predict(holdout.X)

    champion_version = aliases.alias_version(settings, models.CHAMPION)
    champion_scores = None
    if champion_version is not None:
        champion = models.pin_version(settings, champion_version)
        champion_X = build_matrix(holdout.table, champion.spec)
        champion_scores = models.booster(settings, champion).inplace_predict(champion_X)
        log.info("comparing with champion v%s on the same %d holdout rows", champion_version, len(holdout.y))
    else:
        log.info("no champion yet: the absolute gates alone decide")

    features_match = candidate_spec == spec
    detail = "candidate features match the data contract" if features_match else (
        f"candidate features {list(candidate_spec.names)} differ from the contract's {list(spec.names)}")  # fmt: skip
    extra = {
        "latency_p95_ms_per_10k": _latency_p95_ms(candidate, holdout.X),
        "model_size_mb": len(candidate.save_raw("ubj")) / 1e6,
    }
    slices = {name: holdout.table.column(name).to_numpy(zero_copy_only=False) for name in settings.dataset.slices}
    report = evaluate_gates(settings.gates, holdout.y, candidate_scores, champion_scores, slices, extra,
                            (features_match, detail), seed=settings.training.seed)  # fmt: skip
    curves = holdout_curves(holdout.y, candidate_scores, champion_scores)
    try:  # a picture in the report, not evidence: its absence is said on the page, never fails the assessment
        shap = models.load_artifact(settings, run_id, Artifacts.SHAP_SUMMARY)
    except (MlflowException, OSError) as exc:
        log.warning("no %s in run %s (%s): the gate report says so", Artifacts.SHAP_SUMMARY, run_id, exc)
        shap = None
    evidence = {
        Tags.GATES_PASSED: str(report.passed).lower(),
        Tags.GATES_SUMMARY: report.summary()[:5000],
        Tags.GATES_CHAMPION_COMPARED: champion_version or "none",
        Tags.HOLDOUT_DAYS: json.dumps(snapshot.days["holdout"]),
        Tags.HOLDOUT_IDS_SHA256: holdout.ids_sha256,
        Tags.HOLDOUT_DVC_REVISION: snapshot.registry_revision,
    }
    models.use_tracking(settings)
    with mlflow.start_run(run_id=run_id):
        mlflow.log_dict(report.to_dict(), Artifacts.GATE_REPORT_JSON)
        page = render_gate_report_html(report, f"{settings.model_name}: run {run_id}", curves=curves, shap=shap,
                                       slice_tolerance=settings.gates.slice_tolerance)  # fmt: skip
        mlflow.log_text(page, Artifacts.GATE_REPORT_HTML)
        for chart, svg in report_figures(page).items():
            mlflow.log_text(svg, f"{Artifacts.GATE_REPORT_FIGURES}/{chart}.svg")
        numeric = {k: v for k, v in {**report.candidate_metrics, **extra}.items() if isinstance(v, int | float)}
        mlflow.log_metrics({models.holdout_metric(k): float(v) for k, v in numeric.items()})
        mlflow.set_tags(evidence)
        report_uri = f"{models.get_run(settings, run_id).info.artifact_uri}/{Artifacts.GATE_REPORT_HTML}"
    report_sha256 = hashlib.sha256(json.dumps(report.to_dict(), sort_keys=True, default=str).encode()).hexdigest()
    registry = Registry(settings)
    try:
        registry.ledger().record_verdict(
            GateVerdict(
                model=settings.model_name,
                training_run=run_id,
                passed=report.passed,
                champion_compared=champion_version,
                artifact_sha256=booster_sha256(candidate),
                holdout_sha256=holdout.ids_sha256,
                report_sha256=report_sha256,
                actor=actor,
                run=run or run_id,
            )
        )
    finally:
        registry.ledger().dispose()
    (log.info if report.passed else log.warning)("gates %s: %s", "PASSED" if report.passed else "FAILED",
                                                 report.summary())  # fmt: skip
    return Assessment(run_id, model_uri, report.passed, report.summary(), champion_version,
                      dict(report.candidate_metrics), report_uri, evidence)  # fmt: skip


def register(settings: Settings, assessment: Assessment, actor: str, run: str, human: str | None = None) -> str:
    """Register the version with its lineage and gate evidence; `challenger` when the gates passed.

    Safe to retry: the ledger is reached before any version exists (a database that is down fails the
    step with nothing registered), the registry finds the version this training run made instead of
    registering a second one, and `challenger` is moved only if it is not there already.
    """
    from mlops.registry import CHALLENGER, Registry

    registry = Registry(settings)
    ledger = registry.ledger()  # connects (InfrastructureError when down) before MLflow gets a version
    tags = models.get_run(settings, assessment.run_id).data.tags
    lineage = {k: v for k, v in tags.items() if k.startswith(models.LINEAGE_PREFIXES)}
    version = registry.register(assessment.run_id, assessment.model_uri, {**lineage, **assessment.evidence})
    if assessment.passed:
        if ledger.head(settings.model_name, CHALLENGER) != version:
            registry.set_challenger(version, actor=actor, reason="passed its gates", run=run, human=human)
        log.info("registered %s v%s as challenger", settings.model_name, version)
    else:
        log.warning("registered %s v%s: NOT promoted (%s)", settings.model_name, version, assessment.summary)
    return version


def promote(settings: Settings, version: str, expected_champion: str | None, actor: str, reason: str,
            run: str, human: str | None = None) -> dict[str, Any]:  # fmt: skip
    """Compare-and-set `champion` -> ``version``; fails without changing anything if champion moved.

    A retry of the same run after its move was committed returns that move instead of a conflict. ``human``:
    the approver (manual policy), the run's triggering user, or None for the OS user.
    """
    from mlops.registry import CHAMPION, Registry

    registry = Registry(settings)
    done = [m for m in registry.ledger().moves(settings.model_name, CHAMPION)[-1:] if m.run == run]
    if done and done[0].to_version == str(version) and registry.resolve(CHAMPION) == str(version):
        log.info("champion is already v%s by this run (%s): nothing to do", version, run)
        return done[0].__dict__
    move = registry.promote(version, expected_champion, actor=actor, reason=reason, run=run, human=human)
    log.info("champion: v%s -> v%s (%s)", move.from_version, move.to_version, reason)
    return move.__dict__


def run_all(settings: Settings, as_of: Any, trigger: dict[str, Any], actor: str,
            snapshot: TrainingSnapshot | None = None) -> dict[str, Any]:  # fmt: skip
    """The whole DAG by hand (``mlops train``, ``mlops simulate``): train in-process on ``snapshot`` (the
    plan's; None: the window for ``as_of``), assess, register, promote per policy."""
    from mlops.training.snapshot import resolve_snapshot
    from mlops.training.train import train

    snapshot = snapshot or resolve_snapshot(settings, as_of)
    trained = train(settings, snapshot, trigger)
    run = f"cli:{trained.run_id}"
    assessment = assess(settings, snapshot, trained.run_id, trained.model_uri, actor=actor, run=run)
    version = register(settings, assessment, actor=actor, run=run)
    outcome: dict[str, Any] = {"version": version, **assessment.to_dict()}
    if not assessment.passed:
        outcome["promotion"] = "not promoted: gates failed"
    elif settings.promotion.policy == "manual":
        outcome["promotion"] = f"awaiting approval: `mlops promote --version {version}`"
    else:
        reason = f"gates passed; trigger: {trigger.get('reason')}"
        outcome["promotion"] = promote(settings, version, assessment.champion_version, actor, reason, run)
    return outcome
