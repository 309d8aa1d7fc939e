"""What ``mlops dataset init`` guesses from the landed data: the id, event-time and label columns, the positive class.

A guess is made only when the data leaves one answer; otherwise the error names the candidates and the flag that
settles it (``--id-column``, ``--time-column``, ``--label-column``, ``--positive``).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from mlops.data.contract import arrow_column_type

if TYPE_CHECKING:
    import pyarrow as pa

#: Label values read as the positive class when the labels are two strings and ``--positive`` is not given.
POSITIVE_WORDS = ("1", "true", "yes", "y", "positive", "pos")
#: Words that name an event-time column when a table has several timestamps (``created_at``, ``event_ts``).
TIME_WORDS = {"time", "timestamp", "date", "datetime", "ts", "at"}


def only_one(candidates: list[str], what: str, flag: str, hint: str) -> str:
    if len(candidates) == 1:
        return candidates[0]
    found = f"candidates: {candidates}" if candidates else f"no candidate ({hint})"
    raise ValueError(f"cannot tell the {what} column, {found}; pass {flag}")


def _words(name: str) -> list[str]:
    """``customerId`` / ``customer_id`` / ``Customer-ID`` -> ``[customer, id]``."""
    return [w.lower() for w in re.split(r"[^A-Za-z0-9]+|(?<=[a-z0-9])(?=[A-Z])", name) if w]


def is_unique_key(column: pa.ChunkedArray) -> bool:
    import pyarrow.compute as pc

    return column.null_count == 0 and pc.count_distinct(column).as_py() == len(column)


def unique_every_day(raws: Mapping[dt.date, pa.Table], column: str) -> bool:
    return all(is_unique_key(t.column(column)) for t in raws.values() if column in t.column_names)


def guess_id(raws: Mapping[dt.date, pa.Table], labels: pa.Table | None, label_column: str | None) -> str:
    """The id-like column the labels share with the raw table; else the one unique int/string column named like
    an id (unique within each day: the contract's ``unique`` is per partition)."""
    raw = next(iter(raws.values()))

    def key_like(c: str) -> bool:
        return arrow_column_type(raw.schema.field(c).type) in ("int64", "string")

    if labels is not None:
        shared = [c for c in labels.column_names if c in raw.column_names and c != label_column and key_like(c)]
        unique = [c for c in shared if unique_every_day(raws, c)]
        if len(shared) == 1 or len(unique) == 1:
            return shared[0] if len(shared) == 1 else unique[0]
    keys = [c for c in raw.column_names if key_like(c) and unique_every_day(raws, c)]
    named = [c for c in keys if _words(c)[-1:] == ["id"]]
    return only_one(named or keys, "id", "--id-column", "no unique, non-null integer or string column")


def guess_time(raw: pa.Table) -> str:
    """The one timestamp column (a date column only when there is no timestamp), else the one named like a time."""
    import pyarrow as pa

    stamps = [f.name for f in raw.schema if pa.types.is_timestamp(f.type)]
    times = stamps or [f.name for f in raw.schema if pa.types.is_date(f.type)]
    named = [c for c in times if set(_words(c)) & TIME_WORDS or _words(c)[-1:] == ["time"]]
    return only_one(named if len(times) > 1 else times, "event-time", "--time-column", "no timestamp or date column")


def _value_type(column: pa.ChunkedArray) -> pa.DataType:
    import pyarrow as pa

    return column.type.value_type if pa.types.is_dictionary(column.type) else column.type


def _label_tier(column: pa.ChunkedArray) -> int | None:
    """How label-like a column is: 0 bool or 0/1 numbers, 1 two values, 2 anything else; None for a timestamp
    or a date (an outcome's time, never the outcome)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    kind = _value_type(column)
    if pa.types.is_timestamp(kind) or pa.types.is_date(kind):
        return None
    if pa.types.is_boolean(kind):
        return 0
    seen = pc.unique(column.drop_null()).to_pylist()
    if (pa.types.is_integer(kind) or pa.types.is_floating(kind)) and set(seen) <= {0, 1}:
        return 0
    return 1 if len(seen) <= 2 else 2


def _holds(column: pa.ChunkedArray, given: str) -> bool:
    """Whether ``--positive`` names a value of ``column`` (read in its type)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    word, kind = given.strip().lower(), _value_type(column)
    if pa.types.is_boolean(kind):
        return word in ("1", "true", "t", "yes", "y", "0", "false", "f", "no", "n")
    seen = pc.unique(column.drop_null()).to_pylist()
    if pa.types.is_integer(kind) or pa.types.is_floating(kind):
        try:
            return float(word) in seen
        except ValueError:
            return False
    return word in {str(v).strip().lower() for v in seen}


def guess_label(labels: pa.Table, id_column: str, where: str, positive: str | None) -> tuple[str, str]:
    """The label column of a label feed, and how it was told; a feed may carry more (``resolved_at``, ``source``).

    Timestamps are never the label; of the rest, the one column holding ``--positive`` when given, else the only
    one, else the one bool or 0/1 column, else the one two-valued column; else the error names the candidates.
    """
    others = [c for c in labels.column_names if c != id_column]
    tiers = {c: _label_tier(labels.column(c)) for c in others}
    candidates = [c for c in others if tiers[c] is not None]

    def told(column: str, how: str) -> tuple[str, str]:
        rest = [c for c in others if c != column]
        return column, how + (f" (also there: {', '.join(rest)})" if rest else "")

    if positive is not None:
        holding = [c for c in candidates if _holds(labels.column(c), positive)]
        if len(holding) == 1 and len(candidates) > 1:
            return told(holding[0], f"the one column holding {positive!r}")
        candidates = holding or candidates
    if len(candidates) == 1:
        return told(candidates[0], "the only column besides the id" + (" not a timestamp" if len(others) > 1 else ""))
    for tier, what in ((0, "bool or 0/1"), (1, "two-valued")):
        tiered = [c for c in candidates if tiers[c] == tier]
        if len(tiered) == 1:
            return told(tiered[0], f"the one {what} column")
        if tiered:
            candidates = tiered
            break
    skipped = [c for c in others if tiers[c] is None]
    hint = f"{where} has no column besides the id" + (f" but timestamps {skipped}" if skipped else "")
    return only_one(candidates, "label", "--label-column", hint), ""


def guess_positive(values: pa.ChunkedArray, label: str, given: str | None) -> tuple[Any, str]:
    """The positive class in the label column's own type, and how it was chosen."""
    import pyarrow as pa
    import pyarrow.compute as pc

    kind = _value_type(values)
    seen = pc.unique(values.drop_null()).to_pylist()
    if given is not None:
        if pa.types.is_boolean(kind):
            word = given.strip().lower()
            if word not in ("1", "true", "t", "yes", "y", "0", "false", "f", "no", "n"):
                raise ValueError(f"label column {label!r} is bool; --positive {given!r} must be true or false")
            return word in ("1", "true", "t", "yes", "y"), "given"
        if pa.types.is_integer(kind) or pa.types.is_floating(kind):
            try:
                number = float(given)
            except ValueError:
                raise ValueError(f"label column {label!r} is numeric ({kind}); --positive {given!r} must be a number "
                                 f"(values {sorted(seen)[:20]})") from None  # fmt: skip
            return (int(number) if number.is_integer() else number), "given"
        return given, "given"
    if pa.types.is_boolean(kind):
        return True, "bool label"
    if (pa.types.is_integer(kind) or pa.types.is_floating(kind)) and set(seen) <= {0, 1}:
        return 1, "0/1 label"
    if len(seen) <= 2:
        words = [v for v in seen if str(v).strip().lower() in POSITIVE_WORDS]
        if len(words) == 1:
            return words[0], f"the one value of {sorted(map(str, seen))} that reads as positive"
    shown = sorted(map(str, seen))[:20]
    raise ValueError(f"cannot tell the positive class of label column {label!r} (values {shown}); pass --positive "
                     "(with more than two values, that class is trained against all the others)")  # fmt: skip
