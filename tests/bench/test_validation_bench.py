"""Validation benchmark: our GX step against pyarrow alone and a naive row-level GX suite, in one run.

Target (docs/testing.md, "Benchmarks"): the whole step (read, full contract, reasons with offending ids) takes at most
4x reading the partition plus the same checks in pyarrow alone, and gives the same verdicts on every injected fault. The
naive row-level GX suite is timed beside them to show what the aggregate suite saves; its time is reported, not
asserted."""

from __future__ import annotations

import datetime as dt
import gc
import json
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from bench_results import BenchResults

from mlops.config import Settings, load_settings
from mlops.data.contract import Contract, arrow_column_type
from mlops.data.faults import FAULTS, inject_fault
from mlops.data.lake import Lake
from mlops.data.landing import land_days
from mlops.validation import Verdict, validate_partition

pytestmark = pytest.mark.bench

ROWS = 1_000_000  # the timed partition
FAULT_ROWS = 200_000  # one partition per fault: verdicts, not speed
REPEATS = 3
TARGET_RATIO = 4.0
SEED = 7
TIMED_DAY = dt.date(2024, 1, 15)
FAULT_START = dt.date(2024, 3, 1)  # the clean day; fault days follow it, one per fault
SAMPLE = 10  # offending ids quoted per failed rule (our step's default)
#: Contract type -> the type_ a naive suite passes for a column of ``pq.read_table(...).to_pandas()``.
NAIVE_TYPES = {"int64": "int64", "float64": "float64", "string": "str", "bool": "bool", "timestamp": "Timestamp"}
#: Naive row-level expectation -> rule name. One between-check covers both bounds, so it is "range".
NAIVE_RULES = {
    "expect_table_row_count_to_be_between": "row_count",
    "expect_column_values_to_be_of_type": "type",
    "expect_column_values_to_not_be_null": "not_null",
    "expect_column_values_to_be_between": "range",
    "expect_column_values_to_be_in_set": "allowed_values",
    "expect_column_values_to_be_unique": "unique",
}
ROW_RULES = {"not_null", "max_null_fraction", "min", "max", "allowed_values", "unique"}

Flag = tuple[str, str | None]  # (rule, column); column None for table- and file-level rules


@dataclass
class Check:
    """What one validator flagged on a partition, with sample offending ids per row-level rule."""

    flags: set[Flag] = field(default_factory=set)
    sample_ids: dict[Flag, list[Any]] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return not self.flags

    @property
    def columns(self) -> set[str]:
        return {column for _, column in self.flags if column is not None}


@pytest.fixture(autouse=True)
def _quiet_gx(monkeypatch: pytest.MonkeyPatch) -> None:
    """No analytics calls from either GX path (they would time the network, not validation)."""
    monkeypatch.setenv("GX_ANALYTICS_ENABLED", "false")


def _lake(tmp_path_factory: pytest.TempPathFactory, name: str) -> tuple[Settings, Lake]:
    settings = load_settings(env={"MLOPS_HOME": str(tmp_path_factory.mktemp(name))})
    return settings, Lake.from_settings(settings)


# -- the baseline: pyarrow alone ----------------------------------------------------------------
def _read(lake: Lake, day: dt.date) -> pa.Table:
    tables = []
    for path in lake.data_files(lake.partition("raw", day)):
        with lake.fs.open(path, "rb") as handle:
            tables.append(pq.read_table(handle))
    return pa.concat_tables(tables)


