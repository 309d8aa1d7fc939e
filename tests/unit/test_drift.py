"""Drift monitoring: PSI maths, binning against the stored profile, calibration on generator data, trigger policy.

Calibration set-up (module fixture, seeded): a small XGBoost "champion" (``fit_booster``, depth 4, at most
40 rounds) is trained on two generator days of 50k rows (seed 0), early-stopped on a third and evaluated on
a fourth (its holdout AUC-PR is the performance reference); its reference profile is ``reference_profile``
of the training rows and their scores. Current windows are single later days of 50k rows
(``window_days=1``), each with its own day and seed. Every loop uses the numpy decision only (no Evidently).
"""

from __future__ import annotations

import datetime as dt
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mlops.config import Settings, load_settings
from mlops.data.contract import Contract
from mlops.data.generator import DriftSpec, generate_day
from mlops.data.lake import Lake
from mlops.drift import (
    DriftResult,
    append_history,
    assess_window,
    feature_drift,
    history_path,
    performance_drift,
    psi,
    read_history,
    score_drift,
    trigger_decision,
)
from mlops.drift_report import evidently_report
from mlops.evaluation import compute_metrics
from mlops.features import FeatureSpec, build_matrix, feature_spec
from mlops.profiling import reference_profile

ROWS = 50_000
SEEDS = 20
REF_START = dt.date(2025, 3, 1)
WINDOW_START = dt.date(2025, 4, 1)  # calibration windows: WINDOW_START + i, seed 100 + i
AMOUNT_MAGNITUDE = 1.5  # amount x e^(0.4 * 1.5) = x1.82 (log-amount +0.6, ~0.6 sd): PSI ~0.26
CONCEPT_MAGNITUDE = 0.25  # a quarter of P(fraud) follows the new concept (w = 0.25)


