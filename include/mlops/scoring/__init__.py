"""Nightly batch scoring with the champion: streaming, bounded memory, atomic and idempotent output.

Why it is shaped like this:

* **One model per run.** :func:`mlops.models.pin_champion` resolves the ``champion`` alias ONCE; every
  task of the run gets the same :class:`~mlops.models.PinnedModel`, so a promotion in the middle of a run
  cannot mix two models.
* **Raw XGBoost speed, bounded memory.** A :class:`Chunk` is a set of parquet row groups of ``raw/dt=D``;
  it is streamed in record batches of ``scoring.batch_rows`` rows through the shared ``build_matrix`` and
  ``Booster.inplace_predict`` into a ``ParquetWriter``. Memory depends on the batch size, not on the day.
* **Bounded fan-out.** :func:`plan_chunks` merges row groups so a day never maps to more than
  ``scoring.max_chunks`` tasks.
* **Every validated day once, backlogs too.** :func:`pending_days` gives a run every validated day
  without committed scores (oldest first, at most ``scoring.backlog_days``), so days validated while
  there was no champion, during an outage or in a backfill are scored by the next run; a day already
  scored is left alone unless a run names it (a re-score). Chunks and results carry their ``day``.
* **Atomic, idempotent output.** Chunks write parts into the run's staging folder; only
  :func:`commit_scores` makes them visible, through the lake publisher, replacing the day's previous
  output, with ``_SUCCESS`` LAST. Readers trust ``scores/dt=D/`` only when ``_SUCCESS`` exists. A run
  killed before its commit leaves only staging, which readers ignore and the next commit removes.

Output columns: the dataset's id column (its raw type), ``score`` float32, ``decision`` bool
(``float64(score) >= model.decision_threshold``), ``model_version``, ``model_run_id``, ``airflow_run_id``
(strings) and ``scored_at`` (timestamp[us, UTC], one value per run, carried by every :class:`Chunk` so
that re-running a task writes identical bytes).

Modules: :mod:`.plan` (chunks), :mod:`.parquet_io` (reads and the part writer), :mod:`.score` (a chunk,
the commit), :mod:`.shadow` (challenger beside champion). This package is never imported while DAGs
are parsed; MLflow and XGBoost are imported inside :mod:`mlops.models`.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from mlops import aliases
from mlops.data.lake import Lake
from mlops.scoring.parquet_io import ScoringInputError, output_schema, part_name
from mlops.scoring.plan import (
    Backlog,
    Chunk,
    describe_scored,
    pending_days,
    plan_chunks,
    scored_by,
    unscored_days,
)
from mlops.scoring.score import HIST_BINS, ChunkResult, ScoringIncomplete, commit_scores, score_chunk
from mlops.scoring.shadow import shadow_score

if TYPE_CHECKING:
    from mlops.config import Settings

__all__ = [
    "HIST_BINS",
    "Backlog",
    "Chunk",
    "ChunkResult",
    "ScoringIncomplete",
    "ScoringInputError",
    "commit_scores",
    "describe_scored",
    "output_schema",
    "part_name",
    "pending_days",
    "plan_chunks",
    "score_chunk",
    "score_day",
    "scored_by",
    "shadow_score",
    "unscored_days",
]


def score_day(settings: Settings, day: dt.date, run_id: str = "cli") -> dict[str, Any]:
    """``mlops score --date D``: pin, plan, score every chunk, commit, shadow; the same steps as the DAG."""
    lake = Lake.from_settings(settings)
    pinned = aliases.pin_champion(settings)
    scored_at = dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")
    chunks = [chunk.stamped(scored_at, day) for chunk in plan_chunks(settings, lake, day, pinned)]
    results = [score_chunk(settings, lake, day, pinned, chunk, run_id) for chunk in chunks]
    stats = commit_scores(settings, lake, day, pinned, results, run_id)
    return {**stats, "shadow": shadow_score(settings, lake, day, pinned, run_id)}
