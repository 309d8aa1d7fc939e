"""How an ``mlops`` command reports: its result, its failure (one line, or one JSON object with ``--json``) and
a ``--from``/``--to`` range of days run one by one."""

from __future__ import annotations

import argparse
import datetime as dt
import errno
import json
import logging
import sys
from collections.abc import Callable
from typing import Any

from mlops import cli_args
from mlops.config import ConfigError

log = logging.getLogger("mlops")


def emit(args: argparse.Namespace, payload: Any, text: str) -> None:
    print(json.dumps(payload, indent=2, default=str) if args.json else text)


class CommandFailed(Exception):
    """A step that failed (exit ``code``, 1 by default): ``report`` (e.g. a verdict) goes to stdout, the one-line
    message to stderr; with ``--json`` one object: ``payload`` with ``error``, ``exit_code`` and ``command``."""

    def __init__(self, message: str, payload: dict[str, Any] | None = None, report: str = "", code: int = 1) -> None:
        super().__init__(message)
        self.payload, self.report, self.code = payload or {}, report, code


def each_day(args: argparse.Namespace, run: Callable[[dt.date], tuple[dict[str, Any], str]]) -> int:
    """``--date D``: that day. ``--from``/``--to``: every day in order, each line saying what happened; a failed day
    does not stop the others, the exit code says one failed (the most severe code of the days)."""
    days = cli_args.days_of(args)
    if args.date is not None:
        emit(args, *run(days[0]))
        return 0
    results: list[dict[str, Any]] = []
    lines, codes = [], []
    for day in days:
        try:
            payload, text = run(day)
        except Exception as exc:  # the next day may work: report this one, go on
            if args.verbose:
                log.exception("mlops %s failed for %s", command_name(args), day)
            code, message = failure(exc)
            codes.append(code)
            extra = exc.payload if isinstance(exc, CommandFailed) else {}
            results.append({"date": day.isoformat(), "ok": False, **extra, "exit_code": code, "error": message})
            lines.append(f"dt={day}: FAILED: {message}")
        else:
            results.append({"date": day.isoformat(), "ok": True, **payload})
            lines.append(text)
    failed = [r["date"] for r in results if not r["ok"]]
    summary = {"days": results, "failed": failed}
    if failed:
        message = f"{len(failed)} of {len(days)} days failed: {', '.join(failed)}"
        raise CommandFailed(message, summary, "\n".join(lines), code=max(codes))
    emit(args, summary, "\n".join([*lines, f"all {len(days)} days ok"]))
    return 0


def command_name(args: argparse.Namespace) -> str:
    """``score``, ``data generate``: the command as typed, for messages and ``--json``'s ``command``."""
    return " ".join(filter(None, [args.command, getattr(args, f"{args.command}_command", None)]))


def fail(as_json: bool, command: str, code: int, message: str, failed: CommandFailed | None = None) -> int:
    """Report a failure: the report (if any) on stdout, one line on stderr; with ``--json`` one object on stdout."""
    if as_json:
        payload = failed.payload if failed else {}
        body = {**payload, "error": message, "exit_code": code, "command": command or None}
        print(json.dumps(body, indent=2, default=str))
    else:
        if failed and failed.report:
            print(failed.report)
        print(f"mlops {command}: {message}" if command else f"mlops: {message}", file=sys.stderr)
    return code


#: OS errors a user can act on, with what to do.
OS_ADVICE = {
    errno.ENOSPC: "the disk is full: free space (or point MLOPS_HOME / the lake elsewhere), then retry",
    errno.EROFS: "the file system is read-only: mount it read-write (or point MLOPS_HOME / the lake elsewhere)",
    errno.EACCES: "permission denied: run as the owner of MLOPS_HOME and the lake, or fix their permissions",
}


def failure(exc: BaseException) -> tuple[int, str]:
    """Exit code and one masked line for a failure (the codes: :mod:`mlops.cli`'s docstring)."""
    from mlops.errors import InfrastructureError, InputError
    from mlops.redact import redact_text

    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    if isinstance(exc, CommandFailed):
        code, message = exc.code, first
    elif isinstance(exc, ConfigError):
        code, message = 2, str(exc).replace("\n", " ")
    elif isinstance(exc, InputError):
        code, message = 1, first
    elif isinstance(exc, InfrastructureError):
        code, message = 3, first
    elif isinstance(exc, OSError) and exc.errno in OS_ADVICE:
        code, message = 3, f"{OS_ADVICE[exc.errno]} ({first})"
    elif type(exc).__module__.startswith("mlflow"):
        code, message = 3, f"MLflow failed: {first}. Check that MLflow is reachable (mlflow.tracking_uri), then retry"
    elif type(exc).__module__.startswith("dvc"):
        code, message = 3, f"DVC failed: {first}. Check the DVC remote (versioning.remote_url) is reachable, then retry"
    elif isinstance(exc, ValueError | FileNotFoundError):
        code, message = 2, first
    elif isinstance(exc, OSError):
        code, message = 3, f"{first}: check the disk, network or service named, then retry"
    else:
        code, message = 1, f"unexpected {type(exc).__name__}: {first} (rerun with -v for the traceback)"
    return code, redact_text(message)
