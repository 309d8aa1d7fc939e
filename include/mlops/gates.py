"""Gates declared as data: is the candidate "blessed"?

A candidate is blessed (TFX's word) when it passes value thresholds (``gates.absolute``) *and*
change thresholds against the current champion on the same frozen holdout rows (a paired bootstrap
on one metric, plus per-slice non-regression). Every check is kept as evidence in a :class:`GateReport`,
which is logged to MLflow and summarised in the version's tags. The statistics are ``mlops.evaluation``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from mlops.evaluation import (
    LOWER_IS_BETTER,
    RELATIVE_METRICS,
    SCORE_METRICS,
    check_inputs,
    compute_metrics,
    paired_bootstrap,
    slice_metrics,
)
from mlops.serialization import to_jsonable

if TYPE_CHECKING:
    from collections.abc import Callable

    from mlops.config import GatesSpec


@dataclass
class GateCheck:
    """One piece of evidence for (or against) blessing the candidate."""

    name: str  # "absolute:auc_pr", "champion:auc_pr", "slice:country=NG:auc_pr", "contract:features"
    kind: Literal["absolute", "champion", "slice", "contract"]
    passed: bool
    value: float | str | None
    threshold: str  # human-readable: ">= 0.15", "delta CI low >= -0.01", ...
    detail: str = ""


@dataclass
class GateReport:
    """The verdict and all its evidence; logged to MLflow and tagged on the registered version."""

    passed: bool
    checks: list[GateCheck]
    candidate_metrics: dict[str, float | None]
    champion_metrics: dict[str, float | None] | None
    comparison: dict[str, float] | None  # the paired bootstrap result; None without a champion
    slices: dict  # {"metric", "min_rows", "min_positives", "candidate": {...}, "champion": {...} | None}
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return to_jsonable(asdict(self))

    def failures(self) -> list[GateCheck]:
        return [check for check in self.checks if not check.passed]

    def summary(self) -> str:
        """One line per failed check, or "all N gates passed" (with the notes, e.g. no champion)."""
        failed = self.failures()
        if failed:
            lines = [
                f"FAIL {c.name}: {format_value(c.value)} (needs {c.threshold})" + (f" - {c.detail}" if c.detail else "")
                for c in failed
            ]
        else:
            skipped = sum(1 for c in self.checks if c.kind == "slice" and c.detail.startswith("skipped"))
            extra = f" ({skipped} small slices skipped)" if skipped else ""
            lines = [f"all {len(self.checks)} gates passed{extra}"]
        return "\n".join(lines + self.notes)


def format_value(value: Any) -> str:
    """A metric value for people: 4 decimals, whole numbers plain, "—" for None (summaries and pages)."""
    if value is None:
        return "—"
    if isinstance(value, bool) or not isinstance(value, int | float | np.number):
        return str(value)
    value = float(value)
    if not math.isfinite(value):
        return str(value)
    if value == int(value) and abs(value) >= 1:
        return f"{int(value)}"
    if abs(value) >= 1000 or abs(value) < 1e-3:
        return f"{value:.4g}"
    return f"{value:.4f}"


def _bound_text(min_: float | None, max_: float | None) -> str:
    parts = ([f">= {min_:g}"] if min_ is not None else []) + ([f"<= {max_:g}"] if max_ is not None else [])
    return " and ".join(parts) or "no bound"


def _one_class(metrics: dict[str, float | None]) -> str | None:
    """Why the holdout cannot rank (all rows one class), or None when it holds both classes."""
    rows, positives = metrics.get("rows"), metrics.get("positives")
    if rows is None or positives is None or 0 < positives < rows:
        return None
    label, rate = ("positive", 1) if positives else ("negative", 0)
    return f"all {rows} holdout rows are {label} (positive rate {rate})"


def _raw_detail(name: str, metrics: dict[str, float | None]) -> str:
    """The raw value behind a metric relative to the positive rate p, and what it is compared with."""
    p, raw = metrics.get("positive_rate"), metrics.get(RELATIVE_METRICS[name])
    if p is None or raw is None:
        return ""
    if name == "brier_skill":  # p (1 - p): the Brier score of always predicting the positive rate
        return f"brier {format_value(raw)} vs base rate's {format_value(p * (1.0 - p))}"
    return f"{RELATIVE_METRICS[name]} {format_value(raw)} vs positive rate {format_value(p)}"


def _absolute_checks(gates: GatesSpec, metrics: dict[str, float | None]) -> list[GateCheck]:
    checks = []
    one_class = _one_class(metrics)
    for name, bound in gates.absolute.items():
        threshold = _bound_text(bound.min, bound.max)
        value = metrics.get(name)
        if value is None or not math.isfinite(float(value)):
            if name in metrics and one_class:
                detail = f"{name} is undefined: {one_class}; it needs positives and negatives"
            else:
                detail = f"metric {name!r} was not measured (available: {', '.join(sorted(metrics))})"
            checks.append(GateCheck(f"absolute:{name}", "absolute", False, None, threshold, detail))
            continue
        passed = (bound.min is None or value >= bound.min) and (bound.max is None or value <= bound.max)
        detail = _raw_detail(name, metrics) if name in RELATIVE_METRICS else ""
        checks.append(GateCheck(f"absolute:{name}", "absolute", bool(passed), float(value), threshold, detail))
    return checks


def _champion_check(gates: GatesSpec, comparison: dict[str, float]) -> GateCheck:
    """Not worse beyond the tolerance at the given confidence (the CI bound on the "worse" side)."""
    metric, tol = gates.champion_metric, gates.champion_tolerance
    pct = f"{comparison['confidence'] * 100:g}%"
    detail = (
        f"{metric} candidate {format_value(comparison['candidate'])} "
        f"vs champion {format_value(comparison['champion'])}, "
        f"delta {comparison['delta']:+.4f}, {pct} CI [{comparison['ci_low']:+.4f}, {comparison['ci_high']:+.4f}] "
        f"over {comparison['samples']} paired resamples ({comparison['skipped']} skipped: one class)"
    )
    if metric in LOWER_IS_BETTER:  # a worse candidate has a *positive* delta: read the upper bound
        bound = comparison["ci_high"]
        passed = bound < 0 if gates.require_improvement else bound <= tol
        threshold = "delta CI high < 0" if gates.require_improvement else f"delta CI high <= +{tol:g}"
        threshold += " (lower is better)"
    else:
        bound = comparison["ci_low"]
        passed = bound > 0 if gates.require_improvement else bound >= -tol
        threshold = "delta CI low > 0" if gates.require_improvement else f"delta CI low >= -{tol:g}"
    if gates.require_improvement:
        threshold += " (improvement required)"
    return GateCheck(f"champion:{metric}", "champion", bool(passed), float(bound), threshold, detail)


def _slice_checks(
    gates: GatesSpec,
    candidate: dict[str, dict[str, dict[str, Any]]],
    champion: dict[str, dict[str, dict[str, Any]]],
    significance: Callable[[str, str], dict[str, float]],
) -> list[GateCheck]:
    """Per-slice non-regression: a slice fails when its regression is material (beyond ``slice_tolerance``)
    and significant (the paired-bootstrap CI of candidate - champion on the slice's rows lies wholly on the
    worse side of 0). A point estimate alone would fail a good retrain on the noise of a slice of a dozen
    positives; ``significance(column, value)`` bootstraps only the slices that regressed materially."""
    metric, tol = gates.slice_metric, gates.slice_tolerance
    lower = metric in LOWER_IS_BETTER
    checks = []
    for column, values in candidate.items():
        for value, cand in values.items():
            name = f"slice:{column}={value}:{metric}"
            champ = champion.get(column, {}).get(value, {})
            c_val, ch_val = cand.get(metric), champ.get(metric)
            if c_val is None or ch_val is None:
                detail = (
                    f"skipped: {cand['rows']} rows / {cand['positives']} positives; comparing needs "
                    f">= {gates.slice_min_rows} rows, >= {gates.slice_min_positives} positives and some negatives"
                )
                checks.append(GateCheck(name, "slice", True, None, "too small to compare", detail))
                continue
            limit = ch_val + tol if lower else ch_val - tol
            passed = c_val <= limit if lower else c_val >= limit
            threshold = f"<= champion + {tol:g} ({limit:.4f})" if lower else f">= champion - {tol:g} ({limit:.4f})"
            detail = (
                f"candidate {c_val:.4f} vs champion {ch_val:.4f} (delta {c_val - ch_val:+.4f}) "
                f"on {cand['rows']} rows / {cand['positives']} positives"
            )
            if not passed:
                ci = significance(column, value)
                significant = ci["ci_low"] > 0 if lower else ci["ci_high"] < 0
                detail += (f"; {ci['confidence']:.0%} CI of the delta [{ci['ci_low']:+.4f}, {ci['ci_high']:+.4f}]: "
                           + ("significant" if significant else "within the noise, not a regression"))  # fmt: skip
                passed = not significant
            checks.append(GateCheck(name, "slice", bool(passed), float(c_val), threshold, detail))
    return checks


def evaluate_gates(
    gates: GatesSpec,
    y_true: np.ndarray,
    candidate_score: np.ndarray,
    champion_score: np.ndarray | None,
    slices: dict[str, np.ndarray],
    extra_metrics: dict[str, float],
    feature_check: tuple[bool, str],
    seed: int = 0,
) -> GateReport:
    """Apply the gates declared in config to the candidate (and champion) scores on the frozen holdout.

    Absolute gates read ``compute_metrics`` plus ``extra_metrics`` (latency, size measured
    elsewhere). With a champion scored on the same rows, the champion gate (paired bootstrap) and
    per-slice non-regression are added; without one, the absolute and contract gates alone decide.
    A holdout of one class fails (``absolute:holdout_classes``, and every gate that needs both classes)
    with the reason in the detail; it raises nothing.
    """
    y, cand = check_inputs(y_true, candidate_score)
    candidate_metrics = compute_metrics(y, cand, gates.precision_target, allow_one_class=True)
    for name, value in extra_metrics.items():
        candidate_metrics.setdefault(name, float(value))

    one_class = _one_class(candidate_metrics)
    checks = []
    if one_class:
        detail = f"{one_class}: nothing to rank or to compare with the positive rate; the holdout needs both classes"
        checks.append(GateCheck("absolute:holdout_classes", "absolute", False, float(candidate_metrics["positives"]),
                                "some positives and some negatives", detail))  # fmt: skip
    checks += _absolute_checks(gates, candidate_metrics)
    ok, detail = feature_check
    checks.append(
        GateCheck(
            "contract:features",
            "contract",
            bool(ok),
            "match" if ok else "mismatch",
            "features match the data contract",
            detail,
        )
    )

    slice_report: dict[str, Any] = {
        "metric": gates.slice_metric,
        "min_rows": gates.slice_min_rows,
        "min_positives": gates.slice_min_positives,
        "candidate": {},
        "champion": None,
    }
    notes: list[str] = []
    slice_ok = gates.slice_metric in SCORE_METRICS
    if slice_ok:
        slice_args = (gates.slice_metric, gates.slice_min_rows, gates.slice_min_positives, gates.precision_target)
        slice_report["candidate"] = slice_metrics(y, cand, slices, *slice_args)

    champion_metrics: dict[str, float | None] | None = None
    comparison: dict[str, float] | None = None
    if champion_score is None:
        notes.append("no champion: absolute gates only")
    else:
        _, champ = check_inputs(y, champion_score)
        champion_metrics = compute_metrics(y, champ, gates.precision_target, allow_one_class=True)
        metric = gates.champion_metric
        if one_class:
            detail = f"no paired bootstrap of {metric}: {one_class}"
            checks.append(GateCheck(f"champion:{metric}", "champion", False, None, "paired bootstrap", detail))
        elif metric in SCORE_METRICS:
            comparison = paired_bootstrap(
                y, cand, champ, metric, gates.bootstrap_samples, gates.confidence, seed, gates.precision_target
            )
            checks.append(_champion_check(gates, comparison))
        else:
            detail = f"champion_metric {metric!r} cannot be bootstrapped; use one of {', '.join(SCORE_METRICS)}"
            checks.append(GateCheck(f"champion:{metric}", "champion", False, None, "paired bootstrap", detail))
        if slice_ok:
            slice_report["champion"] = slice_metrics(y, champ, slices, *slice_args)
            keys = {column: np.asarray(values).astype(str) for column, values in slices.items()}

            def significance(column: str, value: str) -> dict[str, float]:
                rows = keys[column] == value
                return paired_bootstrap(y[rows], cand[rows], champ[rows], gates.slice_metric, gates.bootstrap_samples,
                                        gates.confidence, seed, gates.precision_target)  # fmt: skip

            checks.extend(_slice_checks(gates, slice_report["candidate"], slice_report["champion"], significance))
        else:
            detail = f"slice_metric {gates.slice_metric!r} is unknown; use one of {', '.join(SCORE_METRICS)}"
            checks.append(GateCheck(f"slice:*:{gates.slice_metric}", "slice", False, None, "known metric", detail))

    return GateReport(
        passed=all(check.passed for check in checks),
        checks=checks,
        candidate_metrics=candidate_metrics,
        champion_metrics=champion_metrics,
        comparison=comparison,
        slices=slice_report,
        notes=notes,
    )
