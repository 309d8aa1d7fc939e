"""Nightly chain benchmarks: what one model costs a worker per day, and a 1M-row day against its floor.

**Per model-day** (``test_worker_time_per_model_day``): one small day (20k rows) of one model through
validate -> score -> drift **as a LocalExecutor worker runs it**: ``airflow dags test --use-executor`` of
``<model>__data_validation``, ``__batch_scoring`` and ``__drift_monitoring`` against an execution-API server of
the benchmark's own (``airflow api-server --apps execution``), so every task instance is what production runs: a
supervisor in the executor's worker process forks a task process, which parses the model DAG file, imports what
the task needs, runs it and reports through the execution API. Then the two nightly sweeps of the day
(``__batch_scoring`` and ``__drift_monitoring`` on their schedule, finding the day done: their first tasks run
and end skipped), which every model pays every night too. ``dags test`` itself stands in for the scheduler and
is not counted; it parses the DAG file before its executor forks the workers, so the modules that file brings
in are dropped from it first (``DAGS_TEST``), as a production worker never imported them. What Airflow's own
providers load on a first parse stays (a scheduler-forked worker may have it too); ``TASK_PARSE`` measures what a
task process's parse costs without it, a row of its own.

Worker time is **CPU seconds** of the executor's worker processes (supervisors) and everything they fork (task
processes and their subprocesses): the exact rusage of the ``dags test`` process tree minus that process's own
CPU, sampled every 50 ms. This machine is shared, so wall times are noisy; a worker's capacity is its cores,
and CPU seconds are what one model-day takes from them. Slot seconds (each task's duration as its supervisor
reports it, the wait for the task process's exit included) are reported beside them. The work is our three
steps (``validate_and_version``, ``score_day``, ``check_day``) on the same day in this warm process; the rest is
fixed overhead. Its floor is what a task that does nothing costs (``resolve_day``, ``days_of``, ``should_retrain``:
fork, DAG-file parse, task runner, execution-API calls) times the task processes, plus the supervisors; the
remainder is per-task imports of heavy libraries and per-process setup (MLflow client, model load). The chain
runs with 1 model file in the models folder and with 20 (each task process parses the whole DAG file). Target:
at most 30 s of worker CPU per model and day, with 20 model files too.

**1M-row day** (``test_nightly_chain_as_airflow_runs_it``): three ways over the same validated 1M-row day,
interleaved ``REPEATS`` times (medians compared):

* **Airflow**: ``airflow dags test`` of the three DAGs for the day, one after the other (each a fresh process:
  CLI start, DAG parse, every task in-process with its overhead, XComs, the Evidently report), on a SQLite
  metadata DB of the benchmark's own; scoring and drift get ``params.date`` so they redo the day;
* **our steps in one process**: ``validate_and_version``, ``score_day``, ``check_day`` (report included);
* **the raw steps** (the floor): pyarrow read + the same contract checks (as the validation benchmark),
  ``build_matrix`` + ``inplace_predict`` of the champion, and the numpy PSI of every feature and of the score.

The champion is real: 10 days of 20k rows are landed, validated and trained on with ``run_all`` first, then
scored and drift-checked (the steady state: no backlog waits). The benchmark's copy of the data contract widens
the row-count band (the 1M-row day is 50x the median of those days); every other rule is the same.
"""

from __future__ import annotations

import datetime as dt
import gc
import json
import os
import re
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import psutil
import pytest
import yaml
from bench_results import BenchResults
from test_parse_bench import models_folder
from test_validation_bench import _read, pyarrow_check

from mlops import aliases, models
from mlops.config import PROJECT_ROOT, Settings, load_settings
from mlops.data.contract import Contract
from mlops.data.lake import Lake
from mlops.data.landing import land_days
from mlops.runtime import airflow, embedded_env, ensure_airflow_db, stack_env

pytestmark = pytest.mark.bench

