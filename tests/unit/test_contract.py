"""The committed contract matches the source; drafted contracts are usable; broken contracts are named."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from mlops.config import DatasetSpec, Settings
from mlops.data.contract import Contract, arrow_column_type, infer_contract
from mlops.data.generator import generate_day


def test_committed_contract_describes_the_synthetic_source(settings: Settings) -> None:
    contract = Contract.load(settings.contract_path)
    transactions, _ = generate_day(dt.date(2026, 11, 1), 2_000, seed=1)
    assert list(contract.columns) == transactions.column_names
    for field in transactions.schema:
        assert contract.columns[field.name].type == arrow_column_type(field.type), field.name
    contract.check_dataset(settings.dataset)  # id, time and categorical columns are all in the contract
    assert len(contract.sha256) == 64


def test_inferred_contract_round_trips_and_covers_the_data(settings: Settings, tmp_path: Path) -> None:
    transactions, _ = generate_day(dt.date(2026, 11, 1), 5_000, seed=3)
    drafted = infer_contract(transactions, settings.dataset)
    path = tmp_path / "drafted.yaml"
    path.write_text(drafted.to_yaml())
    loaded = Contract.load(path)
    assert loaded.columns["transaction_id"].unique
    assert loaded.columns["channel"].allowed == sorted(set(transactions["channel"].to_pylist()))
    amount = loaded.columns["amount"]
    assert amount.min <= min(transactions["amount"].to_pylist()) and amount.max >= max(
        transactions["amount"].to_pylist()
    )


def _spec() -> DatasetSpec:
    return DatasetSpec(name="t", id_column="id", time_column="ts", categorical=[], slices=[])


def test_inferred_null_fractions_cover_the_day_counting_nan_as_missing(tmp_path: Path) -> None:
    """pandas (and so GX) reads NaN as missing; a 70 %-null column is not capped at the 50 % default."""
    rows = 100
    table = pa.table({
        "id": np.arange(rows),
        "ts": pa.array(np.datetime64("2026-03-02", "us") + np.arange(rows).astype("timedelta64[s]")),
        "nan_float": np.where(np.arange(rows) % 10 == 0, np.nan, 1.0),  # NaN values, not nulls
        "mostly_null": pa.array(np.arange(rows, dtype=np.int32), mask=np.arange(rows) % 10 < 7),
    })  # fmt: skip
    path = tmp_path / "drafted.yaml"
    path.write_text(infer_contract(table, _spec()).to_yaml())
    columns = Contract.load(path).columns
    assert columns["nan_float"].nullable and columns["nan_float"].max_null_fraction >= 0.1
    assert columns["mostly_null"].nullable and 0.7 <= columns["mostly_null"].max_null_fraction < 1.0
    assert not columns["id"].nullable and columns["mostly_null"].type == "int64"


def test_inferred_strings_get_categories_or_are_marked_high_cardinality(tmp_path: Path) -> None:
    """Every string column is usable: a few values are listed, many are marked (and hashed by features)."""
    rows = 600
    table = pa.table({
        "id": [f"r{i}" for i in range(rows)],
        "ts": pa.array(np.datetime64("2026-03-02", "ms") + np.arange(rows).astype("timedelta64[s]")),
        "colour": pa.array(["red", "blue", None] * (rows // 3)).dictionary_encode(),
        "shop": [f"shop-{i % 500}" for i in range(rows)],
    })  # fmt: skip
    path = tmp_path / "drafted.yaml"
    path.write_text(infer_contract(table, _spec()).to_yaml())
    columns = Contract.load(path).columns
    assert columns["colour"].allowed == ["blue", "red"], "listed though dataset.categorical does not name it"
    assert columns["shop"].high_cardinality and columns["shop"].allowed is None
    assert columns["id"].unique and not columns["id"].high_cardinality and columns["id"].allowed is None


def test_inferred_ranges_are_physical_limits_around_the_day() -> None:
    table = pa.table({
        "id": np.arange(4),
        "ts": pa.array(np.datetime64("2026-03-02", "ns") + np.arange(4).astype("timedelta64[s]")),
        "area": [201.9, 1347.0, 500.0, 800.0],
        "delta": pa.array([-3.2, 5.1, 0.0, 1.0], pa.float32()),
        "pixels": pa.array([0, 0, 0, 0], pa.int8()),
    })  # fmt: skip
    columns = infer_contract(table, _spec()).columns
    # 10x the largest magnitude: a tail twice as long passes, a unit change (x1000) or a sign flip does not.
    assert (columns["area"].min, columns["area"].max) == (0.0, 14_000.0)
    assert (columns["delta"].min, columns["delta"].max) == (-51.0, 51.0)
    assert (columns["pixels"].min, columns["pixels"].max) == (0.0, 10.0), "an all-zero day still allows values"
    assert columns["id"].min is None, "ids get no range"


def test_infer_refuses_an_id_column_that_is_not_unique() -> None:
    table = pa.table({"id": [1, 2, 2], "ts": pa.array([0, 1, 2], pa.timestamp("s"))})
    with pytest.raises(ValueError, match=r"id column 'id' in raw/dt=2026-03-02 is not unique"):
        infer_contract(table, _spec(), source="raw/dt=2026-03-02")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("name: x\nversion: '1'\ncolumns: {a: {type: decimal}}\n", "type"),
        ("name: x\nversion: '1'\ncolumns: {a: {type: string, min: 1}}\n", "numeric"),
        ("name: x\nversion: '1'\ncolumns: {a: {type: int64, min: 5, max: 1}}\n", "min 5.0 > max 1.0"),
        ("name: x\nversion: '1'\ncolumns: {a: {type: int64, high_cardinality: true}}\n", "high_cardinality"),
        ("name: x\ncolumns: {}\n", "version"),
    ],
)
def test_invalid_contract_is_rejected_with_the_file_named(tmp_path: Path, body: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(body)
    with pytest.raises(ValueError, match=message) as error:
        Contract.load(path)
    assert "bad.yaml" in str(error.value)


def test_missing_contract_says_how_to_draft_one(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="mlops contract infer"):
        Contract.load(tmp_path / "absent.yaml")
