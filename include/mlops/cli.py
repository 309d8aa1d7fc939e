"""``mlops``: every pipeline step by hand, without a scheduler (the DAGs call the same functions).

Exit codes: 0 success, 1 the step failed on its input (e.g. the data broke its contract, an unknown
version, a stale promotion), 2 bad usage or configuration, 3 a service or the disk failed (MLflow, the
ledger database, the DVC remote, the lake: retry once it is back). Every failure is one line on stderr,
secrets masked, saying what to do; ``-v`` adds the traceback. ``--json`` prints a machine-readable result
on stdout. Both (and ``--config``) go before or after the command; every ``--help`` ends with an example.
"""

from __future__ import annotations

import argparse
import datetime as dt
import errno
import json
import logging
import os
import sys
import textwrap
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from mlops.config import ConfigError, Settings, load_settings

log = logging.getLogger("mlops")


def _date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date like 2026-11-01, got {value!r}") from None


def _emit(args: argparse.Namespace, payload: Any, text: str) -> None:
    print(json.dumps(payload, indent=2, default=str) if args.json else text)


# -- commands -----------------------------------------------------------------------------------
def cmd_env(args: argparse.Namespace, settings: Settings) -> int:
    from mlops.runtime import embedded_env, shell_exports

    env = embedded_env(settings)
    _emit(
        args,
        {k: env[k] for k in sorted(env) if k.startswith(("AIRFLOW", "MLOPS", "MLFLOW_"))},
        shell_exports(env),
    )
    return 0


def cmd_generate(args: argparse.Namespace, settings: Settings) -> int:
    from mlops.data.generator import DriftSpec
    from mlops.data.landing import land_days

    drift = None
    if args.drift_start or args.drift_kind:
        if not (args.drift_start and args.drift_kind):
            raise ValueError("--drift-start and --drift-kind go together")
        features = tuple(f for f in (args.drift_features or "").split(",") if f)
        drift = DriftSpec(args.drift_start, args.drift_kind, features, args.drift_magnitude)
    landed = land_days(settings, args.start, args.days, args.rows_per_day, args.seed, drift, args.labels_until)
    rows = [f"{d.day}  {d.rows:>9,} rows  raw={'yes' if d.raw else '-'}  labels={'yes' if d.labels else '-'}"
            for d in landed]  # fmt: skip
    _emit(args, [d.__dict__ for d in landed], "\n".join(rows) + f"\nlake: {settings.lake_uri}")
    return 0


def cmd_corrupt(args: argparse.Namespace, settings: Settings) -> int:
    from mlops.data.faults import inject_fault
    from mlops.data.lake import Lake

    fault = inject_fault(Lake.from_settings(settings), args.date, args.fault, settings.dataset.id_column)
    _emit(args, fault.__dict__, f"dt={args.date}: injected {fault.name} ({fault.description})")
    return 0


def cmd_contract_infer(args: argparse.Namespace, settings: Settings) -> int:
    from mlops.data.contract import infer_contract
    from mlops.data.lake import Lake

    lake = Lake.from_settings(settings)
    partition = lake.partition("raw", args.date)
    table = lake.read_partition(partition)
    contract = infer_contract(table, settings.dataset, args.version, source=lake.relative(partition))
    text = contract.to_yaml()
    if args.out:
        Path(args.out).write_text(text)
        _emit(args, {"out": args.out}, f"drafted {args.out} from {table.num_rows} rows: review it, then commit")
    else:
        print(text)
    return 0


