"""Trust, second round: breaks 7, 8 and 9 of the issue, each reproduced on the code before the fix.

* 7: an I/O error on a partition's stat, listing, open or read never quarantines the day: it is an
  infrastructure error (retried) and the lake is left as it was; the lake never reads an error as "absent";
* 8: ``redact_text`` masks empty-user URL passwords, secret query parameters and Slack webhook paths, and
  leaves ordinary URLs and text alone;
* 9: a huge value is quoted short in a quarantine reason; Slack alerts are escaped; a run's conf is bounded.
"""

from __future__ import annotations

import datetime as dt
import errno
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mlops.config import ConfigError, Settings, check_run_overrides, load_settings
from mlops.data.lake import REASON, SUCCESS, VALIDATED, Lake, LakeIOError
from mlops.errors import InfrastructureError, InputError
from mlops.redact import redact_text
from mlops.validation import PartitionNotReady, ValidationFailed, check_partition


# -- 7. transient is not invalid ------------------------------------------------------------------------------
def _eio(path: Any) -> OSError:
    return OSError(errno.EIO, os.strerror(errno.EIO), os.fspath(path))


class _FailingReads:
    """A file handle whose reads fail (the open worked, the bytes never came)."""

    def __init__(self, handle: Any, path: str) -> None:
        self.handle, self.path = handle, path

    def __enter__(self) -> _FailingReads:
        return self

    def __exit__(self, *exc: object) -> None:
        self.handle.close()

    def read(self, *args: object) -> bytes:
        raise _eio(self.path)


@contextmanager
def io_fault(lake: Lake, at: str, target: str, times: int = 1_000) -> Iterator[list[str]]:
    """The next ``times`` operations ``at`` ("stat", "list", "open" or "read") on ``target`` fail with EIO.

    "stat" fails the disk's ``os.stat`` itself, which fsspec's ``info``, ``exists`` and ``isdir`` all call (the
    fault of the issue); the others fail the lake's fsspec filesystem object. Yields the failed paths.
    """
    failed: list[str] = []

    def hit(path: Any) -> bool:
        if isinstance(path, str | os.PathLike) and os.fspath(path).rstrip("/") == target and len(failed) < times:
            failed.append(os.fspath(path))
            return True
        return False

    def failing(real: Any) -> Any:
        def call(path: Any, *args: Any, **kwargs: Any) -> Any:
            if hit(path):
                raise _eio(path)
            return real(path, *args, **kwargs)

        return call

    with pytest.MonkeyPatch.context() as patch:
        if at == "stat":
            patch.setattr(os, "stat", failing(os.stat))
        elif at == "list":
            for name in ("ls", "find", "glob"):
                patch.setattr(lake.fs, name, failing(getattr(lake.fs, name)))
        elif at == "open":
            patch.setattr(lake.fs, "open", failing(lake.fs.open))
        else:
            real_open = lake.fs.open

            def open_(path: str, *args: Any, **kwargs: Any) -> Any:
                handle = real_open(path, *args, **kwargs)
                return _FailingReads(handle, path) if hit(path) else handle

            patch.setattr(lake.fs, "open", open_)
        yield failed


def _files(lake: Lake) -> dict[str, bytes]:
    """Every file of the lake and its bytes: what "the lake is unchanged" compares."""
    root = Path(lake.root)
    return {str(path.relative_to(root)): path.read_bytes() for path in sorted(root.rglob("*")) if path.is_file()}


@pytest.fixture
def no_pauses(monkeypatch: pytest.MonkeyPatch) -> None:
    import mlops.validation

    monkeypatch.setattr(mlops.validation, "READ_RETRY_SECONDS", (0.0, 0.0))


def _target(lake: Lake, day: dt.date, what: str) -> str:
    partition = lake.partition("raw", day)
    return {"partition": partition, "marker": lake.marker("raw", day, SUCCESS),
            "file": lake.data_files(partition)[0]}[what]  # fmt: skip


@pytest.mark.parametrize(
    ("at", "what"),
    [("stat", "partition"), ("stat", "marker"), ("list", "partition"), ("open", "file"), ("read", "file")],
)
@pytest.mark.usefixtures("no_pauses")
def test_an_io_error_while_validating_never_quarantines_the_day(
    settings: Settings, lake: Lake, landed_day: dt.date, at: str, what: str
) -> None:
    """The issue: one EIO on the partition's stat became "[non_empty_partition] no parquet files" and a quarantine
    (an EIO on ``_SUCCESS`` became "not ready", an input error that is never retried)."""
    before = _files(lake)
    with io_fault(lake, at, _target(lake, landed_day, what)) as failed, pytest.raises(Exception) as error:
        check_partition(settings, landed_day, lake)
    assert failed, "the fault was not injected"
    assert isinstance(error.value, InfrastructureError), f"{type(error.value).__name__}: {error.value}"
    assert not isinstance(error.value, InputError | ValidationFailed | PartitionNotReady)
    assert "NOT quarantined" in str(error.value) and "Input/output error" in str(error.value)
    assert not lake.exists(lake.partition("quarantine", landed_day))
    assert _files(lake) == before, "the lake is unchanged"


