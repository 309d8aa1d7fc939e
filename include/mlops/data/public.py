"""Public tables that ship inside installed packages, landed the way a real producer delivers a table.

Bringing your own data is only proven on data nobody here prepared. These tables are real (collected by
others, read from the files their packages ship, so no network is needed) and each has its own shape:

=============  ==============================================  ==========================================
table          source (package file)                           shape
=============  ==============================================  ==========================================
``affairs``    statsmodels ``datasets/fair/fair.csv``          6,366 survey answers: small-integer codes as
                                                               string categories, a 32 % positive rate
``health``     statsmodels ``datasets/randhie/randhie.csv``    20,190 insurance-experiment person-years:
                                                               bools, skewed counts, a plan category
``life``       plotly ``package_data/datasets/gapminder``      1,704 country-years: a 142-value country
                                                               string, populations up to 1.3e9, a date as
                                                               the event time
=============  ==============================================  ==========================================

Laid out as daily partitions (:func:`land_public`) with what real deliveries have and demos rarely do:
string (or integer) ids, a zoned event time, category levels that first appear after the first day (spread
evenly, one row in a few hundred), rare nulls from the second day on in columns that had none (0.1-2.7 % of
a day's rows), labels that land ``delay_days`` late with some left null (never resolved), an extra column
in the label feed, and a label feed split over two files. A ``shift`` day draws its rows from a shifted
part of the table (with fresh ids), for drift checks. Rows are split without replacement across the days,
so no row is in two days (the shifted day excepted: it is for drift, not for training).
"""

from __future__ import annotations

import datetime as dt
import gzip
import io
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from typing import TYPE_CHECKING

import numpy as np

from mlops.data.lake import Lake
from mlops.data.publish import publish_partition

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

log = logging.getLogger(__name__)
#: Fraction of each day's labels left null: outcomes that were never resolved.
NULL_LABEL_FRACTION = 0.03
#: Rare nulls from the second day on: each day a fraction drawn from this range of its rows (a real feed's).
RARE_NULLS = (0.001, 0.027)


@dataclass(frozen=True)
class Prepared:
    """One public table in the columns a producer would deliver, before it is cut into days."""

    frame: pd.DataFrame  # every raw column but the event time, one row per delivered row
    label: np.ndarray  # bool outcome per row
    id_column: str
    time_column: str
    label_column: str
    time_zone: str | None  # the event time's zone; None: a date column
    late_levels: dict[str, list[str]]  # category column -> levels kept off the first day (they appear later)
    rare_nulls: list[str]  # columns that get rare nulls from the second day on
    shifted: Callable[[pd.DataFrame], np.ndarray]  # rows a shifted day draws from
    extra_label_column: bool = False  # the label feed also carries when the outcome was resolved
    label_files: int = 1  # the label feed of a day arrives as this many files


@dataclass(frozen=True)
class PublicTable:
    """A public table: where it comes from, and how to prepare it."""

    name: str
    source: str
    description: str
    prepare: Callable[[], Prepared]
    corruptible: dict[str, str] = field(default_factory=dict)  # what kind of column -> a column of that kind


def _csv(package: str, *path: str) -> pd.DataFrame:
    """A CSV file shipped inside an installed package (gzip by suffix)."""
    import pandas as pd

    resource = resources.files(package).joinpath(*path)
    with resource.open("rb") as handle:
        data = gzip.decompress(handle.read()) if path[-1].endswith(".gz") else handle.read()
    return pd.read_csv(io.BytesIO(data))


OCCUPATIONS = {1: "student", 2: "farming", 3: "clerical", 4: "teacher", 5: "professional", 6: "managerial"}
RELIGIOUS = {1: "not", 2: "mildly", 3: "fairly", 4: "strongly"}


def _affairs() -> Prepared:
    """statsmodels' Fair (1978) survey: occupation and religiousness codes as the strings a form stores."""
    raw = _csv("statsmodels.datasets.fair", "fair.csv")
    frame = raw[["rate_marriage", "age", "yrs_married", "children", "educ"]].copy()
    frame["rate_marriage"] = frame["rate_marriage"].astype("int64")
    frame["religious"] = raw["religious"].astype(int).map(RELIGIOUS)
    frame["occupation"] = raw["occupation"].astype(int).map(OCCUPATIONS)
    frame["occupation_husb"] = raw["occupation_husb"].astype(int).map(OCCUPATIONS)
    frame.insert(0, "respondent_id", [f"FAIR-{i:05d}" for i in range(len(frame))])
    return Prepared(
        frame=frame, label=(raw["affairs"] > 0).to_numpy(), id_column="respondent_id", time_column="answered_at",
        label_column="had_affair", time_zone="America/Chicago", late_levels={"occupation": ["student"]},
        rare_nulls=["occupation_husb"], shifted=lambda f: (f["yrs_married"] >= 13).to_numpy(),
        extra_label_column=True,
    )  # fmt: skip


