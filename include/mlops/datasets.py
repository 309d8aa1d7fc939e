"""``mlops dataset init``: bring your own table through config alone; adding a model is one file.

From the landed days of the new model's lake (``raw/dt=D`` with ``_SUCCESS``: every one by default, one with
``--date``, a range with ``--from``/``--to``; and ``labels/`` once any have landed) this drafts the two things a
new model needs: its **model file** (``<models_dir>/<name>.yaml``: the ``dataset:`` block, ``training:`` sized
to the labelled rows and positives seen, and ``gates:`` for what depends on the data) and a review-ready data
contract, and lists what a person must review before committing them, with what was observed behind each value
(that text is ``mlops.dataset_review``).
Once the file is in the models folder, the model's DAGs (``<name>__data_validation``, ...) are generated.
Guesses (id, event time, label, positive class, label delay) are made only when the data leaves one answer;
otherwise the error names the candidates and the flag that settles it. The drafted contract is checked against
every day it came from before anything is written (the GX suite of ``mlops.validation``), so a fresh contract
never rejects its own days.
"""

from __future__ import annotations

import datetime as dt
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml
from pydantic import ValidationError

from mlops.config import MODEL_NAME, PROJECT_ROOT, DatasetSpec, TrainingSpec
from mlops.data.contract import Contract, infer_contract
from mlops.data.lake import SUCCESS, Lake
from mlops.dataset_guess import guess_id, guess_label, guess_positive, guess_time, unique_every_day
from mlops.dataset_review import Evidence, day_runs, review_lines
from mlops.dataset_sizing import draft_gates, draft_training, label_stats
from mlops.errors import InputError

if TYPE_CHECKING:
    import pyarrow as pa

    from mlops.config import Settings

#: Categorical columns with at most this many values become gate slices (per-value non-regression).
MAX_SLICE_VALUES = 12
#: Most landed days one draft reads (the newest); ``--from``/``--to`` picks others.
MAX_DRAFT_DAYS = 366


class DraftRejected(InputError):
    """The drafted contract does not accept a day it came from (nothing was written)."""


@dataclass(frozen=True)
class Choices:
    """What the user may settle by flag; ``None`` = guess (or measure) from the data."""

    id_column: str | None = None
    time_column: str | None = None
    label_column: str | None = None
    positive: str | None = None
    delay_days: int | None = None
    extra_columns: Literal["forbid", "allow"] = "forbid"


@dataclass(frozen=True)
class DaySelection:
    """Which landed days to draft from: ``date`` (one), ``start``..``end`` (a range, either end open), or
    neither (every landed day). Only days with ``raw/dt=D/_SUCCESS`` are read."""

    date: dt.date | None = None
    start: dt.date | None = None
    end: dt.date | None = None

    def resolve(self, lake: Lake) -> tuple[list[dt.date], list[str]]:
        """The days, oldest first, and notes for the review (days skipped, and why)."""
        if self.date is not None:
            if self.start or self.end:
                raise ValueError("--date or --from/--to, not both")
            if not lake.exists(lake.marker("raw", self.date, SUCCESS)):
                raise ValueError(f"{lake.url(lake.partition('raw', self.date))} has no {SUCCESS}: land the day first "
                                 f"(data, then {SUCCESS})")  # fmt: skip
            return [self.date], []
        if self.start and self.end and self.end < self.start:
            raise ValueError(f"--to {self.end} is before --from {self.start}")
        landed = lake.days("raw", SUCCESS)
        days = [d for d in landed if (self.start is None or d >= self.start) and (self.end is None or d <= self.end)]
        span = f" from {self.start}" if self.start else ""
        span += f" up to {self.end}" if self.end else ""
        if not days:
            raise ValueError(f"no raw day with {SUCCESS}{span} under {lake.url(lake.area('raw'))}: land a day first "
                             f"(data, then {SUCCESS})")  # fmt: skip
        notes = []
        unfinished = [d for d in lake.days("raw") if d not in landed and (self.start is None or d >= self.start)
                      and (self.end is None or d <= self.end)]  # fmt: skip
        if unfinished:
            notes.append(f"skipped {len(unfinished)} day(s) without {SUCCESS} (still landing?): {day_runs(unfinished)}")
        if self.start and self.end:
            gaps = (self.end - self.start).days + 1 - len(days) - len(unfinished)
            if gaps:
                notes.append(f"{gaps} day(s) of --from {self.start} --to {self.end} have not landed")
        if len(days) > MAX_DRAFT_DAYS:
            notes.append(f"read the newest {MAX_DRAFT_DAYS} of {len(days)} landed days (--from/--to picks others)")
            days = days[-MAX_DRAFT_DAYS:]
        return days, notes