@pytest.mark.usefixtures("no_pauses")
def test_one_eio_on_the_partition_stat_is_retried_in_place_and_the_day_passes(
    settings: Settings, lake: Lake, landed_day: dt.date
) -> None:
    with io_fault(lake, "stat", lake.partition("raw", landed_day), times=1) as failed:
        verdict = check_partition(settings, landed_day, lake)
    assert failed and verdict.passed, verdict.summary()
    assert not lake.exists(lake.partition("quarantine", landed_day))


#: A lake query -> the fault it meets (where, on what) and the query; each finds the landed day without a fault.
LAKE_QUERIES = {
    "exists": ("stat", "marker", lambda lake, day: lake.exists(lake.marker("raw", day, SUCCESS))),
    "isdir": ("stat", "partition", lambda lake, day: lake.isdir(lake.partition("raw", day))),
    "data_files-stat": ("stat", "partition", lambda lake, day: lake.data_files(lake.partition("raw", day))),
    "data_files-list": ("list", "partition", lambda lake, day: lake.data_files(lake.partition("raw", day))),
    "days-marker": ("stat", "marker", lambda lake, day: lake.days("raw", SUCCESS)),
    "days-list": ("list", "area", lambda lake, day: lake.days("raw")),
}


@pytest.mark.parametrize("name", sorted(LAKE_QUERIES))
def test_the_lake_never_reads_an_io_error_as_absent(lake: Lake, landed_day: dt.date, name: str) -> None:
    """fsspec's exists/isdir answer False on any error (a day then has no files, no marker); the lake raises."""
    at, what, query = LAKE_QUERIES[name]
    target = {"partition": lake.partition("raw", landed_day), "marker": lake.marker("raw", landed_day, SUCCESS),
              "area": lake.area("raw")}[what]  # fmt: skip
    assert query(lake, landed_day), "without a fault the query finds the landed day"
    with io_fault(lake, at, target) as failed, pytest.raises(LakeIOError) as error:
        query(lake, landed_day)
    assert failed and isinstance(error.value, InfrastructureError) and error.value.errno == errno.EIO
    assert "Input/output error" in str(error.value)


def test_absent_paths_are_still_answers_not_errors(lake: Lake) -> None:
    day = dt.date(2026, 1, 1)
    assert not lake.exists(lake.marker("raw", day, SUCCESS)) and not lake.isdir(lake.partition("raw", day))
    assert lake.data_files(lake.partition("raw", day)) == [] and lake.days("raw") == []
    assert not lake.exists(f"{lake.marker('raw', day, SUCCESS)}/below-a-file")
    with pytest.raises(FileNotFoundError):
        lake.read_json(lake.marker("raw", day, VALIDATED))


# -- 8. what a secret looks like --------------------------------------------------------------------------------
MASKED = [
    ("redis://:s3cret-pass@cache:6379/0", "s3cret-pass", "redis://:***@cache:6379/0"),
    ("GET https://api.example.com/v1/items?token=tok-8f2a91&page=2", "tok-8f2a91", "?token=***&page=2"),
    ("https://id.example.com/cb?state=1&access_token=ya29.a0AfH6SM", "ya29.a0AfH6SM", "&access_token=***"),
    ("curl 'https://maps.example.com/api?api_key=AIzaSyD-12345'", "AIzaSyD-12345", "?api_key=***'"),
    ("https://acct.blob.core.windows.net/c/f?sv=2020-08-04&sig=abc%2Bdef%3D", "abc%2Bdef", "&sig=***"),
    ("https://cdn.example.com/f?expires=1&signature=c2lnbmF0dXJl", "c2lnbmF0dXJl", "&signature=***"),
    ("https://b.s3.amazonaws.com/k?X-Amz-Date=20261110T000000Z&X-Amz-Signature=0a1b2c3d4e", "0a1b2c3d4e",
     "&X-Amz-Signature=***"),
    ("https://b.s3.amazonaws.com/k?X-Amz-Security-Token=FwoGZXIvYXdz&X-Amz-Expires=60", "FwoGZXIvYXdz",
     "?X-Amz-Security-Token=***&X-Amz-Expires=60"),
    ("login failed for https://svc.example.com/login?user=bob&password=hunter2", "hunter2", "&password=***"),
    ("POST https://hooks.slack.com/services/T0123ABCD/B0456EFGH/abcdefghijklmnopqrstuvwx: 404", "abcdefghijklmnop",
     "https://hooks.slack.com/services/***: 404"),
]  # fmt: skip
ORDINARY = [
    "https://example.com/search?q=token&page=2&sort=signature_date",
    "http://airflow:8080/dags/data_validation/runs/manual__2026-11-10T06:30:00+00:00/tasks/validate",
    "postgresql://mlops@db:5432/ledger and s3://bucket/raw/dt=2026-11-10/part-00000.parquet",
    "max_tokens=512, design=blue, keyboard=us; the signature of the model is checked",
    "https://hooks.slack.com/ is Slack's webhook host",
]


