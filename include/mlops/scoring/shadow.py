"""Shadow scoring: a seeded sample of the day scored by champion AND challenger, side by side.

Kept apart from ``scores/dt=D/`` (in the lake's ``shadow`` area) so the champion's output is exactly
the scoring output; published atomically like every other output.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from mlops import aliases, models
from mlops.data.lake import Lake
from mlops.data.publish import publish_partition
from mlops.features import build_matrix
from mlops.scoring.parquet_io import file_schema, read_batches, row_groups
from mlops.scoring.plan import needed_columns

if TYPE_CHECKING:
    from mlops.config import Settings
    from mlops.models import PinnedModel

log = logging.getLogger(__name__)

SHADOW_PART = "part-0.parquet"


def shadow_score(settings: Settings, lake: Lake, day: dt.date, champion: PinnedModel,
                 run_id: str) -> dict[str, Any] | None:  # fmt: skip
    """Score a seeded sample with the champion and a distinct challenger; returns a comparison summary.

    The summary holds rows, mean absolute score difference and decision agreement; None when there is
    no challenger, it is the champion, or ``scoring.shadow_sample_rows`` is 0.
    """
    sample_rows = settings.scoring.shadow_sample_rows
    version = aliases.alias_version(settings, models.CHALLENGER) if sample_rows else None
    if version is None or version == champion.version:
        log.info("dt=%s: no shadow scoring (challenger %s, champion v%s)", day, version, champion.version)
        return None
    challenger = models.pin_version(settings, version)
    sample = _sample(settings, lake, day, needed_columns(settings, champion.spec, challenger.spec), sample_rows)
    champion_scores = _predict(settings, champion, sample)
    challenger_scores = _predict(settings, challenger, sample)
    n = sample.num_rows
    table = pa.table({
        settings.dataset.id_column: sample.column(settings.dataset.id_column),
        "champion_score": champion_scores,
        "challenger_score": challenger_scores,
        "champion_version": pa.repeat(pa.scalar(champion.version, pa.string()), n),
        "challenger_version": pa.repeat(pa.scalar(challenger.version, pa.string()), n),
    })  # fmt: skip
    partition = lake.partition("shadow", day)

    def write(staging: str) -> None:
        with lake.fs.open(f"{staging}/{SHADOW_PART}", "wb") as handle:
            pq.write_table(table, handle, compression="snappy")

    publish_partition(lake, partition, write)
    threshold = settings.model.decision_threshold
    champion_decision = champion_scores.astype(np.float64) >= threshold
    challenger_decision = challenger_scores.astype(np.float64) >= threshold
    summary = {
        "day": day.isoformat(),
        "rows": n,
        "champion_version": champion.version,
        "challenger_version": challenger.version,
        "mean_abs_diff": float(np.abs(champion_scores - challenger_scores).mean()) if n else 0.0,
        "decision_agreement": float((champion_decision == challenger_decision).mean()) if n else 1.0,
        "champion_positive_rate": float(champion_decision.mean()) if n else 0.0,
        "challenger_positive_rate": float(challenger_decision.mean()) if n else 0.0,
        "run_id": run_id,
        "path": lake.url(partition),
    }
    log.info("dt=%s shadow: v%s vs v%s on %d rows, mean |diff| %.5f, decisions agree %.4f", day,
             champion.version, challenger.version, n, summary["mean_abs_diff"],
             summary["decision_agreement"])  # fmt: skip
    return summary


def _predict(settings: Settings, pinned: PinnedModel, data: pa.Table) -> np.ndarray:
    booster = models.booster(settings, pinned)
    return np.asarray(booster.inplace_predict(build_matrix(data, pinned.spec)), dtype=np.float32)


def _sample(settings: Settings, lake: Lake, day: dt.date, columns: list[str], size: int) -> pa.Table:
    """A seeded uniform sample of ``size`` rows, streamed: memory ~ one batch plus the sample."""
    raw = lake.partition("raw", day)
    files = lake.data_files(raw)
    groups = row_groups(lake, files, columns)
    total = sum(rows for _, _, rows in groups)
    rng = np.random.default_rng([settings.training.seed, day.toordinal()])
    wanted = np.sort(rng.choice(total, size=min(size, total), replace=False))
    picked, offset = [], 0
    for batch in read_batches(lake, raw, [(name, index) for name, index, _ in groups], columns,
                              settings.scoring.batch_rows):  # fmt: skip
        lo, hi = np.searchsorted(wanted, [offset, offset + batch.num_rows])
        if hi > lo:
            picked.append(batch.take(pa.array(wanted[lo:hi] - offset)))
        offset += batch.num_rows
    if picked:
        return pa.Table.from_batches(picked)
    schema = file_schema(lake, files[0])
    return pa.schema([schema.field(name) for name in columns]).empty_table()
