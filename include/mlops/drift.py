"""Drift monitoring: PSI against the champion's reference profile, delayed-label performance, the trigger policy.

The decision is numpy only and reads the champion's stored reference profile (``mlops.profiling``),
never the training rows: per feature, the current window is binned on the reference's own bins
(``np.searchsorted`` + ``np.bincount``, one pass per column), with missing/unknown values as one more
bucket, and compared by the population stability index (PSI); a hashed high-cardinality string is binned
on the reference's top values plus an "other" bucket (``mlops.profiling.top_values``), like a categorical.
PSI is an *effect size*, so it stays calibrated at any window size, whereas a p-value at a million rows
flags shifts nobody cares about.
A per-column chi-square test is computed beside it and reported; a feature breaches when its PSI
reaches ``drift.psi_threshold`` *and* its test is significant at ``drift.pvalue_threshold`` divided by
the window's number of tests (Bonferroni). The significance guard changes nothing for real windows (at
50k rows a PSI of 0.2 has p ~ 0); it keeps tiny windows calibrated, where empty buckets alone push PSI
over the threshold (50 clean rows: PSI >= 0.2 on some feature in every window).

A window breaches when at least ``min_breaching_features`` features breach, or the score
distribution's PSI reaches ``score_psi_threshold``, or the champion's AUC-PR on labelled rows of the
window dropped by ``performance_drop`` (relative) below its holdout value. ``trigger_decision`` turns
breaching windows into a retraining trigger: at once when severe, else after ``consecutive_windows``
breaching windows in a row (debounce), never while a training run is active or within
``cooldown_days`` of the last one.

The human-readable Evidently HTML report is ``mlops.drift_report``; nothing here depends on it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from mlops.profiling import TOP_VALUES
from mlops.serialization import to_jsonable

if TYPE_CHECKING:
    from mlops.config import Settings
    from mlops.data.lake import Lake
    from mlops.features import FeatureSpec

__all__ = [
    "DriftResult",
    "append_history",
    "assess_window",
    "feature_drift",
    "history_path",
    "performance_drift",
    "psi",
    "read_history",
    "score_drift",
    "trigger_decision",
]


# ------------------------------------------------------------------------------------------- statistics


def psi(ref_freq: np.ndarray, cur_freq: np.ndarray, eps: float = 1e-4) -> float:
    """Population stability index ``sum((c - r) * ln(c / r))`` over matching buckets.

    Both frequency vectors are clipped below at ``eps`` (an empty bucket on one side would make the
    index infinite); they are not renormalised, so identical inputs give exactly 0.
    """
    r = np.maximum(np.asarray(ref_freq, dtype=np.float64), eps)
    c = np.maximum(np.asarray(cur_freq, dtype=np.float64), eps)
    if r.shape != c.shape:
        raise ValueError(f"PSI needs frequency vectors of one shape, got {r.shape} and {c.shape}")
    return float(np.sum((c - r) * np.log(c / r)))


def _chi2_pvalue(ref_freq: np.ndarray, counts: np.ndarray, ref_rows: int | None) -> float:
    """P-value that the current bucket counts come from the reference distribution.

    With the reference's row count known (profiles store it), this is the two-sample chi-square test
    of homogeneity on the 2 x k table (reference counts = ``freq * rows``): the reference frequencies
    are themselves estimates, and testing against them as if exact would reject every large window.
    Without it, the one-sample goodness-of-fit test against ``freq * n``. Buckets empty on both sides
    carry no information and are dropped.
    """
    from scipy.special import chdtrc  # scipy.special is a light import; scipy.stats is not

    cur = np.asarray(counts, dtype=np.float64)
    n = float(cur.sum())
    if n == 0:
        return 1.0
    ref = np.asarray(ref_freq, dtype=np.float64)
    if ref_rows:
        ref_counts = ref * ref_rows
        keep = (ref_counts + cur) > 0
        ref_counts, cur = ref_counts[keep], cur[keep]
        m = float(ref_counts.sum())
        total = ref_counts + cur
        exp_ref, exp_cur = total * (m / (m + n)), total * (n / (m + n))
        stat = float(np.sum((ref_counts - exp_ref) ** 2 / exp_ref) + np.sum((cur - exp_cur) ** 2 / exp_cur))
    else:
        keep = ref > 0
        if np.any(cur[~keep] > 0):  # values where the reference had none: impossible under H0
            return 0.0
        expected = ref[keep] * n
        stat = float(np.sum((cur[keep] - expected) ** 2 / expected))
    dof = int(keep.sum()) - 1
    return float(chdtrc(dof, stat)) if dof > 0 else 1.0


def _ref_vector(entry: dict[str, Any]) -> np.ndarray:
    """Reference bucket frequencies: the profile's bins, the "other" bucket of a top-values entry, then the
    missing/unknown bucket (sums to 1)."""
    other = [float(entry["other"])] if "other" in entry else []
    return np.asarray([*entry["freq"], *other, float(entry["missing"])], dtype=np.float64)


def _numeric_counts(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Counts per reference bin (``searchsorted(..., side="right")``, as the profile binned), then missing.

    NaN sorts after every edge in ``searchsorted``, so NaN rows land in the last bin: they are moved to
    the missing bucket by subtraction, without materialising a filtered copy of the column.
    """
    if edges.size and values.dtype == np.float32 and np.array_equal(edges.astype(np.float32), edges):
        edges = edges.astype(np.float32)  # exact: searching in float32 avoids casting the whole column
    idx = np.searchsorted(edges, values, side="right")
    counts = np.bincount(idx, minlength=edges.size + 1).astype(np.int64)
    nan = int(np.count_nonzero(np.isnan(values)))
    counts[-1] -= nan
    missing = nan
    if np.isinf(values).any():  # the profile counted infinities as missing; so does this
        pos, neg = int(np.count_nonzero(values == np.inf)), int(np.count_nonzero(values == -np.inf))
        counts[-1] -= pos
        counts[0] -= neg
        missing += pos + neg
    return np.append(counts, missing)


