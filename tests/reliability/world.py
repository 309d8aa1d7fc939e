"""The world the faults hit: a platform state built once, a private copy per case, and what a user then sees.

The base state is built once per session through the platform's own steps (land, validate, train, assess,
register, promote, score): seven validated, labelled days, champion v1, a candidate run assessed against it
(not registered yet), day 7 scored by v1, and day 8 landed and checked but not yet published as validated.
Each case works on a copy of it (:func:`copy_home`; MLflow's SQLite store, the ledger, the lake, the DVC
registry and remote are all under ``MLOPS_HOME``), so no case sees another's faults.

The checks are what a user of the platform would look at: which days a reader trusts (by their marker), what
is inside, where ``champion`` points in MLflow and in the ledger, which model versions could be promoted.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.context import BaseContext
from pathlib import Path
from typing import Any

import pytest

from mlops.config import Settings, load_settings
from mlops.data.lake import STATS, SUCCESS, VALIDATED, Lake

START = dt.date(2026, 9, 1)
DAYS = 7
ROWS = 2_000
AS_OF = START + dt.timedelta(days=DAYS + 2)  # every validated day's labels have arrived (delay 3)
SCORED_DAY = START + dt.timedelta(days=DAYS - 1)  # scored once by the champion in the base state
NEW_DAY = START + dt.timedelta(days=DAYS)  # landed and checked, not yet published as validated
CANDIDATE_RUN = "manual__candidate"  # the Airflow run id the candidate was trained under
PG_BIN = Path("/usr/lib/postgresql/15/bin")


@dataclass
class Base:
    """The session's base state and what its steps returned."""

    home: Path
    verdict: dict[str, Any]  # NEW_DAY's passing verdict (validate_partition's output)
    snapshot: dict[str, Any]  # the training window at AS_OF
    assessment: dict[str, Any]  # the candidate's Assessment: passed, compared with champion v1
    old_scores: Any  # SCORED_DAY's output (a pyarrow Table) ...
    old_stats: dict[str, Any]  # ... and its _STATS.json


def settings_for(home: Path, **env: str) -> Settings:
    return load_settings(env={"MLOPS_HOME": str(home), **env})


def build_base(home: Path) -> Base:
    """Run the platform's own steps once (about a minute on 2 cores)."""
    from mlops.data.landing import land_days
    from mlops.scoring import score_day
    from mlops.training.pipeline import assess, run_all
    from mlops.training.snapshot import resolve_snapshot
    from mlops.training.train import train
    from mlops.validation import check_partition, validate_and_version

    settings = settings_for(home)
    land_days(settings, START, DAYS + 1, rows_per_day=ROWS, seed=31, labels_until=AS_OF)
    for offset in range(DAYS):
        validate_and_version(settings, START + dt.timedelta(days=offset))
    verdict = check_partition(settings, NEW_DAY).to_dict()
    outcome = run_all(settings, AS_OF, {"reason": "base champion"}, actor="fixture")
    assert outcome["version"] == "1" and not isinstance(outcome["promotion"], str), outcome
    snapshot = resolve_snapshot(settings, AS_OF)
    trigger = {"reason": "candidate", "airflow_dag_id": "continuous_training", "airflow_run_id": CANDIDATE_RUN}
    trained = train(settings, snapshot, trigger)
    assessment = assess(settings, snapshot, trained.run_id, trained.model_uri)
    assert assessment.passed and assessment.champion_version == "1", assessment.summary
    score_day(settings, SCORED_DAY, run_id="scheduled__base")
    lake = Lake.from_settings(settings)
    old = lake.read_partition(lake.partition("scores", SCORED_DAY))
    stats = lake.read_json(lake.marker("scores", SCORED_DAY, STATS))
    return Base(home, verdict, snapshot.to_dict(), assessment.to_dict(), old, stats)


def copy_home(base: Base, target: Path) -> Path:
    shutil.copytree(base.home, target, symlinks=True)
    return target


# -- what a user sees ----------------------------------------------------------------------------------------
def champion(settings: Settings) -> tuple[str | None, str | None]:
    """(MLflow's champion alias, the ledger head): scoring loads the first, promotions compare with the second."""
    from mlops.models import CHAMPION
    from mlops.registry import Registry

    registry = Registry(settings)
    try:
        return registry.alias_version(CHAMPION), registry.ledger().head(settings.model_name, CHAMPION)
    finally:
        registry.ledger().dispose()


def alias_moves(settings: Settings) -> list[tuple[str, str | None, str, str]]:
    """(alias, from, to, run) of every recorded move."""
    from mlops.ledger import Ledger

    ledger = Ledger(settings.ledger_uri)
    try:
        return [(m.alias, m.from_version, m.to_version, m.run) for m in ledger.moves(settings.model_name)]
    finally:
        ledger.dispose()


