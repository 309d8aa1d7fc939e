"""Training benchmark: our tracked training step (``fit_and_log``) against raw ``xgb.train``, in one run.

Target (docs/testing.md, "Benchmarks"): our training step takes at most 1.15x raw ``xgb.train`` (hist, depth 6, 100
rounds, 2 threads, 1M rows), tracking included.

Both sides run in this process on the same float32 arrays, with the same parameters read from one
settings object (``{**settings.model.params, "device": "cpu", "seed": ..., "nthread": 2}``) and the same
validation set evaluated every round (AUC-PR on 200k rows): the reference hist / depth 6 / eta 0.1 / 2 threads
over the configured defaults (subsample and colsample_bytree 0.8). What each timed region holds:

* raw: ``DMatrix`` for train and valid + ``xgb.train(params, dtrain, 100, evals=[(dvalid, "valid")])``.
* ours: everything ``fit_and_log`` does — MLflow run (sqlite under a tmp MLOPS_HOME), params, the same
  ``DMatrix`` construction and ``xgb.train`` (plus early stopping and a progress callback), metrics,
  feature importance, SHAP summary, reference profile (scores the 1M training rows) and the model
  (``mlflow.xgboost.log_model`` with signature, input example and pip requirements).

Data: our own generator (``generate_day``), 5 days x 200k rows for training and one later day of 200k
rows for validation, through ``build_matrix``: 15 features (11 transaction columns incl. 3 categorical
codes, and 4 noise columns), fraud rate ~1%. The reference baseline used 21 noisy features, so absolute seconds differ;
the target is the ratio.

Early stopping is set to ``early_stopping_rounds == num_boost_round == 100``: it cannot stop training
early, so both sides grow exactly 100 trees. ``fit_booster`` then returns the booster cut at its best
iteration, so the check is: our logged model equals the raw booster's first ``best_iteration + 1`` trees
(predictions on the validation set) and both report the same best AUC-PR.

One warm-up of each side (10k rows, 5 rounds, same MLOPS_HOME, so the MLflow schema is created there)
keeps imports and first-call costs out of the timings; then raw and ours alternate, REPEATS times each
(interleaved, who goes first swapping every repeat, so load from other processes hits both alike), and
medians are compared. Our run's own ``fit_seconds`` metric splits our time into fit and tracking.
"""

from __future__ import annotations

import datetime as dt
import gc
import json
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from bench_results import BenchResults

from mlops.config import ModelSpec, Settings, load_settings
from mlops.data.contract import Contract
from mlops.data.generator import generate_day
from mlops.features import FeatureSpec, build_matrix, feature_spec
from mlops.training.snapshot import SplitData
from mlops.training.train import TrainResult, fit_and_log

pytestmark = pytest.mark.bench

TRAIN_DAYS = 5
ROWS_PER_DAY = 200_000  # 5 x 200k = 1M training rows; validation: one more day of 200k
ROUNDS = 100
THREADS = 2
#: Each side. Single runs scatter several-fold when other processes load the 2 cores, so 5 (not 3): a pair takes
#: ~7 s + ~9 s on a quiet machine (the whole module ~1m45s), about twice that under load.
REPEATS = int(os.environ.get("MLOPS_BENCH_REPEATS", "5"))
TARGET_RATIO = 1.15
SEED = 7
FIRST_DAY = dt.date(2024, 1, 1)
WARMUP_ROWS = 10_000
WARMUP_ROUNDS = 5
PREDICTION_TOLERANCE = 1e-6
#: The reference setting over the configured defaults (subsample / colsample_bytree / min_child_weight stay as
#: configured). Spelled out in full because a conf ``model.params`` replaces the whole default dict.
MODEL = {
    "params": {
        **ModelSpec().params,
        "objective": "binary:logistic",
        "eval_metric": "aucpr",
        "tree_method": "hist",
        "max_depth": 6,
        "eta": 0.1,
    },
    "nthread": THREADS,
}


def _settings(home: Path, rounds: int) -> Settings:
    """Early stopping patience = the round budget: it can never stop before the last round."""
    model = {**MODEL, "num_boost_round": rounds, "early_stopping_rounds": rounds}
    return load_settings(env={"MLOPS_HOME": str(home)}, conf={"model": model})


def raw_params(settings: Settings) -> dict[str, Any]:
    """Exactly what ``fit_booster`` passes to ``xgb.train`` (it adds nthread when configured)."""
    return {**settings.model.params, "device": "cpu", "seed": settings.training.seed, "nthread": THREADS}


