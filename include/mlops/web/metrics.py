"""The platform's state as Prometheus text: champion, gate metrics, drift, scoring and validation, per model.

Gauges only, computed when scraped from what the pipeline wrote (MLflow through :mod:`mlops.models`, the
lake, the drift history), so a restart loses nothing and the numbers always agree with the MLOps page.
Every model of the models folder is read with its own settings, and every model-level sample carries a
``model`` label (drift, scoring and validation samples also keep their ``dataset``); a model that cannot
be read is logged and counted in ``mlops_metrics_errors_total``, the others are still served. DAG-run
samples (:func:`dag_run_samples`, from what the host reads in Airflow's DB) carry ``dag_id``, ``model``
and ``kind``. Served by the plugin at ``/mlops/metrics`` (Airflow login) and by
``python -m mlops.web.metrics`` on a separate bind for a Prometheus server (see ``include/monitoring/``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import math
from collections.abc import Iterable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING

from mlops.config import Settings, load_settings, model_names

if TYPE_CHECKING:
    from mlops.web.data import DagRuns

log = logging.getLogger(__name__)

Sample = tuple[str, dict[str, str], float]

HELP = {
    "mlops_champion_version": "Model version the champion alias points to",
    "mlops_champion_age_seconds": "Seconds since the champion alias last moved (ledger)",
    "mlops_champion_holdout_metric": "Holdout metric of the champion, as measured by its gates",
    "mlops_champion_gate_passed": "1 when the champion's gate check passed",
    "mlops_champion_bootstrap_delta": "Paired-bootstrap delta (and CI) of the champion vs the champion it replaced",
    "mlops_challenger_version": "Model version the challenger alias points to",
    "mlops_alias_moves_total": "Alias moves recorded in the ledger",
    "mlops_drift_feature_psi": "PSI of a feature on the latest monitored day",
    "mlops_drift_score_psi": "PSI of the score distribution on the latest monitored day",
    "mlops_drift_breached": "1 when the latest monitored day breached the drift policy",
    "mlops_drift_last_day_timestamp_seconds": "Latest monitored day (midnight UTC)",
    "mlops_drift_psi_threshold": "PSI that breaches the drift policy",
    "mlops_scoring_rows": "Rows scored on the latest scored day",
    "mlops_scoring_rows_per_second": "Rows per second of the scoring step on the latest scored day",
    "mlops_scoring_positive_rate": "Share of positive decisions on the latest scored day",
    "mlops_scoring_last_day_timestamp_seconds": "Latest scored day (midnight UTC)",
    "mlops_validation_quarantined_days": "Days currently in quarantine",
    "mlops_validation_validated_days": "Days validated",
    "mlops_validation_last_validated_timestamp_seconds": "Latest validated day (midnight UTC)",
    "mlops_model_info": "1 for every model of the models folder (labels: model, dataset)",
    "mlops_metrics_errors_total": "Sections of this page that failed to read (see the server log)",
    "mlops_dag_last_success_timestamp_seconds": "End of the latest successful run of the DAG",
    "mlops_dag_failed_runs": "DAG runs in the failed state",
    "mlops_dag_failed_runs_recent": "DAG runs that failed in the last 7 days",
}


def _midnight(day: str) -> float:
    return dt.datetime.fromisoformat(day[:10]).replace(tzinfo=dt.UTC).timestamp()


def _models(settings: Settings) -> list[Sample]:
    from mlops.web.data import model_overview

    overview = model_overview(settings)
    model = {"model": overview["model"]}
    samples: list[Sample] = [("mlops_alias_moves_total", model, float(len(overview["ledger"])))]
    champion, challenger = overview["champion"], overview["challenger"]
    if challenger:
        samples.append(("mlops_challenger_version", model, float(challenger["version"])))
    if not champion:
        return samples
    samples.append(("mlops_champion_version", model, float(champion["version"])))
    if overview["champion_since"]:
        since = dt.datetime.fromisoformat(overview["champion_since"])
        samples.append(("mlops_champion_age_seconds", model, dt.datetime.now(dt.UTC).timestamp() - since.timestamp()))
    for name, value in champion["metrics"].items():
        samples.append(("mlops_champion_holdout_metric", {**model, "metric": name}, float(value)))
    gates = champion.get("gates") or {}
    for check in gates.get("checks", []):
        samples.append(("mlops_champion_gate_passed", {**model, "gate": check["name"]}, float(bool(check["passed"]))))
    comparison = gates.get("comparison") or {}
    for key in ("delta", "ci_low", "ci_high"):
        if isinstance(comparison.get(key), int | float):
            samples.append(("mlops_champion_bootstrap_delta", {**model, "bound": key}, float(comparison[key])))
    return samples


def _drift(settings: Settings) -> list[Sample]:
    from mlops.web.data import drift_history

    history = drift_history(settings)
    dataset = {"model": settings.model_name, "dataset": history["dataset"]}
    samples: list[Sample] = [("mlops_drift_psi_threshold", dataset, float(history["thresholds"]["psi"]))]
    if not history["days"]:
        return samples
    last = history["days"][-1]
    samples.append(("mlops_drift_last_day_timestamp_seconds", dataset, _midnight(last["day"])))
    samples.append(("mlops_drift_breached", dataset, float(last["breached"])))
    if last["score_psi"] is not None:
        samples.append(("mlops_drift_score_psi", dataset, float(last["score_psi"])))
    for feature, value in last["psi"].items():
        if value is not None:
            samples.append(("mlops_drift_feature_psi", {**dataset, "feature": feature}, float(value)))
    return samples


def _scoring_and_validation(settings: Settings) -> list[Sample]:
    from mlops.web.data import scoring_days, validation_days

    dataset = {"model": settings.model_name, "dataset": settings.dataset.name}
    samples: list[Sample] = []
    scored = scoring_days(settings)
    if scored:
        last = scored[-1]
        samples.append(("mlops_scoring_rows", dataset, float(last["rows"])))
        samples.append(("mlops_scoring_last_day_timestamp_seconds", dataset, _midnight(last["day"])))
        if last["rows_per_second"] is not None:
            samples.append(("mlops_scoring_rows_per_second", dataset, float(last["rows_per_second"])))
        if last["positive_rate"] is not None:
            samples.append(("mlops_scoring_positive_rate", dataset, float(last["positive_rate"])))
    days = validation_days(settings)
    validated = [d["day"] for d in days if d["verdict"] == "validated"]
    quarantined = sum(d["verdict"] == "quarantined" for d in days)
    samples.append(("mlops_validation_quarantined_days", dataset, float(quarantined)))
    samples.append(("mlops_validation_validated_days", dataset, float(len(validated))))
    if validated:
        samples.append(("mlops_validation_last_validated_timestamp_seconds", dataset, _midnight(validated[-1])))
    return samples


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def format_samples(samples: Iterable[Sample], help_text: dict[str, str] | None = None) -> str:
    """Prometheus text exposition (0.0.4): per name, ``# HELP``/``# TYPE gauge`` once, then all its samples.

    The format wants each metric's samples in one group: samples of one name given apart (one model after
    the other) are gathered under the name's first place.
    """
    help_text = {**HELP, **(help_text or {})}
    families: dict[str, list[str]] = {}
    for name, labels, value in samples:
        label_text = ",".join(f'{key}="{_escape(str(val))}"' for key, val in sorted(labels.items()))
        shown = "NaN" if math.isnan(value) else repr(float(value))
        families.setdefault(name, []).append(f"{name}{{{label_text}}} {shown}" if label_text else f"{name} {shown}")
    lines: list[str] = []
    for name, family in families.items():
        lines += [f"# HELP {name} {help_text.get(name, name)}", f"# TYPE {name} gauge", *family]
    return "\n".join(lines) + "\n"


def model_samples(settings: Settings) -> tuple[list[Sample], int]:
    """Every section of one model, and how many failed (logged); each sample has the ``model`` label."""
    model = settings.model_name
    samples: list[Sample] = [("mlops_model_info", {"model": model, "dataset": settings.dataset.name}, 1.0)]
    errors = 0
    for section in (_models, _drift, _scoring_and_validation):
        try:
            samples += [(name, {**labels, "model": model}, value) for name, labels, value in section(settings)]
        except Exception:
            errors += 1
            log.exception("metrics section %s of model %s failed", section.__name__, model)
    return samples, errors


def dag_run_samples(runs: Iterable[DagRuns]) -> list[Sample]:
    """Last success and failed runs per DAG (``dag_id``, and ``model`` and ``kind`` for a model's DAG)."""
    samples: list[Sample] = []
    for run in sorted(runs, key=lambda r: r.dag_id):
        labels = {"dag_id": run.dag_id}
        if run.model:
            labels.update(model=run.model, kind=run.kind or "")
        if isinstance(run.last_success, dt.datetime):
            ended = run.last_success if run.last_success.tzinfo else run.last_success.replace(tzinfo=dt.UTC)
            samples.append(("mlops_dag_last_success_timestamp_seconds", labels, ended.timestamp()))
        samples.append(("mlops_dag_failed_runs", labels, float(run.failed)))
        samples.append(("mlops_dag_failed_runs_recent", labels, float(run.failed_recent)))
    return samples


def render(env: Mapping[str, str] | None = None, runs: Iterable[DagRuns] | None = None) -> str:
    """Every model of the models folder (``env``: default the process's), then the DAG runs when given.

    A model file that does not load, or a section that fails, is logged and counted; the rest is served.
    """
    samples: list[Sample] = []
    errors = 0
    for name in model_names(env):
        try:
            settings = load_settings(model=name, env=env)
        except Exception:
            errors += 1
            log.exception("metrics: model %s cannot be loaded", name)
            continue
        found, failed = model_samples(settings)
        samples += found
        errors += failed
    if runs is not None:
        samples += dag_run_samples(runs)
    samples.append(("mlops_metrics_errors_total", {}, float(errors)))
    return format_samples(samples)


def exporter(bind: str, port: int) -> ThreadingHTTPServer:
    """A plain exporter on its own bind (no Airflow login: keep it on a private network); ``serve_forever()`` it."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the http.server API
            if self.path.split("?")[0] != "/metrics":
                self.send_error(404)
                return
            body = render().encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the http.server API
            log.debug(format, *args)

    return ThreadingHTTPServer((bind, port), Handler)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mlops.web.metrics", description="Prometheus exporter")
    parser.add_argument("--bind", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9464)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    exporter(args.bind, args.port).serve_forever()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
