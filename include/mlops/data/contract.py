"""The data contract: a versioned, reviewed description of a raw partition, from which the GX suite is built.

A contract is YAML in the repo (``include/contracts/<dataset>.yaml``). ``mlops contract infer`` drafts
one from a real partition; a person reviews it. Column types are Arrow-level names so the contract
reads the same whatever engine checks it.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

if TYPE_CHECKING:
    import pyarrow as pa

    from mlops.config import DatasetSpec

ColumnType = Literal["int64", "float64", "string", "bool", "timestamp"]
#: Categorical columns with at most this many distinct values get an ``allowed`` list when inferred.
MAX_INFERRED_CATEGORIES = 100


class ColumnRule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    type: ColumnType
    nullable: bool = False
    max_null_fraction: float = Field(0.0, ge=0.0, le=1.0, description="only for nullable columns")
    min: float | None = None
    max: float | None = None
    allowed: list[str] | None = None
    unique: bool = False

    @model_validator(mode="after")
    def _consistent(self) -> ColumnRule:
        if not self.nullable and self.max_null_fraction:
            raise ValueError("max_null_fraction needs nullable: true")
        if self.nullable and self.max_null_fraction == 0.0:
            # A nullable column may not be entirely null unless the contract says so explicitly.
            object.__setattr__(self, "max_null_fraction", 0.5)
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min} > max {self.max}")
        if (self.min is not None or self.max is not None) and self.type not in ("int64", "float64"):
            raise ValueError(f"min/max apply to numeric columns, not {self.type}")
        if self.allowed is not None and self.type != "string":
            raise ValueError("allowed values apply to string columns")
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

    def to_yaml(self) -> str:
        body = self.model_dump(mode="json", exclude_none=True)
        for rule in body["columns"].values():
            for key, default in (("nullable", False), ("unique", False), ("max_null_fraction", 0.0)):
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
    if pa.types.is_timestamp(arrow_type):
        return "timestamp"
    if pa.types.is_dictionary(arrow_type):
        return arrow_column_type(arrow_type.value_type)
    return f"unsupported:{arrow_type}"


def _widen(low: float, high: float, integer: bool) -> tuple[float, float]:
    """Observed range plus a margin, so normal day-to-day variation passes and gross errors don't."""
    span = high - low
    margin = max(span * 0.5, abs(high) * 0.5, 1.0)
    low_bound = 0.0 if low >= 0 else low - margin
    high_bound = high + margin
    if integer:
        return float(math.floor(low_bound)), float(math.ceil(high_bound))
    return float(f"{low_bound:.6g}"), float(f"{high_bound:.6g}")


def infer_contract(table: pa.Table, dataset: DatasetSpec, version: str = "1.0.0") -> Contract:
    """Draft a contract from one partition; a person reviews ranges and categories before it is committed."""
    import pyarrow.compute as pc

    columns: dict[str, ColumnRule] = {}
    for field in table.schema:
        column = table.column(field.name)
        kind = arrow_column_type(field.type)
        if kind.startswith("unsupported:"):
            raise ValueError(f"column {field.name!r} has type {field.type}, which contracts do not support")
        rule: dict[str, Any] = {"type": kind, "nullable": column.null_count > 0}
        if field.name == dataset.id_column:
            rule["unique"] = True
        if kind in ("int64", "float64") and field.name != dataset.id_column and len(column) > column.null_count:
            bounds = pc.min_max(column)
            rule["min"], rule["max"] = _widen(bounds["min"].as_py(), bounds["max"].as_py(), kind == "int64")
        if kind == "string" and (field.name in dataset.categorical or field.name in dataset.slices):
            values = pc.unique(column.drop_null()).to_pylist()
            if len(values) <= MAX_INFERRED_CATEGORIES:
                rule["allowed"] = sorted(values)
        columns[field.name] = ColumnRule(**rule)
    return Contract(
        name=dataset.name,
        version=version,
        description=f"Drafted by `mlops contract infer` from {table.num_rows} rows; review before use.",
        columns=columns,
    )
