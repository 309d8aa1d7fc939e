"""Corrupt a landed raw partition on purpose: the bad inputs the contract must catch.

Used by the demo (one deliberately corrupted day), the tests (a verdict per fault) and the
validation benchmark (same verdicts as pyarrow and as the naive row-level GX suite).
Each fault says which rule and column the validator must name.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from mlops.data.lake import Lake


@dataclass(frozen=True)
class Fault:
    name: str
    column: str | None  # the column the error must name (None: a table/file-level rule)
    rule: str  # the rule the error must name
    description: str


FAULTS: dict[str, Fault] = {f.name: f for f in (
    Fault("missing_column", "device_risk_score", "column_present", "a contract column is dropped"),
    Fault("extra_column", "debug_flag", "no_extra_columns", "a column the contract does not know is added"),
    Fault("type_change", "amount", "type", "a numeric column arrives as strings"),
    Fault("all_null", "country", "not_null", "a required column is entirely null"),
    Fault("out_of_range", "amount", "min", "negative amounts on a few rows"),
    Fault("unknown_category", "channel", "allowed_values", "a category the contract does not allow"),
    Fault("duplicate_ids", "transaction_id", "unique", "some transaction ids appear twice"),
    Fault("empty", None, "row_count", "the partition has a file with zero rows"),
    Fault("zero_byte", None, "readable_parquet", "the data file is zero bytes"),
    Fault("truncated", None, "readable_parquet", "the data file is cut off mid-write"),
)}  # fmt: skip


def corrupt_table(table: pa.Table, fault: str, id_column: str = "transaction_id") -> pa.Table:
    """Return ``table`` with a table-level fault applied (see ``FAULTS``)."""
    spec = FAULTS[fault]
    rows = table.num_rows
    every = pa.array(np.arange(rows) % 97 == 0)  # ~1 % of rows, deterministic
    if fault == "missing_column":
        return table.drop_columns([spec.column])
    if fault == "extra_column":
        return table.append_column(spec.column, pa.array([1] * rows, pa.int64()))
    if fault == "type_change":
        return table.set_column(
            table.schema.get_field_index(spec.column), spec.column, pc.cast(table[spec.column], pa.string())
        )
    if fault == "all_null":
        index = table.schema.get_field_index(spec.column)
        return table.set_column(index, spec.column, pa.nulls(rows, table.schema.field(index).type))
    if fault == "out_of_range":
        index = table.schema.get_field_index(spec.column)
        return table.set_column(index, spec.column, pc.if_else(every, -50.0, table[spec.column]))
    if fault == "unknown_category":
        index = table.schema.get_field_index(spec.column)
        return table.set_column(index, spec.column, pc.if_else(every, "telepathy", table[spec.column]))
    if fault == "duplicate_ids":
        index = table.schema.get_field_index(id_column)
        shifted = pc.if_else(every, pc.add(table[id_column], 1), table[id_column])
        return table.set_column(index, id_column, shifted)
    if fault == "empty":
        return table.slice(0, 0)
    raise ValueError(f"{fault!r} is a file-level fault; use inject_fault")


#: Breaks of one named column of any table (what a broken producer does to a real feed) -> the rule that catches it.
#: A drafted contract tolerates a new category on a few rows and rare nulls; it must still catch each of these.
COLUMN_FAULTS: dict[str, str] = {
    "unit_change": "max",  # a numeric column delivered in other units (x1000)
    "type_change": "type",  # a numeric column delivered as text
    "renamed": "column_present",  # the column renamed upstream (`<name>_v2`)
    "negatives": "min",  # negatives on every 50th row of a column that never had any
    "all_null": "not_null",  # the column entirely null
    "unknown_flood": "allowed_values",  # a third of a category column's rows hold a value never seen
}


def corrupt_column(table: pa.Table, fault: str, column: str) -> pa.Table:
    """``table`` with ``column`` broken by ``fault`` (:data:`COLUMN_FAULTS`), whatever the table."""
    index, rows = table.schema.get_field_index(column), table.num_rows
    values = table[column]
    if fault == "unit_change":
        return table.set_column(index, column, pc.multiply(pc.cast(values, pa.float64()), 1000.0))
    if fault == "type_change":
        return table.set_column(index, column, pc.cast(values, pa.string()))
    if fault == "renamed":
        return table.rename_columns([f"{name}_v2" if name == column else name for name in table.column_names])
    if fault == "negatives":
        every = pa.array(np.arange(rows) % 50 == 0)
        return table.set_column(index, column, pc.if_else(every, pc.negate(values), values))
    if fault == "all_null":
        return table.set_column(index, column, pa.nulls(rows, values.type))
    if fault == "unknown_flood":
        every = pa.array(np.arange(rows) % 3 == 0)
        return table.set_column(index, column, pc.if_else(every, "ZZ-UNKNOWN", values))
    raise ValueError(f"unknown column fault {fault!r}; choose one of {sorted(COLUMN_FAULTS)}")


def inject_fault(lake: Lake, day: dt.date, fault: str, id_column: str = "transaction_id") -> Fault:
    """Rewrite the data file of ``raw/dt=D`` with ``fault``; the partition stays marked complete."""
    if fault not in FAULTS:
        raise ValueError(f"unknown fault {fault!r}; choose one of {sorted(FAULTS)}")
    files = lake.data_files(lake.partition("raw", day))
    if not files:
        raise FileNotFoundError(f"{lake.url(lake.partition('raw', day))} has no data file to corrupt")
    path = files[0]
    with lake.fs.open(path, "rb") as handle:
        data = handle.read()
    if fault == "zero_byte":
        corrupted = b""
    elif fault == "truncated":
        corrupted = data[: len(data) // 2]
    else:
        table = corrupt_table(pq.read_table(pa.BufferReader(data)), fault, id_column)
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink)
        corrupted = sink.getvalue().to_pybytes()
    with lake.fs.open(path, "wb") as handle:
        handle.write(corrupted)
    return FAULTS[fault]
