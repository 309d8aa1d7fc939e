"""Feature assembly: the ONE function that turns raw rows into the model's input, for training and scoring.

Features come from config (``dataset.features``: ``auto`` = every contract column but the id and the
event time) and the data contract. Categorical columns become their index in the contract's allowed
values (unknown values become NaN, which XGBoost routes down the learned default branch), so the
matrix is plain float32: ``inplace_predict`` on it runs at raw XGBoost speed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

if TYPE_CHECKING:
    from mlops.config import Settings
    from mlops.data.contract import Contract


@dataclass(frozen=True)
class FeatureSpec:
    names: tuple[str, ...]
    categories: dict[str, tuple[str, ...]]  # categorical feature -> its codes' values, in order

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeatureSpec:
        return cls(tuple(data["names"]), {k: tuple(v) for k, v in data["categories"].items()})


def feature_spec(settings: Settings, contract: Contract) -> FeatureSpec:
    """Which columns feed the model, and the category order for each categorical one."""
    dataset = settings.dataset
    excluded = {dataset.id_column, dataset.time_column, dataset.label.column}
    names = [c for c in contract.columns if c not in excluded] if dataset.features == "auto" else dataset.features
    unknown = [n for n in names if n not in contract.columns]
    if unknown:
        raise ValueError(f"dataset.features names columns that the contract {contract.name} lacks: {unknown}")
    categories: dict[str, tuple[str, ...]] = {}
    for name in names:
        rule = contract.columns[name]
        if rule.type == "string":
            if not rule.allowed:
                raise ValueError(f"categorical feature {name!r} needs `allowed` values in the contract")
            categories[name] = tuple(rule.allowed)
        elif rule.type not in ("int64", "float64", "bool"):
            raise ValueError(f"feature {name!r} has type {rule.type}, which the model cannot use")
    return FeatureSpec(tuple(names), categories)


def build_matrix(data: pa.Table | pa.RecordBatch, spec: FeatureSpec) -> np.ndarray:
    """Rows x features, float32, C-contiguous. Missing columns fail loudly, naming them."""
    missing = [name for name in spec.names if name not in data.schema.names]
    if missing:
        raise KeyError(f"feature columns missing from the data: {missing}")
    matrix = np.empty((data.num_rows, len(spec.names)), dtype=np.float32)
    for j, name in enumerate(spec.names):
        column = data.column(name)
        if name in spec.categories:
            column = pc.index_in(column, value_set=pa.array(spec.categories[name], pa.string()))
        matrix[:, j] = column.to_numpy(zero_copy_only=False) if column.null_count == 0 else _with_nan(column)
    return matrix


def _with_nan(column: pa.Array | pa.ChunkedArray) -> np.ndarray:
    return pc.fill_null(pc.cast(column, pa.float64()), float("nan")).to_numpy(zero_copy_only=False)