def versions_of_run(settings: Settings, run_id: str) -> dict[str, dict[str, str]]:
    """Registered versions made from MLflow run ``run_id``: version -> its tags."""
    from mlops.models import client

    found = client(settings).search_model_versions(f"name = '{settings.model_name}'")
    return {str(v.version): dict(v.tags) for v in found if v.run_id == run_id}


def promotable(settings: Settings) -> set[str]:
    """Versions registration finished marking passed (its ``gates.passed`` tag, written last, with the evidence).

    The tag is what the UI and people read; ``mlops promote`` itself trusts only the ledger's gate verdict.
    """
    from mlops.models import Tags, client

    found = client(settings).search_model_versions(f"name = '{settings.model_name}'")
    return {str(v.version) for v in found if v.tags.get(Tags.GATES_PASSED) == "true"}


def scores_seen(lake: Lake, day: dt.date) -> Any:
    """What a scores reader sees for ``day``: None (no ``_SUCCESS``) or the table and its ``_STATS.json``."""
    if day not in lake.days("scores", SUCCESS):
        return None
    partition = lake.partition("scores", day)
    return lake.read_partition(partition), lake.read_json(lake.marker("scores", day, STATS))


def side_folders(lake: Lake, area: str) -> list[str]:
    """Publisher side folders (staging, swap) beside the partitions of ``area``: leftovers of a killed run."""
    base = lake.area(area)
    if not lake.fs.isdir(base):
        return []
    return sorted(p.rsplit("/", 1)[-1] for p in lake.fs.ls(base, detail=False) if p.rsplit("/", 1)[-1].startswith("."))


def validated(lake: Lake, day: dt.date) -> dict[str, Any] | None:
    return lake.read_json(lake.marker("raw", day, VALIDATED)) if day in lake.days("raw", VALIDATED) else None


def pull_revision(settings: Settings, revision: str, day: dt.date, workdir: Path) -> list[str]:
    """Clone the data registry, check out ``revision`` and ``dvc pull`` the day from the remote: its file names."""
    from dvc.repo import Repo

    from mlops.versioning import registry_folder

    clone = workdir / "clone"
    subprocess.run(["git", "clone", "-q", str(settings.dvc_registry_path), str(clone)], check=True)
    subprocess.run(["git", "checkout", "-q", revision], cwd=clone, check=True)
    folder = registry_folder(settings.dataset.name, day)
    with Repo(str(clone)) as repo:
        repo.pull(targets=[str(clone / f"{folder}.dvc")])
    return sorted(p.name for p in (clone / folder).iterdir())


def snapshot_commits(settings: Settings, day: dt.date) -> list[str]:
    """Git commits of the data registry that changed ``day``'s .dvc file."""
    from mlops.versioning import registry_folder

    path = f"{registry_folder(settings.dataset.name, day)}.dvc"
    out = subprocess.run(["git", "log", "--format=%H", "--", path], cwd=settings.dvc_registry_path,
                         capture_output=True, text=True, check=True).stdout  # fmt: skip
    return out.split()


# -- killed processes ----------------------------------------------------------------------------------------
def run_killed(context: BaseContext, step: str, point: str, args: dict[str, Any], log: Path) -> None:
    """Run ``step`` in a child that SIGKILLs itself at ``point``; fail unless it died exactly so."""
    from tests.reliability import faults

    process = context.Process(target=faults.child, args=(step, point, args, str(log)), daemon=True)
    process.start()
    process.join(180)
    if process.is_alive():
        process.kill()
        process.join()
        pytest.fail(f"{step} did not reach {point!r} within 180 s:\n{tail(log)}")
    assert process.exitcode == -signal.SIGKILL, (
        f"{step} was not killed at {point!r} (exit code {process.exitcode}):\n{tail(log)}"
    )


def tail(path: Path, lines: int = 40) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else "(no log)"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- MLflow, a real server to take away ------------------------------------------------------------------------
class MlflowServer:
    """MLflow's tracking server on a copied home's SQLite store, in a child process that ``stop`` SIGKILLs."""

    def __init__(self, context: BaseContext, home: Path, workdir: Path) -> None:
        self.context, self.home, self.workdir = context, home, workdir
        self.port = free_port()
        self.uri = f"http://127.0.0.1:{self.port}"
        self.process: Any = None
        self.starts = 0

    def start(self) -> None:
        from tests.reliability import faults

        self.starts += 1
        log = self.workdir / f"mlflow-server-{self.starts}.log"
        backend = f"sqlite:///{self.home / 'mlflow' / 'mlflow.db'}"
        args = (backend, str(self.home / "mlflow" / "artifacts"), self.port, str(log))
        self.process = self.context.Process(target=faults.serve_mlflow, args=args, daemon=True)
        self.process.start()
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{self.uri}/health", timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            if not self.process.is_alive() or time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"the MLflow server did not come up:\n{tail(log)}")
            time.sleep(0.1)

    def stop(self) -> None:
        """SIGKILL: the server vanishes mid-request, as when its host dies."""
        if self.process is not None and self.process.is_alive():
            self.process.kill()
        if self.process is not None:
            self.process.join()