def _split(days: list[dt.date], rows: int, spec: FeatureSpec) -> SplitData:
    """Generated days joined with their labels, as ``load_split`` does (inner join, sorted by id)."""
    generated = [generate_day(day, rows, SEED) for day in days]
    table = pa.concat_tables([transactions for transactions, _ in generated])
    labels = pa.concat_tables([labels for _, labels in generated])
    joined = table.join(labels, "transaction_id", join_type="inner").sort_by("transaction_id")
    y = (joined.column("is_fraud").to_numpy() == 1).astype(np.float32)
    return SplitData(build_matrix(joined, spec), y, joined.column("transaction_id").to_numpy(), joined)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    home = tmp_path_factory.mktemp("training-bench")
    settings = _settings(home, ROUNDS)
    spec = feature_spec(settings, Contract.load(settings.contract_path))
    train_days = [FIRST_DAY + dt.timedelta(days=i) for i in range(TRAIN_DAYS)]
    valid_day = FIRST_DAY + dt.timedelta(days=TRAIN_DAYS)
    return {
        "settings": settings,
        "warmup_settings": _settings(home, WARMUP_ROUNDS),  # same MLOPS_HOME: the MLflow DB exists when timed
        "spec": spec,
        "train": _split(train_days, ROWS_PER_DAY, spec),
        "valid": _split([valid_day], ROWS_PER_DAY, spec),
        "warmup_train": _split([FIRST_DAY], WARMUP_ROWS, spec),
        "warmup_valid": _split([valid_day], WARMUP_ROWS, spec),
    }


def run_raw(settings: Settings, train: SplitData, valid: SplitData) -> tuple[Any, list[float]]:
    """The baseline: DMatrix construction and plain xgb.train, nothing else."""
    import xgboost as xgb

    history: dict[str, dict[str, list[float]]] = {}
    booster = xgb.train(
        raw_params(settings),
        xgb.DMatrix(train.X, label=train.y),
        settings.model.num_boost_round,
        evals=[(xgb.DMatrix(valid.X, label=valid.y), "valid")],
        verbose_eval=False,
        evals_result=history,  # filled from the evaluation xgb.train does anyway
    )
    return booster, history["valid"]["aucpr"]


def run_ours(settings: Settings, spec: FeatureSpec, train: SplitData, valid: SplitData, name: str) -> TrainResult:
    """Our tracked training step, as ``train()`` calls it after loading the snapshot."""
    tags = {"mlops.backend": "local", "mlops.trigger_reason": "benchmark", "mlops.snapshot": json.dumps(name)}
    artifacts = {"snapshot.json": {"dataset": settings.dataset.name, "as_of": name, "rows": len(train.y)}}
    return fit_and_log(settings, spec, train, valid, tags, name, "cpu", artifacts=artifacts)


