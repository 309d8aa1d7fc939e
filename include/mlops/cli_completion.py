"""``mlops completion bash|zsh``: a shell completion script generated from the argparse parser itself.

No dependency: the script is a bash function with one ``case`` per command path (``mlops``, ``mlops data``,
``mlops data generate``...) listing its subcommands, its options and the choices of an option's value; a new
command or option is completed as soon as it is declared in :mod:`mlops.cli_args`. zsh loads the same function
through its ``bashcompinit`` layer. An option's free-form value (a date, a path) falls back to file names.
"""

from __future__ import annotations

import argparse
import shlex
from collections.abc import Iterator
from dataclasses import dataclass, field

SHELLS = ("bash", "zsh")
FUNCTION = "_mlops_complete"


@dataclass
class _Node:
    """What can follow a command path: subcommands (or a positional's choices), options, and options' values."""

    words: list[str] = field(default_factory=list)
    options: list[str] = field(default_factory=list)
    takes_value: list[str] = field(default_factory=list)
    choices: dict[str, list[str]] = field(default_factory=dict)


def _nodes(parser: argparse.ArgumentParser, path: str) -> Iterator[tuple[str, _Node]]:
    node = _Node()
    children: list[tuple[str, argparse.ArgumentParser]] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            children = list(action.choices.items())
            node.words += [name for name, _ in children]
        elif not action.option_strings:
            node.words += [str(choice) for choice in action.choices or ()]
        else:
            node.options += action.option_strings
            if action.nargs != 0:
                node.takes_value += action.option_strings
                for option in action.option_strings:
                    node.choices[option] = [str(choice) for choice in action.choices or ()]
    yield path, node
    for name, child in children:
        yield from _nodes(child, f"{path} {name}")


def _words(words: list[str]) -> str:
    if any(not word or any(c.isspace() or c in "\"'$`\\" for c in word) for word in words):
        raise ValueError(f"cannot complete words with spaces or quotes: {words}")
    return " ".join(words)


def bash_script(parser: argparse.ArgumentParser) -> str:
    """The bash completion function for ``parser`` (its ``prog`` is the command completed)."""
    prog = parser.prog
    nodes = dict(_nodes(parser, prog))
    paths = [path for path in nodes if path != prog]
    values = [f"{path} {option}" for path, node in nodes.items() for option in node.takes_value]
    value_cases = [
        f"        {shlex.quote(f'{path} {option}')}) COMPREPLY=($(compgen -W {shlex.quote(_words(choices))} -- "
        f'"$cur")); return ;;'
        for path, node in nodes.items()
        for option, choices in node.choices.items()
        if choices
    ]
    node_cases = [
        f"        {shlex.quote(path)}) words={shlex.quote(_words(node.words))}; "
        f"options={shlex.quote(_words(node.options))} ;;"
        for path, node in nodes.items()
    ]
    return "\n".join([
        f"# {prog} completion for bash, generated from its parser: eval \"$({prog} completion bash)\"",
        f"{FUNCTION}() {{",
        '    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}',
        f"    local path={shlex.quote(prog)} word words options i skip=0",
        "    for ((i = 1; i < COMP_CWORD; i++)); do",
        "        word=${COMP_WORDS[i]}",
        "        if ((skip)); then skip=0; continue; fi",
        '        case "$path $word" in',
        f"            {'|'.join(shlex.quote(p) for p in paths)}) path=\"$path $word\" ;;",
        f"            {'|'.join(shlex.quote(v) for v in values)}) skip=1 ;;",
        "        esac",
        "    done",
        '    case "$path $prev" in',
        *value_cases,
        f"        {'|'.join(shlex.quote(v) for v in values)}) COMPREPLY=(); return ;;",
        "    esac",
        '    case "$path" in',
        *node_cases,
        "    esac",
        '    if [[ $cur == -* || -z $words ]]; then',
        '        COMPREPLY=($(compgen -W "$options" -- "$cur"))',
        "    else",
        '        COMPREPLY=($(compgen -W "$words" -- "$cur"))',
        "    fi",
        "}",
        f"complete -o default -F {FUNCTION} {prog}",
    ])  # fmt: skip


def script(parser: argparse.ArgumentParser, shell: str) -> str:
    """The completion script of ``shell`` (one of :data:`SHELLS`)."""
    if shell == "bash":
        return bash_script(parser)
    if shell == "zsh":
        return "\n".join([
            f"# {parser.prog} completion for zsh (bash's, by bashcompinit): eval \"$({parser.prog} completion zsh)\"",
            "(( $+functions[compdef] )) || { autoload -U +X compinit && compinit; }",
            "autoload -U +X bashcompinit && bashcompinit",
            bash_script(parser),
        ])  # fmt: skip
    raise ValueError(f"completion: unknown shell {shell!r}; expected one of {', '.join(SHELLS)}")
