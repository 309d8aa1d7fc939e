"""Metrics agree with scikit-learn, the bootstrap is paired and reproducible, and every gate kind blocks a bad model."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

from mlops.config import Bound, GatesSpec
from mlops.evaluation import (
    LOWER_IS_BETTER,
    _Ranked,
    check_inputs,
    compute_metrics,
    metric_value,
    paired_bootstrap,
    slice_metrics,
)
from mlops.gate_report import render_gate_report_html
from mlops.gates import GateReport, evaluate_gates

EXTRA = {"latency_p95_ms_per_10k": 12.0, "model_size_mb": 1.5}
CONTRACT_OK = (True, "all 21 features present with contract types")


def _scores(y: np.ndarray, signal: float, rng: np.random.Generator, offset: float = -4.0) -> np.ndarray:
    """Probabilities that separate the classes by ``signal`` (0 = pure noise)."""
    return 1.0 / (1.0 + np.exp(-(signal * y + rng.normal(0.0, 1.0, y.size) + offset)))


def _labels(n: int, prevalence: float, rng: np.random.Generator) -> np.ndarray:
    return (rng.random(n) < prevalence).astype(int)


def _gates(**changes: object) -> GatesSpec:
    """Gates loose enough that a decent synthetic model passes the absolute ones; tests tighten one at a time."""
    base = {
        "absolute": {"auc_pr": Bound(min=0.05), "latency_p95_ms_per_10k": Bound(max=500.0)},
        "bootstrap_samples": 100,
        "champion_tolerance": 0.01,
        "slice_min_rows": 200,
        "slice_min_positives": 10,
    }
    return GatesSpec(**{**base, **changes})


# ------------------------------------------------------------------------------------------------ metrics


def test_metrics_match_sklearn_including_tied_scores() -> None:
    rng = np.random.default_rng(1)
    y = _labels(5_000, 0.05, rng)
    for score in (_scores(y, 2.0, rng), np.round(_scores(y, 1.0, rng), 2)):  # the second has many ties
        metrics = compute_metrics(y, score, precision_target=0.5)
        assert metrics["auc_pr"] == pytest.approx(average_precision_score(y, score), abs=1e-12)
        assert metrics["roc_auc"] == pytest.approx(roc_auc_score(y, score), abs=1e-12)
        assert metrics["brier"] == pytest.approx(brier_score_loss(y, score), abs=1e-12)
        assert metrics["rows"] == 5_000 and metrics["positives"] == int(y.sum())


def test_perfect_ranker_and_constant_score_have_known_metrics() -> None:
    y = np.array([0] * 90 + [1] * 10)
    perfect = compute_metrics(y, np.where(y == 1, 0.9, 0.1), precision_target=0.5)
    assert perfect["auc_pr"] == 1.0 and perfect["roc_auc"] == 1.0 and perfect["recall_at_precision"] == 1.0
    constant = compute_metrics(y, np.full(100, 0.3), precision_target=0.5)
    assert constant["auc_pr"] == pytest.approx(0.10)  # the prevalence
    assert constant["roc_auc"] == pytest.approx(0.5)
    assert constant["recall_at_precision"] == 0.0  # precision 0.1 never reaches 0.5


def test_recall_at_precision_on_a_hand_made_ranking() -> None:
    # ranked: +, +, -, +, -, -  -> (precision, recall) at each cut: (1, 1/3) (1, 2/3) (2/3, 2/3) (3/4, 1) ...
    y = np.array([1, 1, 0, 1, 0, 0])
    score = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4])
    assert compute_metrics(y, score, precision_target=0.7)["recall_at_precision"] == pytest.approx(1.0)
    assert compute_metrics(y, score, precision_target=0.8)["recall_at_precision"] == pytest.approx(2 / 3)
    # the top row is a negative and precision never climbs back to 0.6
    never = compute_metrics(np.array([0, 1, 0, 1]), np.array([0.9, 0.8, 0.7, 0.6]), precision_target=0.6)
    assert never["recall_at_precision"] == 0.0


def test_ece_is_zero_when_calibrated_and_the_gap_when_not() -> None:
    # each bin's score equals its observed positive rate: perfectly calibrated
    y = np.concatenate([[1] * k + [0] * (10 - k) for k in range(1, 10)])
    score = np.repeat(np.arange(1, 10) / 10 + 0.0, 10)
    assert compute_metrics(y, score, precision_target=0.5)["ece"] == pytest.approx(0.0, abs=1e-12)
    # always says 0.9 when 10% are positive: off by 0.8 everywhere
    y = np.array([1] * 10 + [0] * 90)
    assert compute_metrics(y, np.full(100, 0.9), precision_target=0.5)["ece"] == pytest.approx(0.8)
    # two bins: 100 rows at 0.2 with 50% positives (gap 0.3), 300 rows at 0.8 with 80% positives (gap 0)
    y = np.array([1] * 50 + [0] * 50 + [1] * 240 + [0] * 60)
    score = np.array([0.2] * 100 + [0.8] * 300)
    assert compute_metrics(y, score, precision_target=0.5)["ece"] == pytest.approx(100 / 400 * 0.3)


def test_single_class_and_non_probability_scores_are_refused() -> None:
    with pytest.raises(ValueError, match="both classes"):
        compute_metrics(np.zeros(50, dtype=int), np.linspace(0, 1, 50), precision_target=0.5)
    with pytest.raises(ValueError, match="both classes"):
        paired_bootstrap(np.ones(50), np.full(50, 0.5), np.full(50, 0.5), "auc_pr", 50, 0.95, 0, 0.5)
    with pytest.raises(ValueError, match="probabilities"):
        compute_metrics(np.array([0, 1]), np.array([-2.0, 3.0]), precision_target=0.5)
    with pytest.raises(ValueError, match="unknown metric"):
        metric_value(np.array([0, 1]), np.array([0.1, 0.9]), "f1", 0.5)


def test_one_class_is_measured_only_when_asked_and_ranking_metrics_are_none_then() -> None:
    metrics = compute_metrics(np.zeros(50, dtype=int), np.full(50, 0.2), precision_target=0.5, allow_one_class=True)
    assert metrics["brier"] == pytest.approx(0.04) and metrics["ece"] == pytest.approx(0.2)
    assert metrics["positive_rate"] == 0.0 and metrics["positives"] == 0
    undefined = ("auc_pr", "roc_auc", "recall_at_precision", "auc_pr_lift", "brier_skill", "ece_ratio")
    assert all(metrics[name] is None for name in undefined)


def test_slice_metrics_report_counts_and_hide_metrics_of_small_slices() -> None:
    rng = np.random.default_rng(2)
    y = _labels(3_000, 0.1, rng)
    score = _scores(y, 2.0, rng)
    country = np.where(np.arange(3_000) < 2_900, "US", "NG")
    result = slice_metrics(y, score, {"country": country}, "auc_pr", 500, 10, 0.5)
    us = country == "US"
    assert result["country"]["US"]["rows"] == 2_900
    assert result["country"]["US"]["positives"] == int(y[us].sum())
    assert result["country"]["US"]["auc_pr"] == pytest.approx(average_precision_score(y[us], score[us]))
    assert result["country"]["NG"] == {"rows": 100, "positives": int(y[~us].sum()), "auc_pr": None}


# ---------------------------------------------------------------------------------------------- bootstrap


def _on_resamples(y: np.ndarray, score: np.ndarray, counts: np.ndarray, metric: str) -> np.ndarray:
    """The metric on each resample as the bootstrap computes it (``counts[k, i]``: draws of row ``i``)."""
    return _Ranked(*check_inputs(y, score)).metric(counts.astype(np.float64), metric, 0.5)


def test_resampled_metrics_equal_the_metric_on_the_materialised_resample() -> None:
    rng = np.random.default_rng(3)
    y = _labels(400, 0.1, rng)
    score = np.round(_scores(y, 1.5, rng), 2)  # ties
    indices = rng.integers(0, y.size, size=(5, y.size))
    counts = np.stack([np.bincount(row, minlength=y.size) for row in indices])
    reference = {
        "auc_pr": average_precision_score,
        "roc_auc": roc_auc_score,
        "brier": brier_score_loss,
    }
    for metric, sklearn_metric in reference.items():
        got = _on_resamples(y, score, counts, metric)
        want = [sklearn_metric(y[row], score[row]) for row in indices]
        np.testing.assert_allclose(got, want, atol=1e-12)
    for metric in ("recall_at_precision", "ece"):
        got = _on_resamples(y, score, counts, metric)
        want = [compute_metrics(y[row], score[row], 0.5)[metric] for row in indices]
        np.testing.assert_allclose(got, want, atol=1e-12)


def test_bootstrap_is_deterministic_per_seed_and_sees_a_clearly_better_model() -> None:
    rng = np.random.default_rng(4)
    y = _labels(8_000, 0.05, rng)
    strong, weak = _scores(y, 3.0, rng), _scores(y, 1.0, rng)
    args = ("auc_pr", 200, 0.95)
    first = paired_bootstrap(y, strong, weak, *args, seed=7, precision_target=0.5)
    assert first == paired_bootstrap(y, strong, weak, *args, seed=7, precision_target=0.5)
    assert first != paired_bootstrap(y, strong, weak, *args, seed=8, precision_target=0.5)
    assert first["delta"] == pytest.approx(average_precision_score(y, strong) - average_precision_score(y, weak))
    assert 0 < first["ci_low"] < first["delta"] < first["ci_high"]
    assert first["samples"] == 200 and first["skipped"] == 0
    reverse = paired_bootstrap(y, weak, strong, *args, seed=7, precision_target=0.5)
    assert reverse["ci_high"] < 0


def test_bootstrap_is_paired_same_ranking_gives_zero_delta_in_every_resample() -> None:
    rng = np.random.default_rng(5)
    y = _labels(5_000, 0.05, rng)
    score = _scores(y, 2.0, rng)
    same = paired_bootstrap(y, score, score, "auc_pr", 100, 0.95, 0, 0.5)
    assert same["delta"] == 0.0 and same["ci_low"] == 0.0 and same["ci_high"] == 0.0
    # a monotone transform ranks rows identically: equal AP on every resample only if both see the same rows
    squashed = paired_bootstrap(y, score, score**3, "auc_pr", 100, 0.95, 0, 0.5)
    assert squashed["ci_low"] == pytest.approx(0.0, abs=1e-12) and squashed["ci_high"] == pytest.approx(0.0, abs=1e-12)


def test_bootstrap_skips_and_counts_single_class_resamples() -> None:
    y = np.array([1, 1] + [0] * 38)  # (38/40)^40: about 13% of resamples hold no positive
    score = np.linspace(0.9, 0.1, 40)
    result = paired_bootstrap(y, score, score[::-1], "auc_pr", 200, 0.9, 3, 0.5)
    assert result["skipped"] > 0
    assert result["samples"] + result["skipped"] == 200
    assert np.isfinite([result["ci_low"], result["ci_high"]]).all()


# -------------------------------------------------------------------------------------------------- gates


@pytest.fixture(scope="module")
def holdout() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(10)
    y = _labels(6_000, 0.08, rng)
    return {
        "y": y,
        "good": _scores(y, 2.5, rng),
        "better": _scores(y, 4.0, rng),
        "noise": _scores(y, 0.0, rng),
        "channel": rng.choice(np.array(["web", "pos", "app"]), y.size),
    }


def _kinds(report: GateReport) -> set[str]:
    return {check.kind for check in report.checks}


def _check(report: GateReport, name: str):
    return next(check for check in report.checks if check.name == name)


def test_absolute_min_and_max_bounds_pass_and_fail(holdout: dict[str, np.ndarray]) -> None:
    y, good = holdout["y"], holdout["good"]
    ok = evaluate_gates(_gates(), y, good, None, {}, EXTRA, CONTRACT_OK)
    assert ok.passed, ok.summary()

    brier = brier_score_loss(y, good)
    tight = _gates(absolute={"auc_pr": Bound(min=0.999), "brier": Bound(max=brier / 2), "model_size_mb": Bound(max=1)})
    report = evaluate_gates(tight, y, good, None, {}, EXTRA, CONTRACT_OK)
    assert not report.passed
    assert {c.name for c in report.failures()} == {"absolute:auc_pr", "absolute:brier", "absolute:model_size_mb"}
    assert _check(report, "absolute:brier").value == pytest.approx(brier)
    assert "absolute:model_size_mb" in report.summary() and "<= 1" in report.summary()


def test_a_configured_metric_that_was_not_measured_fails(holdout: dict[str, np.ndarray]) -> None:
    gates = _gates(absolute={"latency_p95_ms_per_10k": Bound(max=500.0)})
    report = evaluate_gates(gates, holdout["y"], holdout["good"], None, {}, {}, CONTRACT_OK)
    failed = report.failures()
    assert [c.name for c in failed] == ["absolute:latency_p95_ms_per_10k"]
    assert "not measured" in failed[0].detail


def test_without_a_champion_only_absolute_and_contract_gates_decide(holdout: dict[str, np.ndarray]) -> None:
    report = evaluate_gates(
        _gates(), holdout["y"], holdout["good"], None, {"channel": holdout["channel"]}, EXTRA, CONTRACT_OK
    )
    assert report.passed and _kinds(report) == {"absolute", "contract"}
    assert report.comparison is None and report.champion_metrics is None
    assert "no champion: absolute gates only" in report.summary()
    assert set(report.slices["candidate"]["channel"]) == {"web", "pos", "app"}  # still measured, for the record


def test_contract_mismatch_fails_the_gate(holdout: dict[str, np.ndarray]) -> None:
    check = (False, "missing feature 'amount'; unexpected 'amount_usd'")
    report = evaluate_gates(_gates(), holdout["y"], holdout["better"], holdout["good"], {}, EXTRA, check)
    assert not report.passed
    assert [c.name for c in report.failures()] == ["contract:features"]
    assert "missing feature 'amount'" in report.summary()


def test_champion_gate_allows_a_tolerated_dip_but_blocks_a_clear_regression(holdout: dict[str, np.ndarray]) -> None:
    y, good, noise = holdout["y"], holdout["good"], holdout["noise"]
    # the same model retrained: a tiny perturbation stays inside a 0.01 tolerance
    rng = np.random.default_rng(11)
    retrained = np.clip(good + rng.normal(0, 1e-4, y.size), 0, 1)
    same = evaluate_gates(_gates(), y, retrained, good, {}, EXTRA, CONTRACT_OK)
    assert _check(same, "champion:auc_pr").passed, same.summary()
    assert same.comparison is not None and same.comparison["ci_low"] >= -0.01

    worse = evaluate_gates(_gates(absolute={}), y, noise, good, {}, EXTRA, CONTRACT_OK)
    check = _check(worse, "champion:auc_pr")
    assert not check.passed and not worse.passed
    assert check.value == worse.comparison["ci_low"] < -0.01
    assert check.threshold == "delta CI low >= -0.01"


def test_require_improvement_needs_the_whole_interval_above_zero(holdout: dict[str, np.ndarray]) -> None:
    y, good, better = holdout["y"], holdout["good"], holdout["better"]
    gates = _gates(require_improvement=True)
    assert not _check(evaluate_gates(gates, y, good, good, {}, EXTRA, CONTRACT_OK), "champion:auc_pr").passed
    improved = evaluate_gates(gates, y, better, good, {}, EXTRA, CONTRACT_OK)
    assert _check(improved, "champion:auc_pr").passed and improved.comparison["ci_low"] > 0


def test_lower_is_better_metrics_flip_the_champion_and_slice_comparisons(holdout: dict[str, np.ndarray]) -> None:
    assert {"brier", "ece", "ece_ratio"} <= LOWER_IS_BETTER
    y, good = holdout["y"], holdout["good"]
    overconfident = 0.3 + 0.7 * good  # same ranking, every score inflated: a much worse Brier
    gates = _gates(champion_metric="brier", slice_metric="brier", absolute={})
    assert brier_score_loss(y, overconfident) > brier_score_loss(y, good) + 0.05

    improved = evaluate_gates(gates, y, good, overconfident, {"channel": holdout["channel"]}, EXTRA, CONTRACT_OK)
    assert improved.passed, improved.summary()  # a lower Brier is an improvement, not a regression

    regressed = evaluate_gates(gates, y, overconfident, good, {"channel": holdout["channel"]}, EXTRA, CONTRACT_OK)
    assert not _check(regressed, "champion:brier").passed
    assert "lower is better" in _check(regressed, "champion:brier").threshold
    failed_slices = {c.name for c in regressed.failures() if c.kind == "slice"}
    # slices regress too, unless Brier rose by less than the 0.05 tolerance there
    assert failed_slices == {
        f"slice:channel={v}:brier"
        for v in ("web", "pos", "app")
        if brier_score_loss(y[holdout["channel"] == v], overconfident[holdout["channel"] == v])
        > brier_score_loss(y[holdout["channel"] == v], good[holdout["channel"] == v]) + 0.05
    }


def test_a_slice_regression_fails_even_when_the_overall_metric_improves() -> None:
    rng = np.random.default_rng(12)
    y = _labels(10_000, 0.08, rng)
    country = np.where(rng.random(y.size) < 0.85, "US", "NG")
    champion = _scores(y, 2.0, rng)
    # the candidate is much better in the US and guesses in Nigeria
    candidate = np.where(country == "US", _scores(y, 4.0, rng), _scores(y, 0.0, rng))
    report = evaluate_gates(_gates(), y, candidate, champion, {"country": country}, EXTRA, CONTRACT_OK)
    assert _check(report, "champion:auc_pr").passed  # overall the candidate wins
    assert _check(report, "slice:country=US:auc_pr").passed
    ng = _check(report, "slice:country=NG:auc_pr")
    ng_rows = country == "NG"
    assert not ng.passed and not report.passed
    assert ng.value == pytest.approx(average_precision_score(y[ng_rows], candidate[ng_rows]))
    assert "slice:country=NG:auc_pr" in report.summary()


def test_small_slices_are_skipped_not_failed(holdout: dict[str, np.ndarray]) -> None:
    y, good = holdout["y"], holdout["good"]
    tiny_rows = np.concatenate([np.flatnonzero(y == 1)[:5], np.flatnonzero(y == 0)[:45]])
    region = np.full(y.size, "main")
    region[tiny_rows] = "tiny"
    candidate = good.copy()
    ranked = tiny_rows[np.argsort(good[tiny_rows])]
    candidate[ranked] = good[ranked[::-1]]  # the tiny slice's ranking reversed, identical elsewhere
    gates = _gates(champion_tolerance=0.05)  # the overall dip those 5 positives cause is not the point here
    report = evaluate_gates(gates, y, candidate, good, {"region": region}, EXTRA, CONTRACT_OK)
    tiny = _check(report, "slice:region=tiny:auc_pr")
    assert average_precision_score(y[tiny_rows], candidate[tiny_rows]) < 0.5  # a real regression, but tiny
    assert tiny.passed and tiny.value is None and tiny.detail.startswith("skipped: 50 rows / 5 positives")
    assert report.slices["candidate"]["region"]["tiny"]["auc_pr"] is None
    assert report.passed, report.summary()
    assert "1 small slices skipped" in report.summary()


def test_report_is_json_and_html_escapes_values_and_shows_fail(holdout: dict[str, np.ndarray]) -> None:
    y, good, noise = holdout["y"], holdout["good"], holdout["noise"]
    hostile = np.where(holdout["channel"] == "web", "<script>alert(1)</script>", holdout["channel"])
    report = evaluate_gates(_gates(), y, noise, good, {"channel": hostile}, EXTRA, (False, "a & b <missing>"))
    assert not report.passed
    data = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert data["passed"] is False and data["comparison"]["samples"] == 100

    page = render_gate_report_html(report, title="card_transactions <v3>")
    assert "<script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "card_transactions &lt;v3&gt;" in page and "a &amp; b &lt;missing&gt;" in page
    assert ">FAIL</span>" in page and ">PASS</span>" not in page

    passing = evaluate_gates(_gates(), y, good, None, {}, EXTRA, CONTRACT_OK)
    assert ">PASS</span>" in render_gate_report_html(passing, title="ok")


def test_a_slice_dip_within_the_noise_of_a_dozen_positives_is_not_a_regression() -> None:
    """Two equally good models differ on a small slice by chance: a point estimate below champion - tolerance
    would reject a good retrain (as a short window after a change does); the slice's paired-bootstrap CI says
    the dip is noise, so the slice passes and says why. A real regression still fails (test above)."""
    rng = np.random.default_rng(3)
    y = _labels(12_000, 0.03, rng)
    region = np.where(rng.random(y.size) < 0.9, "main", "small")
    small = region == "small"
    for _ in range(200):  # two draws of the same model quality, until chance alone makes a material dip
        champion, candidate = _scores(y, 3.0, rng), _scores(y, 3.0, rng)
        delta = average_precision_score(y[small], candidate[small]) - average_precision_score(y[small], champion[small])
        if delta < -0.08:
            break
    assert delta < -0.08 and 10 <= y[small].sum() <= 60
    gates = _gates(champion_tolerance=0.1, slice_tolerance=0.05)
    report = evaluate_gates(gates, y, candidate, champion, {"region": region}, EXTRA, CONTRACT_OK)
    check = _check(report, "slice:region=small:auc_pr")
    assert check.passed, check.detail
    assert "CI of the delta" in check.detail and "within the noise" in check.detail
