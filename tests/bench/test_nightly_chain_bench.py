"""Nightly chain benchmark: one 1M-row day through validate -> score -> drift, as Airflow runs it.

Three ways over the same validated 1M-row day, in one run, interleaved ``REPEATS`` times (medians compared):

* **Airflow**: ``airflow dags test`` of ``data_validation``, ``batch_scoring`` and ``drift_monitoring`` for the day,
  one after the other (each a fresh process: CLI start, DAG parse, every task with its overhead, the
  deferrable sensor, XComs, the Evidently report), on a SQLite metadata DB of the benchmark's own;
* **our steps in one process**: ``validate_and_version``, ``score_day``, ``check_day`` (report included), the
  functions those tasks call;
* **the raw steps** (the floor): pyarrow read + the same contract checks (as the validation benchmark),
  ``build_matrix`` + ``inplace_predict`` of the champion, and the numpy PSI of every feature and of the
  score against the champion's stored profile.

The champion is real: 10 days of 20k rows are landed, validated and trained on with ``run_all`` first (so
monitoring has its reference profile, holdout AUC-PR and snapshot). The benchmark's copy of the data contract
widens the row-count band (the 1M-row day is 50x the median of those days); every other rule is the same.
No target is set for these rows yet: they are reported, so the cost of orchestration is on record next to
the cost of the work.
"""

from __future__ import annotations

import datetime as dt
import gc
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

import pytest
import yaml
from bench_results import BenchResults
from test_validation_bench import _read, pyarrow_check

from mlops import models
from mlops.config import Settings, load_settings
from mlops.data.contract import Contract
from mlops.data.lake import Lake
from mlops.data.landing import land_days
from mlops.runtime import airflow, embedded_env, ensure_airflow_db

pytestmark = pytest.mark.bench

ROWS = 1_000_000
HISTORY_DAYS, HISTORY_ROWS = 10, 20_000
SEED = 11
START = dt.date(2026, 5, 1)
DAY = START + dt.timedelta(days=HISTORY_DAYS)
REPEATS = int(os.environ.get("MLOPS_BENCH_CHAIN_REPEATS", "2"))
CHAIN = ("data_validation", "batch_scoring", "drift_monitoring")


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
    from mlops.training.pipeline import run_all
    from mlops.validation import validate_and_version

    root = tmp_path_factory.mktemp("nightly-chain")
    contract = yaml.safe_load(load_settings(env={}).contract_path.read_text())
    contract["row_count"]["max_ratio"] = 100.0
    (root / "contract.yaml").write_text(yaml.safe_dump(contract, sort_keys=False))
    base = _clean_env(AIRFLOW_HOME=str(root / "airflow"), MLOPS_HOME=str(root / "mlops"),
                      MLOPS__DATASET__CONTRACT=str(root / "contract.yaml"))  # fmt: skip
    settings = load_settings(env=base)
    env = embedded_env(settings, base=base)
    started = time.perf_counter()
    ensure_airflow_db(env)
    land_days(settings, START, HISTORY_DAYS, HISTORY_ROWS, SEED)
    for offset in range(HISTORY_DAYS):
        validate_and_version(settings, START + dt.timedelta(days=offset))
    trained = run_all(settings, DAY - dt.timedelta(days=1), {"reason": "nightly chain benchmark"}, actor="bench")
    assert trained["passed"], trained["summary"]
    land_days(settings, DAY, 1, ROWS, SEED, labels_until=DAY - dt.timedelta(days=1))
    print(f"\nnightly chain setup: Airflow DB, {HISTORY_DAYS} days x {HISTORY_ROWS:,} rows validated, champion "
          f"v{trained['version']}, {ROWS:,}-row day landed in {time.perf_counter() - started:.0f} s")  # fmt: skip
    return {"settings": settings, "env": env, "lake": Lake.from_settings(settings)}


def run_airflow(env: dict[str, str]) -> dict[str, float]:
    """Each DAG of the chain for DAY with `airflow dags test`; all must succeed."""
    seconds = {}
    for dag_id in CHAIN:
        started = time.perf_counter()
        done = airflow(["dags", "test", dag_id, DAY.isoformat()], env, check=False, capture_output=True)
        seconds[dag_id] = time.perf_counter() - started
        assert done.returncode == 0, f"{dag_id} failed:\n{(done.stdout + done.stderr)[-4000:]}"
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
    pinned = models.pin_champion(settings)
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

    median = {side: {dag: statistics.median(r[dag] for r in rs) for dag in CHAIN} for side, rs in runs.items()}
    total = {side: statistics.median(sum(r.values()) for r in rs) for side, rs in runs.items()}
    print(f"\nnightly chain, {ROWS:,}-row day, median of {REPEATS} (interleaved); load {load_before:.1f} -> "
          f"{load_after:.1f} on {os.cpu_count()} cores")  # fmt: skip
    print(f"{'step':<18} {'airflow dags test s':>20} {'our steps s':>12} {'raw s':>8}")
    for dag in CHAIN:
        print(f"{dag:<18} {median['airflow'][dag]:>20.2f} {median['ours'][dag]:>12.2f} {median['raw'][dag]:>8.2f}")
    print(f"{'chain':<18} {total['airflow']:>20.2f} {total['ours']:>12.2f} {total['raw']:>8.2f}")

    bench_results.add("nightly chain, 1M-row day, as Airflow runs it (3 `airflow dags test`), vs the raw steps "
                      "(pyarrow checks + inplace_predict + numpy PSI)",
                      total["airflow"], total["raw"], "s", None)  # fmt: skip
    bench_results.add("nightly chain, 1M-row day, our 3 steps in one process, vs the raw steps",
                      total["ours"], total["raw"], "s", None)  # fmt: skip
    bench_results.add("nightly chain, 1M-row day, as Airflow runs it, vs our 3 steps in one process",
                      total["airflow"], total["ours"], "s", None)  # fmt: skip
    assert len(runs["airflow"]) == REPEATS