def numeric_psi(reference: np.ndarray, current: np.ndarray) -> float:
    """PSI of ``current`` against ``reference`` on the reference's decile bins, as the monitor computes it
    (the bins of :mod:`mlops.profiling`, missing values as one more bucket). For readers outside the
    monitor (the Evidently report's per-column verdict); the monitor itself bins against the stored profile.
    """
    from mlops.profiling import numeric_bins

    entry = numeric_bins(np.asarray(reference, dtype=np.float64))
    current = np.asarray(current, dtype=np.float64)
    counts = _numeric_counts(current, np.asarray(entry["edges"], dtype=np.float64))
    return psi(_ref_vector(entry), counts / max(current.size, 1))


def _categorical_counts(codes: np.ndarray, size: int) -> np.ndarray:
    """Counts per category code, then the missing/unknown bucket (NaN or out-of-range codes)."""
    valid = np.isfinite(codes) & (codes >= 0) & (codes < size)
    if valid.all():
        counts = np.bincount(codes.astype(np.int64), minlength=size)
    else:
        counts = np.bincount(codes[valid].astype(np.int64), minlength=size)
    return np.append(counts, codes.size - int(valid.sum()))


def _top_counts(codes: np.ndarray, top: np.ndarray) -> np.ndarray:
    """Counts per top hash code of the profile (in its order), then "other" (any other value), then missing."""
    finite = np.isfinite(codes)
    known = codes if finite.all() else codes[finite]
    order = np.argsort(top, kind="stable")
    ordered = top[order]
    if ordered.size:
        at = np.minimum(np.searchsorted(ordered, known), ordered.size - 1)
        bucket = np.where(ordered[at] == known, order[at], top.size)
    else:
        bucket = np.full(known.size, top.size)
    counts = np.bincount(bucket, minlength=top.size + 1).astype(np.int64)
    return np.append(counts, codes.size - known.size)


#: Why a hashed feature is not compared with a profile written before top-value profiles.
OLD_HASHED_PROFILE = ("the champion's reference profile predates top-value profiles of hashed strings (it binned "
                      "hash codes as numbers, which says nothing about the values): not compared until a model "
                      "trained with this version is the champion")  # fmt: skip


def _skipped(note: str, rows: int) -> dict[str, Any]:
    """A feature the monitor cannot compare with the profile: listed with the reason, never a breach."""
    return {"psi": None, "kind": "skipped", "pvalue": None, "rows": rows, "note": note, "significant": False}


def _compare(entry: dict[str, Any], counts: np.ndarray, ref_rows: int | None) -> dict[str, Any]:
    ref = _ref_vector(entry)
    n = int(counts.sum())
    cur = counts / n if n else np.zeros_like(ref)
    return {
        "psi": psi(ref, cur) if n else 0.0,
        "kind": entry["kind"],
        "pvalue": _chi2_pvalue(ref, counts, ref_rows),
        "rows": n,
        "null_fraction": float(cur[-1]) if n else 0.0,  # the missing/unknown bucket's share of the window
        "ref_freq": ref.tolist(),
        "cur_freq": cur.tolist(),
    }


