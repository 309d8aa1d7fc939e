"""`mlops dataset init` from several landed days, with labels as producers deliver them.

A table is landed as daily partitions (``raw/dt=D`` and ``labels/dt=D``, each with ``_SUCCESS``) in the new
model's lake, and `mlops dataset init` runs in-process as a user would: the draft must accept every day it read,
say which days and rows it used and what it observed behind each rule, size ``training:`` to the labels (with
its reasons in the model file), guess the label column of a feed that carries more than the label, count null
labels, and measure how many days the labels lag the raw data.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import os
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import pyarrow as pa
import pytest

from mlops.cli import main
from mlops.config import load_settings
from mlops.data.contract import Contract
from mlops.data.lake import Lake
from mlops.data.publish import publish_partition
from mlops.datasets import model_settings
from mlops.validation import validate_partition

START = dt.date(2026, 3, 2)
NAME = "orders"


def _day(offset: int, rows: int = 200, rate: float = 0.3, seed: int = 0,
         channels: tuple[str, ...] = ("app", "store", "web")) -> tuple[dt.date, pa.Table, pa.Table]:  # fmt: skip
    """One day of orders: int ids, ms UTC event times within the day, an amount, a channel; a bool label."""
    rng = np.random.default_rng(seed + offset)
    day = START + dt.timedelta(days=offset)
    ids = np.arange(rows, dtype=np.int64) + 10_000 * offset
    start = np.datetime64(day.isoformat(), "ms")
    times = np.sort(start + rng.integers(0, 86_400_000, rows).astype("timedelta64[ms]"))
    raw = pa.table({
        "order_id": pa.array(ids),
        "created_at": pa.array(times, pa.timestamp("ms", tz="UTC")),
        "amount": pa.array(rng.lognormal(3.0, 1.0, rows) * (1 + offset)),  # the range grows day by day
        "channel": pa.array(rng.choice(list(channels), rows)),
    })  # fmt: skip
    labels = pa.table({"order_id": pa.array(ids), "late": pa.array(rng.random(rows) < rate)})
    return day, raw, labels


def _land(lake: Lake, area: str, day: dt.date, *tables: pa.Table) -> None:
    """A producer's delivery: the files (several for a partition written in parts), then ``_SUCCESS``."""

    def write(staging: str) -> None:
        for index, table in enumerate(tables):
            lake.write_parquet(table, f"{staging}/part-{index:05d}.parquet")

    publish_partition(lake, lake.partition(area, day), write)


def _lake(home: Path) -> Lake:
    return Lake.from_settings(model_settings(load_settings(env={"MLOPS_HOME": str(home)}), NAME))


def _cli(home: Path, *argv: str) -> tuple[int, str]:
    """Run `mlops ...` in-process as a user would, with only MLOPS_HOME and the models folder set; (exit code,
    stdout, or stderr when it failed)."""
    out, err = io.StringIO(), io.StringIO()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLOPS_CONFIG", "MLOPS__", "MLOPS_MODEL"))}
    env = {**env, "MLOPS_HOME": str(home), "MLOPS_MODELS_DIR": str(home / "models")}
    with mock.patch.dict(os.environ, env, clear=True), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue() if code == 0 else err.getvalue()


def _init(home: Path, *flags: str) -> dict[str, Any]:
    code, out = _cli(home, "--json", "dataset", "init", "--name", NAME, *flags)
    assert code == 0, out
    return json.loads(out)


def _settings(home: Path) -> Any:
    return load_settings(model=NAME, env={"MLOPS_HOME": str(home), "MLOPS_MODELS_DIR": str(home / "models")})