HEALTH_PLANS = {0.0: "free", 3.258096: "coins_25", 3.931826: "coins_50", 4.564348: "coins_95"}


def _health() -> Prepared:
    """statsmodels' RAND health-insurance experiment: a frequent visitor (5+ doctor visits a year) or not."""
    raw = _csv("statsmodels.datasets.randhie", "randhie.csv")
    frame = raw[["lpi", "fmde", "disea"]].copy()
    frame["plan"] = [HEALTH_PLANS.get(round(value, 6), "other") for value in raw["lncoins"]]
    frame["individual_deductible"] = raw["idp"].astype(bool)
    frame["physical_limitation"] = raw["physlm"].astype(bool)
    frame["self_rated_health"] = np.select(
        [raw["hlthp"] == 1, raw["hlthf"] == 1, raw["hlthg"] == 1], ["poor", "fair", "good"], "excellent"
    )
    frame.insert(0, "person_year", np.arange(len(frame), dtype=np.int64) + 7_000_000)
    return Prepared(
        frame=frame, label=(raw["mdvis"] >= 5).to_numpy(), id_column="person_year", time_column="claimed_at",
        label_column="frequent_visitor", time_zone="UTC", late_levels={"self_rated_health": ["poor"]},
        rare_nulls=["disea"], shifted=lambda f: (f["plan"] == "free").to_numpy(), label_files=2,
    )  # fmt: skip


def _life() -> Prepared:
    """plotly's gapminder: will a country-year's life expectancy reach 60? A high-cardinality country string."""
    raw = _csv("plotly", "package_data", "datasets", "gapminder.csv.gz")
    frame = raw[["country", "continent", "year", "pop", "gdpPercap"]].copy()
    frame = frame.rename(columns={"gdpPercap": "gdp_per_capita", "pop": "population"})
    frame["population"] = frame["population"].astype("int64")
    # Not the ISO code: gapminder gives both Koreas "KOR". The country's name and the year are unique.
    ids = [f"{country}/{year}" for country, year in zip(raw["country"], raw["year"], strict=True)]
    frame.insert(0, "record_id", ids)
    return Prepared(
        frame=frame, label=(raw["lifeExp"] >= 60).to_numpy(), id_column="record_id", time_column="recorded_on",
        label_column="long_lived", time_zone=None, late_levels={"continent": ["Oceania"]},
        rare_nulls=["country"], shifted=lambda f: (f["year"] <= 1962).to_numpy(),
    )  # fmt: skip


#: The tables, by the name they land as by default (``--table``).
TABLES: dict[str, PublicTable] = {t.name: t for t in (
    PublicTable("affairs", "statsmodels: datasets/fair/fair.csv", "Fair's 1978 survey of marriage and affairs",
                _affairs, {"numeric": "yrs_married", "category": "religious", "nonnegative": "age"}),
    PublicTable("health", "statsmodels: datasets/randhie/randhie.csv", "the RAND health-insurance experiment",
                _health, {"numeric": "fmde", "category": "plan", "nonnegative": "lpi"}),
    PublicTable("life", "plotly: package_data/datasets/gapminder.csv.gz", "gapminder country-years",
                _life, {"numeric": "gdp_per_capita", "category": "continent", "nonnegative": "population"}),
)}  # fmt: skip


def table_of(name: str) -> PublicTable:
    if name not in TABLES:
        raise ValueError(f"unknown public table {name!r}; choose one of {', '.join(TABLES)}")
    return TABLES[name]


@dataclass(frozen=True)
class DayRows:
    """The rows of one landed day: positions in the prepared table, and whether they are fresh copies."""

    day: dt.date
    rows: np.ndarray
    shifted: bool = False


def plan_days(prepared: Prepared, start: dt.date, days: int, seed: int,
              shift: dt.date | None = None) -> list[DayRows]:  # fmt: skip
    """Split the table's rows over ``days`` days (no row twice): late category levels off the first day and
    spread evenly over the others; the ``shift`` day (one of them) draws from the shifted rows instead."""
    if days < 2:
        raise ValueError(f"days must be >= 2 (a first day and later ones), got {days}")
    rng = np.random.default_rng(seed)
    frame = prepared.frame
    late = np.zeros(len(frame), dtype=bool)
    for column, levels in prepared.late_levels.items():
        late |= frame[column].isin(levels).to_numpy()
    common = rng.permutation(np.flatnonzero(~late))
    shift_offset = None if shift is None else (shift - start).days
    if shift_offset is not None and not 0 < shift_offset < days:
        raise ValueError(f"the shifted day {shift} must be one of the landed days after the first")
    normal_days = days - (shift_offset is not None)
    parts = np.array_split(common, normal_days)
    late_parts = np.array_split(rng.permutation(np.flatnonzero(late)), normal_days - 1)
    planned, part = [], 0
    for offset in range(days):
        day = start + dt.timedelta(days=offset)
        if offset == shift_offset:
            pool = np.flatnonzero(prepared.shifted(frame) & ~late)  # a shift of the values, not of new levels
            size = len(parts[0])
            planned.append(DayRows(day, rng.choice(pool, size=size, replace=size > len(pool)), shifted=True))
            continue
        rows = parts[part] if part == 0 else np.concatenate([parts[part], late_parts[part - 1]])
        planned.append(DayRows(day, np.sort(rows)))
        part += 1
    return planned


