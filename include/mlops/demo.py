"""``make demo``: two models side by side through the real DAGs, on embedded defaults (SQLite Airflow, local
lake and DVC remote). Each model is a file of ``include/models`` and has its own five DAGs, lake and MLflow model.

1. lands about two weeks of synthetic card transactions (``card_transactions``), corrupts one day on purpose,
   and six days of customer-renewal snapshots (``customer_churn``: string ids and labels, ~22 % churn, labels two
   days late); runs each model's real ``<model>__data_validation`` DAG for every day: a table of verdicts per model;
2. trains, gates and promotes each model's first champion through ``<model>__continuous_training``: the
   champion and every gate (the churn model's gates are its own, sized for its positive rate);
3. scores through ``<model>__batch_scoring``: rows, rows/s and the model version used; checks the churn model's
   last day with ``customer_churn__drift_monitoring``;
4. card transactions: lands two more days with covariate drift from the second one, validates and scores them,
   runs ``drift_monitoring`` on both (the clean day triggers nothing; the drifted day queues
   ``continuous_training`` with its evidence), runs that queued training as the scheduler would, and re-scores
   the drifted day: scoring switches to the new champion; then a table of both models;
5. simulates four weeks of operation with the same steps, no Airflow (``mlops simulate``, the short scenario;
   the default one is two months): prints the operating record (detection and recovery times, false
   triggers, trainings, quarantines) and the path of its HTML report.

Every DAG run is Airflow's own ``dag.test()`` (what ``airflow dags test`` runs), one after another in one
Airflow process (:mod:`mlops.airflow.runner`) that pays Airflow's start-up once; each run's log is a file of
``demo-logs/``. A step counter with the elapsed and expected time runs beside (:mod:`mlops.progress`).
Re-running it gives the same validation tables: days are re-landed identically and keep their DVC revisions.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any

from mlops import aliases, models
from mlops.config import PROJECT_ROOT, Settings, load_settings
from mlops.data.faults import FAULTS, inject_fault
from mlops.data.lake import REASON, STATS, SUCCESS, VALIDATED, Lake
from mlops.data.landing import land_days, source_of
from mlops.drift import history_path
from mlops.progress import Steps, clock
from mlops.runtime import embedded_env
from mlops.simulation import SCENARIOS_DIR, load_scenario, simulate
from mlops.simulation.summary import format_table

#: The demo's two models (their files: include/models/<name>.yaml).
CARDS, CHURN = "card_transactions", "customer_churn"
#: The simulation the demo ends with: the default scenario's story in four weeks (`mlops simulate` runs two months).
DEMO_SCENARIO = SCENARIOS_DIR / "short.yaml"
#: Seconds each step took with the default arguments, a fresh home, on 2 cores shared with other jobs (install
#: excluded; docs/demo.md). A run's own measurements (demo-logs/timings.json) replace them on the next run in
#: the same home.
EXPECTED = {"land": 4, "validate_cards": 72, "validate_churn": 12, "train_cards": 20, "train_churn": 9, "score": 19,
            "churn_drift": 17, "card_drift": 33, "retrain": 35, "simulate": 74}  # fmt: skip


class DemoFailed(RuntimeError):
    """A step did not do what the demo expects; the message says which and where its log is."""


class DagRunner:
    """The demo's Airflow: one ``python -m mlops.airflow.runner`` process that runs each DAG run with ``dag.test()``.

    Started first, so that Airflow's start-up (DB migration, DAG parse) overlaps the landing of the data.
    """

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.log = logs / "airflow-runner.log"
        read_fd, write_fd = os.pipe()
        with self.log.open("w") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "mlops.airflow.runner", "--reply-fd", str(write_fd)],
                env=env, stdin=subprocess.PIPE, stdout=out, stderr=subprocess.STDOUT, text=True, pass_fds=(write_fd,),
            )  # fmt: skip
        os.close(write_fd)
        self.replies = os.fdopen(read_fd)

    def ask(self, request: dict[str, Any]) -> dict[str, Any]:
        assert self.process.stdin is not None
        try:
            self.process.stdin.write(json.dumps(request) + "\n")
            self.process.stdin.flush()
        except BrokenPipeError:
            pass  # it stopped: the empty answer below says so
        answer = self.replies.readline()
        if not answer:
            raise DemoFailed(f"the Airflow process stopped (exit code {self.process.wait()}); see {self.log}")
        return dict(json.loads(answer))

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait()
        self.replies.close()


class Demo:
    """One model's part of the demo: its DAGs (``<model>__<kind>``), its lake and its MLflow model."""

    def __init__(self, runner: DagRunner, settings: Settings, steps: Steps) -> None:
        self.runner, self.settings, self.steps, self.say = runner, settings, steps, steps.say
        self.model = settings.model_name
        self.lake = Lake.from_settings(settings)
        self.logs = settings.home / "demo-logs"
        self.auc_pr: float | None = None  # its holdout AUC-PR, for the closing table

    def dag(self, kind: str, day: dt.date, conf: dict[str, Any] | None = None, expect_ok: bool = True) -> float:
        """One run of ``<model>__<kind>`` for ``day`` (``airflow dags test`` in the Airflow process), logged to a
        file; returns its duration."""
        dag_id = self.settings.dag_id(kind)
        log_file = self.logs / f"{dag_id}_{day}.log"
        self.steps.detail(f"{dag_id} {day}")
        started = time.monotonic()
        answer = self.runner.ask({"dag_id": dag_id, "day": day.isoformat(), "conf": conf, "log": str(log_file)})
        seconds = time.monotonic() - started
        ok = answer["state"] == "success"
        state = "succeeded" if ok else "failed"
        self.say(f"    {dag_id} {day}: run {state} in {seconds:.0f} s  (log: {log_file})")
        if ok != expect_ok:
            raise DemoFailed(f"{dag_id} {day}: run {state}, expected {'success' if expect_ok else 'failure'}; "
                             f"see {log_file}")  # fmt: skip
        return seconds

    # -- 1. validation -------------------------------------------------------------------------
    def outcome(self, day: dt.date) -> tuple[int | str, str, str]:
        """(rows, verdict, DVC revision or quarantine reason) for the table."""
        marker = self.lake.marker("raw", day, VALIDATED)
        if self.lake.exists(marker):
            data = self.lake.read_json(marker)
            return data["rows"], "validated", f"DVC {data['dvc']['revision'][:12]}"
        reason = self.lake.marker("quarantine", day, REASON)
        if self.lake.exists(reason):
            first = self.lake.read_json(reason)["failures"][0]
            where = f"column {first['column']}" if first["column"] else "table"
            detail = f"[{first['rule']}] {where}: {first['observed']} (expected {first['expected']})"
            return self.lake.read_json(reason)["rows"], "QUARANTINED", detail
        return "-", "missing", "no marker and no quarantine (see the run log)"

    def validate(self, days: list[dt.date], bad_day: dt.date | None) -> None:
        for day in days:
            self.dag("data_validation", day, expect_ok=day != bad_day)
        self.say()
        self.say(f"{'date':<12}{'rows':>8}  {'verdict':<12} DVC revision / quarantine reason")
        self.say("-" * 100)
        for day in days:
            rows, verdict, detail = self.outcome(day)
            self.say(f"{day.isoformat():<12}{rows:>8}  {verdict:<12} {detail}")

    # -- 2. training ---------------------------------------------------------------------------
    def champion(self) -> str:
        version = aliases.alias_version(self.settings, models.CHAMPION)
        if version is None:
            raise DemoFailed(f"no {self.model} champion after training; see the "
                             f"{self.settings.dag_id('continuous_training')} log")  # fmt: skip
        return version

    def train(self, as_of: dt.date, conf: dict[str, Any]) -> str:
        self.dag("continuous_training", as_of, conf)
        champion = self.champion()
        version = models.pin_version(self.settings, champion)
        report = models.load_artifact(self.settings, version.run_id, models.Artifacts.GATE_REPORT_JSON)
        self.say(f"champion: {self.model} v{champion}  (MLflow run {version.run_id})")
        self.say(f"    {'gate':<40} {'value':>10}  {'threshold':<34} result")
        for check in report["checks"]:
            value = check["value"]
            shown = f"{value:.4f}" if isinstance(value, float) else str(value)
            verdict = "pass" if check["passed"] else "FAIL"
            self.say(f"    {check['name']:<40} {shown:>10}  {str(check['threshold'])[:34]:<34} {verdict}")
        self.auc_pr = report.get("candidate_metrics", {}).get("auc_pr")  # the raw value, whatever the gates read
        return champion

    # -- 3. scoring ----------------------------------------------------------------------------
    def score(self, day: dt.date, again: bool = False) -> dict[str, Any]:
        """A batch_scoring run for ``day``: it scores every validated day still waiting; ``again`` re-scores ``day``."""
        self.dag("batch_scoring", day, {"date": day.isoformat()} if again else None)
        stats = self.lake.read_json(self.lake.marker("scores", day, STATS))
        rate = stats["rows"] / max(stats["scoring_seconds"], 1e-9)
        self.say(f"    scores/dt={day}: {stats['rows']:,} rows scored with v{stats['model_version']} at {rate:,.0f} "
                 f"rows/s (read + features + predict + write), positive rate {stats['positive_rate']:.4f}")  # fmt: skip
        return stats

    def scored(self) -> str:
        """How many validated days have scores, e.g. ``6 of 6 (2026-11-01..2026-11-06)``."""
        scored, validated = self.lake.days("scores", SUCCESS), self.lake.days("raw", VALIDATED)
        span = f" ({scored[0]}..{scored[-1]})" if scored else ""
        return f"{len(scored)} of {len(validated)}{span}"

    # -- 4. drift ------------------------------------------------------------------------------
    def check_drift(self, day: dt.date) -> dict[str, Any]:
        """A drift_monitoring run for ``day`` (it checks every scored day not yet checked); the day's entry."""
        self.dag("drift_monitoring", day)
        result = self.lake.read_json(history_path(self.lake, self.settings.dataset.name, day))
        self.say(f"    drift dt={day}: breached={result['breached']} severe={result.get('severe')} "
                 f"features {result['breached_features']} -> triggered={result['triggered']}")  # fmt: skip
        return result

    def queued_training_conf(self, airflow_home: Path) -> dict[str, Any] | None:
        """The conf of the newest queued continuous_training run of this model (what drift_monitoring triggered)."""
        with closing(sqlite3.connect(airflow_home / "airflow.db")) as db:
            row = db.execute("SELECT conf FROM dag_run WHERE dag_id = ? AND state = 'queued' ORDER BY id DESC LIMIT 1",
                             (self.settings.dag_id("continuous_training"),)).fetchone()  # fmt: skip
        if row is None:
            return None
        return json.loads(row[0]) if isinstance(row[0], str | bytes) else row[0]

    def land(self, start: dt.date, days: int, rows: int, seed: int, drift: Any = None) -> None:
        source = source_of(self.settings)
        self.say(f"    {self.model}: landing {days} day(s) x {rows:,} {source.rows} in {self.settings.lake_uri}")
        land_days(self.settings, start, days, rows, seed, drift=drift)


