"""Verdicts: good days pass; every bad input is named (file, column, rule), quarantined and never marked."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mlops.config import Settings, load_settings
from mlops.data.faults import FAULTS, inject_fault
from mlops.data.lake import REASON, SUCCESS, VALIDATED, Lake
from mlops.data.landing import land_days
from mlops.errors import InfrastructureError, InputError
from mlops.quarantine import NothingToRequeue, requeue_partition
from mlops.validation import (
    LakeReadError,
    PartitionNotReady,
    ValidationFailed,
    check_partition,
    mark_validated,
    validate_and_version,
    validate_partition,
)


def test_good_day_passes_with_a_suite_summary(settings: Settings, lake: Lake, landed_day: dt.date) -> None:
    verdict = validate_partition(settings, landed_day, lake)
    assert verdict.passed, verdict.summary()
    assert verdict.rows == 5_000
    assert verdict.suite["unsuccessful_expectations"] == 0 and verdict.suite["evaluated_expectations"] > 40
    assert verdict.data_docs and Path(verdict.data_docs.removeprefix("file://")).is_file()
    assert verdict.data_docs.removeprefix("file://").startswith(f"{lake.data_docs()}/"), "the site is in the lake"


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_each_bad_input_is_named_and_quarantined(
    settings: Settings, lake: Lake, landed_day: dt.date, fault: str
) -> None:
    spec = inject_fault(lake, landed_day, fault)
    with pytest.raises(ValidationFailed) as error:
        check_partition(settings, landed_day, lake)
    assert isinstance(error.value, InputError), "bad data is not retried"
    message = str(error.value).splitlines()[0]
    assert f"[{spec.rule}]" in message
    assert "part-00000.parquet" in message
    if spec.column:
        assert f"'{spec.column}'" in message

    raw, quarantine = lake.partition("raw", landed_day), lake.partition("quarantine", landed_day)
    assert not lake.exists(raw), "bad data must leave raw/ so nothing downstream reads it"
    reason = lake.read_json(f"{quarantine}/{REASON}")
    assert not lake.exists(f"{quarantine}/{VALIDATED}")
    first = reason["failures"][0]
    assert (first["rule"], first["column"]) == (spec.rule, spec.column)
    assert reason["passed"] is False and reason["contract"]["version"] == "1.0.0"
    assert lake.data_files(quarantine), "the quarantined data is kept for inspection"


@pytest.mark.parametrize("fault", ["out_of_range", "unknown_category", "duplicate_ids", "all_null"])
def test_row_level_faults_quote_offending_ids(settings: Settings, lake: Lake, landed_day: dt.date, fault: str) -> None:
    inject_fault(lake, landed_day, fault)
    table = pq.read_table(lake.data_files(lake.partition("raw", landed_day))[0])
    verdict = validate_partition(settings, landed_day, lake, render_docs=False)
    ids = verdict.failures[0].sample_ids
    assert 0 < len(ids) <= settings.validation.offending_ids_sample
    column = FAULTS[fault].column
    rows = table.filter(pa.compute.is_in(table["transaction_id"], pa.array(ids)))
    bad = {
        "out_of_range": lambda r: r["amount"] < 0.01,
        "unknown_category": lambda r: r["channel"] == "telepathy",
        "duplicate_ids": lambda r: table["transaction_id"].to_pylist().count(r["transaction_id"]) > 1,
        "all_null": lambda r: r[column] is None,
    }[fault]
    assert all(bad(row) for row in rows.to_pylist()), "every quoted id must really break the rule"


def test_missing_success_marker_is_not_quarantined(settings: Settings, lake: Lake, landed_day: dt.date) -> None:
    lake.remove(f"{lake.partition('raw', landed_day)}/{SUCCESS}")
    with pytest.raises(PartitionNotReady, match="_SUCCESS") as error:
        check_partition(settings, landed_day, lake)
    assert isinstance(error.value, InputError)
    assert str(error.value) == f"{lake.url(lake.marker('raw', landed_day, SUCCESS))} does not exist"
    assert lake.exists(lake.partition("raw", landed_day)), "an unfinished landing must be left alone"


def test_partition_without_files_fails(settings: Settings, lake: Lake, landed_day: dt.date) -> None:
    for path in lake.data_files(lake.partition("raw", landed_day)):
        lake.remove(path)
    with pytest.raises(ValidationFailed, match=r"\[non_empty_partition\]"):
        check_partition(settings, landed_day, lake)
    with pytest.raises(PartitionNotReady, match="it was quarantined: see") as error:  # a retry of the same day
        check_partition(settings, landed_day, lake)
    assert str(error.value).endswith(lake.url(lake.marker("quarantine", landed_day, REASON)))


def test_row_count_is_judged_against_recent_history(settings: Settings, lake: Lake) -> None:
    start = dt.date(2026, 11, 1)
    land_days(settings, start, days=3, rows_per_day=4_000, seed=1)
    for offset in range(3):
        day = start + dt.timedelta(days=offset)
        verdict = check_partition(settings, day, lake)
        mark_validated(lake, day, verdict.to_dict(), {"revision": "test"})
    small_day = start + dt.timedelta(days=3)
    land_days(settings, small_day, days=1, rows_per_day=1_000, seed=1)  # a quarter of the usual volume
    verdict = validate_partition(settings, small_day, lake, render_docs=False)
    assert [(f.rule, f.observed) for f in verdict.failures] == [("row_count", 1_000)]
    assert verdict.failures[0].expected == "between 2000 and 8001"


def test_revalidating_a_good_day_is_idempotent(settings: Settings, landed_day: dt.date) -> None:
    first = validate_and_version(settings, landed_day)
    second = validate_and_version(settings, landed_day)
    assert first["dvc"]["revision"] == second["dvc"]["revision"]
    assert first["rows"] == second["rows"] and first["suite"] == second["suite"]


def test_any_tabular_dataset_validates_through_config_alone(tmp_path: Path) -> None:
    """A non-fraud dataset: other names, ids and categories; only a dataset block and a contract."""
    contract = tmp_path / "loans.yaml"
    contract.write_text(
        "name: loans\nversion: 0.1.0\ncolumns:\n"
        "  loan_id: {type: string, unique: true}\n"
        "  applied_at: {type: timestamp}\n"
        "  income: {type: float64, min: 0, max: 1000000, nullable: true, max_null_fraction: 0.3}\n"
        "  region: {type: string, allowed: [north, south]}\n"
    )
    config = tmp_path / "mlops.yaml"
    config.write_text(
        f"dataset:\n  name: loans\n  id_column: loan_id\n  time_column: applied_at\n"
        f"  label: {{column: defaulted, positive: 1, delay_days: 30}}\n"
        f"  categorical: [region]\n  slices: [region]\n  contract: {contract}\n"
    )
    settings = load_settings(env={"MLOPS_HOME": str(tmp_path / "home"), "MLOPS_CONFIG": str(config)})
    lake = Lake.from_settings(settings)
    day = dt.date(2026, 3, 1)
    times = pa.array([dt.datetime(2026, 3, 1, h, tzinfo=dt.UTC) for h in range(4)], pa.timestamp("us", tz="UTC"))
    good = pa.table({"loan_id": ["a", "b", "c", "d"], "applied_at": times, "income": [1.0, None, 3.0, 4.0],
                     "region": ["north", "south", "north", "north"]})  # fmt: skip
    partition = lake.partition("raw", day)
    lake.write_parquet(good, f"{partition}/part-0.parquet")
    lake.touch(f"{partition}/{SUCCESS}")
    assert validate_partition(settings, day, lake, render_docs=False).passed
    bad = good.set_column(3, "region", pa.array(["north", "west", "north", "east"]))
    lake.write_parquet(bad, f"{partition}/part-0.parquet")
    with pytest.raises(ValidationFailed) as error:
        check_partition(settings, day, lake)
    assert "[allowed_values] column 'region'" in str(error.value) and "'c'" not in str(error.value)
    reason = json.loads(Path(lake.partition("quarantine", day), REASON).read_text())
    assert reason["failures"][0]["sample_ids"] == ["b", "d"]


def test_missing_and_extra_columns_are_both_named(settings: Settings, lake: Lake, landed_day: dt.date) -> None:
    path = lake.data_files(lake.partition("raw", landed_day))[0]
    table = pq.read_table(path).rename_columns({"country": "country_code"})
    pq.write_table(table, path)
    verdict = validate_partition(settings, landed_day, lake, render_docs=False)
    assert {(f.rule, f.column) for f in verdict.failures} == {
        ("column_present", "country"),
        ("no_extra_columns", "country_code"),
    }


# -- transient is not invalid ---------------------------------------------------------------------------------
def _failing_reads(lake: Lake, monkeypatch: pytest.MonkeyPatch, failures: int) -> list[str]:
    """The next ``failures`` opens of a parquet file raise a connection reset; returns the paths tried."""
    import mlops.validation

    monkeypatch.setattr(mlops.validation, "READ_RETRY_SECONDS", (0.0, 0.0))
    real_open, tried = lake.fs.open, []

    def flaky_open(path: str, *args: object, **kwargs: object):  # type: ignore[no-untyped-def]
        if str(path).endswith(".parquet"):
            tried.append(str(path))
            if len(tried) <= failures:
                raise ConnectionResetError(104, "Connection reset by peer")
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(lake.fs, "open", flaky_open)
    return tried


def test_a_read_error_is_retried_and_never_quarantines_a_good_day(
    settings: Settings, lake: Lake, landed_day: dt.date, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The issue: a connection reset while reading quarantined a good day. Now: retry, then an infrastructure error."""
    tried = _failing_reads(lake, monkeypatch, failures=99)
    with pytest.raises(LakeReadError, match="Connection reset by peer.*NOT quarantined") as error:
        check_partition(settings, landed_day, lake)
    assert isinstance(error.value, InfrastructureError) and not isinstance(error.value, InputError), "retried"
    assert len(tried) == 3, "read three times before giving up"
    assert lake.exists(lake.partition("raw", landed_day)) and not lake.exists(lake.partition("quarantine", landed_day))
    assert len(str(error.value).splitlines()) == 1


