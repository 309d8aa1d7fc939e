"""Validate a raw day partition against its data contract, then mark it validated or quarantine it.

Structural faults GX cannot see (no ``_SUCCESS``, no files, unreadable parquet) are checked first, by
reading the files; then the contract's Great Expectations suite (``mlops.gx_suite``) runs and its
failed expectations become :class:`Failure` lines that name the file, column and rule. A value from the
data is quoted short (:func:`shorten`), so one huge cell never becomes a huge reason.

A breach within a rule's tolerance (rare unknown categories, rare nulls in a ``nullable: false`` column: see
``mlops.data.contract``) is a *warning*: the day passes, and ``Verdict.warnings`` (then ``_VALIDATED.json``)
records it in the same shape as a failure. Warnings never quarantine; failures do.

Transient is not invalid: only a contract breach quarantines a day. A marker, folder or file that cannot be
*reached* (an I/O error on its stat, listing, open or read, a reset connection, an S3 timeout: the lake never
reads one as "absent") is retried in place and then raises :class:`LakeReadError`, an
:class:`~mlops.errors.InfrastructureError` that Airflow retries with backoff; bytes that were fetched but
are not parquet are a breach (``readable_parquet``). ``mlops requeue --date D`` (:func:`requeue_partition`)
returns a quarantined day to ``raw/`` for re-validation; ``reason.json`` keeps the day's history, and a day
quarantined again after a new delivery keeps the earlier ones (``quarantine/dt=D/_earlier/<n>/``).

A verdict names what it validated: each file's size, md5 and sha256 of the bytes it read (``Verdict.manifest``,
then ``_VALIDATED.json``); the DVC snapshot and scoring refuse a day whose files differ from it.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import asdict, dataclass, field
from statistics import median
from typing import TYPE_CHECKING, Any

from mlops.data.contract import Contract, arrow_column_type
from mlops.data.lake import REASON, SUCCESS, VALIDATED, Lake, LakeIOError, PartitionChanged, file_digest, refuse_changes
from mlops.data.publish import publish_json
from mlops.errors import InfrastructureError, InputError, Quarantined
from mlops.gx_suite import EVENT_TIME_RULE, RULES, GxRunner, build_suite, plain, row_level_twin, to_pandas

if TYPE_CHECKING:
    import pyarrow as pa

    from mlops.config import Settings

__all__ = [
    "RULES",
    "Failure",
    "LakeReadError",
    "NothingToRequeue",
    "PartitionNotReady",
    "ValidationFailed",
    "Verdict",
    "build_suite",
    "check_partition",
    "expected_row_range",
    "mark_validated",
    "quarantine_partition",
    "requeue_partition",
    "shorten",
    "validate_and_version",
    "validate_partition",
]

log = logging.getLogger(__name__)
#: Pauses between attempts to fetch a file of a day before the step gives up (then Airflow retries it).
READ_RETRY_SECONDS = (0.5, 2.0)
#: How much of a value from the data a reason quotes: a 5 MB cell must not become a 5 MB log line, alert or page.
QUOTE_LIMIT = 80


def shorten(value: Any, limit: int = QUOTE_LIMIT) -> Any:
    """A value from the data as a reason quotes it: a text longer than ``limit`` is cut and says its length.

    ``"a" * 5_000_000`` -> ``"aaaa… (5000000 chars)"`` (``limit`` characters, then the length); other values as is.
    """
    if isinstance(value, str) and len(value) > limit:
        return f"{value[:limit]}… ({len(value)} chars)"
    return value


class LakeReadError(InfrastructureError):
    """A file of the day could not be fetched (I/O, network): retried, never a reason to quarantine."""


class ValidationFailed(Quarantined):
    """A partition broke its contract; the message names the file, column and rule."""

    def __init__(self, verdict: Verdict) -> None:
        super().__init__(verdict.summary())
        self.verdict = verdict


@dataclass
class Failure:
    rule: str
    column: str | None
    observed: Any
    expected: Any
    file: str | None = None
    sample_ids: list[Any] = field(default_factory=list)

    def __post_init__(self) -> None:  # a column name and the ids come from the data too
        self.column = shorten(self.column)
        self.sample_ids = [shorten(value) for value in self.sample_ids]

    def describe(self) -> str:
        where = f"column '{self.column}'" if self.column else "table"
        text = f"[{self.rule}] {where}: observed {self.observed!r}, expected {self.expected!r}"
        if self.file:
            text += f" (file {self.file})"
        if self.sample_ids:
            text += f"; offending ids e.g. {self.sample_ids}"
        return text


@dataclass
class Verdict:
    dataset: str
    day: str
    partition: str
    contract: dict[str, str]
    rows: int = 0
    files: list[str] = field(default_factory=list)
    #: file name -> size, md5, sha256 of the bytes this verdict read: what "validated" covers, and nothing else.
    manifest: dict[str, dict[str, Any]] = field(default_factory=dict)
    failures: list[Failure] = field(default_factory=list)
    #: Breaches within a rule's tolerance: the day passes with them (logged, recorded in ``_VALIDATED.json``).
    warnings: list[Failure] = field(default_factory=list)
    suite: dict[str, Any] = field(default_factory=dict)
    data_docs: str | None = None

    @property
    def passed(self) -> bool:
        return not self.failures

    def summary(self) -> str:
        """One line that names the rule, column and file first (it is what a failure callback shows)."""
        contract = f"contract {self.contract['name']} v{self.contract['version']}"
        if self.passed:
            passed = f"{self.partition}: {self.rows} rows passed {contract}"
            if not self.warnings:
                return passed
            first, *rest = self.warnings
            more = f" (+{len(rest)} more)" if rest else ""
            return f"{passed} with {len(self.warnings)} warning(s): {first.describe()}{more}"
        first, *rest = self.failures
        more = f" (+{len(rest)} more rule(s) broken)" if rest else ""
        lines = [f"{self.partition} failed {contract}: {first.describe()}{more}"]
        lines += [f"  - {failure.describe()}" for failure in rest]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        payload = asdict(self)
        payload["passed"] = self.passed
        return payload


# -- reading ------------------------------------------------------------------------------------
def _lake_io(what: str, call: Any) -> Any:
    """Run one lake operation; any failure is infrastructure (:class:`LakeReadError`), retried in place first."""
    pauses = list(READ_RETRY_SECONDS)
    while True:
        try:
            return call()
        except Exception as exc:
            first = (str(exc).strip().splitlines() or [""])[0]
            failed = f"{what} failed ({type(exc).__name__}: {first})"
            if isinstance(exc, LakeIOError):  # the lake's own error already says what failed where
                failed = exc.strerror or first
            if not pauses:
                raise LakeReadError(
                    f"{failed}; the day was NOT quarantined: check the lake (disk, permissions, S3 endpoint, "
                    f"network), the step is retried"
                ) from exc
            pause = pauses.pop(0)
            log.warning("%s; again in %.1f s", failed, pause)
            time.sleep(pause)


def _read_bytes(lake: Lake, path: str) -> bytes:
    def fetch() -> bytes:
        with lake.fs.open(path, "rb") as handle:
            return handle.read()

    return _lake_io(f"reading {lake.url(path)}", fetch)


def _read_partition(lake: Lake, day: dt.date, verdict: Verdict) -> pa.Table | None:
    """Read every parquet file of ``raw/dt=D``; unreadable, empty or inconsistent files become failures.

    Fetching is I/O (a failure raises :class:`LakeReadError`); parsing the fetched bytes is the contract
    (a failure is the ``readable_parquet`` breach).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    success = lake.marker("raw", day, SUCCESS)
    if not _lake_io(f"checking {lake.url(success)}", lambda: lake.exists(success)):
        verdict.failures.append(Failure("partition_complete", None, f"no {SUCCESS} marker", success))
        return None
    partition = lake.partition("raw", day)
    files = _lake_io(f"listing {lake.url(partition)}", lambda: lake.data_files(partition))
    verdict.files = [lake.relative(path) for path in files]
    if not files:
        verdict.failures.append(Failure("non_empty_partition", None, "no parquet files", ">= 1 parquet file"))
        return None
    tables = []
    for path in files:
        data = _read_bytes(lake, path)
        verdict.manifest[path.rsplit("/", 1)[-1]] = file_digest(data)  # the bytes checked below, hashed once read
        try:
            tables.append(pq.read_table(pa.BufferReader(data)))
        except Exception as exc:  # the bytes arrived: whatever is wrong with them is the file's fault
            verdict.failures.append(
                Failure(
                    "readable_parquet",
                    None,
                    str(exc).splitlines()[0],
                    "a readable parquet file",
                    lake.relative(path),
                )
            )
    if verdict.failures:
        return None
    try:
        return pa.concat_tables(tables) if len(tables) > 1 else tables[0]
    except pa.ArrowInvalid as exc:
        verdict.failures.append(
            Failure("consistent_schema", None, str(exc).splitlines()[0], "one schema for all files")
        )
        return None


