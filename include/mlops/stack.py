"""``make up`` / ``make down``: the embedded stack as background processes, without Docker.

``up`` starts the MLflow server and Airflow's api-server, scheduler, dag-processor and triggerer on the
embedded defaults (:func:`mlops.runtime.stack_env`), each in a process group of its own, with a PID file
and a log under ``$MLOPS_HOME/run/``; it waits until the UIs answer and prints the URLs and the login.
``down`` stops exactly the process groups whose PID files ``up`` wrote (a PID file whose process is gone
or is now another program is only removed), so nothing else on the machine is touched.

    python -m mlops.stack up [--api-port 8080] [--mlflow-port 5000]
    python -m mlops.stack down
    python -m mlops.stack status
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from mlops.config import Settings, load_settings
from mlops.runtime import ensure_airflow_db, stack_env

#: The order of ``up``; ``down`` stops in reverse.
COMPONENTS = ("mlflow", "api-server", "scheduler", "dag-processor", "triggerer")
ADMIN = "admin"
STOP_SECONDS = 30.0


@dataclass(frozen=True)
class Component:
    """One long-running process of the stack."""

    name: str
    argv: list[str]
    #: A URL that answers 200 once the component serves (None: running is enough).
    health: str | None = None


def run_dir(settings: Settings) -> Path:
    return settings.home / "run"


def _binary(name: str) -> str:
    return str(Path(sys.executable).with_name(name))


def components(settings: Settings, api_port: int, mlflow_port: int) -> list[Component]:
    """The five processes, bound to localhost (the stack is for this machine)."""
    store = [
        "--backend-store-uri",
        settings.mlflow_tracking_uri,
        "--default-artifact-root",
        settings.mlflow_artifacts_uri,
    ]
    listen = ["--host", "127.0.0.1", "--port", str(mlflow_port), "--workers", "1"]
    return [
        Component("mlflow", [_binary("mlflow"), "server", *listen, *store], f"http://127.0.0.1:{mlflow_port}/health"),
        Component(
            "api-server",
            [_binary("airflow"), "api-server", "--host", "127.0.0.1", "--port", str(api_port), "--workers", "1"],
            f"http://127.0.0.1:{api_port}/api/v2/monitor/health",
        ),
        Component("scheduler", [_binary("airflow"), "scheduler"]),
        Component("dag-processor", [_binary("airflow"), "dag-processor"]),
        Component("triggerer", [_binary("airflow"), "triggerer"]),
    ]


# -- PID files ---------------------------------------------------------------------------------------------
def _pid_file(settings: Settings, name: str) -> Path:
    return run_dir(settings) / f"{name}.pid"


def _start_ticks(pid: int) -> int | None:
    """When the process started (clock ticks since boot), to tell it from a later process with the same PID."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[19])


def running_pid(settings: Settings, name: str) -> int | None:
    """The PID ``up`` recorded for ``name`` if that very process still runs, else None."""
    path = _pid_file(settings, name)
    if not path.is_file():
        return None
    record = json.loads(path.read_text())
    pid = int(record["pid"])
    started = _start_ticks(pid)
    return pid if started is not None and started == record.get("started") else None


def _group_alive(pgid: int) -> bool:
    # Reap the group's processes that are our own children (when `up` ran in this process, as in the tests):
    # a zombie still counts as a member of its group.
    try:
        while os.waitpid(-pgid, os.WNOHANG)[0]:
            pass
    except ChildProcessError:
        pass
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# -- up / down ---------------------------------------------------------------------------------------------
def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _wait_healthy(component: Component, process: subprocess.Popen, log: Path, timeout: float) -> None:
    assert component.health is not None
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(component.health, timeout=5) as response:
                if response.status == 200:
                    return
        except (OSError, urllib.error.URLError):
            pass
        if process.poll() is not None:
            raise RuntimeError(f"{component.name} exited with {process.returncode}; see {log}:\n{_tail(log)}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{component.name} did not answer {component.health} in {timeout:.0f} s; see {log}")
        time.sleep(1)


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def admin_password(env: Mapping[str, str]) -> str | None:
    """The admin password the simple auth manager generated (None until the api-server wrote it)."""
    path = Path(env["AIRFLOW_HOME"]) / "simple_auth_manager_passwords.json.generated"
    if not path.is_file():
        return None
    return json.loads(path.read_text()).get(ADMIN)