def cmd_dataset_init(args: argparse.Namespace, settings: Settings) -> int:
    from mlops.datasets import Choices, DraftRejected, init_dataset, project_path

    if args.lake_uri:
        settings = settings.model_copy(
            update={"dataset": settings.dataset.model_copy(update={"lake_uri": args.lake_uri})}
        )
    choices = Choices(args.id_column, args.time_column, args.label_column, args.positive, args.label_delay_days,
                      args.extra_columns)  # fmt: skip
    contract_out = Path(args.contract_out or f"include/contracts/{args.name}.yaml")
    config_out = Path(args.config_out or f"include/datasets/{args.name}.yaml")
    try:
        draft = init_dataset(settings, args.name, args.date, choices, contract_out, config_out, args.force)
    except DraftRejected as exc:
        _emit(args, {"error": str(exc)}, str(exc))
        return 1
    text = "\n".join([
        f"wrote {contract_out} (contract {draft.contract.name} v{draft.contract.version}, "
        f"{len(draft.contract.columns)} columns) and {config_out} (the dataset: block)",
        draft.verdict,
        "",
        "Review before you commit:",
        *[f"  {line}" for line in draft.review],
        "",
        f"Next: add training:/gates: sections to {config_out} if the defaults do not fit, then",
        f"  MLOPS_CONFIG={project_path(config_out)} mlops validate --date D (each landed day), then mlops train",
    ])  # fmt: skip
    _emit(args, draft.to_dict(), text)
    return 0


def cmd_validate(args: argparse.Namespace, settings: Settings) -> int:
    from mlops.validation import PartitionNotReady, ValidationFailed, validate_and_version

    try:
        marker = validate_and_version(settings, args.date)
    except ValidationFailed as exc:
        _emit(args, {"passed": False, **exc.verdict.to_dict()}, str(exc))
        return 1
    except PartitionNotReady as exc:
        _emit(args, {"passed": False, "error": str(exc)}, str(exc))
        return 1
    _emit(args, {"passed": True, **marker},
          f"{marker['partition']}: {marker['rows']} rows valid; DVC revision {marker['dvc']['revision']}")  # fmt: skip
    return 0


def cmd_train(args: argparse.Namespace, settings: Settings) -> int:
    from mlops.training.pipeline import run_all
    from mlops.training.snapshot import NoTrainingData

    as_of = args.as_of or dt.date.today()
    try:
        outcome = run_all(settings, as_of, {"reason": args.reason}, actor=f"cli:{_user()}")
    except NoTrainingData as exc:
        _emit(args, {"error": str(exc)}, f"no usable training data: {exc}")
        return 1
    promotion = outcome["promotion"]
    if not isinstance(promotion, str):
        promotion = f"champion is now v{promotion['to_version']} (was {promotion['from_version']})"
    verdict = "passed" if outcome["passed"] else "FAILED"
    text = "\n".join([
        f"v{outcome['version']} (MLflow run {outcome['run_id']}): gates {verdict}",
        outcome["summary"],
        f"promotion: {promotion}",
        f"gate report: {outcome['report_uri']}",
    ])  # fmt: skip
    _emit(args, outcome, text)
    return 0


def cmd_reproduce(args: argparse.Namespace, settings: Settings) -> int:
    from mlops.training.train import reproduce

    result = reproduce(settings, args.version)
    same = (result["original_valid_aucpr"] == result["reproduced_valid_aucpr"]
            and result["original_rounds"] == result["reproduced_rounds"])  # fmt: skip
    text = (
        f"v{args.version}: run {result['original_run']} -> {result['reproduced_run']}; valid AUC-PR "
        f"{result['original_valid_aucpr']:.6f} -> {result['reproduced_valid_aucpr']:.6f}, rounds "
        f"{result['original_rounds']} -> {result['reproduced_rounds']}: {'identical' if same else 'DIFFERENT'}"
    )
    _emit(args, {**result, "identical": same}, text)
    return 0 if same else 1


def cmd_score(args: argparse.Namespace, settings: Settings) -> int:
    from mlops.errors import InputError
    from mlops.scoring import score_day

    started = time.monotonic()
    try:
        stats = score_day(settings, args.date)
    except InputError as exc:
        print(f"mlops score: {exc}", file=sys.stderr)
        return 1
    seconds = time.monotonic() - started
    rate = stats["rows"] / max(seconds, 1e-9)
    text = (f"dt={args.date}: {stats['rows']:,} rows scored with v{stats['model_version']} in {seconds:.1f} s "
            f"({rate:,.0f} rows/s), positive rate {stats['positive_rate']:.4f}")  # fmt: skip
    _emit(args, {**stats, "seconds": seconds}, text)
    return 0


