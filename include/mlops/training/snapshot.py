"""The training window as data: which validated, labelled days, at which DVC revision, split by time.

The split is by day (train < early-stopping validation < holdout), the holdout being the most recent
labelled days. Its identity (days, revision and a hash of its ids) is recorded so the candidate and
the champion are always compared on exactly the same rows.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from mlops.data.lake import SUCCESS, VALIDATED, Lake
from mlops.errors import InputError

if TYPE_CHECKING:
    from mlops.config import Settings
    from mlops.features import FeatureSpec

log = logging.getLogger(__name__)
SPLITS = ("train", "valid", "holdout")


class NoTrainingData(InputError):
    """The window holds too few validated days with arrived labels (or a single class)."""


@dataclass(frozen=True)
class TrainingSnapshot:
    dataset: str
    as_of: str
    registry: str
    registry_revision: str  # the data-registry commit that pins every day below
    days: dict[str, list[str]]  # split -> days
    day_revisions: dict[str, str]  # day -> revision of its own snapshot commit
    #: The drift reference profile's days: the newest validated days up to ``as_of``, labelled or not.
    reference: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainingSnapshot:
        return cls(**data)


@dataclass
class SplitData:
    X: np.ndarray
    y: np.ndarray
    ids: np.ndarray
    table: pa.Table  # raw columns (slices, ids) kept for evaluation

    @property
    def ids_sha256(self) -> str:
        """A hash of the holdout's ids in order: numeric ids by their bytes, other ids (strings) by their text.

        (The bytes of an object array are pointers, which differ in every process.)
        """
        if self.ids.dtype.kind in "biuf":
            return hashlib.sha256(np.ascontiguousarray(self.ids).tobytes()).hexdigest()
        return hashlib.sha256("\x1f".join(map(str, self.ids.tolist())).encode()).hexdigest()


#: Fewest labelled days a window that starts at a change may hold: a train, a validation and a holdout day.
MIN_DAYS_SINCE_CHANGE = 3


def split_days(days: int, holdout_days: int, validation_days: int) -> tuple[int, int]:
    """(holdout, validation) day counts for a window of ``days`` that starts at a change.

    At most the configured split, at least a day each: the holdout about a third of the days, the validation
    about a third of the rest, so the train split keeps the most (about half) while the days since the change
    are few: training on the new concept from a short window beats waiting for a full window of it.
    """
    holdout = max(1, min(holdout_days, days // 3))
    return holdout, max(1, min(validation_days, (days - holdout) // 3))


def resolve_snapshot(settings: Settings, as_of: dt.date, lake: Lake | None = None,
                     since: dt.date | None = None) -> TrainingSnapshot:  # fmt: skip
    """Last ``window_days`` validated days whose labels have arrived by ``as_of``, split by time.

    ``since``: the first day of a confirmed change in what the labels say
    (:func:`mlops.concept_change.concept_change_start`); the window then starts there (days before it teach the
    old concept), with a shorter split while the days since it are few (:func:`split_days`), and at least
    three days (a train, a validation and a holdout day).
    """
    lake = lake or Lake.from_settings(settings)
    training = settings.training
    delay = dt.timedelta(days=settings.dataset.label.delay_days)
    labelled = set(lake.days("labels", SUCCESS))
    days = [d for d in lake.days("raw", VALIDATED) if d in labelled and d + delay <= as_of][-training.window_days :]
    holdout_days, validation_days = training.holdout_days, training.validation_days
    if since is not None and days and days[0] < since:
        days = [d for d in days if d >= since]
        if len(days) < MIN_DAYS_SINCE_CHANGE:
            raise NoTrainingData(
                f"the labels changed from dt={since} on (a confirmed performance drop): the training window up to "
                f"{as_of} has {len(days)} labelled day(s) since then; need at least {MIN_DAYS_SINCE_CHANGE} (train, "
                "validation, holdout). "
                "Days before the change teach the old concept; a later run trains once the labels arrive."
            )
        holdout_days, validation_days = split_days(len(days), holdout_days, validation_days)
    needed = holdout_days + validation_days + 1
    if len(days) < needed:
        raise NoTrainingData(
            f"the training window up to {as_of} has {len(days)} validated day(s) with labels; need at least {needed} "
            f"({holdout_days} holdout + {validation_days} validation + 1 train). "
            "Run data_validation for more days or wait for labels (dataset.label.delay_days)."
        )
    holdout = days[-holdout_days:]
    valid = days[-needed + 1 : -holdout_days]
    train = days[: -needed + 1]
    # The reference profile comes from the newest data there is, not from the train split, which lags by
    # the label delay, the holdout and the validation days: a shift the new champion is promoted into then
    # stops breaching at once instead of re-triggering training until the window catches up.
    reference = [d for d in lake.days("raw", VALIDATED) if d <= as_of][-settings.drift.reference_days :]
    revisions = {d.isoformat(): lake.read_json(lake.marker("raw", d, VALIDATED))["dvc"]["revision"]
                 for d in sorted(set(days) | set(reference))}  # fmt: skip
    from mlops.versioning import registry_head

    return TrainingSnapshot(
        dataset=settings.dataset.name,
        as_of=as_of.isoformat(),
        registry=settings.registry_url,
        registry_revision=registry_head(settings),
        days={
            "train": [d.isoformat() for d in train],
            "valid": [d.isoformat() for d in valid],
            "holdout": [d.isoformat() for d in holdout],
        },  # fmt: skip
        day_revisions=revisions,
        reference=[d.isoformat() for d in reference],
    )


def read_day(fs: Any, settings: Settings, day: str, columns: list[str] | None = None) -> pa.Table:
    """One versioned day from a ``DVCFileSystem`` opened at a registry revision."""
    import pyarrow.parquet as pq

    from mlops.versioning import registry_folder

    folder = registry_folder(settings.dataset.name, day)
    files = sorted(p for p in fs.ls(folder, detail=False) if p.endswith(".parquet"))
    return pa.concat_tables([pq.read_table(fs.open(path, "rb"), columns=columns) for path in files])


def load_features(settings: Settings, snapshot: TrainingSnapshot, days: list[str], spec: FeatureSpec) -> np.ndarray:
    """The feature matrix of ``days`` read by the snapshot's DVC revision (no labels needed)."""
    from mlops.features import build_matrix
    from mlops.versioning import open_registry

    fs = open_registry(snapshot.registry, snapshot.registry_revision)
    tables = [read_day(fs, settings, day, list(spec.names)) for day in days]
    return build_matrix(pa.concat_tables(tables, promote_options="permissive").unify_dictionaries(), spec)