MODEL = "card_transactions"
ROWS = 1_000_000
SMALL_ROWS = 20_000
HISTORY_DAYS, HISTORY_ROWS = 10, 20_000
SEED = 11
START = dt.date(2026, 5, 1)
SMALL_DAY = START + dt.timedelta(days=HISTORY_DAYS)  # the per-model-day chain
DAY = SMALL_DAY + dt.timedelta(days=1)  # the 1M-row day
REPEATS = int(os.environ.get("MLOPS_BENCH_CHAIN_REPEATS", "2"))
MODEL_DAY_REPEATS = int(os.environ.get("MLOPS_BENCH_MODEL_DAY_REPEATS", "1"))
CHAIN = ("data_validation", "batch_scoring", "drift_monitoring")
#: Which DAG kinds redo a named day when given ``params.date``; data_validation always re-validates its day.
FORCED = {"batch_scoring", "drift_monitoring"}
#: The nightly sweeps (schedule runs) that find the day done: every model pays for them every night.
SWEEPS = ("batch_scoring", "drift_monitoring")
#: Tasks that do no work of ours: what a task process costs by itself.
EMPTY_TASKS = {"resolve_day", "days_of", "should_retrain"}
TARGET_WORKER_CPU = 30.0
#: A task process's title (``setproctitle`` in Airflow's task runner): ``airflow worker -- <task instance id>``.
TASK_TITLE = re.compile(r"airflow worker -- ([0-9a-f]{8}-[0-9a-f-]{27})\b")
MANY_MODEL_FILES = 20
API_START_SECONDS = 300
RUN_TIMEOUT_SECONDS = 1800
IDLE_WORKER_GRACE_SECONDS = 30


def dag_id(kind: str) -> str:
    return f"{MODEL}__{kind}"


@pytest.fixture(autouse=True)
def _quiet_gx(monkeypatch: pytest.MonkeyPatch) -> None:
    """No analytics calls from GX in this process (the Airflow runs get the same from the embedded env)."""
    monkeypatch.setenv("GX_ANALYTICS_ENABLED", "false")


def _clean_env(**overrides: str) -> dict[str, str]:
    """This process's env without any Airflow/MLOps settings a developer's shell may carry."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "MLOPS", "MLFLOW"))}
    return {**env, **overrides}


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from mlops.monitoring import check_days
    from mlops.scoring import score_day
    from mlops.training.pipeline import run_all
    from mlops.validation import validate_and_version

    root = tmp_path_factory.mktemp("nightly-chain")
    folders = {count: models_folder(root, count) for count in (1, MANY_MODEL_FILES)}
    base = _clean_env(AIRFLOW_HOME=str(root / "airflow"), MLOPS_HOME=str(root / "mlops"),
                      MLOPS_MODELS_DIR=str(folders[1]))  # fmt: skip
    contract = yaml.safe_load(load_settings(model=MODEL, env=base).contract_path.read_text())
    contract["row_count"]["max_ratio"] = 100.0
    (root / "contract.yaml").write_text(yaml.safe_dump(contract, sort_keys=False))
    base["MLOPS__DATASET__CONTRACT"] = str(root / "contract.yaml")
    settings = load_settings(model=MODEL, env=base)
    env = embedded_env(settings, base=base)
    started = time.perf_counter()
    ensure_airflow_db(env)
    land_days(settings, START, HISTORY_DAYS, HISTORY_ROWS, SEED)
    history = [START + dt.timedelta(days=offset) for offset in range(HISTORY_DAYS)]
    for day in history:
        validate_and_version(settings, day)
    trained = run_all(settings, history[-1], {"reason": "nightly chain benchmark"}, actor="bench")
    assert trained["passed"], trained["summary"]
    for day in history:  # the steady state: every validated day scored and checked, no backlog
        score_day(settings, day, run_id="bench-setup")
    check_days(settings, history)
    land_days(settings, SMALL_DAY, 1, SMALL_ROWS, SEED, labels_until=history[-1])
    land_days(settings, DAY, 1, ROWS, SEED, labels_until=history[-1])
    print(f"\nnightly chain setup: Airflow DB, {HISTORY_DAYS} days x {HISTORY_ROWS:,} rows validated, scored and "
          f"checked, champion v{trained['version']}, a {SMALL_ROWS:,}-row and a {ROWS:,}-row day landed in "
          f"{time.perf_counter() - started:.0f} s")  # fmt: skip
    return {"settings": settings, "env": env, "lake": Lake.from_settings(settings), "root": root, "folders": folders}


# -- one model-day as a LocalExecutor worker runs it ---------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def execution_api(chain: dict[str, Any]) -> Iterator[dict[str, str]]:
    """An execution-API server (what task processes report to) and the env the executor's workers need for it."""
    port = _free_port()
    env = stack_env(chain["settings"], port, _free_port(), base=chain["env"])
    log = (chain["root"] / "api-server.log").open("w")
    argv = [str(Path(sys.executable).with_name("airflow")), "api-server", "--apps", "execution", "-H", "127.0.0.1",
            "-p", str(port), "-w", "1"]  # fmt: skip
    server = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + API_START_SECONDS
        while True:
            assert server.poll() is None, f"api-server exited: {(chain['root'] / 'api-server.log').read_text()[-3000:]}"
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/execution/health", timeout=5) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, f"api-server not up in {API_START_SECONDS} s"
            time.sleep(1)
        yield {**env, "_API_SERVER_PID": str(server.pid)}
    finally:
        _stop_group(server)
        log.close()


