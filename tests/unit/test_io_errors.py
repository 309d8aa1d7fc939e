"""An I/O error is never an answer: drift history, publishing and scoring reads retry; the pod refuses secrets.

Each case was reproduced on the code before the fix:

* the drift history read with fsspec's ``isdir``: an EIO listing it read as an EMPTY history, so a checked day
  was chosen again and ``check_day`` decided and appended on no history (the debounce reset);
* the publisher read an EIO listing a partition's parent as "no stale side folder" and "nothing to recover",
  so the files of a killed commit were left behind (and deleted by the next commit);
* scoring turned every OSError (EIO, a reset connection) into ``ScoringInputError``: bad input, no retry,
  the day left out of the run with a "cannot be scored" alert;
* the GPU pod accepted ``?token=``, ``api_key=``, ``password=`` values and Slack webhook URLs in its
  arguments and env, although redaction masks them in every log.

Faults are injected as in ``test_trust_round2``: EIO at the disk's ``stat``, at the lake's listing, open or read.
"""

from __future__ import annotations

import datetime as dt
import errno
import io
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mlops.config import Settings, load_settings
from mlops.data.lake import SUCCESS, VALIDATED, Lake, LakeIOError
from mlops.errors import InfrastructureError, InputError
from mlops.secret_rules import mask
from tests.unit.test_trust_round2 import MASKED, ORDINARY, _files, io_fault


def _assert_retried_io_error(error: BaseException) -> None:
    """What the orchestrator and the operator see: a retried infrastructure error naming the EIO."""
    assert isinstance(error, LakeIOError) and isinstance(error, InfrastructureError), repr(error)
    assert not isinstance(error, InputError), repr(error)
    assert error.errno == errno.EIO and "Input/output error" in str(error), str(error)


# -- 1. the drift history ------------------------------------------------------------------------------------------
def _entry(day: dt.date, **values: Any) -> dict[str, Any]:
    return {"day": day.isoformat(), "window": [day.isoformat()], "features": {}, "score": {"psi": None},
            "performance": None, "breached_features": {"amount": 0.6}, "breached": True, "severe": True,
            "triggered": True, "champion_version": "1", **values}  # fmt: skip


def _history_target(lake: Lake, dataset: str, day: dt.date, what: str) -> str:
    return lake.drift_history_dir(dataset) if what == "folder" else lake.drift_history(dataset, day)


@pytest.mark.parametrize(("at", "what"), [("stat", "folder"), ("list", "folder"), ("open", "entry")])
def test_an_io_error_on_the_drift_history_is_not_an_empty_history(
    settings: Settings, lake: Lake, at: str, what: str
) -> None:
    from mlops.drift import append_history, read_history

    dataset, day = settings.dataset.name, dt.date(2026, 11, 9)
    append_history(lake, dataset, _entry(day))
    assert [entry["day"] for entry in read_history(lake, dataset)] == [day.isoformat()]
    with io_fault(lake, at, _history_target(lake, dataset, day, what)) as failed, pytest.raises(Exception) as error:
        read_history(lake, dataset)
    assert failed, "the fault was not injected"
    _assert_retried_io_error(error.value)


def test_an_io_error_on_the_drift_history_never_checks_a_checked_day_again(settings: Settings, lake: Lake) -> None:
    """Read as empty, the history made the severe, already-triggered day 1 "unchecked": checked and triggered again."""
    from mlops.drift import append_history
    from mlops.monitoring import unchecked_days

    dataset, first, second = settings.dataset.name, dt.date(2026, 11, 9), dt.date(2026, 11, 10)
    for day in (first, second):
        lake.write_json(lake.marker("raw", day, VALIDATED), {"rows": 1})
        lake.touch(lake.marker("scores", day, SUCCESS))
    append_history(lake, dataset, _entry(first))
    assert unchecked_days(lake, dataset, up_to=second) == ([second], [])
    before = _files(lake)
    with io_fault(lake, "stat", lake.drift_history_dir(dataset), times=1) as failed, pytest.raises(Exception) as error:
        unchecked_days(lake, dataset, up_to=second)
    assert failed
    _assert_retried_io_error(error.value)
    assert _files(lake) == before


