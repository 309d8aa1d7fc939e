"""Pictures in the reports: the gate report's SVG charts and the drift report's decision banner.

Curve points are checked against scikit-learn (an independent oracle); the gate report's charts by
their SVG elements and escaping; the Evidently report through the monitor's own ``_render_report``
on a generated day where 2 of 5 features are shifted beyond the PSI threshold (small samples: ~5 s).
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import numpy as np
import pytest
from sklearn.calibration import calibration_curve
from sklearn.metrics import precision_recall_curve

from mlops import monitoring
from mlops.config import GatesSpec, load_settings
from mlops.data.contract import Contract
from mlops.data.generator import DriftSpec, generate_day
from mlops.data.lake import Lake
from mlops.drift import assess_window, trigger_decision
from mlops.drift_report import policy_drift_share
from mlops.drift_report_page import decision_banner, inject_after_body
from mlops.evaluation import calibration_points, holdout_curves, precision_recall_points
from mlops.features import build_matrix, feature_spec
from mlops.gate_report import render_gate_report_html
from mlops.gates import evaluate_gates
from mlops.models import PinnedModel
from mlops.profiling import reference_profile

EXTRA = {"latency_p95_ms_per_10k": 3.0, "model_size_mb": 0.5}
HOSTILE = "<script>alert(1)</script>"


def _data(n: int, prevalence: float, seed: int, ties: bool = False) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < prevalence).astype(int)
    score = 1.0 / (1.0 + np.exp(-(-3.0 + 2.0 * y + rng.normal(size=n))))
    return y, (np.round(score, 2) if ties else score)


# ------------------------------------------------------------------------------------------ curve points


@pytest.mark.parametrize("ties", [False, True])
def test_precision_recall_points_are_sklearns_curve(ties: bool) -> None:
    y, score = _data(4_000, 0.05, seed=3, ties=ties)
    precision, recall, thresholds = precision_recall_curve(y, score)
    full = precision_recall_points(y, score, max_points=10**9)
    # ours runs by decreasing threshold from (recall 0, precision 1); scikit-learn's the other way round
    np.testing.assert_allclose(full["precision"], precision[::-1], rtol=0, atol=1e-12)
    np.testing.assert_allclose(full["recall"], recall[::-1], rtol=0, atol=1e-12)
    assert full["threshold"][0] is None
    np.testing.assert_allclose(full["threshold"][1:], thresholds[::-1])

    small = precision_recall_points(y, score, max_points=50)
    assert 2 <= len(small["recall"]) <= 50 < len(full["recall"])
    sklearn_points = set(zip(np.round(recall, 12), np.round(precision, 12), strict=True))
    assert set(zip(np.round(small["recall"], 12), np.round(small["precision"], 12), strict=True)) <= sklearn_points
    assert (small["recall"][0], small["precision"][0]) == (0.0, 1.0) and small["recall"][-1] == 1.0
    assert np.all(np.diff(small["recall"]) >= 0)


@pytest.mark.parametrize("strategy", ["uniform", "quantile"])
def test_calibration_points_are_sklearns_reliability_curve(strategy: str) -> None:
    y, score = _data(6_000, 0.2, seed=5)
    prob_true, prob_pred = calibration_curve(y, score, n_bins=10, strategy=strategy)
    ours = calibration_points(y, score, bins=10, strategy=strategy)
    np.testing.assert_allclose(ours["fraction_positive"], prob_true, rtol=0, atol=1e-12)
    np.testing.assert_allclose(ours["mean_predicted"], prob_pred, rtol=0, atol=1e-12)
    assert sum(ours["rows"]) == y.size and min(ours["rows"]) > 0  # empty bins are left out, as in sklearn
    with pytest.raises(ValueError, match="strategy"):
        calibration_points(y, score, strategy="kmeans")


def test_holdout_curves_have_both_models_or_candidate_only() -> None:
    y, candidate = _data(5_000, 0.05, seed=7)
    _, champion = _data(5_000, 0.05, seed=8)
    both = holdout_curves(y, candidate, champion)
    assert both["prevalence"] == pytest.approx(y.mean())
    assert len(both["candidate"]["pr"]["recall"]) <= 200 and len(both["champion"]["pr"]["recall"]) <= 200
    assert both["candidate"]["calibration"] != both["champion"]["calibration"]
    assert holdout_curves(y, candidate, None)["champion"] is None


# ------------------------------------------------------------------------------------------- gate report


def _svg(page: str, chart_id: str) -> str:
    match = re.search(rf'<svg id="{chart_id}"[^>]*>.*?</svg>', page, re.S)
    assert match, f"no <svg id={chart_id!r}> in the page"
    return match.group(0)


def _report_with_champion():
    """A candidate better than the champion everywhere but in GB, where it is much worse (a failed slice gate)."""
    y, champion = _data(20_000, 0.04, seed=11)
    rng = np.random.default_rng(12)
    country = rng.choice(["US", "GB", HOSTILE], y.size)
    candidate = np.clip(champion + rng.normal(0, 0.02, y.size) + 0.05 * y, 0, 1)
    gb = country == "GB"
    candidate[gb] = rng.permutation(candidate[gb])  # no ranking left in GB
    gates = GatesSpec(slice_min_rows=200, slice_min_positives=10, bootstrap_samples=60, slice_tolerance=0.04)
    report = evaluate_gates(gates, y, candidate, champion, {"country": country}, EXTRA, (True, "ok"))
    return report, holdout_curves(y, candidate, champion), gates


def test_gate_report_draws_pr_calibration_slice_deltas_and_shap() -> None:
    report, curves, gates = _report_with_champion()
    shap = {"amount": 0.8, "device_risk_score": 0.5, HOSTILE: 0.1}
    page = render_gate_report_html(
        report, "cards <v2>", curves=curves, shap=shap, slice_tolerance=gates.slice_tolerance
    )

    for chart in ("pr-curve", "calibration-curve"):
        svg = _svg(page, chart)
        assert svg.count('<polyline class="series"') == 2
        assert 'data-series="candidate"' in svg and 'data-series="champion"' in svg
        assert 'class="reference"' in svg  # prevalence / perfect-calibration line
    assert f"candidate (auc_pr {report.candidate_metrics['auc_pr']:.4f})" in _svg(page, "pr-curve")
    assert "champion (ece " in _svg(page, "calibration-curve")

    deltas = _svg(page, "slice-deltas")
    assert deltas.count('<rect class="bar"') == 3  # US, GB and the hostile slice
    assert 'class="reference"' in deltas and "tolerance -0.04" in deltas and 'class="band"' in deltas
    assert "country=&lt;script&gt;alert(1)&lt;/script&gt;" in deltas
    red = re.findall(r'fill="#cf222e"><title>([^<]*)</title>', deltas)
    assert len(red) == 1 and red[0].startswith("country=GB: candidate")  # the one failed slice gate
    assert [c.name for c in report.failures() if c.kind == "slice"] == ["slice:country=GB:auc_pr"]

    bars = _svg(page, "shap-summary")
    assert bars.count('<rect class="bar"') == 3
    assert bars.index(">amount<") < bars.index(">device_risk_score<")  # largest first
    assert "&lt;script&gt;" in bars
    assert "<script>" not in page and "cards &lt;v2&gt;" in page


def test_without_the_new_arguments_the_page_still_renders() -> None:
    report, curves, _ = _report_with_champion()
    old_call = render_gate_report_html(report, "plain")  # backward compatible: no curves, SHAP or tolerance
    assert 'id="pr-curve"' not in old_call and "no SHAP summary was logged" in old_call
    deltas = _svg(old_call, "slice-deltas")  # the deltas come from the report itself
    assert deltas.count('<rect class="bar"') == 3 and "tolerance" not in deltas and "#cf222e" not in deltas

    y, candidate = _data(3_000, 0.05, seed=2)
    alone = evaluate_gates(GatesSpec(bootstrap_samples=60), y, candidate, None, {}, EXTRA, (True, "ok"))
    page = render_gate_report_html(alone, "first model", curves=holdout_curves(y, candidate, None))
    assert _svg(page, "pr-curve").count('data-series="candidate"') == 1 and 'data-series="champion"' not in page
    assert _svg(page, "calibration-curve").count("<polyline") == 1 and 'id="slice-deltas"' not in page


# ------------------------------------------------------------------------------------------- drift report

FEATURES = ["amount", "device_risk_score", "merchant_category", "hour_of_day", "noise_1"]
DAY = dt.date(2025, 4, 1)


def test_evidently_report_opens_with_our_trigger_and_agrees_with_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = load_settings(
        env={"MLOPS_HOME": str(tmp_path / "mlops")},
        conf={
            "dataset": {"features": FEATURES},
            "drift": {"min_breaching_features": 2, "report_sample_rows": 1000},
        },
    )
    spec = feature_spec(settings, Contract.load(settings.contract_path))
    reference, _ = generate_day(DAY - dt.timedelta(1), 5_000, 1)
    current, _ = generate_day(DAY, 5_000, 2, DriftSpec(DAY, "covariate", ("amount", "device_risk_score"), 1.5))
    X_ref = build_matrix(reference, spec)
    profile = reference_profile(X_ref, spec, np.random.default_rng(0).random(X_ref.shape[0]))
    result = assess_window(settings, profile, spec, build_matrix(current, spec), None, None, None,
                           DAY.isoformat(), [DAY.isoformat()])  # fmt: skip
    decision = trigger_decision(settings, [], result, DAY, None, False)
    assert set(result.breached_features) == {"amount", "device_risk_score"} and decision["trigger"]
    # Evidently's default (dataset drift at half the columns) would read 2 of 5 as "NOT detected".
    assert policy_drift_share(2, len(FEATURES)) == 2 / 5 < 0.5

    pinned = PinnedModel("cards", "3", "run-1", "models:/cards/3", spec.to_dict())
    champion = monitoring.Champion(pinned, profile, None, {})
    monkeypatch.setattr(monitoring, "_reference_sample", lambda _s, _c, columns: reference.select(columns).to_pandas())
    lake = Lake.from_settings(settings)
    uri = monitoring._render_report(settings, lake, DAY, champion, current, result.to_dict(), decision)

    path = lake.report("drift", DAY, "report.html", settings.dataset.name)
    assert uri == lake.url(path)
    with lake.fs.open(path, "r", encoding="utf-8") as handle:
        page = handle.read()
    body = re.search(r"</head>\s*<body[^>]*>", page)
    assert body and page[body.end() :].startswith("<style>")
    banner = page[body.end() : page.index("</div>", body.end())]
    assert "Our decision: retraining triggered" in banner and "severe drift" in banner
    assert "Breached features:</b> device_risk_score (PSI" in banner and "amount (PSI" in banner
    breached_rows = re.findall(r'<tr class="bad"><td>([^<]+)</td>', banner)
    assert sorted(breached_rows) == ["amount", "device_risk_score"]
    assert "score (champion&#x27;s predictions)" in banner and "no scores in the window" in banner
    assert "Dataset Drift is NOT detected" not in page
    assert "Dataset Drift is detected" in page and "drift detection threshold is 0.4" in page


def test_decision_banner_escapes_and_says_when_drift_did_not_trigger(tmp_path: Path) -> None:
    settings = load_settings(env={"MLOPS_HOME": str(tmp_path / "mlops")})
    result = {
        "day": "2025-04-02",
        "window": ["2025-04-01", "2025-04-02"],
        "features": {HOSTILE: {"psi": 0.31, "pvalue": 1e-9, "rows": 800}, "amount": {"psi": 0.01, "pvalue": 0.5}},
        "score": {"psi": 0.05, "pvalue": 0.2, "breached": False},
        "performance": None,
        "breached_features": {HOSTILE: 0.31},
        "breached": True,
    }
    decision = {"trigger": False, "reason": f"debounce: 1/2 breaching windows (feature {HOSTILE} PSI 0.310)"}
    banner = decision_banner(decision, result, settings.drift)
    assert "<script>" not in banner and "&lt;script&gt;alert(1)&lt;/script&gt;" in banner
    assert "retraining NOT triggered" in banner and "2025-04-01 .. 2025-04-02 (800 rows" in banner
    assert banner.count('<tr class="bad">') == 1

    page = tmp_path / "page.html"
    page.write_text('<html><head><script>var s = "<body>";</script></head>\n<body class="x"><div id="root"></div>')
    inject_after_body(str(page), "<p>ours</p>")
    assert page.read_text().endswith('<body class="x"><p>ours</p><div id="root"></div>')
