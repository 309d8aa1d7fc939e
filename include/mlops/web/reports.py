"""The report files a model's page links to, read from what the model owns only: its lake (Evidently drift
reports, the GX Data Docs site) and its own MLflow experiment (gate reports).

Each function refuses (``FileNotFoundError``, the app's 404) a file outside the model's lake root or site
(symlinks followed on a local lake) and a run of another experiment: a URL never reaches another model's
evidence nor a file of the host. How each kind is served (its Content-Security-Policy) is the app's business.
"""

from __future__ import annotations

import datetime as dt
import os
from typing import TYPE_CHECKING

from mlops import models
from mlops.data.lake import Lake

if TYPE_CHECKING:
    from mlops.config import Settings


def _inside(lake: Lake, root: str, path: str) -> bool:
    """``path`` is a file under ``root`` of the model's lake; on a local lake, after following symlinks."""
    if not lake.exists(path) or lake.fs.isdir(path):
        return False
    if lake.is_s3:  # keys are literal: the caller has built ``path`` from ``root`` and clean parts
        return path.startswith(root.rstrip("/") + "/")
    return os.path.realpath(path).startswith(os.path.realpath(root) + os.sep)


def drift_report_path(settings: Settings, day: dt.date) -> str:
    """Where the Evidently report of a day is in the model's own lake; FileNotFoundError when it has none."""
    lake = Lake.from_settings(settings)
    path = lake.report("drift", day, "report.html", settings.dataset.name)
    if not _inside(lake, lake.root, path):
        raise FileNotFoundError(f"no drift report for {day}")
    return path


def drift_report_html(settings: Settings, day: dt.date) -> bytes:
    """The Evidently report of a day, as the drift check published it in the model's own lake."""
    path = drift_report_path(settings, day)
    with Lake.from_settings(settings).fs.open(path, "rb") as handle:
        return handle.read()


def gate_report_html(settings: Settings, run_id: str) -> str:
    """The gate report (HTML) logged to a training run of THIS model by ``assess``.

    A run of another model's experiment (or of no experiment of ours) is refused as not found: a model's
    page never shows another model's evidence, whatever run id its URL carries.
    """
    client = models.client(settings)
    try:
        run = client.get_run(run_id)
        experiment = client.get_experiment_by_name(settings.model_name)
    except Exception as exc:
        raise FileNotFoundError(f"{settings.model_name} has no training run {run_id!r}") from exc
    if experiment is None or str(run.info.experiment_id) != str(experiment.experiment_id):
        raise FileNotFoundError(f"{settings.model_name} has no training run {run_id!r}")
    try:
        return models.load_text_artifact(settings, run_id, models.Artifacts.GATE_REPORT_HTML)
    except Exception as exc:
        raise FileNotFoundError(f"run {run_id!r} of {settings.model_name} has no gate report") from exc


def data_docs_file(settings: Settings, page: str) -> bytes:
    """A file of the model's GX Data Docs site in its lake (``page`` relative to the site's root).

    Nothing outside the site: an absolute path, ``..``, ``.``, empty parts, backslashes and NULs are refused
    (the app has already decoded ``%2e%2e`` and ``%2f``), and so is a symlink that leads out of a local site.
    """
    parts = page.split("/")
    if any(part in ("", ".", "..") or "\\" in part or "\x00" in part for part in parts):
        raise FileNotFoundError("not a file of the model's Data Docs site")
    lake = Lake.from_settings(settings)
    path = lake.data_docs(page)
    if not _inside(lake, lake.data_docs(), path):
        raise FileNotFoundError("no such file in the model's Data Docs site")
    with lake.fs.open(path, "rb") as handle:
        return handle.read()
