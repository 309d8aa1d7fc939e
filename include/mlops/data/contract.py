"""The data contract: a versioned, reviewed description of a raw partition, from which the GX suite is built.

A contract is YAML in the repo (``include/contracts/<dataset>.yaml``). ``mlops contract infer`` (and
``mlops dataset init``) drafts one from a real partition; a person reviews it. Column types are
families, not storage widths, because real tables differ in how they store the same thing:
``int64`` is any integer width, ``float64`` any float width, ``timestamp`` any unit (s, ms, us, ns),
with or without a time zone (and dates). The validation reader normalises each family to one type.

Real producers grow categories and have rare nulls, so a rule may carry a tolerance the way GX's ``mostly``
does: unknown categories up to ``max_unknown_fraction``, and nulls in a ``nullable: false`` column up to
``max_null_fraction``, pass with a WARNING recorded in the verdict; beyond it the day fails as always.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

if TYPE_CHECKING:
    import pyarrow as pa

    from mlops.config import DatasetSpec

ColumnType = Literal["int64", "float64", "string", "bool", "timestamp"]
#: String columns with at most this many distinct values get an ``allowed`` list when inferred; more
#: distinct values are marked ``high_cardinality`` (values not checked, hashed into one model feature).
MAX_INFERRED_CATEGORIES = 100
#: A string column whose values are mostly distinct on the drafted rows (more than this share of them, and more
#: than ``MIN_LISTED`` values) is high-cardinality too, however few rows there are: a day of 130 country-years
#: holds 90 of 142 countries, and a list of 90 would reject a third of the next day's rows.
MOSTLY_DISTINCT, MIN_LISTED = 0.5, 20
#: Inferred numeric ranges are physical limits, not the day's spread: this many times the largest observed
#: magnitude (at least 1) on each side, rounded outwards; a column never negative keeps min 0 (always
#: negative: max 0). Heavy tails and drift pass (drift is the monitor's business); sign errors, unit
#: changes and sentinels like -999 or 99999 do not. Measured: 50 % of the span let real tables (scikit-learn's
#: breast-cancer areas, digit pixels) fail on days after the one inferred from.
RANGE_FACTOR = 10
#: Inferred null fractions: twice the observed fraction but only halfway to 1 (so "entirely null" still
#: fails), and at least the observed one plus this.
NULL_MARGIN = 0.05
#: Inferred absolute row-count floor: this fraction of the partition's rows (the ratio band does the rest).
ROW_COUNT_FLOOR = 0.1
#: Drafted event-time tolerance: events this many hours before or after the partition's UTC day are still its own
#: (clock skew, a producer that closes the day late); a day of 2099 or of last week is not.
EVENT_TIME_TOLERANCE_HOURS = 1.0
#: Drafted tolerances (non-key columns only; the id, event-time and label columns stay strict). A draft sees one
#: day, or a few: a category on one row in a thousand that day lacked, or the first rare nulls of a column that
#: had none, are what real producers deliver on their clean later days, not corruption. Measured on real tables:
#: new categories on ~0.1 % of rows, 0.1-2.7 % nulls in string columns without any on the drafted day. Within the
#: tolerance the day passes with a warning (the reviewer sees it); a new category on 30 % of rows, or a column
#: gone null, still fails.
#: Rows with a value not in ``allowed``, as a fraction of the partition's non-null rows, on drafted string columns.
#: Measured on public tables laid out as daily feeds: a real class first seen after the drafted day (RAND's "poor"
#: self-rated health) is 1.5 % of a day's rows, 2.2 % on some days; a broken feed is tens of percent.
UNKNOWN_TOLERANCE = 0.03
#: Nulls in drafted columns that had none (``nullable: false``): tolerated up to this fraction, with a warning.
NULL_TOLERANCE = 0.05


class ColumnRule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    type: ColumnType
    #: ``true``: nulls are expected, up to ``max_null_fraction`` (0 -> 0.5). ``false``: nulls are unexpected; up to
    #: ``max_null_fraction`` are tolerated with a warning (``not_null``), more fail; 0 (the default): any null fails.
    nullable: bool = False
    max_null_fraction: float = Field(
        0.0, ge=0.0, le=1.0,
        description="nullable: the nulls allowed (0 -> 0.5); not nullable: the nulls tolerated with a warning",
    )  # fmt: skip
    min: float | None = None
    max: float | None = None
    allowed: list[str] | None = None
    #: Only with ``allowed``: rows whose value is not listed, up to this fraction of the non-null rows, pass with a
    #: warning naming them (a producer's new category; the model sees it as missing); more fail ``allowed_values``.
    max_unknown_fraction: float = Field(0.0, ge=0.0, le=1.0)
    #: A string column with too many values to list: nulls and type are checked, values are not, and a
    #: model feature hashes it (``mlops.features``) instead of indexing a category list.
    high_cardinality: bool = False
    unique: bool = False

    @model_validator(mode="after")
    def _consistent(self) -> ColumnRule:
        if self.nullable and self.max_null_fraction == 0.0:
            # A nullable column may not be entirely null unless the contract says so explicitly.
            object.__setattr__(self, "max_null_fraction", 0.5)
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min} > max {self.max}")
        if (self.min is not None or self.max is not None) and self.type not in ("int64", "float64"):
            raise ValueError(f"min/max apply to numeric columns, not {self.type}")
        if self.allowed is not None and self.type != "string":
            raise ValueError("allowed values apply to string columns")
        if self.max_unknown_fraction and self.allowed is None:
            raise ValueError("max_unknown_fraction applies to columns with `allowed` values")
        if self.high_cardinality and (self.type != "string" or self.allowed is not None):
            raise ValueError("high_cardinality applies to string columns without `allowed` values")
        return self


class RowCountRule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    min: int = Field(1, ge=0)
    max: int | None = Field(None, ge=1)
    #: Relative to the median row count of recent validated days (when there is any history).
    min_ratio: float = Field(0.5, ge=0.0)
    max_ratio: float = Field(2.0, ge=1.0)


class Contract(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    version: str
    description: str = ""
    extra_columns: Literal["forbid", "allow"] = "forbid"
    row_count: RowCountRule = RowCountRule()
    #: The event-time column (``dataset.time_column``) must fall within the partition's UTC day, widened by this
    #: many hours each side; absent (null): not checked. ``mlops dataset init`` drafts it.
    event_time_tolerance_hours: float | None = Field(None, ge=0.0, le=24.0 * 366)
    columns: dict[str, ColumnRule]
    sha256: str = Field("", exclude=True, description="hash of the contract file, recorded with verdicts")

    @classmethod
    def load(cls, path: Path) -> Contract:
        try:
            text = path.read_text()
        except FileNotFoundError:
            raise ValueError(
                f"data contract {path} does not exist; draft one with `mlops contract infer --date D`"
            ) from None
        try:
            contract = cls.model_validate(yaml.safe_load(text))
        except (ValidationError, yaml.YAMLError) as exc:
            raise ValueError(f"data contract {path} is invalid: {exc}") from None
        return contract.model_copy(update={"sha256": hashlib.sha256(text.encode()).hexdigest()})

    def check_dataset(self, dataset: DatasetSpec) -> None:
        """The config's id/time/feature columns must exist in the contract (fails before any data is read)."""
        wanted = [dataset.id_column, dataset.time_column, *dataset.categorical]
        if dataset.features != "auto":
            wanted += dataset.features
        missing = sorted(set(wanted) - set(self.columns))
        if missing:
            raise ValueError(
                f"contract {self.name} v{self.version} lacks columns named in the dataset config: {missing}"
            )

    def event_time_window(self, day: dt.date) -> tuple[dt.datetime, dt.datetime] | None:
        """``[start of day - tolerance, end of day + tolerance]`` (UTC) for ``raw/dt=D``, None when not checked."""
        if self.event_time_tolerance_hours is None:
            return None
        start = dt.datetime.combine(day, dt.time(), dt.UTC)
        tolerance = dt.timedelta(hours=self.event_time_tolerance_hours)
        return start - tolerance, start + dt.timedelta(days=1) + tolerance

    def to_yaml(self) -> str:
        body = self.model_dump(mode="json", exclude_none=True)
        for rule in body["columns"].values():
            for key, default in (("nullable", False), ("unique", False), ("max_null_fraction", 0.0),
                                 ("high_cardinality", False), ("max_unknown_fraction", 0.0)):  # fmt: skip
                if rule.get(key) == default:
                    rule.pop(key)
            for key in ("min", "max"):
                if rule["type"] == "int64" and key in rule:
                    rule[key] = int(rule[key])
        return yaml.safe_dump(body, sort_keys=False, width=110)