@dataclass
class DatasetDraft:
    """The ``dataset:`` block, the contract, the ``training:`` (and maybe ``gates:``) sections, and the lines a
    person should review."""

    days: list[dt.date]
    rows: int
    dataset: dict[str, Any]
    contract: Contract
    review: list[str] = field(default_factory=list)
    gates: dict[str, Any] | None = None  # what of the gates depends on the data (the slices), when not the default
    positive_rate: float | None = None
    training: dict[str, int] = field(default_factory=dict)
    reasons: dict[str, str] = field(default_factory=dict)  # training (and gates) key -> why that value
    verdict: str = ""
    written: dict[str, str] = field(default_factory=dict)

    @property
    def model(self) -> str:
        return self.contract.name

    @property
    def day(self) -> dt.date:
        """The newest day drafted from."""
        return self.days[-1]

    @property
    def span(self) -> str:
        return f"dt={self.days[0]}" if len(self.days) == 1 else f"{len(self.days)} days, dt={day_runs(self.days)}"

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "day": self.day.isoformat(), "days": [d.isoformat() for d in self.days],
                "rows": self.rows,
                "dataset": self.dataset, "training": self.training, "reasons": self.reasons,
                "gates": self.gates, "positive_rate": self.positive_rate,
                "contract": self.contract.model_dump(mode="json"), "review": self.review, "verdict": self.verdict,
                "written": self.written}  # fmt: skip


# -- reading -------------------------------------------------------------------------------------
def _concat(tables: Sequence[pa.Table]) -> pa.Table:
    """Days as one table: widths promoted, columns missing on some filled with nulls (as ``Lake.read_partition``
    joins the files of one day)."""
    import pyarrow as pa

    if len(tables) == 1:
        return tables[0]
    return pa.concat_tables(tables, promote_options="permissive").unify_dictionaries()


def _label_source(lake: Lake, days: Sequence[dt.date]) -> tuple[dict[dt.date, pa.Table], str]:
    """The labels of ``days`` that landed, else of the latest labelled day, else none; and where they are."""
    labelled = lake.days("labels", SUCCESS)
    chosen = [d for d in days if d in labelled] or labelled[-1:]
    if not chosen:
        return {}, ""
    where = lake.relative(lake.partition("labels", chosen[0]))
    if len(chosen) > 1:
        where = f"{where.rsplit('dt=', 1)[0]}dt={day_runs(chosen)}"
    return {d: lake.read_partition(lake.partition("labels", d)) for d in chosen}, where  # files of a day: whole


def measure_label_delay(lake: Lake) -> tuple[int | None, str]:
    """How many days the labels lag the raw data: latest raw day with ``_SUCCESS`` minus latest labels day."""
    raw, labels = lake.days("raw", SUCCESS), lake.days("labels", SUCCESS)
    if not raw or not labels:
        return None, "0 day(s), not measured (no labels landed)"
    delay = max(0, (raw[-1] - labels[-1]).days)
    return delay, f"measured {delay} day(s): latest raw {raw[-1]}, latest labels {labels[-1]}"


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


# -- the draft -----------------------------------------------------------------------------------
def _selection(days: dt.date | DaySelection | None) -> DaySelection:
    if days is None:
        return DaySelection()
    return days if isinstance(days, DaySelection) else DaySelection(date=days)


