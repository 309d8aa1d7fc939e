"""`mlops` by hand: each step's exit code and message are what a data engineer scripts against."""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlops.cli import build_parser, main
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


# -- the CLI as people type it ------------------------------------------------------------------------------------
def _parsers(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """The path of every (sub)command under ``parser``: (), ("data",), ("data", "generate"), ..."""
    yield path
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _parsers(sub, (*path, name))


def _parser(path: tuple[str, ...]) -> argparse.ArgumentParser:
    parser = build_parser()
    for name in path:
        parser = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[name]
    return parser


COMMANDS = list(_parsers(build_parser()))


@pytest.mark.parametrize(
    ("argv", "json_", "verbose", "config"),
    [
        (["models"], False, False, None),
        (["models", "--json"], True, False, None),
        (["--json", "models"], True, False, None),  # not reset by the subcommand's copy of --json
        (["models", "-v"], False, True, None),
        (["--verbose", "models", "--json"], True, True, None),
        (["--config", "a.yaml", "models"], False, False, "a.yaml"),
        (["--config", "a.yaml", "models", "--config", "b.yaml"], False, False, "b.yaml"),  # after wins
        (["data", "generate", "--start", "2026-11-01", "-v", "--json"], True, True, None),
        (["data", "--json", "corrupt", "--date", "2026-11-01", "--fault", "empty"], True, False, None),
    ],
)
def test_global_options_go_before_or_after_the_command(
    argv: list[str], json_: bool, verbose: bool, config: str | None
) -> None:
    args = build_parser().parse_args(argv)
    assert (args.json, args.verbose, args.config) == (json_, verbose, config)


def test_dataset_init_config_after_the_command_is_the_global_option() -> None:
    argv = ["dataset", "init", "--name", "t", "--date", "2026-03-02", "--config", "c.yaml", "--config-out", "o.yaml"]
    args = build_parser().parse_args(argv)
    assert (args.config, args.config_out) == ("c.yaml", "o.yaml")


def test_models_json_before_or_after_the_command(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["models", "--json"], ["--json", "models"]):
        assert main(argv) == 0
        result = json.loads(capsys.readouterr().out)
        assert result["champion"] is None and result["out_of_sync"] == [] and result["ledger"] == []


def test_verbose_after_the_command(
    home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    levels: list[int] = []
    monkeypatch.setattr(logging, "basicConfig", lambda **kwargs: levels.append(kwargs["level"]))
    assert main(["env", "-v"]) == 0
    assert "MLOPS_HOME=" in capsys.readouterr().out
    assert main(["env", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["MLOPS_HOME"] == str(home)
    assert levels == [logging.INFO, logging.WARNING]

    monkeypatch.setenv("MLOPS__VALIDATION__OFFENDING_IDS_SAMPLE", "-1")  # a config error: exit 2, traceback with -v
    assert main(["validate", "--date", "2026-11-01"]) == 2
    assert not [r for r in caplog.records if r.exc_info]
    assert main(["validate", "--date", "2026-11-01", "--verbose"]) == 2
    assert [r.getMessage() for r in caplog.records if r.exc_info] == ["mlops validate failed"]


def test_every_option_and_command_has_help() -> None:
    missing = []
    for path in COMMANDS:
        for action in _parser(path)._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            helps = [action.help]
            if isinstance(action, argparse._SubParsersAction):
                helps += [choice.help for choice in action._choices_actions]
            if not all(h and str(h).strip() for h in helps):
                missing.append(f"mlops {' '.join(path)}: {'/'.join(action.option_strings) or action.dest}")
    assert missing == []


@pytest.mark.parametrize("path", COMMANDS, ids=lambda path: " ".join(("mlops", *path)))
def test_every_help_ends_with_examples_that_parse(
    path: tuple[str, ...], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    with pytest.raises(SystemExit) as done:
        main([*path, "--help"])
    assert done.value.code == 0
    lines = capsys.readouterr().out.rstrip("\n").splitlines()
    assert lines[-1].startswith("  mlops ")
    heading = max(i for i, line in enumerate(lines) if line in ("Example:", "Examples:"))
    examples = "\n".join(lines[heading + 1 :]).replace("\\\n", " ").splitlines()
    assert [line for line in lines[:heading] if len(line) > 78] == []  # fits a terminal of 80 columns
    for example in (shlex.split(line) for line in examples):
        if example[0] != "mlops":
            continue  # e.g. eval "$(mlops env)"
        args = build_parser().parse_args(example[1:])
        assert [args.command, getattr(args, f"{args.command}_command", None)][: len(path)] == list(path)


@pytest.mark.parametrize("path", [p for p in COMMANDS if p in {(), ("data",), ("contract",), ("dataset",)}])
def test_help_lists_each_command_on_one_line(
    path: tuple[str, ...], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    with pytest.raises(SystemExit):
        main([*path, "--help"])
    lines = capsys.readouterr().out.splitlines()
    commands = next(a for a in _parser(path)._actions if isinstance(a, argparse._SubParsersAction))
    assert commands._choices_actions
    for choice in commands._choices_actions:
        assert any(line.split(maxsplit=1) == [choice.dest, choice.help] for line in lines), choice.dest