def up(settings: Settings, env: Mapping[str, str], api_port: int = 8080, mlflow_port: int = 5000,
       timeout: float = 180.0) -> dict[str, str]:  # fmt: skip
    """Start every component not already running; return the URLs and the login."""
    folder = run_dir(settings)
    folder.mkdir(parents=True, exist_ok=True)
    ensure_airflow_db(env)
    started: list[str] = []
    try:
        for component in components(settings, api_port, mlflow_port):
            if running_pid(settings, component.name) is not None:
                print(f"    {component.name}: already running")
                continue
            port = {"mlflow": mlflow_port, "api-server": api_port}.get(component.name)
            if port is not None and not _port_free(port):
                raise RuntimeError(f"port {port} for {component.name} is taken by another program")
            log = folder / f"{component.name}.log"
            with open(log, "ab") as handle:
                process = subprocess.Popen(
                    component.argv,
                    env=dict(env),
                    stdout=handle,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,  # its own process group: `down` stops it and its children
                    cwd=settings.home,
                )
            record = {"pid": process.pid, "started": _start_ticks(process.pid), "argv": component.argv}
            _pid_file(settings, component.name).write_text(json.dumps(record))
            started.append(component.name)
            print(f"    {component.name}: pid {process.pid}, log {log}")
            if component.health:
                _wait_healthy(component, process, log, timeout)
    except BaseException:
        stop(settings, *reversed(started))
        raise
    return {
        "airflow": f"http://localhost:{api_port}",
        "mlops": f"http://localhost:{api_port}/plugin/mlops",
        "mlflow": f"http://localhost:{mlflow_port}",
        "user": ADMIN,
        "password": admin_password(env) or "(see simple_auth_manager_passwords.json.generated)",
    }


def stop(settings: Settings, *names: str) -> list[str]:
    """Stop components' process groups: TERM to all at once, KILL what is left after :data:`STOP_SECONDS`.

    Returns the names that were running. A PID file whose process is gone (or is now another process) is
    only removed.
    """
    running: dict[str, int] = {}
    for name in names:
        pid = running_pid(settings, name)
        if pid is None:
            _pid_file(settings, name).unlink(missing_ok=True)
            continue
        os.killpg(pid, signal.SIGTERM)
        running[name] = pid
    deadline = time.monotonic() + STOP_SECONDS
    while any(_group_alive(pid) for pid in running.values()) and time.monotonic() < deadline:
        time.sleep(0.3)
    for name, pid in running.items():
        if _group_alive(pid):
            os.killpg(pid, signal.SIGKILL)
        _pid_file(settings, name).unlink(missing_ok=True)
    return list(running)


def down(settings: Settings) -> list[str]:
    """Stop every component ``up`` started; returns the names that were running."""
    return stop(settings, *reversed(COMPONENTS))


def status(settings: Settings) -> dict[str, int | None]:
    return {name: running_pid(settings, name) for name in COMPONENTS}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mlops.stack", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["up", "down", "status"])
    parser.add_argument("--api-port", type=int, default=int(os.environ.get("MLOPS_AIRFLOW_PORT", "8080")))
    parser.add_argument("--mlflow-port", type=int, default=int(os.environ.get("MLOPS_MLFLOW_PORT", "5000")))
    args = parser.parse_args(argv)
    settings = load_settings()
    if args.command == "down":
        stopped = down(settings)
        print(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running")
        return 0
    if args.command == "status":
        for name, pid in status(settings).items():
            print(f"{name:<14} {'pid ' + str(pid) if pid else 'stopped'}")
        return 0
    env = stack_env(settings, args.api_port, args.mlflow_port)
    print(f"==> starting the stack (MLOPS_HOME={settings.home}; logs and PID files in {run_dir(settings)})")
    try:
        urls = up(settings, env, args.api_port, args.mlflow_port)
    except RuntimeError as exc:
        print(f"make up FAILED: {exc}", file=sys.stderr)
        return 1
    print(f"""
Airflow UI   {urls["airflow"]}   (log in as {urls["user"]} / {urls["password"]})
MLOps page   {urls["mlops"]}   (also "MLOps" in the Airflow navigation)
MLflow UI    {urls["mlflow"]}

The DAGs start paused: unpause them in the UI (toggle on the Dags page) or with
    eval "$(.venv/bin/mlops env)" && .venv/bin/airflow dags unpause data_validation
Stop everything with `make down`.""")
    return 0


if __name__ == "__main__":
    sys.exit(main())
