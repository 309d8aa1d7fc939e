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
from mlops.config import model_names
from mlops.data.contract import Contract

#: The project's models folder has two model files, so a command about a model names it.
CARDS = ["--model", "card_transactions"]
CHURN = ["--model", "customer_churn"]


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MLOPS_HOME", str(tmp_path))
    for key in ("MLOPS_CONFIG", "MLOPS_MODEL", "MLOPS_MODELS_DIR", "MLOPS__DATASET__LAKE_URI"):
        monkeypatch.delenv(key, raising=False)
    return tmp_path


def test_help_lists_every_step() -> None:
    result = subprocess.run([str(Path(sys.executable).with_name("mlops")), "--help"], capture_output=True, text=True)
    assert result.returncode == 0
    for command in ("data", "contract", "validate", "env"):
        assert command in result.stdout


def test_generate_validate_and_corrupt(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "generate", *CARDS, "--start", "2026-11-01", "--days", "2", "--rows-per-day", "1000"]) == 0
    assert "2026-11-02" in capsys.readouterr().out
    assert main(["--json", *CARDS, "validate", "--date", "2026-11-01"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["passed"] is True and len(result["dvc"]["revision"]) == 40

    assert main(["data", "corrupt", "--date", "2026-11-02", "--fault", "duplicate_ids", *CARDS]) == 0
    capsys.readouterr()
    assert main(["validate", "--date", "2026-11-02", *CARDS]) == 1
    out = capsys.readouterr().out
    assert "[unique] column 'transaction_id'" in out and "part-00000.parquet" in out


def test_contract_infer_drafts_a_loadable_contract(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MLOPS_MODEL", "card_transactions")  # the shell's default model: no --model needed
    main(["data", "generate", "--start", "2026-11-01", "--rows-per-day", "500"])
    out = tmp_path / "draft.yaml"
    assert main(["contract", "infer", "--date", "2026-11-01", "--out", str(out)]) == 0
    assert "amount" in Contract.load(out).columns
    capsys.readouterr()
    assert main(["--json", "contract", "infer", "--date", "2026-11-01"]) == 0  # no --out: the draft, as JSON
    assert json.loads(capsys.readouterr().out)["contract"]["columns"]["amount"]["type"] == "float64"


def test_bad_config_and_bad_usage_exit_2(
    home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MLOPS__VALIDATION__OFFENDING_IDS_SAMPLE", "-1")
    assert main(["validate", "--date", "2026-11-01", *CARDS]) == 2
    assert "validation.offending_ids_sample" in capsys.readouterr().err
    monkeypatch.delenv("MLOPS__VALIDATION__OFFENDING_IDS_SAMPLE")
    assert main(["data", "generate", *CARDS, "--start", "2026-11-01", "--days", "0"]) == 2
    with pytest.raises(SystemExit) as usage:
        main(["validate", "--date", "yesterday"])
    assert usage.value.code == 2


def test_a_date_range_runs_every_day_and_requeue_returns_a_quarantined_day(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main([*CARDS, "data", "generate", "--start", "2026-11-01", "--rows-per-day", "500"])
    main([*CARDS, "data", "generate", "--start", "2026-11-03", "--rows-per-day", "500"])  # 2026-11-02 never landed
    main([*CARDS, "data", "corrupt", "--date", "2026-11-03", "--fault", "duplicate_ids"])
    capsys.readouterr()
    assert main([*CARDS, "validate", "--from", "2026-11-01", "--to", "2026-11-03"]) == 1
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert lines[0].endswith("raw/dt=2026-11-01: 500 rows valid; DVC revision " + lines[0][-40:])
    assert lines[1].startswith("dt=2026-11-02: FAILED: ") and "_SUCCESS" in lines[1], "a failed day does not stop"
    assert lines[2].startswith("dt=2026-11-03: FAILED: dt=2026-11-03 quarantined: "), "the day after ran too"
    assert captured.err == "mlops validate: 2 of 3 days failed: 2026-11-02, 2026-11-03\n"

    assert main(["--json", *CARDS, "requeue", "--from", "2026-11-01", "--to", "2026-11-03", "--reason", "r"]) == 1
    result = json.loads(capsys.readouterr().out)
    assert [(day["date"], day["ok"]) for day in result["days"]] == [
        ("2026-11-01", False),  # validated, not quarantined: nothing to requeue
        ("2026-11-02", False),
        ("2026-11-03", True),
    ]
    assert (result["exit_code"], result["failed"], result["command"]) == (1, ["2026-11-01", "2026-11-02"], "requeue")
    assert "holds no data to requeue" in result["days"][0]["error"]
    assert result["error"] == "2 of 3 days failed: 2026-11-01, 2026-11-02"
    reason = json.loads((home / "lake" / "card_transactions" / "raw" / "dt=2026-11-03" / "reason.json").read_text())
    assert [(e["event"], e.get("note")) for e in reason["history"]] == [("quarantined", None), ("requeued", "r")]
    assert main([*CARDS, "requeue", "--date", "2026-11-03"]) == 1  # one day: one line on stderr, as before
    err = capsys.readouterr().err
    assert err.startswith("mlops requeue: ") and "holds no data to requeue" in err and len(err.splitlines()) == 1


@pytest.mark.parametrize(
    ("days", "message"),
    [
        (["--from", "2026-11-02", "--to", "2026-11-01"], "--to 2026-11-01 is before --from 2026-11-02"),
        (
            ["--from", "2026-01-01", "--to", "2027-01-02"],
            "--from 2026-01-01 --to 2027-01-02 spans 367 days; at most 366 at once",
        ),
        (["--date", "2026-11-01", "--from", "2026-11-01", "--to", "2026-11-02"], "--date or --from/--to, not both"),
        (["--from", "2026-11-01"], "give --date D, or --from D1 and --to D2 (both)"),
        ([], "give --date D, or --from D1 and --to D2 (both)"),
    ],
)
@pytest.mark.parametrize("command", ["validate", "score", "drift", "requeue"])
def test_a_bad_date_range_is_refused_before_any_day_runs(
    command: str, days: list[str], message: str, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*CARDS, command, *days]) == 2
    assert capsys.readouterr().err == f"mlops {command}: {message}\n"
    assert not (home / "lake").exists(), "nothing ran"


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
    ("argv", "json_", "verbose", "config", "model"),
    [
        (["models"], False, False, None, None),
        (["models", "--json"], True, False, None, None),
        (["--json", "models"], True, False, None, None),  # not reset by the subcommand's copy of --json
        (["models", "-v"], False, True, None, None),
        (["--verbose", "models", "--json"], True, True, None, None),
        (["--config", "a.yaml", "models"], False, False, "a.yaml", None),
        (["--config", "a.yaml", "models", "--config", "b.yaml"], False, False, "b.yaml", None),  # after wins
        (["--model", "a", "models"], False, False, None, "a"),
        (["--model", "a", "models", "--model", "b"], False, False, None, "b"),
        (["data", "generate", "--start", "2026-11-01", "-v", "--json", "--model", "m"], True, True, None, "m"),
        (["data", "--json", "corrupt", "--date", "2026-11-01", "--fault", "empty"], True, False, None, None),
    ],
)
def test_global_options_go_before_or_after_the_command(
    argv: list[str], json_: bool, verbose: bool, config: str | None, model: str | None
) -> None:
    args = build_parser().parse_args(argv)
    assert (args.json, args.verbose, args.config, args.model) == (json_, verbose, config, model)


def test_dataset_init_config_after_the_command_is_the_global_option() -> None:
    argv = ["dataset", "init", "--name", "t", "--date", "2026-03-02", "--config", "c.yaml", "--model-out", "o.yaml"]
    args = build_parser().parse_args(argv)
    assert (args.config, args.model_out, args.model) == ("c.yaml", "o.yaml", None)


def test_models_without_a_model_lists_every_model(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert model_names() == ["card_transactions", "customer_churn"]
    for argv in (["models", "--json"], ["--json", "models"]):
        assert main(argv) == 0
        listed = json.loads(capsys.readouterr().out)
        assert [(m["model"], m["champion"], m["challenger"], m["last_moves"]) for m in listed] == [
            ("card_transactions", None, None, []),
            ("customer_churn", None, None, []),
        ]
    assert main([*CHURN, "models", "--json"]) == 0  # one model: the detail of before
    result = json.loads(capsys.readouterr().out)
    assert result["model"] == "customer_churn" and result["champion"] is None and result["ledger"] == []


def test_a_command_about_a_model_names_it_when_there_are_several(
    home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["validate", "--date", "2026-11-01"]) == 2
    err = capsys.readouterr().err
    assert err == "mlops validate: 2 models (card_transactions, customer_churn): say which one with --model NAME\n"
    assert main(["score", "--model", "fraud", "--date", "2026-11-01"]) == 2
    err = capsys.readouterr().err
    assert "no model 'fraud'" in err and "(models: card_transactions, customer_churn)" in err
    assert main(["models", "--resync"]) == 2, "a repair is of one model"
    assert "say which one with --model NAME" in capsys.readouterr().err
    # Commands about no model run without one.
    assert main(["env"]) == 0 and "MLOPS_HOME=" in capsys.readouterr().out
    # The shell's default model ($MLOPS_MODEL), and --model over it.
    monkeypatch.setenv("MLOPS_MODEL", "customer_churn")
    assert main(["data", "generate", "--start", "2026-11-01", "--rows-per-day", "200"]) == 0
    assert main(["data", "generate", *CARDS, "--start", "2026-11-01", "--rows-per-day", "100"]) == 0
    assert sorted(path.name for path in (home / "lake").iterdir()) == ["card_transactions", "customer_churn"]


def test_each_model_lands_its_own_synthetic_table(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import pyarrow.parquet as pq

    assert main([*CHURN, "data", "generate", "--start", "2026-11-01", "--days", "3", "--rows-per-day", "300"]) == 0
    out = capsys.readouterr().out
    assert "customer renewal snapshots in " + str(home / "lake" / "customer_churn") in out
    lake = home / "lake" / "customer_churn"
    raw = pq.read_table(lake / "raw" / "dt=2026-11-03" / "part-00000.parquet")
    assert raw.column_names[:2] == ["customer_id", "renewal_at"] and raw.num_rows == 300
    assert sorted(p.name for p in (lake / "labels").iterdir()) == ["dt=2026-11-01"], "labels land 2 days after"
    labels = pq.read_table(lake / "labels" / "dt=2026-11-01" / "part-00000.parquet")
    assert set(labels.column("churn_status").to_pylist()) == {"churned", "stayed"}

    argv = ["data", "generate", *CHURN, "--start", "2026-11-04", "--drift-start", "2026-11-04", "--drift-kind"]
    assert main([*argv, "covariate", "--drift-features", "amount"]) == 2, "a card column is not a churn column"
    assert "unknown drift feature(s) ['amount']" in capsys.readouterr().err
    assert main([*argv, "covariate", "--drift-features", "monthly_charges", "--rows-per-day", "300"]) == 0


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
    assert main(["validate", "--date", "2026-11-01", *CARDS]) == 2
    assert not [r for r in caplog.records if r.exc_info]
    assert main(["validate", "--date", "2026-11-01", "--verbose", *CARDS]) == 2
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