# -- several days ------------------------------------------------------------------------------------------------
def test_init_reads_every_landed_day_and_its_contract_accepts_each(tmp_path: Path) -> None:
    lake = _lake(tmp_path)
    days = [_day(0), _day(1), _day(2, channels=("app", "store", "web", "kiosk")), _day(3)]
    for day, raw, labels in days:
        _land(lake, "raw", day, raw)
        _land(lake, "labels", day, labels)
    _land(lake, "raw", START + dt.timedelta(days=4), days[0][1])
    lake.remove(lake.marker("raw", START + dt.timedelta(days=4), "_SUCCESS"))  # still landing: not read

    init = _init(tmp_path)
    assert init["days"] == [d.isoformat() for d, _, _ in days]
    assert init["rows"] == sum(raw.num_rows for _, raw, _ in days)
    review = "\n".join(init["review"])
    assert "source      raw/dt=2026-03-02..2026-03-05: 4 days, 800 rows (200..200 a day)" in review
    assert "skipped 1 day(s) without _SUCCESS (still landing?): 2026-03-06" in review
    assert "  channel: 4 seen on 4 day(s), a new one on 1 of 3 later days -> allowed" in review
    for day, _, _ in days:
        assert f"raw/dt={day}: 200 rows passed contract" in init["verdict"], "checked against every day it read"

    settings = _settings(tmp_path)
    contract = Contract.load(settings.contract_path)
    assert contract.columns["channel"].allowed == ["app", "kiosk", "store", "web"]
    amounts = np.concatenate([raw.column("amount").to_numpy() for _, raw, _ in days])  # over every day
    low, high = amounts.min(), amounts.max()
    assert f"  amount: observed [{low:.6g}, {high:.6g}] -> [0, {contract.columns['amount'].max:g}]" in review
    assert contract.row_count.min == 20, "10 % of the smallest day"
    for day, _, _ in days:  # what data_validation will run, with the files as written
        assert validate_partition(settings, day, render_docs=False).passed


def test_init_reads_the_days_of_a_range_only(tmp_path: Path) -> None:
    lake = _lake(tmp_path)
    for offset in range(6):
        day, raw, labels = _day(offset)
        _land(lake, "raw", day, raw)
        _land(lake, "labels", day, labels)
    first, last = START + dt.timedelta(days=1), START + dt.timedelta(days=3)
    init = _init(tmp_path, "--from", first.isoformat(), "--to", last.isoformat())
    assert init["days"] == ["2026-03-03", "2026-03-04", "2026-03-05"]
    assert init["verdict"].count("passed contract") == 3
    assert init["review"][0].startswith("source      raw/dt=2026-03-03..2026-03-05: 3 days, 600 rows")
    assert "sized to 3 labelled day(s) (2026-03-03..2026-03-05)" in "\n".join(init["review"])

    # One day, as before; the upper bound alone (every landed day up to it); and the two ways do not mix.
    assert _init(tmp_path, "--date", "2026-03-04", "--force")["days"] == ["2026-03-04"]
    assert len(_init(tmp_path, "--to", "2026-03-04", "--force")["days"]) == 3
    assert _cli(tmp_path, "dataset", "init", "--name", NAME, "--date", "2026-03-04", "--to", "2026-03-05",
                "--force")[0] == 2  # fmt: skip
    assert _cli(tmp_path, "dataset", "init", "--name", NAME, "--from", "2026-04-01", "--force")[0] == 2, "none landed"


# -- training --------------------------------------------------------------------------------------------------
def test_the_training_section_is_sized_to_the_labels_with_its_reasons(tmp_path: Path) -> None:
    lake = _lake(tmp_path)
    for offset in range(5):
        day, raw, labels = _day(offset, rows=200, rate=0.2)  # ~40 positives a day
        _land(lake, "raw", day, raw)
        _land(lake, "labels", day, labels)
    init = _init(tmp_path)
    training = init["training"]
    # 100 positives want 3 days of holdout, 50 two of early stopping; 5 days landed: shortened to fit them.
    assert (training["holdout_days"], training["validation_days"]) == (1, 1)
    assert training["window_days"] == 28, "the default: the snapshot takes the labelled days there are"
    assert training["min_positives"] == 20, "half the ~120 positives of the first train split, at most 20"
    assert "shortened to fit the 5 labelled days landed (raise to 3/2 later)" in init["reasons"]["holdout_days"]
    review = "\n".join(init["review"])
    assert "  window_days 28: the default; 5 labelled day(s) read: the first run trains on 3 (those minus" in review

    model_file = tmp_path / "models" / f"{NAME}.yaml"
    text = model_file.read_text()
    assert "#   holdout_days 1: ~" in text and "#   window_days 28: " in text, "the reasons, as comments"
    settings = _settings(tmp_path)
    assert (settings.training.window_days, settings.training.holdout_days) == (28, 1)
    assert settings.training.min_positives == training["min_positives"]
    assert settings.gates.slice_min_rows == init["gates"]["slice_min_rows"] < 500, "slices sized to the holdout"
    assert "auc_pr" not in (init["gates"] or {}) and "absolute" not in (init["gates"] or {})


