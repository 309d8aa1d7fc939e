"""A dead remote or tracking server costs one line naming it, and a retryable error: no library traceback."""

from __future__ import annotations

import datetime as dt
import logging
import socket
import subprocess
import traceback
from pathlib import Path

import pytest

from mlops.config import Settings, load_settings
from mlops.data.lake import Lake
from mlops.data.landing import land_days
from mlops.errors import InfrastructureError
from mlops.models import HTTP_RETRY_DEFAULTS
from mlops.versioning import snapshot_partition

DAY = dt.date(2026, 11, 3)
MAX_RETRIES = "MLFLOW_HTTP_REQUEST_MAX_RETRIES"


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _versioning(settings: Settings, **update: str) -> Settings:
    return settings.model_copy(update={"versioning": settings.versioning.model_copy(update=update)})


def _unwritable_remote(tmp_path: Path) -> str:
    """A DVC remote under a regular file: no directory can be made there, whoever runs the test (root too)."""
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the remote's folder should be")
    return str(blocker / "dvc-remote")


def _assert_quiet(error: InfrastructureError, text: str, capfd: pytest.CaptureFixture[str],
                  caplog: pytest.LogCaptureFixture) -> None:  # fmt: skip
    message = str(error)
    assert "\n" not in message and text in message, message
    shown = "".join(traceback.format_exception(error))  # what Airflow's task log prints under the failure
    assert "During handling" not in shown and "direct cause" not in shown, shown  # no chained library traceback
    out, err = capfd.readouterr()
    logged = caplog.text
    for output in (out, err, logged):
        assert "Traceback" not in output, output
    dvc_lines = [line for line in (out + err + logged).splitlines() if "dvc" in line.lower()]
    assert len(dvc_lines) < 3, dvc_lines