def test_a_read_that_fails_once_is_retried_in_place(
    settings: Settings, lake: Lake, landed_day: dt.date, monkeypatch: pytest.MonkeyPatch
) -> None:
    tried = _failing_reads(lake, monkeypatch, failures=1)
    assert check_partition(settings, landed_day, lake).passed
    assert len(tried) == 2


def test_a_quarantined_day_is_requeued_with_its_history(settings: Settings, lake: Lake, landed_day: dt.date) -> None:
    good = lake.read_partition(lake.partition("raw", landed_day))
    inject_fault(lake, landed_day, "duplicate_ids")
    with pytest.raises(ValidationFailed):
        check_partition(settings, landed_day, lake)
    with pytest.raises(NothingToRequeue, match="exists already"):
        lake.write_parquet(good, f"{lake.partition('raw', landed_day)}/part-00000.parquet")
        requeue_partition(lake, landed_day, actor="alice")
    lake.remove(lake.partition("raw", landed_day))

    raw = requeue_partition(lake, landed_day, actor="alice", note="contract v1.0.1 allows it")
    assert raw == lake.url(lake.partition("raw", landed_day)) and not lake.exists(
        lake.partition("quarantine", landed_day)
    )
    reason = lake.read_json(lake.marker("raw", landed_day, REASON))
    assert [e["event"] for e in reason["history"]] == ["quarantined", "requeued"]
    assert reason["history"][1]["by"] == "alice" and "[unique]" in reason["history"][0]["why"]
    with pytest.raises(ValidationFailed):  # still broken: quarantined again, the history goes with it
        check_partition(settings, landed_day, lake)
    reason = lake.read_json(lake.marker("quarantine", landed_day, REASON))
    assert [e["event"] for e in reason["history"]] == ["quarantined", "requeued", "quarantined"]

    requeue_partition(lake, landed_day, actor="alice")
    lake.write_parquet(good, lake.data_files(lake.partition("raw", landed_day))[0])  # the producer's fix
    assert check_partition(settings, landed_day, lake).passed
    with pytest.raises(NothingToRequeue, match="holds no data"):
        requeue_partition(lake, landed_day, actor="alice")
