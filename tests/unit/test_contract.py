"""The committed contract matches the source; drafted contracts are usable; broken contracts are named."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from mlops.config import Settings
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


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("name: x\nversion: '1'\ncolumns: {a: {type: decimal}}\n", "type"),
        ("name: x\nversion: '1'\ncolumns: {a: {type: string, min: 1}}\n", "numeric"),
        ("name: x\nversion: '1'\ncolumns: {a: {type: int64, min: 5, max: 1}}\n", "min 5.0 > max 1.0"),
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
