"""``mlops dataset init``: bring your own table through config alone; adding a model is one file.

From one landed day (``raw/dt=D`` in the new model's lake, and ``labels/`` once any have landed) this drafts
the two things a new model needs: its **model file** (``<models_dir>/<name>.yaml``: the ``dataset:`` block,
and ``gates:`` sized to the observed positive rate when the defaults, made for rare positives, do not fit)
and a review-ready data contract, and lists what a person must review before committing them. Once the
file is in the models folder, the model's DAGs (``<name>__data_validation``, ...) are generated.
Guesses (id, event time, label, positive class) are made only when the data leaves one answer; otherwise
the error names the candidates and the flag that settles it. The drafted contract is checked against
the day it came from before anything is written (the GX suite of ``mlops.validation``), so a fresh
contract never rejects its own day.
"""

from __future__ import annotations

import datetime as dt
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml
from pydantic import ValidationError

from mlops.config import MODEL_NAME, PROJECT_ROOT, DatasetSpec, GatesSpec
from mlops.data.contract import (
    MAX_INFERRED_CATEGORIES,
    NULL_MARGIN,
    RANGE_FACTOR,
    ROW_COUNT_FLOOR,
    Contract,
    arrow_column_type,
    infer_contract,
    missing_count,
)
from mlops.data.lake import SUCCESS, Lake
from mlops.errors import InputError

if TYPE_CHECKING:
    import pyarrow as pa

    from mlops.config import Settings

#: Categorical columns with at most this many values become gate slices (per-value non-regression).
MAX_SLICE_VALUES = 12
#: Label values read as the positive class when the labels are two strings and ``--positive`` is not given.
POSITIVE_WORDS = ("1", "true", "yes", "y", "positive", "pos")
#: Words that name an event-time column when a table has several timestamps (``created_at``, ``event_ts``).
TIME_WORDS = {"time", "timestamp", "date", "datetime", "ts", "at"}
#: Drafted absolute gates must beat the base rate by these margins: AUC-PR (whose chance level is the positive
#: rate) at least this many times the rate, and a Brier score at least 10 % below the base rate's p(1 - p).
AUC_PR_OVER_CHANCE, BRIER_SKILL = 1.5, 0.1


class DraftRejected(InputError):
    """The drafted contract does not accept the day it came from (nothing was written)."""


@dataclass(frozen=True)
class Choices:
    """What the user may settle by flag; ``None`` = guess from the data."""

    id_column: str | None = None
    time_column: str | None = None
    label_column: str | None = None
    positive: str | None = None
    delay_days: int = 0
    extra_columns: Literal["forbid", "allow"] = "forbid"


@dataclass
class DatasetDraft:
    """The ``dataset:`` block, the contract, and the lines a person should review."""

    day: dt.date
    rows: int
    dataset: dict[str, Any]
    contract: Contract
    review: list[str] = field(default_factory=list)
    gates: dict[str, Any] | None = None  # drafted when the default gates do not fit the positive rate
    positive_rate: float | None = None
    verdict: str = ""
    written: dict[str, str] = field(default_factory=dict)

    @property
    def model(self) -> str:
        return self.contract.name

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "day": self.day.isoformat(), "rows": self.rows, "dataset": self.dataset,
                "gates": self.gates, "positive_rate": self.positive_rate,
                "contract": self.contract.model_dump(mode="json"), "review": self.review, "verdict": self.verdict,
                "written": self.written}  # fmt: skip


# -- guessing ------------------------------------------------------------------------------------
def _one(candidates: list[str], what: str, flag: str, hint: str) -> str:
    if len(candidates) == 1:
        return candidates[0]
    found = f"candidates: {candidates}" if candidates else f"no candidate ({hint})"
    raise ValueError(f"cannot tell the {what} column, {found}; pass {flag}")