def _expected(timings: Path) -> tuple[dict[str, float], str]:
    """Each step's expected seconds and where they come from: this home's last run, else the 2-core figures."""
    try:
        measured = {k: float(v) for k, v in json.loads(timings.read_text()).items() if k in EXPECTED}
    except (OSError, ValueError, AttributeError):
        measured = {}
    source = "as this home's last run took" if measured else "on 2 cores"
    return {**EXPECTED, **measured}, source


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mlops.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--start", type=dt.date.fromisoformat, default=dt.date(2026, 11, 1))
    parser.add_argument("--days", type=int, default=14, help="card-transaction days (%(default)s)")
    parser.add_argument("--rows-per-day", type=int, default=20_000, help="card transactions a day (%(default)s)")
    parser.add_argument("--churn-days", type=int, default=6, help="customer-churn days (%(default)s)")
    parser.add_argument("--churn-rows-per-day", type=int, default=3_000, help="renewals a day (%(default)s)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--corrupt-day", type=int, default=10, help="which card day (1-based) to corrupt")
    parser.add_argument("--fault", choices=sorted(FAULTS), default="out_of_range")
    parser.add_argument("--scenario", default=str(DEMO_SCENARIO), help="the simulation at the end (%(default)s)")
    parser.add_argument("--no-simulation", action="store_true", help="skip the last step, the simulation")
    args = parser.parse_args(argv)
    started = time.monotonic()

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    env = embedded_env()
    settings = load_settings(env=env, model=CARDS)
    logs = settings.home / "demo-logs"
    logs.mkdir(parents=True, exist_ok=True)
    expected, source = _expected(logs / "timings.json")
    if args.no_simulation:
        del expected["simulate"]
    steps = Steps(len(expected), expected)
    say = steps.say
    say(f"==> MLOPS_HOME={settings.home}  AIRFLOW_HOME={env['AIRFLOW_HOME']}  models: {CARDS}, {CHURN}")
    say(f"==> {steps.total} steps, about {clock(steps.expected_total())} in all ({source}); each DAG run is "
        f"Airflow's dag.test() (what `airflow dags test` runs), its log under {logs}")  # fmt: skip
    runner = DagRunner(env, logs)
    try:
        run(args, env, runner, steps)
    except DemoFailed as exc:
        say(f"DEMO FAILED: {exc}")
        return 1
    finally:
        runner.close()
    if not args.no_simulation:
        with steps.step("simulate", "simulated weeks of operation, no Airflow"):
            simulate_operation(settings, Path(args.scenario), say)
    (logs / "timings.json").write_text(json.dumps({k: round(v, 1) for k, v in steps.measured.items()}, indent=2))
    say(f"Demo finished in {clock(time.monotonic() - started)} (steps' expected times: {logs / 'timings.json'}).")
    return 0