def arrow_column_type(arrow_type: pa.DataType) -> str:
    """The contract type name of an Arrow type (``unsupported:<type>`` when the contract has none)."""
    import pyarrow as pa

    if pa.types.is_integer(arrow_type):
        return "int64"
    if pa.types.is_floating(arrow_type):
        return "float64"
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return "string"
    if pa.types.is_boolean(arrow_type):
        return "bool"
    if pa.types.is_timestamp(arrow_type) or pa.types.is_date(arrow_type):
        return "timestamp"
    if pa.types.is_string_view(arrow_type):
        return "string"
    if pa.types.is_dictionary(arrow_type):
        return arrow_column_type(arrow_type.value_type)
    return f"unsupported:{arrow_type}"


def _widen(low: float, high: float, integer: bool) -> tuple[float, float]:
    """The observed range widened to physical limits (``RANGE_FACTOR``); always contains the observed values."""
    scale = RANGE_FACTOR * max(abs(low), abs(high), 1.0)
    low_bound = 0.0 if low >= 0 else -_round_up(scale)
    high_bound = 0.0 if high < 0 else _round_up(scale)
    if integer:
        low_bound, high_bound = float(math.floor(low_bound)), float(math.ceil(high_bound))
    return min(low_bound, low), max(high_bound, high)