# -- the verdict --------------------------------------------------------------------------------
def expected_row_range(lake: Lake, day: dt.date, contract: Contract, history_days: int) -> tuple[int, int | None]:
    """Row-count bounds: the contract's absolute ones, narrowed by the median of recent validated days."""
    rule = contract.row_count
    low, high = rule.min, rule.max
    validated = _lake_io(f"listing validated days in {lake.url(lake.area('raw'))}", lambda: lake.days("raw", VALIDATED))
    history = [d for d in validated if d < day][-history_days:]
    counts = []
    for previous in history:
        marker = lake.marker("raw", previous, VALIDATED)
        payload = _lake_io(f"reading {lake.url(marker)}", lambda marker=marker: lake.read_json(marker))
        try:  # a marker that cannot be read stops the step (above); one without a row count is skipped
            counts.append(int(payload["rows"]))
        except (KeyError, TypeError, ValueError):
            continue
    if counts:
        typical = median(counts)
        low = max(low, int(typical * rule.min_ratio))
        relative_high = int(typical * rule.max_ratio) + 1
        high = relative_high if high is None else min(high, relative_high)
    return low, high


def _column_set_failures(expected: list[str], columns: list[str]) -> list[Failure]:
    missing, extra = sorted(set(expected) - set(columns)), sorted(set(columns) - set(expected))
    failures = [Failure("column_present", name, "missing", "present") for name in missing]
    return failures + [Failure("no_extra_columns", name, "unexpected column", "absent") for name in extra]


