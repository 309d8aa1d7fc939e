"""The verdict of one day's validation: its :class:`Failure` lines and GX's results read as failures and warnings.

Apart from ``mlops.validation`` (which reads the day and runs the suite) so that what a verdict says, and how a
GX expectation result becomes a line naming the file, column and rule, has one home. A value from the data is
quoted short (:func:`shorten`), so one huge cell never becomes a huge reason. A breach within a rule's tolerance
(see ``mlops.data.contract``) is a *warning* in the same shape as a failure: warnings never quarantine.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from mlops.errors import Quarantined
from mlops.gx_suite import EVENT_TIME_RULE, RULES, plain

if TYPE_CHECKING:
    from mlops.data.contract import Contract

#: How much of a value from the data a reason quotes: a 5 MB cell must not become a 5 MB log line, alert or page.
QUOTE_LIMIT = 80


def shorten(value: Any, limit: int = QUOTE_LIMIT) -> Any:
    """A value from the data as a reason quotes it: a text longer than ``limit`` is cut and says its length.

    ``"a" * 5_000_000`` -> ``"aaaa… (5000000 chars)"`` (``limit`` characters, then the length); other values as is.
    """
    if isinstance(value, str) and len(value) > limit:
        return f"{value[:limit]}… ({len(value)} chars)"
    return value


class ValidationFailed(Quarantined):
    """A partition broke its contract; the message names the file, column and rule."""

    def __init__(self, verdict: Verdict) -> None:
        super().__init__(verdict.summary())
        self.verdict = verdict


@dataclass
class Failure:
    rule: str
    column: str | None
    observed: Any
    expected: Any
    file: str | None = None
    sample_ids: list[Any] = field(default_factory=list)

    def __post_init__(self) -> None:  # a column name and the ids come from the data too
        self.column = shorten(self.column)
        self.sample_ids = [shorten(value) for value in self.sample_ids]

    def describe(self) -> str:
        where = f"column '{self.column}'" if self.column else "table"
        text = f"[{self.rule}] {where}: observed {self.observed!r}, expected {self.expected!r}"
        if self.file:
            text += f" (file {self.file})"
        if self.sample_ids:
            text += f"; offending ids e.g. {self.sample_ids}"
        return text


@dataclass
class Verdict:
    dataset: str
    day: str
    partition: str
    contract: dict[str, str]
    rows: int = 0
    files: list[str] = field(default_factory=list)
    #: file name -> size, md5, sha256 of the bytes this verdict read: what "validated" covers, and nothing else.
    manifest: dict[str, dict[str, Any]] = field(default_factory=dict)
    failures: list[Failure] = field(default_factory=list)
    #: Breaches within a rule's tolerance: the day passes with them (logged, recorded in ``_VALIDATED.json``).
    warnings: list[Failure] = field(default_factory=list)
    suite: dict[str, Any] = field(default_factory=dict)
    data_docs: str | None = None

    @property
    def passed(self) -> bool:
        return not self.failures

    def summary(self) -> str:
        """One line that names the rule, column and file first (it is what a failure callback shows)."""
        contract = f"contract {self.contract['name']} v{self.contract['version']}"
        if self.passed:
            passed = f"{self.partition}: {self.rows} rows passed {contract}"
            if not self.warnings:
                return passed
            first, *rest = self.warnings
            more = f" (+{len(rest)} more)" if rest else ""
            return f"{passed} with {len(self.warnings)} warning(s): {first.describe()}{more}"
        first, *rest = self.failures
        more = f" (+{len(rest)} more rule(s) broken)" if rest else ""
        lines = [f"{self.partition} failed {contract}: {first.describe()}{more}"]
        lines += [f"  - {failure.describe()}" for failure in rest]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        payload = asdict(self)
        payload["passed"] = self.passed
        return payload


# -- GX results as failures and warnings -------------------------------------------------------------------
def column_set_failures(expected: list[str], columns: list[str]) -> list[Failure]:
    missing, extra = sorted(set(expected) - set(columns)), sorted(set(columns) - set(expected))
    failures = [Failure("column_present", name, "missing", "present") for name in missing]
    return failures + [Failure("no_extra_columns", name, "unexpected column", "absent") for name in extra]


def _percent(fraction: float) -> str:
    """``0.0127`` -> ``1.3``; small fractions keep two significant digits (``0.00033`` -> ``0.033``)."""
    percent = 100.0 * fraction
    return f"{percent:.1f}" if percent >= 0.1 or percent == 0 else f"{percent:.2g}"


def _null_tolerance(fraction: float) -> str:
    return f"no nulls (up to {_percent(fraction)} % tolerated)"


def unknown_values(result: Any, contract: Contract) -> Failure:
    """The ``allowed_values`` warning or failure of a column with a tolerance, from GX's row-level in-set result."""
    kwargs = result.expectation_config.kwargs
    column = kwargs["column"]
    found = (result.result or {}).get("partial_unexpected_list") or []  # values as they occur, repeated
    shown = [shorten(value) for value in sorted(set(map(str, found)))[:10]]
    count = int((result.result or {}).get("unexpected_count") or 0)
    percent = float((result.result or {}).get("unexpected_percent") or 0.0) / 100.0  # of the non-null rows
    tolerated = _percent(contract.columns[column].max_unknown_fraction)
    return Failure("allowed_values", column, f"unknown values {shown} on {count} rows ({_percent(percent)} %)",
                   f"one of {kwargs['value_set']} (up to {tolerated} % unknown tolerated)")  # fmt: skip