def load_split(settings: Settings, snapshot: TrainingSnapshot, split: str, spec: FeatureSpec) -> SplitData:
    """Rows of one split read *by DVC revision* from the data registry, joined with their labels."""
    from mlops.versioning import open_registry

    lake = Lake.from_settings(settings)
    dataset = settings.dataset
    fs = open_registry(snapshot.registry, snapshot.registry_revision)
    tables, labels = [], []
    for day in snapshot.days[split]:
        tables.append(read_day(fs, settings, day))
        labels.append(lake.read_partition(lake.partition("labels", dt.date.fromisoformat(day))))
    from mlops.features import binary_labels, build_matrix, labelled_rows

    # Permissive: days may differ in columns the contract allows as extra, or in storage widths; the join
    # needs one dictionary per dictionary-encoded column (each day's file brings its own).
    table = pa.concat_tables(tables, promote_options="permissive").unify_dictionaries()
    if dataset.label.column in table.column_names:  # a raw table may carry its label too: labels/ decides
        table = table.drop_columns([dataset.label.column])
    label_table = labelled_rows(pa.concat_tables(labels, promote_options="permissive"), dataset.id_column,
                                dataset.label.column, table.schema.field(dataset.id_column).type)  # fmt: skip
    joined = table.join(label_table, dataset.id_column, join_type="inner").sort_by(dataset.id_column)
    if joined.num_rows < table.num_rows:
        log.warning("%s: %d of %d rows have no label yet", split, table.num_rows - joined.num_rows, table.num_rows)
    y = binary_labels(joined.column(dataset.label.column), dataset.label.positive, dataset.label.column)
    return SplitData(build_matrix(joined, spec), y, joined.column(dataset.id_column).to_numpy(), joined)
