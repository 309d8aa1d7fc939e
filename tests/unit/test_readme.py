"""The README a newcomer follows: every command it shows runs, every link it makes leads somewhere, and it stays short.

The commands are read from the README's own code blocks (nothing here copies them): each ``mlops ...`` is parsed
by the real ``mlops`` parser, each ``make <target>`` must be a target of the Makefile. Links of the README and
of ``docs/*.md`` (where the reference material lives) must point at files that exist, and at headings that
exist when they name one.
"""

from __future__ import annotations

import argparse
import collections
import re
import shlex
from pathlib import Path

import pytest

from mlops import cli_args

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
MAX_LINES = 300

FENCE = re.compile(r"^(?P<indent>[ \t]*)```(?P<lang>[\w+-]*)[^\n]*\n(?P<body>.*?)^(?P=indent)```[ \t]*$", re.M | re.S)
SHELL_LANGS = {"bash", "sh", "shell", "console"}
#: Separators between the commands of one shell line (and redirections, whose target is no command).
SEPARATORS = {";", ";;", "&", "&&", "|", "||", "(", ")", ">", ">>", "<", "<<", "2>", "&>"}
#: Words that may stand before a command on a shell line.
PREFIXES = {"do", "then", "else", "time", "!", "exec", "command"}
#: What a refused command line raises: the parser's own error (argparse's exit 2 becomes an AssertionError in parse).
PARSE_ERRORS = (AssertionError, getattr(cli_args, "UsageError", AssertionError))
LINK = re.compile(r"!?\[[^\]]*\]\((?P<target>[^)\s]+)(?:\s+\"[^\"]*\")?\)")


def fenced_blocks(text: str) -> list[tuple[str, str]]:
    """``(language, body)`` of each fenced code block, the body dedented by the fence's indentation."""
    blocks = []
    for match in FENCE.finditer(text):
        indent = len(match["indent"])
        body = "\n".join(line[indent:] for line in match["body"].splitlines())
        blocks.append((match["lang"].lower(), body))
    return blocks


def prose(text: str) -> str:
    """The text without its fenced code blocks."""
    return FENCE.sub("", text)


def shell_commands(script: str) -> list[list[str]]:
    """Every simple command of a shell snippet, as argv: lines joined at ``\\``, ``$(...)`` read as a command of
    its own, shell variables and ``<placeholders>`` replaced by sample values, split at ``;``, ``&&``, ``|``..."""
    commands: list[list[str]] = []
    for line in script.replace("\\\n", " ").splitlines():
        substitutions = re.findall(r"\$\(([^()]*)\)", line)
        line = re.sub(r"\$\(([^()]*)\)", "SUBSTITUTED", line)
        line = re.sub(r"\$\{?\w+\}?", "01", line)  # $d in 2026-03-$d, ${N}: a value of every type we parse
        line = re.sub(r"<[\w-]+>", "x", line)  # <run_id>, <model>
        for part in [*substitutions, line]:
            lexer = shlex.shlex(part, posix=True, punctuation_chars=True)
            lexer.whitespace_split = True
            current: list[str] = []
            for token in lexer:
                if token in SEPARATORS:
                    commands.append(current)
                    current = []
                else:
                    current.append(token)
            commands.append(current)
    simple = []
    for argv in commands:
        while argv and (argv[0] in PREFIXES or re.fullmatch(r"[A-Za-z_]\w*=.*", argv[0])):
            argv = argv[1:]
        if argv:
            simple.append(argv)
    return simple


def readme_shell_commands() -> list[list[str]]:
    """The commands of the README's shell blocks, and the lines of its plain blocks that start with a command (the
    others are output and diagrams)."""
    commands = []
    for lang, body in fenced_blocks(README.read_text()):
        if lang in SHELL_LANGS:
            commands += shell_commands(body)
        elif not lang:
            lines = [line for line in body.splitlines() if re.match(r"\s*(mlops|make)\s", line)]
            commands += shell_commands("\n".join(lines))
    return commands


def mlops_commands() -> list[list[str]]:
    return [argv for argv in readme_shell_commands() if Path(argv[0]).name == "mlops"]


def make_targets_shown() -> set[str]:
    """Targets of every ``make ...`` in the README's code blocks and inline code."""
    text = README.read_text()
    targets = set()
    for argv in readme_shell_commands():
        if argv[0] == "make":
            targets |= {word for word in argv[1:] if not word.startswith("-") and "=" not in word}
    for span in re.findall(r"`([^`\n]+)`", prose(text)):
        for argv in shell_commands(span):
            if argv[0] == "make":
                targets |= {word for word in argv[1:] if not word.startswith("-") and "=" not in word}
    return targets


def makefile_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text()
    return set(re.findall(r"^([A-Za-z][\w-]*)\s*:(?!=)", text, re.M))


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_]|\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip()).lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    return {slug(line.lstrip("#")) for line in prose(path.read_text()).splitlines() if re.match(r"#{1,6} ", line)}