def run(args: argparse.Namespace, env: dict[str, str], runner: DagRunner, steps: Steps) -> None:
    """Steps 1 to 9, through the DAGs; then the closing tables."""
    say = steps.say
    cards, churn = (Demo(runner, load_settings(env=env, model=name), steps) for name in (CARDS, CHURN))
    settings = cards.settings
    days = [args.start + dt.timedelta(days=i) for i in range(args.days)]
    churn_days = [args.start + dt.timedelta(days=i) for i in range(args.churn_days)]
    bad_day = days[args.corrupt_day - 1]

    with steps.step("land", "landing the days of both models"):
        cards.land(args.start, args.days, args.rows_per_day, args.seed)
        fault = inject_fault(cards.lake, bad_day, args.fault, settings.dataset.id_column)
        say(f"    {CARDS}: corrupted {bad_day} on purpose: {fault.description} ({fault.name})")
        churn.land(args.start, args.churn_days, args.churn_rows_per_day, args.seed)
    with steps.step("validate_cards", f"validating {len(days)} {CARDS} days"):
        cards.validate(days, bad_day)
    with steps.step("validate_churn", f"validating {len(churn_days)} {CHURN} days"):
        churn.validate(churn_days, None)
    for demo, key, as_of in ((cards, "train_cards", days[-1]), (churn, "train_churn", churn_days[-1])):
        with steps.step(key, f"{demo.model}: training, gates, champion"):
            say(f"    {demo.settings.dag_id('continuous_training')} as of {as_of} (backend "
                f"{demo.settings.training.backend}, promotion {demo.settings.promotion.policy})")  # fmt: skip
            demo.train(as_of, {"reason": "make demo"})
    first_champion = cards.champion()

    with steps.step("score", "scoring with each champion"):
        say("    batch_scoring: the first run scores every validated day waiting")
        for day in days[-2:]:
            cards.score(day)
        churn.score(churn_days[-1])
        for demo in (cards, churn):
            say(f"    {demo.model}: scores exist for {demo.scored()} validated days: each scored once, by the "
                "first run")  # fmt: skip

    # The champion's own days (its training window and the newest days its reference profile is made of)
    # are never drift-checked: a new day arrives, is validated and scored, then checked.
    churn_next = churn_days[-1] + dt.timedelta(days=1)
    with steps.step("churn_drift", f"{CHURN}: a new day, its drift check"):
        churn.land(churn_next, 1, args.churn_rows_per_day, args.seed)
        churn.dag("data_validation", churn_next)
        churn.score(churn_next)
        say(f"    {churn.settings.dag_id('drift_monitoring')} checks every scored day not checked yet (never the "
            "champion's own)")  # fmt: skip
        churn.check_drift(churn_next)

    # Past the training cooldown (drift.cooldown_days after the data day the champion was trained on).
    clean = days[-1] + dt.timedelta(days=settings.drift.cooldown_days)
    drifted = clean + dt.timedelta(days=1)
    shift = source_of(settings).drift(drifted, "covariate", ("amount", "device_risk_score"), 2.0)
    with steps.step("card_drift", f"{CARDS}: a clean and a drifted day"):
        say(f"    {clean} clean, {drifted} with a covariate shift of amount and device risk")
        cards.land(clean, 2, args.rows_per_day, args.seed, drift=shift)  # + labels that came due
        for day in (clean, drifted):
            cards.dag("data_validation", day)
            cards.score(day)
            cards.check_drift(day)
        conf = cards.queued_training_conf(Path(env["AIRFLOW_HOME"]))
        if conf is None:
            raise DemoFailed(f"{cards.settings.dag_id('drift_monitoring')} did not queue continuous_training for "
                             f"{drifted}")  # fmt: skip
        evidence = conf["drift"]
        say(f"    queued {cards.settings.dag_id('continuous_training')} with conf: reason={conf['reason']!r}, "
            f"breached={sorted(evidence['breached_features'])}, report={evidence['report_uri']}")  # fmt: skip

    with steps.step("retrain", f"{CARDS}: the queued retraining, a re-score"):
        say("    running that queued training now (a scheduler would; `dags test` runs one DAG at a time)")
        new_champion = cards.train(drifted, conf)
        say(f"    re-scoring {drifted}: scoring follows the champion (v{first_champion} -> v{new_champion})")
        stats = cards.score(drifted, again=True)
        if stats["model_version"] != new_champion:
            raise DemoFailed(f"scores of {drifted} carry v{stats['model_version']}, not the champion v{new_champion}")
        errors = runner.ask({"import_errors": True})["import_errors"]

    say()
    say(models_table([cards, churn]))
    say()
    say(f"Import errors: {'none' if not errors else chr(10).join(errors)}")
    for demo in (cards, churn):
        lake = demo.lake
        say(f"{demo.model}:")
        say(f"  Data Docs:     {lake.url(lake.data_docs('index.html'))}")
        say(f"  Drift history: {lake.url(lake.drift_history_dir(demo.settings.dataset.name))} (reports beside it)")
    say(f"MLflow:        {settings.mlflow_tracking_uri}  (`make up` serves the UI)")
    say("Ledger:        .venv/bin/mlops models  (one model: --model NAME)")
    say("Through the DAGs: validated -> trained -> gated -> champion -> scored -> drift -> retrained -> re-scored, "
        "for two models side by side.")  # fmt: skip


