"""Reference profiles: per-feature bins and frequencies (and the score distribution) stored with a model.

The drift monitor compares later windows against this profile, so it never re-reads training data.
Numeric features are binned by the reference's own quantiles; categoricals by their code, with NaN
(unknown or missing) as its own bucket.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from mlops.features import FeatureSpec

BINS = 10


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


def reference_profile(X: np.ndarray, spec: FeatureSpec, scores: np.ndarray) -> dict[str, Any]:
    features = {
        name: _categorical(X[:, j], spec.categories[name]) if name in spec.categories else numeric_bins(X[:, j])
        for j, name in enumerate(spec.names)
    }
    return {"rows": int(X.shape[0]), "features": features, "score": numeric_bins(scores.astype(np.float64))}
