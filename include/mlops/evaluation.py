"""Metrics, slices and a paired bootstrap against the champion: the statistics the gates read.

Everything here is a pure function over numpy arrays. The metrics are short numpy implementations
of scikit-learn's definitions (average precision, ROC AUC, Brier) so the bootstrap can evaluate
hundreds of resamples at once: a resample is a vector of row *counts*, and each metric is computed
for a whole matrix of counts over rows sorted once per model.

The gates built on these statistics are ``mlops.gates``; their HTML page is ``mlops.gate_report``.
"""

from __future__ import annotations

import numpy as np

#: Metrics computed from labels and scores (and therefore usable by the bootstrap and the slices).
SCORE_METRICS: tuple[str, ...] = ("auc_pr", "roc_auc", "recall_at_precision", "brier", "ece")
#: Holdout metrics relative to the holdout's positive rate p, each from the raw metric it names: a threshold on them
#: means the same on a table of 1 % or 30 % positives. ``auc_pr_lift`` = auc_pr / p (AUC-PR's chance level is p),
#: ``brier_skill`` = 1 - brier / (p (1 - p)) (p (1 - p) is the Brier score of always predicting p), ``ece_ratio`` =
#: ece / p. Derived by ``compute_metrics`` only (never bootstrapped nor sliced); None when p is 0 or 1.
RELATIVE_METRICS: dict[str, str] = {"auc_pr_lift": "auc_pr", "brier_skill": "brier", "ece_ratio": "ece"}
#: Metrics where a smaller value is better: the sign of every comparison flips for them.
LOWER_IS_BETTER: frozenset[str] = frozenset({"brier", "ece", "ece_ratio", "latency_p95_ms_per_10k", "model_size_mb"})
#: Equal-width calibration bins over [0, 1] for the expected calibration error.
ECE_BINS = 10
#: Upper bound on rows x resamples held in memory at once by the bootstrap (about 16 MB per array).
_CHUNK_CELLS = 2_000_000


# --------------------------------------------------------------------------------------------- metrics


