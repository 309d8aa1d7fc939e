"""Real tables onboard by the documented path alone: public tables nobody here prepared, drafted from their first day.

For each public table of ``mlops.data.public`` (different shapes: survey codes as strings at a 32 % positive
rate, 20k insurance rows with bools and skewed counts, a 142-value country string with populations to 1.3e9),
laid out as a real producer delivers it (category levels that appear after the first day, rare nulls from the
second day on, null labels, a label feed with an extra column or in two files, labels a day late):

1. ``mlops dataset init`` on the **first** landed day only; nothing is edited by hand afterwards;
2. every later clean day validates: none quarantined, the tolerated surprises recorded as warnings;
3. each real corruption of a clean day quarantines the day, naming the column and the rule;
4. the first model trains and passes the drafted (default, relative) gates: a first champion with no threshold
   set by hand; every row of a day is scored; the drift check runs on a clean and on a shifted day.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from mlops.cli import main
from mlops.config import Settings, load_settings
from mlops.data.contract import Contract
from mlops.data.faults import COLUMN_FAULTS, corrupt_column
from mlops.data.lake import SUCCESS, VALIDATED, Lake
from mlops.data.public import TABLES, land_public, table_of
from mlops.data.publish import publish_partition

#: The newcomer's path, a minute and more on 2 cores: the onboarding suite (.ci/run), not `make test`.
pytestmark = pytest.mark.onboarding

START = dt.date(2026, 3, 1)
DAYS = 14  # the first (drafted from), 11 clean later days, the last labelled day, a shifted day
LAST_CLEAN = START + dt.timedelta(days=DAYS - 2)  # the last day whose labels landed (a 1-day label delay)
SHIFTED = START + dt.timedelta(days=DAYS - 1)
CORRUPT_START = START + dt.timedelta(days=30)  # corrupted copies of a clean day land on days of their own


def _cli(home: Path, models: Path, *argv: str) -> tuple[int, str]:
    """`mlops ...` in-process, as a user runs it, with only MLOPS_HOME and the models folder set."""
    out = io.StringIO()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLOPS_CONFIG", "MLOPS__", "MLOPS_MODEL"))}
    env = {**env, "MLOPS_HOME": str(home), "MLOPS_MODELS_DIR": str(models)}
    with mock.patch.dict(os.environ, env, clear=True), contextlib.redirect_stdout(out):
        code = main(list(argv))
    return code, out.getvalue()


#: Corruption -> the kind of column it breaks (a key of the table's `corruptible`, or "id"); the rule is the fault's.
CORRUPTIONS: dict[str, str] = {
    "unit_change": "numeric",
    "type_change": "numeric",
    "renamed": "numeric",
    "negatives": "nonnegative",
    "all_null": "category",
    "unknown_flood": "category",
    "duplicated_delivery": "id",  # the same file delivered twice: the id's `unique` rule
}
RULES = {**COLUMN_FAULTS, "duplicated_delivery": "unique"}


@dataclass
class Onboarded:
    name: str
    home: Path
    settings: Settings
    init: dict[str, Any]
    markers: list[dict[str, Any]]
    quarantined: dict[str, dict[str, Any]]
    training: dict[str, Any]
    scores: dict[str, Any]
    drift_clean: Any
    drift_shifted: Any


def _corrupt_days(settings: Settings, lake: Lake) -> dict[str, dict[str, Any]]:
    """Land each corruption of a clean day's delivery on a day of its own; validate; read its quarantine reason."""
    from mlops.errors import Quarantined
    from mlops.validation import check_partition

    clean = lake.read_partition(lake.partition("raw", START + dt.timedelta(days=2)))
    columns = {**table_of(settings.dataset.name).corruptible, "id": settings.dataset.id_column}
    time_column = settings.dataset.time_column
    reasons = {}
    for offset, (fault, kind) in enumerate(CORRUPTIONS.items()):
        day = CORRUPT_START + dt.timedelta(days=offset)
        moved = pc.add(pc.cast(clean[time_column], pa.timestamp("ms", tz="UTC")),
                       pa.scalar(dt.timedelta(days=(day - START).days - 2)))  # fmt: skip
        index = clean.schema.get_field_index(time_column)
        table = clean.set_column(index, time_column, moved.cast(clean.schema.field(time_column).type))
        duplicated = fault == "duplicated_delivery"
        bad = table if duplicated else corrupt_column(table, fault, columns[kind])
        copies = 2 if duplicated else 1

        def write(staging: str, bad: pa.Table = bad, copies: int = copies) -> None:
            for number in range(copies):
                lake.write_parquet(bad, f"{staging}/part-{number:05d}.parquet")

        publish_partition(lake, lake.partition("raw", day), write)
        with pytest.raises(Quarantined):
            check_partition(settings, day, lake)
        reasons[fault] = lake.read_json(lake.marker("quarantine", day, "reason.json"))
    return reasons


