"""``make demo``: the chain end to end on embedded defaults (SQLite Airflow, local lake, local DVC remote).

It lands about two weeks of synthetic transactions, corrupts one day on purpose, runs the real
``data_validation`` DAG for every day with ``airflow dags test`` and prints what happened to each day.
Re-running it gives the same table: days are re-landed identically and DVC revisions are reused.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from pathlib import Path

from mlops.config import Settings, load_settings
from mlops.data.faults import FAULTS, inject_fault
from mlops.data.lake import REASON, VALIDATED, Lake
from mlops.data.landing import land_days
from mlops.runtime import airflow, embedded_env, ensure_airflow_db


def _say(text: str) -> None:
    print(text, flush=True)


def _outcome(lake: Lake, day: dt.date) -> tuple[int | str, str, str]:
    """(rows, verdict, DVC revision or quarantine reason) for the table."""
    marker = f"{lake.partition('raw', day)}/{VALIDATED}"
    if lake.exists(marker):
        data = lake.read_json(marker)
        return data["rows"], "validated", f"DVC {data['dvc']['revision'][:12]}"
    reason = f"{lake.partition('quarantine', day)}/{REASON}"
    if lake.exists(reason):
        data = lake.read_json(reason)
        first = data["failures"][0]
        where = f"column {first['column']}" if first["column"] else "table"
        return (
            data["rows"],
            "QUARANTINED",
            f"[{first['rule']}] {where}: {first['observed']} (expected {first['expected']})",
        )
    return "-", "missing", "no marker and no quarantine (see the run log)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mlops.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--start", type=dt.date.fromisoformat, default=dt.date(2026, 11, 1))
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--rows-per-day", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--corrupt-day", type=int, default=10, help="which day (1-based) to corrupt")
    parser.add_argument("--fault", choices=sorted(FAULTS), default="out_of_range")
    args = parser.parse_args(argv)

    env = embedded_env()
    settings = load_settings(env=env)
    lake = Lake.from_settings(settings)
    logs = settings.home / "demo-logs"
    logs.mkdir(parents=True, exist_ok=True)
    days = [args.start + dt.timedelta(days=i) for i in range(args.days)]
    bad_day = days[args.corrupt_day - 1]

    _say(f"==> MLOPS_HOME={settings.home}  AIRFLOW_HOME={env['AIRFLOW_HOME']}")
    _say("==> Airflow metadata DB: migrating (SQLite)")
    ensure_airflow_db(env)
    _say(f"==> landing {args.days} days x {args.rows_per_day:,} rows of card transactions in {settings.lake_uri}")
    land_days(settings, args.start, args.days, args.rows_per_day, args.seed)
    fault = inject_fault(lake, bad_day, args.fault, settings.dataset.id_column)
    _say(f"==> corrupted {bad_day} on purpose: {fault.description} ({fault.name})")

    _say("==> running the data_validation DAG for each day (`airflow dags test data_validation D`)")
    failures = []
    for index, day in enumerate(days, start=1):
        started = time.monotonic()
        run = airflow(["dags", "test", "data_validation", day.isoformat()], env, check=False, capture_output=True)
        log_file = logs / f"data_validation_{day}.log"
        log_file.write_text(run.stdout + run.stderr)
        state = "succeeded" if run.returncode == 0 else "failed"
        _say(
            f"    [{index:>2}/{len(days)}] {day}: run {state} in {time.monotonic() - started:.0f} s  (log: {log_file})"
        )
        expected_ok = day != bad_day
        if (run.returncode == 0) != expected_ok:
            failures.append(f"{day}: run {state}, expected {'success' if expected_ok else 'failure'}; see {log_file}")

    _say("")
    _say(f"{'date':<12}{'rows':>8}  {'verdict':<12} DVC revision / quarantine reason")
    _say("-" * 100)
    for day in days:
        rows, verdict, detail = _outcome(lake, day)
        _say(f"{day.isoformat():<12}{rows:>8}  {verdict:<12} {detail}")
    _say("")
    _say(f"Data Docs:     {Path(settings.lake_uri) / 'reports' / 'data_docs' / 'index.html'}")
    _say(f"Quarantine:    {settings.lake_uri}/quarantine/dt={bad_day}/reason.json")
    _say(f"DVC registry:  {settings.dvc_registry_path}  (remote {settings.dvc_remote_url})")
    errors = airflow(["dags", "list-import-errors", "-o", "plain"], env, check=False, capture_output=True)
    _say(f"Import errors: {'none' if 'No data found' in errors.stdout + errors.stderr else errors.stdout.strip()}")
    if failures:
        _say("DEMO FAILED:\n  " + "\n  ".join(failures))
        return 1
    _say("Validation done: good days are validated and versioned; the corrupted day is quarantined with its reason.")
    return _train(env, settings, days[-1], logs)


def _train(env: dict[str, str], settings: Settings, as_of: dt.date, logs: Path) -> int:
    """Train, gate and promote through the continuous_training DAG, then show the champion and its evidence."""
    import mlflow

    from mlops.registry import CHAMPION, Registry

    _say("")
    _say(f"==> training: `airflow dags test continuous_training {as_of}` (backend {settings.training.backend}, "
         f"promotion {settings.promotion.policy})")  # fmt: skip
    started = time.monotonic()
    conf = json.dumps({"reason": "make demo"})
    run = airflow(["dags", "test", "continuous_training", as_of.isoformat(), "-c", conf], env, check=False,
                  capture_output=True)  # fmt: skip
    log_file = logs / f"continuous_training_{as_of}.log"
    log_file.write_text(run.stdout + run.stderr)
    _say(f"    run {'succeeded' if run.returncode == 0 else 'FAILED'} in {time.monotonic() - started:.0f} s "
         f"(log: {log_file})")  # fmt: skip
    if run.returncode != 0:
        return 1
    registry = Registry(settings)
    champion = registry.alias_version(CHAMPION)
    if champion is None:
        _say("DEMO FAILED: no champion after training; see the log")
        return 1
    version = registry.client.get_model_version(settings.model_name, champion)
    mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
    report = mlflow.artifacts.load_dict(f"runs:/{version.run_id}/gate_report.json")
    _say(f"champion: {settings.model_name} v{champion}  (MLflow run {version.run_id})")
    _say(f"{'gate':<44} {'value':>12}  {'threshold':<28} result")
    for check in report["checks"]:
        value = check["value"]
        shown = f"{value:.4f}" if isinstance(value, float) else str(value)
        _say(f"{check['name']:<44} {shown:>12}  {check['threshold']:<28} {'pass' if check['passed'] else 'FAIL'}")
    _say(f"MLflow:        {settings.mlflow_tracking_uri}  (`make up` serves the UI; experiment {settings.model_name})")
    _say("Ledger:        `.venv/bin/mlops models`")
    _say("Demo finished: validated data -> trained -> gated -> champion.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