def check_inputs(y_true: np.ndarray, y_score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Labels must be 0/1 and scores probabilities: Brier and ECE mean nothing otherwise."""
    y = np.asarray(y_true)
    s = np.asarray(y_score, dtype=np.float64)
    if y.ndim != 1 or s.ndim != 1 or y.shape != s.shape:
        raise ValueError(f"y_true and y_score must be 1-d arrays of one length, got {y.shape} and {s.shape}")
    if y.size == 0:
        raise ValueError("no rows to evaluate")
    if y.dtype != bool and not np.all((y == 0) | (y == 1)):
        raise ValueError("y_true must hold 0/1 labels (map the positive class to 1 first)")
    if not np.all(np.isfinite(s)) or s.min() < 0.0 or s.max() > 1.0:
        raise ValueError("y_score must hold probabilities in [0, 1] (no NaN): Brier and ECE need them")
    return y.astype(np.float64), s


class _Ranked:
    """One model's rows sorted once by descending score, ready to evaluate many resamples at once.

    A threshold sits between distinct scores only (tied rows move together, as in scikit-learn).
    Average precision, ROC AUC and recall-at-precision only change where a positive row enters, so
    each is a sum or max over the *positive* rows of quantities read at the end (and start) of that
    row's tied-score group: one cumulative sum over all rows, the rest over positives only.
    """

    def __init__(self, y: np.ndarray, s: np.ndarray) -> None:
        self.y = y
        self.s = s
        n = s.size
        self.order = np.argsort(-s, kind="stable")
        s_sorted = s[self.order]
        ends = np.flatnonzero(np.r_[np.diff(s_sorted) != 0, True])  # last row of each tied group
        group = np.searchsorted(ends, np.arange(n))
        self.pos = np.flatnonzero(y[self.order] == 1)  # sorted positions of the positives
        self.end = ends[group[self.pos]]  # for each positive: end of its group ...
        self.before = np.where(group[self.pos] > 0, ends[np.maximum(group[self.pos] - 1, 0)], -1)  # ... prior end
        self.tp_end = np.searchsorted(self.pos, self.end, side="right") - 1  # positives up to there, minus 1
        self.tp_before = np.searchsorted(self.pos, self.before, side="right") - 1
        bins = np.minimum((s * ECE_BINS).astype(np.intp), ECE_BINS - 1)  # [lo, hi), the last bin closed
        self.bin_rows = [rows for b in range(ECE_BINS) if (rows := np.flatnonzero(bins == b)).size]
        self.gap = y - s

    def metric(self, counts: np.ndarray, metric: str, precision_target: float) -> np.ndarray:
        """``metric`` for each row of ``counts`` (how many times each data row is in each resample)."""
        if metric == "brier":
            return counts @ (self.s - self.y) ** 2 / counts.sum(axis=1)
        if metric == "ece":
            # sum over bins of n_b/N * |mean(y_b) - mean(s_b)|  ==  sum over bins |sum(y_b - s_b)| / N
            gaps = sum(np.abs(counts[:, rows] @ self.gap[rows]) for rows in self.bin_rows)
            return gaps / counts.sum(axis=1)
        if metric not in SCORE_METRICS:
            raise ValueError(f"unknown metric {metric!r}; known: {', '.join(SCORE_METRICS)}")
        w = counts[:, self.order]
        seen = np.cumsum(w, axis=1)  # rows scored at or above each position
        w_pos = w[:, self.pos]
        tp = np.cumsum(w_pos, axis=1)  # positives at or above each positive's position
        positives = tp[:, -1]
        seen_end = seen[:, self.end]
        tp_end = tp[:, self.tp_end]
        precision = np.divide(tp_end, seen_end, out=np.zeros_like(tp_end), where=seen_end > 0)
        if metric == "auc_pr":
            # scikit-learn's average precision: sum over thresholds of (R_n - R_{n-1}) * P_n, no interpolation
            return (w_pos * precision).sum(axis=1) / positives
        if metric == "recall_at_precision":
            return np.where(precision >= precision_target, tp_end, 0.0).max(axis=1) / positives
        # roc_auc (Mann-Whitney): each positive beats the negatives below its group and ties half of its group's
        negatives = seen[:, -1] - positives
        fp_end = seen_end - tp_end
        has_before = self.before >= 0
        seen_before = np.where(has_before, seen[:, np.maximum(self.before, 0)], 0.0)
        tp_before = np.where(self.tp_before >= 0, tp[:, np.maximum(self.tp_before, 0)], 0.0)
        fp_before = seen_before - tp_before
        wins = (w_pos * (negatives[:, None] - (fp_end + fp_before) / 2.0)).sum(axis=1)
        return wins / (positives * negatives)


def _require_both_classes(y: np.ndarray, what: str) -> None:
    positives = int(y.sum())
    if positives == 0 or positives == y.size:
        label = "positive" if positives else "negative"
        raise ValueError(f"{what}: all {y.size} rows are {label}; ranking and calibration metrics need both classes")


def _check_metric(metric: str) -> None:
    if metric not in SCORE_METRICS:
        raise ValueError(f"unknown metric {metric!r}; known: {', '.join(SCORE_METRICS)}")


def metric_value(y_true: np.ndarray, y_score: np.ndarray, metric: str, precision_target: float) -> float:
    """One metric on one set of rows (cheaper than ``compute_metrics`` when only one is needed)."""
    _check_metric(metric)
    y, s = check_inputs(y_true, y_score)
    _require_both_classes(y, "y_true")
    return float(_Ranked(y, s).metric(np.ones((1, y.size)), metric, precision_target)[0])


def relative_metrics(metrics: dict[str, float | None]) -> dict[str, float | None]:
    """``positive_rate`` and the :data:`RELATIVE_METRICS` from the raw ones (and ``rows``/``positives``).

    None where undefined: every relative metric when the positive rate is 0 or 1 (no chance level to
    compare with; never a division by zero), and each one whose raw metric is None.
    """
    rows, positives = metrics["rows"], metrics["positives"]
    p = float(positives) / float(rows) if rows else None
    defined = p is not None and 0.0 < p < 1.0
    auc_pr, brier, ece = (metrics.get(raw) for raw in RELATIVE_METRICS.values())
    return {
        "positive_rate": p,
        "auc_pr_lift": auc_pr / p if defined and auc_pr is not None else None,
        "brier_skill": 1.0 - brier / (p * (1.0 - p)) if defined and brier is not None else None,
        "ece_ratio": ece / p if defined and ece is not None else None,
    }


def compute_metrics(
    y_true: np.ndarray, y_score: np.ndarray, precision_target: float, *, allow_one_class: bool = False
) -> dict[str, float | None]:
    """The holdout metrics every gate reads.

    ``auc_pr`` is scikit-learn's average precision (the headline metric for rare positives),
    ``recall_at_precision`` the best recall among thresholds whose precision reaches the target
    (0.0 when none does), ``ece`` the bin-count-weighted gap between predicted and observed rates
    over 10 equal-width bins ([lo, hi), the last bin closed). Beside them ``rows``, ``positives``,
    ``positive_rate`` and the :data:`RELATIVE_METRICS` (see :func:`relative_metrics`).

    Raises ``ValueError`` on one class, unless ``allow_one_class``: then the ranking metrics (``auc_pr``,
    ``roc_auc``, ``recall_at_precision``) and the relative ones are None, Brier and ECE still measured.
    """
    y, s = check_inputs(y_true, y_score)
    positives = int(y.sum())
    one_class = positives in (0, y.size)
    if not (allow_one_class and one_class):
        _require_both_classes(y, "y_true")
    ranked = _Ranked(y, s)
    ones = np.ones((1, y.size))
    metrics: dict[str, float | None] = {
        m: None if one_class and m not in ("brier", "ece") else float(ranked.metric(ones, m, precision_target)[0])
        for m in SCORE_METRICS
    }
    metrics["rows"] = int(y.size)
    metrics["positives"] = positives
    metrics.update(relative_metrics(metrics))
    return metrics


# ---------------------------------------------------------------------------------------------- slices


def _slice_keys(values: np.ndarray) -> np.ndarray:
    """Slice values as strings, so mixed types, None and NaN group and serialise ("None", "nan")."""
    return np.asarray(values).astype(str)


def slice_metrics(
    y_true: np.ndarray,
    y_score: np.ndarray,
    slices: dict[str, np.ndarray],
    metric: str,
    min_rows: int,
    min_positives: int,
    precision_target: float,
) -> dict[str, dict[str, dict[str, float | int | None]]]:
    """``{column: {value: {"rows", "positives", metric}}}``; the metric is None for a slice too small to trust.

    A slice is too small below ``min_rows`` rows or ``min_positives`` positives, or when it holds
    a single class (the metric is undefined there).
    """
    _check_metric(metric)
    y, s = check_inputs(y_true, y_score)
    result: dict[str, dict[str, dict[str, float | int | None]]] = {}
    for column, raw in slices.items():
        keys = _slice_keys(raw)
        if keys.shape != y.shape:
            raise ValueError(f"slice column {column!r} has {keys.size} values for {y.size} rows")
        uniques, inverse = np.unique(keys, return_inverse=True)
        per_value: dict[str, dict[str, float | int | None]] = {}
        for index, value in enumerate(uniques):
            mask = inverse == index
            rows = int(mask.sum())
            positives = int(y[mask].sum())
            big_enough = rows >= min_rows and positives >= min_positives and positives < rows
            score = metric_value(y[mask], s[mask], metric, precision_target) if big_enough else None
            per_value[str(value)] = {"rows": rows, "positives": positives, metric: score}
        result[column] = per_value
    return result


# ------------------------------------------------------------------------------------------- bootstrap


def paired_bootstrap(
    y_true: np.ndarray,
    score_candidate: np.ndarray,
    score_champion: np.ndarray,
    metric: str,
    samples: int,
    confidence: float,
    seed: int,
    precision_target: float,
) -> dict[str, float]:
    """Percentile CI of ``metric(candidate) - metric(champion)`` over paired resamples of the holdout.

    Paired: both models are scored on the same resampled rows, so the noise the two share (which
    rows happen to be in the holdout) cancels and the interval is far tighter than two separate CIs.
    Resamples holding a single class have no defined metric: they are skipped and counted in
    ``"skipped"``; ``"samples"`` is the number actually used. Deterministic for a given ``seed``.
    """
    _check_metric(metric)
    if samples < 1:
        raise ValueError(f"samples must be >= 1, got {samples}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    y, s_cand = check_inputs(y_true, score_candidate)
    _, s_champ = check_inputs(y_true, score_champion)
    _require_both_classes(y, "y_true")
    cand, champ = _Ranked(y, s_cand), _Ranked(y, s_champ)
    n = y.size
    full = np.ones((1, n))
    m_cand = float(cand.metric(full, metric, precision_target)[0])
    m_champ = float(champ.metric(full, metric, precision_target)[0])

    rng = np.random.default_rng(seed)
    chunk = max(1, _CHUNK_CELLS // n)
    deltas: list[np.ndarray] = []
    skipped = 0
    for start in range(0, samples, chunk):
        k = min(chunk, samples - start)
        drawn = rng.integers(0, n, size=(k, n), dtype=np.int32) + (np.arange(k, dtype=np.int32) * n)[:, None]
        counts = np.bincount(drawn.ravel(), minlength=k * n).reshape(k, n).astype(np.float64)
        positives = counts @ y
        valid = (positives > 0) & (positives < n)
        skipped += int(k - valid.sum())
        counts = counts[valid]
        if counts.shape[0]:
            deltas.append(
                cand.metric(counts, metric, precision_target) - champ.metric(counts, metric, precision_target)
            )
    if not deltas:
        raise ValueError(f"all {samples} bootstrap resamples held a single class; too few positives to compare")
    delta = np.concatenate(deltas)
    tail = (1.0 - confidence) / 2.0 * 100.0
    ci_low, ci_high = np.percentile(delta, [tail, 100.0 - tail])
    return {
        "candidate": m_cand,
        "champion": m_champ,
        "delta": m_cand - m_champ,
        "ci_low": float(ci_low),
        "ci_high": float(ci_high),
        "confidence": float(confidence),
        "samples": int(delta.size),
        "skipped": skipped,
    }


# ---------------------------------------------------------------------------------------------- curves

#: Most points a curve keeps for the gate report's pictures (an SVG polyline, not a data dump).
CURVE_POINTS = 200


def _downsample(x: np.ndarray, y: np.ndarray, max_points: int) -> np.ndarray:
    """Indices of at most ``max_points`` points spread evenly along the polyline's length (ends kept).

    Even in *length*, not in index: a holdout has thousands of thresholds in its long low-score tail and
    few in the high-score head, so evenly spaced indices would lose the part of the curve people read.
    """
    if x.size <= max_points:
        return np.arange(x.size)
    step = np.hypot(np.diff(x), np.diff(y))
    length = np.r_[0.0, np.cumsum(step)]
    targets = np.linspace(0.0, length[-1], max_points)
    return np.unique(np.r_[0, np.searchsorted(length, targets[1:-1]), x.size - 1])  # <= max_points indices


def precision_recall_points(
    y_true: np.ndarray, y_score: np.ndarray, max_points: int = CURVE_POINTS
) -> dict[str, list[float | None]]:
    """The precision-recall curve, downsampled: ``{"recall", "precision", "threshold"}`` by decreasing threshold.

    Before downsampling, the points are scikit-learn's ``precision_recall_curve`` reversed (one per
    distinct score, ties move together) with its starting point recall 0 / precision 1 (threshold
    +inf, given as None so the result stays JSON); downsampling keeps a subset of those points.
    """
    if max_points < 2:
        raise ValueError(f"max_points must be >= 2, got {max_points}")
    y, s = check_inputs(y_true, y_score)
    _require_both_classes(y, "y_true")
    order = np.argsort(-s, kind="stable")
    s_sorted, y_sorted = s[order], y[order]
    ends = np.flatnonzero(np.r_[np.diff(s_sorted) != 0, True])  # last row of each tied-score group
    tp = np.cumsum(y_sorted)[ends]
    seen = ends + 1.0
    recall = np.r_[0.0, tp / tp[-1]]
    precision = np.r_[1.0, tp / seen]
    thresholds = np.r_[np.inf, s_sorted[ends]]
    keep = _downsample(recall, precision, max_points)
    return {
        "recall": recall[keep].tolist(),
        "precision": precision[keep].tolist(),
        "threshold": [None if np.isinf(t) else float(t) for t in thresholds[keep]],
    }


def calibration_points(
    y_true: np.ndarray, y_score: np.ndarray, bins: int = ECE_BINS, strategy: str = "uniform"
) -> dict[str, list[float]]:
    """The reliability curve: per non-empty bin, mean predicted probability, observed positive rate, rows.

    Binned as scikit-learn's ``calibration_curve`` (``uniform``: equal-width bins over [0, 1], the
    bins of ``ece``; ``quantile``: equal-count bins), so ``mean_predicted``/``fraction_positive`` equal
    its ``prob_pred``/``prob_true``; ``rows`` says how much each point is worth.
    """
    if bins < 1:
        raise ValueError(f"bins must be >= 1, got {bins}")
    y, s = check_inputs(y_true, y_score)
    if strategy == "uniform":
        edges = np.linspace(0.0, 1.0, bins + 1)
    elif strategy == "quantile":
        edges = np.percentile(s, np.linspace(0.0, 100.0, bins + 1))
    else:
        raise ValueError(f"strategy must be 'uniform' or 'quantile', got {strategy!r}")
    ids = np.searchsorted(edges[1:-1], s)  # a score on an inner edge goes to the lower bin, as in scikit-learn
    rows = np.bincount(ids, minlength=bins)
    used = rows > 0
    return {
        "mean_predicted": (np.bincount(ids, weights=s, minlength=bins)[used] / rows[used]).tolist(),
        "fraction_positive": (np.bincount(ids, weights=y, minlength=bins)[used] / rows[used]).tolist(),
        "rows": rows[used].tolist(),
    }


def holdout_curves(
    y_true: np.ndarray, candidate_score: np.ndarray, champion_score: np.ndarray | None, max_points: int = CURVE_POINTS
) -> dict[str, dict | float | None]:
    """The gate report's curves: ``{"prevalence", "candidate": {"pr", "calibration"}, "champion": ... | None}``.

    A holdout of one class has no precision-recall curve: ``"pr"`` is None then (the gates fail it, with a reason).
    """
    y, _ = check_inputs(y_true, candidate_score)
    both_classes = 0 < y.sum() < y.size

    def curves(scores: np.ndarray) -> dict[str, dict | None]:
        pr = precision_recall_points(y, scores, max_points) if both_classes else None
        return {"pr": pr, "calibration": calibration_points(y, scores)}

    return {
        "prevalence": float(y.mean()),
        "candidate": curves(candidate_score),
        "champion": None if champion_score is None else curves(champion_score),
    }
