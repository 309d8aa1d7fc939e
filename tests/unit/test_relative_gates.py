"""The default absolute gates are relative to the holdout's positive rate: they fit tables of 1 % and 30 % positives.

AUC-PR over its chance level (the positive rate p), Brier skill against always predicting p, and ECE over p: the
first model of a 30 % positive table passes them (the old fraud-sized defaults failed it on Brier and ECE), the
demo's card_transactions model still does, and a model with no signal (the base rate, random scores) fails them by
name. Every such check shows the raw metric it came from; a model file's raw gates keep working.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, brier_score_loss

from mlops.config import Bound, GatesSpec, load_settings
from mlops.data.contract import Contract
from mlops.data.generator import generate_day
from mlops.evaluation import LOWER_IS_BETTER, RELATIVE_METRICS, SCORE_METRICS, compute_metrics, holdout_curves
from mlops.features import build_matrix, feature_spec
from mlops.gate_report import render_gate_report_html
from mlops.gates import GateReport, evaluate_gates

EXTRA = {"latency_p95_ms_per_10k": 12.0, "model_size_mb": 1.5}
CONTRACT_OK = (True, "all features present with contract types")
RELATIVE_GATES = {"absolute:auc_pr_lift", "absolute:brier_skill", "absolute:ece_ratio"}
#: The defaults before they became relative, sized for ~1 % positives (a model file may still list them).
FRAUD_SIZED = {
    "auc_pr": Bound(min=0.15),
    "recall_at_precision": Bound(min=0.05),
    "brier": Bound(max=0.05),
    "ece": Bound(max=0.05),
    "latency_p95_ms_per_10k": Bound(max=500.0),
    "model_size_mb": Bound(max=100.0),
}


def _holdout(n: int, prevalence: float, signal: float, overconfidence: float, seed: int) -> tuple[np.ndarray, ...]:
    """Labels and a model's scores: classes N(+-signal/2, 1), scored by their exact posterior shifted by
    ``overconfidence`` in log-odds (0 = calibrated; > 0 over-predicts the positives, raising ECE and Brier)."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < prevalence).astype(int)
    z = signal * (y - 0.5) + rng.normal(0.0, 1.0, n)
    log_odds = np.log(prevalence / (1 - prevalence)) + signal * z + overconfidence
    return y, 1.0 / (1.0 + np.exp(-log_odds))


def _defaults(**changes: object) -> GatesSpec:
    return GatesSpec(bootstrap_samples=60, **changes)  # the default absolute gates


def _check(report: GateReport, name: str):
    return next(check for check in report.checks if check.name == name)


def _failed(report: GateReport) -> set[str]:
    return {check.name for check in report.failures()}


@pytest.fixture(scope="module")
def churny() -> tuple[np.ndarray, np.ndarray]:
    """A 30 % positive table and a reasonable first model of it: Brier ~0.13 and ECE ~0.11 (as the issue's)."""
    return _holdout(8_000, 0.30, 1.7, 0.85, seed=30)


def test_the_relative_metrics_are_computed_beside_the_raw_ones(churny: tuple[np.ndarray, np.ndarray]) -> None:
    y, score = churny
    metrics = compute_metrics(y, score, precision_target=0.5)
    p = y.mean()
    assert metrics["positive_rate"] == pytest.approx(p)
    assert metrics["auc_pr_lift"] == pytest.approx(average_precision_score(y, score) / p)
    assert metrics["brier_skill"] == pytest.approx(1 - brier_score_loss(y, score) / (p * (1 - p)))
    assert metrics["ece_ratio"] == pytest.approx(metrics["ece"] / p)
    # derived in compute_metrics only: neither bootstrapped nor sliced
    assert not set(RELATIVE_METRICS) & set(SCORE_METRICS) and set(RELATIVE_METRICS.values()) <= set(SCORE_METRICS)
    assert "ece_ratio" in LOWER_IS_BETTER and not {"auc_pr_lift", "brier_skill"} & LOWER_IS_BETTER


