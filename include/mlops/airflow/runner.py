"""DAG runs one after another in one process, with Airflow's own ``dag.test()`` (what ``airflow dags test`` runs).

``make demo`` runs some forty DAG runs; as separate ``airflow dags test`` processes, each paid Airflow's import,
the DAG parse and the start of the in-process execution API (10-15 s on 2 cores) before its first task. This
process pays them once: it migrates the metadata DB, parses the DAGs folder, then reads one JSON request a line
on stdin and answers one JSON line on the file descriptor ``--reply-fd``:

    {"dag_id": "m__batch_scoring", "day": "2026-11-01", "conf": {...}, "log": "run.log"} -> {"state": "success"}
    {"import_errors": true} -> {"import_errors": ["<file>: <error>", ...]}

A run's output (its task logs) goes to its ``log`` file; the process's own output to its stdout.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO


@contextmanager
def output_to(path: Path) -> Iterator[None]:
    """File descriptors 1 and 2 (Python's prints, Airflow's logs, C libraries) into ``path`` for a while."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with path.open("w") as log:
            os.dup2(log.fileno(), 1)
            os.dup2(log.fileno(), 2)
            try:
                yield
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os.dup2(saved[0], 1)
                os.dup2(saved[1], 2)
    finally:
        os.close(saved[0])
        os.close(saved[1])


def _run(dags: dict[str, Any], request: dict[str, Any]) -> dict[str, Any]:
    """One DAG run for the request's day, as ``airflow dags test DAG DAY [-c CONF]`` runs it."""
    day = dt.date.fromisoformat(request["day"])
    logical_date = dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)
    dag = dags[request["dag_id"]]
    # As under `airflow dags test` (mlops.airflow.defaults.scoring_deadline): Airflow 3.3.2's test run of a DAG with
    # a deadline fails after the run succeeded (apache/airflow#73428), and no scheduler is there to fire one.
    dag.deadline = None
    with output_to(Path(request["log"])):
        try:
            dag_run = dag.test(logical_date=logical_date, run_conf=request.get("conf"))
        except Exception:  # the run's failure is the answer; the traceback is in its log
            traceback.print_exc()
            return {"state": "failed"}
    return {"state": str(getattr(dag_run.state, "value", dag_run.state))}


def _import_errors() -> list[str]:
    """Import errors the DAG parse recorded in the metadata DB (what ``airflow dags list-import-errors`` lists)."""
    from airflow.models.errors import ParseImportError
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        return [f"{e.filename}: {e.stacktrace}" for e in session.scalars(select(ParseImportError))]


def serve(requests: TextIO, replies: TextIO) -> None:
    """Migrate the metadata DB, parse the DAGs once, then answer requests until stdin closes."""
    from airflow.configuration import conf
    from airflow.dag_processing.dagbag import DagBag
    from airflow.providers_manager import ProvidersManager
    from airflow.utils.db import upgradedb

    ProvidersManager().initialize_providers_configuration()  # as every `airflow` command does first
    upgradedb()  # `airflow db migrate`: creates the DB or upgrades it, a no-op when current
    dags = DagBag(dag_folder=conf.get("core", "dags_folder")).dags
    for line in requests:
        request = json.loads(line)
        reply = {"import_errors": _import_errors()} if request.get("import_errors") else _run(dags, request)
        replies.write(json.dumps(reply) + "\n")
        replies.flush()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mlops.airflow.runner", description=__doc__.splitlines()[0])
    parser.add_argument("--reply-fd", type=int, required=True, help="the file descriptor answers go to")
    args = parser.parse_args(argv)
    with os.fdopen(args.reply_fd, "w") as replies:
        serve(sys.stdin, replies)
    return 0


if __name__ == "__main__":
    sys.exit(main())
