"""Scoring one chunk into a staged part, and committing a day's parts atomically.

A chunk streams record batches through the shared :func:`build_matrix` and ``Booster.inplace_predict``
into a parquet part under the run's staging folder; :func:`commit_scores` verifies every part against a
fresh plan and hands the staging folder to the publisher, which swaps it into ``scores/dt=D/`` with
``_STATS.json`` inside and ``_SUCCESS`` last.
"""

from __future__ import annotations

import datetime as dt
import itertools
import logging
import time
from contextlib import closing
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from mlops import models
from mlops.data.lake import STATS, Lake
from mlops.data.publish import commit_staged, finish_marker, recover_staged
from mlops.errors import MlopsError
from mlops.features import build_matrix
from mlops.scoring.parquet_io import (
    SCORED_AT_TYPE,
    ScoringInputError,
    file_schema,
    output_schema,
    part_name,
    part_writer,
    read_batches,
    read_footer,
)
from mlops.scoring.plan import Chunk, needed_columns, plan_chunks

if TYPE_CHECKING:
    from mlops.config import Settings
    from mlops.models import PinnedModel

log = logging.getLogger(__name__)

HIST_BINS = 20


class ScoringIncomplete(MlopsError, RuntimeError):
    """The staged parts do not add up to the day (a chunk missing, or the raw partition changed): not committed."""


@dataclass(frozen=True)
class ChunkResult:
    """What one scored chunk reports to the commit (XCom-safe through ``to_dict``).

    ``day`` (ISO date) says which partition the chunk belongs to when one run scores several days; the
    commit of a day takes only its own results (a result without a day is taken by any commit).
    """

    chunk: int
    rows: int
    positives: int
    score_hist: list[int]
    sum: float
    seconds: float = 0.0
    day: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ChunkResult:
        return cls(int(data["chunk"]), int(data["rows"]), int(data["positives"]), [int(c) for c in data["score_hist"]],
                   float(data["sum"]), float(data.get("seconds", 0.0)), data.get("day"))  # fmt: skip

    def belongs_to(self, day: dt.date) -> bool:
        return self.day is None or self.day == day.isoformat()


def score_chunk(settings: Settings, lake: Lake, day: dt.date, pinned: PinnedModel, chunk: Chunk,
                run_id: str) -> ChunkResult:  # fmt: skip
    """Score one chunk into ``scores/dt=D/_staging/<run>/part-<chunk>.parquet``.

    Streams record batches (memory ~ ``scoring.batch_rows``), so a chunk of any size fits. Re-running
    it with the same chunk (incl. ``scored_at``) and run id rewrites the same bytes. On any failure
    the part is removed and nothing is committed.
    """
    if chunk.day is not None and chunk.day != day.isoformat():
        raise ValueError(f"chunk {chunk.index} belongs to dt={chunk.day}, not to dt={day.isoformat()}")
    spec = pinned.spec
    id_column = settings.dataset.id_column
    raw = lake.partition("raw", day)
    constants = _constants(pinned, run_id, chunk.scored_at_utc(), settings.scoring.batch_rows)
    booster = models.booster(settings, pinned)
    threshold = settings.model.decision_threshold
    staging = lake.staging("scores", day, run_id)
    if not lake.is_s3:
        lake.fs.makedirs(staging, exist_ok=True)
    path = f"{staging}/{part_name(chunk.index)}"

    started = time.monotonic()
    hist = np.zeros(HIST_BINS, dtype=np.int64)
    rows = positives = 0
    total = 0.0
    batches = read_batches(lake, raw, chunk.row_groups, needed_columns(settings, spec), settings.scoring.batch_rows)
    try:
        with closing(batches):
            first = next(batches, None)
            head = first.schema if first is not None else file_schema(lake, lake.data_files(raw)[0])
            schema = output_schema(head.field(id_column))  # the id keeps its raw type
            with part_writer(lake, path, schema) as writer:
                for batch in itertools.chain([first] if first is not None else [], batches):
                    n = batch.num_rows
                    scores = np.asarray(booster.inplace_predict(build_matrix(batch, spec)), dtype=np.float32)
                    decision = scores.astype(np.float64) >= threshold
                    out = [batch.column(id_column), pa.array(scores), pa.array(decision)]
                    out += [column.slice(0, n) for column in constants]
                    writer.write_batch(pa.RecordBatch.from_arrays(out, schema=schema))
                    hist += histogram(scores)
                    rows += n
                    positives += int(decision.sum())
                    total += float(scores.sum(dtype=np.float64))
    except BaseException:
        _remove_quietly(lake, path)
        raise
    if rows != chunk.rows:
        _remove_quietly(lake, path)
        raise ScoringIncomplete(f"chunk {chunk.index} of {lake.url(raw)} has {rows} rows, {chunk.rows} planned")
    log.info("dt=%s chunk %d: %d rows scored with %s v%s -> %s", day, chunk.index, rows, pinned.name,
             pinned.version, lake.url(path))  # fmt: skip
    return ChunkResult(chunk.index, rows, positives, hist.tolist(), total, time.monotonic() - started,
                       day.isoformat())  # fmt: skip