def cmd_drift(args: argparse.Namespace, settings: Settings) -> int:
    from mlops.errors import InputError
    from mlops.monitoring import check_day

    try:
        outcome = check_day(settings, args.date, render_report=not args.no_report)
    except (InputError, FileNotFoundError) as exc:
        print(f"mlops drift: {exc}", file=sys.stderr)
        return 1
    result, decision = outcome.result, outcome.decision
    text = (f"dt={args.date}: breached={result['breached']} severe={result['severe']} "
            f"features {result['breached_features']}\ndecision: "
            f"{'TRIGGER retraining' if decision['trigger'] else 'no trigger'} ({decision['reason']})\n"
            f"report: {outcome.report_uri}")  # fmt: skip
    _emit(args, outcome.to_dict(), text)
    return 0


def _user() -> str:
    import getpass

    return getpass.getuser()


def cmd_promote(args: argparse.Namespace, settings: Settings) -> int:
    """Compare-and-set against the champion the version was gated against (or ``--expected``), never the current one."""
    from mlops.registry import Registry

    registry = Registry(settings)
    if args.expected is None:
        expected = registry.gated_against(args.version)
    else:
        expected = None if args.expected.lower() == "none" else args.expected
    move = registry.promote(args.version, expected, actor=f"cli:{_user()}", reason=args.reason, run="cli")
    _emit(args, move.__dict__, f"champion: v{move.from_version} -> v{move.to_version}")
    return 0


def cmd_rollback(args: argparse.Namespace, settings: Settings) -> int:
    from mlops.registry import Registry

    move = Registry(settings).rollback(args.to, actor=f"cli:{_user()}", reason=args.reason, run="cli")
    text = f"champion: v{move.from_version} -> v{move.to_version} ({args.reason}); v{move.from_version} is rolled back"
    _emit(args, move.__dict__, text)
    return 0


def cmd_models(args: argparse.Namespace, settings: Settings) -> int:
    from mlops.models import overview
    from mlops.registry import ALIASES, Registry

    if args.resync:
        registry = Registry(settings)
        for alias in ALIASES:
            registry.resync_alias(alias, actor=f"cli:{_user()}", reason=f"mlops models --resync --trust {args.trust}",
                                  run="cli", trust=args.trust)  # fmt: skip
    payload = overview(settings)
    champion, challenger = (payload[alias] or "-" for alias in ALIASES)
    lines = [f"model {settings.model_name}: champion v{champion}, challenger v{challenger} (by the ledger)"]
    for alias in payload["out_of_sync"]:
        lines.append(f"WARNING: MLflow alias {alias!r} points to v{payload['mlflow_aliases'][alias] or '-'}, the "
                     f"ledger to v{payload[alias] or '-'}: scoring and monitoring refuse to run; repair with "
                     f"`mlops models --resync` (or `--resync --trust mlflow` to record MLflow's version)")  # fmt: skip
    retired = payload["rolled_back"]
    lines += [f"  rolled back: v{r['version']} at {r['at']} by {r['actor']}: {r['reason']}" for r in retired]
    lines += [f"  {m['at']}  {m['alias']:<10} {m['from_version'] or '-':>4} -> {m['to_version']:<4} by {m['actor']}: "
              f"{m['reason']}" for m in payload["ledger"]]  # fmt: skip
    _emit(args, payload, "\n".join(lines))
    return 1 if payload["out_of_sync"] else 0


def cmd_requeue(args: argparse.Namespace, settings: Settings) -> int:
    from mlops.data.lake import Lake
    from mlops.validation import requeue_partition

    raw = requeue_partition(Lake.from_settings(settings), args.date, actor=f"cli:{_user()}", note=args.reason)
    text = (f"{raw}: back for re-validation (recorded in its reason.json history); run `mlops validate --date "
            f"{args.date}` or clear the day's data_validation run")  # fmt: skip
    _emit(args, {"requeued": raw, "date": args.date.isoformat()}, text)
    return 0


