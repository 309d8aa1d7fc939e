"""Behaviour of the synthetic transaction source: determinism, schema, fraud concept and drift."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
import xgboost as xgb
from sklearn.metrics import roc_auc_score

from mlops.data.generator import (
    CATEGORIES,
    FEATURE_COLUMNS,
    DriftSpec,
    generate_day,
)

DAY = dt.date(2024, 3, 1)
DRIFT_START = dt.date(2024, 3, 10)
BEFORE = DRIFT_START - dt.timedelta(days=1)
AFTER = DRIFT_START + dt.timedelta(days=2)

EXPECTED_COLUMNS = [
    ("transaction_id", pa.int64()),
    ("event_time", pa.timestamp("us", tz="UTC")),
    ("amount", pa.float64()),
    ("merchant_category", pa.string()),
    ("country", pa.string()),
    ("channel", pa.string()),
    ("card_age_days", pa.int64()),
    ("txn_count_1h", pa.int64()),
    ("txn_count_24h", pa.int64()),
    ("txn_amount_1h", pa.float64()),
    ("txn_amount_24h", pa.float64()),
    ("hour_of_day", pa.int64()),
    ("device_risk_score", pa.float64()),
    ("noise_1", pa.float64()),
    ("noise_2", pa.float64()),
    ("noise_3", pa.float64()),
    ("noise_4", pa.float64()),
]


def _fraud(labels: pa.Table) -> np.ndarray:
    return labels["is_fraud"].to_numpy()


def _matrix(transactions: pa.Table) -> np.ndarray:
    """Feature matrix for a quick model: numeric columns as-is, categoricals as integer codes."""
    columns = []
    for name in FEATURE_COLUMNS:
        column = transactions[name]
        if name in CATEGORIES:
            column = pc.index_in(column, value_set=pa.array(CATEGORIES[name]))
        columns.append(column.to_numpy().astype(np.float64))
    return np.column_stack(columns)


@pytest.fixture(scope="module")
def pre_drift_model() -> xgb.XGBClassifier:
    """A small model fitted on one pre-drift day, as a platform would have in production."""
    transactions, labels = generate_day(DAY, 100_000, seed=3)
    model = xgb.XGBClassifier(tree_method="hist", max_depth=4, n_estimators=60, learning_rate=0.2, n_jobs=2)
    model.fit(_matrix(transactions), _fraud(labels))
    return model


# --- Determinism ----------------------------------------------------------------------------------


def test_same_arguments_give_bit_identical_tables() -> None:
    drift = DriftSpec(start=DAY, kind="covariate")
    for kwargs in ({}, {"drift": drift}):
        first = generate_day(DAY, 5_000, 7, **kwargs)
        second = generate_day(DAY, 5_000, 7, **kwargs)
        assert first[0].equals(second[0])
        assert first[1].equals(second[1])


def test_different_seeds_and_days_give_different_data() -> None:
    base, _ = generate_day(DAY, 5_000, 7)
    other_seed, _ = generate_day(DAY, 5_000, 8)
    next_day, _ = generate_day(DAY + dt.timedelta(days=1), 5_000, 7)
    for other in (other_seed, next_day):
        assert not np.array_equal(base["amount"].to_numpy(), other["amount"].to_numpy())
        assert not np.array_equal(base["device_risk_score"].to_numpy(), other["device_risk_score"].to_numpy())


def test_a_day_does_not_depend_on_which_other_days_are_generated() -> None:
    alone = generate_day(DAY, 3_000, 11)
    backfill = {
        DAY + dt.timedelta(days=offset): generate_day(DAY + dt.timedelta(days=offset), 3_000, 11)
        for offset in (-2, -1, 0, 1)
    }
    assert backfill[DAY][0].equals(alone[0])
    assert backfill[DAY][1].equals(alone[1])


# --- Schema and invariants ------------------------------------------------------------------------


def test_schema_types_and_value_invariants() -> None:
    transactions, labels = generate_day(DAY, 50_000, 1)

    assert [(f.name, f.type) for f in transactions.schema] == EXPECTED_COLUMNS
    assert [(f.name, f.type) for f in labels.schema] == [("transaction_id", pa.int64()), ("is_fraud", pa.int64())]
    assert set(FEATURE_COLUMNS) == {name for name, _ in EXPECTED_COLUMNS} - {"transaction_id", "event_time"}
    assert transactions.num_rows == labels.num_rows == 50_000
    for table in (transactions, labels):
        assert all(column.null_count == 0 for column in table.columns)

    ids = transactions["transaction_id"].to_numpy()
    assert len(np.unique(ids)) == len(ids)
    assert np.all(ids // 10_000_000 == 20240301)
    assert np.array_equal(labels["transaction_id"].to_numpy(), ids)
    assert set(np.unique(_fraud(labels))) == {0, 1}

    times = transactions["event_time"].to_numpy()
    day_start = np.datetime64("2024-03-01T00:00:00", "us")
    assert times.min() >= day_start
    assert times.max() < day_start + np.timedelta64(1, "D")
    assert np.all(np.diff(times) >= np.timedelta64(0, "us"))
    hours = ((times - day_start) // np.timedelta64(1, "h")).astype(np.int64)
    assert np.array_equal(transactions["hour_of_day"].to_numpy(), hours)

    for name, allowed in CATEGORIES.items():
        counts = transactions[name].value_counts().to_pylist()
        frequencies = {c["values"]: c["counts"] / transactions.num_rows for c in counts}
        assert set(frequencies) == set(allowed), name  # every allowed value occurs, nothing else
        assert max(frequencies.values()) > 2 * min(frequencies.values()), f"{name} should not be uniform"

    amount = transactions["amount"].to_numpy()
    assert amount.min() > 0
    assert np.allclose(amount, np.round(amount, 2))
    assert np.mean(amount) > 1.5 * np.median(amount), "amount should be heavy-tailed"
    assert transactions["card_age_days"].to_numpy().min() >= 0
    assert np.all(transactions["txn_count_24h"].to_numpy() >= transactions["txn_count_1h"].to_numpy())
    assert np.all(transactions["txn_amount_24h"].to_numpy() >= transactions["txn_amount_1h"].to_numpy())
    risk = transactions["device_risk_score"].to_numpy()
    assert risk.min() >= 0 and risk.max() <= 1


def test_zero_rows_gives_empty_tables_with_the_full_schema() -> None:
    transactions, labels = generate_day(DAY, 0, 1)
    full_transactions, full_labels = generate_day(DAY, 10, 1)
    assert transactions.num_rows == labels.num_rows == 0
    assert transactions.schema.equals(full_transactions.schema)
    assert labels.schema.equals(full_labels.schema)


def test_one_million_rows_in_a_single_vectorised_call() -> None:
    transactions, labels = generate_day(DAY, 1_000_000, 5)
    assert transactions.num_rows == labels.num_rows == 1_000_000


# --- The fraud concept ----------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fraud_rate_is_about_one_percent(seed: int) -> None:
    _, labels = generate_day(DAY + dt.timedelta(days=seed), 200_000, seed)
    assert 0.005 <= _fraud(labels).mean() <= 0.02


def test_label_has_signal_in_risk_features_and_none_in_noise() -> None:
    transactions, labels = generate_day(DAY, 200_000, 2)
    y = _fraud(labels)
    assert roc_auc_score(y, transactions["device_risk_score"].to_numpy()) > 0.65  # measured ~0.74
    for name in ("noise_1", "noise_2", "noise_3", "noise_4"):
        assert abs(roc_auc_score(y, transactions[name].to_numpy()) - 0.5) < 0.04, name


def test_a_model_learns_the_concept_and_generalises_to_another_day(
    pre_drift_model: xgb.XGBClassifier,
) -> None:
    transactions, labels = generate_day(AFTER, 100_000, 4)
    scores = pre_drift_model.predict_proba(_matrix(transactions))[:, 1]
    assert roc_auc_score(_fraud(labels), scores) > 0.9


# --- Drift ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["covariate", "concept", "prior"])
def test_drift_is_absent_before_start_and_at_zero_magnitude(kind: str) -> None:
    plain = generate_day(BEFORE, 20_000, 3)
    before = generate_day(BEFORE, 20_000, 3, DriftSpec(start=DRIFT_START, kind=kind))
    assert before[0].equals(plain[0]) and before[1].equals(plain[1])

    plain_after = generate_day(AFTER, 20_000, 3)
    zero = generate_day(AFTER, 20_000, 3, DriftSpec(start=DRIFT_START, kind=kind, magnitude=0.0))
    assert zero[0].equals(plain_after[0]) and zero[1].equals(plain_after[1])

    drifted = generate_day(AFTER, 20_000, 3, DriftSpec(start=DRIFT_START, kind=kind))
    assert not (drifted[0].equals(plain_after[0]) and drifted[1].equals(plain_after[1]))


def _mean_log_amount(transactions: pa.Table) -> float:
    return float(np.log(transactions["amount"].to_numpy()).mean())


def test_covariate_drift_shifts_named_features_but_not_the_concept(
    pre_drift_model: xgb.XGBClassifier,
) -> None:
    drift = DriftSpec(start=DRIFT_START, kind="covariate")  # default: amount and device_risk_score
    plain = [generate_day(AFTER, 100_000, seed)[0] for seed in (3, 4)]
    drifted, drifted_labels = generate_day(AFTER, 100_000, 3, drift)

    seed_noise = abs(_mean_log_amount(plain[0]) - _mean_log_amount(plain[1]))
    assert _mean_log_amount(drifted) - _mean_log_amount(plain[0]) > 20 * seed_noise
    risk_shift = drifted["device_risk_score"].to_numpy().mean() - plain[0]["device_risk_score"].to_numpy().mean()
    risk_noise = abs(plain[0]["device_risk_score"].to_numpy().mean() - plain[1]["device_risk_score"].to_numpy().mean())
    assert risk_shift > 20 * risk_noise
    for untouched in ("card_age_days", "country", "event_time", "txn_amount_24h", "noise_1"):
        assert drifted[untouched].equals(plain[0][untouched]), untouched

    # P(y|x) unchanged: the pre-drift model still ranks well and its probabilities still match the
    # (higher, because riskier inputs) observed fraud rate.
    y = _fraud(drifted_labels)
    scores = pre_drift_model.predict_proba(_matrix(drifted))[:, 1]
    assert y.mean() > 1.5 * 0.01
    assert roc_auc_score(y, scores) > 0.9
    assert 0.75 < y.mean() / scores.mean() < 1.33


def test_covariate_drift_on_chosen_features_scales_with_magnitude() -> None:
    plain, _ = generate_day(AFTER, 50_000, 6)
    shifts = []
    for magnitude in (0.5, 1.0, 2.0):
        drift = DriftSpec(start=DRIFT_START, kind="covariate", features=("card_age_days",), magnitude=magnitude)
        drifted, _ = generate_day(AFTER, 50_000, 6, drift)
        assert drifted["amount"].equals(plain["amount"])
        shifts.append(plain["card_age_days"].to_numpy().mean() / drifted["card_age_days"].to_numpy().mean())
    assert 1.2 < shifts[0] < shifts[1] < shifts[2]


def test_categorical_covariate_drift_reweights_frequencies() -> None:
    drift = DriftSpec(start=DRIFT_START, kind="covariate", features=("merchant_category",))
    plain, _ = generate_day(AFTER, 50_000, 6)
    drifted, _ = generate_day(AFTER, 50_000, 6, drift)

    def share(table: pa.Table, value: str) -> float:
        return pc.sum(pc.equal(table["merchant_category"], value)).as_py() / table.num_rows

    assert share(drifted, "gaming") > 1.3 * share(plain, "gaming")  # rare category becomes commoner
    assert share(drifted, "grocery") < 0.85 * share(plain, "grocery")  # dominant one becomes rarer
    assert drifted["device_risk_score"].equals(plain["device_risk_score"])


def test_concept_drift_keeps_inputs_and_rate_but_breaks_the_old_model(
    pre_drift_model: xgb.XGBClassifier,
) -> None:
    plain, plain_labels = generate_day(AFTER, 100_000, 4)
    drifted, drifted_labels = generate_day(AFTER, 100_000, 4, DriftSpec(start=DRIFT_START, kind="concept"))

    assert drifted.equals(plain)  # inputs exactly as without drift
    y_plain, y_drift = _fraud(plain_labels), _fraud(drifted_labels)
    assert 0.005 <= y_drift.mean() <= 0.02

    scores = pre_drift_model.predict_proba(_matrix(drifted))[:, 1]
    assert roc_auc_score(y_plain, scores) > 0.9
    assert roc_auc_score(y_drift, scores) < 0.65


def test_prior_drift_raises_the_fraud_rate_with_inputs_unchanged(pre_drift_model: xgb.XGBClassifier) -> None:
    plain, plain_labels = generate_day(AFTER, 200_000, 5)
    drifted, drifted_labels = generate_day(AFTER, 200_000, 5, DriftSpec(start=DRIFT_START, kind="prior"))

    assert drifted.equals(plain)
    ratio = _fraud(drifted_labels).mean() / _fraud(plain_labels).mean()
    assert 1.6 < ratio < 2.6
    # The old model, still well calibrated on inputs it knows, now under-predicts fraud.
    scores = pre_drift_model.predict_proba(_matrix(drifted))[:, 1]
    assert _fraud(drifted_labels).mean() / scores.mean() > 1.6


# --- Argument validation ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make_call", "bad_value"),
    [
        (lambda: generate_day(DAY, -1, 0), "-1"),
        (lambda: generate_day(DAY, 10_000_000, 0), "10000000"),
        (lambda: generate_day(DAY, 10, -3), "-3"),
        (lambda: generate_day(dt.datetime(2024, 3, 1, 12), 10, 0), "datetime"),
        (lambda: DriftSpec(start=DAY, kind="covariate", features=("amount", "shoe_size")), "shoe_size"),
        (lambda: DriftSpec(start=DAY, kind="covariate", magnitude=-0.5), "-0.5"),
        (lambda: DriftSpec(start=DAY, kind="seasonal"), "seasonal"),  # type: ignore[arg-type]
    ],
)
def test_invalid_arguments_raise_value_error_naming_the_value(make_call: Callable[[], object], bad_value: str) -> None:
    with pytest.raises(ValueError, match=bad_value):
        make_call()