def tolerated_unknowns(passed: list[Any], contract: Contract, skip: set[str]) -> list[Failure]:
    """A passed in-set check with unknown rows: within the column's tolerance, so a warning."""
    return [unknown_values(item, contract) for item in passed
            if item.expectation_config.type == "expect_column_values_to_be_in_set"
            and item.expectation_config.kwargs.get("column") not in skip
            and (item.result or {}).get("unexpected_count")]  # fmt: skip


def null_warnings(results: list[Any], contract: Contract, rows: int, skip: set[str]) -> list[Failure]:
    """A passed non-null proportion with nulls on a ``nullable: false`` column: nulls tolerated, so a warning."""
    warnings = []
    for item in results:
        config = item.expectation_config
        column = config.kwargs.get("column")
        if config.type != "expect_column_proportion_of_non_null_values_to_be_between" or column in skip:
            continue
        rule = contract.columns[column]
        observed = plain((item.result or {}).get("observed_value"))
        if rule.nullable or not rule.max_null_fraction or observed is None or float(observed) >= 1.0:
            continue
        fraction = 1.0 - float(observed)
        warnings.append(Failure("not_null", column, f"null fraction {round(fraction, 6)} ({round(fraction * rows)} "
                                f"rows)", _null_tolerance(rule.max_null_fraction)))  # fmt: skip
    return warnings


def failure_from_result(result: Any, contract: Contract, rows: int = 0) -> Failure:
    config = result.expectation_config
    kwargs = dict(config.kwargs)
    rule, _ = RULES.get(config.type, (config.type, None))
    column = kwargs.get("column")
    observed = plain((result.result or {}).get("observed_value"))
    expected: Any
    if config.type == "expect_column_type_to_be":
        expected = contract.columns[column].type
    elif config.type == "expect_column_proportion_of_non_null_values_to_be_between":
        null_fraction = None if observed is None else round(1.0 - float(observed), 6)
        column_rule = contract.columns[column]
        rule = "not_null" if not column_rule.nullable else "max_null_fraction"
        observed, expected = f"null fraction {null_fraction}", f"<= {round(1 - kwargs['min_value'], 6)}"
        if not column_rule.nullable and column_rule.max_null_fraction and null_fraction is not None:
            observed = f"null fraction {null_fraction} ({round(null_fraction * rows)} rows)"
            expected = _null_tolerance(column_rule.max_null_fraction)
    elif config.type == "expect_column_distinct_values_to_be_in_set":
        unknown = sorted(map(str, (result.result or {}).get("partial_unexpected_list") or []))
        shown = [shorten(value) for value in unknown[:10]]
        observed, expected = f"unknown values {shown}", f"one of {kwargs['value_set']}"
    elif config.type == "expect_column_proportion_of_unique_values_to_be_between":
        expected = "all values unique"
        observed = f"unique fraction {observed}"
    elif (config.meta or {}).get("rule") == EVENT_TIME_RULE:  # min/max of the event time: within the day
        rule = EVENT_TIME_RULE
        bound = kwargs.get("min_value") if config.type == "expect_column_min_to_be_between" else kwargs.get("max_value")
        side = ">=" if config.type == "expect_column_min_to_be_between" else "<="
        shown = bound.isoformat() if isinstance(bound, dt.datetime) else str(bound)
        observed = f"{'earliest' if side == '>=' else 'latest'} {observed}"
        expected = f"{side} {shown} (the partition's UTC day +- {contract.event_time_tolerance_hours} h)"
    elif config.type == "expect_column_min_to_be_between":
        expected = f">= {kwargs['min_value']}"
    elif config.type == "expect_column_max_to_be_between":
        expected = f"<= {kwargs['max_value']}"
    else:  # row count
        low, high = kwargs.get("min_value"), kwargs.get("max_value")
        expected = f"between {low} and {high}" if high is not None else f">= {low}"
    return Failure(rule=rule, column=column, observed=observed, expected=expected)