def feature_drift(profile: dict, X: np.ndarray, spec: FeatureSpec, pvalue_threshold: float) -> dict[str, dict]:
    """Per feature of ``spec``: PSI and chi-square p-value of ``X`` (``build_matrix`` output) vs the profile.

    Buckets are the profile's bins plus a last missing/unknown bucket; ``ref_freq``/``cur_freq`` list
    them in that order (a hashed feature: its top values, "other", missing). ``significant`` says whether the
    p-value is below ``pvalue_threshold``; ``null_fraction`` is the window's share in the missing bucket (1.0:
    the column is entirely null). A hashed feature whose profile predates top values (an older champion) is
    listed with ``kind: "skipped"``, ``psi: None`` and a ``note``, and never breaches.
    One ``searchsorted`` + ``bincount`` per column: ~0.2 s for 1M rows x 15 features (2-core machine).
    """
    X = np.asarray(X)
    if X.ndim != 2 or X.shape[1] != len(spec.names):
        raise ValueError(f"X must be rows x {len(spec.names)} features ({', '.join(spec.names)}), got {X.shape}")
    features = profile["features"]
    missing = [name for name in spec.names if name not in features]
    if missing:
        raise KeyError(f"the reference profile has no entry for features {missing}: was it built with this spec?")
    ref_rows = profile.get("rows")
    # One transposed copy (~25 ms at 1M x 15) makes every column contiguous: measured ~15 % faster overall
    # than searching, counting and NaN-checking strided columns of the row-major matrix.
    columns = np.ascontiguousarray(X.T) if X.flags.c_contiguous and X.shape[1] > 1 else X.T
    result: dict[str, dict] = {}
    for j, name in enumerate(spec.names):
        entry = features[name]
        column = columns[j]
        if name in spec.hashed and entry["kind"] != TOP_VALUES:
            result[name] = _skipped(OLD_HASHED_PROFILE, int(column.size))
            continue
        if entry["kind"] == "categorical":
            counts = _categorical_counts(column, len(entry["freq"]))
        elif entry["kind"] == TOP_VALUES:
            counts = _top_counts(column, np.asarray(entry["codes"], dtype=np.float64))
        else:
            counts = _numeric_counts(column, np.asarray(entry["edges"], dtype=np.float64))
        result[name] = _compare(entry, counts, ref_rows)
        result[name]["significant"] = result[name]["pvalue"] < pvalue_threshold
    return result


def score_drift(profile: dict, scores: np.ndarray) -> dict:
    """PSI (and chi-square p-value) of the champion's score distribution on the reference score bins."""
    entry = profile["score"]
    counts = _numeric_counts(np.asarray(scores, dtype=np.float64), np.asarray(entry["edges"], dtype=np.float64))
    return _compare(entry, counts, profile.get("rows"))


def performance_drift(
    y_true: np.ndarray | None,
    y_score: np.ndarray | None,
    reference_auc_pr: float,
    precision_target: float,
    max_drop: float,
) -> dict | None:
    """The champion's AUC-PR on labelled rows vs its holdout value; ``None`` without two classes of labels.

    ``relative_drop = (reference - current) / reference``; breached when it reaches ``max_drop``.
    """
    if y_true is None or y_score is None or reference_auc_pr is None:
        return None
    y = np.asarray(y_true)
    if y.size == 0:
        return None
    positives = int(np.count_nonzero(y == 1))
    if positives == 0 or positives == y.size:
        return None
    from mlops.evaluation import compute_metrics

    metrics = compute_metrics(y, np.asarray(y_score, dtype=np.float64), precision_target)
    reference = float(reference_auc_pr)
    drop = (reference - metrics["auc_pr"]) / reference if reference > 0 else 0.0
    return {
        "auc_pr": float(metrics["auc_pr"]),
        "recall_at_precision": float(metrics["recall_at_precision"]),
        "reference_auc_pr": reference,
        "relative_drop": float(drop),
        "breached": bool(drop >= max_drop),
        "rows": int(y.size),
        "positives": positives,
    }


# ---------------------------------------------------------------------------------------------- window


