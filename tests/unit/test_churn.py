"""The second synthetic source, customer churn: another shape than card transactions, the same guarantees
(determinism, independent days, known concept, drift that touches only what it names)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
import xgboost as xgb
from sklearn.metrics import average_precision_score

from mlops.config import PROJECT_ROOT, load_settings
from mlops.data import generator
from mlops.data.churn import CATEGORIES, FEATURE_COLUMNS, DriftSpec, generate_day
from mlops.data.contract import Contract
from mlops.data.lake import SUCCESS, Lake
from mlops.data.landing import land_days, source_of

DAY = dt.date(2026, 11, 1)
LATER = DAY + dt.timedelta(days=5)


def _churned(labels: pa.Table) -> np.ndarray:
    return np.asarray(pc.equal(labels["churn_status"], "churned").to_numpy(zero_copy_only=False), dtype=np.int64)


def _matrix(table: pa.Table) -> np.ndarray:
    columns = []
    for name in FEATURE_COLUMNS:
        column = table[name]
        if name in CATEGORIES:
            column = pc.index_in(column, value_set=pa.array(CATEGORIES[name]))
        columns.append(column.to_numpy(zero_copy_only=False).astype(np.float64))
    return np.column_stack(columns)


@pytest.fixture(scope="module")
def model() -> xgb.XGBClassifier:
    """A small model on two days of 3,000 renewals: what the demo's first champion learns from."""
    days = [generate_day(DAY + dt.timedelta(days=i), 3_000, seed=3) for i in range(2)]
    X = np.vstack([_matrix(raw) for raw, _ in days])
    y = np.concatenate([_churned(labels) for _, labels in days])
    return xgb.XGBClassifier(tree_method="hist", max_depth=3, n_estimators=60, learning_rate=0.1, n_jobs=2).fit(X, y)


def test_a_day_is_reproducible_and_independent_of_other_days() -> None:
    first, again = generate_day(DAY, 2_000, 7), generate_day(DAY, 2_000, 7)
    assert first[0].equals(again[0]) and first[1].equals(again[1])
    other_seed, next_day = generate_day(DAY, 2_000, 8)[0], generate_day(DAY + dt.timedelta(days=1), 2_000, 7)[0]
    for other in (other_seed, next_day):
        assert not other["monthly_charges"].equals(first[0]["monthly_charges"])
    assert not generator.generate_day(DAY, 10, 7)[0].equals(first[0]), "another table altogether"


def test_another_shape_than_card_transactions() -> None:
    raw, labels = generate_day(DAY, 20_000, 1)
    assert raw.schema.field("customer_id").type == pa.string()
    assert raw.schema.field("renewal_at").type == pa.timestamp("ms", tz="Europe/Berlin")
    ids = raw["customer_id"].to_pylist()
    assert ids[:2] == ["CU20261101-000000", "CU20261101-000001"] and len(set(ids)) == len(ids)
    assert not set(ids) & set(generate_day(DAY + dt.timedelta(days=1), 20_000, 1)[0]["customer_id"].to_pylist())
    assert labels["customer_id"].equals(raw["customer_id"])
    assert labels.schema.field("churn_status").type == pa.string()
    assert set(labels["churn_status"].to_pylist()) == {"churned", "stayed"}

    instants = raw["renewal_at"].cast(pa.int64()).to_numpy()  # UTC milliseconds: within the UTC day D
    day_start = (DAY - dt.date(1970, 1, 1)).days * 86_400_000
    assert day_start <= instants.min() and instants.max() < day_start + 86_400_000
    assert np.all(np.diff(instants) >= 0)
    usage_nulls = raw["usage_hours_7d"].null_count / raw.num_rows
    assert 0.02 < usage_nulls < 0.04, "a few missed usage readings"
    assert all(raw[name].null_count == 0 for name in raw.column_names if name != "usage_hours_7d")
    for name, allowed in CATEGORIES.items():
        assert set(raw[name].to_pylist()) == set(allowed), name


def test_a_day_meets_its_reviewed_contract() -> None:
    """Every column of the contract, in order, with values inside the reviewed physical limits."""
    contract = Contract.load(PROJECT_ROOT / "include" / "contracts" / "customer_churn.yaml")
    raw, _ = generate_day(DAY, 20_000, 2, DriftSpec(DAY, "covariate", ("monthly_charges", "late_payments_12m"), 2.0))
    assert list(contract.columns) == raw.column_names
    for name, rule in contract.columns.items():
        if rule.min is not None:
            low, high = pc.min_max(raw[name]).values()
            assert rule.min <= low.as_py() and high.as_py() <= rule.max, name


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_about_a_fifth_of_customers_churn(seed: int) -> None:
    _, labels = generate_day(DAY + dt.timedelta(days=seed), 100_000, seed)
    assert 0.18 < _churned(labels).mean() < 0.26