def test_a_reasonable_model_of_a_30_percent_table_passes_the_defaults(churny: tuple[np.ndarray, np.ndarray]) -> None:
    y, score = churny
    raw = compute_metrics(y, score, precision_target=0.5)
    assert 0.28 < raw["positive_rate"] < 0.32 and 0.12 < raw["brier"] < 0.14 and 0.10 < raw["ece"] < 0.12

    report = evaluate_gates(_defaults(), y, score, None, {}, EXTRA, CONTRACT_OK)
    assert report.passed, report.summary()
    assert 0.3 < _check(report, "absolute:brier_skill").value < 0.45  # 1 - 0.13 / 0.21
    assert 0.3 < _check(report, "absolute:ece_ratio").value < 0.45  # 0.11 / 0.30

    # the fraud-sized defaults, as a model file may still list them, still apply as written: they fail it
    old = evaluate_gates(_defaults(absolute=FRAUD_SIZED), y, score, None, {}, EXTRA, CONTRACT_OK)
    assert _failed(old) == {"absolute:brier", "absolute:ece"}
    brier = _check(old, "absolute:brier")
    assert brier.value == pytest.approx(raw["brier"]) and brier.threshold == "<= 0.05" and not brier.detail


def test_each_relative_check_shows_the_raw_value_it_came_from(churny: tuple[np.ndarray, np.ndarray]) -> None:
    y, score = churny
    report = evaluate_gates(_defaults(), y, score, None, {}, EXTRA, CONTRACT_OK)
    m = report.candidate_metrics
    p = m["positive_rate"]
    lift, skill, ratio = (_check(report, name) for name in sorted(RELATIVE_GATES))
    assert lift.name == "absolute:auc_pr_lift" and lift.threshold == ">= 1.5"
    assert lift.detail == f"auc_pr {m['auc_pr']:.4f} vs positive rate {p:.4f}"
    assert skill.name == "absolute:brier_skill" and skill.threshold == ">= 0.05"
    assert skill.detail == f"brier {m['brier']:.4f} vs base rate's {p * (1 - p):.4f}"
    assert ratio.name == "absolute:ece_ratio" and ratio.threshold == "<= 0.5"
    assert ratio.detail == f"ece {m['ece']:.4f} vs positive rate {p:.4f}"
    page = render_gate_report_html(report, title="churn")
    assert lift.detail in page and "base rate&#x27;s" in page
    assert "<td>ece_ratio</td>" in page and "brier_skill = 1 - brier / (p (1 - p))" in page


def test_a_decent_model_of_rare_positives_passes_the_defaults() -> None:
    y, score = _holdout(60_000, 0.01, 2.6, 0.0, seed=1)
    raw = compute_metrics(y, score, precision_target=0.5)
    assert 0.4 < raw["auc_pr"] < 0.6 and raw["brier"] < 0.008  # about the demo's (auc_pr ~0.5, brier ~0.007)
    report = evaluate_gates(_defaults(), y, score, None, {}, EXTRA, CONTRACT_OK)
    assert report.passed, report.summary()


@pytest.mark.parametrize("prevalence", [0.01, 0.3])
def test_a_model_with_no_signal_fails_the_relative_gates_by_name(prevalence: float) -> None:
    rng = np.random.default_rng(7)
    y = (rng.random(20_000) < prevalence).astype(int)
    base_rate = evaluate_gates(_defaults(), y, np.full(y.size, y.mean()), None, {}, EXTRA, CONTRACT_OK)
    assert {"absolute:auc_pr_lift", "absolute:brier_skill"} <= _failed(base_rate)
    assert _check(base_rate, "absolute:auc_pr_lift").value == pytest.approx(1.0)  # chance level
    assert _check(base_rate, "absolute:brier_skill").value == pytest.approx(0.0, abs=1e-9)  # the base rate itself
    assert "FAIL absolute:brier_skill: " in base_rate.summary() and "vs base rate's" in base_rate.summary()

    random = evaluate_gates(_defaults(), y, rng.random(y.size), None, {}, EXTRA, CONTRACT_OK)
    assert _failed(random) >= RELATIVE_GATES, random.summary()
    assert _check(random, "absolute:auc_pr_lift").value < 1.2 and _check(random, "absolute:brier_skill").value < 0