def _percent(fraction: float) -> str:
    """``0.0127`` -> ``1.3``; small fractions keep two significant digits (``0.00033`` -> ``0.033``)."""
    percent = 100.0 * fraction
    return f"{percent:.1f}" if percent >= 0.1 or percent == 0 else f"{percent:.2g}"


def _null_tolerance(fraction: float) -> str:
    return f"no nulls (up to {_percent(fraction)} % tolerated)"


def _unknown_values(result: Any, contract: Contract) -> Failure:
    """The ``allowed_values`` warning or failure of a column with a tolerance, from GX's row-level in-set result."""
    kwargs = result.expectation_config.kwargs
    column = kwargs["column"]
    found = (result.result or {}).get("partial_unexpected_list") or []  # values as they occur, repeated
    shown = [shorten(value) for value in sorted(set(map(str, found)))[:10]]
    count = int((result.result or {}).get("unexpected_count") or 0)
    percent = float((result.result or {}).get("unexpected_percent") or 0.0) / 100.0  # of the non-null rows
    tolerated = _percent(contract.columns[column].max_unknown_fraction)
    return Failure("allowed_values", column, f"unknown values {shown} on {count} rows ({_percent(percent)} %)",
                   f"one of {kwargs['value_set']} (up to {tolerated} % unknown tolerated)")  # fmt: skip


