"""Planning a scoring run: which days it scores, and each day's parquet row groups packed into chunks.

:func:`pending_days` picks the run's days: every validated day without committed scores (oldest first,
capped by ``scoring.backlog_days``) plus the days a run was explicitly asked to re-score, so a day
validated while there was no champion, during an outage or in a backfill is scored by the next run.
A :class:`Chunk` is what one mapped scoring task receives; :func:`plan_chunks` reads parquet footers
only, and checks that every column the model needs is there before anything is scored; it reads only the
files the day's verdict validated (:func:`validated_files`: names, sizes and sha256 as ``_VALIDATED.json`` lists).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any

from mlops.data.lake import STATS, SUCCESS, VALIDATED, Lake, refuse_changes
from mlops.features import FeatureSpec
from mlops.scoring.parquet_io import ScoringInputError, row_groups

if TYPE_CHECKING:
    from mlops.config import Settings
    from mlops.models import PinnedModel


@dataclass(frozen=True)
class Chunk:
    """Consecutive row groups of ``raw/dt=D`` scored by one task (XCom-safe through ``to_dict``).

    ``row_groups`` lists ``(file name, row-group index)`` pairs (a chunk may span files); ``scored_at``
    is the run's single scoring time (ISO-8601), stamped by the caller so a re-run writes the same rows;
    ``day`` (ISO date) names the partition when one run scores several days.
    """

    index: int
    rows: int
    row_groups: list[tuple[str, int]] = field(default_factory=list)
    scored_at: str | None = None
    day: str | None = None

    def stamped(self, scored_at: str, day: dt.date | str | None = None) -> Chunk:
        """The chunk with the run's scoring time (and its day, when given)."""
        if day is None:
            return replace(self, scored_at=scored_at)
        return replace(self, scored_at=scored_at, day=day if isinstance(day, str) else day.isoformat())

    def scored_at_utc(self) -> dt.datetime:
        if not self.scored_at:
            raise ValueError(
                "chunk has no 'scored_at': the caller stamps every chunk of a run with the same time "
                "(the DAG uses the run's data interval end), so that re-running a task writes identical rows"
            )
        stamp = dt.datetime.fromisoformat(self.scored_at)
        return stamp.replace(tzinfo=dt.UTC) if stamp.tzinfo is None else stamp.astimezone(dt.UTC)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "row_groups": [[name, index] for name, index in self.row_groups]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Chunk:
        return cls(int(data["index"]), int(data["rows"]), [(str(n), int(i)) for n, i in data.get("row_groups", [])],
                   data.get("scored_at"), data.get("day"))  # fmt: skip


def scored_by(lake: Lake, day: dt.date) -> dict[str, Any] | None:
    """The committed output of ``day`` as its ``_STATS.json`` says (run id, model version, rows), else None.

    Only a partition with ``_SUCCESS`` counts: staging left by a killed run is not an output.
    """
    if not lake.exists(lake.marker("scores", day, SUCCESS)):
        return None
    stats_path = lake.marker("scores", day, STATS)
    return lake.read_json(stats_path) if lake.exists(stats_path) else {}


def unscored_days(lake: Lake) -> list[dt.date]:
    """Validated days (``raw/dt=D/_VALIDATED.json``) without scores (``scores/dt=D/_SUCCESS``), oldest first."""
    scored = set(lake.days("scores", SUCCESS))
    return [day for day in lake.days("raw", VALIDATED) if day not in scored]


def describe_scored(day: dt.date, stats: dict[str, Any]) -> str:
    """``dt=D already scored by <run id> with v<version>`` (what a run that finds its day done says)."""
    return (f"dt={day.isoformat()} already scored by {stats.get('run_id', 'an unknown run')} "
            f"with v{stats.get('model_version', '?')}")  # fmt: skip


@dataclass(frozen=True)
class Backlog:
    """The days one scoring run scores, and what it says about the others (see :func:`pending_days`)."""

    days: list[dt.date]  # to score in this run, oldest first
    scored: dict[dt.date, dict[str, Any]] = field(default_factory=dict)  # requested days already scored: stats
    not_validated: list[dt.date] = field(default_factory=list)  # requested days without _VALIDATED.json
    deferred: list[dt.date] = field(default_factory=list)  # waiting days beyond the cap: the next run's
    later: list[dt.date] = field(default_factory=list)  # waiting days after the run's day: their own runs'

    def notes(self) -> list[str]:
        """One line per fact a run should log: what is already done, what is not ready, what waits."""
        lines = [describe_scored(day, stats) for day, stats in sorted(self.scored.items())]
        lines += [f"dt={day.isoformat()} is not validated: not scored (a validated-data event will start the run "
                  f"that scores it)" for day in self.not_validated]  # fmt: skip
        if self.deferred:
            lines.append(f"{len(self.deferred)} more validated day(s) wait ({_span(self.deferred)}): beyond "
                         f"scoring.backlog_days, the next run scores them")  # fmt: skip
        if self.later:
            lines.append(f"{len(self.later)} validated day(s) after this run's day wait ({_span(self.later)}): "
                         f"their own runs score them")  # fmt: skip
        return lines

    def reason(self) -> str:
        """Why there is nothing to score (when ``days`` is empty)."""
        said = "; ".join(self.notes())
        if said:
            return f"nothing to score: {said}; no other validated day up to this run's day waits"
        return "nothing to score: every validated day has its scores"


def _span(days: list[dt.date]) -> str:
    return days[0].isoformat() if len(days) == 1 else f"{days[0].isoformat()}..{days[-1].isoformat()}"