@dataclass
class DriftResult:
    """One window's assessment: what ``drift_monitoring`` stores in the history and reports."""

    day: str
    window: list[str]
    features: dict
    score: dict
    performance: dict | None
    breached_features: dict[str, float]  # name -> PSI, breaching features only
    breached: bool
    severe: bool

    def to_dict(self) -> dict:
        return to_jsonable(asdict(self))

    @property
    def reasons(self) -> list[str]:
        """Human-readable reasons the window breached (empty when it did not)."""
        out = [f"feature {name} PSI {value:.3f}" for name, value in self.breached_features.items()]
        if self.score.get("breached"):
            out.append(f"score PSI {self.score['psi']:.3f}")
        if self.performance and self.performance.get("breached"):
            out.append(
                f"AUC-PR {self.performance['auc_pr']:.3f} vs {self.performance['reference_auc_pr']:.3f} "
                f"({self.performance['relative_drop']:.0%} drop)"
            )
        return out


def assess_window(
    settings: Settings,
    profile: dict,
    spec: FeatureSpec,
    X: np.ndarray,
    scores: np.ndarray | None,
    labels: tuple[np.ndarray, np.ndarray] | None,
    reference_auc_pr: float | None,
    day: str,
    window: list[str],
) -> DriftResult:
    """Assess one window: feature PSI, score PSI (when scores are given), performance (when labels are).

    ``labels`` is ``(y_true, y_score)`` for the window's rows whose labels have landed (the champion's
    scores of those rows); ``reference_auc_pr`` is the champion's holdout AUC-PR.
    """
    policy = settings.drift
    features = feature_drift(profile, X, spec, policy.pvalue_threshold)
    compared = {name: f for name, f in features.items() if f["psi"] is not None}  # not the skipped ones
    # Bonferroni over the window's tests (features + score): the significance guard holds per window.
    alpha = policy.pvalue_threshold / max(len(compared) + (scores is not None), 1)
    breached_features = {
        name: float(f["psi"])
        for name, f in compared.items()
        if f["psi"] >= policy.psi_threshold and f["pvalue"] < alpha
    }
    breached_features = dict(sorted(breached_features.items(), key=lambda kv: -kv[1]))
    if scores is not None and len(scores):
        score = score_drift(profile, scores)
        score["breached"] = bool(score["psi"] >= policy.score_psi_threshold and score["pvalue"] < alpha)
    else:
        score = {"psi": None, "breached": False}
    performance = None
    if labels is not None and reference_auc_pr is not None:
        performance = performance_drift(
            labels[0], labels[1], reference_auc_pr, settings.gates.precision_target, policy.performance_drop
        )
    perf_breached = bool(performance and performance["breached"])
    # Severe: one feature (or the score) at severe_psi, or a performance breach; severe always breaches,
    # whatever min_breaching_features asks of milder shifts.
    severe = (
        any(v >= policy.severe_psi for v in breached_features.values())
        or (score["breached"] and score["psi"] >= policy.severe_psi)
        or perf_breached
    )
    breached = len(breached_features) >= policy.min_breaching_features or score["breached"] or severe
    return DriftResult(
        day=str(day),
        window=[str(d) for d in window],
        features=features,
        score=score,
        performance=performance,
        breached_features=breached_features,
        breached=bool(breached),
        severe=bool(severe),
    )


# ---------------------------------------------------------------------------------------------- policy


def _as_date(value: Any) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value)[:10])


def learning_lag_days(settings: Settings) -> int:
    """Days from a change until a training window holds a labelled day after it in its train split: the label
    delay, then the holdout and validation days, which take the newest labelled days first."""
    training = settings.training
    return settings.dataset.label.delay_days + training.holdout_days + training.validation_days + 1