def cmd_simulate(args: argparse.Namespace, settings: Settings) -> int:
    from mlops.simulation import load_scenario, simulate
    from mlops.simulation.summary import format_table

    scenario = load_scenario(args.scenario)
    if args.days:
        scenario = scenario.with_days(args.days)
    home = Path(args.home) if args.home else settings.home / "simulation" / scenario.name
    out = Path(args.out) if args.out else settings.reports_dir / "simulation" / scenario.name
    summary, report = simulate(scenario, home, out, say=lambda line: print(line, file=sys.stderr, flush=True))
    _emit(args, {**summary, "report": str(report)}, f"{format_table(summary)}\nreport: {report}")
    return 0


# -- parser -------------------------------------------------------------------------------------
#: Descriptions are wrapped to this width by hand: RawDescriptionHelpFormatter keeps the examples as written.
_WIDTH = 78


def _global_options(suppress: bool) -> argparse.ArgumentParser:
    """``--json``, ``--config`` and ``-v``, accepted before the command and after it (after wins).

    The main parser's copy (``suppress=False``) holds the real defaults. Every subcommand gets a copy whose
    defaults are ``argparse.SUPPRESS``: argparse copies each attribute a subparser sets onto the namespace, so a
    real default there would reset a value typed before the command; suppressed, the attribute is set only when
    the option is typed after the command.
    """
    default: dict[str, Any] = {"default": argparse.SUPPRESS} if suppress else {}
    options = argparse.ArgumentParser(add_help=False)
    group = options.add_argument_group("global options (before or after the command)")
    group.add_argument("--json", action="store_true", help="print the result as JSON on stdout", **default)
    group.add_argument("--config", metavar="PATH", help="YAML config file (sets MLOPS_CONFIG)", **default)
    group.add_argument("-v", "--verbose", action="store_true", help="log progress at INFO level; the traceback "
                       "of a failure", **default)  # fmt: skip
    return options


def _examples(lines: Sequence[str]) -> str:
    """The epilog of a ``--help``: it ends with the example command lines."""
    return ("Example:" if len(lines) == 1 else "Examples:") + "".join(f"\n  {line}" for line in lines)


def _command(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    summary: str,
    examples: Sequence[str],
    func: Callable[..., int] | None = None,
    description: str = "",
) -> argparse.ArgumentParser:
    """A subcommand: ``summary`` is its line in the parent's list, ``description`` (default: the summary) and the
    examples frame its ``--help``."""
    sub = commands.add_parser(
        name,
        help=summary,
        description=textwrap.fill(description or summary, _WIDTH),
        epilog=_examples(examples),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[_global_options(suppress=True)],
    )
    if func is not None:
        sub.set_defaults(func=func)
    return sub


def _commands(parser: argparse.ArgumentParser, dest: str) -> argparse._SubParsersAction[argparse.ArgumentParser]:
    return parser.add_subparsers(
        title="commands", dest=dest, required=True, metavar="COMMAND", help="one of these (each has --help)"
    )


