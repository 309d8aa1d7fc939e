"""Scoring benchmark: our batch scoring (parquet in, parquet out) against raw ``Booster.inplace_predict``.

Targets (docs/testing.md, "Benchmarks"), 2 threads:

* speed: on 1M rows, our scoring rows/s INCLUDING the parquet read, ``build_matrix`` and the parquet write
  is at least 0.8x raw ``booster.inplace_predict`` on the same rows already in memory as the float32
  matrix ``build_matrix`` returns. The reference baseline model costs 1.26 s per 1M rows (~800k rows/s).
* memory: the peak RSS of scoring a 10M-row day is at most 1.2x that of a 1M-row day (streaming: memory
  follows ``scoring.batch_rows``, not the day).

Two champions, so the ratio is read honestly:

* "design" (depth 6, 300 rounds): raw ``inplace_predict`` costs about what The reference baseline does; its
  raw rows/s is printed next to the 800k rows/s baseline. The 0.8x target is ASSERTED on this one.
* "small" (depth 6, 100 rounds): a third of the model cost, while our fixed read / features / write cost
  (~0.2 s per 1M rows) stays; its ratio is REPORTED only (it lands around 0.65x).

Both are trained directly with XGBoost on generator rows with noisy synthetic labels (so every tree
grows to full depth and costs what a depth-6 tree costs), logged with ``mlflow.xgboost.log_model`` plus
the ``feature_spec.json`` artifact, registered through :class:`mlops.registry.Registry`, given a passing gate
verdict in the ledger (as ``assess`` records it) and promoted to champion in a tmp MLflow; each is pinned with
``pin_champion`` while it is champion. The 1M-row day comes from ``generate_day`` in row groups of 131,072 and is marked
validated by writing ``_VALIDATED.json`` with its files' manifest (no GX run).

Speed: what a scoring DAG run does after pinning, i.e. ``plan_chunks`` + ``score_chunk`` per chunk +
``commit_scores`` (the committed swap, ``_STATS.json`` and ``_SUCCESS`` included). One warm-up of every
side (loads each booster from MLflow into the task-process cache: not timed, as raw's load is not
either). Raw uses that very cached booster (same trees, same nthread). Then raw-design, ours-design,
raw-small, ours-small alternate REPEATS times (order reversed every repeat) and medians are compared.

Memory: the 1M and the 10M day are each scored by ``score_day`` in a fresh subprocess (design-sized
champion), which reports its peak RSS at the end. Caveat measured here: Linux keeps ``ru_maxrss`` across
fork + exec, so a child of this pytest process (~0.9 GB with the 1M matrix and tables) reports the PARENT's
peak for both days (1.000x, meaningless). The peak compared is therefore ``VmHWM`` of ``/proc/self/status``
(the high-water mark of the child's own address space, reset by exec); ``ru_maxrss`` is printed beside it
(and used only where ``/proc`` is missing). The 10M day is generated in 1M pieces with
``generate_day`` (ids renumbered to stay unique) into one parquet file with row groups of 131,072.
"""

from __future__ import annotations

import datetime as dt
import gc
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from bench_results import BenchResults
from tests.unit.ledger_verdicts import record_verdict

from mlops import models
from mlops.aliases import pin_champion
from mlops.config import Settings, load_settings
from mlops.data.contract import Contract
from mlops.data.generator import generate_day
from mlops.data.lake import SUCCESS, VALIDATED, Lake
from mlops.features import FeatureSpec, build_matrix, feature_spec
from mlops.models import PinnedModel
from mlops.registry import GATES_TAG, Registry
from mlops.scoring import commit_scores, plan_chunks, score_chunk

pytestmark = pytest.mark.bench

THREADS = 2
ROWS = 1_000_000
BIG_ROWS = 10_000_000
ROW_GROUP = 131_072
TRAIN_ROWS = 200_000
SEED = 3
DAY = dt.date(2026, 1, 1)
BIG_DAY = dt.date(2026, 2, 1)
REPEATS = int(os.environ.get("MLOPS_BENCH_REPEATS", "5"))
SPEED_TARGET = 0.8
MEMORY_TARGET = 1.2
#: Rows/s of a 10M-row day relative to a 1M-row day: streaming keeps the rate (fixed costs only get amortised).
THROUGHPUT_TARGET = 0.9
#: The reference baseline: 1.26 s per 1M rows in inplace_predict on 2 cores.
REFERENCE_BASELINE_SECONDS = 1.26
#: The "design" model must cost at least this share of the reference baseline, or the asserted ratio would be
#: measured on a cheaper model than the reference (noise only ever makes raw slower, so this cannot flake low).
REFERENCE_MIN_SHARE = 0.5
MODELS = {"design": 300, "small": 100}  # name -> rounds, all depth 6
SCORED_AT = "2026-01-02T00:00:00+00:00"

