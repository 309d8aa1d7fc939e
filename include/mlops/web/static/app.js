/* The MLOps page: draws what the plugin's JSON endpoints return. At the plugin's root (<airflow>/mlops/) it
 * lists the models (api/models); at models/<model>/ it shows that model (api/models/<model>, .../drift,
 * .../validation, .../scoring). Charts use the vendored uPlot (static/vendor/uplot-1.6.32). Every URL is
 * relative to the document's base, which the app sets to the plugin's root on every page, so the page works
 * under any base path.
 *
 * Data values (names, reasons, tags, errors) are put in the page as text nodes, never parsed as HTML: every
 * element is built by h() below, whose string children become text. Links go out only to http(s) URLs. */
"use strict";

const ROOT = new URL(document.baseURI); // the plugin's root: <airflow>/mlops/
const AIRFLOW_ROOT = new URL("../", ROOT); // the Airflow UI's root, one level above /mlops/
//: Distinct series colours: CSS variables --series-1..N of app.css, which follow the light/dark theme.
const SERIES_COLORS = 10;
//: Features drawn by default on the drift chart: the k with the highest PSI (?k= or the control overrides).
const DEFAULT_TOP_K = 5;

// -- theme ---------------------------------------------------------------------------------------------------
// Airflow's UI puts its colour mode as a class ("light"/"dark") on its <html>; the page follows it (else the
// system's prefers-color-scheme, app.css). Canvas charts take their colours from the CSS variables when drawn,
// so a theme change redraws them (redrawers below).
const redrawers = [];

function applyTheme() {
  const host = hostDocument();
  const classes = host ? host.documentElement.classList : null;
  const theme = classes && classes.contains("dark") ? "dark" : classes && classes.contains("light") ? "light" : null;
  if (theme) document.documentElement.dataset.theme = theme;
  else delete document.documentElement.dataset.theme;
}

function watchTheme() {
  applyTheme();
  const host = hostDocument();
  if (!host) return;
  new host.defaultView.MutationObserver(() => {
    const before = document.documentElement.dataset.theme;
    applyTheme();
    if (document.documentElement.dataset.theme !== before) redrawers.forEach((redraw) => redraw());
  }).observe(host.documentElement, { attributes: true, attributeFilter: ["class"] });
}

function cssColor(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || "#6b7280";
}

function seriesColor(i) {
  return cssColor(`--series-${(i % SERIES_COLORS) + 1}`);
}

// -- small helpers ------------------------------------------------------------------------------------------
// Children of h(): nodes stay, strings and numbers become text nodes, null/undefined/false are left out.
function nodes(children) {
  return children.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false)
    .map((c) => (c instanceof Node ? c : String(c)));
}

// An element: h("td", { class: "num" }, "text", otherNode). Attributes are set as values, children as text.
function h(tag, attrs, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value !== null && value !== undefined && value !== false) element.setAttribute(name, String(value));
  }
  element.append(...nodes(children));
  return element;
}

function table(attrs, headers, rows) {
  return h("table", attrs, h("thead", null, h("tr", null, headers.map((name) => h("th", null, name)))),
    h("tbody", null, rows));
}

// Lines separated by <br>.
function lines(list) {
  return list.flatMap((line, i) => (i ? [h("br"), line] : [line]));
}

function num(value, digits = 4) {
  if (value === null || value === undefined || value === "") return "—";
  if (typeof value !== "number") return String(value);
  if (!Number.isFinite(value)) return String(value);
  if (Number.isInteger(value) && Math.abs(value) >= 1) return value.toLocaleString("en");
  if (Math.abs(value) >= 1000 || (Math.abs(value) < 1e-3 && value !== 0)) return value.toPrecision(4);
  return value.toFixed(digits);
}

function when(iso) {
  if (!iso) return "—";
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? String(iso) : date.toISOString().replace("T", " ").slice(0, 16) + " UTC";
}

function daySeconds(day) {
  return Date.parse(day + "T00:00:00Z") / 1000;
}

function fromRoot(path) {
  return new URL(path, ROOT).href;
}

