"""The platform's state as Prometheus text: champion, gate metrics, drift, scoring and validation.

Gauges only, computed when scraped from what the pipeline wrote (MLflow through :mod:`mlops.models`, the
lake, the drift history), so a restart loses nothing and the numbers always agree with the MLOps page.
Served by the plugin at ``/mlops/metrics`` (Airflow login) and by ``python -m mlops.web.metrics`` on a
separate bind for a Prometheus server (see ``include/monitoring/``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import math
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from mlops.config import Settings, load_settings

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
    "mlops_metrics_errors_total": "Sections of this page that failed to read (see the server log)",
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
    dataset = {"dataset": history["dataset"]}
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

    dataset = {"dataset": settings.dataset.name}
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
    """Prometheus text exposition (0.0.4): ``# HELP``/``# TYPE gauge`` once per name, then its samples."""
    help_text = help_text or HELP
    lines: list[str] = []
    seen: set[str] = set()
    for name, labels, value in samples:
        if name not in seen:
            seen.add(name)
            lines += [f"# HELP {name} {help_text.get(name, name)}", f"# TYPE {name} gauge"]
        label_text = ",".join(f'{key}="{_escape(str(val))}"' for key, val in sorted(labels.items()))
        shown = "NaN" if math.isnan(value) else repr(float(value))
        lines.append(f"{name}{{{label_text}}} {shown}" if label_text else f"{name} {shown}")
    return "\n".join(lines) + "\n"


def render(settings: Settings) -> str:
    """Every section; a section that fails is logged and counted, the others are still served."""
    samples: list[Sample] = []
    errors = 0
    for section in (_models, _drift, _scoring_and_validation):
        try:
            samples += section(settings)
        except Exception:
            errors += 1
            log.exception("metrics section %s failed", section.__name__)
    samples.append(("mlops_metrics_errors_total", {}, float(errors)))
    return format_samples(samples)


def exporter(bind: str, port: int) -> ThreadingHTTPServer:
    """A plain exporter on its own bind (no Airflow login: keep it on a private network); ``serve_forever()`` it."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the http.server API
            if self.path.split("?")[0] != "/metrics":
                self.send_error(404)
                return
            body = render(load_settings()).encode()
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