def _tolerated_unknowns(passed: list[Any], contract: Contract, skip: set[str]) -> list[Failure]:
    """A passed in-set check with unknown rows: within the column's tolerance, so a warning."""
    return [_unknown_values(item, contract) for item in passed
            if item.expectation_config.type == "expect_column_values_to_be_in_set"
            and item.expectation_config.kwargs.get("column") not in skip
            and (item.result or {}).get("unexpected_count")]  # fmt: skip


def _null_warnings(results: list[Any], contract: Contract, rows: int, skip: set[str]) -> list[Failure]:
    """A passed non-null proportion with nulls on a ``nullable: false`` column: nulls tolerated, so a warning."""
    warnings = []
    for item in results:
        config = item.expectation_config
        column = config.kwargs.get("column")
        if config.type != "expect_column_proportion_of_non_null_values_to_be_between" or column in skip:
            continue
        rule = contract.columns[column]
        observed = plain((item.result or {}).get("observed_value"))
        if rule.nullable or not rule.max_null_fraction or observed is None or float(observed) >= 1.0:
            continue
        fraction = 1.0 - float(observed)
        warnings.append(Failure("not_null", column, f"null fraction {round(fraction, 6)} ({round(fraction * rows)} "
                                f"rows)", _null_tolerance(rule.max_null_fraction)))  # fmt: skip
    return warnings


def _failure_from_result(result: Any, contract: Contract, rows: int = 0) -> Failure:
    config = result.expectation_config
    kwargs = dict(config.kwargs)
    rule, _ = RULES.get(config.type, (config.type, None))
    column = kwargs.get("column")
    observed = plain((result.result or {}).get("observed_value"))
    expected: Any
    if config.type == "expect_column_type_to_be":
        expected = contract.columns[column].type
    elif config.type == "expect_column_proportion_of_non_null_values_to_be_between":
        null_fraction = None if observed is None else round(1.0 - float(observed), 6)
        column_rule = contract.columns[column]
        rule = "not_null" if not column_rule.nullable else "max_null_fraction"
        observed, expected = f"null fraction {null_fraction}", f"<= {round(1 - kwargs['min_value'], 6)}"
        if not column_rule.nullable and column_rule.max_null_fraction and null_fraction is not None:
            observed = f"null fraction {null_fraction} ({round(null_fraction * rows)} rows)"
            expected = _null_tolerance(column_rule.max_null_fraction)
    elif config.type == "expect_column_distinct_values_to_be_in_set":
        unknown = sorted(map(str, (result.result or {}).get("partial_unexpected_list") or []))
        shown = [shorten(value) for value in unknown[:10]]
        observed, expected = f"unknown values {shown}", f"one of {kwargs['value_set']}"
    elif config.type == "expect_column_proportion_of_unique_values_to_be_between":
        expected = "all values unique"
        observed = f"unique fraction {observed}"
    elif (config.meta or {}).get("rule") == EVENT_TIME_RULE:  # min/max of the event time: within the day
        rule = EVENT_TIME_RULE
        bound = kwargs.get("min_value") if config.type == "expect_column_min_to_be_between" else kwargs.get("max_value")
        side = ">=" if config.type == "expect_column_min_to_be_between" else "<="
        shown = bound.isoformat() if isinstance(bound, dt.datetime) else str(bound)
        observed = f"{'earliest' if side == '>=' else 'latest'} {observed}"
        expected = f"{side} {shown} (the partition's UTC day +- {contract.event_time_tolerance_hours} h)"
    elif config.type == "expect_column_min_to_be_between":
        expected = f">= {kwargs['min_value']}"
    elif config.type == "expect_column_max_to_be_between":
        expected = f"<= {kwargs['max_value']}"
    else:  # row count
        low, high = kwargs.get("min_value"), kwargs.get("max_value")
        expected = f"between {low} and {high}" if high is not None else f">= {low}"
    return Failure(rule=rule, column=column, observed=observed, expected=expected)


