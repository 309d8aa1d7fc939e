"""Planning a scoring run: the day's parquet row groups packed into a bounded number of chunks.

A :class:`Chunk` is what one mapped scoring task receives; :func:`plan_chunks` reads parquet footers
only, and checks that every column the model needs is there before anything is scored.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any

from mlops.data.lake import VALIDATED, Lake
from mlops.features import FeatureSpec
from mlops.scoring.parquet_io import ScoringInputError, row_groups

if TYPE_CHECKING:
    from mlops.config import Settings
    from mlops.models import PinnedModel


@dataclass(frozen=True)
class Chunk:
    """Consecutive row groups of ``raw/dt=D`` scored by one task (XCom-safe through ``to_dict``).

    ``row_groups`` lists ``(file name, row-group index)`` pairs (a chunk may span files); ``scored_at``
    is the run's single scoring time (ISO-8601), stamped by the caller so a re-run writes the same rows.
    """

    index: int
    rows: int
    row_groups: list[tuple[str, int]] = field(default_factory=list)
    scored_at: str | None = None

    def stamped(self, scored_at: str) -> Chunk:
        return replace(self, scored_at=scored_at)

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
                   data.get("scored_at"))  # fmt: skip


def needed_columns(settings: Settings, *specs: FeatureSpec) -> list[str]:
    """The id column and every feature of ``specs``, once each, in order."""
    names = [settings.dataset.id_column] + [name for spec in specs for name in spec.names]
    return list(dict.fromkeys(names))


def _configured_spec(settings: Settings) -> FeatureSpec:
    from mlops.data.contract import Contract
    from mlops.features import feature_spec

    return feature_spec(settings, Contract.load(settings.contract_path))


def validated_files(lake: Lake, day: dt.date) -> list[str]:
    """The parquet files of ``raw/dt=D``, only if the day carries ``_VALIDATED.json``."""
    if not lake.exists(lake.marker("raw", day, VALIDATED)):
        raise ScoringInputError(
            f"{lake.url(lake.partition('raw', day))} has no {VALIDATED}: only validated partitions are scored. Run "
            f"the `data_validation` DAG (or `mlops validate --date {day.isoformat()}`) for that day first."
        )
    raw = lake.partition("raw", day)
    files = lake.data_files(raw)
    if not files:
        raise ScoringInputError(f"{lake.url(raw)} is marked validated but holds no parquet files")
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