def _champion(settings: Settings, lake: Lake, day: dt.date) -> Any:
    """A champion as monitoring pins it, its reference profile made from ``day`` itself (no MLflow needed)."""
    from mlops.data.contract import Contract
    from mlops.features import build_matrix, feature_spec
    from mlops.models import PinnedModel
    from mlops.monitoring import Champion
    from mlops.profiling import reference_profile

    spec = feature_spec(settings, Contract.load(settings.contract_path))
    X = build_matrix(lake.read_partition(lake.partition("raw", day)), spec)
    pinned = PinnedModel(settings.dataset.name, "1", "run-1", "models:/m/1", spec.to_dict())
    return Champion(pinned, reference_profile(X, spec, np.zeros(X.shape[0])), None, {})


def test_an_io_error_on_the_drift_history_appends_and_triggers_nothing(
    settings: Settings, lake: Lake, landed_day: dt.date
) -> None:
    """One transient EIO: ``check_day`` decided on an empty history (the debounce saw no earlier breach) and
    recorded that decision as the day's entry, so the day was never decided on its real history."""
    from mlops.drift import append_history, read_history
    from mlops.monitoring import check_day

    dataset, earlier = settings.dataset.name, landed_day - dt.timedelta(days=1)
    lake.write_json(lake.marker("raw", landed_day, VALIDATED), {"rows": 1})
    append_history(lake, dataset, _entry(earlier, severe=False, triggered=False))
    champion, last_training = _champion(settings, lake, landed_day), dt.date(2026, 1, 1)
    before = _files(lake)
    with io_fault(lake, "stat", lake.drift_history_dir(dataset), times=1) as failed, pytest.raises(Exception) as error:
        check_day(settings, landed_day, render_report=False, champion=champion, last_training=last_training)
    assert failed
    _assert_retried_io_error(error.value)
    assert _files(lake) == before, "no history entry was appended"

    outcome = check_day(settings, landed_day, render_report=False, champion=champion, last_training=last_training)
    recorded = [entry["day"] for entry in read_history(lake, dataset)]
    assert not outcome.trigger and recorded == [earlier.isoformat(), landed_day.isoformat()], (
        "the fault alone failed it"
    )


# -- 2. publishing -------------------------------------------------------------------------------------------------
DAY = dt.date(2026, 11, 10)
OLD, NEW = pa.table({"x": [1, 2, 3]}), pa.table({"x": [4, 5, 6, 7]})


def _published(lake: Lake) -> str:
    """``scores/dt=D`` holding the OLD table with its marker."""
    from mlops.data.publish import publish_partition

    final = lake.partition("scores", DAY)
    publish_partition(lake, final, lambda staging: lake.write_parquet(OLD, f"{staging}/part-00000.parquet"))
    return final


def _stage(lake: Lake, final: str) -> str:
    staging = lake.staging("scores", DAY, "run-1")
    lake.write_parquet(NEW, f"{staging}/part-00000.parquet")
    return staging


def _output(lake: Lake, final: str) -> pa.Table:
    assert lake.exists(f"{final}/{SUCCESS}")
    return lake.read_partition(final)


def _beside(lake: Lake) -> list[str]:
    return sorted(path.rsplit("/", 1)[-1] for path in lake.listdir(lake.area("scores")))


@pytest.mark.parametrize("at", ["stat", "list"])
def test_an_io_error_never_reads_as_nothing_to_recover(lake: Lake, at: str) -> None:
    """A commit killed after moving its staged files beside the partition: the retry recovers them or fails."""
    from mlops.data.publish import commit_staged, recover_staged

    final = _published(lake)
    staging = _stage(lake, final)
    lake.rename(staging, lake.side(final, "new", "killed"))  # the swap's first step, then the worker died
    before = _files(lake)
    with io_fault(lake, at, lake.area("scores")) as failed, pytest.raises(Exception) as error:
        recover_staged(lake, staging, final)
    assert failed
    _assert_retried_io_error(error.value)
    assert _files(lake) == before, "the killed commit's files are where it left them"

    assert recover_staged(lake, staging, final), "the retry finds them"
    commit_staged(lake, staging, final)
    assert _output(lake, final).equals(NEW) and _beside(lake) == [f"dt={DAY}"]