def draft_dataset(settings: Settings, name: str, days: dt.date | DaySelection | None, choices: Choices,
                  contract_ref: str) -> DatasetDraft:  # fmt: skip
    """Read the landed days (and labels), guess what was not given, draft the contract, the training section
    and the review list."""
    try:
        DatasetSpec(name=name)
    except ValidationError as exc:
        raise ValueError(f"--name {name!r}: {exc.errors()[0]['msg']}") from None
    check_name(name)
    lake = Lake.from_settings(settings)
    selected, notes = _selection(days).resolve(lake)
    raws = {day: lake.read_partition(lake.partition("raw", day)) for day in selected}
    raw = _concat(list(raws.values()))
    source = lake.relative(lake.partition("raw", selected[0]))
    if len(selected) > 1:
        source = f"{source.rsplit('dt=', 1)[0]}dt={day_runs(selected)}"
    labels_by_day, labels_source = _label_source(lake, selected)
    labels = _concat(list(labels_by_day.values())) if labels_by_day else None
    if labels is None and choices.label_column is None:
        raise ValueError(f"no labels/ partition has landed under {lake.url(lake.area('labels'))}: land one (id and "
                         "label columns) or pass --label-column and --positive")  # fmt: skip

    label, label_how = choices.label_column, "given"
    id_column = choices.id_column or guess_id(raws, labels, label)
    if label is None:
        assert labels is not None
        label, label_how = guess_label(labels, id_column, labels_source, choices.positive)
    time_column = choices.time_column or guess_time(raw)
    for role, column in (("id", id_column), ("event-time", time_column)):
        if column not in raw.column_names:
            raise ValueError(f"{role} column {column!r} is not in {source}; columns: {raw.column_names}")

    if labels is not None and label in labels.column_names:
        label_values, label_where = labels.column(label), labels_source
    elif label in raw.column_names:
        label_values, label_where = raw.column(label), source
    else:
        raise ValueError(f"label column {label!r} is in neither {labels_source or 'labels/'} nor {source}")
    positive, how = guess_positive(label_values, label, choices.positive)
    delay, delay_how = choices.delay_days, "given"
    if delay is None:
        measured, delay_how = measure_label_delay(lake)
        delay = measured or 0

    spec = DatasetSpec(name=name, id_column=id_column, time_column=time_column, categorical=[], slices=[],
                       label={"column": label, "positive": positive}, contract=contract_ref)  # fmt: skip
    # Every day: rules from all rows, the event-time tolerance over all days, the row-count floor from the smallest.
    contract = infer_contract(raws, spec, source=source)
    description = f"Drafted by `mlops dataset init` from {raw.num_rows} rows of {source}; " + (
        "ranges, null fractions and the row-count floor are the observed ones widened by stated margins, with "
        "tolerances for rare unknown categories and nulls on non-key columns (mlops.data.contract)."
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
        elif rule.high_cardinality and unique_every_day(raws, column):
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
        "label": {"column": label, "positive": positive, "delay_days": delay},
        "features": features,
        "categorical": categorical,
        "slices": slices,
        "contract": contract_ref,
    })  # fmt: skip

    per_day = [t.num_rows for t in raws.values()]
    stats = None
    if labels is not None and label in labels.column_names:
        stats = label_stats(labels_by_day, id_column, label, positive, raw.schema.field(id_column).type)
    positive_rate = stats.rate if stats is not None else None
    training, reasons, warnings = draft_training(stats, sum(per_day) / len(per_day))
    gates: dict[str, Any] = {}
    if stats is not None and stats.labelled and slices:  # without slices, no slice gate to size
        holdout = training["holdout_days"] / len(stats.days)
        gates, why = draft_gates(positive_rate, stats.labelled * holdout, stats.positives * holdout, settings.gates)
        reasons.update(why)
    evidence = Evidence(source, raws, raw, notes, excluded, label_how, label_where, labels_source, label_values, how,
                        delay_how, stats, warnings)  # fmt: skip
    review = review_lines(settings, evidence, contract, block, training, reasons, gates)
    return DatasetDraft(selected, raw.num_rows, block, contract, review, gates or None, positive_rate, training,
                        reasons)  # fmt: skip


def contract_yaml(draft: DatasetDraft) -> str:
    header = (f"# Data contract for raw/dt=D of the {draft.contract.name} dataset, drafted by `mlops dataset init` "
              f"from {draft.span} ({draft.rows} rows).\n# Review ranges, categories and null fractions; bump "
              "`version` on any change (every verdict records it).\n")  # fmt: skip
    return header + draft.contract.to_yaml()


