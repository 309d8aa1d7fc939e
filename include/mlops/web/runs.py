"""One run of a model's DAG as evidence: what the MLOps tab on Airflow's own run pages shows.

The Airflow plugin adds a tab to every DAG-run page of the UI; Airflow puts the run's DAG id and run id in the
tab's URL. Both are untrusted: a DAG id that is not ``<model of the models folder>__<kind>``, or a run id outside
Airflow's default run-id pattern (:data:`RUN_ID`), is refused before anything is read, and never echoed back. Per
DAG kind:

* ``continuous_training``: the candidate of the run (the MLflow training run tagged with this Airflow run),
  the ledger's gate verdict on it (the record promotion trusts; the gate report only explains it), each gate,
  the version registered, links to the gate report and the MLflow run; and the drift evidence that triggered the
  run (the run's conf ``drift`` block, else what the training run recorded of it);
* ``drift_monitoring``: each day the run checked (its ``check_drift`` result) with the day's drift-history entry
  (breached, severe, breaching features, triggered, Evidently report) and the run's trigger decision;
* the other kinds: nothing to show, a link to the model's page.

What Airflow knows of the run (state, conf, the tasks' returned values) comes from the host
(:data:`RunReader`, the plugin reads Airflow's DB); the rest is read like the model's page reads it. Values are
escaped in :func:`render`: a run's conf and a producer's feature names are data, never markup.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from html import escape
from typing import TYPE_CHECKING, Any

from mlops import models
from mlops.config import DAG_ID_SEPARATOR, model_of_dag
from mlops.data.lake import Lake
from mlops.web import data, urls

if TYPE_CHECKING:
    from mlops.config import Settings

log = logging.getLogger(__name__)

#: Airflow's default ``allowed_run_id_pattern``: every run id the scheduler, the UI and the trigger operator make.
RUN_ID = re.compile(r"[A-Za-z0-9_.~:+-]{1,250}")  # matched whole (fullmatch)
#: Tasks whose returned value (XCom ``return_value``) the view reads.
RETURNED_TASKS = ("check_drift", "register")
#: Kinds that have evidence to show.
WITH_EVIDENCE = ("continuous_training", "drift_monitoring")


@dataclass(frozen=True)
class RunRecord:
    """What the host (Airflow's metadata DB) knows of one DAG run; the app itself cannot read it."""

    dag_id: str
    run_id: str
    state: str | None = None
    logical_date: dt.datetime | None = None
    conf: dict[str, Any] = field(default_factory=dict)
    returned: dict[str, Any] = field(default_factory=dict)  # task id -> its returned value (RETURNED_TASKS)


#: ``(dag_id, run_id) -> RunRecord | None`` (None: Airflow has no such run).
RunReader = Callable[[str, str], RunRecord | None]


def model_and_kind(dag_id: str, names: list[str]) -> tuple[str, str]:
    """``(model, kind)`` of a model's DAG id; LookupError for any other id (the message never quotes it)."""
    try:
        model = model_of_dag(dag_id)
    except ValueError:
        raise LookupError("not a DAG of a model of the models folder") from None
    if model not in names:
        raise LookupError("not a DAG of a model of the models folder")
    return model, dag_id.rsplit(DAG_ID_SEPARATOR, 1)[1]


def _json_tag(value: str | None) -> Any:
    if value is None:
        return None
    try:
        return json.loads(value)
    except ValueError:
        return value


def _training_run(settings: Settings, dag_id: str, run_id: str) -> Any | None:
    """The newest MLflow training run tagged with this Airflow run (any status), None when there is none."""
    client = models.client(settings)
    experiment = client.get_experiment_by_name(settings.model_name)
    if experiment is None:
        return None
    found = client.search_runs(  # both ids are checked (a known DAG, RUN_ID): no quote reaches the filter
        [experiment.experiment_id],
        f"tags.`{models.Tags.AIRFLOW_DAG_ID}` = '{dag_id}' and tags.`{models.Tags.AIRFLOW_RUN_ID}` = '{run_id}'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    return found[0] if found else None


def _drift_evidence(model: str, conf: dict[str, Any], tags: dict[str, str]) -> dict[str, Any] | None:
    """The drift block that triggered a training run: the run's conf, else what its MLflow run recorded."""
    block = conf.get("drift") if isinstance(conf.get("drift"), dict) else None
    if block is None:
        prefix = models.Tags.TRIGGER_PREFIX
        recorded = {key: _json_tag(tags.get(prefix + key)) for key in ("window", "breached_features", "report_uri")}
        block = recorded if any(value is not None for value in recorded.values()) else None
    if block is None:
        return None
    window = block.get("window")
    days = window.get("days") if isinstance(window, dict) else window
    report_day = urls.report_day(str(block.get("report_uri") or ""))
    features = block.get("breached_features")
    return {
        "window": [str(day) for day in days] if isinstance(days, list) else [],
        "breached_features": dict(features) if isinstance(features, dict) else {},
        "report": urls.drift_report(model, report_day) if report_day else None,
    }


def _training_view(settings: Settings, dag_id: str, run_id: str, record: RunRecord | None) -> dict[str, Any]:
    model = settings.model_name
    conf = record.conf if record else {}
    run = _training_run(settings, dag_id, run_id)
    tags = dict(run.data.tags) if run is not None else {}
    reason = conf.get("reason") if isinstance(conf.get("reason"), str) else tags.get(models.Tags.TRIGGER_REASON)
    view: dict[str, Any] = {"reason": reason, "drift": _drift_evidence(model, conf, tags), "candidate": None}
    if run is None:
        return view
    training_run = run.info.run_id
    verdict = data._verdicts(settings, [training_run]).get(training_run)
    gates = data._gates(data._gate_report(settings, training_run))
    versions = models.client(settings).search_model_versions(f"name = '{model}' and run_id = '{training_run}'")
    registered = (record.returned.get("register") if record else None) or {}
    version = str(versions[0].version) if versions else registered.get("version")
    view["candidate"] = {
        "training_run": training_run,
        "status": run.info.status,
        "version": None if version is None else str(version),
        "verdict": None
        if verdict is None
        else {"passed": verdict.passed, "at": verdict.at, "compared_with": verdict.champion_compared},  # fmt: skip
        "checks": gates["checks"] if gates else [],
        "links": {
            "gate_report": urls.gate_report(model, training_run) if gates else None,
            "mlflow_run": urls.mlflow_run(urls.mlflow_ui(settings), run.info.experiment_id, training_run),
        },
    }
    return view


def _drift_view(settings: Settings, record: RunRecord | None) -> dict[str, Any]:
    from mlops.drift import read_history

    returned = (record.returned.get("check_drift") if record else None) or {}
    checked = [str(day) for day in returned.get("checked") or []] if isinstance(returned, dict) else []
    history = {str(entry.get("day"))[:10]: entry for entry in read_history(Lake.from_settings(settings),
                                                                           settings.dataset.name)}  # fmt: skip
    days = []
    for day in checked:
        days.append({**data.drift_decision(settings, history.get(day[:10], {})), "day": day[:10]})
    decision = returned.get("decision") if isinstance(returned, dict) else None
    return {"days": days, "decision": decision if isinstance(decision, dict) else None}


def run_view(settings: Settings, kind: str, run_id: str, record: RunRecord | None) -> dict[str, Any]:
    """The evidence of one run of the model's DAG of ``kind`` (``run_id`` already matched :data:`RUN_ID`)."""
    dag_id = settings.dag_id(kind)
    view: dict[str, Any] = {
        "model": settings.model_name,
        "dag_id": dag_id,
        "run_id": run_id,
        "kind": kind,
        "state": record.state if record else None,
        "known_to_airflow": record is not None,
        "page": urls.model_page(settings.model_name),
        "airflow_run": urls.airflow_run(dag_id, run_id),
    }
    if kind == "continuous_training":
        view["training"] = _training_view(settings, dag_id, run_id, record)
    elif kind == "drift_monitoring":
        view["drift"] = _drift_view(settings, record)
    return view


# -- HTML ----------------------------------------------------------------------------------------------------
#: The page's ``<base>`` is the plugin's root (``<prefix>/dags/<dag>/runs/<run>`` is three levels below it).
PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8" /><meta name="viewport" content="width=device-width, initial-scale=1" />
<title>{title}</title><base href="../../../" /><link rel="stylesheet" href="static/app.css" />
<script src="static/run.js" defer></script></head>
<body><main id="run-view" data-kind="{kind}">{body}</main></body></html>
"""


def not_found(base: str) -> str:
    """The page for a DAG that is not a model's (the view is on every DAG's pages); names nothing from the URL."""
    body = '<p class="muted" data-testid="not-a-model">Not a DAG of a model of the models folder: nothing to show.</p>'
    page = PAGE.format(title="MLOps", kind="", body=body)
    return page.replace('<base href="../../../" />', f'<base href="{base}" />')


def _a(href: str | None, text: str, where: str = "plugin") -> str:
    """A link the page's script follows from the Airflow UI (Airflow's frame allows no popup)."""
    if not href:
        return '<span class="muted">—</span>'
    if where == "airflow":
        href = "../" + href  # the Airflow UI's root is the plugin root's parent
    return f'<a href="{escape(href)}" data-follow="{"same" if where == "airflow" else "new"}">{escape(text)}</a>'


def _features(features: dict[str, Any]) -> str:
    if not features:
        return "—"
    return ", ".join(f"{escape(str(name))} (PSI {psi:.3f})" if isinstance(psi, int | float)
                     else escape(str(name)) for name, psi in features.items())  # fmt: skip


def _verdict(passed: bool | None) -> str:
    if passed is None:
        return '<span class="muted">no verdict</span>'
    return '<span class="pass">pass</span>' if passed else '<span class="fail">fail</span>'


def _training_html(view: dict[str, Any]) -> str:
    training = view["training"]
    out = [f'<p data-testid="run-reason">Trigger: {escape(str(training["reason"] or "—"))}</p>']
    candidate = training["candidate"]
    if candidate is None:
        out.append('<p class="muted" data-testid="no-candidate">No MLflow training run is tagged with this Airflow '
                   "run (yet): it is running, was skipped, or failed before training.</p>")  # fmt: skip
    else:
        verdict = candidate["verdict"]
        version = f"v{candidate['version']}" if candidate["version"] else "not registered"
        compared = verdict["compared_with"] if verdict else None
        out.append(
            f'<div class="card"><h2>Candidate <span class="version" data-testid="candidate-version">'
            f"{escape(version)}</span>: gates "
            f'<span data-testid="gate-verdict">{_verdict(verdict["passed"] if verdict else None)}</span></h2>'
            f'<p class="meta">ledger verdict{" at " + escape(str(verdict["at"])) if verdict else ": none recorded"}'
            f"{'; compared with champion v' + escape(str(compared)) if compared else ''}; "
            f"MLflow run {escape(candidate['training_run'])} ({escape(str(candidate['status']))})</p>"
            f"<p>{_a(candidate['links']['gate_report'], 'gate report')} · "
            f"{_a(candidate['links']['mlflow_run'], 'MLflow run')}</p>"
        )
        rows = "".join(
            f"<tr><td>{escape(str(check.get('name')))}</td><td>{_verdict(check.get('passed'))}</td>"
            f'<td class="num">{escape(_number(check.get("value")))}</td>'
            f'<td class="num">{escape(_number(check.get("threshold")))}</td>'
            f'<td class="detail">{escape(str(check.get("detail") or ""))}</td></tr>'
            for check in candidate["checks"]
        )
        if rows:
            out.append('<table data-testid="run-gates"><thead><tr><th>gate</th><th>verdict</th><th>value</th>'
                       f"<th>threshold</th><th>detail</th></tr></thead><tbody>{rows}</tbody></table>")  # fmt: skip
        out.append("</div>")
    drift = training["drift"]
    if drift is None:
        out.append('<p class="muted" data-testid="run-drift">No drift evidence: this run was not triggered by drift.'
                   "</p>")  # fmt: skip
    else:
        window = ", ".join(escape(day) for day in drift["window"]) or "—"
        out.append(
            '<div class="card" data-testid="run-drift"><h2>Drift evidence that triggered it</h2>'
            f"<p>Window: {window}</p><p>Breached features: {_features(drift['breached_features'])}</p>"
            f"<p>{_a(drift['report'], 'Evidently report')}</p></div>"
        )
    return "".join(out)


def _number(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "—" if value is None else str(value)


def _drift_html(view: dict[str, Any]) -> str:
    drift = view["drift"]
    decision = drift["decision"]
    out = []
    if decision is not None:
        verdict = "retraining triggered" if decision.get("trigger") else "no trigger"
        out.append(f'<p data-testid="run-decision"><b>Decision: {verdict}</b> '
                   f"({escape(str(decision.get('reason') or ''))})</p>")  # fmt: skip
    if not drift["days"]:
        out.append('<p class="muted">This run checked no day: it was skipped (no champion, no scored day waiting) '
                   "or has not reached its check yet.</p>")  # fmt: skip
        return "".join(out)
    rows = "".join(
        f'<tr><td class="day">{escape(day["day"])}</td>'
        f"<td>{'severe' if day['severe'] else 'breach' if day['breached'] else 'ok'}</td>"
        f"<td>{'triggered' if day['triggered'] else '—'}</td><td>{_features(day['breached_features'])}</td>"
        f"<td>{escape('v' + str(day['champion_version']) if day['champion_version'] else '—')}</td>"
        f"<td>{_a(day['report'], 'Evidently report')}</td></tr>"
        for day in drift["days"]
    )
    out.append('<table data-testid="run-drift-days"><thead><tr><th>day</th><th>window</th><th>trigger</th>'
               "<th>breached features (PSI)</th><th>champion</th><th>report</th></tr></thead>"
               f"<tbody>{rows}</tbody></table>")  # fmt: skip
    return "".join(out)


def render(view: dict[str, Any]) -> str:
    """The view as a page of ours (PAGE_CSP: its only script is ``static/run.js``); every value escaped."""
    model = view["model"]
    head = (
        f'<p class="crumbs">{_a(view["page"], "MLOps page of " + model)}</p>'
        f'<h1 data-testid="run-title">{escape(model)}: {escape(view["kind"].replace("_", " "))} run</h1>'
        f'<p class="meta">{escape(view["run_id"])} · state '
        f'<span data-testid="run-state">{escape(str(view["state"] or "unknown"))}</span></p>'
    )
    if view["kind"] == "continuous_training":
        body = _training_html(view)
    elif view["kind"] == "drift_monitoring":
        body = _drift_html(view)
    else:
        body = (f'<p class="muted" data-testid="nothing-to-show">Nothing to show for this DAG: gates and drift '
                f"evidence are on the runs of continuous_training and drift_monitoring, and the model's page has "
                f"everything else.</p><p>{_a(view['page'], 'Open the MLOps page of ' + model)}</p>")  # fmt: skip
    return PAGE.format(title=escape(f"{model} run"), kind=escape(view["kind"]), body=head + body)
