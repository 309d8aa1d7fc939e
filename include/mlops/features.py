"""Feature assembly: the ONE function that turns raw rows into the model's input, for training and scoring.

Features come from config (``dataset.features``: ``auto`` = every contract column the model can use,
i.e. all but the id, the event time, the label and other timestamps) and the data contract. Categorical
columns (``allowed`` in the contract) become their index in the allowed values (unknown values become
NaN, which XGBoost routes down the learned default branch); high-cardinality strings
(``high_cardinality: true``) become a stable hash of the value, which needs no list and never fails on a
new value. Nulls in any column become NaN (missing), never an error. So the matrix is plain float32:
``inplace_predict`` on it runs at raw XGBoost speed.

Labels are the target, assembled here too: :func:`binary_labels` reads ``dataset.label.positive`` in the
label column's own type (0/1, bool or strings), for training and for monitoring alike.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

if TYPE_CHECKING:
    from mlops.config import Settings
    from mlops.data.contract import Contract

#: Hash codes of high-cardinality strings lie in [0, 2**24): exact in float32.
HASH_BITS = 24
_TRUE = {"1", "true", "t", "yes", "y"}
_FALSE = {"0", "false", "f", "no", "n"}


@dataclass(frozen=True)
class FeatureSpec:
    names: tuple[str, ...]
    categories: dict[str, tuple[str, ...]]  # categorical feature -> its codes' values, in order
    hashed: tuple[str, ...] = ()  # high-cardinality string features, hashed (see ``hash_codes``)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        if not self.hashed:
            del data["hashed"]  # specs without hashed features read and compare as before
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeatureSpec:
        categories = {k: tuple(v) for k, v in data["categories"].items()}
        return cls(tuple(data["names"]), categories, tuple(data.get("hashed", ())))


def feature_spec(settings: Settings, contract: Contract) -> FeatureSpec:
    """Which columns feed the model, and how each string column is encoded."""
    dataset = settings.dataset
    excluded = {dataset.id_column, dataset.time_column, dataset.label.column}
    if dataset.features == "auto":
        names = [c for c, rule in contract.columns.items() if c not in excluded and rule.type != "timestamp"]
    else:
        names = list(dataset.features)
    unknown = [n for n in names if n not in contract.columns]
    if unknown:
        raise ValueError(f"dataset.features names columns that the contract {contract.name} lacks: {unknown}")
    categories: dict[str, tuple[str, ...]] = {}
    hashed: list[str] = []
    for name in names:
        rule = contract.columns[name]
        if rule.type == "string":
            if rule.allowed:
                categories[name] = tuple(rule.allowed)
            elif rule.high_cardinality:
                hashed.append(name)
            else:
                raise ValueError(
                    f"string feature {name!r} needs `allowed` values (a category list) or `high_cardinality: true` "
                    f"(hashed) in the contract {contract.name}"
                )
        elif rule.type not in ("int64", "float64", "bool"):
            raise ValueError(f"feature {name!r} has type {rule.type}, which the model cannot use")
    return FeatureSpec(tuple(names), categories, tuple(hashed))


def build_matrix(data: pa.Table | pa.RecordBatch, spec: FeatureSpec) -> np.ndarray:
    """Rows x features, float32, C-contiguous. Missing columns fail loudly, naming them."""
    missing = [name for name in spec.names if name not in data.schema.names]
    if missing:
        raise KeyError(f"feature columns missing from the data: {missing}")
    matrix = np.empty((data.num_rows, len(spec.names)), dtype=np.float32)
    for j, name in enumerate(spec.names):
        column = data.column(name)
        if name in spec.categories:
            column = pc.index_in(_strings(column), value_set=pa.array(spec.categories[name], pa.string()))
        elif name in spec.hashed:
            column = hash_codes(column)
        matrix[:, j] = column.to_numpy(zero_copy_only=False) if column.null_count == 0 else _with_nan(column)
    return matrix


def hash_codes(column: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """A stable code in [0, 2**HASH_BITS) per string value (nulls stay null): the same in every process.

    Each distinct value is hashed once (blake2b), then rows take their value's code.
    """
    column = _strings(column)
    values = pc.unique(column).drop_null()
    codes = [int.from_bytes(hashlib.blake2b(v.encode(), digest_size=HASH_BITS // 8).digest(), "little")
             for v in values.to_pylist()]  # fmt: skip
    return pc.take(pa.array(codes, pa.float64()), pc.index_in(column, value_set=values))


def binary_labels(column: pa.Array | pa.ChunkedArray, positive: int | str | bool, name: str = "label") -> np.ndarray:
    """1.0 where the label is ``dataset.label.positive``, else 0.0, with ``positive`` read in the column's type.

    Labels may be 0/1 (any integer or float width), bool (``positive: true``, ``1`` or ``"yes"``), or strings
    (``positive: "yes"``; a string column with a non-string ``positive`` is refused, since an unquoted YAML
    ``yes`` arrives as ``1``). Rows without a label must be dropped first (:func:`labelled_rows`).
    """
    kind = column.type.value_type if pa.types.is_dictionary(column.type) else column.type
    if column.null_count:
        raise ValueError(f"label column {name!r} has {column.null_count} null label(s): drop them first")
    values = column.to_numpy(zero_copy_only=False)
    if pa.types.is_boolean(kind):
        text = str(positive).strip().lower()
        if text not in _TRUE | _FALSE:
            raise ValueError(
                f"label column {name!r} is bool; dataset.label.positive {positive!r} must be true or false"
            )
        return (values == (text in _TRUE)).astype(np.float32)
    if pa.types.is_integer(kind) or pa.types.is_floating(kind):
        try:
            number = float(positive)
        except ValueError:
            raise ValueError(f"label column {name!r} is numeric ({kind}); dataset.label.positive {positive!r} "
                             "must be a number") from None  # fmt: skip
        return (values.astype(np.float64) == number).astype(np.float32)
    if pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind):
        if not isinstance(positive, str):
            seen = sorted(map(str, pc.unique(_strings(column)).to_pylist()))[:10]
            raise ValueError(f"label column {name!r} holds strings (e.g. {seen}); dataset.label.positive must be "
                             f"one of them, quoted in YAML (positive: \"yes\"), not {positive!r}")  # fmt: skip
        return (values.astype(object) == positive).astype(np.float32)
    raise ValueError(f"label column {name!r} has type {kind}; labels must be 0/1, bool or strings")


def labelled_rows(labels: pa.Table, id_column: str, label_column: str, id_type: pa.DataType) -> pa.Table:
    """The id and label columns of landed labels, rows without a label dropped, ids in the raw data's type.

    A null label (or NaN in a float label column) means "not labelled (yet)", like a row whose label has not
    landed; ids are cast so an int32 label feed joins an int64 raw table. Other columns of the feed are dropped.
    """
    for column in (id_column, label_column):
        if column not in labels.column_names:
            raise ValueError(f"the labels lack column {column!r} (columns: {labels.column_names})")
    values = labels.column(label_column)
    known = pc.is_valid(values)
    if pa.types.is_floating(values.type):
        known = pc.and_(known, pc.invert(pc.is_nan(values)))
    table = labels.select([id_column, label_column]).filter(known)
    if table.schema.field(id_column).type != id_type:
        table = table.set_column(0, id_column, pc.cast(table.column(id_column), id_type))
    return table


def _strings(column: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """Dictionary-encoded, large or view strings as plain strings (what the value sets are built of)."""
    return column if column.type == pa.string() else pc.cast(column, pa.string())


def _with_nan(column: pa.Array | pa.ChunkedArray) -> np.ndarray:
    return pc.fill_null(pc.cast(column, pa.float64()), float("nan")).to_numpy(zero_copy_only=False)