// Only http(s) URLs (relative ones resolve to the plugin's) are linked or followed: never javascript: or data:.
function safeUrl(url) {
  try {
    const protocol = new URL(url, ROOT).protocol;
    return protocol === "http:" || protocol === "https:" ? url : null;
  } catch (error) {
    return null;
  }
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
  if (!safeUrl(url)) return;
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

function link(url, text, follow) {
  return url && safeUrl(url) ? h("a", { href: url, "data-follow": follow }, text) : "—";
}

function airflowLink(path, text) {
  return path ? link(new URL(path, AIRFLOW_ROOT).href, text, "same") : "—";
}

function externalLink(url, text) {
  return link(url, text, "new");
}

function pluginLink(path, text) {
  return link(path, text, "new");
}

function api(model, part) {
  return "api/models/" + encodeURIComponent(model) + (part ? "/" + part : "");
}

// -- models ----------------------------------------------------------------------------------------------------
function verdict(passed) {
  return passed ? h("span", { class: "pass" }, "pass") : h("span", { class: "fail" }, "FAIL");
}

function gateTable(gates) {
  if (!gates) return h("p", { class: "muted" }, "No gate report recorded for this version.");
  const rows = gates.checks.map((check) => h("tr", { class: check.passed ? null : "failed" },
    h("td", null, h("code", null, check.name)),
    h("td", { class: "num" }, num(check.value)),
    h("td", null, check.threshold),
    h("td", null, verdict(check.passed)),
    h("td", { class: "detail" }, check.detail || "")));
  const c = gates.comparison;
  const ci = c
    ? h("p", { class: "ci", "data-testid": "bootstrap-ci" }, "Paired bootstrap against the champion of the time: ",
      `${c.metric || ""} candidate `, h("b", null, num(c.candidate)), " vs champion ", h("b", null, num(c.champion)),
      ", delta ", h("b", null, num(c.delta)), `, ${num((c.confidence || 0) * 100, 0)}% CI `,
      `[${num(c.ci_low)}, ${num(c.ci_high)}] over ${num(c.samples)} resamples.`)
    : h("p", { class: "muted" }, "No champion to compare with at the time: the absolute gates alone decided.");
  return [ci, table({ class: "gates", "data-testid": "gate-table" },
    ["gate", "value", "threshold", "verdict", "detail"], rows)];
}

function lineage(version) {
  const l = version.lineage || {};
  const report = l.trigger_report ? [" (", pluginLink(l.trigger_report, "drift report"), ")"] : null;
  const terms = [
    ["git commit", h("code", null, String(l.git_commit || "—").slice(0, 12))],
    ["DVC revision", h("code", null, String(l.dvc_revision || "—").slice(0, 12))],
    ["data as of", l.as_of || "—"],
    ["trigger", [l.trigger_reason || "—", report]],
    ["Airflow run", airflowLink(l.airflow_run, l.airflow_run_id || "")],
    ["backend", l.backend || "—"],
  ];
  return h("dl", { class: "lineage" }, terms.map(([term, value]) => [h("dt", null, term), h("dd", null, value)]));
}

function versionCard(title, version, since) {
  if (!version) return h("section", { class: "card" }, h("h2", null, title), h("p", { class: "muted" }, "None yet."));
  const metrics = Object.entries(version.metrics || {}).map(([name, value]) =>
    h("tr", null, h("td", null, name), h("td", { class: "num" }, num(value))));
  const links = version.links || {};
  return h("section", { class: "card", "data-testid": `${title}-card` },
    h("h2", null, title, " ",
      h("span", { class: "version", "data-testid": `${title}-version` }, `v${version.version}`)),
    h("p", { class: "meta" }, `registered ${when(version.created)}`, since ? ` · ${title} since ${when(since)}` : null,
      " · ", externalLink(links.mlflow_run, "MLflow run"), " · ", externalLink(links.mlflow_version, "model version"),
      " · ", pluginLink(links.gate_report, "gate report")),
    h("div", { class: "columns" },
      h("div", null, h("h3", null, "Holdout metrics"), h("table", { class: "metrics" }, h("tbody", null, metrics))),
      h("div", null, h("h3", null, "Lineage"), lineage(version))),
    h("h3", null, "Gates ", version.gates ? verdict(version.gates.passed) : null),
    gateTable(version.gates));
}

// A gate summary has one line per failed gate: show the first three, the rest on demand.
function summaryText(summary) {
  const all = String(summary || "").split("\n").filter(Boolean);
  if (all.length <= 3) return lines(all);
  const more = h("details", null, h("summary", null, `${all.length - 3} more`), lines(all.slice(3)));
  return [lines(all.slice(0, 3)), more];
}

function versionsTable(versions) {
  const rows = versions.map((v) => h("tr", { class: `status-${v.status}` },
    h("td", null, `v${v.version}`), h("td", null, when(v.created)),
    h("td", null, h("span", { class: `badge ${v.status}` }, v.status)),
    h("td", null, v.compared_with && v.compared_with !== "none" ? `v${v.compared_with}` : "—"),
    h("td", null, v.trigger_reason || ""),
    h("td", { class: "detail" }, summaryText(v.gates_summary))));
  return table({ "data-testid": "versions-table" },
    ["version", "registered", "status", "compared with", "trigger", "gates"], rows);
}

function ledgerTimeline(ledger) {
  if (!ledger.length) return h("p", { class: "muted" }, "No alias has moved yet.");
  const items = [...ledger].reverse().map((move) => h("li", { class: `alias-${move.alias}` },
    h("time", null, when(move.at)), " ", h("b", null, move.alias),
    `: ${move.from_version ? "v" + move.from_version : "none"} → `, h("b", null, `v${move.to_version}`), " ",
    h("span", { class: "muted" }, `by ${move.actor}`),
    h("div", { class: "why" }, `${move.reason ?? ""} `,
      move.airflow_run ? ["· ", airflowLink(move.airflow_run, "run")] : null)));
  return h("ol", { class: "timeline", "data-testid": "ledger" }, items);
}

function renderModel(model) {
  const challenger = model.challenger && (!model.champion || model.challenger.version !== model.champion.version);
  return [
    h("nav", { class: "crumbs" }, h("a", { href: "./", "data-testid": "all-models" }, "← All models")),
    h("header", { class: "page-head" },
      h("div", null, h("h1", { "data-testid": "model-name" }, model.model),
        h("p", { class: "muted" }, `dataset ${model.dataset} · promotion policy `,
          h("b", null, model.promotion_policy), " · ", externalLink(model.mlflow_ui, "MLflow UI"))),
      h("div", { class: "actions" },
        h("button", { type: "button", "data-trigger": model.actions.retrain.dag_id, "data-testid": "retrain" },
          "Retrain…"),
        h("button", { type: "button", "data-trigger": model.actions.rollback.dag_id, "data-testid": "rollback" },
          "Roll back…"))),
    versionCard("champion", model.champion, model.champion_since),
    challenger ? versionCard("challenger", model.challenger, null) : null,
    h("section", { class: "card" }, h("h2", null, "Alias history"), ledgerTimeline(model.ledger)),
    h("section", { class: "card" }, h("h2", null, "Versions"), versionsTable(model.versions)),
  ];
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

// An axis in the theme's colours (text, grid and ticks).
function axis(extra) {
  const grid = { stroke: cssColor("--chart-grid"), width: 1 };
  return { stroke: cssColor("--chart-axis"), grid, ticks: grid, ...extra };
}

// Day ticks (the data is daily) and half a day of room at both ends, so bars are not cut.
function dayAxis() {
  return axis({
    incrs: [86400, 2 * 86400, 7 * 86400, 30 * 86400],
    values: (u, splits) => splits.map((s) => new Date(s * 1000).toISOString().slice(0, 10)),
  });
}

function dayScale(xs) {
  return { time: true, range: () => [xs[0] - 43200, xs[xs.length - 1] + 43200] };
}

function thresholdSeries(label, color) {
  return { label, stroke: color, dash: [8, 6], width: 1.5, points: { show: false } };
}

// How many features the drift chart draws: ?k=<n> in the page's URL, else DEFAULT_TOP_K.
function topK() {
  const k = Number.parseInt(new URLSearchParams(window.location.search).get("k") || "", 10);
  return Number.isFinite(k) && k > 0 ? k : DEFAULT_TOP_K;
}

// The drift charts with their controls: the top k features by PSI (k from the control), or all of them.
function drawDrift(drift, element) {
  if (!drift.days.length) {
    element.replaceChildren(h("p", { class: "muted" }, "No drift check has run yet."));
    return;
  }
  const ranked = drift.features_by_psi || drift.features;
  const choice = { k: topK(), all: false };
  const kInput = h("input", { type: "number", min: 1, max: Math.max(ranked.length, 1), value: choice.k,
    "data-testid": "drift-top-k", "aria-label": "features drawn (highest PSI first)" });
  const allBox = h("input", { type: "checkbox", "data-testid": "drift-show-all" });
  const charts = h("div");
  const controls = h("div", { class: "chart-controls" },
    h("label", null, "Features with the highest PSI: ", kInput),
    h("label", null, allBox, ` show all ${ranked.length}`));
  element.replaceChildren(controls, charts);
  const draw = () => {
    const shown = choice.all ? ranked : ranked.slice(0, choice.k);
    charts.replaceChildren();
    drawDriftCharts(drift, shown, charts);
  };
  kInput.addEventListener("change", () => {
    const k = Number.parseInt(kInput.value, 10);
    if (Number.isFinite(k) && k > 0) choice.k = k;
    draw();
  });
  allBox.addEventListener("change", () => {
    choice.all = allBox.checked;
    kInput.disabled = allBox.checked;
    draw();
  });
  redrawers.push(draw);
  draw();
}

// Legends show each series' name (no values until hovered: "live" off); strokes come from the theme.
const NAMED_LEGEND = { live: false };

function drawDriftCharts(drift, features, element) {
  const days = drift.days;
  const xs = days.map((d) => daySeconds(d.day));
  const triggered = days.filter((d) => d.triggered).map((d) => d.day);
  const featureChart = document.createElement("div");
  featureChart.className = "chart";
  featureChart.dataset.testid = "drift-chart";
  featureChart.dataset.features = String(features.length);
  const scoreChart = document.createElement("div");
  scoreChart.className = "chart";
  scoreChart.dataset.testid = "score-psi-chart";
  element.append(featureChart, scoreChart);
  const width = chartWidth(element);
  const t = drift.thresholds;
  const breach = cssColor("--chart-breach");
  // Beyond the palette (show all), colours repeat with a dash so two lines still differ.
  const line = (name, i) => ({ label: name, stroke: seriesColor(i), width: 1.5,
    dash: i < SERIES_COLORS ? undefined : [2 + 2 * Math.floor(i / SERIES_COLORS), 3] });
  new uPlot({
    title: "PSI per feature (dashed: breach and severe thresholds; red verticals: training triggered)",
    width, height: 320,
    legend: NAMED_LEGEND,
    scales: { x: dayScale(xs) },
    series: [{}, ...features.map(line),
      thresholdSeries(`breach ${t.psi}`, breach),
      thresholdSeries(`severe ${t.severe_psi}`, cssColor("--chart-severe"))],
    axes: [dayAxis(), axis({ label: "PSI" })],
    plugins: [markerPlugin(triggered, breach)],
  }, [xs, ...features.map((name) => days.map((d) => d.psi[name])), xs.map(() => t.psi), xs.map(() => t.severe_psi)],
  featureChart);
  new uPlot({
    title: "Score PSI (prediction drift)",
    width, height: 220,
    legend: NAMED_LEGEND,
    scales: { x: dayScale(xs) },
    series: [{}, { label: "score PSI", stroke: cssColor("--chart-score"), width: 2 },
      thresholdSeries(`breach ${t.score_psi}`, breach)],
    axes: [dayAxis(), axis({ label: "PSI" })],
    plugins: [markerPlugin(triggered, breach)],
  }, [xs, days.map((d) => d.score_psi), xs.map(() => t.score_psi)], scoreChart);
}

function driftTable(drift) {
  const rows = [...drift.days].reverse().map((d) => h("tr", { class: d.breached ? "failed" : null },
    h("td", null, d.day),
    h("td", null, d.breached ? h("span", { class: "fail" }, d.severe ? "severe" : "breach")
      : h("span", { class: "pass" }, "ok")),
    h("td", null, d.triggered ? h("b", null, "training triggered") : null),
    h("td", null, Object.entries(d.breached_features || {}).map(([k, v]) => `${k} ${num(v, 3)}`).join(", ")),
    h("td", { class: "num" }, num(d.score_psi, 3)),
    h("td", null, d.champion_version ? `v${d.champion_version}` : ""),
    h("td", null, pluginLink(d.report, "Evidently report"))));
  return table({ "data-testid": "drift-table" },
    ["day", "window", "decision", "breached features (PSI)", "score PSI", "champion", "report"], rows);
}

function drawScoring(days, element) {
  if (!days.length) {
    element.replaceChildren(h("p", { class: "muted" }, "No day has been scored yet."));
    return;
  }
  const draw = () => {
    const chart = document.createElement("div");
    chart.className = "chart";
    chart.dataset.testid = "scoring-chart";
    element.replaceChildren(chart);
    const bars = uPlot.paths && uPlot.paths.bars ? uPlot.paths.bars({ size: [0.6, 40] }) : undefined;
    const xs = days.map((d) => daySeconds(d.day));
    new uPlot({
      title: "Rows scored and positive rate per day",
      width: chartWidth(element), height: 240,
      legend: NAMED_LEGEND,
      scales: { x: dayScale(xs), rate: { auto: true } },
      series: [{}, { label: "rows", stroke: seriesColor(0), fill: cssColor("--chart-rows-fill"), paths: bars,
        points: { show: false } },
      { label: "positive rate", stroke: seriesColor(1), width: 2, scale: "rate" }],
      axes: [dayAxis(), axis({ label: "rows" }),
        axis({ scale: "rate", side: 1, label: "positive rate", grid: { show: false } })],
    }, [xs, days.map((d) => d.rows), days.map((d) => d.positive_rate)], chart);
  };
  redrawers.push(draw);
  draw();
}

function scoringTable(days) {
  const rows = [...days].reverse().map((d) => h("tr", null,
    h("td", null, d.day), h("td", { class: "num" }, num(d.rows)), h("td", { class: "num" }, num(d.positive_rate)),
    h("td", { class: "num" }, d.rows_per_second ? num(Math.round(d.rows_per_second)) : "—"),
    h("td", null, `v${d.model_version}`), h("td", null, pluginLink(d.stats, "output and stats"))));
  return table({ "data-testid": "scoring-table" }, ["day", "rows", "positive rate", "rows/s", "model", ""], rows);
}

// A value a warning quotes (the producer's data, cut short by the validation): as text, never as markup.
function quoted(value) {
  if (value === null || value === undefined) return "—";
  return typeof value === "string" ? value : JSON.stringify(value);
}

function plural(count, noun) {
  return `${count} ${noun}${count === 1 ? "" : "s"}`;
}

// A breach the contract tolerates: the day passed with it. One line: rule, column, observed, expected.
function warningItem(w) {
  const where = w.column === null || w.column === undefined ? "table" : ["column ", h("code", null, w.column)];
  return h("li", { "data-testid": "validation-warning" }, h("code", null, `[${quoted(w.rule)}]`), " ", where,
    ": observed ", h("span", { class: "reason" }, quoted(w.observed)),
    ", expected ", h("span", { class: "reason" }, quoted(w.expected)), w.file ? ` (file ${w.file})` : null);
}

function warningsCell(day) {
  const warnings = day.warnings || [];
  if (!warnings.length) return day.verdict === "pending" ? "—" : h("span", { class: "muted" }, "none");
  return h("details", { "data-testid": "validation-warnings" },
    h("summary", null, h("span", { class: "warn" }, plural(warnings.length, "warning"))),
    h("ul", { class: "warnings" }, warnings.map(warningItem)));
}

function validationTable(days) {
  if (!days.length) return h("p", { class: "muted" }, "No day has landed yet.");
  const verdicts = { validated: ["pass", "validated"], quarantined: ["fail", "QUARANTINED"] };
  const rowClass = (d) => (d.verdict === "quarantined" ? "failed" : (d.warnings || []).length ? "warned" : null);
  const rows = [...days].reverse().map((d) => h("tr", { class: rowClass(d) },
    h("td", { class: "day" }, d.day),
    h("td", null, Object.hasOwn(verdicts, d.verdict) ? h("span", { class: verdicts[d.verdict][0] }, verdicts[d.verdict][1])
      : d.verdict),
    h("td", { class: "num" }, num(d.rows)),
    h("td", null, d.verdict === "validated"
      ? ["DVC ", h("code", null, String(d.dvc_revision || "").slice(0, 12))] : (d.reasons || []).join("; ")),
    h("td", null, warningsCell(d)),
    h("td", null, pluginLink(d.data_docs, "Data Docs"))));
  return table({ "data-testid": "validation-table" },
    ["day", "verdict", "rows", "DVC revision / quarantine reason", "warnings (tolerated)", ""], rows);
}

// -- status ----------------------------------------------------------------------------------------------------
// The status line (api/models/<model>/status): champion and its age, the last days, and what Airflow knows now of
// the model's DAGs: runs running or queued, tasks failed in the last days (reason, log), approvals waiting.
function runLabel(item) {
  return [h("b", null, item.kind), item.day ? ` ${item.day}` : null];
}

function failureItem(f) {
  return h("li", { "data-testid": "status-failure" },
    airflowLink(f.run, runLabel(f)), " · task ", h("code", null, f.task_id),
    f.reason ? [": ", h("span", { class: "reason", "data-testid": "failure-reason" }, f.reason)] : null,
    " · ", airflowLink(f.log, "log"));
}

function statusActivity(now, days, compact) {
  if (!now) return h("span", { class: "muted" }, "Airflow's runs are not known here.");
  const failed = now.failed || [];
  const parts = [
    h("div", { "data-testid": "status-running" }, h("span", { class: "label" }, "Running now: "),
      now.running.length ? now.running.map((r, i) => [i ? ", " : null, airflowLink(r.run, runLabel(r)),
        r.state === "queued" ? " (queued)" : null]) : h("span", { class: "muted" }, "nothing")),
    h("div", { "data-testid": "status-failed" },
      h("span", { class: "label" }, `Failed in the last ${days} days: `),
      failed.length ? h("span", { class: "fail" }, now.failed_total) : h("span", { class: "pass" }, "none"),
      failed.length ? h("ul", { class: "status-list" }, (compact ? failed.slice(0, 1) : failed).map(failureItem),
        compact && failed.length > 1 ? h("li", { class: "muted" }, `and ${now.failed_total - 1} more`) : null)
        : null),
    h("div", { "data-testid": "status-approvals" }, h("span", { class: "label" }, "Approvals waiting: "),
      now.approvals.length ? [h("b", null, now.approvals.length), " ",
        now.approvals.map((a, i) => [i ? ", " : null, a.subject || a.task_id, a.day ? ` (${a.day})` : null]),
        " · ", airflowLink(now.required_actions, "Required actions")] : h("span", { class: "muted" }, "none")),
  ];
  return parts;
}

// "(2 of the last 7 days passed with warnings)", nothing when none did.
function warnedDays(count, of) {
  if (!count) return null;
  return [" (", h("span", { class: "warn", "data-testid": "warned-days" },
    `${of ? `${count} of the last ${of} days` : plural(count, "day")} passed with warnings`), ")"];
}

function statusLine(status, compact) {
  const champion = status.champion
    ? [h("b", null, `v${status.champion.version}`), ` for ${ago(status.champion.age_seconds)}`]
    : h("span", { class: "muted" }, "none yet");
  const drift = status.last_drift_checked
    ? [status.last_drift_checked, status.drift_state && status.drift_state !== "ok"
      ? [" (", h("span", { class: "fail" }, status.drift_state), ")"] : null] : "—";
  return h("div", { class: compact ? "status compact" : "status", "data-testid": "status" },
    compact ? null : h("div", { "data-testid": "status-days" }, h("span", { class: "label" }, "Champion: "), champion,
      " · validated ", status.last_validated || "—", warnedDays(status.warned_days, status.warned_days_of),
      " · scored ", status.last_scored || "—",
      " · drift checked ", drift),
    statusActivity(status.activity, status.failed_days, compact));
}

// "Last updated" and a pause button; refresh() runs every `seconds` while not paused.
function refresher(refresh, seconds) {
  const stamp = h("span", { "data-testid": "last-updated" }, `updated ${when(new Date().toISOString())}`);
  const button = h("button", { type: "button", class: "small", "data-testid": "refresh-toggle" }, "Pause");
  const bar = h("p", { class: "refresh muted" }, stamp, ` · refreshes every ${seconds} s `, button);
  let paused = false;
  button.addEventListener("click", () => {
    paused = !paused;
    button.textContent = paused ? "Resume" : "Pause";
  });
  setInterval(async () => {
    if (paused) return;
    try {
      await refresh();
      stamp.textContent = `updated ${when(new Date().toISOString())}`;
    } catch (error) {
      stamp.textContent = `update failed (${error.message}), retrying`;
    }
  }, seconds * 1000);
  return bar;
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
  if (!drift) return h("span", { class: "muted" }, "not checked yet");
  return [
    drift.state === "ok" ? h("span", { class: "pass" }, "ok") : h("span", { class: "fail" }, drift.state),
    " ", h("span", { class: "muted" }, drift.day),
    drift.breached_features.length ? ` · ${drift.breached_features.join(", ")}` : null,
    drift.triggered ? [" · ", h("b", null, "training triggered")] : null,
    drift.report ? [" · ", pluginLink(drift.report, "report")] : null,
  ];
}

function failedCell(count) {
  if (count === null || count === undefined) return h("span", { class: "muted" }, "—");
  return count > 0 ? h("span", { class: "fail" }, count) : "0";
}

function modelsTable(list) {
  if (!list.models.length) {
    return h("p", { class: "muted" }, "No model yet: add a model file (<model>.yaml) to the models folder.");
  }
  const days = list.failed_runs_days;
  const rows = list.models.map((m) => {
    const link = h("a", { href: safeUrl(m.page), "data-testid": "model-link" }, h("b", null, m.model));
    if (m.error) {
      return h("tr", { class: "failed", "data-testid": "model-row", "data-model": m.model }, h("td", null, link),
        h("td", { colspan: 5 }, h("span", { class: "fail" }, "cannot be read:"), " ", m.error));
    }
    const champion = m.champion
      ? [h("b", { "data-testid": "model-champion" }, `v${m.champion.version}`), " ",
        h("span", { class: "muted", title: when(m.champion.since) }, `for ${ago(m.champion.age_seconds)}`)]
      : h("span", { class: "muted", "data-testid": "model-champion" }, "none yet");
    return h("tr", { "data-testid": "model-row", "data-model": m.model },
      h("td", null, link, h("div", { class: "muted" }, `dataset ${m.dataset}`),
        m.status ? statusLine(m.status, true) : null),
      h("td", null, champion),
      h("td", null, m.last_validated || "—",
        m.warned_days ? [" ", h("span", { class: "warn" }, `(${m.warned_days} with warnings)`)] : null),
      h("td", null, m.last_scored || "—"),
      h("td", null, driftCell(m.drift)),
      h("td", { class: "num" }, failedCell(m.failed_runs)));
  });
  return table({ "data-testid": "models-table" }, ["model", "champion", "last validated day", "last scored day",
    "drift, last checked day", `failed runs${days ? ` (${days} days)` : ""}`], rows);
}

async function showModels(app) {
  const list = await getJson("api/models");
  document.title = "MLOps · models";
  const count = list.models.length;
  const card = h("section", { class: "card" }, modelsTable(list));
  const refresh = async () => card.replaceChildren(modelsTable(await getJson("api/models")));
  app.replaceChildren(
    h("header", { class: "page-head" }, h("div", null, h("h1", null, "Models"),
      h("p", { class: "muted" }, `${count} model${count === 1 ? "" : "s"}, one file each in the models folder; `
        + "open one for its champion, gates, lineage, drift, validation and scoring."),
      refresher(refresh, list.refresh_seconds || 60))),
    card);
}

async function showModel(app, name) {
  const [model, status, drift, validation, scoring] = await Promise.all([getJson(api(name)),
    getJson(api(name, "status")), getJson(api(name, "drift")), getJson(api(name, "validation")),
    getJson(api(name, "scoring"))]);
  document.title = `MLOps · ${model.model}`;
  const driftCharts = h("div", { id: "drift-charts" });
  const scoringCharts = h("div", { id: "scoring-charts" });
  const statusCard = h("section", { class: "card status-card" }, h("h2", null, "Status"), statusLine(status, false));
  const refresh = async () => {
    const fresh = await getJson(api(name, "status"));
    statusCard.replaceChildren(h("h2", null, "Status"), statusLine(fresh, false), bar);
  };
  const bar = refresher(refresh, status.refresh_seconds || 60);
  statusCard.append(bar);
  const [crumbs, head, ...cards] = renderModel(model);
  app.replaceChildren(...nodes([crumbs, head, statusCard, cards,
    h("section", { class: "card" }, h("h2", null, "Drift over time"), driftCharts, driftTable(drift)),
    h("section", { class: "card" }, h("h2", null, "Daily validation"), validationTable(validation.days)),
    h("section", { class: "card" }, h("h2", null, "Scoring"), scoringCharts, scoringTable(scoring.days))]));
  drawDrift(drift, driftCharts);
  drawScoring(scoring.days, scoringCharts);
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
  watchTheme();
  try {
    const model = modelOfPage();
    if (model === null) await showModels(app);
    else await showModel(app, model);
    app.dataset.page = model === null ? "models" : "model";
    app.setAttribute("aria-busy", "false");
    app.dataset.ready = "true";
  } catch (error) {
    app.replaceChildren(h("p", { class: "fail" }, `Could not load the MLOps data: ${error.message}`));
    app.setAttribute("aria-busy", "false");
    app.dataset.ready = "error";
  }
}

main();