def model_yaml(draft: DatasetDraft) -> str:
    """The model file: a header, the ``dataset:`` block, ``training:`` and, when drafted, ``gates:``."""
    name = draft.model
    header = (
        f"# The {name} model, drafted by `mlops dataset init` from {draft.span} ({draft.rows} rows): review, then "
        f"commit.\n# In the models folder it gives the DAGs {name}__data_validation, {name}__continuous_training, "
        f"{name}__batch_scoring,\n# {name}__drift_monitoring and {name}__model_rollback (paused when created). Add "
        "model:, drift:,\n# promotion: sections as needed; what models share (MLflow, storage, ledger, "
        "Kubernetes) is the deployment's.\n"
    )
    dump = {"width": 110, "sort_keys": False, "default_flow_style": None}
    text = header + yaml.safe_dump({"dataset": draft.dataset}, **dump)
    if draft.training:
        text += "# Training, sized to the labelled days read (see mlops.dataset_sizing.draft_training):\n"
        text += "".join(f"#   {key} {value}: {draft.reasons.get(key, '')}\n" for key, value in draft.training.items())
        text += yaml.safe_dump({"training": draft.training}, **dump)
    if draft.gates:
        text += ("# Gates: the defaults (relative to the holdout's positive rate) but the slice sizes, drafted for "
                 "the holdout:\n")  # fmt: skip
        text += "".join(f"#   {key} {value}: {draft.reasons.get(key, '')}\n" for key, value in draft.gates.items())
        text += yaml.safe_dump({"gates": draft.gates}, **dump)
    return text


def check_draft(settings: Settings, draft: DatasetDraft) -> str:
    """The draft must accept every day it came from and give the model usable features; else
    :class:`DraftRejected` (naming the days it rejects)."""
    from mlops.features import feature_spec
    from mlops.validation import validate_partition

    TrainingSpec.model_validate(draft.training)
    with tempfile.TemporaryDirectory(prefix="mlops-dataset-init-") as folder:
        path = Path(folder) / "contract.yaml"
        path.write_text(contract_yaml(draft))
        dataset = DatasetSpec.model_validate({"name": draft.model, **draft.dataset, "contract": str(path)})
        trial = settings.model_copy(update={"dataset": dataset})
        contract = Contract.load(path)
        contract.check_dataset(dataset)
        feature_spec(trial, contract)
        verdicts = [validate_partition(trial, day, render_docs=False) for day in draft.days]
    rejected = [v for v in verdicts if not v.passed]
    if rejected:
        which, summaries = ", ".join(v.day for v in rejected), "\n".join(v.summary() for v in rejected)
        raise DraftRejected(f"the drafted contract rejects {len(rejected)} of the {len(verdicts)} day(s) it came "
                            f"from ({which}); nothing was written:\n{summaries}")  # fmt: skip
    return "\n".join(v.summary() for v in verdicts)


def init_dataset(settings: Settings, name: str, days: dt.date | DaySelection | None, choices: Choices,
                 contract_out: Path | None = None, model_out: Path | None = None, force: bool = False,
                 lake_uri: str | None = None) -> DatasetDraft:  # fmt: skip
    """Draft the model ``name`` from landed days of its lake (``lake_uri``, else ``<lake_root>/<name>``): one
    ``date``, a :class:`DaySelection`, or ``None`` for every landed day; check the contract against each of them,
    then write the contract and the model file (never over a file unless ``force``).

    ``settings`` are the deployment's; the outputs default to :func:`default_outputs`.
    """
    settings = model_settings(settings, name, lake_uri)
    default_model, default_contract = default_outputs(settings, name)
    model_out, contract_out = model_out or default_model, contract_out or default_contract
    for path in (contract_out, model_out):
        if path.exists() and not force:
            raise ValueError(f"{path} exists; pass --force to overwrite it")
    draft = draft_dataset(settings, name, days, choices, contract_ref(contract_out, model_out))
    draft.verdict = check_draft(settings, draft)
    for path, text in ((contract_out, contract_yaml(draft)), (model_out, model_yaml(draft))):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    draft.written = {"contract": str(contract_out), "model": str(model_out)}
    return draft