def _timed(run: Callable[[], Any]) -> tuple[Any, float, float]:
    """(result, wall seconds, process CPU seconds); a collection first, so no run pays for the last one."""
    gc.collect()
    wall, cpu = time.perf_counter(), time.process_time()
    result = run()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def test_training_overhead(data: dict[str, Any], bench_results: BenchResults) -> None:
    """Ours vs raw xgb.train on 1M rows, 100 rounds, 2 threads; ours must stay within 1.15x raw."""
    import mlflow
    import xgboost as xgb

    settings, spec, train, valid = data["settings"], data["spec"], data["train"], data["valid"]
    warm = data["warmup_settings"]
    run_raw(warm, data["warmup_train"], data["warmup_valid"])
    run_ours(warm, spec, data["warmup_train"], data["warmup_valid"], "warmup")

    load_before = os.getloadavg()[0]  # other processes on the machine: the first suspect when runs scatter
    wall: dict[str, list[float]] = {"raw": [], "ours": []}
    cpu: dict[str, list[float]] = {"raw": [], "ours": []}
    raw_runs: list[tuple[Any, list[float]]] = []
    ours_runs: list[TrainResult] = []
    for repeat in range(REPEATS):  # interleaved, so drift in machine load hits both alike
        for side in ("raw", "ours") if repeat % 2 == 0 else ("ours", "raw"):
            if side == "raw":
                result, seconds, cpu_seconds = _timed(lambda: run_raw(settings, train, valid))
                raw_runs.append(result)
            else:
                result, seconds, cpu_seconds = _timed(lambda r=repeat: run_ours(settings, spec, train, valid, f"b{r}"))
                ours_runs.append(result)
            wall[side].append(seconds)
            cpu[side].append(cpu_seconds)

    load_after = os.getloadavg()[0]
    # Our overhead split, from the run itself: fit_seconds = fit_booster (DMatrix + xgb.train), the rest is tracking.
    client = mlflow.MlflowClient(settings.mlflow_tracking_uri)
    fit = [client.get_run(result.run_id).data.metrics["fit_seconds"] for result in ours_runs]
    tracking = [total - fitted for total, fitted in zip(wall["ours"], fit, strict=True)]
    raw_s, ours_s = statistics.median(wall["raw"]), statistics.median(wall["ours"])
    fit_s, tracking_s = statistics.median(fit), statistics.median(tracking)
    ratio = ours_s / raw_s
    best_ratio = min(wall["ours"]) / min(wall["raw"])  # noise only ever adds time: a second opinion
    paired = [ours / raw for ours, raw in zip(wall["ours"], wall["raw"], strict=True)]  # same repeat, back to back

    # Same parameters, same model: every raw run grows 100 trees and is deterministic; our logged model is
    # the raw booster cut at the same best iteration, with the same best score.
    raw_booster, raw_history = raw_runs[0]
    best = int(np.argmax(raw_history))  # first maximum, as xgboost's EarlyStopping keeps it
    reference = raw_booster[: best + 1].inplace_predict(valid.X)
    ours_model = mlflow.xgboost.load_model(ours_runs[0].model_uri)
    ours_diff = float(np.max(np.abs(ours_model.inplace_predict(valid.X) - reference)))
    raw_full = raw_booster.inplace_predict(valid.X)
    repeat_diff = max(float(np.max(np.abs(b.inplace_predict(valid.X) - raw_full))) for b, _ in raw_runs)

    features = len(spec.names)
    print(
        f"\ntraining, {len(train.y):,} x {features} features (valid {len(valid.y):,}), hist depth 6, "
        f"{ROUNDS} rounds, {THREADS} threads, xgboost {xgb.__version__}; median of {REPEATS} (after 1 warm-up); "
        f"load average {load_before:.1f} -> {load_after:.1f} on {os.cpu_count()} cores"
    )
    print(f"{'step':<36} {'seconds':>8} {'x raw':>7} {'cpu s':>8}   wall runs")
    rows = [
        ("raw (DMatrix + xgb.train)", raw_s, statistics.median(cpu["raw"]), wall["raw"]),
        ("ours (fit_and_log)", ours_s, statistics.median(cpu["ours"]), wall["ours"]),
        ("  of which fit_booster", fit_s, None, fit),
        ("  of which tracking + artifacts", tracking_s, None, tracking),
    ]
    for label, seconds, cpu_seconds, runs in rows:
        cpu_text = f"{cpu_seconds:>8.2f}" if cpu_seconds is not None else " " * 8
        listed = ", ".join(f"{value:.2f}" for value in runs)
        print(f"{label:<36} {seconds:>8.2f} {seconds / raw_s:>7.3f} {cpu_text}   {listed}")
    print(
        f"ours / raw = {ratio:.3f} (target <= {TARGET_RATIO}); per-repeat ratios "
        f"{', '.join(f'{value:.3f}' for value in paired)}; best / best = {best_ratio:.3f}; "
        f"tracking = {tracking_s / raw_s:.1%} of raw"
    )
    print(
        f"same model: raw grew {raw_booster.num_boosted_rounds()} trees, best iteration {best} "
        f"(AUC-PR {raw_history[best]:.5f}); ours kept {ours_runs[0].rounds} trees (AUC-PR "
        f"{ours_runs[0].valid_aucpr:.5f}); max |ours - raw| on valid = {ours_diff:.2e}, raw repeats {repeat_diff:.2e}"
    )

    out = os.environ.get("MLOPS_BENCH_OUT")
    if out:
        payload = {
            "benchmark": "training",
            "train_rows": len(train.y),
            "valid_rows": len(valid.y),
            "features": features,
            "rounds": ROUNDS,
            "threads": THREADS,
            "repeats": REPEATS,
            "load_average": [load_before, load_after],
            "params": raw_params(settings),
            "xgboost": xgb.__version__,
            "mlflow": mlflow.__version__,
            "seconds": {"raw": raw_s, "ours": ours_s, "ours_fit": fit_s, "ours_tracking": tracking_s},
            "runs": {"raw": wall["raw"], "ours": wall["ours"], "ours_fit": fit, "ours_tracking": tracking},
            "cpu_seconds": cpu,
            "ratio_ours_to_raw": ratio,
            "ratio_per_repeat": paired,
            "ratio_of_best_runs": best_ratio,
            "target_ratio": TARGET_RATIO,
            "equivalence": {
                "raw_trees": raw_booster.num_boosted_rounds(),
                "best_iteration": best,
                "ours_trees": ours_runs[0].rounds,
                "raw_best_aucpr": raw_history[best],
                "ours_valid_aucpr": ours_runs[0].valid_aucpr,
                "max_abs_prediction_diff": ours_diff,
                "raw_repeat_max_abs_diff": repeat_diff,
            },
        }
        Path(out).mkdir(parents=True, exist_ok=True)
        (Path(out) / "training.json").write_text(json.dumps(payload, indent=2))

    bench_results.add(f"training, 1M rows, {ROUNDS} rounds, {THREADS} threads (tracking, SHAP, profile, model logged), "
                      "vs raw xgb.train", ours_s, raw_s, "s", f"<= {TARGET_RATIO}")  # fmt: skip
    assert all(b.num_boosted_rounds() == ROUNDS for b, _ in raw_runs), "raw must grow exactly 100 trees"
    assert all(result.rounds == best + 1 for result in ours_runs), "ours must keep the trees up to the best round"
    assert all(result.valid_aucpr == pytest.approx(raw_history[best], abs=1e-9) for result in ours_runs)
    assert repeat_diff == 0.0, "raw xgb.train is not deterministic across repeats: timings compare different work"
    assert ours_diff < PREDICTION_TOLERANCE, f"our model differs from raw xgb.train's by {ours_diff:.2e}"
    assert ratio <= TARGET_RATIO, f"our training step takes {ratio:.3f}x raw xgb.train (target {TARGET_RATIO}x)"