def pending_days(lake: Lake, requested: list[dt.date] | tuple[dt.date, ...] = (), *, up_to: dt.date | None = None,
                 forced: bool = False, limit: int = 31) -> Backlog:  # fmt: skip
    """The days a scoring run scores: every validated day up to ``up_to`` (the run's day; None: no bound)
    with no committed scores, oldest first, at most ``limit``, plus the ``requested`` days when ``forced``
    (a re-score of a day asked for by name). A run for day D never scores a day after D: that day's own
    run does, with the champion of its time.

    Unforced ``requested`` days (the run's own day, the days of the events that started it) are reported:
    already scored (by which run, with which version) or not validated; they are scored like any other
    waiting day. Days beyond ``limit`` are ``deferred`` to the next run.
    """
    validated = set(lake.days("raw", VALIDATED))
    unscored = unscored_days(lake)
    waiting = [day for day in unscored if up_to is None or day <= up_to]
    later = [day for day in unscored if day not in waiting]
    chosen = sorted(set(requested)) if forced else []
    scored: dict[dt.date, dict[str, Any]] = {}
    not_validated: list[dt.date] = []
    if not forced:
        for day in sorted(set(requested)):
            if day not in validated:
                not_validated.append(day)
            elif day not in waiting:
                scored[day] = scored_by(lake, day) or {}
    rest = [day for day in waiting if day not in chosen]
    room = max(limit - len(chosen), 0)
    return Backlog(sorted(chosen + rest[:room]), scored, not_validated, rest[room:], later)


def needed_columns(settings: Settings, *specs: FeatureSpec) -> list[str]:
    """The id column and every feature of ``specs``, once each, in order."""
    names = [settings.dataset.id_column] + [name for spec in specs for name in spec.names]
    return list(dict.fromkeys(names))


def _configured_spec(settings: Settings) -> FeatureSpec:
    from mlops.data.contract import Contract
    from mlops.features import feature_spec

    return feature_spec(settings, Contract.load(settings.contract_path))


#: What scoring checks each file by: its size and sha256 (a forged mtime or an equal size proves nothing). Measured
#: on a 20k-row day: see the issue's report (hashing reads each file once more, a small fraction of scoring it).
SCORING_DIGEST = ("sha256",)


def validated_files(lake: Lake, day: dt.date) -> list[str]:
    """The parquet files of ``raw/dt=D`` exactly as its ``_VALIDATED.json`` names them, else :class:`ScoringInputError`.

    A file added, changed (size or sha256) or removed since the verdict is a new delivery, not validated data:
    the day is refused, naming the file. :func:`plan_chunks` runs this when a run plans and again when it
    commits, so rows read in between come from the validated bytes or are not committed.
    """
    marker = lake.marker("raw", day, VALIDATED)
    if not lake.exists(marker):
        raise ScoringInputError(
            f"{lake.url(lake.partition('raw', day))} has no {VALIDATED}: only validated partitions are scored. Run "
            f"the `data_validation` DAG (or `mlops validate --date {day.isoformat()}`) for that day first."
        )
    raw = lake.partition("raw", day)
    manifest = lake.read_json(marker).get("manifest")
    if not isinstance(manifest, dict) or not manifest:
        raise ScoringInputError(
            f"dt={day.isoformat()}: {lake.url(marker)} names no files (written by hand or by an older release), so "
            f"it vouches for none: nothing was scored; run `mlops validate --date {day.isoformat()}` again"
        )
    files = lake.data_files(raw)
    found = {path.rsplit("/", 1)[-1]: path for path in files}
    digests = {name: lake.digest(path, SCORING_DIGEST) if name in manifest else {} for name, path in found.items()}
    refuse_changes(lake, day, manifest, digests, "nothing was scored", ScoringInputError)
    return files


def plan_chunks(settings: Settings, lake: Lake, day: dt.date, pinned: PinnedModel | None = None) -> list[Chunk]:
    """Split ``raw/dt=D`` into chunks of whole row groups.

    About ``scoring.chunk_rows`` rows per chunk, merged further so there are never more than
    ``scoring.max_chunks``. Checks that the id column and every feature (of ``pinned``, else of the
    configured contract) are in each file's schema, before anything is scored.
    """
    files = validated_files(lake, day)
    spec = pinned.spec if pinned is not None else _configured_spec(settings)
    groups = row_groups(lake, files, needed_columns(settings, spec))
    return pack(groups, settings.scoring.chunk_rows, settings.scoring.max_chunks)


def pack(groups: list[tuple[str, int, int]], chunk_rows: int, max_chunks: int) -> list[Chunk]:
    """Consecutive row groups per chunk: at most ``chunk_rows`` rows each (a bigger row group stays whole).

    If that gives more than ``max_chunks`` chunks, pack instead so that every chunk but the last holds at
    least ``ceil(total / max_chunks)`` rows, which cannot give more than ``max_chunks`` chunks. Always at
    least one chunk (an empty day gets an empty part).
    """
    chunks = _greedy(groups, lambda rows, extra: rows > 0 and extra > 0 and rows + extra > chunk_rows)
    if len(chunks) > max_chunks:
        floor = -(-sum(rows for _, _, rows in groups) // max_chunks)
        chunks = _greedy(groups, lambda rows, extra: rows >= floor and extra > 0)
    return chunks or [Chunk(0, 0)]


def _greedy(groups: list[tuple[str, int, int]], full: Callable[[int, int], bool]) -> list[Chunk]:
    """Start a new chunk before a row group when ``full(rows so far, its rows)`` (empty groups never do)."""
    packed: list[tuple[list[tuple[str, int]], int]] = []
    for name, index, rows in groups:
        if not packed or full(packed[-1][1], rows):
            packed.append(([], 0))
        members, total = packed[-1]
        members.append((name, index))
        packed[-1] = (members, total + rows)
    return [Chunk(i, total, members) for i, (members, total) in enumerate(packed)]
