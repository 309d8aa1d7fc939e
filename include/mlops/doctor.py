"""``mlops doctor``: is this deployment ready to run? One check per piece the platform needs, each in bounded time.

Each check is a small function that returns what it found, raises :class:`Unhealthy` (what is wrong, what to
fix) or :class:`NotConfigured` (nothing to check: reported ``skip``, not a failure). :func:`run_checks` runs
each in a daemon thread for at most ``timeout`` seconds, and the network calls inside carry the same timeout:
a service that accepts a connection and never answers costs ``timeout``, never a hang.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any, Literal

from mlops.config import Settings, deployment_settings
from mlops.redact import redact_text

Status = Literal["ok", "FAIL", "skip"]
#: Where the Airflow API server is: ``alerts.airflow_url`` when set, else this env var (``make up`` sets it).
AIRFLOW_URL_ENV = "MLOPS_AIRFLOW_URL"
AIRFLOW_HEALTH = "/api/v2/monitor/health"
MLFLOW_HEALTH = "/health"


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    detail: str
    fix: str = ""

    def to_dict(self) -> dict[str, str]:
        return asdict(self)

    def line(self) -> str:
        return f"{self.status:<4}  {self.name:<22} {self.detail}" + (f"; fix: {self.fix}" if self.fix else "")


class Unhealthy(Exception):
    """A check found a problem: ``detail`` says what, ``fix`` what to do."""

    def __init__(self, detail: str, fix: str) -> None:
        super().__init__(detail)
        self.detail, self.fix = detail, fix


class NotConfigured(Exception):
    """Nothing to check (e.g. no Airflow URL given): reported as ``skip``."""


# -- helpers -----------------------------------------------------------------------------------------------------
def _writable_ancestor(path: Path) -> Path:
    """The nearest existing folder at or above ``path``, if this process may create ``path`` in it."""
    folder = path
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not os.access(folder, os.W_OK | os.X_OK):
        raise Unhealthy(f"{path} does not exist and {folder} is not writable", f"create {path} or fix {folder}'s owner")
    return folder


def _get(url: str, timeout: float, what: str, fix: str) -> bytes:
    """The body of a GET answered 200, or :class:`Unhealthy` naming the (masked) URL and why."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return bytes(response.read())
    except urllib.error.HTTPError as exc:
        raise Unhealthy(f"{what} at {redact_text(url)} answered HTTP {exc.code}", fix) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise Unhealthy(f"{what} at {redact_text(url)} is unreachable ({redact_text(str(reason))})", fix) from None


# -- the checks --------------------------------------------------------------------------------------------------
def check_config(models: dict[str, Settings], broken: dict[str, str]) -> str:
    if broken:
        files = "; ".join(f"{path}: {' '.join(why.split())}" for path, why in broken.items())
        raise Unhealthy(f"{len(broken)} model file(s) do not load ({files})",
                        "correct the file and key named (their DAGs are not generated until then)")  # fmt: skip
    return f"{len(models)} model file(s) load: {', '.join(models) or 'none'}"


def check_mlflow(settings: Settings, timeout: float) -> str:
    uri = settings.mlflow_tracking_uri
    fix = "start MLflow or set mlflow.tracking_uri (MLOPS__MLFLOW__TRACKING_URI) to where it runs"
    if uri.startswith(("http://", "https://")):
        _get(uri.rstrip("/") + MLFLOW_HEALTH, timeout, "MLflow", fix)
        return f"{redact_text(uri)} answers"
    if uri.startswith("sqlite:///"):
        path = Path(uri.removeprefix("sqlite:///"))
        if not path.exists():
            return f"{path} not created yet (the first training creates it in {_writable_ancestor(path.parent)})"
        try:
            with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=timeout) as db:
                (count,) = db.execute("SELECT count(*) FROM experiments").fetchone()
        except sqlite3.Error as exc:
            raise Unhealthy(f"{path} is not a readable MLflow database ({exc})", fix) from None
        return f"{path}: {count} experiment(s)"
    from mlops.models import client

    client(settings).search_experiments(max_results=1)
    return f"{redact_text(uri)} answers"