def _stop_group(process: subprocess.Popen) -> None:
    """TERM, then KILL, the process group this benchmark started (and only that one)."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=20)
    except ProcessLookupError:
        pass


def _end_idle_workers(root: int) -> None:
    """TERM the executor workers of ``root`` that sit idle although the executor is shutting down.

    Airflow 3.3's ``LocalExecutor.end()`` sends one shutdown message per worker it sees alive; when a worker exits
    meanwhile, another can be left waiting for a message that never comes, and ``dags test`` waits for it forever.
    By then the run is over and the worker runs no task (its title says ``<idle>``); it is reaped as usual, so its
    CPU seconds still count.
    """
    try:
        children = psutil.Process(root).children()
    except psutil.Error:
        return
    for child in children:
        try:
            if "LocalExecutor" in " ".join(child.cmdline()) and "<idle>" in " ".join(child.cmdline()):
                child.terminate()
        except psutil.Error:
            pass


def _cpu(times: Any) -> float:
    return float(times.user + times.system)


class TreeSampler:
    """Every 50 ms: CPU seconds, parent and title of each process under ``root`` (the task processes' titles are
    ``airflow worker -- <task instance id>``); a process's last sample stands for it."""

    def __init__(self, root: int) -> None:
        self.root = root
        self.seen: dict[tuple[int, float], dict[str, Any]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> TreeSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        try:
            root = psutil.Process(self.root)
        except psutil.Error:
            return
        while not self._stop.is_set():
            try:
                processes = [root, *root.children(recursive=True)]
            except psutil.Error:
                processes = [root]
            for process in processes:
                try:
                    with process.oneshot():
                        key = (process.pid, process.create_time())
                        entry = self.seen.setdefault(
                            key, {"pid": process.pid, "ppid": process.ppid(), "ti": "", "rss": 0}
                        )
                        entry["cpu"] = _cpu(process.cpu_times())
                        entry["rss"] = max(entry["rss"], process.memory_info().rss)
                    title = TASK_TITLE.search(" ".join(process.cmdline()))
                    if title:
                        entry["ti"] = title.group(1).replace("-", "")
                except psutil.Error:
                    pass
            self._stop.wait(0.05)

    def tasks(self) -> dict[str, dict[str, float]]:
        """Per task instance id: CPU seconds of its task process and every process under it, and the largest RSS."""
        by_pid = {entry["pid"]: entry for entry in self.seen.values()}
        tasks: dict[str, dict[str, float]] = {}
        for entry in by_pid.values():
            cursor: dict[str, Any] | None = entry
            while cursor is not None and not cursor["ti"]:
                cursor = by_pid.get(cursor["ppid"])
            if cursor is not None:
                task = tasks.setdefault(cursor["ti"], {"cpu": 0.0, "rss": 0.0})
                task["cpu"] += entry.get("cpu", 0.0)
                task["rss"] = max(task["rss"], float(entry["rss"]))
        return tasks

    def own_cpu(self, pid: int) -> float:
        return max((e.get("cpu", 0.0) for e in self.seen.values() if e["pid"] == pid), default=0.0)


def _task_instances(env: Mapping[str, str], dag: str) -> dict[str, tuple[str, float]]:
    """``{task instance id: (task id, its duration in s)}`` of the latest run of ``dag``, from the metadata DB
    (the duration runs from the task process's start to its final state, as the execution API recorded them)."""
    path = env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].removeprefix("sqlite:///")
    with sqlite3.connect(path) as db:
        (run_id,) = db.execute(
            "SELECT run_id FROM dag_run WHERE dag_id = ? ORDER BY id DESC LIMIT 1", (dag,)
        ).fetchone()
        rows = db.execute("SELECT id, task_id, duration FROM task_instance WHERE dag_id = ? AND run_id = ?",
                          (dag, run_id)).fetchall()  # fmt: skip
    return {str(ti).replace("-", ""): (task, float(duration or 0.0)) for ti, task, duration in rows}


