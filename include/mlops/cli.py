"""``mlops``: every pipeline step by hand, without a scheduler (the DAGs call the same functions).

Exit codes: 0 success, 1 the step failed on its input (e.g. the data broke its contract), 2 bad
usage or configuration. ``--json`` prints a machine-readable result on stdout.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import sys
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
    table = lake.read_partition(lake.partition("raw", args.date))
    contract = infer_contract(table, settings.dataset, args.version)
    text = contract.to_yaml()
    if args.out:
        Path(args.out).write_text(text)
        _emit(args, {"out": args.out}, f"drafted {args.out} from {table.num_rows} rows: review it, then commit")
    else:
        print(text)
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
    from mlops.registry import CHAMPION, PromotionConflict, Registry, RegistryError

    registry = Registry(settings)
    try:
        move = registry.promote(args.version, registry.alias_version(CHAMPION), actor=f"cli:{_user()}",
                                reason=args.reason, run="cli")  # fmt: skip
    except (PromotionConflict, RegistryError) as exc:
        print(f"mlops promote: {exc}", file=sys.stderr)
        return 1
    _emit(args, move.__dict__, f"champion: v{move.from_version} -> v{move.to_version}")
    return 0


def cmd_rollback(args: argparse.Namespace, settings: Settings) -> int:
    from mlops.registry import PromotionConflict, Registry, RegistryError

    try:
        move = Registry(settings).rollback(args.to, actor=f"cli:{_user()}", reason=args.reason, run="cli")
    except (PromotionConflict, RegistryError) as exc:
        print(f"mlops rollback: {exc}", file=sys.stderr)
        return 1
    _emit(args, move.__dict__, f"champion: v{move.from_version} -> v{move.to_version} ({args.reason})")
    return 0


def cmd_models(args: argparse.Namespace, settings: Settings) -> int:
    from mlops.models import overview

    payload = overview(settings)
    lines = [f"model {settings.model_name}: champion v{payload['champion']}, challenger v{payload['challenger']}"]
    lines += [f"  {m['at']}  {m['alias']:<10} {m['from_version'] or '-':>4} -> {m['to_version']:<4} by {m['actor']}: "
              f"{m['reason']}" for m in payload["ledger"]]  # fmt: skip
    _emit(args, payload, "\n".join(lines))
    return 0


# -- parser -------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mlops",
        description="Run any step of the continuous-training platform by hand (the DAGs run the same code).",
        epilog="Config: defaults < $MLOPS_CONFIG (YAML) < MLOPS_* env vars (MLOPS__SECTION__KEY=value). "
        "Exit codes: 0 ok, 1 the step failed on its input, 2 usage or configuration error.",
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--config", metavar="PATH", help="YAML config file (sets MLOPS_CONFIG)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress at INFO level")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, func: Callable[..., int], help_text: str, parent: Any = commands) -> argparse.ArgumentParser:
        sub = parent.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(func=func)
        return sub

    add("env", cmd_env, "print the embedded Airflow/MLflow environment as shell exports")

    data = commands.add_parser("data", help="synthetic source and fault injection").add_subparsers(
        dest="data_command", required=True, metavar="COMMAND"
    )
    gen = add("generate", cmd_generate, "land raw partitions (and labels once due) in the lake", data)
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

    bad = add("corrupt", cmd_corrupt, "corrupt a landed raw partition on purpose (tests, demo)", data)
    bad.add_argument("--date", type=_date, required=True)
    bad.add_argument("--fault", choices=sorted(FAULTS), required=True)

    contract = commands.add_parser("contract", help="data contract tools").add_subparsers(
        dest="contract_command", required=True, metavar="COMMAND"
    )
    infer = add("infer", cmd_contract_infer, "draft a data contract from a raw partition", contract)
    infer.add_argument("--date", type=_date, required=True)
    infer.add_argument("--out", help="write the YAML here (default: print it)")
    infer.add_argument("--version", default="1.0.0", help="contract version (default 1.0.0)")

    val = add("validate", cmd_validate, "validate raw/dt=D against the contract; quarantine or DVC-version it")
    val.add_argument("--date", type=_date, required=True)

    train = add("train", cmd_train, "snapshot, train, evaluate, gate, register; promote per promotion.policy")
    train.add_argument("--as-of", type=_date, help="train on data known by this day (default: today)")
    train.add_argument("--reason", default="manual (cli)", help="why (recorded on the model version)")

    promote = add("promote", cmd_promote, "make a version that passed its gates the champion (compare-and-set)")
    promote.add_argument("--version", required=True)
    promote.add_argument("--reason", default="manual promotion (cli)")

    rollback = add("rollback", cmd_rollback, "move champion back to the previous ledger entry (or --to V)")
    rollback.add_argument("--to", help="a version that once passed its gates (default: the previous champion)")
    rollback.add_argument("--reason", required=True, help="why (recorded in the ledger)")

    add("models", cmd_models, "show champion, challenger and the alias ledger")

    score = add("score", cmd_score, "score validated raw/dt=D with the champion into scores/dt=D (atomic)")
    score.add_argument("--date", type=_date, required=True)

    drift = add("drift", cmd_drift, "drift check of the window ending at D vs the champion's reference (no trigger)")
    drift.add_argument("--date", type=_date, required=True)
    drift.add_argument("--no-report", action="store_true", help="skip the Evidently HTML report")

    again = add("reproduce", cmd_reproduce, "re-run a version's training on its exact data and config; compare")
    again.add_argument("--version", required=True)
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
    try:
        settings = load_settings()
        return int(args.func(args, settings))
    except ConfigError as exc:
        print(f"mlops: {exc}", file=sys.stderr)
        return 2
    except (ValueError, FileNotFoundError) as exc:
        print(f"mlops {args.command}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