def test_an_unwritable_dvc_remote_is_one_retryable_line_naming_it(
    settings: Settings, lake: Lake, tmp_path: Path, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    land_days(settings, DAY, days=1, rows_per_day=300, seed=5)
    remote = _unwritable_remote(tmp_path)
    capfd.readouterr()
    with caplog.at_level(logging.INFO), pytest.raises(InfrastructureError) as caught:
        snapshot_partition(_versioning(settings, remote_url=remote), lake, DAY, rows=300)
    _assert_quiet(caught.value, f"DVC remote {remote}: push failed: NotADirectoryError", capfd, caplog)


def test_a_remote_that_refuses_every_file_logs_no_dvc_traceback(
    settings: Settings, lake: Lake, tmp_path: Path, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    """DVC logs each failed file with its traceback, then raises "N files failed to upload": one line instead,
    with the first file's reason."""
    remote = tmp_path / "remote"
    (remote / "files" / "md5").mkdir(parents=True)
    for prefix in range(256):  # every object folder leads where nobody can write, root included
        (remote / "files" / "md5" / f"{prefix:02x}").symlink_to("/proc")
    land_days(settings, DAY, days=1, rows_per_day=300, seed=5)
    capfd.readouterr()
    with caplog.at_level(logging.INFO), pytest.raises(InfrastructureError) as caught:
        snapshot_partition(_versioning(settings, remote_url=str(remote)), lake, DAY, rows=300)
    _assert_quiet(caught.value, f"DVC remote {remote}: push failed: UploadError: ", capfd, caplog)
    assert "failed to upload (first: " in str(caught.value)


def test_an_unreachable_registry_remote_is_one_line_naming_it_and_the_operation(
    settings: Settings, lake: Lake, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    land_days(settings, DAY, days=1, rows_per_day=300, seed=5)
    remote = f"https://127.0.0.1:{_closed_port()}/data.git"
    capfd.readouterr()
    with caplog.at_level(logging.INFO), pytest.raises(InfrastructureError) as caught:
        snapshot_partition(_versioning(settings, registry_remote=remote), lake, DAY, rows=300)
    _assert_quiet(caught.value, f"data registry remote {remote}: read (git ls-remote) failed: fatal:", capfd, caplog)


def test_a_refused_registry_push_is_one_line_naming_the_remote(
    settings: Settings, lake: Lake, tmp_path: Path, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    """git's push output ("To <url>", "! [remote rejected]", "error: failed to push", hints) becomes one line."""
    bare = tmp_path / "registry.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(bare)], check=True)
    hook = bare / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'disk quota exceeded' >&2\nexit 1\n")
    hook.chmod(0o755)
    land_days(settings, DAY, days=1, rows_per_day=300, seed=5)
    worker = _versioning(settings, registry_remote=f"file://{bare}", registry_path=str(tmp_path / "worker"))
    capfd.readouterr()
    with caplog.at_level(logging.INFO), pytest.raises(InfrastructureError) as caught:
        snapshot_partition(worker, lake, DAY, rows=300)
    _assert_quiet(caught.value, f"data registry remote file://{bare}: push failed: ", capfd, caplog)
    assert "disk quota exceeded" in str(caught.value)


def test_mlops_validate_prints_one_line_for_an_unwritable_dvc_remote(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    from mlops.cli import main

    remote = _unwritable_remote(tmp_path)
    monkeypatch.setenv("MLOPS_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MLOPS__VERSIONING__REMOTE_URL", remote)
    for key in ("MLOPS_CONFIG", "MLOPS_MODEL", "MLOPS_MODELS_DIR", "MLOPS__DATASET__LAKE_URI"):
        monkeypatch.delenv(key, raising=False)
    land_days(load_settings(model="card_transactions"), DAY, days=1, rows_per_day=300, seed=5)
    capfd.readouterr()
    code = main(["validate", "--model", "card_transactions", "--date", DAY.isoformat()])
    out, err = capfd.readouterr()
    assert code == 3, (out, err)  # exit 3: an infrastructure failure, retry later
    assert "Traceback" not in out + err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert f"DVC remote {remote}: push failed" in lines[0]


def _cli_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, tracking_uri: str) -> None:
    monkeypatch.setenv("MLOPS_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MLOPS__MLFLOW__TRACKING_URI", tracking_uri)
    for key in ("MLOPS_CONFIG", "MLOPS_MODEL", "MLOPS_MODELS_DIR", *HTTP_RETRY_DEFAULTS):
        monkeypatch.setenv(key, "restored after the test")  # so that teardown removes what the command sets
        monkeypatch.delenv(key)


def test_a_dead_tracking_server_fails_mlops_models_with_one_line_within_bounded_retries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    """MLflow's own defaults retry a refused connection for minutes without a word in the task's state."""
    import os
    import time

    from mlops.cli import main

    url = f"http://127.0.0.1:{_closed_port()}"
    _cli_env(monkeypatch, tmp_path, url)
    started = time.monotonic()
    code = main(["models", "--model", "card_transactions"])
    assert time.monotonic() - started < 90  # a safety bound only: MLflow's defaults take about four minutes
    out, err = capfd.readouterr()
    assert code == 3, (out, err)  # an infrastructure failure: retry later
    assert {key: os.environ.get(key) for key in HTTP_RETRY_DEFAULTS} == HTTP_RETRY_DEFAULTS
    last = err.strip().splitlines()[-1]
    assert last.startswith("mlops models: MLflow failed: ") and url in last, err
    assert "Traceback" not in out + err
    # Each retry is said as it happens (urllib3's warning), three of them: the bounded default, not MLflow's seven.
    retries = [record for record in caplog.records if record.getMessage().startswith("Retrying")]
    assert len(retries) == int(HTTP_RETRY_DEFAULTS[MAX_RETRIES]), caplog.text


def test_the_operators_mlflow_retry_settings_win(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    import os

    from mlops.cli import main

    url = f"http://127.0.0.1:{_closed_port()}"
    _cli_env(monkeypatch, tmp_path, url)
    monkeypatch.setenv(MAX_RETRIES, "0")
    assert main(["models", "--model", "card_transactions"]) == 3
    err = capfd.readouterr().err
    assert os.environ[MAX_RETRIES] == "0" and "Retrying" not in caplog.text and url in err
