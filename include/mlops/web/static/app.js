/* The MLOps page: draws what the plugin's JSON endpoints return. At the plugin's root (<airflow>/mlops/) it
 * lists the models (api/models); at models/<model>/ it shows that model (api/models/<model>, .../drift,
 * .../validation, .../scoring). Charts use the vendored uPlot (static/vendor/uplot-1.6.32). Every URL is
 * relative to the document's base, which the app sets to the plugin's root on every page, so the page works
 * under any base path. */
"use strict";

const ROOT = new URL(document.baseURI); // the plugin's root: <airflow>/mlops/
const AIRFLOW_ROOT = new URL("../", ROOT); // the Airflow UI's root, one level above /mlops/
const COLORS = ["#2563eb", "#d97706", "#059669", "#dc2626", "#7c3aed", "#0891b2", "#db2777", "#65a30d",
  "#9333ea", "#ea580c", "#0d9488", "#4f46e5", "#be123c", "#15803d"];

// -- small helpers ------------------------------------------------------------------------------------------
function esc(value) {
  return String(value ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

function num(value, digits = 4) {
  if (value === null || value === undefined || value === "") return "—";
  if (typeof value !== "number") return esc(value);
  if (!Number.isFinite(value)) return String(value);
  if (Number.isInteger(value) && Math.abs(value) >= 1) return value.toLocaleString("en");
  if (Math.abs(value) >= 1000 || (Math.abs(value) < 1e-3 && value !== 0)) return value.toPrecision(4);
  return value.toFixed(digits);
}

function when(iso) {
  if (!iso) return "—";
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? esc(iso) : date.toISOString().replace("T", " ").slice(0, 16) + " UTC";
}

function daySeconds(day) {
  return Date.parse(day + "T00:00:00Z") / 1000;
}

function fromRoot(path) {
  return new URL(path, ROOT).href;
}

async function getJson(path) {
  const response = await fetch(fromRoot(path), { credentials: "same-origin", headers: { Accept: "application/json" } });
  if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
  return response.json();
}

// -- leaving the page ----------------------------------------------------------------------------------------
// Airflow shows this page in a sandboxed iframe (no popups, no top navigation). Links are therefore followed
// from the Airflow UI's own document (same origin), which is what a click there would do.
function hostDocument() {
  try {
    if (window.top !== window && window.top.document) return window.top.document;
  } catch (error) {
    /* another origin: stay in the frame */
  }
  return null;
}

function follow(url, newTab) {
  const doc = hostDocument() || document;
  const link = doc.createElement("a");
  link.href = fromRoot(url);
  if (newTab) {
    link.target = "_blank";
    link.rel = "noopener";
  }
  link.style.display = "none";
  doc.body.appendChild(link);
  link.click();
  link.remove();
}

// Runs in the Airflow UI's window: move its router to the DAG page, then press the DAG's Trigger button,
// which opens Airflow's own trigger form (params with their descriptions, validation, conf).
const OPEN_TRIGGER_FORM = `
  const state = { usr: null, key: Math.random().toString(36).slice(2, 10), idx: ((history.state || {}).idx || 0) + 1 };
  history.pushState(state, "", path);
  dispatchEvent(new PopStateEvent("popstate", { state }));
  const started = Date.now();
  const timer = setInterval(() => {
    const button = document.querySelector('[data-testid="trigger-dag-button"]');
    if (button && !button.disabled) { clearInterval(timer); button.click(); }
    else if (Date.now() - started > 60000) { clearInterval(timer); }
  }, 250);`;

function openTriggerForm(dagId) {
  const target = new URL("dags/" + encodeURIComponent(dagId), AIRFLOW_ROOT);
  const doc = hostDocument();
  if (doc) {
    try {
      new doc.defaultView.Function("path", OPEN_TRIGGER_FORM)(target.pathname);
      return;
    } catch (error) {
      console.warn("could not open the trigger form in place", error);
    }
  }
  follow(target.href, false);
}

document.addEventListener("click", (event) => {
  const link = event.target.closest("a[data-follow], button[data-trigger]");
  if (!link) return;
  event.preventDefault();
  if (link.dataset.trigger) openTriggerForm(link.dataset.trigger);
  else follow(link.getAttribute("href"), link.dataset.follow === "new");
});

function airflowLink(path, text) {
  if (!path) return "—";
  return `<a href="${esc(new URL(path, AIRFLOW_ROOT).href)}" data-follow="same">${esc(text)}</a>`;
}

function externalLink(url, text) {
  return url ? `<a href="${esc(url)}" data-follow="new">${esc(text)}</a>` : "—";
}

function pluginLink(path, text) {
  return path ? `<a href="${esc(path)}" data-follow="new">${esc(text)}</a>` : "—";
}

function api(model, part) {
  return "api/models/" + encodeURIComponent(model) + (part ? "/" + part : "");
}

// -- models ----------------------------------------------------------------------------------------------------
function verdict(passed) {
  return passed ? '<span class="pass">pass</span>' : '<span class="fail">FAIL</span>';
}

function gateTable(gates) {
  if (!gates) return '<p class="muted">No gate report recorded for this version.</p>';
  const rows = gates.checks.map((check) => `
      <tr class="${check.passed ? "" : "failed"}">
        <td><code>${esc(check.name)}</code></td>
        <td class="num">${num(check.value)}</td>
        <td>${esc(check.threshold)}</td>
        <td>${verdict(check.passed)}</td>
        <td class="detail">${esc(check.detail || "")}</td>
      </tr>`).join("");
  const c = gates.comparison;
  const ci = c ? `<p class="ci" data-testid="bootstrap-ci">Paired bootstrap against the champion of the time:
      ${esc(c.metric || "")} candidate <b>${num(c.candidate)}</b> vs champion <b>${num(c.champion)}</b>,
      delta <b>${num(c.delta)}</b>, ${num((c.confidence || 0) * 100, 0)}% CI
      [${num(c.ci_low)}, ${num(c.ci_high)}] over ${num(c.samples)} resamples.</p>`
    : '<p class="muted">No champion to compare with at the time: the absolute gates alone decided.</p>';
  return `${ci}
    <table class="gates" data-testid="gate-table">
      <thead><tr><th>gate</th><th>value</th><th>threshold</th><th>verdict</th><th>detail</th></tr></thead>
      <tbody>${rows}</tbody>
    </table>`;
}

function lineage(version) {
  const l = version.lineage || {};
  const report = l.trigger_report ? ` (${pluginLink(l.trigger_report, "drift report")})` : "";
  return `<dl class="lineage">
      <dt>git commit</dt><dd><code>${esc((l.git_commit || "—").slice(0, 12))}</code></dd>
      <dt>DVC revision</dt><dd><code>${esc((l.dvc_revision || "—").slice(0, 12))}</code></dd>
      <dt>data as of</dt><dd>${esc(l.as_of || "—")}</dd>
      <dt>trigger</dt><dd>${esc(l.trigger_reason || "—")}${report}</dd>
      <dt>Airflow run</dt><dd>${airflowLink(l.airflow_run, l.airflow_run_id || "")}</dd>
      <dt>backend</dt><dd>${esc(l.backend || "—")}</dd>
    </dl>`;
}

function versionCard(title, version, since) {
  if (!version) return `<section class="card"><h2>${esc(title)}</h2><p class="muted">None yet.</p></section>`;
  const metrics = Object.entries(version.metrics || {}).map(([name, value]) =>
    `<tr><td>${esc(name)}</td><td class="num">${num(value)}</td></tr>`).join("");
  const links = version.links || {};
  return `<section class="card" data-testid="${esc(title)}-card">
      <h2>${esc(title)} <span class="version" data-testid="${esc(title)}-version">v${esc(version.version)}</span></h2>
      <p class="meta">registered ${when(version.created)}${since ? ` · ${esc(title)} since ${when(since)}` : ""} ·
        ${externalLink(links.mlflow_run, "MLflow run")} · ${externalLink(links.mlflow_version, "model version")} ·
        ${pluginLink(links.gate_report, "gate report")}</p>
      <div class="columns">
        <div><h3>Holdout metrics</h3><table class="metrics"><tbody>${metrics}</tbody></table></div>
        <div><h3>Lineage</h3>${lineage(version)}</div>
      </div>
      <h3>Gates ${version.gates ? verdict(version.gates.passed) : ""}</h3>
      ${gateTable(version.gates)}
    </section>`;
}

// A gate summary has one line per failed gate: show the first three, the rest on demand.
function summaryText(summary) {
  const lines = String(summary || "").split("\n").filter(Boolean);
  if (lines.length <= 3) return lines.map(esc).join("<br>");
  return `${lines.slice(0, 3).map(esc).join("<br>")}<details><summary>${lines.length - 3} more</summary>
    ${lines.slice(3).map(esc).join("<br>")}</details>`;
}

function versionsTable(versions) {
  const rows = versions.map((v) => `
      <tr class="status-${esc(v.status)}">
        <td>v${esc(v.version)}</td><td>${when(v.created)}</td>
        <td><span class="badge ${esc(v.status)}">${esc(v.status)}</span></td>
        <td>${v.compared_with && v.compared_with !== "none" ? "v" + esc(v.compared_with) : "—"}</td>
        <td>${esc(v.trigger_reason || "")}</td>
        <td class="detail">${summaryText(v.gates_summary)}</td>
      </tr>`).join("");
  return `<table data-testid="versions-table"><thead><tr><th>version</th><th>registered</th><th>status</th>
      <th>compared with</th><th>trigger</th><th>gates</th></tr></thead><tbody>${rows}</tbody></table>`;
}

function ledgerTimeline(ledger) {
  if (!ledger.length) return '<p class="muted">No alias has moved yet.</p>';
  const items = [...ledger].reverse().map((move) => `
      <li class="alias-${esc(move.alias)}">
        <time>${when(move.at)}</time>
        <b>${esc(move.alias)}</b>: ${move.from_version ? "v" + esc(move.from_version) : "none"} → <b>v${esc(move.to_version)}</b>
        <span class="muted">by ${esc(move.actor)}</span>
        <div class="why">${esc(move.reason)} ${move.airflow_run ? "· " + airflowLink(move.airflow_run, "run") : ""}</div>
      </li>`).join("");
  return `<ol class="timeline" data-testid="ledger">${items}</ol>`;
}

function renderModel(model) {
  return `<nav class="crumbs"><a href="./" data-testid="all-models">← All models</a></nav>
    <header class="page-head">
      <div><h1 data-testid="model-name">${esc(model.model)}</h1>
        <p class="muted">dataset ${esc(model.dataset)} · promotion policy <b>${esc(model.promotion_policy)}</b> ·
          ${externalLink(model.mlflow_ui, "MLflow UI")}</p></div>
      <div class="actions">
        <button type="button" data-trigger="${esc(model.actions.retrain.dag_id)}" data-testid="retrain">Retrain…</button>
        <button type="button" data-trigger="${esc(model.actions.rollback.dag_id)}" data-testid="rollback">Roll back…</button>
      </div>
    </header>
    ${versionCard("champion", model.champion, model.champion_since)}
    ${model.challenger && (!model.champion || model.challenger.version !== model.champion.version)
      ? versionCard("challenger", model.challenger, null) : ""}
    <section class="card"><h2>Alias history</h2>${ledgerTimeline(model.ledger)}</section>
    <section class="card"><h2>Versions</h2>${versionsTable(model.versions)}</section>`;
}

// -- charts ----------------------------------------------------------------------------------------------------
function chartWidth(element) {
  return Math.max(320, Math.min(element.clientWidth || 900, 1400));
}

// Vertical markers on the days whose drift check triggered a training run.
function markerPlugin(days, color) {
  return {
    hooks: {
      draw: [(u) => {
        const ctx = u.ctx;
        ctx.save();
        ctx.strokeStyle = color;
        ctx.lineWidth = 2 * devicePixelRatio;
        ctx.setLineDash([6, 4]);
        for (const day of days) {
          const x = Math.round(u.valToPos(daySeconds(day), "x", true));
          ctx.beginPath();
          ctx.moveTo(x, u.bbox.top);
          ctx.lineTo(x, u.bbox.top + u.bbox.height);
          ctx.stroke();
        }
        ctx.restore();
      }],
    },
  };
}

// Day ticks (the data is daily) and half a day of room at both ends, so bars are not cut.
const DAY_AXIS = {
  incrs: [86400, 2 * 86400, 7 * 86400, 30 * 86400],
  values: (u, splits) => splits.map((s) => new Date(s * 1000).toISOString().slice(0, 10)),
};

function dayScale(xs) {
  return { time: true, range: () => [xs[0] - 43200, xs[xs.length - 1] + 43200] };
}

function thresholdSeries(label, color) {
  return { label, stroke: color, dash: [8, 6], width: 1.5, points: { show: false } };
}

function drawDrift(drift, element) {
  const days = drift.days;
  if (!days.length) {
    element.innerHTML = '<p class="muted">No drift check has run yet.</p>';
    return;
  }
  const xs = days.map((d) => daySeconds(d.day));
  const triggered = days.filter((d) => d.triggered).map((d) => d.day);
  const features = drift.features;
  const featureChart = document.createElement("div");
  featureChart.className = "chart";
  featureChart.dataset.testid = "drift-chart";
  const scoreChart = document.createElement("div");
  scoreChart.className = "chart";
  scoreChart.dataset.testid = "score-psi-chart";
  element.append(featureChart, scoreChart);
  const width = chartWidth(element);
  const t = drift.thresholds;
  new uPlot({
    title: "PSI per feature (dashed: breach and severe thresholds; red verticals: training triggered)",
    width, height: 320,
    scales: { x: dayScale(xs) },
    series: [{}, ...features.map((name, i) => ({ label: name, stroke: COLORS[i % COLORS.length], width: 1.5 })),
      thresholdSeries(`breach ${t.psi}`, "#dc2626"), thresholdSeries(`severe ${t.severe_psi}`, "#7f1d1d")],
    axes: [DAY_AXIS, { label: "PSI" }],
    plugins: [markerPlugin(triggered, "#dc2626")],
  }, [xs, ...features.map((name) => days.map((d) => d.psi[name])), xs.map(() => t.psi), xs.map(() => t.severe_psi)],
  featureChart);
  new uPlot({
    title: "Score PSI (prediction drift)",
    width, height: 220,
    scales: { x: dayScale(xs) },
    series: [{}, { label: "score PSI", stroke: "#111827", width: 2 }, thresholdSeries(`breach ${t.score_psi}`, "#dc2626")],
    axes: [DAY_AXIS, { label: "PSI" }],
    plugins: [markerPlugin(triggered, "#dc2626")],
  }, [xs, days.map((d) => d.score_psi), xs.map(() => t.score_psi)], scoreChart);
}

function driftTable(drift) {
  const rows = [...drift.days].reverse().map((d) => `
      <tr class="${d.breached ? "failed" : ""}">
        <td>${esc(d.day)}</td>
        <td>${d.breached ? (d.severe ? '<span class="fail">severe</span>' : '<span class="fail">breach</span>') : '<span class="pass">ok</span>'}</td>
        <td>${d.triggered ? "<b>training triggered</b>" : ""}</td>
        <td>${esc(Object.entries(d.breached_features).map(([k, v]) => `${k} ${num(v, 3)}`).join(", "))}</td>
        <td class="num">${num(d.score_psi, 3)}</td>
        <td>${d.champion_version ? "v" + esc(d.champion_version) : ""}</td>
        <td>${pluginLink(d.report, "Evidently report")}</td>
      </tr>`).join("");
  return `<table data-testid="drift-table"><thead><tr><th>day</th><th>window</th><th>decision</th>
      <th>breached features (PSI)</th><th>score PSI</th><th>champion</th><th>report</th></tr></thead><tbody>${rows}</tbody></table>`;
}

function drawScoring(days, element) {
  if (!days.length) {
    element.innerHTML = '<p class="muted">No day has been scored yet.</p>';
    return;
  }
  const chart = document.createElement("div");
  chart.className = "chart";
  chart.dataset.testid = "scoring-chart";
  element.append(chart);
  const bars = uPlot.paths && uPlot.paths.bars ? uPlot.paths.bars({ size: [0.6, 40] }) : undefined;
  const xs = days.map((d) => daySeconds(d.day));
  new uPlot({
    title: "Rows scored and positive rate per day",
    width: chartWidth(element), height: 240,
    scales: { x: dayScale(xs), rate: { auto: true } },
    series: [{}, { label: "rows", stroke: "#2563eb", fill: "rgba(37,99,235,0.25)", paths: bars, points: { show: false } },
      { label: "positive rate", stroke: "#d97706", width: 2, scale: "rate" }],
    axes: [DAY_AXIS, { label: "rows" }, { scale: "rate", side: 1, label: "positive rate", grid: { show: false } }],
  }, [xs, days.map((d) => d.rows), days.map((d) => d.positive_rate)], chart);
}

function scoringTable(days) {
  const rows = [...days].reverse().map((d) => `
      <tr><td>${esc(d.day)}</td><td class="num">${num(d.rows)}</td><td class="num">${num(d.positive_rate)}</td>
        <td class="num">${d.rows_per_second ? num(Math.round(d.rows_per_second)) : "—"}</td>
        <td>v${esc(d.model_version)}</td><td>${pluginLink(d.stats, "output and stats")}</td></tr>`).join("");
  return `<table data-testid="scoring-table"><thead><tr><th>day</th><th>rows</th><th>positive rate</th><th>rows/s</th>
      <th>model</th><th></th></tr></thead><tbody>${rows}</tbody></table>`;
}

function validationTable(days) {
  if (!days.length) return '<p class="muted">No day has landed yet.</p>';
  const rows = [...days].reverse().map((d) => `
      <tr class="${d.verdict === "quarantined" ? "failed" : ""}">
        <td>${esc(d.day)}</td>
        <td>${d.verdict === "validated" ? '<span class="pass">validated</span>' : d.verdict === "quarantined" ? '<span class="fail">QUARANTINED</span>' : esc(d.verdict)}</td>
        <td class="num">${num(d.rows)}</td>
        <td>${d.verdict === "validated" ? `DVC <code>${esc((d.dvc_revision || "").slice(0, 12))}</code>` : esc(d.reasons.join("; "))}</td>
        <td>${pluginLink(d.data_docs, "Data Docs")}</td>
      </tr>`).join("");
  return `<table data-testid="validation-table"><thead><tr><th>day</th><th>verdict</th><th>rows</th>
      <th>DVC revision / quarantine reason</th><th></th></tr></thead><tbody>${rows}</tbody></table>`;
}

// -- the models list --------------------------------------------------------------------------------------------
function ago(seconds) {
  if (seconds === null || seconds === undefined) return "";
  const s = Math.max(0, seconds);
  if (s < 3600) return `${Math.round(s / 60)} min`;
  if (s < 2 * 86400) return `${Math.round(s / 3600)} h`;
  return `${Math.round(s / 86400)} days`;
}

function driftCell(drift) {
  if (!drift) return '<span class="muted">not checked yet</span>';
  const state = drift.state === "ok" ? '<span class="pass">ok</span>'
    : `<span class="fail">${esc(drift.state)}</span>`;
  const features = drift.breached_features.length ? ` · ${esc(drift.breached_features.join(", "))}` : "";
  const triggered = drift.triggered ? " · <b>training triggered</b>" : "";
  const report = drift.report ? ` · ${pluginLink(drift.report, "report")}` : "";
  return `${state} <span class="muted">${esc(drift.day)}</span>${features}${triggered}${report}`;
}

function failedCell(count) {
  if (count === null || count === undefined) return '<span class="muted">—</span>';
  return count > 0 ? `<span class="fail">${esc(count)}</span>` : "0";
}

function modelsTable(list) {
  if (!list.models.length) {
    return '<p class="muted">No model yet: add a model file (&lt;model&gt;.yaml) to the models folder.</p>';
  }
  const days = list.failed_runs_days;
  const rows = list.models.map((m) => {
    const link = `<a href="${esc(m.page)}" data-testid="model-link"><b>${esc(m.model)}</b></a>`;
    if (m.error) {
      return `<tr class="failed" data-testid="model-row" data-model="${esc(m.model)}"><td>${link}</td>
        <td colspan="5"><span class="fail">cannot be read:</span> ${esc(m.error)}</td></tr>`;
    }
    const champion = m.champion
      ? `<b data-testid="model-champion">v${esc(m.champion.version)}</b>
         <span class="muted" title="${esc(when(m.champion.since))}">for ${esc(ago(m.champion.age_seconds))}</span>`
      : '<span class="muted" data-testid="model-champion">none yet</span>';
    return `<tr data-testid="model-row" data-model="${esc(m.model)}">
        <td>${link}<div class="muted">dataset ${esc(m.dataset)}</div></td>
        <td>${champion}</td>
        <td>${esc(m.last_validated || "—")}</td>
        <td>${esc(m.last_scored || "—")}</td>
        <td>${driftCell(m.drift)}</td>
        <td class="num">${failedCell(m.failed_runs)}</td>
      </tr>`;
  }).join("");
  return `<table data-testid="models-table"><thead><tr><th>model</th><th>champion</th><th>last validated day</th>
      <th>last scored day</th><th>drift, last checked day</th>
      <th>failed runs${days ? ` (${esc(days)} days)` : ""}</th></tr></thead><tbody>${rows}</tbody></table>`;
}

async function showModels(app) {
  const list = await getJson("api/models");
  document.title = "MLOps · models";
  app.innerHTML = `<header class="page-head"><div><h1>Models</h1>
      <p class="muted">${esc(list.models.length)} model${list.models.length === 1 ? "" : "s"}, one file each in
        the models folder; open one for its champion, gates, lineage, drift, validation and scoring.</p></div></header>
    <section class="card">${modelsTable(list)}</section>`;
}

async function showModel(app, name) {
  const [model, drift, validation, scoring] = await Promise.all([
    getJson(api(name)), getJson(api(name, "drift")), getJson(api(name, "validation")), getJson(api(name, "scoring"))]);
  document.title = `MLOps · ${model.model}`;
  app.innerHTML = `${renderModel(model)}
    <section class="card"><h2>Drift over time</h2><div id="drift-charts"></div>${driftTable(drift)}</section>
    <section class="card"><h2>Daily validation</h2>${validationTable(validation.days)}</section>
    <section class="card"><h2>Scoring</h2><div id="scoring-charts"></div>${scoringTable(scoring.days)}</section>`;
  drawDrift(drift, document.getElementById("drift-charts"));
  drawScoring(scoring.days, document.getElementById("scoring-charts"));
}

// -- the page --------------------------------------------------------------------------------------------------
// Which page: the plugin's root lists the models, models/<model>/ is a model's page.
function modelOfPage() {
  const rest = window.location.pathname.slice(ROOT.pathname.length);
  const match = /^models\/([^/]+)\/?$/.exec(rest);
  return match ? decodeURIComponent(match[1]) : null;
}

async function main() {
  const app = document.getElementById("app");
  try {
    const model = modelOfPage();
    if (model === null) await showModels(app);
    else await showModel(app, model);
    app.dataset.page = model === null ? "models" : "model";
    app.setAttribute("aria-busy", "false");
    app.dataset.ready = "true";
  } catch (error) {
    app.innerHTML = `<p class="fail">Could not load the MLOps data: ${esc(error.message)}</p>`;
    app.setAttribute("aria-busy", "false");
    app.dataset.ready = "error";
  }
}

main();
