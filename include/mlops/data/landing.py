"""Land generated days in the lake the way a producer would: staged, swapped in, ``_SUCCESS`` last.

Labels for day D land ``delay_days`` after D, so a run that generates up to day E writes labels
only for days D with D + delay <= E (``labels_until``). Days are independent (seeded per day), so
a later run can land the labels that came due without re-landing the raw data.

Which synthetic table feeds a model is chosen by its dataset name (:data:`SOURCES`): card transactions
(:mod:`mlops.data.generator`) and customer-churn snapshots (:mod:`mlops.data.churn`). Each lands in its
model's own lake with the same layout and publish path.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlops.config import Settings
from mlops.data import churn, generator
from mlops.data.lake import SUCCESS, Lake
from mlops.data.publish import publish_partition

if TYPE_CHECKING:
    import pyarrow as pa

log = logging.getLogger(__name__)
DATA_FILE = "part-00000.parquet"


@dataclass(frozen=True)
class Landed:
    day: str
    rows: int
    raw: str | None
    labels: str | None


@dataclass(frozen=True)
class Source:
    """A synthetic producer: one seeded day of (raw, labels) tables and the drift it can inject."""

    rows: str  # what its rows are, for messages
    generate_day: Callable[..., tuple[pa.Table, pa.Table]]  # (day, rows, seed, drift) -> (raw, labels)
    drift_spec: Callable[..., Any]  # (start, kind, features, magnitude) -> the source's DriftSpec

    def drift(self, start: dt.date, kind: str, features: tuple[str, ...] = (), magnitude: float = 1.0) -> Any:
        """This source's drift spec (its own feature names; the same kinds: covariate, concept, prior)."""
        return self.drift_spec(start, kind, tuple(features), magnitude)


#: The synthetic sources, by the dataset name they feed (``dataset.name``, by default the model's name).
SOURCES: dict[str, Source] = {
    "card_transactions": Source("card transactions", generator.generate_day, generator.DriftSpec),
    "customer_churn": Source("customer renewal snapshots", churn.generate_day, churn.DriftSpec),
}


def source_of(settings: Settings) -> Source:
    """The synthetic source of the settings' dataset; a clear error for a table no generator here makes."""
    name = settings.dataset.name
    if name not in SOURCES:
        raise ValueError(f"no synthetic source feeds dataset {name!r} (sources: {', '.join(SOURCES)}): land its "
                         "days with your own producer (raw/dt=D, then labels/dt=D, _SUCCESS last)")  # fmt: skip
    return SOURCES[name]


#: Rows per parquet row group of a landed file (the lake writer's default).
ROW_GROUP_ROWS = 131_072


def _land(lake: Lake, area: str, day: dt.date, table: pa.Table, row_group_rows: int = ROW_GROUP_ROWS) -> str:
    """Publish one partition; re-landing a day replaces it exactly (and drops its old markers)."""
    partition = lake.partition(area, day)
    publish_partition(lake, partition,
                      lambda staging: lake.write_parquet(table, f"{staging}/{DATA_FILE}", row_group_rows))  # fmt: skip
    return lake.url(partition)


def land_days(
    settings: Settings,
    start: dt.date,
    days: int,
    rows_per_day: int,
    seed: int,
    drift: Any = None,
    labels_until: dt.date | None = None,
    row_group_rows: int = ROW_GROUP_ROWS,
) -> list[Landed]:
    """Write ``raw/dt=D`` for each day, and the labels that have come due by ``labels_until``.

    The rows come from the dataset's synthetic source (:func:`source_of`); ``drift`` is that source's
    ``DriftSpec`` (``source_of(settings).drift(...)``).

    ``row_group_rows`` sizes the raw files' parquet row groups, as a producer's writer would (scoring
    splits a day into chunks of whole row groups).

    Labels of days landed by an earlier call (up to ``delay_days`` before ``start``) are landed too
    once due; they are regenerated from the same seed, so pass the same ``rows_per_day`` and ``seed``.
    """
    if days < 1:
        raise ValueError(f"days must be >= 1, got {days}")
    if rows_per_day < 0:
        raise ValueError(f"rows_per_day must be >= 0, got {rows_per_day}")
    source = source_of(settings)
    lake = Lake.from_settings(settings)
    delay_days = settings.dataset.label.delay_days
    labels_until = labels_until or start + dt.timedelta(days=days - 1)
    landed = []
    for offset in range(-delay_days, days):
        day = start + dt.timedelta(days=offset)
        in_range = offset >= 0
        labels_due = day + dt.timedelta(days=delay_days) <= labels_until
        if not in_range:
            landed_before = lake.exists(lake.partition("raw", day)) or lake.exists(lake.partition("quarantine", day))
            labels_done = lake.exists(lake.marker("labels", day, SUCCESS))
            if not (labels_due and landed_before and not labels_done):
                continue
        raw, labels = source.generate_day(day, rows_per_day, seed, drift)
        raw_uri = _land(lake, "raw", day, raw, row_group_rows) if in_range else None
        labels_uri = _land(lake, "labels", day, labels) if labels_due else None
        landed.append(Landed(day.isoformat(), raw.num_rows, raw_uri, labels_uri))
        log.info("landed dt=%s: %d rows%s%s", day, raw.num_rows,
                 " (raw)" if raw_uri else "", " + labels" if labels_uri else "")  # fmt: skip
    return landed
