"""Reference profiles: per-feature bins and frequencies (and the score distribution) stored with a model.

The drift monitor compares later windows against this profile, so it never re-reads training data.
Numeric features are binned by the reference's own quantiles; categoricals by their code, with NaN
(unknown or missing) as its own bucket. Hashed high-cardinality strings (``FeatureSpec.hashed``) are
categoricals too, on their :data:`TOP_K` most frequent values plus one "other" bucket: their hash codes
are arbitrary numbers, so binning them as numbers would compare the hash function's spread, not the data's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from mlops.features import FeatureSpec

BINS = 10
#: A hashed string feature is profiled by its TOP_K most frequent reference values (by hash code, which
#: identifies the value) plus an "other" bucket for the rest. 20 like the deciles' 10 buckets: few enough that
#: a small window still fills them (every empty bucket adds noise to PSI), many enough to hold the head of a
#: 100+-value column, where a shift matters; a shift within the tail shows as a change of the "other" share.
#: The Evidently report buckets the column the same way (``mlops.drift_report``).
TOP_K = 20
#: The ``kind`` of a hashed feature's profile entry.
TOP_VALUES = "top_values"


def numeric_bins(values: np.ndarray) -> dict[str, Any]:
    """Decile edges of the finite values, the share of rows per bin, and the share missing (NaN or infinite)."""
    finite = values[np.isfinite(values)]
    edges = np.unique(np.quantile(finite, np.linspace(0, 1, BINS + 1)[1:-1])) if finite.size else np.array([])
    counts = np.bincount(np.searchsorted(edges, finite, side="right"), minlength=edges.size + 1)
    return {
        "kind": "numeric",
        "edges": edges.tolist(),
        "freq": (counts / max(values.size, 1)).tolist(),
        "missing": float(1 - finite.size / max(values.size, 1)),
    }


def _categorical(codes: np.ndarray, values: tuple[str, ...]) -> dict[str, Any]:
    known = codes[np.isfinite(codes)].astype(np.int64)
    counts = np.bincount(known, minlength=len(values))
    return {
        "kind": "categorical",
        "values": list(values),
        "freq": (counts / max(codes.size, 1)).tolist(),
        "missing": float(1 - known.size / max(codes.size, 1)),
    }


def top_values(codes: np.ndarray, k: int = TOP_K) -> dict[str, Any]:
    """The ``k`` most frequent hash codes (ties: the smaller code first) with their shares, the share of every
    other value (``other``) and the share missing; ``freq`` lists the top codes' shares in ``codes`` order."""
    codes = np.asarray(codes, dtype=np.float64)
    known = codes[np.isfinite(codes)]
    unique, counts = np.unique(known, return_counts=True)  # sorted by code: the stable sort keeps ties by code
    top = np.argsort(-counts, kind="stable")[:k]
    rows = max(codes.size, 1)
    return {
        "kind": TOP_VALUES,
        "codes": [int(code) for code in unique[top]],
        "freq": (counts[top] / rows).tolist(),
        "other": float((known.size - counts[top].sum()) / rows),
        "missing": float(1 - known.size / rows),
        "top_k": k,
    }


def reference_profile(X: np.ndarray, spec: FeatureSpec, scores: np.ndarray) -> dict[str, Any]:
    """The profile of ``X`` (``build_matrix`` output of the reference rows) and the model's ``scores`` on them."""
    features = {}
    for j, name in enumerate(spec.names):
        if name in spec.categories:
            features[name] = _categorical(X[:, j], spec.categories[name])
        elif name in spec.hashed:
            features[name] = top_values(X[:, j])
        else:
            features[name] = numeric_bins(X[:, j])
    return {"rows": int(X.shape[0]), "features": features, "score": numeric_bins(scores.astype(np.float64))}
