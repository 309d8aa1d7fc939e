"""What ``mlops dataset init`` shows a person to review: each drafted value beside what was observed behind it.

Apart from the drafting (``mlops.datasets``), which decides the values: here only the text, in the order a
person would check it (source, id, event time, label, features, per-column rules, row count, slices, training,
gates).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlops.data.contract import (
    MAX_INFERRED_CATEGORIES,
    NULL_MARGIN,
    RANGE_FACTOR,
    ROW_COUNT_FLOOR,
    Contract,
    hours_beyond_day,
    missing_count,
)

if TYPE_CHECKING:
    import pyarrow as pa

    from mlops.config import Settings
    from mlops.dataset_sizing import LabelStats

#: Shown categories per column in the review (the contract lists them all).
SHOWN_CATEGORIES = 12


@dataclass(frozen=True)
class Evidence:
    """What the draft saw and how each value was chosen ("given" or how it was guessed or measured)."""

    source: str
    raws: Mapping[dt.date, pa.Table]
    raw: pa.Table  # every day read, as one table
    notes: list[str]
    excluded: Mapping[str, str]  # column -> why it is not a feature
    label_how: str
    label_where: str
    labels_source: str
    label_values: pa.ChunkedArray
    positive_how: str
    delay_how: str
    stats: LabelStats | None
    training_warnings: list[str]


def day_runs(days: Sequence[dt.date]) -> str:
    """``2026-03-02..2026-03-05, 2026-03-08``: consecutive days as one run."""
    runs: list[list[dt.date]] = []
    for day in sorted(days):
        if runs and (day - runs[-1][-1]).days == 1:
            runs[-1].append(day)
        else:
            runs.append([day])
    return ", ".join(str(r[0]) if len(r) == 1 else f"{r[0]}..{r[-1]}" for r in runs)


def _number(value: Any) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def _names(columns: Sequence[str]) -> str:
    more = len(columns) - SHOWN_CATEGORIES
    return ", ".join(columns[:SHOWN_CATEGORIES]) + (f", ... (+{more})" if more > 0 else "")


def column_review(raws: Mapping[dt.date, pa.Table], contract: Contract, excluded: Mapping[str, str]) -> list[str]:
    """Per column, what was observed behind each rule: ranges, null fractions, categories (and how stable)."""
    import pyarrow.compute as pc

    n = len(raws)
    ranges, nulls, categories = [], [], []
    tolerated: dict[float, list[str]] = {}  # null-free columns, by the nulls they tolerate (0: strict)
    for column, rule in contract.columns.items():
        present = {d: t.column(column) for d, t in raws.items() if column in t.column_names}
        if len(present) < n:
            nulls.append(f"  {column}: absent on {n - len(present)} of {n} days (null there)")
        if rule.min is not None and rule.max is not None:
            bounds = [pc.min_max(c) for c in present.values()]
            low = min((b["min"].as_py() for b in bounds if b["min"].as_py() is not None), default=None)
            high = max((b["max"].as_py() for b in bounds if b["max"].as_py() is not None), default=None)
            ranges.append(f"  {column}: observed [{_number(low)}, {_number(high)}] -> [{rule.min:g}, {rule.max:g}]")
        missing = sum(missing_count(c) for c in present.values()) + sum(len(t) for t in raws.values()
                                                                         if column not in t.column_names)  # fmt: skip
        observed = missing / max(sum(len(t) for t in raws.values()), 1)
        worst = max((missing_count(c) / max(len(c), 1) for c in present.values()), default=0.0)
        if not missing:
            tolerated.setdefault(rule.max_null_fraction, []).append(column)
        elif rule.nullable:
            daily = f" (at most {worst:.1%} a day)" if n > 1 else ""
            nulls.append(f"  {column}: {observed:.1%} null{daily} -> max_null_fraction {rule.max_null_fraction:g}")
        if column in excluded:
            continue
        if rule.allowed is not None:
            seen: set[str] = set()
            new_days = 0
            for index, values in enumerate(present.values()):
                day_values = {str(v) for v in pc.unique(values.drop_null()).to_pylist()}
                new_days += index > 0 and bool(day_values - seen)
                seen |= day_values
            stable = f", a new one on {new_days} of {len(present) - 1} later days" if len(present) > 1 else ""
            unknown = rule.max_unknown_fraction
            verdict = f"unknown ones on <= {unknown:.0%} of rows warn" if unknown else "a new one fails"
            categories.append(f"  {column}: {len(seen)} seen on {len(present)} day(s){stable} -> allowed, {verdict}: "
                              f"[{_names(rule.allowed)}]")  # fmt: skip
        elif rule.high_cardinality:
            values = len(set().union(*(pc.unique(c.drop_null()).to_pylist() for c in present.values())))
            categories.append(f"  {column}: {values} values (> {MAX_INFERRED_CATEGORIES}): high_cardinality, values "
                              "not checked, hashed into one feature")  # fmt: skip
    for fraction, columns in sorted(tolerated.items()):
        allowed = (f"nullable: false, nulls on <= {fraction:.0%} of rows warn (max_null_fraction)" if fraction
                   else "strict, a null fails")  # fmt: skip
        nulls.append(f"  no nulls seen in {len(columns)} column(s) -> {allowed}: {_names(columns)}")
    review = [f"ranges      physical limits: {RANGE_FACTOR}x the largest observed magnitude (at least 1) each "
              "side; never-negative columns keep min 0. Tighten where you know the real limits", *ranges]  # fmt: skip
    review += [f"nulls       observed -> max_null_fraction: twice the observed, at most halfway to 1, at least "
               f"+{NULL_MARGIN}; nulls reach the model as missing", *nulls]  # fmt: skip
    if categories:
        review += [f"categories  strings of at most {MAX_INFERRED_CATEGORIES} values list them (allowed)", *categories]
    return review


def review_lines(
    settings: Settings,
    evidence: Evidence,
    contract: Contract,
    dataset: Mapping[str, Any],
    training: Mapping[str, int],
    reasons: Mapping[str, str],
    gates: Mapping[str, Any],
) -> list[str]:
    """What a person should look at, in the order they would check it: ``dataset`` is the drafted ``dataset:``
    block, ``training``, ``reasons`` and ``gates`` the sized sections (``gates``: the keys that differ)."""
    import pyarrow.compute as pc

    source, raws, raw, stats = evidence.source, evidence.raws, evidence.raw, evidence.stats
    id_column, time_column, features = dataset["id_column"], dataset["time_column"], dataset["features"]
    label, positive, delay = dataset["label"]["column"], dataset["label"]["positive"], dataset["label"]["delay_days"]
    label_how, label_where, labels_source = evidence.label_how, evidence.label_where, evidence.labels_source
    label_values, how, delay_how = evidence.label_values, evidence.positive_how, evidence.delay_how
    excluded, slices, extra_columns = evidence.excluded, dataset["slices"], contract.extra_columns
    positive_rate = stats.rate if stats is not None else None
    per_day = [t.num_rows for t in raws.values()]
    if len(raws) == 1:
        review = [f"source      {source}: {raw.num_rows} rows x {raw.num_columns} columns"]
    else:
        review = [f"source      {source}: {len(raws)} days, {raw.num_rows} rows ({min(per_day)}..{max(per_day)} a "
                  f"day) x {raw.num_columns} columns"]  # fmt: skip
    review += [f"  {note}" for note in evidence.notes]
    unique = "unique on this day" if len(raws) == 1 else "unique within each day"
    review.append(f"id          {id_column} ({raw.schema.field(id_column).type}; {unique})")
    review.append(f"event time  {time_column} ({raw.schema.field(time_column).type}; any unit or zone is accepted)")
    if contract.event_time_tolerance_hours is not None:
        beyond = max(hours_beyond_day(t.column(time_column), d) for d, t in raws.items())
        seen = f"observed up to {beyond:.1f} h outside" if beyond else "all observed within their day"
        review.append(f"  within dt=D (UTC) +- {contract.event_time_tolerance_hours:g} h (event_time_tolerance_hours; "
                      f"{seen}): a row of another day quarantines the day")  # fmt: skip
    if stats is not None and stats.labelled:
        rate = f"{positive_rate:.3f} ({stats.positives} of {stats.labelled} labelled rows)"
        if not stats.positives:
            rate += f": NO positive label on {labels_source}, check the positive class"
    else:
        rate = "no labelled rows" if stats is not None else "not measured"
    classes = len(pc.unique(label_values.drop_null()))
    one_vs_rest = f"; {classes} classes: {positive!r} against the rest" if classes > 2 else ""
    told = "" if label_how == "given" else f" ({label_how})"
    review.append(f"label       {label}{told} from {label_where}: positive {positive!r} ({how}){one_vs_rest}; "
                  f"positive rate {rate}")  # fmt: skip
    if stats is not None and stats.nulls:
        review.append(f"  {stats.nulls} of {stats.rows} labels null: left out (rows that never got an outcome)")
    nan_labels = missing_count(label_values) - label_values.null_count
    if nan_labels:
        review.append(f"  {nan_labels} labels NaN: training reads them as negatives (only nulls are left out); "
                      "land unknown outcomes as null")  # fmt: skip
    if delay_how == "given":
        delay_how = f"{delay} day(s) (given)"
    review.append(f"label delay {delay_how}; labels/dt=D are used once D + delay has passed (--label-delay-days "
                  "sets it)")  # fmt: skip
    review.append(f"features    {len(features)}: {', '.join(features)}")
    for column, why in excluded.items():
        review.append(f"  not a feature: {column} ({why})")
    review += column_review(raws, contract, excluded)
    smallest = "this day" if len(raws) == 1 else f"the smallest day, {min(per_day)} rows"
    review.append(f"row count   >= {contract.row_count.min} ({ROW_COUNT_FLOOR:.0%} of {smallest}), and "
                  f"{contract.row_count.min_ratio}x..{contract.row_count.max_ratio}x the median of the last "
                  f"{settings.validation.history_days} validated days")  # fmt: skip
    review.append(f"extra cols  {extra_columns}: columns not in the contract "
                  f"{'are ignored' if extra_columns == 'allow' else 'fail validation'}")  # fmt: skip
    review.append(f"slices      {slices or 'none'} (the gates compare candidate and champion per value)")

    if stats is not None and stats.labelled:
        basis = (f"{len(stats.days)} labelled day(s) ({day_runs(stats.days)}): {stats.labelled} labelled rows, "
                 f"{stats.positives} positives (rate {positive_rate:.3f}); {sum(per_day) / len(per_day):.0f} raw rows "
                 "a day")  # fmt: skip
        review.append(f"training    sized to {basis}")
    review += [f"  {key} {training[key]}: {reasons[key]}" for key in training]
    review += [line if line.startswith("training") else f"  {line}" for line in evidence.training_warnings]
    absolute = ", ".join(f"{key} {op} {value:g}" for key, bound in settings.gates.absolute.items()
                         for op, value in ((">=", bound.min), ("<=", bound.max)) if value is not None)  # fmt: skip
    review.append(f"gates       the deployment's: {absolute}")
    review += [f"  {key} {gates.get(key, getattr(settings.gates, key))}: {reasons[key]}"
               for key in ("slice_min_rows", "slice_min_positives") if key in reasons]  # fmt: skip
    return review
