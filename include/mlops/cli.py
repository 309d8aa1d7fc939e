"""``mlops``: every pipeline step by hand, without a scheduler (the DAGs call the same functions).

Exit codes: 0 success, 1 the step failed on its input (e.g. the data broke its contract, an unknown
version, a stale promotion), 2 bad usage or configuration, 3 a service or the disk failed (MLflow, the
ledger database, the DVC remote, the lake: retry once it is back). Every failure is one line on stderr,
secrets masked, saying what to do; ``-v`` adds the traceback. ``--json`` prints one JSON object on stdout,
on a failure too (usage errors included): ``error`` (that line), ``exit_code`` and ``command``
(:mod:`mlops.cli_output`). ``--model NAME`` picks the model a command is about (default ``$MLOPS_MODEL``,
else the only model file); ``mlops models`` without one lists them all. ``--json``, ``-v``, ``--model`` and
``--config`` go before or after the command; every ``--help`` ends with an example. The commands are
declared in :mod:`mlops.cli_args`.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import logging
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from mlops import cli_args
from mlops.cli_output import CommandFailed, command_name, each_day, emit, fail, failure
from mlops.config import Settings, load_settings, model_names, resolve_model

log = logging.getLogger("mlops")


# -- commands -----------------------------------------------------------------------------------
def cmd_env(args: argparse.Namespace, settings: Settings) -> int:
    from mlops.runtime import embedded_env, shell_exports

    env = embedded_env(settings)
    emit(
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
    emit(args, [d.__dict__ for d in landed], "\n".join(rows) + f"\n{source.rows} in {settings.lake_uri}")
    return 0


def cmd_public(args: argparse.Namespace, settings: Settings) -> int:
    from mlops.data.lake import Lake
    from mlops.data.public import land_public, table_of
    from mlops.datasets import model_settings

    table = table_of(args.table)
    lake = Lake.from_settings(model_settings(settings, args.name or table.name))
    landed = land_public(lake, table.name, args.start, args.days, args.seed, args.label_delay_days, args.shift)
    rows = [f"{d.day}  {d.rows:>7,} rows  labels={'yes' if d.labels else '-'}{'  (shifted)' if d.shifted else ''}"
            for d in landed]  # fmt: skip
    emit(args, [d.__dict__ for d in landed], "\n".join(rows) + f"\n{table.description} ({table.source}) in "
         f"{lake.uri}")  # fmt: skip
    return 0


def cmd_corrupt(args: argparse.Namespace, settings: Settings) -> int:
    from mlops.data.faults import inject_fault
    from mlops.data.lake import Lake

    fault = inject_fault(Lake.from_settings(settings), args.date, args.fault, settings.dataset.id_column)
    emit(args, fault.__dict__, f"dt={args.date}: injected {fault.name} ({fault.description})")
    return 0


def cmd_contract_infer(args: argparse.Namespace, settings: Settings) -> int:
    from mlops.data.contract import infer_contract
    from mlops.data.lake import Lake

    lake = Lake.from_settings(settings)
    partition = lake.partition("raw", args.date)
    table = lake.read_partition(partition)
    contract = infer_contract(table, settings.dataset, args.version, source=lake.relative(partition), day=args.date)
    text = contract.to_yaml()
    if args.out:
        Path(args.out).write_text(text)
        emit(args, {"out": args.out}, f"drafted {args.out} from {table.num_rows} rows: review it, then commit")
    else:
        import yaml

        emit(args, {"contract": yaml.safe_load(text)}, text)  # --json: the draft as one JSON object
    return 0


def cmd_dataset_init(args: argparse.Namespace, settings: Settings) -> int:
    from mlops.datasets import Choices, DaySelection, DraftRejected, init_dataset

    choices = Choices(args.id_column, args.time_column, args.label_column, args.positive, args.label_delay_days,
                      args.extra_columns)  # fmt: skip
    if args.label_delay_days is not None and args.label_delay_days < 0:
        raise ValueError(f"--label-delay-days {args.label_delay_days}: a number of days, 0 or more")
    days = DaySelection(args.date, args.from_, args.to)
    outputs = [Path(path) if path else None for path in (args.contract_out, args.model_out)]
    try:
        draft = init_dataset(settings, args.name, days, choices, *outputs, args.force, args.lake_uri)
    except DraftRejected as exc:
        raise CommandFailed(str(exc)) from exc
    model_file, name = Path(draft.written["model"]), args.name
    live = model_file.resolve().parent == settings.models_path.resolve()
    kept = "gates: slice sizes for its holdout" if draft.gates else "the default gates"
    text = "\n".join([
        f"wrote {model_file} (the model: its dataset: block, training: sized to its labels, {kept}) and "
        f"{draft.written['contract']} (contract {draft.contract.name} v{draft.contract.version}, "
        f"{len(draft.contract.columns)} columns), drafted from {draft.span}",
        draft.verdict,
        "",
        "Review before you commit:",
        *[f"  {line}" for line in draft.review],
        "",
        f"Next: review {model_file} (add model:, drift:, promotion: sections if the defaults do not fit)"
        + ("" if live else f", move it into {settings.models_path}") + ", then",
        f"  mlops validate --model {name} --date D (each landed day), then mlops train --model {name}",
        f"In Airflow: {name}__data_validation, {name}__continuous_training, ... (paused until you unpause them).",
    ])  # fmt: skip
    emit(args, draft.to_dict(), text)
    return 0


def cmd_validate(args: argparse.Namespace, settings: Settings) -> int:
    from mlops.validation import PartitionNotReady, ValidationFailed, validate_and_version

    def one(day: dt.date) -> tuple[dict[str, Any], str]:
        try:
            marker = validate_and_version(settings, day)
        except ValidationFailed as exc:
            first = str(exc).strip().splitlines()[0]
            raise CommandFailed(f"dt={day} quarantined: {first}", {"passed": False, **exc.verdict.to_dict()},
                                str(exc)) from exc  # fmt: skip
        except PartitionNotReady as exc:
            raise CommandFailed(str(exc), {"passed": False}) from exc
        text = f"{marker['partition']}: {marker['rows']} rows valid; DVC revision {marker['dvc']['revision']}"
        warnings = marker.get("warnings") or []
        if warnings:  # within the contract's tolerances: the day is valid, what was tolerated is listed
            text += f"\n  {len(warnings)} warning(s), tolerated:" + "".join(
                f"\n    [{w['rule']}] {w['column']}: {w['observed']} (expected {w['expected']})" for w in warnings
            )
        return {"passed": True, **marker}, text

    return each_day(args, one)


def cmd_train(args: argparse.Namespace, settings: Settings) -> int:
    from mlops.plans import Skip, plan_training
    from mlops.training.pipeline import run_all
    from mlops.training.snapshot import NoTrainingData

    plan = plan_training(settings, as_of=args.as_of or dt.date.today(), run_kind="manual", reason=args.reason)
    if isinstance(plan, Skip):
        raise CommandFailed(plan.reason)
    try:
        outcome = run_all(settings, plan.as_of, plan.trigger, actor=f"cli:{_user()}", snapshot=plan.snapshot)
    except NoTrainingData as exc:
        raise CommandFailed(f"no usable training data: {exc}") from exc
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
    emit(args, outcome, text)
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
    if not same:
        raise CommandFailed(f"v{args.version} did not reproduce", {**result, "identical": same}, text)
    emit(args, {**result, "identical": same}, text)
    return 0


def cmd_score(args: argparse.Namespace, settings: Settings) -> int:
    from mlops.scoring import score_day

    def one(day: dt.date) -> tuple[dict[str, Any], str]:
        started = time.monotonic()
        stats = score_day(settings, day)
        seconds = time.monotonic() - started
        rate = stats["rows"] / max(seconds, 1e-9)
        text = (f"dt={day}: {stats['rows']:,} rows scored with v{stats['model_version']} in {seconds:.1f} s "
                f"({rate:,.0f} rows/s), positive rate {stats['positive_rate']:.4f}")  # fmt: skip
        return {**stats, "seconds": seconds}, text

    return each_day(args, one)


def cmd_drift(args: argparse.Namespace, settings: Settings) -> int:
    from mlops.monitoring import check_day

    def one(day: dt.date) -> tuple[dict[str, Any], str]:
        try:
            outcome = check_day(settings, day, render_report=not args.no_report)
        except FileNotFoundError as exc:  # a day with no data to check is the input's fault, not the disk's
            raise CommandFailed(str(exc)) from exc
        result, decision = outcome.result, outcome.decision
        report = outcome.report_uri or f"not written: {outcome.report_error or 'turned off'}"
        text = (f"dt={day}: breached={result['breached']} severe={result['severe']} "
                f"features {result['breached_features']}\ndecision: "
                f"{'TRIGGER retraining' if decision['trigger'] else 'no trigger'} ({decision['reason']})\n"
                f"report: {report}")  # fmt: skip
        return outcome.to_dict(), text

    return each_day(args, one)


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
    emit(args, move.__dict__, f"champion: v{move.from_version} -> v{move.to_version}")
    return 0


def cmd_rollback(args: argparse.Namespace, settings: Settings) -> int:
    from mlops.registry import Registry

    move = Registry(settings).rollback(args.to, actor=f"cli:{_user()}", reason=args.reason, run="cli")
    text = f"champion: v{move.from_version} -> v{move.to_version} ({args.reason}); v{move.from_version} is rolled back"
    emit(args, move.__dict__, text)
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
    lines += [f"  {m['at']}  {m['alias']:<10} {m['from_version'] or '-':>4} -> {m['to_version']:<4} by "
              f"{_by(m['actor'], m['human'])}: {m['reason']}" for m in payload["ledger"]]  # fmt: skip
    if payload["decisions"]:
        lines.append("  promotion decisions:")
    lines += [f"  {d['at']}  {d['decision']:<8} v{d['version']:<4} by {d['human'] or 'nobody (timed out)'} "
              f"({d['actor']}, run {d['run']}): {d['reason']}" for d in payload["decisions"]]  # fmt: skip
    if payload["out_of_sync"]:
        raise CommandFailed(_disagreement(payload), payload, "\n".join(lines))
    emit(args, payload, "\n".join(lines))
    return 0


def _by(actor: str, human: str | None) -> str:
    """The actor of a move, and the person behind it when one is recorded."""
    return f"{actor} ({human})" if human else actor


def _disagreement(payload: dict[str, Any]) -> str:
    """Why ``mlops models`` fails: head rows edited by hand are named apart from MLflow aliases that lag."""
    edited = [alias for alias in payload["out_of_sync"] if alias in payload["problems"]]
    lagging = [alias for alias in payload["out_of_sync"] if alias not in payload["problems"]]
    found = [f"ledger head rows {edited} disagree with their last recorded move"] if edited else []
    found += [f"MLflow aliases {lagging} disagree with the ledger"] if lagging else []
    return f"{'; '.join(found)}: run `mlops models --resync`"


def _out_of_sync(model: str, alias: str, payload: dict[str, Any]) -> str:
    if alias in payload["problems"]:  # the ledger's own head row was edited by hand: say that, not MLflow
        return f"WARNING: {payload['problems'][alias]} (repair: `mlops models --model {model} --resync`)"
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
        rows.append({"model": name, **{k: payload[k] for k in ("champion", "challenger", "out_of_sync", "problems")},
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
    stale = [row["model"] for row in rows if row["out_of_sync"]]
    if stale:
        raise CommandFailed(f"champion or challenger of {stale} disagree with the ledger's record (lines above): run "
                            "`mlops models --model NAME --resync`", {"models": rows}, "\n".join(lines))  # fmt: skip
    emit(args, rows, "\n".join(lines))
    return 0


def cmd_requeue(args: argparse.Namespace, settings: Settings) -> int:
    from mlops.data.lake import Lake
    from mlops.quarantine import requeue_partition

    def one(day: dt.date) -> tuple[dict[str, Any], str]:
        raw = requeue_partition(Lake.from_settings(settings), day, actor=f"cli:{_user()}", note=args.reason)
        text = (f"{raw}: back for re-validation (recorded in its reason.json history); run `mlops validate --date "
                f"{day}` or clear the day's data_validation run")  # fmt: skip
        return {"requeued": raw, "date": day.isoformat()}, text

    return each_day(args, one)


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
    text, payload = f"{format_table(summary)}\nreport: {report}", {**summary, "report": str(report)}
    if args.readme:
        from mlops.simulation.summary import update_readme

        payload["readme_record"] = str(update_readme(Path(args.readme), summary))
        text += f"\n{args.readme}: operating record regenerated from {payload['readme_record']}"
    emit(args, payload, text)
    return 0


def cmd_doctor(args: argparse.Namespace, _settings: None) -> int:
    from mlops.doctor import run_checks

    checks = run_checks(model=args.model or os.environ.get("MLOPS_MODEL") or None, timeout=args.timeout)
    payload = {"ok": all(c.status != "FAIL" for c in checks), "checks": [c.to_dict() for c in checks]}
    report = "\n".join(c.line() for c in checks)
    failed = [c.name for c in checks if c.status == "FAIL"]
    if failed:
        raise CommandFailed(f"{len(failed)} check(s) failed: {', '.join(failed)}", payload, report)
    emit(args, payload, report)
    return 0


def cmd_completion(args: argparse.Namespace, _settings: None) -> int:
    from mlops.cli_completion import script

    text = script(build_parser(), args.shell)
    emit(args, {"shell": args.shell, "script": text}, text)
    return 0


# -- parser (declared in mlops.cli_args) ------------------------------------------------------------
HANDLERS: dict[str, Callable[..., int]] = {
    "env": cmd_env, "generate": cmd_generate, "public": cmd_public, "corrupt": cmd_corrupt,
    "contract_infer": cmd_contract_infer,
    "dataset_init": cmd_dataset_init, "validate": cmd_validate, "train": cmd_train, "promote": cmd_promote,
    "rollback": cmd_rollback, "models": cmd_models, "requeue": cmd_requeue, "score": cmd_score, "drift": cmd_drift,
    "reproduce": cmd_reproduce, "simulate": cmd_simulate, "doctor": cmd_doctor, "completion": cmd_completion,
}  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    return cli_args.build_parser(HANDLERS)


def _settings(args: argparse.Namespace) -> Settings | None:
    """The settings of the command's model (``--model``, ``$MLOPS_MODEL``, the only model); the deployment's for a
    command about no model; ``None`` for ``mlops models`` without a model (it lists them all)."""
    use = getattr(args, "model_use", "required")
    if use == "unloaded":
        return None
    if use == "none":
        return load_settings(env={key: value for key, value in os.environ.items() if key != "MLOPS_MODEL"})
    if use == "optional" and not (args.model or os.environ.get("MLOPS_MODEL")):
        return None
    return load_settings(model=resolve_model(args.model))


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except cli_args.UsageError as exc:  # argparse's exit 2, as JSON with --json
        from mlops.redact import redact_text

        if "--json" not in argv:
            exc.parser.print_usage(sys.stderr)
            exc.parser.exit(2, f"{exc.parser.prog}: error: {exc}\n")
        command = exc.parser.prog.removeprefix(parser.prog).strip()
        if not command:  # e.g. an unknown option after the command: argparse's top level refuses it
            with contextlib.suppress(cli_args.UsageError):
                command = command_name(parser.parse_known_args(argv)[0])
        return fail(True, command, 2, redact_text(f"{exc} (see mlops {command} --help)".replace("  ", " ")))
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
        if args.verbose and not isinstance(exc, CommandFailed):
            log.exception("mlops %s failed", args.command)
        code, message = failure(exc)
        return fail(args.json, command_name(args), code, message, exc if isinstance(exc, CommandFailed) else None)


if __name__ == "__main__":
    sys.exit(main())