def _api_cpu(env: Mapping[str, str]) -> float:
    server = psutil.Process(int(env["_API_SERVER_PID"]))
    return _cpu(server.cpu_times()) + sum(_cpu(child.cpu_times()) for child in server.children(recursive=True))


#: ``airflow dags test`` as the CLI runs it, except that the modules the DAG file brought in (``mlops.*``, the file's
#: own module, the standard provider's operators) leave ``sys.modules`` just before the LocalExecutor forks its
#: workers. ``dags test`` had to parse the file (twice: to find the DAG and to store it); a production worker is
#: forked from a scheduler (or is a Celery worker) that never imports DAG files, so each of its task processes
#: imports them while it parses the file. Without this, the benchmark's task processes would inherit those imports
#: and look cheaper than production's.
DAGS_TEST = """
import sys
from airflow.executors.local_executor import LocalExecutor

def spawn_worker(self):
    for name in [m for m in sys.modules if m == "mlops" or m.startswith(("mlops.", "unusual_prefix_"))
                 or (m.startswith("airflow.providers.standard.") and not m.endswith(".get_provider_info"))]:
        del sys.modules[name]
    return spawn(self)

spawn, LocalExecutor._spawn_worker = LocalExecutor._spawn_worker, spawn_worker
from airflow.__main__ import main
sys.argv = ["airflow", *sys.argv[1:]]
sys.exit(main())
"""