def _words(name: str) -> list[str]:
    """``customerId`` / ``customer_id`` / ``Customer-ID`` -> ``[customer, id]``."""
    return [w.lower() for w in re.split(r"[^A-Za-z0-9]+|(?<=[a-z0-9])(?=[A-Z])", name) if w]


def _is_unique_key(column: pa.ChunkedArray) -> bool:
    import pyarrow.compute as pc

    return column.null_count == 0 and pc.count_distinct(column).as_py() == len(column)


def _guess_id(raw: pa.Table, labels: pa.Table | None, label_column: str | None) -> str:
    """The column the labels share with the raw table; else the one unique int/string column named like an id."""
    if labels is not None:
        shared = [c for c in labels.column_names if c in raw.column_names and c != label_column]
        if len(shared) == 1:
            return shared[0]
    keys = [c for c in raw.column_names if arrow_column_type(raw.schema.field(c).type) in ("int64", "string")
            and _is_unique_key(raw.column(c))]  # fmt: skip
    named = [c for c in keys if _words(c)[-1:] == ["id"]]
    return _one(named or keys, "id", "--id-column", "no unique, non-null integer or string column")


def _guess_time(raw: pa.Table) -> str:
    """The one timestamp column (a date column only when there is no timestamp), else the one named like a time."""
    import pyarrow as pa

    stamps = [f.name for f in raw.schema if pa.types.is_timestamp(f.type)]
    times = stamps or [f.name for f in raw.schema if pa.types.is_date(f.type)]
    named = [c for c in times if set(_words(c)) & TIME_WORDS or _words(c)[-1:] == ["time"]]
    return _one(named if len(times) > 1 else times, "event-time", "--time-column", "no timestamp or date column")


def _label_source(lake: Lake, day: dt.date) -> tuple[pa.Table | None, str]:
    """The labels of ``day`` if they landed, else of the latest labelled day, else none."""
    labelled = lake.days("labels", SUCCESS)
    chosen = day if day in labelled else (labelled[-1] if labelled else None)
    if chosen is None:
        return None, ""
    partition = lake.partition("labels", chosen)
    return lake.read_partition(partition), lake.relative(partition)


def _guess_positive(values: pa.ChunkedArray, label: str, given: str | None) -> tuple[Any, str]:
    """The positive class in the label column's own type, and how it was chosen."""
    import pyarrow as pa
    import pyarrow.compute as pc

    kind = values.type.value_type if pa.types.is_dictionary(values.type) else values.type
    seen = pc.unique(values.drop_null()).to_pylist()
    if given is not None:
        if pa.types.is_boolean(kind):
            word = given.strip().lower()
            if word not in ("1", "true", "t", "yes", "y", "0", "false", "f", "no", "n"):
                raise ValueError(f"label column {label!r} is bool; --positive {given!r} must be true or false")
            return word in ("1", "true", "t", "yes", "y"), "given"
        if pa.types.is_integer(kind) or pa.types.is_floating(kind):
            try:
                number = float(given)
            except ValueError:
                raise ValueError(f"label column {label!r} is numeric ({kind}); --positive {given!r} must be a number "
                                 f"(values {sorted(seen)[:20]})") from None  # fmt: skip
            return (int(number) if number.is_integer() else number), "given"
        return given, "given"
    if pa.types.is_boolean(kind):
        return True, "bool label"
    if (pa.types.is_integer(kind) or pa.types.is_floating(kind)) and set(seen) <= {0, 1}:
        return 1, "0/1 label"
    if len(seen) <= 2:
        words = [v for v in seen if str(v).strip().lower() in POSITIVE_WORDS]
        if len(words) == 1:
            return words[0], f"the one value of {sorted(map(str, seen))} that reads as positive"
    shown = sorted(map(str, seen))[:20]
    raise ValueError(f"cannot tell the positive class of label column {label!r} (values {shown}); pass --positive "
                     "(with more than two values, that class is trained against all the others)")  # fmt: skip