def pyarrow_check(
    lake: Lake, day: dt.date, contract: Contract, id_column: str = "transaction_id", limit: int = SAMPLE
) -> Check:
    """Read the partition and run the contract's checks with pyarrow.compute: the cost floor of the step.

    Same rule names and same scope as our step: value rules are skipped on missing or mistyped columns
    and on an empty table, and each failed row-level rule quotes up to ``limit`` offending ids.
    """
    check = Check()
    try:
        table = _read(lake, day)
    except (pa.ArrowException, OSError):
        check.flags.add(("readable_parquet", None))
        return check
    rows, names = table.num_rows, set(table.column_names)
    missing = sorted(set(contract.columns) - names)
    extra = sorted(names - set(contract.columns))
    if missing:
        check.flags.add(("column_present", ", ".join(missing)))
    if extra and contract.extra_columns == "forbid":
        check.flags.add(("no_extra_columns", ", ".join(extra)))
    bounds = contract.row_count
    if rows < bounds.min or (bounds.max is not None and rows > bounds.max):
        check.flags.add(("row_count", None))
    mistyped = {
        name
        for name, rule in contract.columns.items()
        if name in names and arrow_column_type(table.schema.field(name).type) != rule.type
    }
    check.flags.update(("type", name) for name in mistyped)
    if rows == 0:
        return check
    ids = table[id_column] if id_column in names - mistyped else None

    def fail(rule: str, column: str, offending: pa.ChunkedArray) -> None:
        check.flags.add((rule, column))
        if ids is not None:
            check.sample_ids[(rule, column)] = pc.unique(pc.filter(ids, offending))[:limit].to_pylist()

    for name, rule in contract.columns.items():
        if name not in names or name in mistyped:
            continue
        column = table[name]
        if column.null_count > (rule.max_null_fraction * rows if rule.nullable else 0):
            fail("max_null_fraction" if rule.nullable else "not_null", name, column.is_null())
        if rule.min is not None or rule.max is not None:
            extremes = pc.min_max(column)
            low, high = extremes["min"].as_py(), extremes["max"].as_py()
            if rule.min is not None and low is not None and low < rule.min:
                fail("min", name, pc.less(column, rule.min))
            if rule.max is not None and high is not None and high > rule.max:
                fail("max", name, pc.greater(column, rule.max))
        if rule.allowed is not None:
            outside = pc.and_(pc.is_valid(column), pc.invert(pc.is_in(column, value_set=pa.array(rule.allowed))))
            if pc.any(outside).as_py():
                fail("allowed_values", name, outside)
        if rule.unique and pc.count_distinct(column).as_py() < rows - column.null_count:
            counts = pc.value_counts(column).flatten()
            repeated = pc.filter(counts[0], pc.greater(counts[1], 1))
            fail("unique", name, pc.is_in(column, value_set=repeated))
    return check


# -- ours ---------------------------------------------------------------------------------------
def ours_check(settings: Settings, lake: Lake, day: dt.date) -> Check:
    """The step under test, its verdict reduced to the same (rule, column) flags."""
    verdict: Verdict = validate_partition(settings, day, lake, render_docs=False)
    return Check(
        flags={(f.rule, f.column) for f in verdict.failures},
        sample_ids={(f.rule, f.column): f.sample_ids for f in verdict.failures if f.rule in ROW_RULES},
    )


# -- the naive row-level GX suite ---------------------------------------------------------------
def naive_gx_check(lake: Lake, day: dt.date, contract: Contract) -> Check:
    """The suite one writes first: every expectation row-level, SUMMARY results, on a plain to_pandas().

    Like our step it builds its ephemeral context on every call. A file pyarrow cannot read never
    reaches GX; that is counted as ``readable_parquet``.
    """
    import great_expectations as gx
    import great_expectations.expectations as gxe

    try:
        frame = _read(lake, day).to_pandas()
    except (pa.ArrowException, OSError):
        return Check(flags={("readable_parquet", None)})
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = {"globally": False}
    batch = context.data_sources.add_pandas("lake").add_dataframe_asset("partition")
    expectations: list[Any] = [
        gxe.ExpectTableColumnsToMatchSet(
            column_set=list(contract.columns), exact_match=contract.extra_columns == "forbid"
        ),
        gxe.ExpectTableRowCountToBeBetween(min_value=contract.row_count.min, max_value=contract.row_count.max),
    ]
    for name, rule in contract.columns.items():
        expectations.append(gxe.ExpectColumnValuesToBeOfType(column=name, type_=NAIVE_TYPES[rule.type]))
        expectations.append(gxe.ExpectColumnValuesToNotBeNull(column=name, mostly=1.0 - rule.max_null_fraction))
        if rule.min is not None or rule.max is not None:
            expectations.append(gxe.ExpectColumnValuesToBeBetween(column=name, min_value=rule.min, max_value=rule.max))
        if rule.allowed is not None:
            expectations.append(gxe.ExpectColumnValuesToBeInSet(column=name, value_set=rule.allowed))
        if rule.unique:
            expectations.append(gxe.ExpectColumnValuesToBeUnique(column=name))
    suite = context.suites.add(gx.ExpectationSuite(name="naive", expectations=expectations))
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(name="naive", data=batch.add_batch_definition_whole_dataframe("day"), suite=suite)
    )
    result = definition.run(batch_parameters={"dataframe": frame}, result_format="SUMMARY")
    check = Check()
    for item in result.results:
        if item.success:
            continue
        config = item.expectation_config
        if config.type == "expect_table_columns_to_match_set":
            mismatched = (item.result or {}).get("details", {}).get("mismatched", {})
            if mismatched.get("missing"):
                check.flags.add(("column_present", ", ".join(sorted(mismatched["missing"]))))
            if mismatched.get("unexpected"):
                check.flags.add(("no_extra_columns", ", ".join(sorted(mismatched["unexpected"]))))
        else:
            check.flags.add((NAIVE_RULES[config.type], config.kwargs.get("column")))
    return check


