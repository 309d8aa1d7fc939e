"""Trust, second round: breaks 6, 8 (rest) and 9 (part) of the issue, each reproduced on the code before the fix.

* 6: what is scored and versioned is exactly what was validated: a file added, changed or removed after the
  verdict is refused by the DVC snapshot and by scoring, naming the day, the file and what changed;
* 8: a DVC remote URL with a password is refused (the password masked) and never reaches the committed config;
* 9: event times outside the partition's day quarantine it; a re-quarantined day keeps every delivery.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import subprocess
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from mlops.config import Settings, load_settings
from mlops.data.lake import REASON, VALIDATED, Lake
from mlops.data.landing import land_days
from mlops.errors import InfrastructureError, InputError
from mlops.scoring import plan_chunks
from mlops.validation import (
    ValidationFailed,
    check_partition,
    mark_validated,
    validate_and_version,
    validate_partition,
)
from mlops.versioning import registry_folder, snapshot_partition

DAY = dt.date(2026, 11, 10)
ROWS = 2_000


@pytest.fixture
def day(settings: Settings) -> dt.date:
    land_days(settings, DAY, days=1, rows_per_day=ROWS, seed=7)
    return DAY


def _bad_copy(lake: Lake, day: dt.date, rows: int = 500) -> pa.Table:
    """Rows of the day with negative amounts, an unknown country and the ids of the first file (duplicates)."""
    table = lake.read_partition(lake.partition("raw", day)).slice(0, rows)
    table = table.set_column(table.schema.get_field_index("amount"), "amount", pc.negate(table.column("amount")))
    return table.set_column(table.schema.get_field_index("country"), "country", pa.array(["XX"] * rows))


def _registry_log(settings: Settings) -> str:
    repo = settings.dvc_registry_path
    if not (repo / ".git").exists():
        return ""
    run = subprocess.run(["git", "log", "--format=%s"], cwd=repo, capture_output=True, text=True, check=False)
    return run.stdout


# -- 6. what is scored is what was validated ---------------------------------------------------------------------
def test_a_file_added_after_the_verdict_is_not_scored(settings: Settings, lake: Lake, day: dt.date) -> None:
    """The issue's reproduction: a late part-00001 with bad values was scored with the validated day."""
    validate_and_version(settings, day)
    assert sum(chunk.rows for chunk in plan_chunks(settings, lake, day)) == ROWS
    late = f"{lake.partition('raw', day)}/part-00001.parquet"
    lake.write_parquet(_bad_copy(lake, day), late)

    with pytest.raises(InputError) as caught:
        plan_chunks(settings, lake, day)
    message = str(caught.value)
    assert "\n" not in message, "one line"
    assert f"dt={day}" in message and "part-00001.parquet" in message and "added" in message
    assert "new delivery" in message and f"mlops validate --date {day}" in message
    assert not isinstance(caught.value, InfrastructureError), "not retried"