def project_path(path: Path) -> str:
    """How a config names a file: relative to the project root when inside it (configs resolve there), else absolute."""
    path = path.resolve()
    return str(path.relative_to(PROJECT_ROOT)) if path.is_relative_to(PROJECT_ROOT) else str(path)


def contract_ref(contract: Path, model_file: Path) -> str:
    """How a model file names its contract: relative to the model file's folder when beside it (or below), else
    as :func:`project_path` (the config resolves a relative contract beside the model file first)."""
    contract, folder = contract.resolve(), model_file.resolve().parent
    return str(contract.relative_to(folder)) if contract.is_relative_to(folder) else project_path(contract)


def check_name(name: str) -> None:
    """A model name is a file name, a DAG-id prefix, an MLflow model and a lake folder at once."""
    if not re.fullmatch(MODEL_NAME, name) or "__" in name:
        raise ValueError(f"--name {name!r}: a model name must match {MODEL_NAME} without '__' (it names a file, "
                         "the DAG ids <name>__<kind>, an MLflow model and a lake folder)")  # fmt: skip


def model_settings(settings: Settings, name: str, lake_uri: str | None = None) -> Settings:
    """The deployment's settings for a model that has no file yet: its lake is ``lake_uri``, else the lake
    every model gets (``<storage.lake_root>/<name>``, by default ``$MLOPS_HOME/lake/<name>``)."""
    check_name(name)
    return settings.model_copy(update={"dataset": DatasetSpec(name=name, lake_uri=lake_uri),
                                       "model": settings.model.model_copy(update={"name": name})})  # fmt: skip


def default_outputs(settings: Settings, name: str) -> tuple[Path, Path]:
    """(model file, contract): ``<models_dir>/<name>.yaml``, and its contract in ``include/contracts/`` for the
    project's own models folder, else in ``<models_dir>/contracts/`` (beside the model files, not among them)."""
    folder = settings.models_path
    own = folder.resolve() == (PROJECT_ROOT / "include" / "models").resolve()
    contracts = PROJECT_ROOT / "include" / "contracts" if own else folder / "contracts"
    return folder / f"{name}.yaml", contracts / f"{name}.yaml"


def draft_gates(rate: float | None) -> dict[str, Any] | None:
    """Absolute gates for a positive rate the defaults do not fit, else ``None`` (keep the defaults).

    The default gates are sized for rare positives (~1 %): ``brier <= 0.05`` fails every model once the base
    rate's own Brier score p(1 - p) is near it, and ``auc_pr >= 0.15`` is below chance level at a 20 % rate.
    Drafted: AUC-PR at least :data:`AUC_PR_OVER_CHANCE` times the rate, Brier :data:`BRIER_SKILL` better than
    the base rate; the other gates keep their defaults (a model file's ``absolute`` replaces them all).
    """
    defaults = GatesSpec().absolute
    if rate is None or not 0.0 < rate < 1.0:
        return None
    auc_pr = min(0.9, round(AUC_PR_OVER_CHANCE * rate, 2))
    brier = round((1.0 - BRIER_SKILL) * rate * (1.0 - rate), 3)
    if auc_pr <= (defaults["auc_pr"].min or 0.0) and brier <= (defaults["brier"].max or 1.0):
        return None
    absolute = {key: bound.model_dump(exclude_none=True) for key, bound in defaults.items()}
    absolute.update({"auc_pr": {"min": max(auc_pr, defaults["auc_pr"].min or 0.0)}, "brier": {"max": brier}})
    return {"absolute": absolute}