@dataclass
class Champion:
    settings: Settings
    spec: FeatureSpec
    booster: Any
    profile: dict
    holdout_auc_pr: float

    def scores(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(self.booster.inplace_predict(X), dtype=np.float64)


def _day(spec: FeatureSpec, day: dt.date, seed: int, drift: DriftSpec | None = None, rows: int = ROWS):
    table, labels = generate_day(day, rows, seed, drift)
    return build_matrix(table, spec), labels.column("is_fraud").to_numpy()


@pytest.fixture(scope="module")
def champion(tmp_path_factory: pytest.TempPathFactory) -> Champion:
    from mlops.training.train import fit_booster

    settings = load_settings(
        conf={
            "model": {
                "params": {"max_depth": 4, "eta": 0.3},
                "num_boost_round": 40,
                "early_stopping_rounds": 10,
                "nthread": 2,
            },
            "training": {"seed": 0},
        },
        env={"MLOPS_HOME": str(tmp_path_factory.mktemp("drift"))},
    )
    spec = feature_spec(settings, Contract.load(settings.contract_path))
    days = [_day(spec, REF_START + dt.timedelta(i), seed=0) for i in range(4)]
    X_train = np.vstack([days[0][0], days[1][0]])
    y_train = np.concatenate([days[0][1], days[1][1]])
    booster, _ = fit_booster(settings, spec, X_train, y_train, *days[2])
    holdout = compute_metrics(days[3][1], booster.inplace_predict(days[3][0]), settings.gates.precision_target)
    profile = reference_profile(X_train, spec, np.asarray(booster.inplace_predict(X_train), dtype=np.float64))
    return Champion(settings, spec, booster, profile, float(holdout["auc_pr"]))


def _assess(champion: Champion, day: dt.date, seed: int, drift: DriftSpec | None, labels: bool = True,
            rows: int = ROWS) -> DriftResult:  # fmt: skip
    X, y = _day(champion.spec, day, seed, drift, rows)
    return _assess_rows(champion, day, X, y if labels else None)


def _assess_rows(champion: Champion, day: dt.date, X: np.ndarray, y: np.ndarray | None) -> DriftResult:
    scores = champion.scores(X)
    return assess_window(
        champion.settings,
        champion.profile,
        champion.spec,
        X,
        scores,
        (y, scores) if y is not None else None,
        champion.holdout_auc_pr,
        day.isoformat(),
        [day.isoformat()],
    )


def _result(day: str, breached: bool = True, severe: bool = False, psi_value: float = 0.3) -> DriftResult:
    """A synthetic window result for the policy tests."""
    return DriftResult(
        day=day,
        window=[day],
        features={},
        score={"psi": 0.0, "breached": False},
        performance=None,
        breached_features={"amount": psi_value} if breached else {},
        breached=breached,
        severe=severe,
    )


# ------------------------------------------------------------------------------------------------ PSI


def test_psi_known_values_and_clipping() -> None:
    ref = np.array([0.25, 0.25, 0.5])
    assert psi(ref, ref) == 0.0
    cur = np.array([0.5, 0.25, 0.25])
    expected = 0.25 * np.log(2) + (-0.25) * np.log(0.5)
    assert psi(ref, cur) == pytest.approx(expected)
    assert psi(ref, cur) == pytest.approx(psi(cur, ref))  # symmetric
    # an empty bucket is clipped to eps, not infinite
    value = psi(np.array([0.5, 0.5, 0.0]), np.array([0.4, 0.4, 0.2]))
    assert np.isfinite(value)
    assert value == pytest.approx(-0.1 * np.log(0.8) * 2 + (0.2 - 1e-4) * np.log(0.2 / 1e-4))
    with pytest.raises(ValueError, match="shape"):
        psi(np.ones(3) / 3, np.ones(4) / 4)


def test_feature_drift_on_the_reference_itself_reproduces_the_profile(champion: Champion) -> None:
    """Binning the reference rows again gives exactly the stored frequencies: same bins, same side."""
    X, _ = _day(champion.spec, REF_START, seed=0)
    prof = reference_profile(X, champion.spec, champion.scores(X))
    result = feature_drift(prof, X, champion.spec, 0.01)
    assert list(result) == list(champion.spec.names)
    for name, entry in result.items():
        ref = prof["features"][name]
        assert entry["cur_freq"] == pytest.approx([*ref["freq"], ref["missing"]], abs=1e-12), name
        assert entry["psi"] == pytest.approx(0.0, abs=1e-12)
        assert entry["pvalue"] == pytest.approx(1.0)
        assert entry["kind"] == ref["kind"]
    assert score_drift(prof, champion.scores(X))["psi"] == pytest.approx(0.0, abs=1e-12)


def test_missing_unknown_and_infinite_values_go_to_the_missing_bucket(champion: Champion) -> None:
    X, _ = _day(champion.spec, WINDOW_START, seed=1, rows=10_000)
    names = champion.spec.names
    amount, country = names.index("amount"), names.index("country")
    X[:1000, amount] = np.nan
    X[1000:1100, amount] = np.inf
    X[1100:1150, amount] = -np.inf
    X[:2000, country] = np.nan  # unknown category
    X[2000:2010, country] = 99.0  # out-of-range code: unknown as well
    result = feature_drift(champion.profile, X, champion.spec, 0.01)
    assert result["amount"]["cur_freq"][-1] == pytest.approx(1150 / 10_000)
    assert result["country"]["cur_freq"][-1] == pytest.approx(2010 / 10_000)
    assert sum(result["amount"]["cur_freq"]) == pytest.approx(1.0)
    assert result["amount"]["psi"] > 0.2 and result["amount"]["pvalue"] < 1e-10
    with pytest.raises(ValueError, match="features"):
        feature_drift(champion.profile, X[:, :3], champion.spec, 0.01)


def test_feature_drift_is_vectorised_1m_rows_well_under_a_second(champion: Champion) -> None:
    X, _ = _day(champion.spec, WINDOW_START, seed=2)
    big = np.tile(X, (20, 1))  # 1M rows x 15 features
    timings = []
    for _ in range(3):
        start = time.perf_counter()
        feature_drift(champion.profile, big, champion.spec, 0.01)
        timings.append(time.perf_counter() - start)
    assert float(np.median(timings)) < 1.0, timings


def test_performance_drift() -> None:
    rng = np.random.default_rng(0)
    y = (rng.random(5000) < 0.05).astype(int)
    good = np.clip(0.04 + 0.5 * y + rng.normal(0, 0.1, y.size), 0, 1)
    noise = rng.random(y.size)
    assert performance_drift(None, None, 0.5, 0.5, 0.2) is None
    assert performance_drift(np.zeros(10), np.full(10, 0.1), 0.5, 0.5, 0.2) is None  # one class only
    assert performance_drift(np.array([]), np.array([]), 0.5, 0.5, 0.2) is None
    kept = performance_drift(y, good, 0.9, 0.5, 0.2)
    assert kept is not None and not kept["breached"] and kept["relative_drop"] < 0.2
    lost = performance_drift(y, noise, kept["auc_pr"], 0.5, 0.2)
    assert lost is not None and lost["breached"]
    assert lost["relative_drop"] == pytest.approx((kept["auc_pr"] - lost["auc_pr"]) / kept["auc_pr"])


# ----------------------------------------------------------------------------------------- calibration


def test_no_drift_rarely_breaches_and_never_triggers(champion: Champion) -> None:
    """20 clean windows (50k rows, each a new day and seed, labels included): breach rate <= 5 %, no trigger.

    Each window is assessed with history, like the daily DAG: the debounce must never fire.
    """
    history: list[dict] = []
    breaches, triggers, max_psi, max_score_psi, max_drop = 0, 0, 0.0, 0.0, -1.0
    for i in range(SEEDS):
        day = WINDOW_START + dt.timedelta(i)
        result = _assess(champion, day, seed=100 + i, drift=None)
        decision = trigger_decision(champion.settings, history, result, day, None, False)
        history.append({**result.to_dict(), "triggered": decision["trigger"]})
        breaches += result.breached
        triggers += decision["trigger"]
        max_psi = max(max_psi, max(f["psi"] for f in result.features.values()))
        max_score_psi = max(max_score_psi, result.score["psi"])
        max_drop = max(max_drop, result.performance["relative_drop"])
    summary = f"breaches {breaches}/{SEEDS}, max feature PSI {max_psi:.4f}, max score PSI {max_score_psi:.4f}, "
    summary += f"max AUC-PR drop {max_drop:.1%}"
    assert breaches / SEEDS <= 0.05, summary
    assert triggers == 0, summary


def test_tiny_clean_windows_stay_calibrated(champion: Champion) -> None:
    """At 50 rows PSI alone is noise (empty buckets, clipped to eps, each add ~0.2-0.7): some feature
    reaches 0.2 in most clean windows. The significance guard (chi-square, Bonferroni over the window's
    tests) keeps the breach rate of 40 clean 50-row windows at <= 5 %."""
    windows = 2 * SEEDS
    results = [
        _assess(champion, WINDOW_START + dt.timedelta(i), 200 + i, None, labels=False, rows=50) for i in range(windows)
    ]
    psi_alone = sum(any(f["psi"] >= 0.2 for f in r.features.values()) for r in results)
    breaches = sum(r.breached for r in results)
    assert psi_alone / windows >= 0.5, f"PSI alone {psi_alone}/{windows}"
    assert breaches / windows <= 0.05, f"{breaches}/{windows} (PSI alone {psi_alone}/{windows})"


def test_covariate_shift_on_amount_is_detected(champion: Champion) -> None:
    """Covariate shift of ``amount`` at magnitude 1.5: amounts x1.82 (log-amount +0.6, ~0.6 of its sd).

    Breaches in >= 95 % of 20 seeded 50k-row windows, with ``amount`` (and only it: the generator
    leaves every other column bit-identical) among the breached features.
    """
    hits, psis = 0, []
    for i in range(SEEDS):
        day = WINDOW_START + dt.timedelta(i)
        drift = DriftSpec(day, "covariate", ("amount",), AMOUNT_MAGNITUDE)
        result = _assess(champion, day, seed=300 + i, drift=drift, labels=False)
        psis.append(result.features["amount"]["psi"])
        hits += result.breached and set(result.breached_features) == {"amount"}
    assert hits / SEEDS >= 0.95, f"{hits}/{SEEDS}, amount PSI {np.round(psis, 3)}"


def test_covariate_sensitivity_floor_is_documented(champion: Champion) -> None:
    """Where the 0.2 threshold sits: amount at magnitude 1.0 (x1.49) moves PSI to ~0.11, below it; a
    device_risk_score shift of magnitude 0.25 already gives PSI ~0.75 (severe)."""
    day = WINDOW_START
    mild = _assess(champion, day, 400, DriftSpec(day, "covariate", ("amount",), 1.0), labels=False)
    assert 0.05 < mild.features["amount"]["psi"] < champion.settings.drift.psi_threshold
    assert not mild.breached
    risk = _assess(champion, day, 401, DriftSpec(day, "covariate", ("device_risk_score",), 0.25), labels=False)
    assert risk.breached_features["device_risk_score"] >= champion.settings.drift.severe_psi
    assert risk.severe


def test_min_breaching_features_applies_to_mild_shifts_only(champion: Champion) -> None:
    strict = load_settings(
        conf={"drift": {"min_breaching_features": 2}}, env={"MLOPS_HOME": str(champion.settings.home)}
    )
    day = WINDOW_START

    def assess(features: tuple[str, ...], magnitude: float) -> DriftResult:
        X, _ = _day(champion.spec, day, 450, DriftSpec(day, "covariate", features, magnitude))
        scores = champion.scores(X)
        return assess_window(strict, champion.profile, champion.spec, X, scores, None, None, str(day), [str(day)])

    mild = assess(("amount",), AMOUNT_MAGNITUDE)  # one feature at PSI ~0.26: reported, not a breach
    assert list(mild.breached_features) == ["amount"] and not mild.breached and not mild.severe
    severe = assess(("device_risk_score",), 1.0)  # one feature far above severe_psi: breaches anyway
    assert severe.severe and severe.breached


def test_concept_drift_breaches_on_performance_once_labels_arrive(champion: Champion) -> None:
    """Concept drift at magnitude 0.25 (P(fraud) = 0.75 old concept + 0.25 new): inputs unchanged.

    Without labels no feature (nor the score distribution) breaches; with the window's labels the
    champion's AUC-PR falls >= 20 % below its holdout value in >= 95 % of 20 seeds.
    """
    silent, perf_hits, drops = 0, 0, []
    for i in range(SEEDS):
        day = WINDOW_START + dt.timedelta(i)
        drift = DriftSpec(day, "concept", (), CONCEPT_MAGNITUDE)
        X, y = _day(champion.spec, day, 500 + i, drift)
        silent += not _assess_rows(champion, day, X, None).breached
        with_labels = _assess_rows(champion, day, X, y)
        assert not with_labels.breached_features
        drops.append(with_labels.performance["relative_drop"])
        perf_hits += with_labels.performance["breached"] and with_labels.breached and with_labels.severe
    summary = f"no-label silent {silent}/{SEEDS}, perf breached {perf_hits}/{SEEDS}, drops {np.round(drops, 2)}"
    assert silent == SEEDS, summary
    assert perf_hits / SEEDS >= 0.95, summary


def test_detection_within_one_scheduled_interval(champion: Champion) -> None:
    """Daily windows (window_days=1) across a drift start: the first drifted day already breaches.

    A moderate shift (amount, PSI ~0.26) then triggers on the next day (debounce 2); a severe one
    (device_risk_score, PSI >> 0.5) triggers on the first drifted day.
    """
    start = WINDOW_START + dt.timedelta(3)
    for features, magnitude, trigger_offset in ((("amount",), AMOUNT_MAGNITUDE, 1), (("device_risk_score",), 1.0, 0)):
        drift = DriftSpec(start, "covariate", features, magnitude)
        history: list[dict] = []
        first_breach, first_trigger = None, None
        for offset in range(-2, 3):
            day = start + dt.timedelta(offset)
            result = _assess(champion, day, seed=600 + offset, drift=drift, labels=False)
            decision = trigger_decision(champion.settings, history, result, day, None, False)
            history.append({**result.to_dict(), "triggered": decision["trigger"]})
            if result.breached and first_breach is None:
                first_breach = offset
            if decision["trigger"] and first_trigger is None:
                first_trigger = offset
        assert first_breach == 0, features
        assert first_trigger == trigger_offset, (features, [(e["day"], e["triggered"]) for e in history])


# ------------------------------------------------------------------------------------------ trigger policy


def _entry(result: DriftResult, triggered: bool) -> dict:
    return {**result.to_dict(), "triggered": triggered}


def test_debounce_needs_consecutive_breaching_windows(settings: Settings) -> None:
    today = dt.date(2025, 5, 10)
    first = trigger_decision(settings, [], _result("2025-05-10"), today, None, False)
    assert first == {"trigger": False, "reason": first["reason"], "consecutive": 1}
    assert "debounce" in first["reason"]
    history = [_entry(_result("2025-05-09"), False)]
    second = trigger_decision(settings, history, _result("2025-05-10"), today, None, False)
    assert second["trigger"] and second["consecutive"] == 2 and "2 consecutive" in second["reason"]
    # a clean window in between breaks the run
    history = [_entry(_result("2025-05-08"), False), _entry(_result("2025-05-09", breached=False), False)]
    assert not trigger_decision(settings, history, _result("2025-05-10"), today, None, False)["trigger"]
    # a clean current window never triggers
    quiet = trigger_decision(settings, [_entry(_result("2025-05-09"), False)], _result("2025-05-10", False), today,
                             None, False)  # fmt: skip
    assert not quiet["trigger"] and quiet["consecutive"] == 0
    # a re-run of today ignores today's previous entry
    rerun = trigger_decision(
        settings, [_entry(_result("2025-05-10"), False)], _result("2025-05-10"), today, None, False
    )
    assert not rerun["trigger"] and rerun["consecutive"] == 1


def test_debounce_of_three_windows() -> None:
    settings = load_settings(conf={"drift": {"consecutive_windows": 3}}, env={})
    today = dt.date(2025, 5, 10)
    history = [_entry(_result("2025-05-09"), False)]
    assert not trigger_decision(settings, history, _result("2025-05-10"), today, None, False)["trigger"]
    history.insert(0, _entry(_result("2025-05-08"), False))
    assert trigger_decision(settings, history, _result("2025-05-10"), today, None, False)["consecutive"] == 3


def test_severe_triggers_at_once(settings: Settings) -> None:
    decision = trigger_decision(settings, [], _result("2025-05-10", severe=True, psi_value=0.9), dt.date(2025, 5, 10),
                                None, False)  # fmt: skip
    assert decision["trigger"] and decision["reason"].startswith("severe")


def test_no_trigger_while_training_is_active(settings: Settings) -> None:
    history = [_entry(_result("2025-05-09"), False)]
    for current in (_result("2025-05-10"), _result("2025-05-10", severe=True)):
        decision = trigger_decision(settings, history, current, dt.date(2025, 5, 10), None, True)
        assert not decision["trigger"] and "training run is active" in decision["reason"]


def test_cooldown_after_a_training_run(settings: Settings) -> None:
    cooldown = settings.drift.cooldown_days
    today = dt.date(2025, 5, 10)
    history = [_entry(_result("2025-05-09"), False)]
    for days_ago in range(cooldown):
        last = today - dt.timedelta(days_ago)
        decision = trigger_decision(settings, history, _result("2025-05-10", severe=True), today, last, False)
        assert not decision["trigger"] and "cooldown" in decision["reason"], days_ago
    after = trigger_decision(settings, [], _result("2025-05-10", severe=True), today,
                             today - dt.timedelta(cooldown), False)  # fmt: skip
    assert after["trigger"]


def test_a_persistent_breach_triggers_once_per_cooldown_even_when_labels_lag(settings: Settings) -> None:
    """The last training's data day lags by the label delay, so it never holds a cooldown by itself: the last
    triggering day does, until a training window can learn from days after it (label delay + holdout +
    validation + 1 days). A severe breach every day then triggers once per that wait, not every day; a
    performance breach (labelled evidence) once per cooldown."""
    training, label = settings.training, settings.dataset.label
    learning_lag = label.delay_days + training.holdout_days + training.validation_days + 1
    cooldown = max(settings.drift.cooldown_days, learning_lag)
    start = dt.date(2025, 5, 10)
    lagging_training = start - dt.timedelta(days=cooldown + 3)  # its snapshot ends before the label delay
    history: list[dict] = []
    triggers = []
    for offset in range(3 * cooldown):
        today = start + dt.timedelta(days=offset)
        current = _result(today.isoformat(), severe=True, psi_value=0.9)
        decision = trigger_decision(settings, history, current, today, lagging_training, False)
        history.append(_entry(current, decision["trigger"]))
        if decision["trigger"]:
            triggers.append(offset)
        else:
            assert "cooldown, last trigger" in decision["reason"], decision
    assert triggers == list(range(0, 3 * cooldown, cooldown))
    labelled_history: list[dict] = []
    labelled_triggers = []
    for offset in range(3 * cooldown):
        today = start + dt.timedelta(days=offset)
        current = _result(today.isoformat(), severe=True, psi_value=0.9)
        current.performance = {"breached": True, "auc_pr": 0.1, "reference_auc_pr": 0.7, "relative_drop": 0.86}
        decision = trigger_decision(settings, labelled_history, current, today, lagging_training, False)
        labelled_history.append(_entry(current, decision["trigger"]))
        labelled_triggers += [offset] if decision["trigger"] else []
    assert labelled_triggers == list(range(0, 3 * cooldown, settings.drift.cooldown_days))
    # Re-deciding a day from the history before it gives the same answer (later entries do not count).
    again = trigger_decision(settings, history, _result(start.isoformat(), severe=True, psi_value=0.9), start,
                             lagging_training, False)  # fmt: skip
    assert again["trigger"]


def test_the_cooldown_counts_from_the_newest_day_the_training_saw_not_its_run_date(settings: Settings) -> None:
    """A run started today (by the clock or an Asset) trained on days up to its snapshot's end: a backlog day after
    that end is new to the model and may trigger; with the run date it would look "before the training"."""
    import mlflow

    from mlops import models

    assert models.last_training(settings) is None
    snapshot = {"train": ["2025-05-01", "2025-05-02"], "valid": ["2025-05-03"], "holdout": ["2025-05-04"]}
    with mlflow.start_run(experiment_id=models.experiment_id(settings)):
        mlflow.set_tags({models.Tags.AS_OF: "2025-05-12", models.Tags.SNAPSHOT: json.dumps(snapshot)})
    last = models.last_training(settings)
    assert last == dt.date(2025, 5, 4)
    backlog_day = dt.date(2025, 5, 8)  # landed after the snapshot, checked after the run
    decision = trigger_decision(settings, [], _result("2025-05-08", severe=True), backlog_day, last, False)
    assert decision["trigger"], decision


def test_counting_restarts_after_a_trigger_or_a_training_run(settings: Settings) -> None:
    today = dt.date(2025, 5, 10)
    # yesterday's breach triggered: today's breach is the first of a new run
    history = [_entry(_result("2025-05-08"), False), _entry(_result("2025-05-09"), True)]
    decision = trigger_decision(settings, history, _result("2025-05-10"), today, None, False)
    assert not decision["trigger"] and decision["consecutive"] == 1
    # ... and tomorrow's breach completes it, but within the cooldown of yesterday's trigger; once it is over,
    # the breaching run goes on triggering
    history.append(_entry(_result("2025-05-10"), False))
    tomorrow = trigger_decision(settings, history, _result("2025-05-11"), dt.date(2025, 5, 11), None, False)
    assert not tomorrow["trigger"] and tomorrow["consecutive"] == 2 and "cooldown, last trigger dt=2025-05-09" in (
        tomorrow["reason"])  # fmt: skip
    resume = dt.date.fromisoformat(tomorrow["reason"].split("next from dt=")[1][:10])
    for day in range((resume - dt.date(2025, 5, 11)).days):
        history.append(_entry(_result((dt.date(2025, 5, 11) + dt.timedelta(days=day)).isoformat()), False))
    assert trigger_decision(settings, history, _result(resume.isoformat()), resume, None, False)["trigger"]
    # windows assessed on or before the last training run do not count (outside the cooldown here)
    history = [_entry(_result(f"2025-05-0{d}"), False) for d in range(1, 10)]
    decision = trigger_decision(settings, history, _result("2025-05-10"), today, dt.date(2025, 5, 3), False)
    assert decision["trigger"] and decision["consecutive"] == 7  # 05-04 .. 05-10
    decision = trigger_decision(settings, history, _result("2025-05-10"), today, dt.date(2025, 5, 6), False)
    assert decision["consecutive"] == 4


# ------------------------------------------------------------------------------------- result and history


def test_result_is_json_serialisable(champion: Champion) -> None:
    day = WINDOW_START
    result = _assess(champion, day, 700, DriftSpec(day, "covariate", ("amount",), AMOUNT_MAGNITUDE))
    payload = json.loads(json.dumps(result.to_dict()))
    assert payload["day"] == day.isoformat() and payload["window"] == [day.isoformat()]
    assert payload["breached"] and "amount" in payload["breached_features"]
    assert set(payload["features"]["amount"]) >= {"psi", "kind", "pvalue", "ref_freq", "cur_freq"}
    assert payload["performance"]["reference_auc_pr"] == pytest.approx(champion.holdout_auc_pr)
    assert result.reasons and result.reasons[0].startswith("feature amount PSI")


def test_history_is_one_file_per_day_sorted_and_idempotent(tmp_path: Path) -> None:
    lake = Lake(str(tmp_path / "lake"))
    assert read_history(lake, "cards") == []
    for day, triggered in (("2025-05-03", False), ("2025-05-01", True), ("2025-05-02", False)):
        append_history(lake, "cards", {**_result(day).to_dict(), "triggered": triggered})
    append_history(lake, "cards", {**_result("2025-05-02", breached=False).to_dict(), "triggered": False})  # rerun
    append_history(lake, "other", {**_result("2025-05-01").to_dict(), "triggered": False})
    history = read_history(lake, "cards")
    assert [e["day"] for e in history] == ["2025-05-01", "2025-05-02", "2025-05-03"]
    assert [e["breached"] for e in history] == [True, False, True]
    assert history[0]["triggered"] is True
    assert history_path(lake, "cards", dt.date(2025, 5, 1)).endswith("reports/drift/cards/history/dt=2025-05-01.json")
    assert len(read_history(lake, "other")) == 1
    with pytest.raises(ValueError, match="day"):
        append_history(lake, "cards", {"breached": True})


# --------------------------------------------------------------------------------------------- evidently


def test_evidently_report_on_seeded_samples(tmp_path: Path) -> None:
    day = WINDOW_START
    ref, _ = generate_day(day - dt.timedelta(1), 6000, 1)
    cur, _ = generate_day(day, 6000, 2, DriftSpec(day, "covariate", ("device_risk_score",), 1.0))
    columns = ["amount", "merchant_category", "device_risk_score", "noise_1"]
    reference, current = ref.select(columns).to_pandas(), cur.select(columns).to_pandas()
    out = tmp_path / "drift.html"
    summary = evidently_report(reference, current, out, seed=0, sample_rows=4000)  # a Path works too
    assert summary["drifted_columns"] == ["device_risk_score"]
    assert summary["share"] == pytest.approx(0.25)
    assert summary["rows"] == {"reference": 4000, "current": 4000}
    assert out.stat().st_size > 10_000 and "<html" in out.read_text()[:2000].lower()
    again = evidently_report(reference, current, str(tmp_path / "again.html"), seed=0, sample_rows=4000)
    assert again["columns"] == summary["columns"]  # seeded samples: reproducible
    with pytest.raises(ValueError, match="same columns"):
        evidently_report(reference, current[columns[:2]], str(out), seed=0, sample_rows=100)


# ------------------------------------------------------------------------------------- a change in the labels


def _checked(day: str, labelled: list[str], breached: bool | None) -> dict:
    """A history entry: ``breached`` None means the window held no labelled evidence."""
    performance = None if breached is None else {"breached": breached, "auc_pr": 0.1 if breached else 0.7}
    return {"day": day, "performance": performance, "labelled_days": labelled, "triggered": False}


def test_a_change_starts_on_the_first_labelled_day_the_breaching_check_saw_new() -> None:
    from mlops.concept_change import concept_change_start

    history = [
        _checked("2026-04-02", ["2026-03-29", "2026-03-30"], False),
        _checked("2026-04-03", ["2026-03-30", "2026-03-31"], False),
        _checked("2026-04-04", ["2026-03-31", "2026-04-01"], True),  # 04-01's labels broke it
        _checked("2026-04-05", ["2026-04-01", "2026-04-02"], True),
        _checked("2026-04-06", [], None),
        _checked("2026-04-09", ["2026-04-05", "2026-04-06"], False),  # a champion trained since is healthy
    ]
    change = dt.date(2026, 4, 1)
    assert concept_change_start(history, dt.date(2026, 4, 3)) is None  # a run for day D decides from days <= D
    assert concept_change_start(history, dt.date(2026, 4, 4)) == change
    assert concept_change_start(history, dt.date(2026, 4, 9)) == change  # healthy again: the change stays
    later = [*history, _checked("2026-04-20", ["2026-04-16", "2026-04-17"], True)]
    assert concept_change_start(later, dt.date(2026, 4, 20)) == dt.date(2026, 4, 16)  # new: oldest unseen day
    assert concept_change_start([_checked("2026-04-04", ["2026-04-01"], None)], dt.date(2026, 4, 9)) is None


def test_a_performance_breach_waits_for_labels_since_the_change_then_catches_up(settings: Settings) -> None:
    from mlops.concept_change import catch_up_reason, wait_for_labels_reason

    today, since = dt.date(2026, 4, 5), dt.date(2026, 4, 1)
    current = _result("2026-04-05", severe=True, psi_value=0.1)
    current.performance = {"breached": True, "auc_pr": 0.01, "reference_auc_pr": 0.7, "relative_drop": 0.99}
    wait = wait_for_labels_reason(since, 2, 3)
    assert wait is not None and "2 of the 3 days" in wait
    waiting = trigger_decision(settings, [], current, today, None, False, wait_for_labels=wait)
    assert not waiting["trigger"] and waiting["reason"].startswith("waiting:")
    assert wait_for_labels_reason(since, 3, 3) is None
    assert trigger_decision(settings, [], current, today, None, False)["trigger"]

    # a champion that learned from the first 3 days since the change retrains once 2 more are labelled
    learned = ["2026-04-01", "2026-04-02", "2026-04-03"]
    assert catch_up_reason(since, learned, 4, 14, "5") is None
    reason = catch_up_reason(since, learned, 5, 14, "5")
    assert reason is not None and "v5 learned from 3 day(s)" in reason
    clean = _result("2026-04-09", breached=False)
    decision = trigger_decision(settings, [], clean, dt.date(2026, 4, 9), None, False, catch_up=reason)
    assert decision["trigger"] and decision["reason"].startswith("catch-up:")
    assert not trigger_decision(settings, [], clean, dt.date(2026, 4, 9), None, True, catch_up=reason)["trigger"]
    assert catch_up_reason(since, ["2026-03-20", *learned], 8, 14, "4") is None  # trained before the change
    assert catch_up_reason(since, [f"2026-04-{d:02}" for d in range(1, 15)], 28, 14, "6") is None  # window full
