"""The synthetic producer lands data first and _SUCCESS last, and labels only once they are due."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from mlops.config import Settings, load_settings
from mlops.data.lake import SUCCESS, VALIDATED, Lake
from mlops.data.landing import land_days


def test_labels_land_after_their_delay(settings: Settings, lake: Lake) -> None:
    start = dt.date(2026, 11, 1)  # default delay: 3 days
    land_days(settings, start, days=5, rows_per_day=500, seed=1)
    assert lake.days("raw", SUCCESS) == [start + dt.timedelta(days=i) for i in range(5)]
    assert lake.days("labels", SUCCESS) == [start, start + dt.timedelta(days=1)]

    land_days(settings, start + dt.timedelta(days=5), days=1, rows_per_day=500, seed=1)  # the next day arrives
    assert lake.days("labels", SUCCESS)[-1] == start + dt.timedelta(days=2)


def test_labels_match_the_raw_rows_of_their_day(settings: Settings, lake: Lake) -> None:
    day = dt.date(2026, 11, 1)
    land_days(settings, day, days=4, rows_per_day=800, seed=2)
    raw = pq.read_table(lake.data_files(lake.partition("raw", day))[0])
    labels = pq.read_table(lake.data_files(lake.partition("labels", day))[0])
    assert labels.column_names == ["transaction_id", "is_fraud"]
    assert labels["transaction_id"].to_pylist() == raw["transaction_id"].to_pylist()


def test_relanding_a_day_replaces_it(settings: Settings, lake: Lake) -> None:
    day = dt.date(2026, 11, 1)
    land_days(settings, day, days=1, rows_per_day=900, seed=2)
    stray = f"{lake.partition('raw', day)}/part-99999.parquet"
    lake.fs.copy(lake.data_files(lake.partition("raw", day))[0], stray)
    lake.write_json(lake.marker("raw", day, VALIDATED), {"rows": 900})
    land_days(settings, day, days=1, rows_per_day=700, seed=2)
    files = lake.data_files(lake.partition("raw", day))
    assert len(files) == 1 and pq.read_metadata(files[0]).num_rows == 700
    assert not lake.exists(lake.marker("raw", day, VALIDATED)), "re-landed data must be validated again"
    assert lake.days("raw", SUCCESS) == [day]
    assert lake.fs.ls(lake.area("raw"), detail=False) == [lake.partition("raw", day)], "no staging left beside it"


def test_a_dataset_no_generator_makes_is_refused_by_name(tmp_path: Path) -> None:
    settings = load_settings(env={"MLOPS_HOME": str(tmp_path)}, conf={"dataset": {"name": "orders"}})
    with pytest.raises(ValueError, match=r"no synthetic source feeds dataset 'orders' \(sources: card_transactions, "
                       r"customer_churn\): land its days with your own producer"):  # fmt: skip
        land_days(settings, dt.date(2026, 11, 1), days=1, rows_per_day=10, seed=1)
    assert not (tmp_path / "lake").exists(), "nothing landed"