def run_with_executor(env: Mapping[str, str], kind: str, day: dt.date, forced: bool, log: Path) -> dict[str, Any]:
    """``airflow dags test <model>__<kind> D --use-executor``: every task in a task process of a LocalExecutor
    worker. Returns the workers' CPU seconds, per-task CPU and slot seconds, and the api-server's CPU."""
    argv = [sys.executable, "-c", DAGS_TEST, "dags", "test", dag_id(kind), day.isoformat(), "--use-executor"]
    if forced:
        argv += ["-c", json.dumps({"date": day.isoformat()})]
    api_before = _api_cpu(env)
    started = time.perf_counter()
    with log.open("w") as out:
        process = subprocess.Popen(argv, env=dict(env), stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        with TreeSampler(process.pid) as sampler:
            deadline = time.monotonic() + RUN_TIMEOUT_SECONDS
            shutdown: float | None = None
            while True:
                pid, status, usage = os.wait4(process.pid, os.WNOHANG)
                if pid:
                    process.returncode = os.waitstatus_to_exitcode(status)
                    break
                if time.monotonic() > deadline:
                    _stop_group(process)
                    pytest.fail(f"{dag_id(kind)} did not finish in {RUN_TIMEOUT_SECONDS} s; log: {log}")
                if shutdown is None and "Shutting down LocalExecutor" in log.read_text():
                    shutdown = time.monotonic()
                if shutdown is not None and time.monotonic() - shutdown > IDLE_WORKER_GRACE_SECONDS:
                    _end_idle_workers(process.pid)
                    shutdown = time.monotonic()
                time.sleep(1)
    wall = time.perf_counter() - started
    text = log.read_text()
    assert process.returncode == 0, f"{dag_id(kind)} failed:\n{text[-4000:]}"
    assert "DagRun Finished" in text and "state=success" in text, f"{dag_id(kind)} did not succeed:\n{text[-4000:]}"
    instances = _task_instances(env, dag_id(kind))
    per_task: dict[str, float] = {}
    rss = 0.0
    for ti_id, task in sampler.tasks().items():
        name = instances.get(ti_id, (f"? {ti_id}", 0.0))[0]
        per_task[name] = per_task.get(name, 0.0) + task["cpu"]
        rss = max(rss, task["rss"])
    tree = usage.ru_utime + usage.ru_stime
    slots = [float(s) for s in re.findall(r"Workload finished.*?duration=([0-9.]+)", text)]
    return {"kind": kind, "forced": forced, "wall": wall, "worker_cpu": tree - sampler.own_cpu(process.pid),
            "task_cpu": per_task, "slots": slots, "task_seconds": sum(d for _, d in instances.values()),
            "rss": rss, "api_cpu": _api_cpu(env) - api_before}  # fmt: skip


def model_day(env: Mapping[str, str], logs: Path, label: str) -> dict[str, Any]:
    """One model-day: the chain for SMALL_DAY (each DAG redoes the day), then the two sweeps that find it done."""
    runs = [run_with_executor(env, kind, SMALL_DAY, kind in FORCED, logs / f"{label}-{kind}.log") for kind in CHAIN]
    sweeps = [run_with_executor(env, kind, SMALL_DAY, False, logs / f"{label}-sweep-{kind}.log") for kind in SWEEPS]
    runs += [{**run, "sweep": True} for run in sweeps]
    tasks = [(run["kind"], task, cpu) for run in runs for task, cpu in run["task_cpu"].items()]
    processes = sum(len(run["slots"]) for run in runs)
    task_cpu = sum(cpu for _, _, cpu in tasks)
    empty = [cpu for _, task, cpu in tasks if task in EMPTY_TASKS]
    return {
        "runs": runs,
        "worker_cpu": sum(run["worker_cpu"] for run in runs),
        "chain_cpu": sum(run["worker_cpu"] for run in runs[: len(CHAIN)]),
        "task_cpu": task_cpu,
        "supervisor_cpu": sum(run["worker_cpu"] for run in runs) - task_cpu,
        "processes": processes,
        "empty_task_cpu": statistics.median(empty),
        "slot_seconds": sum(sum(run["slots"]) for run in runs),
        "task_seconds": sum(run["task_seconds"] for run in runs),
        "rss": max(run["rss"] for run in runs),
        "api_cpu": sum(run["api_cpu"] for run in runs),
        "wall": sum(run["wall"] for run in runs),
    }


#: What a task process spends parsing the DAG file (with Airflow's parsing context of the DAG it runs), forked from
#: a parent like the benchmark's LocalExecutor workers (the DAG file parsed once, its modules dropped again: Airflow's
#: providers already initialised) or like a worker that never loaded a DAG (only the scheduler's, executor's and
#: task runner's modules imported). Prints the median CPU seconds of ``REPEATS`` children.
TASK_PARSE = """
import os, resource, statistics, sys
import airflow.executors.local_executor, airflow.jobs.scheduler_job_runner
import airflow.sdk.execution_time.supervisor, airflow.sdk.execution_time.task_runner
from airflow.dag_processing.dagbag import BundleDagBag, DagBag
from airflow.sdk.definitions._internal.dag_parsing_context import _airflow_parsing_context_manager

folder, dag_id, parent, repeats = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
path = os.path.join(folder, "mlops_models.py")
if parent == "benchmark":
    DagBag(dag_folder=path)
    for name in [m for m in sys.modules if m == "mlops" or m.startswith(("mlops.", "unusual_prefix_"))
                 or (m.startswith("airflow.providers.standard.") and not m.endswith(".get_provider_info"))]:
        del sys.modules[name]

def child():
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    pid = os.fork()
    if pid == 0:
        with _airflow_parsing_context_manager(dag_id=dag_id, task_id="resolve_day"):
            bag = BundleDagBag(dag_folder=path, bundle_path=folder, bundle_name="dags-folder", load_op_links=False)
        os._exit(0 if dag_id in bag.dags else 1)
    _, status = os.waitpid(pid, 0)
    assert status == 0, "the DAG was not parsed"
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime

child()
print(statistics.median(child() for _ in range(repeats)))
"""


def task_parse_cpu(env: Mapping[str, str], parent: str, repeats: int = 5) -> float:
    """CPU seconds a task process spends parsing the DAG file, forked from ``parent`` (see TASK_PARSE)."""
    argv = [sys.executable, "-c", TASK_PARSE, str(PROJECT_ROOT / "dags"), dag_id("batch_scoring"), parent, str(repeats)]
    done = subprocess.run(argv, env=dict(env), capture_output=True, text=True, check=True)
    return float(done.stdout.strip().splitlines()[-1])


def ours_cpu(settings: Settings, day: dt.date) -> dict[str, float]:
    """The work: our three steps on ``day`` in this (warm) process, CPU seconds each."""
    from mlops.monitoring import check_day
    from mlops.scoring import score_day
    from mlops.validation import validate_and_version

    steps: dict[str, Callable[[], Any]] = {
        "data_validation": lambda: validate_and_version(settings, day),
        "batch_scoring": lambda: score_day(settings, day, run_id="bench"),
        "drift_monitoring": lambda: check_day(settings, day),
    }
    spent = {}
    for name, step in steps.items():
        gc.collect()
        started = time.process_time()
        step()
        spent[name] = time.process_time() - started
    return spent


FRESH_STEPS = """
import datetime as dt, sys
from mlops.config import load_settings
from mlops.monitoring import check_day
from mlops.scoring import score_day
from mlops.validation import validate_and_version
settings, day = load_settings(model=sys.argv[1]), dt.date.fromisoformat(sys.argv[2])
validate_and_version(settings, day)
score_day(settings, day, run_id="bench-fresh")
check_day(settings, day)
"""


def fresh_process_cpu(env: Mapping[str, str], day: dt.date) -> float:
    """Our three steps in one fresh interpreter (every import paid once): its CPU seconds."""
    process = subprocess.Popen([sys.executable, "-c", FRESH_STEPS, MODEL, day.isoformat()], env=dict(env),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    assert process.returncode == 0, "our three steps failed in a fresh process"
    return usage.ru_utime + usage.ru_stime


def test_worker_time_per_model_day(chain: dict[str, Any], execution_api: dict[str, str],
                                   bench_results: BenchResults) -> None:  # fmt: skip
    settings, logs = chain["settings"], chain["root"] / "logs"
    logs.mkdir(exist_ok=True)
    load_before = os.getloadavg()[0]
    measured: dict[int, list[dict[str, Any]]] = {1: [], MANY_MODEL_FILES: []}
    work: list[dict[str, float]] = []
    fresh: list[float] = []
    for repeat in range(MODEL_DAY_REPEATS):
        for count in measured:
            env = {**execution_api, "MLOPS_MODELS_DIR": str(chain["folders"][count])}
            measured[count].append(model_day(env, logs, f"{count}-models-{repeat}"))
        work.append(ours_cpu(settings, SMALL_DAY))
        fresh.append(fresh_process_cpu(chain["env"], SMALL_DAY))
    parse_here, parse_cold = (task_parse_cpu(chain["env"], parent) for parent in ("benchmark", "cold"))
    load_after = os.getloadavg()[0]

    def median(count: int, key: str) -> float:
        return statistics.median(day[key] for day in measured[count])

    one = {key: median(1, key) for key in measured[1][0] if key != "runs"}
    many = {key: median(MANY_MODEL_FILES, key) for key in measured[MANY_MODEL_FILES][0] if key != "runs"}
    work_cpu = statistics.median(sum(w.values()) for w in work)
    fresh_cpu = statistics.median(fresh)
    overhead = one["worker_cpu"] - work_cpu
    floor = one["processes"] * one["empty_task_cpu"] + one["supervisor_cpu"]
    rest = overhead - floor

    print(f"\none model-day, {SMALL_ROWS:,}-row day, as LocalExecutor workers run it (median of {MODEL_DAY_REPEATS}); "
          f"load {load_before:.1f} -> {load_after:.1f} on {os.cpu_count()} cores")  # fmt: skip
    print(f"{'DAG run':<34} {'worker CPU s':>12} {'slot s':>7} {'api CPU s':>9}  task processes (CPU s)")
    for run in measured[1][-1]["runs"]:
        label = f"sweep {run['kind']}" if run.get("sweep") else f"{run['kind']}{' (day forced)' * run['forced']}"
        tasks = ", ".join(f"{task} {cpu:.2f}" for task, cpu in sorted(run["task_cpu"].items()))
        print(f"{label:<34} {run['worker_cpu']:>12.2f} {sum(run['slots']):>7.1f} {run['api_cpu']:>9.2f}  {tasks}")
    for count, day in ((1, one), (MANY_MODEL_FILES, many)):
        print(
            f"{count:>2} model file(s): worker CPU {day['worker_cpu']:.1f} s (chain {day['chain_cpu']:.1f}, sweeps "
            f"{day['worker_cpu'] - day['chain_cpu']:.1f}) in {day['processes']:.0f} task processes; supervisors "
            f"{day['supervisor_cpu']:.1f} s; empty task {day['empty_task_cpu']:.2f} s; slot seconds "
            f"{day['slot_seconds']:.0f} (task durations {day['task_seconds']:.0f}); largest task process "
            f"{day['rss'] / 2**20:.0f} MB; api-server CPU {day['api_cpu']:.1f} s; wall {day['wall']:.0f} s"
        )
    print(f"the work (our 3 steps, warm process): {work_cpu:.1f} CPU s "
          f"({', '.join(f'{k} {statistics.median(w[k] for w in work):.2f}' for k in CHAIN)}); the same in one fresh "
          f"process: {fresh_cpu:.1f} CPU s (imports once: {fresh_cpu - work_cpu:.1f} s)")  # fmt: skip
    cold = one["worker_cpu"] + one["processes"] * (parse_cold - parse_here)
    print(f"DAG-file parse per task process: {parse_here:.3f} CPU s forked from a worker like the benchmark's, "
          f"{parse_cold:.3f} s from one that never loaded a DAG (Airflow's providers not initialised): with such "
          f"workers, {cold:.1f} CPU s per model-day")  # fmt: skip
    print(f"fixed overhead {overhead:.1f} CPU s = task-process floor {floor:.1f} s ({one['processes']:.0f} x "
          f"{one['empty_task_cpu']:.2f} s + supervisors {one['supervisor_cpu']:.1f} s) + imports and per-process "
          f"setup {rest:.1f} s")  # fmt: skip

    what = f"model-day under Airflow ({SMALL_ROWS // 1000}k-row day: chain + 2 nightly sweeps, LocalExecutor)"
    target = f"<= {TARGET_WORKER_CPU:g}"
    bench_results.add(f"{what}: worker CPU s, 1 model file", one["worker_cpu"], None, "s", target)
    bench_results.add(f"{what}: the work (our 3 steps, warm process; CPU s)", work_cpu, None, "s", None)
    bench_results.add(f"{what}: fixed overhead (worker CPU minus the work)", overhead, None, "s", None)
    bench_results.add(f"{what}: task-process floor (empty task x processes + supervisors)", floor, None, "s", None)
    bench_results.add(f"{what}: worker CPU s, {MANY_MODEL_FILES} model files", many["worker_cpu"], None, "s", target)
    bench_results.add(f"{what}: DAG-file parse per task process, cold worker vs the benchmark's (CPU s)",
                      parse_cold, parse_here, "s", None)  # fmt: skip
    bench_results.add(
        f"{what}: slot seconds (supervisor durations), 1 model file", one["slot_seconds"], None, "s", None
    )

    assert one["processes"] >= 14, f"expected every task of the chain in its own process, got {one['processes']}"
    assert one["worker_cpu"] <= TARGET_WORKER_CPU, f"{one['worker_cpu']:.1f} CPU s per model-day"
    assert many["worker_cpu"] <= TARGET_WORKER_CPU, (
        f"{many['worker_cpu']:.1f} CPU s per model-day with {MANY_MODEL_FILES} model files"
    )


# -- a 1M-row day: `airflow dags test` vs our steps vs the raw libraries ---------------------------------------------
def run_airflow(env: dict[str, str]) -> dict[str, float]:
    """Each DAG of the chain for DAY with `airflow dags test`; all must succeed."""
    seconds = {}
    for kind in CHAIN:
        argv = ["dags", "test", dag_id(kind), DAY.isoformat()]
        if kind in FORCED:  # redo the day even though an earlier run scored and checked it
            argv += ["-c", json.dumps({"date": DAY.isoformat()})]
        started = time.perf_counter()
        done = airflow(argv, env, check=False, capture_output=True)
        seconds[kind] = time.perf_counter() - started
        assert done.returncode == 0, f"{kind} failed:\n{(done.stdout + done.stderr)[-4000:]}"
    return seconds


def run_ours(settings: Settings) -> dict[str, float]:
    """The functions the chain's tasks call, in one process."""
    from mlops.monitoring import check_day
    from mlops.scoring import score_day
    from mlops.validation import validate_and_version

    steps: dict[str, Callable[[], Any]] = {
        "data_validation": lambda: validate_and_version(settings, DAY),
        "batch_scoring": lambda: score_day(settings, DAY, run_id="bench"),
        "drift_monitoring": lambda: check_day(settings, DAY),
    }
    return {name: _timed(step) for name, step in steps.items()}


def run_raw(settings: Settings, lake: Lake) -> dict[str, float]:
    """The floor of each step: pyarrow checks, raw XGBoost prediction, numpy PSI."""
    from mlops.drift import feature_drift, score_drift
    from mlops.features import build_matrix

    contract = Contract.load(settings.contract_path)
    pinned = aliases.pin_champion(settings)
    booster = models.booster(settings, pinned)
    profile = models.load_artifact(settings, pinned.run_id, models.Artifacts.REFERENCE_PROFILE)
    seconds = {"data_validation": _timed(lambda: pyarrow_check(lake, DAY, contract))}
    table = _read(lake, DAY)  # read once (timed above, in the validation floor)
    predicted: dict[str, Any] = {}

    def score() -> None:
        predicted["X"] = build_matrix(table, pinned.spec)
        predicted["scores"] = booster.inplace_predict(predicted["X"])

    seconds["batch_scoring"] = _timed(score)
    seconds["drift_monitoring"] = _timed(lambda: (feature_drift(profile, predicted["X"], pinned.spec, 0.01),
                                                  score_drift(profile, predicted["scores"])))  # fmt: skip
    return seconds


def _timed(run: Callable[[], Any]) -> float:
    gc.collect()
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def test_nightly_chain_as_airflow_runs_it(chain: dict[str, Any], bench_results: BenchResults) -> None:
    settings, env, lake = chain["settings"], chain["env"], chain["lake"]
    runs: dict[str, list[dict[str, float]]] = {"airflow": [], "ours": [], "raw": []}
    load_before = os.getloadavg()[0]
    for repeat in range(REPEATS):  # interleaved, the order swapped every repeat
        order = ("ours", "airflow", "raw") if repeat % 2 == 0 else ("raw", "airflow", "ours")
        for side in order:
            if side == "airflow":
                runs[side].append(run_airflow(env))
            elif side == "ours":
                runs[side].append(run_ours(settings))
            else:
                runs[side].append(run_raw(settings, lake))
    load_after = os.getloadavg()[0]

    median = {side: {kind: statistics.median(r[kind] for r in rs) for kind in CHAIN} for side, rs in runs.items()}
    total = {side: statistics.median(sum(r.values()) for r in rs) for side, rs in runs.items()}
    print(f"\nnightly chain, {ROWS:,}-row day, median of {REPEATS} (interleaved); load {load_before:.1f} -> "
          f"{load_after:.1f} on {os.cpu_count()} cores")  # fmt: skip
    print(f"{'step':<18} {'airflow dags test s':>20} {'our steps s':>12} {'raw s':>8}")
    for kind in CHAIN:
        print(f"{kind:<18} {median['airflow'][kind]:>20.2f} {median['ours'][kind]:>12.2f} {median['raw'][kind]:>8.2f}")
    print(f"{'chain':<18} {total['airflow']:>20.2f} {total['ours']:>12.2f} {total['raw']:>8.2f}")

    bench_results.add("nightly chain, 1M-row day, as Airflow runs it (3 `airflow dags test`), vs the raw steps "
                      "(pyarrow checks + inplace_predict + numpy PSI)",
                      total["airflow"], total["raw"], "s", None)  # fmt: skip
    bench_results.add("nightly chain, 1M-row day, our 3 steps in one process, vs the raw steps",
                      total["ours"], total["raw"], "s", None)  # fmt: skip
    bench_results.add("nightly chain, 1M-row day, as Airflow runs it, vs our 3 steps in one process",
                      total["airflow"], total["ours"], "s", None)  # fmt: skip
    assert len(runs["airflow"]) == REPEATS