@pytest.mark.parametrize(("at", "where"), [("stat", "parent"), ("list", "parent"), ("list", "staging")])
def test_an_io_error_while_committing_changes_nothing_and_is_retried(lake: Lake, at: str, where: str) -> None:
    """Read as "no stale side folder", the commit went ahead and left a killed run's leftovers behind."""
    from mlops.data.publish import commit_staged

    final = _published(lake)
    staging = _stage(lake, final)
    stale = lake.side(final, "old", "killed")
    lake.write_parquet(OLD, f"{stale}/part-00000.parquet")
    before = _files(lake)
    target = lake.area("scores") if where == "parent" else staging
    with io_fault(lake, at, target) as failed, pytest.raises(Exception) as error:
        commit_staged(lake, staging, final, keep={"part-00000.parquet"})
    assert failed
    _assert_retried_io_error(error.value)
    assert _files(lake) == before and _output(lake, final).equals(OLD), "the previous output stands"

    commit_staged(lake, staging, final, keep={"part-00000.parquet"})
    assert _output(lake, final).equals(NEW) and _beside(lake) == [f"dt={DAY}"], "the stale side went"


# -- 3. scoring reads ----------------------------------------------------------------------------------------------
class _FailingDisk(io.FileIO):
    """A local parquet file whose data reads fail with EIO (Arrow reads it as it reads an s3fs file object).

    Reads that reach the file's end (the footer) still work when ``footer_ok``: the plan reads, the rows do not.
    """

    def __init__(self, path: str, footer_ok: bool) -> None:
        super().__init__(path, "rb")
        self.size, self.footer_ok = os.path.getsize(path), footer_ok

    def read(self, size: int = -1) -> bytes:
        if not (self.footer_ok and (size < 0 or self.tell() + size >= self.size - 8)):
            raise OSError(errno.EIO, os.strerror(errno.EIO), self.name)
        return super().read(size)


@contextmanager
def _parquet_eio(path: str, footer_ok: bool) -> Iterator[list[str]]:
    """Arrow's reads of ``path`` fail with EIO, as a failing disk or a reset S3 connection makes them."""
    real, opened, failed = pq.ParquetFile, [], []

    def parquet_file(source: Any, *args: Any, **kwargs: Any) -> pq.ParquetFile:
        if source == path:
            failed.append(path)
            opened.append(source := _FailingDisk(path, footer_ok))
        return real(source, *args, **kwargs)

    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(pq, "ParquetFile", parquet_file)
            yield failed
    finally:
        for handle in opened:
            handle.close()


@pytest.fixture
def validated_day(lake: Lake, landed_day: dt.date) -> dt.date:
    manifest = lake.manifest(lake.partition("raw", landed_day))  # what a verdict records
    lake.write_json(lake.marker("raw", landed_day, VALIDATED), {"rows": 5_000, "manifest": manifest})
    return landed_day


def _read_all(settings: Settings, lake: Lake, day: dt.date) -> int:
    """Plan the day, then stream every planned row group (what ``score_chunk`` and shadow scoring read)."""
    from mlops.scoring import plan_chunks
    from mlops.scoring.parquet_io import read_batches

    raw, columns = lake.partition("raw", day), [settings.dataset.id_column, "amount"]
    chunks = plan_chunks(settings, lake, day)
    return sum(
        batch.num_rows for chunk in chunks for batch in read_batches(lake, raw, chunk.row_groups, columns, 1_024)
    )


@pytest.mark.parametrize("where", ["footer", "rows"])
def test_an_io_error_reading_a_validated_day_is_retried_not_bad_input(
    settings: Settings, lake: Lake, validated_day: dt.date, where: str
) -> None:
    """Before: ``ScoringInputError`` (never retried; the DAG left the day out and alerted "cannot be scored")."""
    from mlops.scoring import ScoringInputError

    path = lake.data_files(lake.partition("raw", validated_day))[0]
    assert _read_all(settings, lake, validated_day) == 5_000
    with _parquet_eio(path, footer_ok=where == "rows") as failed, pytest.raises(Exception) as error:
        _read_all(settings, lake, validated_day)
    assert failed
    _assert_retried_io_error(error.value)
    assert not isinstance(error.value, ScoringInputError)
    assert path in str(error.value) and ("row groups" in str(error.value)) == (where == "rows"), str(error.value)


