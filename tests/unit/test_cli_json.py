"""`mlops --json`: every command, on success and on every failure, prints one JSON object a script can parse."""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import tomllib
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

import pytest

from mlops import cli_args
from mlops.cli import build_parser, main

CARDS = ["--model", "card_transactions"]
DAY = ["--date", "2026-11-01"]


def _leaves(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Every command that runs something (``env``, ``data generate``, ...), read from the parser itself."""
    if parser.get_default("func") is not None:
        yield path
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _leaves(sub, (*path, name))


LEAVES = list(_leaves(build_parser()))


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


#: How each command fails in an empty store (argv after the command, env). A new command without an entry fails
#: `test_every_command_has_a_failure_case`: add how it fails here.
FAILING: dict[tuple[str, ...], tuple[list[str], dict[str, str]]] = {
    ("env",): ([], {"MLOPS__VALIDATION__OFFENDING_IDS_SAMPLE": "-1"}),  # a bad config value
    ("data", "generate"): ([*CARDS, "--start", "2026-11-01", "--days", "0"], {}),
    ("data", "corrupt"): ([*CARDS, *DAY, "--fault", "duplicate_ids"], {}),  # nothing landed
    ("data", "public"): (["--table", "affairs", "--start", "2026-11-01", "--days", "1"], {}),  # no later day
    ("contract", "infer"): ([*CARDS, *DAY], {}),
    ("dataset", "init"): (
        ["--name", "fresh", *DAY, "--model-out", "{tmp}/m.yaml", "--contract-out", "{tmp}/c.yaml"],
        {},
    ),  # fmt: skip
    ("validate",): ([*CARDS, *DAY], {}),
    ("train",): ([*CARDS, "--as-of", "2026-11-01"], {}),  # no training data
    ("promote",): ([*CARDS, "--version", "1"], {}),  # an unknown version
    ("rollback",): ([*CARDS, "--reason", "test"], {}),  # no champion
    ("models",): (["--model", "no_such_model"], {}),  # an unknown model
    ("requeue",): ([*CARDS, "--from", "2026-11-01", "--to", "2026-11-02"], {}),  # nothing quarantined
    ("score",): ([*CARDS, *DAY], {}),  # no champion
    ("drift",): ([*CARDS, *DAY], {}),
    ("reproduce",): ([*CARDS, "--version", "1"], {}),
    ("simulate",): (["--scenario", "{tmp}/missing.yaml", "--home", "{tmp}/sim"], {}),
    ("doctor",): (["--timeout", "2"], {"MLOPS__MLFLOW__TRACKING_URI": "http://127.0.0.1:{closed}"}),
    ("completion",): (["fish"], {}),  # a shell it does not know: a usage error
}


@pytest.fixture(scope="module")
def empty_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One empty MLOPS_HOME for every failure case (MLflow's database is made once)."""
    home = tmp_path_factory.mktemp("empty_store")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLOPS_HOME", str(home))
        for key in ("MLOPS_CONFIG", "MLOPS_MODEL", "MLOPS_MODELS_DIR", "MLOPS_AIRFLOW_URL", "MLOPS__DATASET__LAKE_URI"):
            patch.delenv(key, raising=False)
        yield home


def _failure(capsys: pytest.CaptureFixture[str], argv: list[str]) -> dict:
    code = main(argv)
    out = capsys.readouterr().out
    result = json.loads(out)  # the whole of stdout is one JSON object
    assert isinstance(result, dict), out
    assert code != 0 and result["exit_code"] == code, out
    assert result["error"].strip() and "\n" not in result["error"], out
    return result


def test_every_command_has_a_failure_case() -> None:
    assert sorted(LEAVES) == sorted(FAILING), "each command needs its failure case in FAILING"


@pytest.mark.parametrize("path", LEAVES, ids=" ".join)
def test_every_command_fails_as_one_json_object(
    path: tuple[str, ...], empty_store: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    argv, env = FAILING[path]
    fill = {"tmp": str(empty_store), "closed": str(_closed_port())}
    for key, value in env.items():
        monkeypatch.setenv(key, value.format(**fill))
    result = _failure(capsys, ["--json", *path, *(arg.format(**fill) for arg in argv)])
    assert result["command"] == " ".join(path)


@pytest.mark.parametrize("path", LEAVES, ids=" ".join)
def test_a_usage_error_is_json_too(path: tuple[str, ...], capsys: pytest.CaptureFixture[str]) -> None:
    result = _failure(capsys, [*path, "--no-such-option", "--json"])
    assert result["exit_code"] == 2 and result["command"] == " ".join(path)
    assert "--no-such-option" in result["error"] or "required" in result["error"]


def test_no_champion_and_an_invalid_date_are_json_on_stdout(
    empty_store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The bug: `mlops --json score` with no champion printed nothing on stdout."""
    result = _failure(capsys, ["--json", "score", *CARDS, *DAY])
    assert result["exit_code"] == 1 and "no 'champion' version" in result["error"]
    result = _failure(capsys, ["--json", "score", *CARDS, "--date", "yesterday"])
    assert result == {
        "error": "argument --date: expected a date like 2026-11-01, got 'yesterday' (see mlops score --help)",
        "exit_code": 2,
        "command": "score",
    }
    with pytest.raises(SystemExit) as usage:  # without --json: argparse's usage and exit 2, as before
        main(["score", *CARDS, "--date", "yesterday"])
    assert usage.value.code == 2 and "expected a date like" in capsys.readouterr().err


def test_a_secret_in_a_failure_is_masked(
    empty_store: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MLOPS__REGISTRY__LEDGER_URI", f"postgresql://mlops:hunter2-pw@127.0.0.1:{_closed_port()}/l")
    result = _failure(capsys, ["--json", *CARDS, "rollback", "--reason", "test"])
    assert "hunter2-pw" not in json.dumps(result) and "postgresql://mlops:***@127.0.0.1" in result["error"]


def test_version_is_the_installed_one(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out == f"mlops {metadata.version('mlops')}\n"

    def not_installed(name: str) -> str:
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(metadata, "version", not_installed)  # a source checkout without `pip install -e .`
    pyproject = tomllib.loads((Path(cli_args.__file__).parents[2] / "pyproject.toml").read_text())
    assert cli_args.package_version() == f"{pyproject['project']['version']} (source checkout, not installed)"


# -- shell completion -----------------------------------------------------------------------------------------------
def _complete(script: str, lines: list[str], tmp_path: Path) -> list[str]:
    """What bash offers at the end of each command line, by the generated completion function."""
    (tmp_path / "mlops.bash").write_text(script)
    calls = "".join(
        f'COMP_WORDS=({line}); COMP_CWORD=$((${{#COMP_WORDS[@]}} - 1)); _mlops_complete; echo "${{COMPREPLY[*]}}"\n'
        for line in lines
    )
    result = subprocess.run(["bash", "-c", f"source {tmp_path / 'mlops.bash'}\n{calls}"], capture_output=True,
                            text=True, check=True)  # fmt: skip
    assert result.stderr == ""
    return result.stdout.splitlines()


def test_bash_completion_offers_commands_options_and_choices(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["completion", "bash"]) == 0
    script = capsys.readouterr().out
    lines = ["mlops da", "mlops data gen", "mlops data corrupt --fault dup", "mlops --model data va",
             "mlops score --fr", "mlops completion ''", "mlops doc"]  # fmt: skip
    assert _complete(script, lines, tmp_path) == [
        "data dataset",
        "generate",
        "duplicate_ids",
        "validate",  # "data" was --model's value, not the data command
        "--from",
        "bash zsh",
        "doctor",
    ]
    # Every command is offered from its prefix: a new command is completed once it is declared.
    lines = [" ".join(["mlops", *path[:-1], path[-1][:-1]]) for path in LEAVES]
    offered = _complete(script, lines, tmp_path)
    assert [path[-1] in words.split() for path, words in zip(LEAVES, offered, strict=True)] == [True] * len(LEAVES)


def test_zsh_completion_loads_the_bash_function(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["completion", "zsh"]) == 0
    script = capsys.readouterr().out
    assert "bashcompinit" in script and "complete -o default -F _mlops_complete mlops" in script