def broken_links(path: Path) -> list[str]:
    broken = []
    for match in LINK.finditer(prose(path.read_text())):
        target = match["target"]
        if re.match(r"[a-z][\w+.-]*:", target):  # https:, mailto:
            continue
        file, _, anchor = target.partition("#")
        dest = (path.parent / file).resolve() if file else path
        if not dest.exists():
            broken.append(f"{target}: no such file")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            broken.append(f"{target}: no heading #{anchor} in {dest.name}")
    return broken


def parse(argv: list[str]) -> argparse.Namespace | None:
    """``argv`` through the real parser (handlers are never called); None for ``--help`` / ``--version``."""
    parser = cli_args.build_parser(collections.defaultdict(lambda: lambda *args: 0))
    try:
        return parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 0 after --help and --version, 2 on an error it prints
        assert exc.code == 0, f"mlops {shlex.join(argv)}: argparse exited with {exc.code}"
        return None


# -- the tests ---------------------------------------------------------------------------------------------------
def test_the_readme_is_short() -> None:
    lines = len(README.read_text().splitlines())
    assert lines < MAX_LINES, f"README.md has {lines} lines: move reference material to docs/"


def test_the_readme_shows_mlops_commands() -> None:
    """The extraction finds the commands (a parser that found none would pass every check below)."""
    commands = mlops_commands()
    assert len(commands) >= 5 and {"env", "train"} <= {argv[1] for argv in commands if len(argv) > 1}


@pytest.mark.parametrize("argv", mlops_commands(), ids=shlex.join)
def test_every_mlops_command_in_the_readme_parses(argv: list[str]) -> None:
    try:
        args = parse(argv[1:])
    except PARSE_ERRORS as exc:
        pytest.fail(f"`{shlex.join(argv)}` (README.md) does not parse: {exc}")
    if args is not None and hasattr(args, "from_") and hasattr(cli_args, "days_of"):
        try:
            cli_args.days_of(args)
        except ValueError as exc:
            pytest.fail(f"`{shlex.join(argv)}` (README.md): {exc}")


def test_every_make_target_in_the_readme_exists() -> None:
    shown = make_targets_shown()
    assert {"demo", "test"} <= shown
    assert shown <= makefile_targets(), f"not in the Makefile: {sorted(shown - makefile_targets())}"


@pytest.mark.parametrize("doc", [README, *sorted((ROOT / "docs").glob("*.md"))], ids=lambda p: p.name)
def test_every_relative_link_leads_to_a_file(doc: Path) -> None:
    assert broken_links(doc) == []


def test_the_cli_is_called_one_way() -> None:
    """``source .venv/bin/activate`` once, then ``mlops ...``: never ``.venv/bin/mlops`` in the README or docs."""
    for doc in [README, *sorted((ROOT / "docs").glob("*.md"))]:
        assert ".venv/bin/mlops" not in doc.read_text(), doc.name
    assert ["source", ".venv/bin/activate"] in readme_shell_commands()


def test_the_checks_catch_what_they_are_for(tmp_path: Path) -> None:
    """A wrong option, a missing target and a dead link are each found."""
    with pytest.raises(PARSE_ERRORS):
        parse(["validate", "--model", "m", "--no-such-option", "1"])
    assert shell_commands(
        'eval "$(mlops env)"; for d in 1 2; do MLOPS_MODEL=m mlops score --date 2026-03-$d; done'
    ) == [
        ["mlops", "env"],
        ["eval", "SUBSTITUTED"],
        ["for", "d", "in", "1", "2"],
        ["mlops", "score", "--date", "2026-03-01"],
        ["done"],
    ]
    page = tmp_path / "page.md"
    page.write_text("# Title\n[ok](#title) [gone](missing.md) [anchor](#nowhere)\n```\n[in code](nothing.md)\n```\n")
    assert broken_links(page) == ["missing.md: no such file", "#nowhere: no heading #nowhere in page.md"]


def test_the_walkthrough_block_shows_the_commands_the_walkthrough_runs() -> None:
    """The README's bring-your-own-data block is generated by `make walkthrough` from these very commands."""
    from tests.walkthrough import COMMANDS, END, START

    text = README.read_text()
    assert START in text and END in text, "the walk-through markers are in the README"
    block = text[text.index(START) : text.index(END)]
    (commands, *_) = [body for lang, body in fenced_blocks(block) if lang == "bash"]
    assert commands.strip().splitlines() == COMMANDS, "run `make walkthrough` after changing tests/walkthrough.py"
    shown = [line[2:] for lang, body in fenced_blocks(block) if lang == "text" for line in body.splitlines()
             if line.startswith("$ ")]  # fmt: skip
    assert shown == COMMANDS, "the output shown is the output of these commands"