RESULTS: dict[str, Any] = {"benchmark": "scoring"}


def _settings(home: Path) -> Settings:
    return load_settings(env={"MLOPS_HOME": str(home)}, conf={"model": {"nthread": THREADS}})


def _write_json() -> None:
    out = os.environ.get("MLOPS_BENCH_OUT")
    if out:
        Path(out).mkdir(parents=True, exist_ok=True)
        (Path(out) / "scoring.json").write_text(json.dumps(RESULTS, indent=2, default=str))


def _land(lake: Lake, day: dt.date, rows: int) -> str:
    """A validated raw partition of ``rows`` generated rows in one file, row groups of ROW_GROUP, 1M at a time."""
    partition = lake.partition("raw", day)
    lake.remove(partition)
    lake.fs.makedirs(partition, exist_ok=True)
    writer = None
    for piece in range(-(-rows // ROWS)):
        n = min(ROWS, rows - piece * ROWS)
        table, _ = generate_day(day + dt.timedelta(days=piece), n, SEED)
        ids = np.arange(piece * ROWS, piece * ROWS + n, dtype=np.int64)
        table = table.set_column(0, table.schema.field(0), pa.array(ids))
        if writer is None:
            writer = pq.ParquetWriter(f"{partition}/part-00000.parquet", table.schema, compression="snappy")
        writer.write_table(table, row_group_size=ROW_GROUP)
        del table
    assert writer is not None
    writer.close()
    lake.touch(f"{partition}/{SUCCESS}")
    # Scoring reads only the files a verdict vouches for: the marker carries their manifest, as validation writes it.
    verdict = {"rows": rows, "manifest": lake.manifest(partition), "note": "written by the scoring benchmark"}
    lake.write_json(f"{partition}/{VALIDATED}", verdict)
    return partition


def _champion(settings: Settings, spec: FeatureSpec, X: np.ndarray, y: np.ndarray, rounds: int,
              expected: str | None) -> str:  # fmt: skip
    """Train depth 6 x ``rounds``, log it as the pipeline does, register, pass its gates, promote."""
    import mlflow
    import xgboost as xgb

    params = {"objective": "binary:logistic", "tree_method": "hist", "max_depth": 6, "nthread": THREADS, "seed": 0}
    booster = xgb.train(params, xgb.DMatrix(X, label=y), rounds)
    mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
    with mlflow.start_run(run_name=f"bench-{rounds}") as run:
        mlflow.log_dict(spec.to_dict(), "feature_spec.json")
        info = mlflow.xgboost.log_model(booster, name="model", model_format="ubj")
    registry = Registry(settings)
    version = registry.register(run.info.run_id, info.model_uri, {GATES_TAG: "true"})
    record_verdict(registry, version, compared=expected)  # promotion trusts the ledger's verdict, not the tag
    registry.promote(version, expected, actor="bench", reason=f"scoring bench, {rounds} rounds", run="bench")
    return version


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Any:
    home = tmp_path_factory.mktemp("scoring-bench")
    settings = _settings(home)
    lake = Lake.from_settings(settings)
    spec = feature_spec(settings, Contract.load(settings.contract_path))
    _land(lake, DAY, ROWS)
    X = build_matrix(lake.read_partition(lake.partition("raw", DAY)), spec)
    # Noisy labels loosely tied to a feature: no tree stops short of depth 6 (the colleague's heavy.py).
    rng = np.random.default_rng(0)
    train = X[:TRAIN_ROWS]
    y = (rng.random(TRAIN_ROWS) < 0.3 + 0.2 * (train[:, 0] > np.median(train[:, 0]))).astype(np.float32)
    pinned: dict[str, PinnedModel] = {}
    champion: str | None = None
    for name, rounds in reversed(MODELS.items()):  # design promoted last: it stays champion for score_day
        champion = _champion(settings, spec, train, y, rounds, champion)
        pinned[name] = pin_champion(settings)
        assert pinned[name].version == champion
    yield {"home": home, "settings": settings, "lake": lake, "X": X, "pinned": pinned}
    shutil.rmtree(home, ignore_errors=True)  # ~1 GB of parquet with the 10M day


def run_ours(settings: Settings, lake: Lake, pinned: PinnedModel, run_id: str) -> dict:
    """What the scoring DAG does after pinning: plan, every chunk, commit."""
    chunks = plan_chunks(settings, lake, DAY, pinned)
    results = [score_chunk(settings, lake, DAY, pinned, c.stamped(SCORED_AT), run_id) for c in chunks]
    return commit_scores(settings, lake, DAY, pinned, results, run_id)


def _timed(run: Callable[[], Any]) -> float:
    gc.collect()
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def test_scoring_speed(env: dict[str, Any], bench_results: BenchResults) -> None:
    """Ours (parquet -> parquet) vs raw inplace_predict in memory; >= 0.8x for the design-sized model."""
    import xgboost as xgb

    settings, lake, X = env["settings"], env["lake"], env["X"]
    pinned: dict[str, PinnedModel] = env["pinned"]
    boosters = {name: models.booster(settings, p) for name, p in pinned.items()}  # the task-process cache, loaded once
    sides: list[tuple[str, Callable[[], Any]]] = []
    for name in MODELS:
        sides.append((f"raw {name}", lambda b=boosters[name]: b.inplace_predict(X)))
        sides.append((f"ours {name}", lambda p=pinned[name]: run_ours(settings, lake, p, "bench")))
    for _, run in sides:  # warm-up
        run()
    stats = run_ours(settings, lake, pinned["design"], "bench")
    assert stats["rows"] == ROWS and stats["model_version"] == pinned["design"].version

    load_before = os.getloadavg()[0]
    wall: dict[str, list[float]] = {label: [] for label, _ in sides}
    for repeat in range(REPEATS):
        for label, run in sides if repeat % 2 == 0 else sides[::-1]:
            wall[label].append(_timed(run))
    load_after = os.getloadavg()[0]

    median = {label: statistics.median(runs) for label, runs in wall.items()}
    ratios = {name: median[f"raw {name}"] / median[f"ours {name}"] for name in MODELS}
    paired = {name: [r / o for r, o in zip(wall[f"raw {name}"], wall[f"ours {name}"], strict=True)] for name in MODELS}
    print(
        f"\nscoring, {ROWS:,} rows x {X.shape[1]} features, row groups {ROW_GROUP:,}, batch_rows "
        f"{settings.scoring.batch_rows:,}, {THREADS} threads, xgboost {xgb.__version__}; median of {REPEATS} "
        f"(after 1 warm-up, interleaved); load average {load_before:.1f} -> {load_after:.1f} on {os.cpu_count()} cores"
    )
    baseline_rate = ROWS / REFERENCE_BASELINE_SECONDS
    print(f"reference baseline model: {REFERENCE_BASELINE_SECONDS:.2f} s per 1M rows = {baseline_rate:,.0f} rows/s")
    header = f"{'model':<22} {'raw s':>7} {'raw rows/s':>11} {'ours s':>7} {'ours rows/s':>12} {'ratio':>6}"
    print(f"{header} {'target':>7}   paired")
    for name, rounds in MODELS.items():
        raw_s, ours_s = median[f"raw {name}"], median[f"ours {name}"]
        target = f">={SPEED_TARGET}" if name == "design" else "report"
        print(
            f"{name + f' (d6 x {rounds})':<22} {raw_s:>7.3f} {ROWS / raw_s:>11,.0f} {ours_s:>7.3f} "
            f"{ROWS / ours_s:>12,.0f} {ratios[name]:>6.3f} {target:>7}   "
            f"{', '.join(f'{v:.2f}' for v in paired[name])}"
        )
    overhead = {name: median[f"ours {name}"] - median[f"raw {name}"] for name in MODELS}
    print(
        "fixed cost of ours over raw (read + features + write + commit): "
        + ", ".join(f"{name} {seconds:.3f} s" for name, seconds in overhead.items())
    )

    RESULTS["speed"] = {
        "rows": ROWS,
        "features": int(X.shape[1]),
        "row_group": ROW_GROUP,
        "batch_rows": settings.scoring.batch_rows,
        "threads": THREADS,
        "repeats": REPEATS,
        "xgboost": xgb.__version__,
        "load_average": [load_before, load_after],
        "design_baseline_seconds_per_1m": REFERENCE_BASELINE_SECONDS,
        "models": {
            name: {
                "rounds": rounds,
                "max_depth": 6,
                "version": pinned[name].version,
                "raw_seconds": median[f"raw {name}"],
                "ours_seconds": median[f"ours {name}"],
                "raw_rows_per_second": ROWS / median[f"raw {name}"],
                "ours_rows_per_second": ROWS / median[f"ours {name}"],
                "ratio_ours_to_raw_rows_per_second": ratios[name],
                "ratio_per_repeat": paired[name],
                "runs": {"raw": wall[f"raw {name}"], "ours": wall[f"ours {name}"]},
                "asserted": name == "design",
            }
            for name, rounds in MODELS.items()
        },
        "target_ratio": SPEED_TARGET,
    }
    _write_json()

    for name, rounds in MODELS.items():
        bench_results.add(f"batch scoring, 1M rows, d6 x {rounds} model (read + features + predict + write), "
                          "vs raw inplace_predict in memory", ROWS / median[f"ours {name}"],
                          ROWS / median[f"raw {name}"], "rows/s",
                          f">= {SPEED_TARGET}" if name == "design" else None)  # fmt: skip
    assert median["raw design"] >= REFERENCE_MIN_SHARE * REFERENCE_BASELINE_SECONDS, (
        f"the design-sized model costs only {median['raw design']:.3f} s per 1M rows: not comparable to "
        f"the reference {REFERENCE_BASELINE_SECONDS} s baseline"
    )
    assert ratios["design"] >= SPEED_TARGET, (
        f"scoring reaches {ratios['design']:.3f}x raw inplace_predict rows/s (target >= {SPEED_TARGET})"
    )


MEMORY_SCRIPT = """
import datetime as dt, json, resource, sys, time
from mlops.config import load_settings
from mlops.scoring import score_day
home, day, threads = sys.argv[1], dt.date.fromisoformat(sys.argv[2]), int(sys.argv[3])
settings = load_settings(env={"MLOPS_HOME": home}, conf={"model": {"nthread": threads}})
started = time.perf_counter()
stats = score_day(settings, day, run_id="mem")
seconds = time.perf_counter() - started
maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB
hwm = None
try:
    with open("/proc/self/status") as status:
        hwm = next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmHWM:"))
except (OSError, StopIteration):
    pass
print(json.dumps({"rows": stats["rows"], "chunks": stats["chunks"], "seconds": seconds, "ru_maxrss": maxrss,
                  "vm_hwm": hwm, "peak_rss": hwm if hwm is not None else maxrss,
                  "model_version": stats["model_version"]}))
"""


def _score_in_subprocess(home: Path, day: dt.date) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", MEMORY_SCRIPT, str(home), day.isoformat(), str(THREADS)],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_scoring_memory(env: dict[str, Any], bench_results: BenchResults) -> None:
    """Peak RSS of a fresh process scoring 10M rows <= 1.2x that of one scoring 1M rows."""
    home, lake = env["home"], env["lake"]
    started = time.perf_counter()
    partition = _land(lake, BIG_DAY, BIG_ROWS)
    generated = time.perf_counter() - started
    try:
        small = _score_in_subprocess(home, DAY)
        big = _score_in_subprocess(home, BIG_DAY)
    finally:
        lake.remove(partition)
        lake.remove(lake.partition("scores", BIG_DAY))
    ratio = big["peak_rss"] / small["peak_rss"]
    design = env["pinned"]["design"].version
    print(
        f"\nscoring memory: fresh process per day, score_day, champion v{design} (design-sized); "
        f"10M day generated in {generated:.0f} s"
    )
    print(
        f"{'day':<10} {'rows':>11} {'chunks':>6} {'seconds':>8} {'rows/s':>10} {'VmHWM MB':>9} {'x 1M':>6} "
        f"{'ru_maxrss MB':>13}"
    )
    for label, result in (("1M", small), ("10M", big)):
        print(
            f"{label:<10} {result['rows']:>11,} {result['chunks']:>6} {result['seconds']:>8.2f} "
            f"{result['rows'] / result['seconds']:>10,.0f} {result['peak_rss'] / 2**20:>9.0f} "
            f"{result['peak_rss'] / small['peak_rss']:>6.3f} {result['ru_maxrss'] / 2**20:>13.0f}"
        )
    print(f"peak RSS (VmHWM) 10M / 1M = {ratio:.3f} (target <= {MEMORY_TARGET})")

    RESULTS["memory"] = {"1M": small, "10M": big, "ratio_10m_to_1m": ratio, "target_ratio": MEMORY_TARGET,
                         "row_group": ROW_GROUP}  # fmt: skip
    _write_json()

    bench_results.add("scoring memory: peak RSS of score_day on 10M rows, vs on 1M rows (fresh processes)",
                      big["peak_rss"] / 2**20, small["peak_rss"] / 2**20, "MB", f"<= {MEMORY_TARGET}")  # fmt: skip
    bench_results.add("scoring time: score_day rows/s on 10M rows, vs on 1M rows (fresh processes, model load incl.)",
                      big["rows"] / big["seconds"], small["rows"] / small["seconds"], "rows/s",
                      f">= {THROUGHPUT_TARGET}")  # fmt: skip
    assert small["rows"] == ROWS and big["rows"] == BIG_ROWS
    assert small["model_version"] == big["model_version"] == design
    assert ratio <= MEMORY_TARGET, f"10M rows peak at {ratio:.3f}x the RSS of 1M rows (target <= {MEMORY_TARGET})"