# -- the draft -----------------------------------------------------------------------------------
def draft_dataset(settings: Settings, name: str, day: dt.date, choices: Choices, contract_ref: str) -> DatasetDraft:
    """Read ``raw/dt=D`` (and labels), guess what was not given, draft the contract and the review list."""
    import numpy as np
    import pyarrow.compute as pc

    from mlops.features import binary_labels, labelled_rows

    try:
        DatasetSpec(name=name)
    except ValidationError as exc:
        raise ValueError(f"--name {name!r}: {exc.errors()[0]['msg']}") from None
    check_name(name)
    lake = Lake.from_settings(settings)
    raw_partition = lake.partition("raw", day)
    if not lake.exists(lake.marker("raw", day, SUCCESS)):
        raise ValueError(f"{lake.url(raw_partition)} has no {SUCCESS}: land the day first (data, then {SUCCESS})")
    raw = lake.read_partition(raw_partition)
    source = lake.relative(raw_partition)
    labels, labels_source = _label_source(lake, day)
    if labels is None and choices.label_column is None:
        raise ValueError(f"no labels/ partition has landed under {lake.url(lake.area('labels'))}: land one (id and "
                         "label columns) or pass --label-column and --positive")  # fmt: skip

    label = choices.label_column
    id_column = choices.id_column or _guess_id(raw, labels, label)
    if label is None:
        assert labels is not None
        label = _one([c for c in labels.column_names if c != id_column], "label", "--label-column",
                     f"{labels_source} has no column besides the id")  # fmt: skip
    time_column = choices.time_column or _guess_time(raw)
    for role, column in (("id", id_column), ("event-time", time_column)):
        if column not in raw.column_names:
            raise ValueError(f"{role} column {column!r} is not in {source}; columns: {raw.column_names}")

    if labels is not None and label in labels.column_names:
        label_values, label_where = labels.column(label), labels_source
    elif label in raw.column_names:
        label_values, label_where = raw.column(label), source
    else:
        raise ValueError(f"label column {label!r} is in neither {labels_source or 'labels/'} nor {source}")
    positive, how = _guess_positive(label_values, label, choices.positive)

    spec = DatasetSpec(name=name, id_column=id_column, time_column=time_column, categorical=[], slices=[],
                       contract=contract_ref)  # fmt: skip
    contract = infer_contract(raw, spec, source=source, day=day)
    description = f"Drafted by `mlops dataset init` from {raw.num_rows} rows of {source}; " + (
        "ranges, null fractions and the row-count floor are the observed ones widened by stated margins."
    )
    contract = contract.model_copy(update={"extra_columns": choices.extra_columns, "description": description})

    excluded: dict[str, str] = {id_column: "the id", time_column: "the event time"}
    if label in contract.columns:
        excluded[label] = "the label"
    for column, rule in contract.columns.items():
        if column in excluded:
            continue
        if rule.type == "timestamp":
            excluded[column] = "a timestamp (the model takes numbers, bools and strings)"
        elif rule.high_cardinality and _is_unique_key(raw.column(column)):
            excluded[column] = "unique on every row: an identifier or free text, not a feature"
    features = [c for c in contract.columns if c not in excluded]
    categorical = [c for c in features if contract.columns[c].allowed is not None]
    slices = [c for c in categorical if len(contract.columns[c].allowed or []) <= MAX_SLICE_VALUES]

    block: dict[str, Any] = {}
    if settings.dataset.lake_uri:
        block["lake_uri"] = settings.dataset.lake_uri
    block.update({
        "id_column": id_column,
        "time_column": time_column,
        "label": {"column": label, "positive": positive, "delay_days": choices.delay_days},
        "features": features,
        "categorical": categorical,
        "slices": slices,
        "contract": contract_ref,
    })  # fmt: skip

    # What a person should look at, in the order they would check it.
    review = [f"source      {source}: {raw.num_rows} rows x {raw.num_columns} columns"]
    review.append(f"id          {id_column} ({raw.schema.field(id_column).type}; unique on this day)")
    review.append(f"event time  {time_column} ({raw.schema.field(time_column).type}; any unit or zone is accepted)")
    if contract.event_time_tolerance_hours is not None:
        review.append(f"  within dt=D (UTC) +- {contract.event_time_tolerance_hours:g} h (event_time_tolerance_hours): "
                      "a row of another day quarantines the day")  # fmt: skip
    if labels is not None and label in labels.column_names:
        rows = labelled_rows(labels, id_column, label, raw.schema.field(id_column).type)
        y = binary_labels(rows.column(label), positive, label) if rows.num_rows else np.zeros(0)
        positive_rate = float(y.mean()) if len(y) else None
        rate = f"{y.mean():.3f} ({int(y.sum())} of {len(y)} labelled rows)" if len(y) else "no labelled rows"
        if len(y) and not y.sum():
            rate += f": NO positive label on {labels_source}, check the positive class"
    else:
        positive_rate, rate = None, "not measured"
    classes = len(pc.unique(label_values.drop_null()))
    one_vs_rest = f"; {classes} classes: {positive!r} against the rest" if classes > 2 else ""
    review.append(f"label       {label} from {label_where}: positive {positive!r} ({how}){one_vs_rest}; "
                  f"positive rate {rate}")  # fmt: skip
    review.append(f"label delay {choices.delay_days} day(s): labels/dt=D are used once D + delay has passed")
    review.append(f"features    {len(features)}: {', '.join(features)}")
    for column, why in excluded.items():
        review.append(f"  not a feature: {column} ({why})")
    review.append(f"ranges      physical limits: {RANGE_FACTOR}x the largest observed magnitude (at least 1) each "
                  "side; never-negative columns keep min 0. Tighten where you know the real limits")  # fmt: skip
    for column, rule in contract.columns.items():
        data = raw.column(column)
        if rule.min is not None and rule.max is not None:
            bounds = pc.min_max(data)
            review.append(f"  {column}: observed [{bounds['min'].as_py()}, {bounds['max'].as_py()}] -> "
                          f"[{rule.min:g}, {rule.max:g}]")  # fmt: skip
        if rule.allowed is not None and column not in excluded:
            review.append(f"  {column}: {len(rule.allowed)} categories, a new one fails validation: {rule.allowed}")
        if rule.high_cardinality and column not in excluded:
            review.append(f"  {column}: {len(pc.unique(data))} values (> {MAX_INFERRED_CATEGORIES}): high_cardinality,"
                          " values not checked, hashed into one feature")  # fmt: skip
        if rule.nullable:
            observed = missing_count(data) / max(raw.num_rows, 1)
            review.append(f"  {column}: {observed:.1%} null -> max_null_fraction {rule.max_null_fraction} (twice the "
                          f"observed, at most halfway to 1, at least +{NULL_MARGIN}); nulls reach the model as "
                          "missing")  # fmt: skip
    review.append(f"row count   >= {contract.row_count.min} ({ROW_COUNT_FLOOR:.0%} of this day), and "
                  f"{contract.row_count.min_ratio}x..{contract.row_count.max_ratio}x the median of the last "
                  f"{settings.validation.history_days} validated days")  # fmt: skip
    review.append(f"extra cols  {choices.extra_columns}: columns not in the contract "
                  f"{'are ignored' if choices.extra_columns == 'allow' else 'fail validation'}")  # fmt: skip
    review.append(f"slices      {slices or 'none'} (the gates compare candidate and champion per value)")
    gates = draft_gates(positive_rate)
    if gates is not None:
        drafted = ", ".join(f"{k} {'>=' if 'min' in b else '<='} {b.get('min', b.get('max'))}"
                            for k, b in gates["absolute"].items() if k in ("auc_pr", "brier"))  # fmt: skip
        review.append(f"gates       drafted for a positive rate of {positive_rate:.3f} (the defaults assume ~1 %): "
                      f"{drafted}; set what your use needs")  # fmt: skip
    else:
        review.append(
            "gates       the defaults (sized for rare positives); add gates: to the model file to change them"
        )
    return DatasetDraft(day, raw.num_rows, block, contract, review, gates, positive_rate)