def models_table(demos: list[Demo]) -> str:
    """The closing table: per model its DAGs' prefix, champion, holdout AUC-PR, validated and scored days."""
    lines = [f"{'model':<20} {'champion':>8}  {'AUC-PR':>7}  {'validated':>9}  {'quarantined':>11}  scored days",
             "-" * 100]  # fmt: skip
    for demo in demos:
        auc_pr = demo.auc_pr
        shown = f"{auc_pr:.4f}" if isinstance(auc_pr, float) else "-"
        validated, quarantined = len(demo.lake.days("raw", VALIDATED)), len(demo.lake.days("quarantine"))
        lines.append(f"{demo.model:<20} {'v' + demo.champion():>8}  {shown:>7}  {validated:>9}  {quarantined:>11}  "
                     f"{demo.scored()}")  # fmt: skip
    return "\n".join(lines)


def simulate_operation(settings: Settings, path: Path, say: Callable[[str], None]) -> None:
    """Step 5: weeks of operation in minutes, in a home of its own; the operating record and its report."""
    scenario = load_scenario(path)
    shown = path.relative_to(PROJECT_ROOT) if path.is_relative_to(PROJECT_ROOT) else path
    say(f"    {scenario.days} days (`mlops simulate --scenario {shown}`): the same steps without Airflow, beside a "
        "frozen and an oracle model; two months: `mlops simulate`")  # fmt: skip
    home = settings.home / "simulation" / scenario.name
    summary, report = simulate(scenario, home, settings.home / "reports" / "simulation" / scenario.name, say=say)
    say()
    say(format_table(summary))
    say(f"Report:        {report}")


if __name__ == "__main__":
    sys.exit(main())