# -- the step -----------------------------------------------------------------------------------
def validate_partition(
    settings: Settings, day: dt.date, lake: Lake | None = None, *, render_docs: bool = True
) -> Verdict:
    """Read ``raw/dt=D`` and check it against the contract. Never raises on bad data: returns the verdict."""
    lake = lake or Lake.from_settings(settings)
    contract = Contract.load(settings.contract_path)
    contract.check_dataset(settings.dataset)
    partition = lake.partition("raw", day)
    verdict = Verdict(
        dataset=settings.dataset.name,
        day=day.isoformat(),
        partition=lake.url(partition),
        contract={"name": contract.name, "version": contract.version, "sha256": contract.sha256},
    )
    table = _read_partition(lake, day, verdict)
    if table is None:
        log.error("%s", verdict.summary())
        return verdict
    verdict.rows = table.num_rows
    single_file = verdict.files[0] if len(verdict.files) == 1 else None
    columns = table.column_names
    # Extra columns the contract allows are not its business, whatever their type.
    checked = columns if contract.extra_columns == "forbid" else [n for n in columns if n in contract.columns]
    unsupported = {n: str(table.schema.field(n).type) for n in checked
                   if arrow_column_type(table.schema.field(n).type).startswith("unsupported:")}  # fmt: skip
    row_range = expected_row_range(lake, day, contract, settings.validation.history_days)
    log.info("validating %s: %d rows x %d columns, expected rows %s", verdict.partition, table.num_rows,
             len(columns), row_range)  # fmt: skip
    frame = to_pandas(table)
    del table
    runner = GxRunner(settings, lake)
    window = contract.event_time_window(day)
    time_column = settings.dataset.time_column
    event_time = (time_column, *window) if window is not None and time_column not in unsupported else None
    suite = build_suite(contract, columns, row_range, event_time)
    result, verdict.data_docs = runner.run_checkpoint(suite, frame, render_docs)
    if verdict.data_docs:
        verdict.data_docs = runner.publish_docs(settings, lake, verdict.data_docs)
    verdict.suite = {"name": suite.name, **{k: plain(v) for k, v in result.statistics.items()}}
    if verdict.data_docs:
        log.info("Data Docs: %s", verdict.data_docs)

    mistyped: set[str] = set(unsupported)
    failed = [r for r in result.results if not r.success]
    for item in failed:
        if item.expectation_config.type == "expect_column_type_to_be":
            mistyped.add(item.expectation_config.kwargs["column"])
    for item in failed:
        config = item.expectation_config
        column = config.kwargs.get("column")
        if column in mistyped and config.type != "expect_column_type_to_be":
            continue  # value rules on a column of the wrong type add noise, not information
        if verdict.rows == 0 and column is not None and config.type != "expect_column_type_to_be":
            continue  # an empty partition is one failure (row_count), not one per column
        if config.type == "expect_table_columns_to_match_set":
            for failure in _column_set_failures(config.kwargs["column_set"], columns):
                failure.file = single_file
                verdict.failures.append(failure)
            continue
        if config.type == "expect_column_values_to_be_in_set":  # beyond the column's unknown tolerance
            failure = _unknown_values(item, contract)
        else:
            failure = _failure_from_result(item, contract, verdict.rows)
        failure.file = single_file
        twin = RULES.get(config.type, ("", None))[1]
        id_column = settings.dataset.id_column
        if twin and id_column in frame.columns and id_column not in mistyped:
            ids = runner.offending_ids(
                frame, row_level_twin(twin, dict(config.kwargs)), id_column, settings.validation.offending_ids_sample
            )
            failure.sample_ids = [shorten(value) for value in ids]
        verdict.failures.append(failure)
    if verdict.rows:
        passed = [r for r in result.results if r.success]
        tolerated = _tolerated_unknowns(passed, contract, mistyped)
        for warning in tolerated + _null_warnings(passed, contract, verdict.rows, mistyped):
            warning.file = single_file
            verdict.warnings.append(warning)
    # Null-typed (all-null) or exotic columns: name the column and its type even if GX found it odd.
    for name, arrow_type in unsupported.items():
        if not any(f.column == name and f.rule == "type" for f in verdict.failures):
            expected = contract.columns[name].type if name in contract.columns else "a contract column"
            verdict.failures.append(Failure("type", name, shorten(arrow_type), expected, single_file))
    if verdict.passed:
        (log.warning if verdict.warnings else log.info)("%s", verdict.summary())
        for warning in verdict.warnings:
            log.warning("validation warning: %s", warning.describe())
    else:
        log.error("%s", verdict.summary())
    return verdict