@pytest.mark.parametrize(("text", "secret", "shown"), MASKED, ids=[case[2][:32] for case in MASKED])
def test_secrets_in_urls_and_parameters_are_masked(text: str, secret: str, shown: str) -> None:
    cleaned = redact_text(text, env={})
    assert secret not in cleaned and shown in cleaned, cleaned


@pytest.mark.parametrize("text", ORDINARY)
def test_ordinary_urls_and_text_are_untouched(text: str) -> None:
    assert redact_text(text, env={}) == text


# -- 9a. a huge value is quoted short -----------------------------------------------------------------------------
def test_a_huge_value_is_quoted_short_in_every_reason(settings: Settings, lake: Lake, landed_day: dt.date) -> None:
    """The issue: a 5 MB string made a 5,000,279-character first line (log, alert, reason.json, page)."""
    path = lake.data_files(lake.partition("raw", landed_day))[0]
    table = pq.read_table(path)
    channels = table["channel"].to_pylist()
    channels[0] = "a" * 5_000_000
    pq.write_table(table.set_column(table.column_names.index("channel"), "channel", pa.array(channels)), path)

    with pytest.raises(ValidationFailed) as error:
        check_partition(settings, landed_day, lake)
    first = str(error.value).splitlines()[0]
    assert "[allowed_values] column 'channel'" in first and f"{'a' * 80}… (5000000 chars)" in first
    assert len(first) < 600, len(first)

    reason_path = lake.marker("quarantine", landed_day, REASON)
    assert os.path.getsize(reason_path) < 50_000
    reason = lake.read_json(reason_path)
    assert reason["history"][-1]["why"] == first
    assert "(5000000 chars)" in reason["failures"][0]["observed"] and len(reason["failures"][0]["observed"]) < 200

    from mlops.web.data import validation_days

    (row,) = [row for row in validation_days(settings) if row["day"] == landed_day.isoformat()]
    assert row["verdict"] == "quarantined" and all(len(text) < 400 for text in row["reasons"]), row["reasons"]


def test_a_huge_column_name_or_id_is_quoted_short() -> None:
    from mlops.validation import Failure, Verdict

    failure = Failure("no_extra_columns", "c" * 1_000_000, "unexpected column", "absent", None, [1, "i" * 2_000_000])
    verdict = Verdict("d", "2026-11-10", "raw/dt=2026-11-10", {"name": "c", "version": "1"}, failures=[failure])
    assert len(verdict.summary()) < 600
    assert "(1000000 chars)" in failure.describe() and "(2000000 chars)" in failure.describe()
    assert len(json.dumps(verdict.to_dict())) < 2_000, "reason.json holds the short form too"


# -- 9b. Slack shows an alert as written ---------------------------------------------------------------------------
def test_a_slack_alert_cannot_ping_the_channel_or_disguise_a_link(slack: list[dict]) -> None:
    from mlops.airflow.notifiers import Alert, deliver

    reason = "ValidationFailed: unknown values ['<!channel> refund at <https://evil.example.com|your invoice>'] & more"
    outcome = deliver(Alert("quarantine", dag_id="data_validation", day="2026-11-10", reason=reason))
    assert outcome["slack"] == "sent"
    (text,) = [post["text"] for post in slack]
    assert "<!channel>" not in text and "<https://evil" not in text
    assert "&lt;!channel&gt; refund at &lt;https://evil.example.com|your invoice&gt;'] &amp; more" in text
    assert text.startswith("*[mlops] QUARANTINED data_validation 2026-11-10: ValidationFailed")  # bold kept


# -- 9c. a run's conf is bounded ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("conf", "key", "why"),
    [
        ({"model": {"num_boost_round": 10**12}}, "config.model.num_boost_round", "less than or equal to 10000"),
        (
            {"model": {"early_stopping_rounds": 10**6}},
            "config.model.early_stopping_rounds",
            "less than or equal to 1000",
        ),
        ({"training": {"window_days": 10**9}}, "config.training.window_days", "less than or equal to 3650"),
        (
            {"model": {"params": {"tree_method": "x" * 5_000}}},
            "config.model.params",
            "tree_method: a text value has at",
        ),
    ],
    ids=["num_boost_round", "early_stopping_rounds", "window_days", "param-text"],
)
def test_a_run_conf_out_of_bounds_fails_at_once_naming_the_key(tmp_path: Path, conf: dict, key: str, why: str) -> None:
    with pytest.raises(ConfigError) as refused:
        load_settings(run_overrides=conf, env={"MLOPS_HOME": str(tmp_path)})
    message = str(refused.value)
    assert isinstance(refused.value, InputError), "not retried: the same conf fails the same way"
    assert f"{key}: " in message and why in message and "\n" not in message and len(message) < 300


def test_a_run_conf_at_the_bounds_is_accepted() -> None:
    conf = {"model": {"params": {"tree_method": "hist", "eta": 0.1}, "num_boost_round": 10_000,
                      "early_stopping_rounds": 1_000}, "training": {"window_days": 3_650}}  # fmt: skip
    assert check_run_overrides(conf) == conf
