"""The sections ``mlops dataset init`` sizes from the landed labels: ``training:`` (window, holdout, early-stopping
split, minimum positives) and the slice sizes of ``gates:``, each value with the reason it was chosen.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlops.config import GatesSpec, TrainingSpec

if TYPE_CHECKING:
    import pyarrow as pa

#: Drafted slice gates: a slice value is compared with the champion once it holds this many positives at least
#: (a fifth of the holdout's, up to the default) and rows at least (those positives at the base rate, at least
#: this many, up to the default). Below that a slice's AUC-PR is noise; the default 500 rows skip every slice
#: of a small holdout.
MIN_SLICE_POSITIVES, MIN_SLICE_ROWS = 5, 30
#: Positives the drafted holdout should hold: the gates' bootstrap CI of AUC-PR is about +-0.04..0.1 on 100
#: positives and +-0.1..0.17 on 25 (measured at 1-30 % positive rates), and random scores reach an
#: ``auc_pr_lift`` of 1.4 in 5 % of holdouts of 100 positives: with fewer, the gates decide by noise.
HOLDOUT_POSITIVES = 100
#: Positives the drafted early-stopping (validation) split should hold: enough for a stable ``aucpr`` curve.
VALIDATION_POSITIVES = 50
#: Longest drafted holdout and validation splits, in days: longer ones test (and stop on) stale data.
MAX_SPLIT_DAYS = 7
#: Most rows a drafted training window holds (the local backend trains in memory).
MAX_TRAIN_ROWS = 5_000_000


@dataclass(frozen=True)
class LabelStats:
    """What the labels of the drafted days hold (labelled = non-null label)."""

    days: list[dt.date]
    rows: int
    nulls: int
    positives: int

    @property
    def labelled(self) -> int:
        return self.rows - self.nulls

    @property
    def rate(self) -> float | None:
        return self.positives / self.labelled if self.labelled else None


def label_stats(labels_by_day: Mapping[dt.date, pa.Table], id_column: str, label: str, positive: Any,
                 id_type: pa.DataType) -> LabelStats | None:  # fmt: skip
    """Rows, null labels and positives of the label days (null labels are left out, as training does)."""
    from mlops.features import binary_labels, labelled_rows

    days, rows, nulls, positives = [], 0, 0, 0
    for day, table in labels_by_day.items():
        if label not in table.column_names:
            continue
        kept = labelled_rows(table, id_column, label, id_type)
        days.append(day)
        rows, nulls = rows + table.num_rows, nulls + table.column(label).null_count
        positives += int(binary_labels(kept.column(label), positive, label).sum()) if kept.num_rows else 0
    return LabelStats(days, rows, nulls, positives) if days else None


def _split_days(positives: int, per_day: float) -> int:
    """Days a split needs to hold ``positives`` at ``per_day`` positives a day (1..:data:`MAX_SPLIT_DAYS`)."""
    return max(1, min(MAX_SPLIT_DAYS, math.ceil(positives / per_day))) if per_day > 0 else MAX_SPLIT_DAYS


def draft_training(stats: LabelStats | None, rows_per_day: float) -> tuple[dict[str, int], dict[str, str], list[str]]:
    """``training:`` sized to the labelled days: (values, why each value, warnings for the review).

    The holdout holds about :data:`HOLDOUT_POSITIVES` positives, the early-stopping split about
    :data:`VALIDATION_POSITIVES` (each at most :data:`MAX_SPLIT_DAYS` days), shortened like a window that starts
    at a change (:func:`mlops.training.snapshot.split_days`) while few days have landed; the window is the default
    (at most :data:`MAX_TRAIN_ROWS` rows): while fewer days have landed, the snapshot trains on the landed days
    minus the holdout and validation days; ``min_positives`` half the positives that first train split should
    hold, at most the default.
    """
    from mlops.training.snapshot import MIN_DAYS_SINCE_CHANGE, split_days

    default = TrainingSpec()
    keys = ("window_days", "holdout_days", "validation_days", "min_positives")
    if stats is None or not stats.labelled:
        values = {key: getattr(default, key) for key in keys}
        return values, dict.fromkeys(keys, "the default (no labelled rows to size it from)"), [
            "training    not sized: no labelled rows among the days read; the defaults are written"]  # fmt: skip
    landed = len(stats.days)
    per_day = stats.positives / landed
    wanted = (_split_days(HOLDOUT_POSITIVES, per_day), _split_days(VALIDATION_POSITIVES, per_day))
    holdout, validation = wanted
    fitted = ""
    if landed < holdout + validation + 1 and landed >= MIN_DAYS_SINCE_CHANGE:
        holdout, validation = split_days(landed, holdout, validation)
        fitted = f"; shortened to fit the {landed} labelled days landed (raise to {wanted[0]}/{wanted[1]} later)"
    row_cap = max(1, int(MAX_TRAIN_ROWS // max(rows_per_day, 1.0)))
    window = max(holdout + validation + 1, min(default.window_days, row_cap))
    # The snapshot takes the last window_days labelled days there are: while fewer have landed, the first run
    # trains on the landed days minus the holdout and validation days, and the train split grows as days land.
    train_days = max(1, min(window, landed) - holdout - validation)
    expected = per_day * train_days
    min_positives = max(1, min(default.min_positives, math.floor(expected / 2)))

    def capped(days: int, want: int) -> str:
        return f", capped at {MAX_SPLIT_DAYS} days" if days == MAX_SPLIT_DAYS and per_day * days < want else ""

    why_window = (f"{MAX_TRAIN_ROWS:,} rows at most at ~{rows_per_day:,.0f} rows a day" if window < default.window_days
                  else "the default")  # fmt: skip
    if landed < window:
        why_window += (f"; {landed} labelled day(s) read: the first run trains on {train_days} (those minus "
                       f"{holdout} holdout and {validation} validation), then up to {window - holdout - validation}"
                       " as days land")  # fmt: skip
    reasons = {
        "window_days": why_window,
        "holdout_days": f"~{per_day * holdout:.0f} positives at {per_day:.1f} a day; the gates want >= "
                        f"{HOLDOUT_POSITIVES} (AUC-PR's CI is about +-0.1 on 100, +-0.15 on 25)"
                        f"{capped(holdout, HOLDOUT_POSITIVES)}{fitted}",
        "validation_days": f"~{per_day * validation:.0f} positives for early stopping (>= {VALIDATION_POSITIVES} "
                           f"wanted){capped(validation, VALIDATION_POSITIVES)}{fitted}",
        "min_positives": f"half the ~{expected:.0f} positives a {train_days}-day train split should hold (at most "
                         f"the default {default.min_positives}): fewer stops the run, a thin day still trains",
    }  # fmt: skip
    values = {"window_days": window, "holdout_days": holdout, "validation_days": validation,
              "min_positives": min_positives}  # fmt: skip
    warnings = []
    enough = HOLDOUT_POSITIVES + VALIDATION_POSITIVES + default.min_positives
    if stats.positives < enough:
        warnings.append(f"TOO FEW POSITIVES: {stats.positives} labelled positive(s) in {landed} day(s); a holdout, "
                        f"an early-stopping split and a train split want ~{enough}: the gates judge on noise until "
                        "more days land")  # fmt: skip
    if landed < holdout + validation + 1:
        warnings.append(f"training needs {holdout + validation + 1} labelled days ({holdout} holdout + {validation} "
                        f"validation + 1 train); {landed} read here: the first run waits for more")  # fmt: skip
    return values, reasons, warnings


def draft_gates(rate: float | None, holdout_rows: float, holdout_positives: float,
                default: GatesSpec | None = None) -> tuple[dict[str, int], dict[str, str]]:  # fmt: skip
    """What of the gates depends on the data: the slice sizes, for a holdout of about ``holdout_rows`` rows and
    ``holdout_positives`` positives; (the keys that differ from ``default``, the deployment's gates; why each value).

    The absolute defaults are relative to the holdout's positive rate (``auc_pr_lift``, ``brier_skill``,
    ``ece_ratio``), so they fit a table of 1 % or 30 % positives and are not drafted.
    """
    default = default or GatesSpec()
    if rate is None or not 0.0 < rate < 1.0 or not holdout_positives:
        return {}, {}
    positives = max(MIN_SLICE_POSITIVES, min(default.slice_min_positives, int(holdout_positives // 5)))
    rows = max(MIN_SLICE_ROWS, min(default.slice_min_rows, math.ceil(positives / rate)))
    share = f"; a value needs {rows / holdout_rows:.0%} of the ~{holdout_rows:.0f} holdout rows" if holdout_rows else ""
    reasons = {
        "slice_min_positives": f"a fifth of the holdout's ~{holdout_positives:.0f} positives, {MIN_SLICE_POSITIVES}.."
                               f"{default.slice_min_positives}",
        "slice_min_rows": f"{positives} positives at the rate {rate:.3f}, {MIN_SLICE_ROWS}..{default.slice_min_rows}"
                          f"{share}",
    }  # fmt: skip
    values = {"slice_min_rows": rows, "slice_min_positives": positives}
    return {k: v for k, v in values.items() if v != getattr(default, k)}, reasons