def test_too_few_positives_is_a_review_line_not_an_error(tmp_path: Path) -> None:
    lake = _lake(tmp_path)
    for offset in range(3):
        day, raw, labels = _day(offset, rows=100, rate=0.03)
        _land(lake, "raw", day, raw)
        _land(lake, "labels", day, labels)
    init = _init(tmp_path)
    review = "\n".join(init["review"])
    assert "TOO FEW POSITIVES:" in review and "in 3 day(s)" in review
    assert init["training"]["holdout_days"] >= 1 and init["training"]["min_positives"] >= 1


# -- labels as they come ---------------------------------------------------------------------------------------
def test_a_label_feed_with_extra_columns_and_null_labels(tmp_path: Path) -> None:
    """The label column is told from an outcome time and a source; 5 % null labels are counted and left out;
    a partition written in two files (of different widths) is read whole."""
    lake = _lake(tmp_path)
    rng = np.random.default_rng(7)
    nulls = 0
    for offset in range(3):
        day, raw, labels = _day(offset)
        missing = rng.random(labels.num_rows) < 0.05
        nulls += int(missing.sum())
        resolved = pa.array(np.datetime64(day.isoformat(), "s") + np.arange(labels.num_rows).astype("timedelta64[h]"),
                            pa.timestamp("s", tz="UTC"))  # fmt: skip
        feed = pa.table({
            "order_id": labels.column("order_id"),
            "late": pa.array(labels.column("late").to_pylist(), mask=missing),
            "resolved_at": resolved,
            "source": pa.array(rng.choice(["carrier", "support", "customer"], labels.num_rows)),
        })  # fmt: skip
        _land(lake, "raw", day, raw)
        half = feed.num_rows // 2
        second = feed.slice(half).set_column(0, "order_id", feed.column("order_id").slice(half).cast(pa.int32()))
        _land(lake, "labels", day, feed.slice(0, half), second)
    init = _init(tmp_path)
    assert init["dataset"]["label"] == {"column": "late", "positive": True, "delay_days": 0}
    review = "\n".join(init["review"])
    assert "late (the one bool or 0/1 column (also there: resolved_at, source))" in review
    assert f"  {nulls} of 600 labels null: left out" in review
    assert f"of {600 - nulls} labelled rows" in review, "the positive rate counts labelled rows only"

    # Two columns as label-like as each other: the error names them and the flag, as before.
    day = START + dt.timedelta(days=5)
    _, raw, labels = _day(5)
    _land(lake, "raw", day, raw)
    _land(lake, "labels", day, labels.append_column("refunded", labels.column("late")))
    code, out = _cli(tmp_path, "dataset", "init", "--name", NAME, "--date", day.isoformat(), "--force")
    assert code == 2 and "cannot tell the label column, candidates: ['late', 'refunded']; pass --label-column" in out
    code, out = _cli(tmp_path, "dataset", "init", "--name", NAME, "--date", day.isoformat(), "--force",
                     "--label-column", "late")  # fmt: skip
    assert code == 0, out


def test_the_label_delay_is_measured_from_the_landed_days(tmp_path: Path) -> None:
    lake = _lake(tmp_path)
    for offset in range(6):
        day, raw, labels = _day(offset)
        _land(lake, "raw", day, raw)
        if offset < 4:  # the labels of the last two days have not come yet
            _land(lake, "labels", day, labels)
    init = _init(tmp_path)
    assert init["dataset"]["label"]["delay_days"] == 2
    review = "\n".join(init["review"])
    assert "label delay measured 2 day(s): latest raw 2026-03-07, latest labels 2026-03-05" in review
    assert "sized to 4 labelled day(s) (2026-03-02..2026-03-05)" in review
    assert _settings(tmp_path).dataset.label.delay_days == 2
    given = _init(tmp_path, "--label-delay-days", "3", "--force")
    assert given["dataset"]["label"]["delay_days"] == 3 and "label delay 3 day(s) (given)" in "\n".join(given["review"])


@pytest.mark.parametrize("flag", ["--date", "--from"])
def test_a_day_that_has_not_landed_is_named(tmp_path: Path, flag: str) -> None:
    day, raw, labels = _day(0)
    _land(_lake(tmp_path), "raw", day, raw)
    code, out = _cli(tmp_path, "dataset", "init", "--name", NAME, flag, "2026-05-01")
    assert code == 2 and ("has no _SUCCESS" in out or "no raw day with _SUCCESS from 2026-05-01" in out), out
    assert not (tmp_path / "models").exists()