# -- the ledger database, a real Postgres to take away ----------------------------------------------------------
class Postgres:
    """A throwaway PostgreSQL 15 cluster on a free port that ``stop`` takes away (immediate shutdown)."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="mlops-reliability-pg-"))
        self.as_user: list[str] = []
        if os.geteuid() == 0:  # postgres refuses to run as root
            if shutil.which("runuser") is None:
                pytest.skip("running as root without runuser: cannot start PostgreSQL as a normal user")
            self.as_user = ["runuser", "-u", "postgres", "--"]
            shutil.chown(self.root, "postgres", "postgres")
        self.port = free_port()
        self.pg_ctl = [*self.as_user, str(PG_BIN / "pg_ctl"), "-D", str(self.root / "data"), "-l",
                       str(self.root / "log"), "-w"]  # fmt: skip
        subprocess.run([*self.as_user, str(PG_BIN / "initdb"), "-D", str(self.root / "data"), "-U", "postgres",
                        "-A", "trust", "--no-sync"], check=True, capture_output=True)  # fmt: skip

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        subprocess.run([*self.pg_ctl, "-o", options, "start"], check=True, capture_output=True)

    def stop(self) -> None:
        """Immediate shutdown: every connection is cut, as when the database host goes away."""
        subprocess.run([*self.pg_ctl, "-m", "immediate", "stop"], check=True, capture_output=True)

    def new_database(self) -> str:
        """A fresh database for one case; its SQLAlchemy URL."""
        import sqlalchemy as sa

        name = f"ledger_{os.urandom(4).hex()}"
        engine = sa.create_engine(f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/postgres",
                                  isolation_level="AUTOCOMMIT")  # fmt: skip
        try:
            with engine.connect() as conn:
                conn.exec_driver_sql(f"CREATE DATABASE {name}")
        finally:
            engine.dispose()
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/{name}"

    def remove(self) -> None:
        subprocess.run([*self.pg_ctl, "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(self.root, ignore_errors=True)


# -- lake writes away ------------------------------------------------------------------------------------------
@contextmanager
def lake_writes_fail(root: str, error: int, *, after: int = 0) -> Iterator[list[str]]:
    """Every write under ``root`` fails with ``error`` (EROFS: read-only, ENOSPC: disk full) after ``after`` succeed.

    Writes are opening a file for writing, renames and folder creation, the calls fsspec and the lake make
    (a tmpfs remounted read-only or filled up would need root and a mount; this is the same errno, in-process).
    Yields the list of refused paths.
    """
    import builtins
    import errno as errno_names

    refused: list[str] = []
    budget = [after]
    real_open, real_rename, real_replace, real_mkdir = builtins.open, os.rename, os.replace, os.mkdir
    prefix = os.path.realpath(root)

    def blocked(path: Any) -> bool:
        if not isinstance(path, str | os.PathLike) or not os.path.realpath(os.fspath(path)).startswith(prefix):
            return False
        if budget[0] > 0:
            budget[0] -= 1
            return False
        refused.append(os.fspath(path))
        return True

    def fail(path: Any) -> OSError:
        return OSError(error, f"{os.strerror(error)} ({errno_names.errorcode[error]}, injected)", os.fspath(path))

    def open_(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        if any(flag in mode for flag in "wax+") and blocked(file):
            raise fail(file)
        return real_open(file, mode, *args, **kwargs)

    def rename(src: Any, dst: Any, *args: Any, **kwargs: Any) -> None:
        if blocked(dst):
            raise fail(dst)
        real_rename(src, dst, *args, **kwargs)

    def replace(src: Any, dst: Any, *args: Any, **kwargs: Any) -> None:
        if blocked(dst):
            raise fail(dst)
        real_replace(src, dst, *args, **kwargs)

    def mkdir(path: Any, *args: Any, **kwargs: Any) -> None:
        if blocked(path):
            raise fail(path)
        real_mkdir(path, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(builtins, "open", open_)
        patch.setattr(os, "rename", rename)
        patch.setattr(os, "replace", replace)
        patch.setattr(os, "mkdir", mkdir)
        yield refused