def quarantine_partition(lake: Lake, day: dt.date, verdict: Verdict) -> str:
    """Move ``raw/dt=D`` to ``quarantine/dt=D`` with ``reason.json``; downstream never sees the data.

    The reason is written into the partition *before* the move (an atomic rename locally), and any
    stale ``_VALIDATED.json`` from an earlier run is removed first, so no reader sees a marked bad day.
    A day quarantined before (an earlier delivery, not this one requeued) is not overwritten: each earlier
    delivery is kept with its own ``reason.json`` under ``quarantine/dt=D/_earlier/<n>/`` (1 = the first),
    while ``quarantine/dt=D/`` itself always holds the latest, where every reader looks.
    """
    raw = lake.partition("raw", day)
    target = lake.partition("quarantine", day)
    lake.remove(lake.marker("raw", day, VALIDATED))
    reason = verdict.to_dict()
    reason["quarantined_at"] = dt.datetime.now(dt.UTC).isoformat()
    reason["moved_from"] = lake.url(raw)
    earlier = lake.marker("raw", day, REASON)  # a requeued day carries its history back into raw/
    history = list(lake.read_json(earlier).get("history", [])) if lake.exists(earlier) else []
    first_line = verdict.summary().splitlines()[0]
    reason["history"] = [*history, {"event": "quarantined", "at": reason["quarantined_at"], "why": first_line}]
    # (A day with no raw/ at all gets a raw/ of its reason alone, moved like any delivery.)
    publish_json(lake, lake.marker("raw", day, REASON), reason)
    if lake.exists(target):
        _keep_earlier_deliveries(lake, target, raw)
    lake.move(raw, target)
    log.warning("quarantined %s -> %s", lake.url(raw), lake.url(target))
    return lake.url(target)


def _keep_earlier_deliveries(lake: Lake, target: str, raw: str) -> None:
    """Move the quarantined deliveries of ``target`` under ``raw``'s ``_earlier/`` before ``raw`` replaces it.

    Those ``target`` kept already keep their numbers; its latest becomes the next one. Moved into ``raw/``
    (never deleted) first: a step killed half-way loses nothing, and ``_`` names are never read as data.
    """
    numbers = lake.earlier_numbers(target)
    for number in numbers:
        lake.move(lake.earlier(target, number), lake.earlier(raw, number))
    lake.remove(lake.earlier(target))
    kept = lake.earlier_numbers(raw)  # includes any a killed earlier attempt moved
    if lake.listdir(target):
        lake.move(target, lake.earlier(raw, max(kept, default=0) + 1))
    lake.remove(target)


class NothingToRequeue(InputError):
    """The day has no quarantined data to return to ``raw/``, or ``raw/`` already holds a landing of it."""


def requeue_partition(lake: Lake, day: dt.date, actor: str, note: str = "") -> str:
    """Move ``quarantine/dt=D`` back to ``raw/dt=D`` for re-validation; ``reason.json`` records it in its history.

    For a day quarantined by mistake (a contract since fixed, a rule since relaxed). The day is not marked
    validated: validation runs again (``mlops validate --date D`` or clear the day's ``data_validation``
    run) and may quarantine it again, keeping the history.
    """
    quarantined, raw = lake.partition("quarantine", day), lake.partition("raw", day)
    if not lake.data_files(quarantined):
        raise NothingToRequeue(
            f"{lake.url(quarantined)} holds no data to requeue: land the day again in {lake.url(raw)}"
        )
    if lake.exists(raw):
        raise NothingToRequeue(
            f"{lake.url(raw)} exists already (a new landing of the day?): validate it with "
            f"`mlops validate --date {day}`, or remove it before requeueing the quarantined copy"
        )
    reason_path = lake.marker("quarantine", day, REASON)
    reason = lake.read_json(reason_path) if lake.exists(reason_path) else {}
    now = dt.datetime.now(dt.UTC).isoformat()
    entry = {"event": "requeued", "at": now, "by": actor, "note": note}
    reason["history"] = [*reason.get("history", []), entry]
    publish_json(lake, reason_path, reason)
    lake.move(quarantined, raw)
    log.warning("requeued %s -> %s by %s (%s)", lake.url(quarantined), lake.url(raw), actor, note or "no note")
    return lake.url(raw)