def check_lake(settings: Settings) -> str:
    from mlops.data.lake import SUCCESS, Lake

    lake = Lake.from_settings(settings)
    days = lake.days("raw")
    if not days:
        return f"{lake.uri}: readable, nothing landed yet"
    marker = lake.info(f"{lake.partition('raw', days[-1])}/{SUCCESS}")
    newest = f"newest {days[-1]}" + ("" if marker else " (still landing: no _SUCCESS)")
    return f"{lake.uri}: {len(days)} raw day(s), {newest}"


def check_dvc_remote(settings: Settings) -> str:
    url = settings.dvc_remote_url
    if "://" not in url:
        path = Path(url)
        if not path.exists():
            return f"{path} not created yet (the first snapshot creates it in {_writable_ancestor(path.parent)})"
        if not os.access(path, os.W_OK):
            raise Unhealthy(f"{path} is not writable", "fix its owner or set versioning.remote_url")
        return f"{path}: writable"
    import fsspec

    options = settings.s3_storage_options() if url.startswith("s3://") else {}
    fs, root = fsspec.core.url_to_fs(url, **options)
    fs.ls(root.split("/", 1)[0] if url.startswith("s3://") else root)  # the bucket: the prefix may not exist yet
    return f"{redact_text(url)}: reachable"


def check_registry(settings: Settings, timeout: float) -> str:
    remote = settings.versioning.registry_remote
    if remote is None:
        repo = settings.dvc_registry_path
        if not (repo / ".git").exists():
            return f"{repo} not created yet (the first validated day creates it in {_writable_ancestor(repo.parent)})"
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, timeout=timeout)
        if head.returncode != 0:
            raise Unhealthy(f"{repo} is not a readable git repository ({head.stderr.strip()})",
                            f"remove {repo} (it is rebuilt) or set versioning.registry_path")  # fmt: skip
        return f"{repo}: local, at {head.stdout.strip()[:12]}"
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0"}  # a missing credential fails, it never prompts
    result = subprocess.run(["git", "ls-remote", "--heads", remote, "main"], capture_output=True, text=True,
                            timeout=timeout, env=env)  # fmt: skip
    if result.returncode != 0:
        first = (result.stderr.strip().splitlines() or ["no answer"])[0]
        raise Unhealthy(f"{redact_text(remote)} cannot be read ({redact_text(first)})",
                        "check versioning.registry_remote and git's credentials (helper or SSH key)")  # fmt: skip
    head = result.stdout.split()[0][:12] if result.stdout.strip() else "nothing pushed yet"
    return f"{redact_text(remote)}: main at {head}"


def check_ledger(settings: Settings) -> str:
    from mlops.ledger import Ledger

    ledger = Ledger(settings.ledger_uri)
    try:
        ledger.head(settings.model_name, "champion")
    finally:
        ledger.dispose()
    return f"{redact_text(settings.ledger_uri)}: readable ({ledger.dialect})"


def airflow_url(settings: Settings) -> str | None:
    """``alerts.airflow_url`` when set (it wins, as for the alerts' links), else ``$MLOPS_AIRFLOW_URL``."""
    return getattr(getattr(settings, "alerts", None), "airflow_url", None) or os.environ.get(AIRFLOW_URL_ENV)


def check_airflow(settings: Settings, timeout: float) -> str:
    import json

    url = airflow_url(settings)
    if not url:
        raise NotConfigured(f"no Airflow URL: set alerts.airflow_url or {AIRFLOW_URL_ENV} (e.g. http://localhost:8080)")
    fix = f"start the Airflow API server or set alerts.airflow_url / {AIRFLOW_URL_ENV} to where it runs"
    body = json.loads(_get(url.rstrip("/") + AIRFLOW_HEALTH, timeout, "the Airflow API", fix) or b"{}")
    states = {part: (body.get(part) or {}).get("status") for part in ("metadatabase", "scheduler")}
    bad = [f"{part} {state or 'unknown'}" for part, state in states.items() if state != "healthy"]
    if bad:
        raise Unhealthy(f"the Airflow API at {redact_text(url)} answers, but: {', '.join(bad)}",
                        "start the scheduler / check the metadata database (airflow jobs check)")  # fmt: skip
    return f"{redact_text(url)}: metadatabase and scheduler healthy"


