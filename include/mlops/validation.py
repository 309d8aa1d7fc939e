"""Validate a raw day partition against its data contract, then mark it validated or quarantine it.

Structural faults GX cannot see (no ``_SUCCESS``, no files, unreadable parquet) are checked first, by
reading the files; then the contract's Great Expectations suite (``mlops.gx_suite``) runs and its
failed expectations become :class:`Failure` lines that name the file, column and rule (``mlops.validation_verdict``
reads GX's results; a value from the data is quoted short there, so one huge cell never becomes a huge reason).

A breach within a rule's tolerance (rare unknown categories, rare nulls in a ``nullable: false`` column: see
``mlops.data.contract``) is a *warning*: the day passes, and ``Verdict.warnings`` (then ``_VALIDATED.json``)
records it in the same shape as a failure. Warnings never quarantine; failures do.

Transient is not invalid: only a contract breach quarantines a day. A marker, folder or file that cannot be
*reached* (an I/O error on its stat, listing, open or read, a reset connection, an S3 timeout: the lake never
reads one as "absent") is retried in place and then raises :class:`LakeReadError`, an
:class:`~mlops.errors.InfrastructureError` that Airflow retries with backoff; bytes that were fetched but
are not parquet are a breach (``readable_parquet``). Quarantine and ``mlops requeue --date D`` are
``mlops.quarantine``.

A verdict names what it validated: each file's size, md5 and sha256 of the bytes it read (``Verdict.manifest``,
then ``_VALIDATED.json``); the DVC snapshot and scoring refuse a day whose files differ from it.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from statistics import median
from typing import TYPE_CHECKING, Any

from mlops.data.contract import Contract, arrow_column_type
from mlops.data.lake import REASON, SUCCESS, VALIDATED, Lake, LakeIOError, PartitionChanged, file_digest, refuse_changes
from mlops.data.publish import publish_json
from mlops.errors import InfrastructureError, InputError
from mlops.gx_suite import RULES, GxRunner, build_suite, plain, row_level_twin, to_pandas
from mlops.quarantine import quarantine_partition
from mlops.validation_verdict import (
    Failure,
    ValidationFailed,
    Verdict,
    column_set_failures,
    failure_from_result,
    null_warnings,
    shorten,
    tolerated_unknowns,
    unknown_values,
)

if TYPE_CHECKING:
    import pyarrow as pa

    from mlops.config import Settings

#: ``Failure``, ``Verdict`` and ``ValidationFailed`` live in ``mlops.validation_verdict``; named here too, as what
#: the step returns and raises.
__all__ = [
    "Failure",
    "LakeReadError",
    "PartitionNotReady",
    "ValidationFailed",
    "Verdict",
    "check_partition",
    "expected_row_range",
    "mark_validated",
    "validate_and_version",
    "validate_partition",
]

log = logging.getLogger(__name__)
#: Pauses between attempts to fetch a file of a day before the step gives up (then Airflow retries it).
READ_RETRY_SECONDS = (0.5, 2.0)


class LakeReadError(InfrastructureError):
    """A file of the day could not be fetched (I/O, network): retried, never a reason to quarantine."""


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
            for failure in column_set_failures(config.kwargs["column_set"], columns):
                failure.file = single_file
                verdict.failures.append(failure)
            continue
        if config.type == "expect_column_values_to_be_in_set":  # beyond the column's unknown tolerance
            failure = unknown_values(item, contract)
        else:
            failure = failure_from_result(item, contract, verdict.rows)
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
        tolerated = tolerated_unknowns(passed, contract, mistyped)
        for warning in tolerated + null_warnings(passed, contract, verdict.rows, mistyped):
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
