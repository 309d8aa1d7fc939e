"""``mlops``: every pipeline step by hand, without a scheduler (the DAGs call the same functions).

Exit codes: 0 success, 1 the step failed on its input (e.g. the data broke its contract, an unknown
version, a stale promotion), 2 bad usage or configuration, 3 a service or the disk failed (MLflow, the
ledger database, the DVC remote, the lake: retry once it is back). Every failure is one line on stderr,
secrets masked, saying what to do; ``-v`` adds the traceback. ``--json`` prints a machine-readable result
on stdout. ``--model NAME`` picks the model a command is about (default ``$MLOPS_MODEL``, else the only
model file); ``mlops models`` without one lists them all. ``--json``, ``-v``, ``--model`` and ``--config``
go before or after the command; every ``--help`` ends with an example. The commands are declared in
:mod:`mlops.cli_args`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import errno
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from mlops import cli_args
from mlops.config import ConfigError, Settings, load_settings, model_names, resolve_model

log = logging.getLogger("mlops")


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
    from mlops.data.landing import land_days, source_of

    source = source_of(settings)
    drift = None
    if args.drift_start or args.drift_kind:
        if not (args.drift_start and args.drift_kind):
            raise ValueError("--drift-start and --drift-kind go together")
        features = tuple(f for f in (args.drift_features or "").split(",") if f)
        drift = source.drift(args.drift_start, args.drift_kind, features, args.drift_magnitude)
    landed = land_days(settings, args.start, args.days, args.rows_per_day, args.seed, drift, args.labels_until)
    rows = [f"{d.day}  {d.rows:>9,} rows  raw={'yes' if d.raw else '-'}  labels={'yes' if d.labels else '-'}"
            for d in landed]  # fmt: skip
    _emit(args, [d.__dict__ for d in landed], "\n".join(rows) + f"\n{source.rows} in {settings.lake_uri}")
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
    from mlops.datasets import Choices, DraftRejected, init_dataset

    choices = Choices(args.id_column, args.time_column, args.label_column, args.positive, args.label_delay_days,
                      args.extra_columns)  # fmt: skip
    outputs = [Path(path) if path else None for path in (args.contract_out, args.model_out)]
    try:
        draft = init_dataset(settings, args.name, args.date, choices, *outputs, args.force, args.lake_uri)
    except DraftRejected as exc:
        _emit(args, {"error": str(exc)}, str(exc))
        return 1
    model_file, name = Path(draft.written["model"]), args.name
    live = model_file.resolve().parent == settings.models_path.resolve()
    kept = "gates for its positive rate" if draft.gates else "the default gates"
    text = "\n".join([
        f"wrote {model_file} (the model: its dataset: block, {kept}) and {draft.written['contract']} (contract "
        f"{draft.contract.name} v{draft.contract.version}, {len(draft.contract.columns)} columns)",
        draft.verdict,
        "",
        "Review before you commit:",
        *[f"  {line}" for line in draft.review],
        "",
        f"Next: review {model_file} (add training:, drift:, promotion: sections if the defaults do not fit)"
        + ("" if live else f", move it into {settings.models_path}") + ", then",
        f"  mlops validate --model {name} --date D (each landed day), then mlops train --model {name}",
        f"In Airflow: {name}__data_validation, {name}__continuous_training, ... (paused until you unpause them).",
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
    from mlops.plans import Skip, plan_training
    from mlops.training.pipeline import run_all
    from mlops.training.snapshot import NoTrainingData

    plan = plan_training(settings, as_of=args.as_of or dt.date.today(), run_kind="manual", reason=args.reason)
    if isinstance(plan, Skip):
        _emit(args, {"error": plan.reason}, plan.reason)
        return 1
    try:
        outcome = run_all(settings, plan.as_of, plan.trigger, actor=f"cli:{_user()}", snapshot=plan.snapshot)
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


def cmd_models(args: argparse.Namespace, settings: Settings | None) -> int:
    from mlops.aliases import overview
    from mlops.registry import ALIASES, Registry

    if settings is None and args.resync:
        settings = load_settings(model=resolve_model(None))  # one model, or the error that lists them
    if settings is None:
        return _list_models(args)
    if args.resync:
        registry = Registry(settings)
        for alias in ALIASES:
            registry.resync_alias(alias, actor=f"cli:{_user()}", reason=f"mlops models --resync --trust {args.trust}",
                                  run="cli", trust=args.trust)  # fmt: skip
    payload = overview(settings)
    champion, challenger = (payload[alias] or "-" for alias in ALIASES)
    lines = [f"model {settings.model_name}: champion v{champion}, challenger v{challenger} (by the ledger)"]
    lines += [_out_of_sync(settings.model_name, alias, payload) for alias in payload["out_of_sync"]]
    retired = payload["rolled_back"]
    lines += [f"  rolled back: v{r['version']} at {r['at']} by {r['actor']}: {r['reason']}" for r in retired]
    lines += [f"  {m['at']}  {m['alias']:<10} {m['from_version'] or '-':>4} -> {m['to_version']:<4} by {m['actor']}: "
              f"{m['reason']}" for m in payload["ledger"]]  # fmt: skip
    _emit(args, payload, "\n".join(lines))
    return 1 if payload["out_of_sync"] else 0


def _out_of_sync(model: str, alias: str, payload: dict[str, Any]) -> str:
    return (f"WARNING: MLflow alias {alias!r} points to v{payload['mlflow_aliases'][alias] or '-'}, the ledger to "
            f"v{payload[alias] or '-'}: scoring and monitoring refuse to run; repair with `mlops models --model "
            f"{model} --resync` (or `--resync --trust mlflow` to record MLflow's version)")  # fmt: skip


def _v(version: str | None) -> str:
    return f"v{version}" if version else "none"


#: Ledger moves shown per model by ``mlops models`` without ``--model`` (newest first).
LAST_MOVES = 2


def _list_models(args: argparse.Namespace) -> int:
    """``mlops models``: one line per model file (champion, challenger, last moves), out-of-sync aliases named."""
    from mlops.aliases import overview

    names, rows, lines = model_names(), [], []
    for name in names:
        payload = overview(load_settings(model=name))
        moves = payload["ledger"][::-1][:LAST_MOVES]
        rows.append({"model": name, **{k: payload[k] for k in ("champion", "challenger", "out_of_sync")},
                     "last_moves": moves})  # fmt: skip
        shown = "; ".join(f"{m['at'][:16]} {m['alias']} {_v(m['from_version'])} -> v{m['to_version']} "
                          f"({m['reason']})" for m in moves) or "none"  # fmt: skip
        lines.append(f"{name:<24} champion {_v(payload['champion']):<6} challenger {_v(payload['challenger']):<6} "
                     f"last moves: {shown}")  # fmt: skip
        lines += [f"  {_out_of_sync(name, alias, payload)}" for alias in payload["out_of_sync"]]
    if not names:
        lines = [f"no model files in {load_settings().models_path}: add <model>.yaml there (`mlops dataset init` "
                 "drafts one)"]  # fmt: skip
    elif len(names) > 1:
        lines.append("details of one: mlops models --model NAME")
    _emit(args, rows, "\n".join(lines))
    return 1 if any(row["out_of_sync"] for row in rows) else 0


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

    if args.readme and args.days:
        from mlops.errors import InputError

        raise InputError("--readme records a scenario's full run: leave out --days")
    scenario = load_scenario(args.scenario)
    if args.days:
        scenario = scenario.with_days(args.days)
    home = Path(args.home) if args.home else settings.home / "simulation" / scenario.name
    out = Path(args.out) if args.out else settings.home / "reports" / "simulation" / scenario.name
    summary, report = simulate(scenario, home, out, say=lambda line: print(line, file=sys.stderr, flush=True))
    _emit(args, {**summary, "report": str(report)}, f"{format_table(summary)}\nreport: {report}")
    if args.readme:
        from mlops.simulation.summary import update_readme

        print(f"{args.readme}: operating record regenerated from {update_readme(Path(args.readme), summary)}")
    return 0


# -- parser (declared in mlops.cli_args) ------------------------------------------------------------
HANDLERS: dict[str, Callable[..., int]] = {
    "env": cmd_env, "generate": cmd_generate, "corrupt": cmd_corrupt, "contract_infer": cmd_contract_infer,
    "dataset_init": cmd_dataset_init, "validate": cmd_validate, "train": cmd_train, "promote": cmd_promote,
    "rollback": cmd_rollback, "models": cmd_models, "requeue": cmd_requeue, "score": cmd_score, "drift": cmd_drift,
    "reproduce": cmd_reproduce, "simulate": cmd_simulate,
}  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    return cli_args.build_parser(HANDLERS)


def _settings(args: argparse.Namespace) -> Settings | None:
    """The settings of the command's model (``--model``, ``$MLOPS_MODEL``, the only model); the deployment's for a
    command about no model; ``None`` for ``mlops models`` without a model (it lists them all)."""
    use = getattr(args, "model_use", "required")
    if use == "none":
        return load_settings(env={key: value for key, value in os.environ.items() if key != "MLOPS_MODEL"})
    if use == "optional" and not (args.model or os.environ.get("MLOPS_MODEL")):
        return None
    return load_settings(model=resolve_model(args.model))


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
        return int(args.func(args, _settings(args)))
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