class PartitionNotReady(InputError):
    """``raw/dt=D/_SUCCESS`` is absent: the producer has not finished (or the day was quarantined)."""


def check_partition(settings: Settings, day: dt.date, lake: Lake | None = None) -> Verdict:
    """The validation step: pass, or quarantine the day and raise ``ValidationFailed`` naming the rules."""
    lake = lake or Lake.from_settings(settings)
    verdict = validate_partition(settings, day, lake)
    if verdict.passed:
        return verdict
    if verdict.failures[0].rule == "partition_complete":
        quarantined = lake.partition("quarantine", day)
        reason = lake.url(lake.marker("quarantine", day, REASON))
        hint = f"; it was quarantined: see {reason}" if lake.exists(quarantined) else ""
        raise PartitionNotReady(f"{lake.url(lake.marker('raw', day, SUCCESS))} does not exist{hint}")
    quarantine_partition(lake, day, verdict)
    raise ValidationFailed(verdict)


def mark_validated(lake: Lake, day: dt.date, verdict: dict[str, Any], snapshot: dict[str, Any]) -> dict[str, Any]:
    """Write ``_VALIDATED.json`` last: from here on downstream steps may read the day.

    ``verdict`` is ``Verdict.to_dict()`` (it travels between Airflow tasks as XCom). The marker names the files it
    vouches for (``manifest``); a snapshot whose files DVC hashed differently (a file changed, added or removed
    between the verdict and the snapshot) is refused, and the day stays unvalidated.
    """
    if not verdict.get("manifest"):
        raise PartitionChanged(f"dt={day.isoformat()}: the verdict names no files (a verdict of an older "
                               f"release?): run `mlops validate --date {day.isoformat()}` again")  # fmt: skip
    if snapshot.get("manifest") is not None:  # what DVC hashed (its md5 per file) against what was validated
        try:
            refuse_changes(lake, day, verdict["manifest"], snapshot["manifest"], "the DVC snapshot holds other "
                           "bytes than were validated, the day is not validated")  # fmt: skip
        except PartitionChanged:  # an earlier marker vouches for files that are not there any more: withdrawn
            lake.remove(lake.marker("raw", day, VALIDATED))
            raise
    keys = ("dataset", "partition", "rows", "files", "manifest", "contract", "suite", "data_docs")
    marker = {
        "date": verdict["day"],
        **{key: verdict[key] for key in keys},
        "warnings": verdict.get("warnings", []),  # breaches within tolerance (a verdict of an older release: none)
        "dvc": snapshot,
        "validated_at": dt.datetime.now(dt.UTC).isoformat(),
    }
    publish_json(lake, lake.marker("raw", day, VALIDATED), marker)
    log.info("marked %s validated (DVC revision %s)", verdict["partition"], snapshot.get("revision"))
    return marker


def validate_and_version(settings: Settings, day: dt.date) -> dict[str, Any]:
    """The whole step by hand (``mlops validate``): check, DVC snapshot, marker. Returns the marker."""
    from mlops.versioning import snapshot_partition

    lake = Lake.from_settings(settings)
    verdict = check_partition(settings, day, lake)
    snapshot = snapshot_partition(settings, lake, day, verdict.rows, manifest=verdict.manifest)
    return mark_validated(lake, day, verdict.to_dict(), snapshot.to_dict())