def day_tables(prepared: Prepared, planned: DayRows, first: bool,
               rng: np.random.Generator) -> tuple[pa.Table, pa.Table]:  # fmt: skip
    """(raw, labels) of one day: event times in the day (UTC) stored in the table's zone, rare nulls after the
    first day, some labels left null, the label feed's extra column."""
    import pyarrow as pa

    frame = prepared.frame.iloc[planned.rows].reset_index(drop=True)
    rows = len(frame)
    ids = frame[prepared.id_column]
    if planned.shifted:  # fresh ids: the same source rows may also be in another day
        ids = ids.map(lambda value: f"{value}-S{planned.day:%m%d}") if ids.dtype == object else ids + 10**9
    columns: dict[str, pa.Array] = {prepared.id_column: pa.array(ids.to_numpy())}
    start = np.datetime64(planned.day.isoformat(), "s")
    instants = np.sort(start + rng.integers(0, 86_400, rows).astype("timedelta64[s]"))
    if prepared.time_zone is None:
        columns[prepared.time_column] = pa.array(np.full(rows, np.datetime64(planned.day.isoformat(), "D")))
    else:
        utc = pa.array(instants.astype("datetime64[ms]"), pa.timestamp("ms", tz="UTC"))
        columns[prepared.time_column] = utc.cast(pa.timestamp("ms", tz=prepared.time_zone))
    for name in frame.columns:
        if name == prepared.id_column:
            continue
        values = frame[name].to_numpy()
        mask = None
        if name in prepared.rare_nulls and not first:
            mask = rng.random(rows) < rng.uniform(*RARE_NULLS)
        columns[name] = pa.array(values, mask=mask)
    raw = pa.table(columns)
    outcome = prepared.label[planned.rows]
    unresolved = rng.random(rows) < NULL_LABEL_FRACTION
    labels: dict[str, pa.Array] = {
        prepared.id_column: columns[prepared.id_column],
        prepared.label_column: pa.array(outcome, mask=unresolved),
    }
    if prepared.extra_label_column:  # when the outcome was resolved: not a label, a timestamp beside it
        resolved = instants.astype("datetime64[ms]") + np.timedelta64(7, "D")
        labels["resolved_at"] = pa.array(resolved, pa.timestamp("ms", tz="UTC"))
    return raw, pa.table(labels)


@dataclass(frozen=True)
class LandedDay:
    day: str
    rows: int
    labels: bool
    shifted: bool


def land_public(lake: Lake, table: str, start: dt.date, days: int, seed: int = 7, delay_days: int = 1,
                shift: dt.date | None = None) -> list[LandedDay]:  # fmt: skip
    """Land ``days`` days of a public table in ``lake`` (``raw/dt=D``, and ``labels/dt=D`` for the days whose
    labels are due by the last day: ``D + delay_days <= last``), each published atomically, ``_SUCCESS`` last."""
    prepared = table_of(table).prepare()
    rng = np.random.default_rng(seed + 1)
    last = start + dt.timedelta(days=days - 1)
    landed = []
    for index, planned in enumerate(plan_days(prepared, start, days, seed, shift)):
        raw, labels = day_tables(prepared, planned, first=index == 0, rng=rng)
        _publish(lake, "raw", planned.day, [raw])
        due = planned.day + dt.timedelta(days=delay_days) <= last
        if due:
            pieces = prepared.label_files
            cuts = np.array_split(np.arange(labels.num_rows), pieces)
            _publish(lake, "labels", planned.day, [labels.take(cut) for cut in cuts])
        landed.append(LandedDay(planned.day.isoformat(), raw.num_rows, due, planned.shifted))
        log.info("landed %s dt=%s: %d rows%s%s", table, planned.day, raw.num_rows, " + labels" if due else "",
                 " (shifted)" if planned.shifted else "")  # fmt: skip
    return landed


def _publish(lake: Lake, area: str, day: dt.date, tables: list[pa.Table]) -> None:
    def write(staging: str) -> None:
        for number, part in enumerate(tables):
            lake.write_parquet(part, f"{staging}/part-{number:05d}.parquet")

    publish_partition(lake, lake.partition(area, day), write)