def trigger_decision(
    settings: Settings,
    history: list[dict],
    current: DriftResult,
    today: dt.date,
    last_training: dt.date | None,
    training_active: bool,
    catch_up: str | None = None,
    wait_for_labels: str | None = None,
) -> dict:
    """Should this window trigger a training run? ``{"trigger", "reason", "consecutive"}``.

    ``consecutive`` counts breaching windows in a row ending with the current one: history entries
    (``DriftResult.to_dict()`` plus ``"triggered"``) before ``today``, newest first, until one that did
    not breach, one that triggered, or one assessed on or before ``last_training`` (a training run
    consumed those windows; a promoted model also brings a new reference). Then, in order:
    no trigger while a training run is active; none during the cooldown (``today - last_training <
    cooldown_days`` days, or since the last day that triggered, and at least :func:`learning_lag_days` when the
    current breach has no labelled evidence); at once when the current window is severe; after
    ``consecutive_windows``. ``catch_up`` (:func:`mlops.concept_change.catch_up_reason`): the window triggers
    (breaching or not, debounce aside) under the same active-run rule, with a cooldown of at most
    :data:`~mlops.concept_change.CATCH_UP_STEP_DAYS`: each catch-up learns from that many more labelled days.
    ``wait_for_labels`` (:func:`mlops.concept_change.wait_for_labels_reason`): a performance breach does not
    trigger yet (nor start a cooldown).
    """
    from mlops.concept_change import CATCH_UP_STEP_DAYS

    policy = settings.drift
    cooldown = min(policy.cooldown_days, CATCH_UP_STEP_DAYS) if catch_up else policy.cooldown_days
    today = _as_date(today)
    last = _as_date(last_training) if last_training is not None else None
    consecutive = 0
    if current.breached:
        consecutive = 1
        earlier = sorted(
            (e for e in history if _as_date(e["day"]) < today), key=lambda e: _as_date(e["day"]), reverse=True
        )
        for entry in earlier:
            if entry.get("triggered") or not entry.get("breached"):
                break
            if last is not None and _as_date(entry["day"]) <= last:
                break
            consecutive += 1

    def decide(trigger: bool, reason: str) -> dict:
        return {"trigger": trigger, "reason": reason, "consecutive": consecutive}

    if not current.breached and not catch_up:
        return decide(False, "no drift: the window did not breach")
    what = "; ".join(current.reasons) or catch_up or "drift"
    if wait_for_labels and current.performance and current.performance.get("breached"):
        return decide(False, f"waiting: {wait_for_labels} ({what})")
    if training_active:
        return decide(False, f"suppressed: a training run is active ({what})")
    if last is not None and (today - last).days < cooldown:
        return decide(False, f"suppressed: cooldown, last training {last.isoformat()} ({what})")
    # The training's data day lags by the label delay, so it alone never holds a cooldown: the last day that
    # triggered does (a day of the history before this one, so a re-run of a day decides the same). A breach
    # seen only in the features or the score (no labelled evidence) waits until a training window can hold a
    # labelled day after that trigger (its labels, the holdout and the validation days come first): until
    # then a retrain learns nothing new about the change. A performance breach is already labelled evidence:
    # each retrain after cooldown_days learns from more of it.
    triggered = [_as_date(e["day"]) for e in history if e.get("triggered") and _as_date(e["day"]) < today]
    if triggered:
        last_trigger = max(triggered)
        labelled = bool(current.performance and current.performance.get("breached")) or bool(catch_up)
        wait = cooldown if labelled else max(cooldown, learning_lag_days(settings))
        if (today - last_trigger).days < wait:
            return decide(False, f"suppressed: cooldown, last trigger dt={last_trigger.isoformat()}, next from "
                                 f"dt={(last_trigger + dt.timedelta(days=wait)).isoformat()} ({what})")  # fmt: skip
    if current.severe:
        return decide(True, f"severe drift: {what}")
    if consecutive >= policy.consecutive_windows:
        return decide(True, f"drift in {consecutive} consecutive windows: {what}")
    if catch_up:
        return decide(True, f"catch-up: {catch_up}")
    return decide(False, f"debounce: {consecutive}/{policy.consecutive_windows} breaching windows ({what})")


# --------------------------------------------------------------------------------------------- history


def history_path(lake: Lake, dataset: str, day: dt.date | str) -> str:
    """``Lake.drift_history``: one file per day, so re-running a day replaces it."""
    return lake.drift_history(dataset, _as_date(day))


def append_history(lake: Lake, dataset: str, entry: dict) -> None:
    """Store one day's entry (needs ``"day"``); idempotent per day, atomic per file, safe on S3."""
    if "day" not in entry:
        raise ValueError("a drift history entry needs its 'day'")
    from mlops.data.publish import publish_json

    publish_json(lake, history_path(lake, dataset, entry["day"]), to_jsonable(entry))


def read_history(lake: Lake, dataset: str) -> list[dict]:
    """Every stored entry of ``dataset``, sorted by day (empty only when there is none).

    Through the lake's error-preserving calls: an I/O error raises :class:`~mlops.data.lake.LakeIOError`
    (retried) instead of reading as an empty history, which would re-check checked days and reset the debounce.
    """
    entries = []
    for name in lake.listdir(lake.drift_history_dir(dataset)):
        leaf = name.rstrip("/").rsplit("/", 1)[-1]
        if leaf.startswith("dt=") and leaf.endswith(".json"):
            entries.append(lake.read_json(name))
    return sorted(entries, key=lambda e: _as_date(e["day"]))