def test_a_corrupt_parquet_file_is_still_bad_input(settings: Settings, lake: Lake, validated_day: dt.date) -> None:
    from mlops.scoring import ScoringInputError, plan_chunks
    from mlops.scoring.parquet_io import read_batches

    raw = lake.partition("raw", validated_day)
    (chunk,) = plan_chunks(settings, lake, validated_day)  # planned on the validated bytes, which then rot
    path = lake.data_files(raw)[0]
    original = Path(path).read_bytes()
    column = pq.ParquetFile(path).schema_arrow.get_field_index(settings.dataset.id_column)
    offset = pq.ParquetFile(path).metadata.row_group(0).column(column).data_page_offset
    Path(path).write_bytes(original[:offset] + b"\xff" * 64 + original[offset + 64 :])
    with pytest.raises(ScoringInputError, match="corrupt or changed after validation") as error:
        list(read_batches(lake, raw, chunk.row_groups, [settings.dataset.id_column], 1_024))
    assert not isinstance(error.value, InfrastructureError)
    with pytest.raises(ScoringInputError, match="changed after validation") as error:  # a new plan refuses it
        _read_all(settings, lake, validated_day)
    assert not isinstance(error.value, InfrastructureError)

    Path(path).write_bytes(original[: len(original) // 2])  # the footer is gone
    with pytest.raises(ScoringInputError, match="cannot read the parquet footer") as error:
        from mlops.scoring.parquet_io import read_footer

        read_footer(lake, path)
    assert not isinstance(error.value, InfrastructureError)


# -- 4. the GPU pod refuses what redaction masks ------------------------------------------------------------------
POD_SECRETS = [(text, secret) for text, secret, _shown in MASKED] + [
    ("https://svc.example.com/oauth?client_secret=cs-91f0a2b7", "cs-91f0a2b7"),
    ("https://hooks.slack.com/workflows/T0123ABCD/A0456/789/abcdefghijkl", "abcdefghijkl"),
]


@pytest.mark.parametrize(("value", "secret"), POD_SECRETS, ids=[secret for _value, secret in POD_SECRETS])
def test_the_pod_refuses_every_value_redaction_masks(value: str, secret: str) -> None:
    """Before: only URL passwords, AWS key ids and connection templates were refused; the rest reached the pod."""
    from mlops.training.pod_spec import check_arguments, check_env

    assert secret not in mask(value), "redaction masks it ..."
    with pytest.raises(ValueError, match="Kubernetes Secret") as refused:
        check_env({"SERVICE_URL": value})
    with pytest.raises(ValueError, match=r"arguments\[1\] is a (URL|secret parameter|Slack webhook)") as argument:
        check_arguments(["--conf-json", value])
    assert secret not in str(refused.value) and secret not in str(argument.value), "... and so does the refusal"


@pytest.mark.parametrize("value", ORDINARY)
def test_the_pod_accepts_what_redaction_leaves_alone(value: str) -> None:
    from mlops.training.pod_spec import check_arguments, check_env

    assert mask(value) == value
    assert check_env({"NOTE": value}) == {"NOTE": value} and check_arguments([value]) == [value]


def test_a_config_value_with_a_secret_parameter_stays_out_of_the_pod(tmp_path: Path) -> None:
    from mlops.training.pod_spec import trainer_env

    uri = "https://mlflow.example.com/?token=tok-8f2a91"
    env = trainer_env(load_settings(conf={"mlflow": {"tracking_uri": uri}}, env={"MLOPS_HOME": str(tmp_path)}))
    assert "MLOPS__MLFLOW__TRACKING_URI" not in env and all("tok-8f2a91" not in value for value in env.values())