def contract_yaml(draft: DatasetDraft) -> str:
    header = (f"# Data contract for raw/dt=D of the {draft.contract.name} dataset, drafted by `mlops dataset init` "
              f"from dt={draft.day} ({draft.rows} rows).\n# Review ranges, categories and null fractions; bump "
              "`version` on any change (every verdict records it).\n")  # fmt: skip
    return header + draft.contract.to_yaml()


def model_yaml(draft: DatasetDraft) -> str:
    """The model file: a header, the ``dataset:`` block and, when drafted, ``gates:``."""
    name = draft.model
    header = (
        f"# The {name} model, drafted by `mlops dataset init` from dt={draft.day} ({draft.rows} rows): review, then "
        f"commit.\n# In the models folder it gives the DAGs {name}__data_validation, {name}__continuous_training, "
        f"{name}__batch_scoring,\n# {name}__drift_monitoring and {name}__model_rollback (paused when created). Add "
        "training:, model:, drift:,\n# promotion: sections as needed; what models share (MLflow, storage, ledger, "
        "Kubernetes) is the deployment's.\n"
    )
    dump = {"width": 110, "sort_keys": False, "default_flow_style": None}
    text = header + yaml.safe_dump({"dataset": draft.dataset}, **dump)
    if draft.gates:
        text += (f"# Drafted for a positive rate of {draft.positive_rate:.3f} (the default gates assume rare "
                 f"positives):\n# AUC-PR >= {AUC_PR_OVER_CHANCE}x the rate (its chance level), Brier "
                 f"{BRIER_SKILL:.0%} below the base rate's.\n")  # fmt: skip
        text += yaml.safe_dump({"gates": draft.gates}, **dump)
    return text