def test_a_small_model_learns_the_concept_well_above_chance(model: xgb.XGBClassifier) -> None:
    raw, labels = generate_day(LATER, 20_000, 4)
    y = _churned(labels)
    assert average_precision_score(y, model.predict_proba(_matrix(raw))[:, 1]) > 2 * y.mean()  # measured ~0.54


def test_covariate_drift_shifts_only_the_named_columns() -> None:
    plain, plain_labels = generate_day(LATER, 20_000, 5)
    drifted, drifted_labels = generate_day(LATER, 20_000, 5, DriftSpec(DAY, "covariate"))  # charges, support calls
    ratio = pc.mean(drifted["monthly_charges"]).as_py() / pc.mean(plain["monthly_charges"]).as_py()
    assert 1.25 < ratio < 1.32  # x e^0.25
    assert pc.mean(drifted["support_calls_30d"]).as_py() > 1.7 * pc.mean(plain["support_calls_30d"]).as_py()
    for untouched in ("customer_id", "renewal_at", "plan", "tenure_months", "usage_hours_7d", "region"):
        assert drifted[untouched].equals(plain[untouched]), untouched
    assert _churned(drifted_labels).mean() > _churned(plain_labels).mean() + 0.05, "P(x) moved, so did the rate"

    flattened, _ = generate_day(LATER, 20_000, 5, DriftSpec(DAY, "covariate", ("contract_type",), 2.0))
    share = pc.mean(pc.equal(flattened["contract_type"], "two_year")).as_py()
    assert share > 1.5 * pc.mean(pc.equal(plain["contract_type"], "two_year")).as_py()
    assert flattened["monthly_charges"].equals(plain["monthly_charges"])


def test_concept_and_prior_drift_keep_the_inputs(model: xgb.XGBClassifier) -> None:
    plain, plain_labels = generate_day(LATER, 50_000, 6)
    concept, concept_labels = generate_day(LATER, 50_000, 6, DriftSpec(DAY, "concept"))
    prior, prior_labels = generate_day(LATER, 50_000, 6, DriftSpec(DAY, "prior"))
    assert concept.equals(plain) and prior.equals(plain)
    y_plain, y_concept = _churned(plain_labels), _churned(concept_labels)
    assert abs(y_concept.mean() - y_plain.mean()) < 0.03, "a new concept at a similar rate"
    scores = model.predict_proba(_matrix(plain))[:, 1]
    assert average_precision_score(y_concept, scores) < average_precision_score(y_plain, scores) - 0.15
    assert 1.25 < _churned(prior_labels).mean() / y_plain.mean() < 1.75  # measured 1.42


@pytest.mark.parametrize(
    ("make_call", "bad_value"),
    [
        (lambda: generate_day(DAY, -1, 0), "-1"),
        (lambda: generate_day(DAY, 1_000_000, 0), "1000000"),
        (lambda: generate_day(DAY, 10, -3), "-3"),
        (lambda: generate_day(dt.datetime(2026, 11, 1, 12), 10, 0), "datetime"),
        (lambda: generate_day(DAY, 10, 0, generator.DriftSpec(DAY, "covariate")), "mlops.data.churn.DriftSpec"),
        (lambda: DriftSpec(DAY, "covariate", ("amount",)), "amount"),
        (lambda: DriftSpec(DAY, "covariate", magnitude=-1.0), "-1.0"),
        (lambda: DriftSpec(DAY, "seasonal"), "seasonal"),  # type: ignore[arg-type]
    ],
)
def test_invalid_arguments_name_the_value(make_call: Callable[[], object], bad_value: str) -> None:
    with pytest.raises(ValueError, match=bad_value):
        make_call()


def test_the_churn_model_lands_its_own_table_with_its_own_label_delay(tmp_path: Path) -> None:
    settings = load_settings(model="customer_churn", env={"MLOPS_HOME": str(tmp_path)})
    assert source_of(settings).generate_day is generate_day
    landed = land_days(settings, DAY, days=4, rows_per_day=300, seed=1)
    lake = Lake.from_settings(settings)
    assert lake.url(lake.area("raw")) == str(tmp_path / "lake" / "customer_churn" / "raw")
    assert lake.days("raw", SUCCESS) == [DAY + dt.timedelta(days=i) for i in range(4)]
    assert lake.days("labels", SUCCESS) == [DAY, DAY + dt.timedelta(days=1)], "labels land 2 days after their day"
    assert [d.rows for d in landed] == [300] * 4
    raw = lake.read_partition(lake.partition("raw", DAY))
    assert raw.equals(generate_day(DAY, 300, 1)[0])