# -- timing -------------------------------------------------------------------------------------
def _timed(fn: Callable[[], Check]) -> Check:
    gc.collect()
    start = time.perf_counter()
    check = fn()
    check.seconds = time.perf_counter() - start
    return check


@pytest.fixture(scope="module")
def timed_lake(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, Lake, Contract]:
    settings, lake = _lake(tmp_path_factory, "bench-timed")
    land_days(settings, TIMED_DAY, 1, ROWS, SEED)
    return settings, lake, Contract.load(settings.contract_path)


def test_validation_speed(timed_lake: tuple[Settings, Lake, Contract], bench_results: BenchResults) -> None:
    """Ours vs pyarrow vs naive GX on the same 1M-row partition; ours must stay within 4x of pyarrow."""
    settings, lake, contract = timed_lake
    runners: dict[str, Callable[[], Check]] = {
        "pyarrow (read + checks)": lambda: pyarrow_check(lake, TIMED_DAY, contract),
        "ours (validate_partition)": lambda: ours_check(settings, lake, TIMED_DAY),
        "naive GX row-level SUMMARY": lambda: naive_gx_check(lake, TIMED_DAY, contract),
    }
    for run in runners.values():  # warm-up: imports and first-call costs, the same for all three
        assert run().passed, "the timed partition is clean: every validator must pass it"
    times: dict[str, list[float]] = {label: [] for label in runners}
    for _ in range(REPEATS):  # interleaved, so drift in machine load hits all three alike
        for label, run in runners.items():
            times[label].append(_timed(run).seconds)
    medians = {label: statistics.median(values) for label, values in times.items()}
    baseline, ours, naive = medians.values()
    ratio = ours / baseline

    print(f"\nvalidation, {ROWS:,} rows x {len(contract.columns)} columns, median of {REPEATS} (after 1 warm-up)")
    print(f"{'validator':<28} {'seconds':>8} {'rows/s':>12} {'x pyarrow':>10}   runs")
    for label, seconds in medians.items():
        runs = ", ".join(f"{value:.3f}" for value in times[label])
        print(f"{label:<28} {seconds:>8.3f} {ROWS / seconds:>12,.0f} {seconds / baseline:>10.2f}   {runs}")
    print(f"ours / pyarrow = {ratio:.2f} (target <= {TARGET_RATIO})")

    out = os.environ.get("MLOPS_BENCH_OUT")
    if out:
        payload = {
            "benchmark": "validation",
            "rows": ROWS,
            "repeats": REPEATS,
            "seconds": {"pyarrow": baseline, "ours": ours, "naive_gx": naive},
            "runs": dict(zip(("pyarrow", "ours", "naive_gx"), times.values(), strict=True)),
            "rows_per_second": {"pyarrow": ROWS / baseline, "ours": ROWS / ours, "naive_gx": ROWS / naive},
            "ratio_ours_to_pyarrow": ratio,
            "target_ratio": TARGET_RATIO,
        }
        Path(out).mkdir(parents=True, exist_ok=True)
        (Path(out) / "validation.json").write_text(json.dumps(payload, indent=2))
    bench_results.add("validation, 1M rows: read + full contract + reasons, vs pyarrow read + same checks",
                      ours, baseline, "s", f"<= {TARGET_RATIO}")  # fmt: skip
    bench_results.add("validation, 1M rows: naive row-level GX suite, vs pyarrow read + same checks",
                      naive, baseline, "s", None)  # fmt: skip
    assert ratio <= TARGET_RATIO, f"validation step takes {ratio:.2f}x pyarrow (target {TARGET_RATIO}x)"


