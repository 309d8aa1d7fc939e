"""The ``mlops`` command line as declared: every command, its options, its help and its examples.

:mod:`mlops.cli` runs the commands; this module only declares them. Each subcommand says whether it is
about one model (``model_use``): ``required`` (the default: ``--model NAME``, else ``$MLOPS_MODEL``, else
the only model), ``optional`` (``mlops models``: without one it lists them all), ``none`` (``env``,
``simulate``, ``dataset init``, which names the new model with ``--name``) or ``unloaded`` (``doctor``,
``completion``: they run even when the config does not load).
"""

from __future__ import annotations

import argparse
import datetime as dt
import textwrap
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal, NoReturn

#: Descriptions are wrapped to this width by hand: RawDescriptionHelpFormatter keeps the examples as written.
_WIDTH = 78
ModelUse = Literal["required", "optional", "none", "unloaded"]
#: The longest ``--from``/``--to`` range, in days (a year, leap day included).
MAX_RANGE_DAYS = 366


class UsageError(Exception):
    """A command line argparse refuses; :func:`mlops.cli.main` reports it (as JSON with ``--json``)."""

    def __init__(self, parser: argparse.ArgumentParser, message: str) -> None:
        super().__init__(message)
        self.parser = parser


class Parser(argparse.ArgumentParser):
    """argparse raising :class:`UsageError` instead of exiting, so ``--json`` can report a usage error too."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(self, message)


def package_version() -> str:
    """The installed distribution's version; in a source checkout without an install, pyproject's (marked so)."""
    from importlib import metadata

    try:
        return metadata.version("mlops")
    except metadata.PackageNotFoundError:
        import tomllib
        from pathlib import Path

        pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
        try:
            return f"{tomllib.loads(pyproject.read_text())['project']['version']} (source checkout, not installed)"
        except (OSError, KeyError, tomllib.TOMLDecodeError):
            return "unknown (not installed)"


def days_of(args: argparse.Namespace) -> list[dt.date]:
    """The days a ``--date D`` or ``--from D1 --to D2`` command runs on, in order (inclusive)."""
    start, end = getattr(args, "from_", None), getattr(args, "to", None)
    if args.date is not None:
        if start or end:
            raise ValueError("--date or --from/--to, not both")
        return [args.date]
    if start is None or end is None:
        raise ValueError("give --date D, or --from D1 and --to D2 (both)")
    if end < start:
        raise ValueError(f"--to {end} is before --from {start}")
    days = (end - start).days + 1
    if days > MAX_RANGE_DAYS:
        raise ValueError(f"--from {start} --to {end} spans {days} days; at most {MAX_RANGE_DAYS} at once")
    return [start + dt.timedelta(days=i) for i in range(days)]


def _date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date like 2026-11-01, got {value!r}") from None


def _day_options(sub: argparse.ArgumentParser, what: str) -> None:
    """``--date D`` (one day) or ``--from D1 --to D2`` (every day in order, inclusive): see :func:`days_of`."""
    sub.add_argument("--date", type=_date, help=f"{what}, YYYY-MM-DD (or --from/--to)")
    sub.add_argument("--from", dest="from_", metavar="D1", type=_date, help="first day of a range, YYYY-MM-DD")
    sub.add_argument("--to", metavar="D2", type=_date, help=f"last day of a range (inclusive; at most "
                     f"{MAX_RANGE_DAYS} days)")  # fmt: skip


def _global_options(suppress: bool) -> argparse.ArgumentParser:
    """``--json``, ``--config``, ``--model`` and ``-v``, accepted before the command and after it (after wins).

    The main parser's copy (``suppress=False``) holds the real defaults. Every subcommand gets a copy whose
    defaults are ``argparse.SUPPRESS``: argparse copies each attribute a subparser sets onto the namespace, so a
    real default there would reset a value typed before the command; suppressed, the attribute is set only when
    the option is typed after the command.
    """
    default: dict[str, Any] = {"default": argparse.SUPPRESS} if suppress else {}
    options = Parser(add_help=False)
    group = options.add_argument_group("global options (before or after the command)")
    group.add_argument("--model", metavar="NAME", help="the model (its file NAME.yaml in the models folder); "
                       "default: $MLOPS_MODEL, else the only model (env, simulate, dataset init: none)",
                       **default)  # fmt: skip
    group.add_argument("--json", action="store_true", help="print the result (or the failure) as one JSON object "
                       "on stdout", **default)  # fmt: skip
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
    model_use: ModelUse = "required",
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
        sub.set_defaults(func=func, model_use=model_use)
    return sub


def _commands(parser: argparse.ArgumentParser, dest: str) -> argparse._SubParsersAction[argparse.ArgumentParser]:
    return parser.add_subparsers(
        title="commands", dest=dest, required=True, metavar="COMMAND", help="one of these (each has --help)"
    )


_MAIN_EPILOG = """\
Config: defaults < $MLOPS_CONFIG (YAML) < the model's file
(<models_dir>/NAME.yaml) < MLOPS_* env vars (MLOPS__SECTION__KEY=value).
--model NAME picks the model (default: $MLOPS_MODEL, else the only one);
`mlops models` lists every model. Global options go before or after the
command; `mlops COMMAND --help` shows the command's options and an example.
Exit codes: 0 ok, 1 the step failed on its input, 2 usage or configuration
error, 3 a service or the disk failed (retry once it is back).