def _round_up(value: float) -> float:
    """``value`` rounded up to two significant digits (23980 -> 24000), so bounds read like decisions."""
    step = 10.0 ** (math.floor(math.log10(value)) - 1)
    return math.ceil(value / step) * step


def missing_count(column: pa.ChunkedArray) -> int:
    """Nulls, plus NaN in float columns: pandas (and so GX) counts both as missing."""
    import pyarrow as pa
    import pyarrow.compute as pc

    missing = column.null_count
    if pa.types.is_floating(column.type) and len(column) > missing:
        missing += int(pc.sum(pc.is_nan(column.drop_null())).as_py() or 0)
    return missing


def null_allowance(fraction: float) -> float:
    """A ``max_null_fraction`` for an observed null fraction (``NULL_MARGIN``), rounded up to 3 decimals."""
    widened = max(min(2 * fraction, (1 + fraction) / 2), fraction + NULL_MARGIN)
    return min(1.0, math.ceil(widened * 1000) / 1000)


def hours_beyond_day(column: pa.ChunkedArray, day: dt.date) -> float:
    """How far a day's event times reach beyond its UTC day, in hours (0 when all are within it, or all null)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    bounds = pc.min_max(pc.cast(column, pa.timestamp("us", tz="UTC"), safe=False))  # any unit, zone or a date
    low, high = bounds["min"].as_py(), bounds["max"].as_py()
    if low is None:
        return 0.0
    start = dt.datetime.combine(day, dt.time(), dt.UTC)
    return max((start - low).total_seconds(), (high - start - dt.timedelta(days=1)).total_seconds(), 0.0) / 3600


def event_time_tolerance(column: pa.ChunkedArray, day: dt.date) -> float:
    """The tolerance a draft gets: :data:`EVENT_TIME_TOLERANCE_HOURS`, or the whole hours the day's own event
    times reach beyond its UTC day (so the draft accepts the day it came from; the review shows it)."""
    return max(EVENT_TIME_TOLERANCE_HOURS, float(math.ceil(hours_beyond_day(column, day))))


def infer_contract(table: pa.Table | Mapping[dt.date, pa.Table], dataset: DatasetSpec, version: str = "1.0.0",
                   source: str = "", day: dt.date | None = None) -> Contract:  # fmt: skip
    """Draft a contract from one partition, or several (day -> partition); a person reviews it before committing.

    The draft always accepts the partitions it came from: ranges, null fractions and the row-count floor
    are the observed ones widened by the margins above; every string column but the id gets ``allowed``
    (few values) or ``high_cardinality`` (many). Non-key columns get tolerances (:data:`UNKNOWN_TOLERANCE`
    for unknown categories, :data:`NULL_TOLERANCE` for nulls in a column that had none): a clean later day passes
    with warnings; key columns (id, event time, label) stay strict. Given the partition's ``day`` (or a mapping,
    whose keys are the days), the event-time rule is drafted (:func:`event_time_tolerance`, the widest over the
    days). Several days are drafted from all their rows together (a column absent on a day is nullable); the
    row-count floor is that of the smallest day. It fails, naming the column, on what no contract can describe:
    a column type contracts do not know, or an id column that is absent or not unique within a partition.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    where = f" in {source}" if source else ""
    days: dict[dt.date | None, pa.Table] = dict(table) if isinstance(table, Mapping) else {day: table}
    if not days:
        raise ValueError(f"no partitions to draft a contract from{where}")
    for when, part in days.items():
        part_where = where + (f" (dt={when.isoformat()})" if isinstance(table, Mapping) and when else "")
        if dataset.id_column not in part.column_names:
            raise ValueError(f"id column {dataset.id_column!r} (dataset.id_column) is not in the partition"
                             f"{part_where}; columns: {part.column_names}")  # fmt: skip
        ids = part.column(dataset.id_column)
        if ids.null_count or pc.count_distinct(ids).as_py() != part.num_rows:
            raise ValueError(f"id column {dataset.id_column!r}{part_where} is not unique and non-null: scores and "
                             "labels are joined on it, so every row needs its own id")  # fmt: skip
    if len(days) == 1:
        rows = next(iter(days.values()))
    else:
        try:
            rows = pa.concat_tables(list(days.values()), promote_options="default")
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise ValueError(f"the partitions{where} do not share one schema: {str(exc).splitlines()[0]}") from None
    keys = {dataset.id_column, dataset.time_column, dataset.label.column}
    columns: dict[str, ColumnRule] = {}
    for field in rows.schema:
        column = rows.column(field.name)
        kind = arrow_column_type(field.type)
        if kind.startswith("unsupported:"):
            raise ValueError(f"column {field.name!r}{where} has type {field.type}, which contracts do not support")
        missing = missing_count(column)
        key = field.name in keys
        rule: dict[str, Any] = {"type": kind, "nullable": missing > 0}
        if missing:
            rule["max_null_fraction"] = null_allowance(missing / rows.num_rows)
        elif not key:
            rule["max_null_fraction"] = NULL_TOLERANCE  # nulls unexpected: a few pass with a warning
        if field.name == dataset.id_column:
            rule["unique"] = True
        elif kind in ("int64", "float64") and len(column) > missing:
            bounds = pc.min_max(column)
            rule["min"], rule["max"] = _widen(bounds["min"].as_py(), bounds["max"].as_py(), kind == "int64")
        elif kind == "string":
            values = pc.unique(column.drop_null())
            present = len(column) - column.null_count
            mostly_distinct = len(values) > MIN_LISTED and len(values) > MOSTLY_DISTINCT * present
            if len(values) <= MAX_INFERRED_CATEGORIES and not mostly_distinct:
                rule["allowed"] = sorted(str(value) for value in values.to_pylist())
                if not key:
                    rule["max_unknown_fraction"] = UNKNOWN_TOLERANCE
            else:
                rule["high_cardinality"] = True
        columns[field.name] = ColumnRule(**rule)
    drafted = f"Drafted from {rows.num_rows} rows{where}"
    if isinstance(table, Mapping):
        first, last = min(days), max(days)  # type: ignore[type-var]
        drafted = f"Drafted from {rows.num_rows} rows of {len(days)} days ({first} to {last}){where}"
    tolerance = None
    time_rule = columns.get(dataset.time_column)
    if time_rule is not None and time_rule.type == "timestamp":
        dated = [(when, part) for when, part in days.items() if when and dataset.time_column in part.column_names]
        tolerance = max((event_time_tolerance(part.column(dataset.time_column), when) for when, part in dated),
                        default=None)  # fmt: skip
    return Contract(
        name=dataset.name,
        version=version,
        description=f"{drafted}; ranges, null fractions and the row-count floor are the observed ones widened "
        "by stated margins, with tolerances for rare unknown categories and nulls on non-key columns "
        "(mlops.data.contract). Review before use.",
        row_count=RowCountRule(min=max(1, math.floor(min(p.num_rows for p in days.values()) * ROW_COUNT_FLOOR))),
        event_time_tolerance_hours=tolerance,
        columns=columns,
    )