@pytest.fixture(scope="module", params=sorted(TABLES))
def onboarded(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Onboarded:
    from mlops.monitoring import check_day
    from mlops.scoring import score_day
    from mlops.training.pipeline import run_all
    from mlops.validation import validate_and_version

    name = request.param
    home = tmp_path_factory.mktemp(name)
    models = home / "models"
    env = {"MLOPS_HOME": str(home), "MLOPS_MODELS_DIR": str(models)}
    lake = Lake.from_settings(load_settings(env=env, conf={"dataset": {"name": name}}))
    land_public(lake, name, START, DAYS, shift=SHIFTED)

    code, out = _cli(home, models, "--json", "dataset", "init", "--name", name, "--date", START.isoformat())
    assert code == 0, out
    settings = load_settings(model=name, env=env)  # the drafted model file, as written: nothing edited by hand

    later = [START + dt.timedelta(days=offset) for offset in range(1, DAYS - 1)]
    markers = [validate_and_version(settings, day) for day in later]
    quarantined = _corrupt_days(settings, lake)
    training = run_all(settings, LAST_CLEAN, {"reason": f"onboarding {name}"}, actor="test")
    scores = score_day(settings, LAST_CLEAN, run_id="onboarding")
    drift_clean = check_day(settings, LAST_CLEAN, render_report=True)
    validate_and_version(settings, SHIFTED)
    drift_shifted = check_day(settings, SHIFTED, render_report=True)
    return Onboarded(name, home, settings, json.loads(out), markers, quarantined, training, scores, drift_clean,
                     drift_shifted)  # fmt: skip


def test_the_contract_is_drafted_from_the_first_day_alone(onboarded: Onboarded) -> None:
    assert onboarded.init["day"] == START.isoformat()
    contract = Contract.load(onboarded.settings.contract_path)
    lake = Lake.from_settings(onboarded.settings)
    first = lake.read_partition(lake.partition("raw", START))
    assert list(contract.columns) == first.column_names


def test_every_later_clean_day_passes_and_the_surprises_are_warnings(onboarded: Onboarded) -> None:
    lake = Lake.from_settings(onboarded.settings)
    later = [START + dt.timedelta(days=offset) for offset in range(1, DAYS)]
    assert [day for day in later if lake.exists(lake.partition("quarantine", day))] == []
    assert set(later) <= set(lake.days("raw", VALIDATED))
    warned = [marker for marker in onboarded.markers if marker.get("warnings")]
    assert len(warned) >= len(onboarded.markers) // 2, "rare nulls and new levels on most days are recorded"
    prepared = table_of(onboarded.name).prepare()
    rules = {(w["rule"], w["column"]) for marker in warned for w in marker["warnings"]}
    for column in prepared.rare_nulls:
        assert ("not_null", column) in rules or ("max_null_fraction", column) in rules, rules
    contract = Contract.load(onboarded.settings.contract_path)
    for column in prepared.late_levels:
        if contract.columns[column].allowed is not None:
            assert ("allowed_values", column) in rules, rules


@pytest.mark.parametrize("fault", sorted(CORRUPTIONS))
def test_each_real_corruption_is_quarantined_with_its_reason(onboarded: Onboarded, fault: str) -> None:
    reason = onboarded.quarantined[fault]
    rule = RULES[fault]
    column = {**table_of(onboarded.name).corruptible, "id": onboarded.settings.dataset.id_column}[CORRUPTIONS[fault]]
    broken = {(failure["rule"], failure["column"]) for failure in reason["failures"]}
    assert (rule, column) in broken, reason["failures"]
    assert not reason["passed"]


def test_the_first_model_passes_the_drafted_gates_and_becomes_champion(onboarded: Onboarded) -> None:
    from mlops.aliases import pin_champion

    training = onboarded.training
    assert training["passed"], training["summary"]
    assert pin_champion(onboarded.settings).version == training["version"]
    drafted = (onboarded.init.get("gates") or {}).get("absolute", {})
    assert not set(drafted) & {"auc_pr", "brier", "ece"}, "no raw threshold invented for this table"


def test_every_row_of_the_day_is_scored(onboarded: Onboarded) -> None:
    lake = Lake.from_settings(onboarded.settings)
    raw = lake.read_partition(lake.partition("raw", LAST_CLEAN))
    assert lake.exists(lake.marker("scores", LAST_CLEAN, SUCCESS))
    scores = lake.read_partition(lake.partition("scores", LAST_CLEAN))
    id_column = onboarded.settings.dataset.id_column
    assert onboarded.scores["rows"] == scores.num_rows == raw.num_rows
    assert sorted(scores.column(id_column).to_pylist()) == sorted(raw.column(id_column).to_pylist())


def test_drift_runs_on_a_clean_and_a_shifted_day(onboarded: Onboarded) -> None:
    from mlops.drift import read_history

    for outcome in (onboarded.drift_clean, onboarded.drift_shifted):
        assert outcome.report_uri and Path(outcome.report_uri).is_file()
    history = {entry["day"]: entry for entry in read_history(Lake.from_settings(onboarded.settings),
                                                              onboarded.settings.dataset.name)}  # fmt: skip
    assert {LAST_CLEAN.isoformat(), SHIFTED.isoformat()} <= set(history)
    clean, shifted = onboarded.drift_clean.result, onboarded.drift_shifted.result
    assert shifted["breached_features"], f"the shifted day moves features: {shifted['features']}"
    assert len(shifted["breached_features"]) > len(clean["breached_features"])
