"""The drift check for one day: gather the window, compare with the champion's stored reference, decide.

Shared by the ``drift_monitoring`` DAG and ``mlops drift``. The statistics live in ``mlops.drift``;
this module only finds the data: the champion's reference profile and holdout AUC-PR (MLflow), the
window's validated inputs and scores (lake), delayed labels once they arrived, and the history.
It never re-reads the training data for the decision (a small sample only feeds the HTML report).
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from mlops.data.lake import SUCCESS, VALIDATED, Lake
from mlops.features import FeatureSpec, build_matrix

if TYPE_CHECKING:
    from mlops.config import Settings

log = logging.getLogger(__name__)


def _champion(settings: Settings) -> dict[str, Any]:
    """The champion as scoring pins it, plus what monitoring needs from its run (profile, holdout AUC-PR)."""
    import mlflow

    from mlops.scoring import pin_champion

    pinned = pin_champion(settings)
    run_id = pinned.run_id
    run = mlflow.get_run(run_id)
    return {
        "version": pinned.version,
        "run_id": run_id,
        "profile": mlflow.artifacts.load_dict(f"runs:/{run_id}/reference_profile.json"),
        "spec": pinned.spec,
        "holdout_auc_pr": run.data.metrics.get("holdout_auc_pr"),
        "snapshot": mlflow.artifacts.load_dict(f"runs:/{run_id}/snapshot.json"),
    }


def _window(lake: Lake, day: dt.date, days: int) -> list[dt.date]:
    validated = [d for d in lake.days("raw", VALIDATED) if d <= day][-days:]
    if not validated or validated[-1] != day:
        raise FileNotFoundError(f"{lake.url(lake.partition('raw', day))} is not validated: nothing to monitor")
    return validated


def _window_table(lake: Lake, area: str, days: list[dt.date]) -> pa.Table | None:
    tables = [lake.read_partition(lake.partition(area, d)) for d in days
              if lake.exists(f"{lake.partition(area, d)}/{SUCCESS}")]  # fmt: skip
    return pa.concat_tables(tables) if tables else None


def _last_training(settings: Settings) -> dt.date | None:
    """The data day (``as_of``) of the latest training run, for the cooldown.

    Data days, not wall-clock days: backfills and catch-up runs then see the cooldown they would have
    seen in real time.
    """
    import mlflow

    from mlops.training.train import experiment_id

    mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
    runs = mlflow.search_runs([experiment_id(settings)], order_by=["attributes.start_time DESC"], max_results=1,
                              output_format="list")  # fmt: skip
    as_of = runs[0].data.tags.get("mlops.as_of") if runs else None
    return dt.date.fromisoformat(as_of) if as_of else None


def _reference_sample(settings: Settings, champion: dict[str, Any], columns: list[str]) -> Any:
    """A seeded sample of the champion's last training day (by its DVC revision), for the HTML report only."""
    from dvc.fs import DVCFileSystem

    from mlops.training.snapshot import read_day

    snapshot = champion["snapshot"]
    fs = DVCFileSystem(repo=snapshot["registry"], rev=snapshot["registry_revision"])
    return read_day(fs, settings, snapshot["days"]["train"][-1], columns).to_pandas()


def check_day(settings: Settings, day: dt.date, training_active: bool = False,
              render_report: bool = True) -> dict[str, Any]:  # fmt: skip
    """Assess the window ending at ``day``, record it in the history, and say whether to retrain."""
    from mlops.drift import append_history, assess_window, evidently_report, read_history, trigger_decision

    policy = settings.drift
    lake = Lake.from_settings(settings)
    champion = _champion(settings)
    spec: FeatureSpec = champion["spec"]
    days = _window(lake, day, policy.window_days)
    inputs = _window_table(lake, "raw", days)
    assert inputs is not None
    X = build_matrix(inputs, spec)
    scores_table = _window_table(lake, "scores", days)
    scores = None if scores_table is None else scores_table.column("score").to_numpy().astype(np.float64)

    labels = None
    label_table = _window_table(lake, "labels", days)
    if label_table is not None and scores_table is not None:
        id_column, label_column = settings.dataset.id_column, settings.dataset.label.column
        joined = scores_table.select([id_column, "score"]).join(
            label_table.select([id_column, label_column]), id_column
        )
        if joined.num_rows:
            y = (joined.column(label_column).to_numpy() == settings.dataset.label.positive).astype(np.float64)
            labels = (y, joined.column("score").to_numpy().astype(np.float64))

    window = [d.isoformat() for d in days]
    result = assess_window(settings, champion["profile"], spec, X, scores, labels, champion["holdout_auc_pr"],
                           day.isoformat(), window)  # fmt: skip
    report_uri = None
    if render_report:
        local = settings.reports_dir / "drift" / f"dt={day.isoformat()}.html"
        local.parent.mkdir(parents=True, exist_ok=True)
        reference = _reference_sample(settings, champion, list(spec.names))
        current = inputs.select(list(spec.names)).to_pandas()
        evidently = evidently_report(reference, current, str(local), policy.seed, policy.report_sample_rows)
        remote = f"{lake.root}/reports/drift/dt={day.isoformat()}/report.html"
        lake.upload(str(local), remote)
        report_uri = lake.url(remote)
        log.info("Evidently report: %s (drifted columns %s)", report_uri, evidently.get("drifted_columns"))

    history = [entry for entry in read_history(lake, settings.dataset.name) if entry.get("day") != day.isoformat()]
    decision = trigger_decision(settings, history, result, day, _last_training(settings), training_active)
    entry = {**result.to_dict(), "day": day.isoformat(), "triggered": bool(decision["trigger"]),
             "champion_version": champion["version"], "report_uri": report_uri}  # fmt: skip
    append_history(lake, settings.dataset.name, entry)
    conf = {
        "reason": f"drift: {decision['reason']}",
        "window": {"days": window},
        "breached_features": result.breached_features,
        "report_uri": report_uri,
    }
    log.info("drift dt=%s: breached=%s severe=%s -> trigger=%s (%s)", day, result.breached, result.severe,
             decision["trigger"], decision["reason"])  # fmt: skip
    return {"result": result.to_dict(), "decision": decision, "report_uri": report_uri, "conf": conf,
            "champion_version": champion["version"]}  # fmt: skip