def check_draft(settings: Settings, draft: DatasetDraft) -> str:
    """The draft must accept its own day and give the model usable features; else :class:`DraftRejected`."""
    from mlops.features import feature_spec
    from mlops.validation import validate_partition

    with tempfile.TemporaryDirectory(prefix="mlops-dataset-init-") as folder:
        path = Path(folder) / "contract.yaml"
        path.write_text(contract_yaml(draft))
        dataset = DatasetSpec.model_validate({"name": draft.model, **draft.dataset, "contract": str(path)})
        trial = settings.model_copy(update={"dataset": dataset})
        contract = Contract.load(path)
        contract.check_dataset(dataset)
        feature_spec(trial, contract)
        verdict = validate_partition(trial, draft.day, render_docs=False)
    if not verdict.passed:
        raise DraftRejected(f"the drafted contract rejects the day it came from; nothing was written:\n"
                            f"{verdict.summary()}")  # fmt: skip
    return verdict.summary()


def init_dataset(settings: Settings, name: str, day: dt.date, choices: Choices, contract_out: Path | None = None,
                 model_out: Path | None = None, force: bool = False,
                 lake_uri: str | None = None) -> DatasetDraft:  # fmt: skip
    """Draft the model ``name`` from ``raw/dt=D`` of its lake (``lake_uri``, else ``<lake_root>/<name>``), check
    the contract against that day, then write the contract and the model file (never over a file unless ``force``).

    ``settings`` are the deployment's; the outputs default to :func:`default_outputs`.
    """
    settings = model_settings(settings, name, lake_uri)
    default_model, default_contract = default_outputs(settings, name)
    model_out, contract_out = model_out or default_model, contract_out or default_contract
    for path in (contract_out, model_out):
        if path.exists() and not force:
            raise ValueError(f"{path} exists; pass --force to overwrite it")
    draft = draft_dataset(settings, name, day, choices, contract_ref(contract_out, model_out))
    draft.verdict = check_draft(settings, draft)
    for path, text in ((contract_out, contract_yaml(draft)), (model_out, model_yaml(draft))):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    draft.written = {"contract": str(contract_out), "model": str(model_out)}
    return draft
