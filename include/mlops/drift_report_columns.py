"""The drift report's column types: from the model's features and the data contract, never inferred from the data.

Apart from running Evidently (``mlops.drift_report``): which columns the report judges and as what, and each
column of both samples prepared as it is compared (numbers as float64, categories as strings, a hashed
high-cardinality string as its reference profile's top values plus :data:`OTHER`, missing as the monitor counts
it). A timestamp, the id, the label and free text are listed as skipped, with the reason.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Sequence

    import pandas as pd

    from mlops.data.contract import Contract
    from mlops.features import FeatureSpec

#: Column types of the report (Evidently's names): judged on PSI (:data:`POLICY_PSI`) or Evidently's choice ...
NUMERICAL, CATEGORICAL = "num", "cat"
#: ... a hashed high-cardinality string, judged as a categorical of its top values plus :data:`OTHER` ...
TOP = "top"
#: ... and free text, never judged (listed under ``skipped``).
TEXT = "text"
#: The label of a hashed feature's values outside its top values (the monitor's "other" bucket).
OTHER = "(other)"


def report_columns(features: FeatureSpec, contract: Contract | None = None, id_column: str | None = None,
                   time_column: str | None = None,
                   label_column: str | None = None) -> tuple[dict[str, str], dict[str, str]]:  # fmt: skip
    """The report's column types, from the model's features (a ``FeatureSpec``) and the data contract, never
    inferred from the data; and the contract's other columns with the reason they are not judged.

    Like the monitor, the report judges the model's features: categorical ones (``allowed`` in the contract)
    and bools as categorical, hashed high-cardinality strings as :data:`TOP`, every other feature as
    numerical. A timestamp, the id, the label and columns that are not features (free text, say) are listed
    with their reason, never compared.
    """
    rules = dict(contract.columns) if contract is not None else {}
    types: dict[str, str] = {}
    skipped: dict[str, str] = {}
    for name in features.names:
        rule = rules.get(name)
        kind = getattr(rule, "type", None)
        if name in features.categories:
            types[name] = CATEGORICAL
        elif name in features.hashed:
            types[name] = TOP
        elif kind == "timestamp":
            skipped[name] = "timestamp: not a drift feature"
        elif kind == "bool":
            types[name] = CATEGORICAL
        else:
            types[name] = NUMERICAL
    for name, rule in rules.items():
        if name in types or name in skipped:
            continue
        if name == id_column:
            skipped[name] = "the id column: one value per row, no distribution to compare"
        elif name == label_column:
            skipped[name] = "the label: its drift shows in the performance check"
        elif name == time_column or rule.type == "timestamp":
            skipped[name] = "timestamp: not a drift feature"
        elif rule.type == "string" and rule.high_cardinality:
            skipped[name] = "free text (a high-cardinality string the model does not use): not compared"
        else:
            skipped[name] = "not a model feature: the drift check judges the model's features"
    return types, skipped


def dtype_types(frame: pd.DataFrame) -> dict[str, str]:
    """Types for callers that give none: numeric dtypes numerical, timestamps not compared, the rest categorical."""
    import pandas as pd

    types = {}
    for name in frame.columns:
        dtype = frame[name].dtype
        if pd.api.types.is_bool_dtype(dtype) or not pd.api.types.is_numeric_dtype(dtype):
            if not pd.api.types.is_datetime64_any_dtype(dtype):
                types[name] = CATEGORICAL
        else:
            types[name] = NUMERICAL
    return types


def untyped_reason(column: pd.Series) -> str:
    import pandas as pd

    if pd.api.types.is_datetime64_any_dtype(column.dtype):
        return "timestamp: not a drift feature"
    return "no type given: not compared"


def prepared(kind: str, ref: pd.Series, cur: pd.Series, full_reference: pd.Series,
              codes: Sequence[int] | None) -> tuple[pd.Series, pd.Series]:  # fmt: skip
    """One column of both samples as the report compares it: float64 (NaN missing) or strings (None missing)."""
    import pandas as pd

    if kind == NUMERICAL:
        return (pd.to_numeric(ref.reset_index(drop=True)).astype("float64"),
                pd.to_numeric(cur.reset_index(drop=True)).astype("float64"))  # fmt: skip
    if kind == TOP:
        if codes is None:  # a profile without top values: the reference's own, by the monitor's rule
            from mlops.profiling import top_values

            codes = top_values(_hash_codes(full_reference))["codes"]
        return _top_labels(ref, codes), _top_labels(cur, codes)
    if kind == CATEGORICAL:
        return _strings(ref), _strings(cur)
    raise ValueError(f"unknown column type {kind!r} (one of {NUMERICAL}, {CATEGORICAL}, {TOP}, {TEXT})")


def _strings(column: pd.Series) -> pd.Series:
    """Values as strings (a bool as "True"/"False", a pandas category as its value), missing as None."""
    text = column.reset_index(drop=True).astype("string")
    return text.astype(object).where(text.notna(), None)


def _hash_codes(column: pd.Series) -> Any:
    import pyarrow as pa

    from mlops.features import hash_codes

    codes = hash_codes(pa.array(column.astype("string"), type=pa.string(), from_pandas=True))
    return codes.to_numpy(zero_copy_only=False)


def _top_labels(column: pd.Series, codes: Sequence[int]) -> pd.Series:
    """The value where its hash code is one of ``codes`` (the reference's top values), else :data:`OTHER`;
    missing stays missing: the buckets of the monitor (``mlops.drift``)."""
    import numpy as np

    values = _strings(column)
    hashed = _hash_codes(values)
    top = np.isin(hashed, np.asarray(list(codes), dtype=np.float64))
    return values.where(top | values.isna(), OTHER)


def null_fraction(column: pd.Series) -> float:
    return float(count_missing(column) / len(column)) if len(column) else 0.0


def count_missing(column: pd.Series) -> int:
    """Missing as the monitor counts it: null, NaN or infinite."""
    import numpy as np
    import pandas as pd

    if pd.api.types.is_float_dtype(column.dtype):
        return int(np.count_nonzero(~np.isfinite(column.to_numpy())))
    return int(column.isna().sum())