def test_the_demo_model_passes_the_defaults(tmp_path: Path) -> None:
    """card_transactions as the demo trains it (its generator, features and model settings), on two holdout days."""
    from mlops.training.train import fit_booster

    settings = load_settings(env={"MLOPS_HOME": str(tmp_path)})
    spec = feature_spec(settings, Contract.load(settings.contract_path))

    def day(offset: int) -> tuple[np.ndarray, np.ndarray]:
        raw, labels = generate_day(dt.date(2026, 11, 1) + dt.timedelta(days=offset), 20_000, 42)
        table = raw.join(labels, settings.dataset.id_column)
        return build_matrix(table, spec), table.column(settings.dataset.label.column).to_numpy().astype(int)

    train, valid, holdout = [day(0), day(1)], day(2), [day(3), day(4)]
    booster, _ = fit_booster(settings, spec, np.vstack([x for x, _ in train]),
                             np.concatenate([y for _, y in train]), *valid)  # fmt: skip
    y = np.concatenate([y for _, y in holdout])
    score = booster.inplace_predict(np.vstack([x for x, _ in holdout]))
    report = evaluate_gates(settings.gates, y, score, None, {}, EXTRA, CONTRACT_OK)
    assert report.passed, report.summary()
    m = report.candidate_metrics
    assert m["positive_rate"] < 0.02 and m["auc_pr_lift"] > 20 and m["brier_skill"] > 0.2 and m["ece_ratio"] < 0.3


@pytest.mark.parametrize("label", [0, 1])
def test_a_holdout_of_one_class_fails_with_a_reason_and_raises_nothing(label: int) -> None:
    rng = np.random.default_rng(5)
    y = np.full(3_000, label)
    candidate, champion = rng.random(y.size), rng.random(y.size)
    slices = {"channel": rng.choice(np.array(["web", "pos"]), y.size)}
    for champ in (None, champion):
        report = evaluate_gates(_defaults(), y, candidate, champ, slices, EXTRA, CONTRACT_OK)
        assert not report.passed
        which = "negative (positive rate 0)" if label == 0 else "positive (positive rate 1)"
        classes = _check(report, "absolute:holdout_classes")
        assert not classes.passed and f"all 3000 holdout rows are {which}" in classes.detail
        for name in RELATIVE_GATES | {"absolute:recall_at_precision"}:
            check = _check(report, name)
            assert not check.passed and check.value is None
            assert check.detail.startswith(f"{name.split(':')[1]} is undefined: all 3000 holdout rows")
        assert report.candidate_metrics["positive_rate"] == label and report.candidate_metrics["auc_pr_lift"] is None
        assert report.summary().startswith("FAIL absolute:holdout_classes: ")
        json.dumps(report.to_dict(), allow_nan=False)
        curves = holdout_curves(y, candidate, champ)
        assert curves["candidate"]["pr"] is None and curves["candidate"]["calibration"]["rows"]
        assert ">FAIL</span>" in render_gate_report_html(report, title="one class", curves=curves)
    champion_check = _check(report, "champion:auc_pr")
    assert not champion_check.passed and "no paired bootstrap of auc_pr: all 3000 holdout rows" in champion_check.detail
    # a model file that gates on metrics one class still defines fails too, by the holdout check
    brier_only = _defaults(absolute={"brier": Bound(max=1.0)})
    brier_report = evaluate_gates(brier_only, y, candidate, None, {}, EXTRA, CONTRACT_OK)
    assert _failed(brier_report) == {"absolute:holdout_classes"}