Examples:
  mlops models
  mlops data generate --model customer_churn --start 2026-11-01 --days 6
  mlops validate --model card_transactions --date 2026-11-01
  mlops train --model card_transactions --as-of 2026-11-14
  mlops models --model customer_churn --json"""


def build_parser(handlers: Mapping[str, Callable[..., int]]) -> argparse.ArgumentParser:
    """The parser; ``handlers`` maps each command (``"generate"``, ``"dataset_init"``, ...) to its function."""
    parser = Parser(
        prog="mlops",
        description=textwrap.fill(
            "Run any step of the continuous-training platform by hand, for any model (the DAGs run the same code).",
            _WIDTH,
        ),
        epilog=_MAIN_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[_global_options(suppress=False)],
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {package_version()}",
                        help="print the installed version and exit")  # fmt: skip
    commands = _commands(parser, "command")

    _command(commands, "env", "print the embedded stack's environment as shell exports",
             ['eval "$(mlops env)"', "mlops env --json"], handlers["env"],
             "Print the embedded Airflow/MLflow environment as shell exports (anything already set wins).",
             model_use="none")  # fmt: skip

    data = _commands(_command(commands, "data", "synthetic sources, public tables and fault injection", [
        "mlops data generate --start 2026-11-01 --days 14",
        "mlops data public --table affairs --start 2026-03-01 --days 14",
        "mlops data corrupt --date 2026-11-02 --fault duplicate_ids",
    ]), "data_command")  # fmt: skip
    gen = _command(data, "generate", "land raw partitions (and labels once due) in the model's lake", [
        "mlops data generate --start 2026-11-01 --days 30 --drift-start 2026-11-15 \\",
        "    --drift-kind covariate --drift-features amount",
        "mlops data generate --model customer_churn --start 2026-11-01 --days 6",
    ], handlers["generate"], "Land synthetic raw partitions (and labels once due) in the model's lake; its "
       "dataset name picks the source: card_transactions or customer_churn.")  # fmt: skip
    gen.add_argument("--start", type=_date, required=True, help="first day, YYYY-MM-DD")
    gen.add_argument("--days", type=int, default=1, help="number of days (default 1)")
    gen.add_argument("--rows-per-day", type=int, default=20_000, help="rows per day (default 20000)")
    gen.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    gen.add_argument("--labels-until", type=_date, help="land labels due by this day (default: the last day)")
    gen.add_argument("--drift-start", type=_date, help="inject drift from this day on")
    gen.add_argument("--drift-kind", choices=["covariate", "concept", "prior"], help="kind of drift")
    gen.add_argument("--drift-features", help="comma-separated columns of the source to shift (covariate drift)")
    gen.add_argument("--drift-magnitude", type=float, default=1.0, help="drift strength (default 1.0)")

    from mlops.data.faults import FAULTS

    bad = _command(data, "corrupt", "corrupt a landed raw partition on purpose (tests, demo)",
                   ["mlops data corrupt --date 2026-11-02 --fault duplicate_ids"], handlers["corrupt"])  # fmt: skip
    bad.add_argument("--date", type=_date, required=True, help="the landed day to corrupt, YYYY-MM-DD")
    bad.add_argument("--fault", choices=sorted(FAULTS), required=True, metavar="FAULT",
                     help=f"what to break in raw/dt=D: {', '.join(sorted(FAULTS))}")  # fmt: skip

    from mlops.data.public import TABLES

    public = _command(data, "public", "land a public table as a producer's daily partitions", [
        "mlops data public --table affairs --start 2026-03-01 --days 14",
        "mlops data public --table life --name gapminder --start 2026-03-01 --days 14 --shift 2026-03-14",
    ], handlers["public"], "Land a real table nobody here prepared, the way a producer delivers it (raw/dt=D, labels "
       "delay days late), in the lake of the model --name (default: the table's name). Tables: "
       + "; ".join(f"{t.name}: {t.description} ({t.source})" for t in TABLES.values()) + ".",
       model_use="none")  # fmt: skip
    public.add_argument("--table", choices=sorted(TABLES), required=True, help="which public table")
    public.add_argument("--name", help="the model the days land for (its lake); default: the table's name")
    public.add_argument("--start", type=_date, required=True, help="first day, YYYY-MM-DD")
    public.add_argument("--days", type=int, default=14, help="number of days, at least 2 (default 14)")
    public.add_argument("--seed", type=int, default=7, help="random seed of the layout (default 7)")
    public.add_argument("--label-delay-days", type=int, default=1, help="labels of day D land with day D + this "
                        "(default 1; the last days' labels are not due yet)")  # fmt: skip
    public.add_argument("--shift", type=_date, help="one of the days whose rows come from a shifted part of the table "
                        "(a drifted day)")  # fmt: skip

    contract = _commands(_command(commands, "contract", "data contract tools", [
        "mlops contract infer --date 2026-11-01 --out include/contracts/card_transactions.yaml",
    ]), "contract_command")  # fmt: skip
    infer = _command(contract, "infer", "draft a data contract from a raw partition", [
        "mlops contract infer --date 2026-11-01 --out include/contracts/card_transactions.yaml",
    ], handlers["contract_infer"])  # fmt: skip
    infer.add_argument("--date", type=_date, required=True, help="the raw day to draft from, YYYY-MM-DD")
    infer.add_argument("--out", help="write the YAML here (default: print it)")
    infer.add_argument("--version", default="1.0.0", help="contract version (default 1.0.0)")

    dataset = _commands(_command(commands, "dataset", "bring your own table: add a model", [
        "mlops dataset init --name breast_cancer --positive malignant",
    ]), "dataset_command")  # fmt: skip
    init = _command(dataset, "init", "draft a model file and its contract from the landed days", [
        "mlops dataset init --name breast_cancer --positive malignant",
        "mlops dataset init --name customer_churn --from 2026-11-01 --to 2026-11-14",
        "mlops dataset init --name orders --date 2026-03-02 --label-delay-days 2",
    ], handlers["dataset_init"], "Draft a new model from the landed days of its lake ($MLOPS_HOME/lake/NAME "
       "unless --lake-uri; every raw/dt=D with _SUCCESS, or --date D, or --from/--to): its model file "
       "<models_dir>/NAME.yaml (the dataset: block, training: sized to the labelled days, gates: the slice sizes "
       "for its holdout) and a review-ready contract checked against every day read. Id, time, label, positive "
       "class and label delay are guessed (measured) unless given. Review both, then its DAGs run once the file "
       "is in the models folder.", model_use="none")  # fmt: skip
    init.add_argument("--name", required=True, help="the new model's name (its file, DAG ids and MLflow model)")
    init.add_argument("--date", metavar="D", type=_date, help="draft from this one landed day, raw/dt=D (default: "
                      "every landed day; or --from/--to)")  # fmt: skip
    init.add_argument("--from", dest="from_", metavar="D1", type=_date, help="first landed day to read, YYYY-MM-DD "
                      "(default: the first)")  # fmt: skip
    init.add_argument("--to", metavar="D2", type=_date, help="last landed day to read, inclusive (default: the "
                      "latest)")  # fmt: skip
    init.add_argument("--id-column", help="default: the column labels/ shares with raw/, or the unique *id column")
    init.add_argument("--time-column", help="default: the one timestamp (or date) column")
    init.add_argument("--label-column", help="default: the column of labels/ besides the id (of several: the one "
                      "bool, 0/1 or two-valued one; never a timestamp)")  # fmt: skip
    init.add_argument("--positive", help="the positive class (default: true, 1, or the one 'yes'-like string)")
    init.add_argument("--label-delay-days", type=int, help="labels/dt=D land this many days after D (default: "
                      "measured, the latest raw day minus the latest labels day)")  # fmt: skip
    init.add_argument("--extra-columns", choices=["forbid", "allow"], default="forbid",
                      help="columns not in the contract: fail validation (default) or are ignored")  # fmt: skip
    init.add_argument("--lake-uri", help="where the data is (default: the model's lake, $MLOPS_HOME/lake/NAME)")
    init.add_argument("--model-out", help="the model file (default <models_dir>/NAME.yaml)")
    init.add_argument("--contract-out", help="default include/contracts/NAME.yaml (for another models folder: "
                      "<models_dir>/contracts/NAME.yaml)")  # fmt: skip
    init.add_argument("--force", action="store_true", help="overwrite existing files")

    val = _command(commands, "validate", "validate raw/dt=D: quarantine it or DVC-version it",
                   ["mlops validate --date 2026-11-01", "mlops validate --model customer_churn --date 2026-11-01",
                    "mlops validate --from 2026-11-01 --to 2026-11-14"],
                   handlers["validate"],
                   "Validate raw/dt=D (or every day of --from/--to) against the contract; quarantine or "
                   "DVC-version it.")  # fmt: skip
    _day_options(val, "the day to validate")

    train = _command(commands, "train", "train, gate and register a model; promote per policy",
                     ['mlops train --as-of 2026-11-14 --reason "a month of labels"'], handlers["train"],
                     "Snapshot, train, evaluate, gate, register; promote per promotion.policy.")  # fmt: skip
    train.add_argument("--as-of", type=_date, help="train on data known by this day (default: today)")
    train.add_argument("--reason", default="manual (cli)", help="why (recorded on the model version)")

    promote = _command(commands, "promote", "make a version that passed its gates the champion",
                       ['mlops promote --version 3 --reason "gate report reviewed"'], handlers["promote"],
                       "Make a version that passed its gates the champion (compare-and-set against the champion "
                       "it was gated against).")  # fmt: skip
    promote.add_argument("--version", required=True, help="the model version to promote")
    promote.add_argument("--expected", help="the champion it must replace (default: the one its gates compared "
                         "it with; 'none' = no champion)")  # fmt: skip
    promote.add_argument("--reason", default="manual promotion (cli)", help="why (recorded in the ledger)")

    rollback = _command(commands, "rollback", "move the champion back; the version replaced is rolled back", [
        'mlops rollback --reason "precision fell in production"',
        'mlops rollback --to 2 --reason "back to the version before the drift"',
    ], handlers["rollback"], "Move champion back through its history (or --to V); the version replaced is rolled "
       "back for good.")  # fmt: skip
    rollback.add_argument("--to", help="a version that passed its gates and was never rolled back "
                          "(default: the last earlier champion never rolled back)")  # fmt: skip
    rollback.add_argument("--reason", required=True, help="why (recorded in the ledger)")

    models = _command(commands, "models", "every model, or one: champion, challenger, aliases, ledger", [
        "mlops models",
        "mlops models --model card_transactions --json",
        "mlops models --model card_transactions --resync --trust mlflow",
    ], handlers["models"], "Without --model (and $MLOPS_MODEL): one line per model (champion, challenger, last "
       "moves). With one: its champion, challenger (by the ledger), MLflow's aliases and the ledger. Exit 1 when "
       "MLflow and the ledger disagree.", model_use="optional")  # fmt: skip
    models.add_argument("--resync", action="store_true", help="repair the model's MLflow aliases from the ledger")
    models.add_argument("--trust", choices=["ledger", "mlflow"], default="ledger",
                        help="with --resync: the side that is right (mlflow: record its version)")  # fmt: skip

    requeue = _command(commands, "requeue", "return a quarantined day to raw/ for re-validation",
                       ['mlops requeue --date 2026-11-02 --reason "contract rule relaxed"',
                        'mlops requeue --from 2026-11-02 --to 2026-11-05 --reason "contract rule relaxed"'],
                       handlers["requeue"], "Return a quarantined day (or every day of --from/--to) to raw/ for "
                       "re-validation (recorded in its reason.json history).")  # fmt: skip
    _day_options(requeue, "the quarantined day")
    requeue.add_argument("--reason", default="", help="why (recorded in the day's reason.json history)")

    score = _command(commands, "score", "score validated raw/dt=D with the champion",
                     ["mlops score --date 2026-11-14", "mlops score --from 2026-11-01 --to 2026-11-14"],
                     handlers["score"], "Score validated raw/dt=D (or every day of --from/--to) with the champion "
                     "into scores/dt=D (atomic).")  # fmt: skip
    _day_options(score, "the validated day to score")

    drift = _command(commands, "drift", "drift check of the window ending at D (no trigger)",
                     ["mlops drift --date 2026-11-14 --no-report", "mlops drift --from 2026-11-10 --to 2026-11-14"],
                     handlers["drift"], "Drift check of the window ending at D (or at each day of --from/--to) vs "
                     "the champion's reference (no trigger).")  # fmt: skip
    _day_options(drift, "the last day of the window")
    drift.add_argument("--no-report", action="store_true", help="skip the Evidently HTML report")

    again = _command(commands, "reproduce", "re-run a version's training on its exact data; compare",
                     ["mlops reproduce --version 3"], handlers["reproduce"],
                     "Re-run a version's training on its exact data and config; compare.")  # fmt: skip
    again.add_argument("--version", required=True, help="the model version to re-run")

    sim = _command(commands, "simulate", "run the daily cycle over simulated days (no Airflow)", [
        "mlops simulate",
        "mlops simulate --scenario include/scenarios/short.yaml --days 20",
    ], handlers["simulate"], "Run the daily cycle over simulated days of a scenario (no Airflow, card "
       "transactions); report detection and recovery times against a frozen and an oracle model.",
       model_use="none")  # fmt: skip
    sim.add_argument("--scenario", default="include/scenarios/default.yaml", help="scenario YAML (%(default)s)")
    sim.add_argument("--days", type=int, help="simulate this many days instead of the scenario's")
    sim.add_argument("--home", help="MLOPS_HOME of the run, wiped first (default: $MLOPS_HOME/simulation/<scenario>)")
    sim.add_argument("--out", help="report folder (default: $MLOPS_HOME/reports/simulation/<scenario>)")
    sim.add_argument(
        "--readme",
        help="also store the record as docs/simulation/<scenario>-summary.json beside this "
        "README and rewrite the README's operating record from it (the scenario's full run only)",
    )

    doctor = _command(commands, "doctor", "check the config and every service the platform needs", [
        "mlops doctor",
        "mlops doctor --json --timeout 2",
    ], handlers["doctor"], "Check the config (every model file loads), MLflow, each model's lake, the DVC remote, "
       "the data registry, the ledger database and the Airflow API: one line each, ok or FAIL and what to fix. "
       "Exit 1 when any check fails.", model_use="unloaded")  # fmt: skip
    doctor.add_argument("--timeout", type=float, default=5.0, help="seconds each check may take (default 5)")

    completion = _command(commands, "completion", "print a shell completion script", [
        'eval "$(mlops completion bash)"   # in ~/.bashrc',
        "mlops completion zsh",
    ], handlers["completion"], "Print a completion script for bash or zsh (generated from these commands and "
       "options); load it from your shell's startup file.", model_use="unloaded")  # fmt: skip
    completion.add_argument("shell", choices=["bash", "zsh"], help="the shell: bash or zsh")
    return parser