# -- running them ------------------------------------------------------------------------------------------------
#: What to do when a check raised something else than :class:`Unhealthy`, or did not answer in time.
FIXES = {
    "config": "correct the file and key named",
    "lake": "check storage.lake_root / dataset.lake_uri and its credentials (AWS_* env for S3)",
    "mlflow": "check mlflow.tracking_uri and that MLflow is up",
    "dvc remote": "check versioning.remote_url and its credentials (AWS_* env for S3)",
    "data registry": "check versioning.registry_remote / registry_path",
    "ledger": "check registry.ledger_uri: the database must be up and writable",
    "airflow": f"check {AIRFLOW_URL_ENV}",
}


def _outcome(name: str, result: dict[str, Any], timeout: float) -> Check:
    """A finished (or abandoned) check as ``ok``, ``FAIL`` with what to fix, or ``skip``."""
    fix = FIXES["lake" if name.startswith("lake ") else name]
    if not result:  # still running: abandoned (a daemon thread does not keep the command alive)
        return Check(name, "FAIL", f"no answer within {timeout:g} s", fix)
    error = result.get("error")
    if error is None:
        return Check(name, "ok", result["detail"])
    if isinstance(error, NotConfigured):
        return Check(name, "skip", str(error))
    if isinstance(error, Unhealthy):
        return Check(name, "FAIL", error.detail, error.fix)
    if isinstance(error, subprocess.TimeoutExpired):
        return Check(name, "FAIL", f"no answer within {timeout:g} s", fix)
    first = (str(error).strip().splitlines() or [type(error).__name__])[0]
    return Check(name, "FAIL", redact_text(f"{type(error).__name__}: {first}"), fix)


def bounded(checks: list[tuple[str, Callable[[], str]]], timeout: float) -> list[Check]:
    """Run every check at once, each in a daemon thread, all done or abandoned ``timeout`` seconds after the start."""
    results: dict[str, dict[str, Any]] = {name: {} for name, _ in checks}

    def run(name: str, check: Callable[[], str]) -> None:
        try:
            detail = check()
        except BaseException as exc:  # reported, never raised: one broken piece must not hide the others
            results[name]["error"] = exc
        else:
            results[name]["detail"] = detail

    threads = [threading.Thread(target=run, args=item, name=f"mlops-doctor-{item[0]}", daemon=True) for item in checks]
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    return [_outcome(name, dict(results[name]), timeout) for name, _ in checks]


def run_checks(model: str | None = None, timeout: float = 5.0) -> list[Check]:
    """Every check: config, MLflow, each model's lake (or ``model``'s), DVC remote, registry, ledger, Airflow."""
    from mlops.models_folder import load_models

    try:
        deployment = deployment_settings()
        models, broken = load_models()
    except Exception as exc:  # the deployment config itself: nothing else can be checked
        first = redact_text(" ".join(str(exc).split()))
        return [Check("config", "FAIL", first, "correct the deployment config (MLOPS_CONFIG) or MLOPS__* env")]
    checks: list[tuple[str, Callable[[], str]]] = [
        ("config", partial(check_config, models, broken)),
        ("mlflow", partial(check_mlflow, deployment, timeout)),
    ]
    checks += [(f"lake {name}", partial(check_lake, settings)) for name, settings in models.items()
               if model in (None, name)]  # fmt: skip
    checks += [
        ("dvc remote", partial(check_dvc_remote, deployment)),
        ("data registry", partial(check_registry, deployment, timeout)),
        ("ledger", partial(check_ledger, deployment)),
        ("airflow", partial(check_airflow, deployment, timeout)),
    ]
    found = bounded(checks, timeout)
    if model is not None and model not in models:
        found.insert(1, Check(f"lake {model}", "FAIL", f"no loadable model {model!r}", "see the config check"))
    return found
