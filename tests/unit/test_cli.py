"""`mlops` by hand: each step's exit code and message are what a data engineer scripts against."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mlops.cli import main
from mlops.data.contract import Contract


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MLOPS_HOME", str(tmp_path))
    for key in ("MLOPS_CONFIG", "MLOPS__DATASET__LAKE_URI"):
        monkeypatch.delenv(key, raising=False)
    return tmp_path


def test_help_lists_every_step() -> None:
    result = subprocess.run([str(Path(sys.executable).with_name("mlops")), "--help"], capture_output=True, text=True)
    assert result.returncode == 0
    for command in ("data", "contract", "validate", "env"):
        assert command in result.stdout


def test_generate_validate_and_corrupt(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "generate", "--start", "2026-11-01", "--days", "2", "--rows-per-day", "1000"]) == 0
    assert "2026-11-02" in capsys.readouterr().out
    assert main(["--json", "validate", "--date", "2026-11-01"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["passed"] is True and len(result["dvc"]["revision"]) == 40

    assert main(["data", "corrupt", "--date", "2026-11-02", "--fault", "duplicate_ids"]) == 0
    capsys.readouterr()
    assert main(["validate", "--date", "2026-11-02"]) == 1
    out = capsys.readouterr().out
    assert "[unique] column 'transaction_id'" in out and "part-00000.parquet" in out


def test_contract_infer_drafts_a_loadable_contract(home: Path, tmp_path: Path) -> None:
    main(["data", "generate", "--start", "2026-11-01", "--rows-per-day", "500"])
    out = tmp_path / "draft.yaml"
    assert main(["contract", "infer", "--date", "2026-11-01", "--out", str(out)]) == 0
    assert "amount" in Contract.load(out).columns


def test_bad_config_and_bad_usage_exit_2(
    home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MLOPS__VALIDATION__OFFENDING_IDS_SAMPLE", "-1")
    assert main(["validate", "--date", "2026-11-01"]) == 2
    assert "validation.offending_ids_sample" in capsys.readouterr().err
    monkeypatch.delenv("MLOPS__VALIDATION__OFFENDING_IDS_SAMPLE")
    assert main(["data", "generate", "--start", "2026-11-01", "--days", "0"]) == 2
    with pytest.raises(SystemExit) as usage:
        main(["validate", "--date", "yesterday"])
    assert usage.value.code == 2


def test_requeue_returns_a_quarantined_day_for_revalidation(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main(["data", "generate", "--start", "2026-11-01", "--rows-per-day", "1000"])
    main(["data", "corrupt", "--date", "2026-11-01", "--fault", "duplicate_ids"])
    assert main(["validate", "--date", "2026-11-01"]) == 1  # quarantined
    capsys.readouterr()
    assert main(["requeue", "--date", "2026-11-01", "--reason", "rule relaxed"]) == 0
    assert "back for re-validation" in capsys.readouterr().out
    reason = json.loads((home / "lake" / "raw" / "dt=2026-11-01" / "reason.json").read_text())
    assert [(e["event"], e.get("note")) for e in reason["history"]] == [
        ("quarantined", None),
        ("requeued", "rule relaxed"),
    ]
    assert main(["requeue", "--date", "2026-11-01"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("mlops requeue: ") and "holds no data to requeue" in err and len(err.splitlines()) == 1