def test_a_file_changed_or_removed_after_the_verdict_is_not_scored(
    settings: Settings, lake: Lake, day: dt.date
) -> None:
    land_days(settings, DAY, days=1, rows_per_day=ROWS, seed=7, row_group_rows=ROWS // 2)
    validate_and_version(settings, day)
    raw = lake.partition("raw", day)
    (only,) = lake.data_files(raw)
    good = lake.read_partition(raw)
    # Same rows, same size class, other values: neither the name nor the row count gives it away.
    lake.write_parquet(pa.concat_tables([_bad_copy(lake, day), good.slice(500)]), only)
    with pytest.raises(InputError, match=r"part-00000\.parquet changed"):
        plan_chunks(settings, lake, day)
    lake.remove(only)
    with pytest.raises(InputError, match=r"part-00000\.parquet was removed"):
        plan_chunks(settings, lake, day)


def test_a_marker_without_a_manifest_is_not_trusted_for_scoring(settings: Settings, lake: Lake, day: dt.date) -> None:
    """A ``_VALIDATED.json`` that does not say what it validated (hand-written, or older) vouches for nothing."""
    lake.write_json(lake.marker("raw", day, VALIDATED), {"rows": ROWS})
    with pytest.raises(InputError, match=r"names no files.*mlops validate --date 2026-11-10"):
        plan_chunks(settings, lake, day)


def test_the_snapshot_refuses_a_file_changed_since_validation(settings: Settings, lake: Lake, day: dt.date) -> None:
    """The DAG's steps: validate, (the file changes), snapshot: the changed bytes never reach the registry."""
    verdict = check_partition(settings, day, lake).to_dict()
    (only,) = lake.data_files(lake.partition("raw", day))
    lake.write_parquet(_bad_copy(lake, day, ROWS), only)
    with pytest.raises(InputError) as caught:
        snapshot_partition(settings, lake, day, verdict["rows"], manifest=verdict["manifest"])
    message = str(caught.value)
    assert "\n" not in message and f"dt={day}" in message and "part-00000.parquet changed" in message
    assert "snapshot" not in _registry_log(settings), "nothing committed to the data registry"
    assert not (settings.dvc_registry_path / registry_folder(settings.dataset.name, day)).exists()


def test_a_file_added_before_the_snapshot_is_refused(settings: Settings, lake: Lake, day: dt.date) -> None:
    verdict = check_partition(settings, day, lake).to_dict()
    lake.write_parquet(_bad_copy(lake, day), f"{lake.partition('raw', day)}/part-00001.parquet")
    with pytest.raises(InputError, match=r"part-00001\.parquet was added after validation.*new delivery"):
        snapshot_partition(settings, lake, day, verdict["rows"], manifest=verdict["manifest"])
    assert "snapshot" not in _registry_log(settings)


def test_the_marker_refuses_a_snapshot_of_other_bytes(settings: Settings, lake: Lake, day: dt.date) -> None:
    """A snapshot taken without the verdict's manifest (an older DAG) cannot mark other bytes validated, and the
    day's earlier marker is withdrawn (training and scoring take only marked days)."""
    validate_and_version(settings, day)
    verdict = check_partition(settings, day, lake).to_dict()
    (only,) = lake.data_files(lake.partition("raw", day))
    lake.write_parquet(_bad_copy(lake, day, ROWS), only)
    snapshot = snapshot_partition(settings, lake, day, verdict["rows"]).to_dict()
    with pytest.raises(InputError, match=r"part-00000\.parquet changed"):
        mark_validated(lake, day, verdict, snapshot)
    assert not lake.exists(lake.marker("raw", day, VALIDATED))


def test_the_marker_names_what_was_validated(settings: Settings, lake: Lake, day: dt.date) -> None:
    marker = validate_and_version(settings, day)
    (only,) = lake.data_files(lake.partition("raw", day))
    entry = marker["manifest"]["part-00000.parquet"]
    with lake.fs.open(only, "rb") as handle:
        data = handle.read()
    digests = {name: hashlib.new(name, data).hexdigest() for name in ("md5", "sha256")}
    assert entry == {"size": len(data), **digests}
    assert json.loads(json.dumps(marker))["manifest"] == marker["manifest"]


# -- 8. a DVC remote URL's password never reaches the registry every pod clones ------------------------------------
def _with_remote(settings: Settings, remote_url: str, registry_remote: str) -> Settings:
    versioning = settings.versioning.model_copy(update={"remote_url": remote_url, "registry_remote": registry_remote})
    return settings.model_copy(update={"versioning": versioning})


def _pushed_text(bare: Path) -> str:
    """Every file of every commit the registry's git remote holds."""
    files = subprocess.run(["git", "log", "--all", "-p", "--format=%H"], cwd=bare, capture_output=True, text=True)
    return files.stdout


@pytest.mark.parametrize(
    "url",
    [
        "https://alice:pa55-w0rd-42@dvc.example.com/store",
        "ssh://deploy:pa55-w0rd-42@dvc.example.com/srv/dvc",
        "s3://AKIAIOSFODNN7EXAMPLE:pa55-w0rd-42@bucket/dvc",
        "https://dvc.example.com/store?token=pa55-w0rd-42",
    ],
)
def test_a_password_in_the_dvc_remote_url_is_refused_and_never_pushed(
    settings: Settings, lake: Lake, day: dt.date, tmp_path: Path, url: str
) -> None:
    bare = tmp_path / "registry.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(bare)], check=True)
    remote = f"file://{bare}"
    snapshot_partition(_with_remote(settings, settings.dvc_remote_url, remote), lake, day, rows=ROWS)  # a good one

    with pytest.raises(InputError) as caught:
        snapshot_partition(_with_remote(settings, url, remote), lake, day, rows=ROWS)
    message = str(caught.value)
    assert "versioning.remote_url" in message and "***" in message
    assert "pa55-w0rd-42" not in message and "AKIAIOSFODNN7EXAMPLE" not in message
    assert "pa55-w0rd-42" not in _pushed_text(bare)
    assert "pa55-w0rd-42" not in (settings.dvc_registry_path / ".dvc" / "config").read_text()


def test_a_user_without_password_is_not_a_credential(settings: Settings, lake: Lake, day: dt.date) -> None:
    """``ssh://user@host`` names an account, not a secret: the remote is written as given."""
    from mlops.versioning import ensure_registry

    repo = ensure_registry(_with_remote(settings, "ssh://deploy@dvc.example.com/srv/dvc", None))  # type: ignore[arg-type]
    assert "ssh://deploy@dvc.example.com/srv/dvc" in (repo / ".dvc" / "config").read_text()


def test_credentials_in_dvc_local_config_stay_on_the_worker(
    settings: Settings, lake: Lake, day: dt.date, tmp_path: Path
) -> None:
    """What DVC needs beyond the URL goes to ``.dvc/config.local``: a snapshot never commits or pushes it."""
    from dvc.repo import Repo

    from mlops.versioning import ensure_registry

    bare = tmp_path / "registry.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(bare)], check=True)
    worker = _with_remote(settings, settings.dvc_remote_url, f"file://{bare}")
    repo = ensure_registry(worker)
    with Repo(str(repo)) as dvc_repo, dvc_repo.config.edit("local") as local:
        local.setdefault("remote", {})["backup"] = {"url": "https://dvc.example.com/store", "password": "pa55-w0rd-42"}
    snapshot_partition(worker, lake, day, rows=ROWS)
    assert "pa55-w0rd-42" in (repo / ".dvc" / "config.local").read_text(), "DVC still has it"
    assert "pa55-w0rd-42" not in _pushed_text(bare)


# -- 9a. event times belong to their day ---------------------------------------------------------------------------
YEAR_2099 = dt.datetime(2099, 1, 1, tzinfo=dt.UTC)


def _with_times(lake: Lake, day: dt.date, change: Any) -> None:
    """Re-land the day with its event times changed by ``change(times) -> times`` (data first, then _SUCCESS)."""
    raw = lake.partition("raw", day)
    (only,) = lake.data_files(raw)
    table = lake.read_partition(raw)
    index = table.schema.get_field_index("event_time")
    lake.write_parquet(table.set_column(index, "event_time", change(table.column("event_time"))), only)


@pytest.mark.parametrize(
    ("change", "rule_hint"),
    [
        (lambda t: pa.concat_arrays([t.combine_chunks()[:-1], pa.array([YEAR_2099], t.type)]), "2099-01-01"),
        (lambda t: pc.add(t, pa.scalar(dt.timedelta(days=3))), "<= 2026-11-11T01:00:00"),
        (lambda t: pc.subtract(t, pa.scalar(dt.timedelta(hours=2))), ">= 2026-11-09T23:00:00"),
    ],
    ids=["one-in-2099", "another-day", "two-hours-early"],
)
def test_event_times_outside_the_day_quarantine_it(
    settings: Settings, lake: Lake, day: dt.date, change: Any, rule_hint: str
) -> None:
    _with_times(lake, day, change)
    with pytest.raises(ValidationFailed) as caught:
        check_partition(settings, day, lake)
    (failure,) = [f for f in caught.value.verdict.failures if f.rule == "event_time"]
    assert failure.column == "event_time" and rule_hint in f"{failure.observed} {failure.expected}"
    assert failure.sample_ids, "the offending ids are quoted"
    reason = lake.read_json(lake.marker("quarantine", day, REASON))
    assert any(f["rule"] == "event_time" for f in reason["failures"])


def test_event_times_within_the_tolerance_pass(settings: Settings, lake: Lake, day: dt.date) -> None:
    """Events a little late or early (a clock skew, a slow producer) are the day's: the contract allows 1 h."""
    _with_times(lake, day, lambda t: pc.add(t, pa.scalar(dt.timedelta(minutes=50))))
    assert check_partition(settings, day, lake).passed


@pytest.mark.parametrize("model", ["card_transactions", "customer_churn"])
def test_the_demo_models_generated_days_pass_their_event_time_rule(tmp_path: Path, model: str) -> None:
    from mlops.data.contract import Contract

    settings = load_settings(model=model, env={"MLOPS_HOME": str(tmp_path)})
    assert Contract.load(settings.contract_path).event_time_tolerance_hours == 1.0
    land_days(settings, DAY, days=2, rows_per_day=1_000, seed=3)
    for landed in (DAY, DAY + dt.timedelta(days=1)):
        assert validate_partition(settings, landed, render_docs=False).passed


def test_dataset_init_drafts_the_event_time_rule(tmp_path: Path) -> None:
    from mlops.data.contract import Contract
    from mlops.data.publish import publish_partition
    from mlops.datasets import Choices, init_dataset, model_settings

    settings = load_settings(env={"MLOPS_HOME": str(tmp_path)})
    lake = Lake.from_settings(model_settings(settings, "orders"))
    start = dt.datetime(2026, 3, 2, tzinfo=dt.UTC)
    times = pa.array([start + dt.timedelta(minutes=30 * i) for i in range(40)], pa.timestamp("ms", tz="UTC"))
    tables = {
        "raw": pa.table({"order_id": range(40), "created_at": times, "x": [i * 1.5 for i in range(40)]}),
        "labels": pa.table({"order_id": range(40), "late": [i % 4 == 0 for i in range(40)]}),
    }
    for area, table in tables.items():
        partition = lake.partition(area, start.date())
        publish_partition(lake, partition, lambda staging, t=table: lake.write_parquet(t, f"{staging}/part-0.parquet"))
    outputs = {"contract_out": tmp_path / "c.yaml", "model_out": tmp_path / "orders.yaml"}
    draft = init_dataset(settings, "orders", start.date(), Choices(), **outputs)
    assert Contract.load(outputs["contract_out"]).event_time_tolerance_hours == 1.0
    assert any("event_time_tolerance_hours" in line for line in draft.review)


# -- 9b. every quarantined delivery keeps its own data and history ---------------------------------------------------
def _bad_delivery(settings: Settings, lake: Lake, seed: int) -> bytes:
    """The producer (re-)lands DAY, with negative amounts; returns the bytes of its file."""
    land_days(settings, DAY, days=1, rows_per_day=ROWS, seed=seed)
    (only,) = lake.data_files(lake.partition("raw", DAY))
    lake.write_parquet(_bad_copy(lake, DAY, ROWS), only)
    with lake.fs.open(only, "rb") as handle:
        return handle.read()


def _quarantine(settings: Settings, lake: Lake) -> None:
    with pytest.raises(ValidationFailed):
        check_partition(settings, DAY, lake)


def _bytes(lake: Lake, path: str) -> bytes:
    with lake.fs.open(path, "rb") as handle:
        return handle.read()


def test_a_requarantined_day_keeps_every_delivery_with_its_history(settings: Settings, lake: Lake) -> None:
    from mlops.quarantine import requeue_partition

    deliveries = []
    for seed in (1, 2, 3):
        deliveries.append(_bad_delivery(settings, lake, seed))
        _quarantine(settings, lake)
    quarantined = lake.partition("quarantine", DAY)
    # The latest delivery is where every reader of the quarantine looks (reason.json, data files).
    (latest,) = lake.data_files(quarantined)
    assert _bytes(lake, latest) == deliveries[2]
    reasons = [lake.read_json(f"{quarantined}/_earlier/{n}/{REASON}") for n in (1, 2)]
    reasons.append(lake.read_json(lake.marker("quarantine", DAY, REASON)))
    for n, delivery in ((1, deliveries[0]), (2, deliveries[1])):
        assert _bytes(lake, f"{quarantined}/_earlier/{n}/part-00000.parquet") == delivery
    stamps = [reason["quarantined_at"] for reason in reasons]
    assert stamps == sorted(stamps) and len(set(stamps)) == 3, "each delivery's own reason, oldest first"
    assert all([event["event"] for event in reason["history"]] == ["quarantined"] for reason in reasons)
    assert lake.days("quarantine") == [DAY]

    # Requeueing returns the latest delivery to raw/, and quarantining it again keeps its history and the others.
    requeue_partition(lake, DAY, actor="alice", note="rule relaxed")
    assert _bytes(lake, lake.data_files(lake.partition("raw", DAY))[0]) == deliveries[2]
    _quarantine(settings, lake)
    again = lake.read_json(lake.marker("quarantine", DAY, REASON))
    assert [event["event"] for event in again["history"]] == ["quarantined", "requeued", "quarantined"]
    for n, delivery in ((1, deliveries[0]), (2, deliveries[1])):
        assert _bytes(lake, f"{quarantined}/_earlier/{n}/part-00000.parquet") == delivery
    assert not lake.exists(f"{quarantined}/_earlier/3"), "the requeued delivery is the same delivery"