def _constants(pinned: PinnedModel, run_id: str, scored_at: dt.datetime, size: int) -> list[pa.Array]:
    """The per-run columns built once per chunk at batch size; each batch takes a zero-copy slice."""
    values = [
        pa.scalar(pinned.version, pa.string()),
        pa.scalar(pinned.run_id, pa.string()),
        pa.scalar(run_id, pa.string()),
        pa.scalar(scored_at, SCORED_AT_TYPE),
    ]
    return [pa.repeat(value, size) for value in values]


def histogram(scores: np.ndarray) -> np.ndarray:
    """Counts over HIST_BINS equal bins of [0, 1], numpy's edges (the last bin includes 1.0)."""
    return np.histogram(scores, bins=HIST_BINS, range=(0.0, 1.0))[0]


def _remove_quietly(lake: Lake, path: str) -> None:
    try:
        lake.remove(path)
    except Exception:
        log.warning("could not remove the failed part %s (the next commit ignores it)", lake.url(path), exc_info=True)


def commit_scores(settings: Settings, lake: Lake, day: dt.date, pinned: PinnedModel,
                  chunk_results: list[ChunkResult], run_id: str) -> dict[str, Any]:  # fmt: skip
    """Verify the staged parts, then publish the day's output with ``_STATS.json``, ``_SUCCESS`` last.

    Verification re-plans the day (footers only): every planned chunk has a result and a staged part
    whose row count matches, and they add up to the partition's rows; else :class:`ScoringIncomplete`
    and the previous output stays. The swap itself is the publisher's (:func:`commit_staged`).
    ``chunk_results`` may hold results of other days of the same run: only this day's are used.
    """
    chunk_results = [result for result in chunk_results if result.belongs_to(day)]
    final = lake.partition("scores", day)
    staging = lake.staging("scores", day, run_id)
    committed = _committed_by(lake, day, run_id)
    if committed is not None and not lake.exists(staging):  # the retry of a commit killed after its swap
        finish_marker(lake, final)
        log.info("dt=%s: already committed by run %s; nothing to do", day, run_id)
        return committed
    recover_staged(lake, staging, final)  # the retry of a commit killed in the middle of its swap
    plan = plan_chunks(settings, lake, day, pinned)
    results = {result.chunk: result for result in chunk_results}
    planned = {chunk.index: chunk.rows for chunk in plan}
    raw = lake.url(lake.partition("raw", day))
    if set(results) != set(planned):
        raise ScoringIncomplete(
            f"dt={day}: chunk results {sorted(results)} do not match the plan {sorted(planned)} of {raw} "
            f"(the raw partition or the chunk settings changed during the run); nothing was committed, re-run the day"
        )
    for index, rows in planned.items():
        part = f"{staging}/{part_name(index)}"
        if not lake.exists(part):
            raise ScoringIncomplete(f"dt={day}: staged part {lake.url(part)} is missing; nothing was committed")
        try:
            staged = read_footer(lake, part).num_rows
        except ScoringInputError as exc:
            raise ScoringIncomplete(f"dt={day}: staged part is unreadable ({exc}); nothing was committed") from exc
        if not rows == staged == results[index].rows:
            raise ScoringIncomplete(
                f"dt={day}: chunk {index} staged {staged} rows, reported {results[index].rows}, planned {rows} "
                f"(of {raw}); nothing was committed"
            )
    stats = _stats(settings, day, pinned, list(results.values()), run_id)
    commit_staged(lake, staging, final, keep={part_name(index) for index in planned}, json_files={STATS: stats})
    log.info("dt=%s: committed %d rows scored with %s v%s to %s", day, stats["rows"], pinned.name, pinned.version,
             lake.url(final))  # fmt: skip
    return stats


def _committed_by(lake: Lake, day: dt.date, run_id: str) -> dict[str, Any] | None:
    """The day's ``_STATS.json`` when this run's swap already put its output in place (else None)."""
    path = lake.marker("scores", day, STATS)
    if not lake.exists(path):
        return None
    stats = lake.read_json(path)
    return stats if stats.get("run_id") == run_id else None


def _stats(settings: Settings, day: dt.date, pinned: PinnedModel, results: list[ChunkResult],
           run_id: str) -> dict[str, Any]:  # fmt: skip
    rows = sum(r.rows for r in results)
    positives = sum(r.positives for r in results)
    hist = np.sum([r.score_hist for r in results], axis=0, dtype=np.int64) if results else np.zeros(HIST_BINS)
    return {
        "day": day.isoformat(),
        "rows": rows,
        "positives": positives,
        "positive_rate": positives / rows if rows else 0.0,
        "mean_score": sum(r.sum for r in results) / rows if rows else 0.0,
        "score_hist": [int(count) for count in hist],
        "score_hist_edges": [i / HIST_BINS for i in range(HIST_BINS + 1)],
        "decision_threshold": settings.model.decision_threshold,
        "model_name": pinned.name,
        "model_version": pinned.version,
        "model_run_id": pinned.run_id,
        "run_id": run_id,
        "chunks": len(results),
        # Time inside the scoring tasks (read, features, predict, write), summed over chunks: rows/s of the step.
        "scoring_seconds": sum(r.seconds for r in results),
    }