# -- verdicts -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def fault_lake(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, Lake, dict[str, dt.date]]:
    """A clean day, then one day per fault (no day is marked validated, so no row-count history)."""
    settings, lake = _lake(tmp_path_factory, "bench-faults")
    land_days(settings, FAULT_START, len(FAULTS) + 1, FAULT_ROWS, SEED)
    days = {"clean": FAULT_START}
    for offset, name in enumerate(FAULTS, start=1):
        days[name] = FAULT_START + dt.timedelta(days=offset)
        inject_fault(lake, days[name], name, settings.dataset.id_column)
    return settings, lake, days


def _show(flags: set[Flag]) -> str:
    return " ".join(sorted(f"{rule}:{column or '-'}" for rule, column in flags)) or "pass"


def _as_ranges(flags: set[Flag]) -> set[Flag]:
    """Our min/max in the naive suite's terms: one between-expectation checks both bounds."""
    return {("range" if rule in ("min", "max") else rule, column) for rule, column in flags}


def test_same_verdicts_on_every_fault(fault_lake: tuple[Settings, Lake, dict[str, dt.date]],
                                      bench_results: BenchResults) -> None:  # fmt: skip
    """Every injected fault: ours names the fault's rule and column, exactly as pyarrow does, and fails
    where the naive row-level suite fails, on the same columns.

    The naive suite is compared more loosely, because row-level expectations also flag the consequences
    of a fault that our step deliberately leaves out (a range check on a column that arrived as strings,
    every expectation on a missing column). So: same pass/fail, same columns named, and each of our
    flags is among the naive ones (with min/max read as its single between-check, "range").
    """
    settings, lake, days = fault_lake
    contract = Contract.load(settings.contract_path)
    id_column = settings.dataset.id_column
    problems: list[str] = []
    rows = []
    for name, day in days.items():
        ours = _timed(lambda day=day: ours_check(settings, lake, day))
        base = _timed(lambda day=day: pyarrow_check(lake, day, contract, id_column))
        naive = _timed(lambda day=day: naive_gx_check(lake, day, contract))
        fault = FAULTS.get(name)
        expected: set[Flag] = {(fault.rule, fault.column)} if fault else set()
        if not expected <= ours.flags or (fault is None and not ours.passed):
            problems.append(f"{name}: ours flagged {_show(ours.flags)}, expected {_show(expected)}")
        if ours.flags != base.flags:
            problems.append(f"{name}: ours {_show(ours.flags)} != pyarrow {_show(base.flags)}")
        for flag, ids in ours.sample_ids.items():
            if not ids or not set(ids) <= set(base.sample_ids.get(flag, [])):
                problems.append(f"{name}: ours quotes ids {ids} for {flag}, pyarrow {base.sample_ids.get(flag)}")
        naive_agrees = (
            ours.passed == naive.passed and ours.columns == naive.columns and _as_ranges(ours.flags) <= naive.flags
        )
        if not naive_agrees:
            problems.append(f"{name}: ours {_show(ours.flags)} vs naive GX {_show(naive.flags)}")
        ids_quoted = sum(len(ids) for ids in ours.sample_ids.values())
        rows.append((name, _show(expected), _show(ours.flags), ids_quoted, ours.seconds, _show(base.flags),
                     base.seconds, _show(naive.flags), naive.seconds, naive_agrees))  # fmt: skip

    print(f"\nverdicts, {FAULT_ROWS:,} rows per partition (seconds: one run each)")
    header = ("fault", "expected", "ours", "ids", "s", "pyarrow", "s", "naive GX (row-level)", "s", "naive ok")
    widths = [max(len(str(value)) if not isinstance(value, float) else 5 for value in column) for column in
              zip(header, *rows, strict=True)]  # fmt: skip
    print("  ".join(f"{title:<{width}}" for title, width in zip(header, widths, strict=True)))
    for row in rows:
        cells = [f"{value:.2f}" if isinstance(value, float) else str(value) for value in row]
        print("  ".join(f"{cell:<{width}}" for cell, width in zip(cells, widths, strict=True)))
    wrong = {problem.split(":", 1)[0] for problem in problems}
    bench_results.add(f"validation verdicts, {len(days)} partitions (clean + each fault): as pyarrow and naive GX",
                      len(days) - len(wrong), len(days), "partitions", ">= 1")  # fmt: skip
    assert not problems, "verdicts disagree:\n" + "\n".join(problems)