_MAIN_EPILOG = """\
Config: defaults < $MLOPS_CONFIG (YAML) < MLOPS_* env vars
(MLOPS__SECTION__KEY=value).
Exit codes: 0 ok, 1 the step failed on its input, 2 usage or configuration
error, 3 a service or the disk failed (retry once it is back).
Global options go before or after the command; `mlops COMMAND --help` shows
the command's options and an example.

Examples:
  mlops data generate --start 2026-11-01 --days 14
  mlops validate --date 2026-11-01
  mlops train --as-of 2026-11-14
  mlops models --json"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mlops",
        description=textwrap.fill(
            "Run any step of the continuous-training platform by hand (the DAGs run the same code).", _WIDTH
        ),
        epilog=_MAIN_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[_global_options(suppress=False)],
    )
    commands = _commands(parser, "command")

    _command(commands, "env", "print the embedded stack's environment as shell exports",
             ['eval "$(mlops env)"', "mlops env --json"], cmd_env,
             "Print the embedded Airflow/MLflow environment as shell exports (anything already set wins).")  # fmt: skip

    data = _commands(_command(commands, "data", "synthetic source and fault injection", [
        "mlops data generate --start 2026-11-01 --days 14",
        "mlops data corrupt --date 2026-11-02 --fault duplicate_ids",
    ]), "data_command")  # fmt: skip
    gen = _command(data, "generate", "land raw partitions (and labels once due) in the lake", [
        "mlops data generate --start 2026-11-01 --days 30 --drift-start 2026-11-15 \\",
        "    --drift-kind covariate --drift-features amount",
        "mlops data generate --start 2026-11-01 --days 30 --rows-per-day 20000",
    ], cmd_generate)  # fmt: skip
    gen.add_argument("--start", type=_date, required=True, help="first day, YYYY-MM-DD")
    gen.add_argument("--days", type=int, default=1, help="number of days (default 1)")
    gen.add_argument("--rows-per-day", type=int, default=20_000, help="rows per day (default 20000)")
    gen.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    gen.add_argument("--labels-until", type=_date, help="land labels due by this day (default: the last day)")
    gen.add_argument("--drift-start", type=_date, help="inject drift from this day on")
    gen.add_argument("--drift-kind", choices=["covariate", "concept", "prior"], help="kind of drift")
    gen.add_argument("--drift-features", help="comma-separated features to shift (covariate drift)")
    gen.add_argument("--drift-magnitude", type=float, default=1.0, help="drift strength (default 1.0)")

    from mlops.data.faults import FAULTS

    bad = _command(data, "corrupt", "corrupt a landed raw partition on purpose (tests, demo)",
                   ["mlops data corrupt --date 2026-11-02 --fault duplicate_ids"], cmd_corrupt)  # fmt: skip
    bad.add_argument("--date", type=_date, required=True, help="the landed day to corrupt, YYYY-MM-DD")
    bad.add_argument("--fault", choices=sorted(FAULTS), required=True, metavar="FAULT",
                     help=f"what to break in raw/dt=D: {', '.join(sorted(FAULTS))}")  # fmt: skip

    contract = _commands(_command(commands, "contract", "data contract tools", [
        "mlops contract infer --date 2026-11-01 --out include/contracts/card_transactions.yaml",
    ]), "contract_command")  # fmt: skip
    infer = _command(contract, "infer", "draft a data contract from a raw partition", [
        "mlops contract infer --date 2026-11-01 --out include/contracts/card_transactions.yaml",
    ], cmd_contract_infer)  # fmt: skip
    infer.add_argument("--date", type=_date, required=True, help="the raw day to draft from, YYYY-MM-DD")
    infer.add_argument("--out", help="write the YAML here (default: print it)")
    infer.add_argument("--version", default="1.0.0", help="contract version (default 1.0.0)")

    dataset = _commands(_command(commands, "dataset", "bring your own table", [
        "mlops dataset init --name breast_cancer --date 2026-03-02 --positive malignant",
    ]), "dataset_command")  # fmt: skip
    init = _command(dataset, "init", "draft a dataset: config and contract from a landed day", [
        "mlops dataset init --name breast_cancer --date 2026-03-02 --positive malignant",
    ], cmd_dataset_init, "Draft the dataset: config block and a review-ready contract from a landed day (id, time, "
       "label and positive class are guessed unless given).")  # fmt: skip
    init.add_argument("--name", required=True, help="dataset name (also the registered model name)")
    init.add_argument("--date", type=_date, required=True, help="a landed day, raw/dt=D")
    init.add_argument("--id-column", help="default: the column labels/ shares with raw/, or the unique *id column")
    init.add_argument("--time-column", help="default: the one timestamp (or date) column")
    init.add_argument("--label-column", help="default: the column of labels/ besides the id")
    init.add_argument("--positive", help="the positive class (default: true, 1, or the one 'yes'-like string)")
    init.add_argument("--label-delay-days", type=int, default=0, help="labels/dt=D land this many days after D")
    init.add_argument("--extra-columns", choices=["forbid", "allow"], default="forbid",
                      help="columns not in the contract: fail validation (default) or are ignored")  # fmt: skip
    init.add_argument("--lake-uri", help="where the data is (default: dataset.lake_uri, else $MLOPS_HOME/lake)")
    init.add_argument("--contract-out", help="default include/contracts/<name>.yaml")
    init.add_argument("--config-out", help="default include/datasets/<name>.yaml")
    init.add_argument("--force", action="store_true", help="overwrite existing files")

    val = _command(commands, "validate", "validate raw/dt=D: quarantine it or DVC-version it",
                   ["mlops validate --date 2026-11-01"], cmd_validate,
                   "Validate raw/dt=D against the contract; quarantine or DVC-version it.")  # fmt: skip
    val.add_argument("--date", type=_date, required=True, help="the day to validate, YYYY-MM-DD")

    train = _command(commands, "train", "train, gate and register a model; promote per policy",
                     ['mlops train --as-of 2026-11-14 --reason "a month of labels"'], cmd_train,
                     "Snapshot, train, evaluate, gate, register; promote per promotion.policy.")  # fmt: skip
    train.add_argument("--as-of", type=_date, help="train on data known by this day (default: today)")
    train.add_argument("--reason", default="manual (cli)", help="why (recorded on the model version)")

    promote = _command(commands, "promote", "make a version that passed its gates the champion",
                       ['mlops promote --version 3 --reason "gate report reviewed"'], cmd_promote,
                       "Make a version that passed its gates the champion (compare-and-set against the champion "
                       "it was gated against).")  # fmt: skip
    promote.add_argument("--version", required=True, help="the model version to promote")
    promote.add_argument("--expected", help="the champion it must replace (default: the one its gates compared "
                         "it with; 'none' = no champion)")  # fmt: skip
    promote.add_argument("--reason", default="manual promotion (cli)", help="why (recorded in the ledger)")

    rollback = _command(commands, "rollback", "move the champion back; the version replaced is rolled back", [
        'mlops rollback --reason "precision fell in production"',
        'mlops rollback --to 2 --reason "back to the version before the drift"',
    ], cmd_rollback, "Move champion back through its history (or --to V); the version replaced is rolled back for "
       "good.")  # fmt: skip
    rollback.add_argument("--to", help="a version that passed its gates and was never rolled back "
                          "(default: the last earlier champion never rolled back)")  # fmt: skip
    rollback.add_argument("--reason", required=True, help="why (recorded in the ledger)")

    models = _command(commands, "models", "show champion, challenger, MLflow aliases and the ledger", [
        "mlops models",
        "mlops models --resync --trust mlflow",
    ], cmd_models, "Show champion, challenger (by the ledger), MLflow's aliases and the ledger; exit 1 when they "
       "disagree.")  # fmt: skip
    models.add_argument("--resync", action="store_true", help="repair MLflow's aliases from the ledger first")
    models.add_argument("--trust", choices=["ledger", "mlflow"], default="ledger",
                        help="with --resync: the side that is right (mlflow: record its version)")  # fmt: skip

    requeue = _command(commands, "requeue", "return a quarantined day to raw/ for re-validation",
                       ['mlops requeue --date 2026-11-02 --reason "contract rule relaxed"'], cmd_requeue,
                       "Return a quarantined day to raw/ for re-validation (recorded in its reason.json "
                       "history).")  # fmt: skip
    requeue.add_argument("--date", type=_date, required=True, help="the quarantined day, YYYY-MM-DD")
    requeue.add_argument("--reason", default="", help="why (recorded in the day's reason.json history)")

    score = _command(commands, "score", "score validated raw/dt=D with the champion",
                     ["mlops score --date 2026-11-14"], cmd_score,
                     "Score validated raw/dt=D with the champion into scores/dt=D (atomic).")  # fmt: skip
    score.add_argument("--date", type=_date, required=True, help="the validated day to score, YYYY-MM-DD")

    drift = _command(commands, "drift", "drift check of the window ending at D (no trigger)",
                     ["mlops drift --date 2026-11-14 --no-report"], cmd_drift,
                     "Drift check of the window ending at D vs the champion's reference (no trigger).")  # fmt: skip
    drift.add_argument("--date", type=_date, required=True, help="the last day of the window, YYYY-MM-DD")
    drift.add_argument("--no-report", action="store_true", help="skip the Evidently HTML report")

    again = _command(commands, "reproduce", "re-run a version's training on its exact data; compare",
                     ["mlops reproduce --version 3"], cmd_reproduce,
                     "Re-run a version's training on its exact data and config; compare.")  # fmt: skip
    again.add_argument("--version", required=True, help="the model version to re-run")

    sim = _command(commands, "simulate", "run the daily cycle over simulated days (no Airflow)", [
        "mlops simulate",
        "mlops simulate --scenario include/scenarios/short.yaml --days 20",
    ], cmd_simulate, "Run the daily cycle over simulated days of a scenario (no Airflow); report detection and "
       "recovery times against a frozen and an oracle model.")  # fmt: skip
    sim.add_argument("--scenario", default="include/scenarios/default.yaml", help="scenario YAML (%(default)s)")
    sim.add_argument("--days", type=int, help="simulate this many days instead of the scenario's")
    sim.add_argument("--home", help="MLOPS_HOME of the run, wiped first (default: $MLOPS_HOME/simulation/<scenario>)")
    sim.add_argument("--out", help="report folder (default: $MLOPS_HOME/reports/simulation/<scenario>)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if args.config:
        os.environ["MLOPS_CONFIG"] = args.config
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # progress bars garble logs
    from mlops.redact import install_log_redaction

    install_log_redaction()
    try:
        settings = load_settings()
        return int(args.func(args, settings))
    except Exception as exc:  # one line on stderr, whatever failed (-v: the traceback too)
        if args.verbose:
            log.exception("mlops %s failed", args.command)
        code, message = _failure(exc)
        print(f"mlops {args.command}: {message}", file=sys.stderr)
        return code


#: OS errors a user can act on, with what to do.
_OS_ADVICE = {
    errno.ENOSPC: "the disk is full: free space (or point MLOPS_HOME / the lake elsewhere), then retry",
    errno.EROFS: "the file system is read-only: mount it read-write (or point MLOPS_HOME / the lake elsewhere)",
    errno.EACCES: "permission denied: run as the owner of MLOPS_HOME and the lake, or fix their permissions",
}


def _failure(exc: BaseException) -> tuple[int, str]:
    """Exit code and one masked line for a failure (see the module docstring for the codes)."""
    from mlops.errors import InfrastructureError, InputError
    from mlops.redact import redact_text

    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    if isinstance(exc, ConfigError):
        code, message = 2, str(exc).replace("\n", " ")
    elif isinstance(exc, InputError):
        code, message = 1, first
    elif isinstance(exc, InfrastructureError):
        code, message = 3, first
    elif isinstance(exc, OSError) and exc.errno in _OS_ADVICE:
        code, message = 3, f"{_OS_ADVICE[exc.errno]} ({first})"
    elif type(exc).__module__.startswith("mlflow"):
        code, message = 3, f"MLflow failed: {first}. Check that MLflow is reachable (mlflow.tracking_uri), then retry"
    elif type(exc).__module__.startswith("dvc"):
        code, message = 3, f"DVC failed: {first}. Check the DVC remote (versioning.remote_url) is reachable, then retry"
    elif isinstance(exc, ValueError | FileNotFoundError):
        code, message = 2, first
    elif isinstance(exc, OSError):
        code, message = 3, f"{first}: check the disk, network or service named, then retry"
    else:
        code, message = 1, f"unexpected {type(exc).__name__}: {first} (rerun with -v for the traceback)"
    return code, redact_text(message)


if __name__ == "__main__":
    sys.exit(main())
