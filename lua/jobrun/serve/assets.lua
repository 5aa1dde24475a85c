-- luacheck: no max line length (the script and style below are JavaScript and CSS, not Lua)
-- The dashboard's page shell, style and script, built into the binary (no network, no CDN). The
-- script renders every value with textContent and DOM calls, never as HTML, so a job name, log
-- line or metric name is text whatever it holds; the CSP allows scripts from this server only.
local assets = {}

assets.shell = [[<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="jobrun-csrf" content="{{CSRF}}">
<meta name="jobrun-actions" content="{{ACTIONS}}">
<title>jobrun</title>
<link rel="stylesheet" href="/assets/app.css">
</head><body>
<header><a href="/" class="brand">jobrun</a> <nav><a href="/">runs</a> <a href="/history">history</a>
<a href="/flaky">flaky</a></nav><span id="live" class="live"></span></header>
<main id="app" {{ATTRS}}><p class="muted">Loading…</p></main>
<script src="/assets/app.js"></script>
</body></html>
]]

assets.css = [[
:root { --pass: #1a7f37; --fail: #cf222e; --pend: #0969da; --warn: #9a6700; --muted: #6e7781; --line: #d0d7de; }
* { box-sizing: border-box; }
body { font: 14px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0; color: #1f2328; background: #fff; }
header { display: flex; gap: 1em; align-items: center; padding: .5em 1em; border-bottom: 1px solid var(--line); }
header .brand { font-weight: 700; color: inherit; text-decoration: none; }
header nav a { margin-right: .75em; }
.live { margin-left: auto; font-size: 12px; color: var(--muted); }
main { padding: 1em; max-width: 100%; }
h1 { font-size: 1.3em; margin: .2em 0 .4em; word-break: break-all; }
h2 { font-size: 1.05em; margin: 1.2em 0 .4em; }
.muted { color: var(--muted); }
.counts span { margin-right: 1em; }
table { border-collapse: collapse; width: 100%; table-layout: auto; }
th, td { border-bottom: 1px solid var(--line); padding: .25em .5em; text-align: left; vertical-align: top; }
th { cursor: pointer; user-select: none; white-space: nowrap; background: #f6f8fa; position: sticky; top: 0; }
td.name { max-width: 32em; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
td.wide { max-width: 18em; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.v-pass, .s-SUCCEEDED { color: var(--pass); font-weight: 600; }
.v-fail, .s-FAILED, .s-LAUNCH_FAILED, .s-LOST { color: var(--fail); font-weight: 600; }
.s-TIMEOUT, .s-CANCELLED, .s-SKIPPED { color: var(--warn); font-weight: 600; }
.v-pending, .s-RUNNING, .s-PENDING { color: var(--pend); }
.controls { display: flex; flex-wrap: wrap; gap: .5em; align-items: center; margin: .5em 0; }
.controls input[type=search] { min-width: 16em; }
.pager button { margin: 0 .2em; }
.grid td { text-align: center; }
.grid td.cell-pass { background: #dafbe1; }
.grid td.cell-fail { background: #ffebe9; }
.grid td.cell-pending { background: #ddf4ff; }
.failure { border: 1px solid var(--line); border-left: 4px solid var(--fail); padding: .5em .75em; margin: .5em 0; }
.failure h3 { margin: 0 0 .3em; font-size: 1em; word-break: break-all; }
.culprit { font-family: ui-monospace, monospace; }
pre { background: #f6f8fa; padding: .5em; overflow-x: auto; max-height: 40em; margin: .3em 0; font-size: 12px; }
.marks span { display: inline-block; width: .7em; height: .7em; margin-right: 1px; border-radius: 2px; }
.marks .m-pass { background: var(--pass); } .marks .m-fail { background: var(--fail); } .marks .m-pending { background: var(--pend); }
.actions button { margin-right: .5em; }
dl.show { display: grid; grid-template-columns: max-content 1fr; gap: .2em 1em; }
dl.show dt { font-weight: 600; } dl.show dd { margin: 0; word-break: break-all; }
svg.timeline { width: 100%; border: 1px solid var(--line); }
.charts { display: flex; flex-wrap: wrap; gap: .75em; }
.charts figure { margin: 0; border: 1px solid var(--line); padding: .25em; }
.charts figcaption { font-size: 12px; max-width: 240px; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.metric h3 { font-size: .95em; margin: .6em 0 .2em; }
.error { color: var(--fail); }
]]

-- The statuses come from the one list (jobrun.suite.schema).
assets.js = [==[
"use strict";
const STATUSES = ]==] .. require("jobrun.base.json").encode(require("jobrun.base.json").array(require("jobrun.suite.schema").STATUSES))
  .. [==[;
(function () {
  const app = document.getElementById("app");
  const live = document.getElementById("live");
  const meta = (n) => (document.querySelector('meta[name="' + n + '"]') || {}).content || "";
  const CSRF = meta("jobrun-csrf");
  const ACTIONS = meta("jobrun-actions") === "on";
  const SVG = "http://www.w3.org/2000/svg";
  const PAGE_SIZE = 100;

  // el(tag, attrs, ...children): strings become text nodes, never HTML.
  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === "class") e.className = v;
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? "" : String(v));
    }
    for (const k of kids.flat(Infinity)) {
      if (k === undefined || k === null || k === false) continue;
      e.appendChild(k instanceof Node ? k : document.createTextNode(String(k)));
    }
    return e;
  }
  function svg(tag, attrs, ...kids) {
    const e = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
    for (const k of kids) e.appendChild(k instanceof Node ? k : document.createTextNode(String(k)));
    return e;
  }
  const enc = encodeURIComponent;
  const show = (v) => (v === undefined || v === null ? "-" : String(v));
  const dur = (s) => (s === undefined || s === null ? "-" : s < 60 ? s.toFixed(1) + "s"
    : s < 3600 ? Math.floor(s / 60) + "m" + String(Math.round(s % 60)).padStart(2, "0") + "s"
    : Math.floor(s / 3600) + "h" + String(Math.floor((s % 3600) / 60)).padStart(2, "0") + "m");
  const short = (c) => (c ? String(c).slice(0, 10) : "-");
  // ANSI escapes (CSI, OSC, two-byte) are dropped for display; the log keeps them.
  const strip = (s) => s.replace(/\x1b\[[0-?]*[ -\/]*[@-~]/g, "").replace(/\x1b\][^\x07\x1b]*(\x07|\x1b\\)?/g, "")
    .replace(/\x1b[@-_]/g, "");
  async function getJSON(url) {
    const r = await fetch(url, { credentials: "same-origin" });
    const body = await r.json().catch(() => ({ error: "HTTP " + r.status }));
    if (!r.ok) throw new Error(body.error || ("HTTP " + r.status));
    return body;
  }
  // put(...kids): the page's content, lists flattened and absent parts left out.
  function put(...kids) {
    app.replaceChildren(...kids.flat(2).filter((k) => k !== undefined && k !== null && k !== false)
      .map((k) => (k instanceof Node ? k : document.createTextNode(String(k)))));
  }
  function fail(e) { app.replaceChildren(el("p", { class: "error" }, String(e.message || e))); }
  function setLive(text) { live.textContent = text; }

  // ---- runs ----
  async function runsPage() {
    document.title = "jobrun: runs";
    const runs = await getJSON("/api/runs");
    const bySuite = {};
    for (const r of runs) (bySuite[r.suite] = bySuite[r.suite] || []).push(r);
    const verdictOf = (r) => !r.summary ? "pending" : r.summary.failed > 0 ? "fail" : r.summary.pending > 0 ? "pending" : "pass";
    const rows = runs.map((r) => {
      if (r.error) return el("tr", {}, el("td", {}, r.run_id), el("td", { colspan: 8, class: "error" }, r.error));
      const recent = (bySuite[r.suite] || []).filter((x) => (x.started_at || "") <= (r.started_at || "")).slice(0, 10).reverse();
      return el("tr", { "data-run": r.run_id },
        el("td", { class: "name" }, el("a", { href: "/runs/" + enc(r.run_id) }, r.run_id)),
        el("td", {}, r.suite), el("td", {}, r.backend), el("td", {}, short(r.commit)),
        el("td", {}, show(r.started_at)), el("td", {}, dur(r.duration_s)),
        el("td", { class: "v-pass" }, r.summary.passed), el("td", { class: "v-fail" }, r.summary.failed),
        el("td", { class: "v-pending" }, r.summary.pending),
        el("td", { class: "marks" }, recent.map((x) => el("span", { class: "m-" + verdictOf(x), title: x.run_id }))));
    });
    put(el("h1", {}, "Runs"),
      runs.length === 0 ? el("p", { class: "muted" }, "No runs in this state directory yet.") :
        el("table", { id: "runs" }, el("thead", {}, el("tr", {}, ["Run", "Suite", "Backend", "Commit", "Started",
          "Duration", "Passed", "Failed", "Pending", "Recent"].map((h) => el("th", {}, h)))), el("tbody", {}, rows)));
  }

  // ---- a run ----
  const ESSENTIAL = ["name", "status", "exit_code", "termination_reason", "restart_count", "duration_s", "verdict"];
  const MORE = ["native_id", "attempt", "started_at", "ended_at", "log_path"];
  const LABEL = { name: "Job", status: "Status", exit_code: "Exit", termination_reason: "Termination",
    restart_count: "Restarts", duration_s: "Duration", verdict: "Verdict", native_id: "Native id", attempt: "Attempt",
    started_at: "Started", ended_at: "Ended", log_path: "Log" };
  const view = { filter: "", status: "", verdict: "", sort: null, desc: false, page: 0, more: false };

  function axesOf(jobs) {
    const axes = [];
    for (const j of jobs) for (const k of Object.keys(j.params || {})) if (!axes.includes(k)) axes.push(k);
    return axes;
  }
  // grid(jobs): the verdicts over the two largest axes, each job put in its cell in one pass.
  const GRID_MAX_CELLS = 2500;
  function grid(jobs) {
    const axes = axesOf(jobs);
    if (axes.length < 1) return null;
    // A job without the axis (another suite's, in a run of several) sits in its "-" row or column.
    const key = (j, a) => { const v = (j.params || {})[a]; return v === undefined ? "null" : JSON.stringify(v); };
    const valueSets = axes.map((a) => { const seen = new Map(); for (const j of jobs) { const k = key(j, a); if (!seen.has(k)) seen.set(k, seen.size); } return seen; });
    const order = axes.map((a, i) => i).sort((x, y) => valueSets[y].size - valueSets[x].size);
    const ri = order[0], ci = axes.length > 1 ? order[1] : -1;
    const rows = [...valueSets[ri].keys()], cols = ci >= 0 ? [...valueSets[ci].keys()] : ['""'];
    if (rows.length * cols.length > GRID_MAX_CELLS) return el("p", { class: "muted" }, "The grid would have " + rows.length * cols.length + " cells: see the table.");
    const rowAxis = axes[ri], colAxis = ci >= 0 ? axes[ci] : null;
    const cells = new Map();
    for (const j of jobs) {
      const k = key(j, rowAxis) + "\u0000" + (colAxis ? key(j, colAxis) : '""');
      if (!cells.has(k)) cells.set(k, []);
      cells.get(k).push(j);
    }
    const label = (v) => { const x = JSON.parse(v); return x && typeof x === "object" ? (x.name || JSON.stringify(x)) : show(x); };
    const head = el("tr", {}, el("th", {}, rowAxis + (colAxis ? " \\ " + colAxis : "")), cols.map((c) => el("th", {}, colAxis ? label(c) : "")));
    const body = rows.map((r) => el("tr", {}, el("th", {}, label(r)), cols.map((c) => {
      const cell = cells.get(r + "\u0000" + c) || [];
      if (cell.length === 0) return el("td", {}, "-");
      const passed = cell.filter((j) => j.verdict === "pass").length;
      const failed = cell.filter((j) => j.verdict === "fail").length;
      const cls = failed ? "fail" : passed === cell.length ? "pass" : "pending";
      const text = cell.length === 1 ? (cls === "fail" ? "✗ fail" : cls === "pass" ? "✓ pass" : "… " + cell[0].status)
        : passed + "/" + cell.length + " ok";
      return el("td", { class: "cell-" + cls }, text);
    })));
    return el("table", { class: "grid" }, el("thead", {}, head), el("tbody", {}, body));
  }
  function cellOf(j, k) {
    const v = j[k];
    if (k === "name") return el("td", { class: "name", title: j.name }, el("a", { href: "/runs/" + enc(currentRun) + "/jobs/" + enc(j.name) }, j.name));
    if (k === "status") return el("td", { class: "s-" + j.status }, j.status);
    if (k === "verdict") return el("td", { class: "v-" + j.verdict }, j.verdict);
    if (k === "duration_s") return el("td", {}, dur(v));
    if (k === "log_path") return el("td", { class: "wide" }, el("a", { href: "/api/runs/" + enc(currentRun) + "/jobs/" + enc(j.name) + "/log?tail=1000" }, show(v)));
    return el("td", { class: "wide", title: show(v) }, show(v));
  }
  let currentRun = null, lastData = null;
  function table(data) {
    const q = view.filter.toLowerCase();
    let jobs = data.jobs.filter((j) => (!view.status || j.status === view.status) && (!view.verdict || j.verdict === view.verdict)
      && (!q || JSON.stringify([j.name, j.termination_reason, j.params, j.mismatches]).toLowerCase().includes(q)));
    if (view.sort) {
      const k = view.sort, d = view.desc ? -1 : 1;
      jobs = jobs.slice().sort((a, b) => { const x = a[k], y = b[k];
        return (x === y ? 0 : x === null || x === undefined ? 1 : y === null || y === undefined ? -1 : x < y ? -1 : 1) * d; });
    }
    const cols = ESSENTIAL.concat(view.more ? MORE : []);
    const params = view.more ? axesOf(data.jobs) : [];
    const pages = Math.max(1, Math.ceil(jobs.length / PAGE_SIZE));
    view.page = Math.min(view.page, pages - 1);
    const shown = jobs.slice(view.page * PAGE_SIZE, (view.page + 1) * PAGE_SIZE);
    const th = (k, label) => el("th", { "data-col": k, onclick: () => { view.desc = view.sort === k ? !view.desc : false; view.sort = k; render(lastData); } },
      label + (view.sort === k ? (view.desc ? " ▼" : " ▲") : ""));
    return el("div", { id: "jobs" },
      el("table", { id: "jobs-table" }, el("thead", {}, el("tr", {}, cols.map((k) => th(k, LABEL[k])), params.map((p) => el("th", {}, p)))),
        el("tbody", {}, shown.map((j) => el("tr", { "data-job": j.name, "data-status": j.status, "data-verdict": j.verdict },
          cols.map((k) => cellOf(j, k)), params.map((p) => el("td", { class: "wide" }, show(JSON.stringify((j.params || {})[p])))))))),
      el("div", { class: "pager" }, "Rows " + (jobs.length ? view.page * PAGE_SIZE + 1 : 0) + "–" + (view.page * PAGE_SIZE + shown.length) + " of " + jobs.length + " ",
        el("button", { disabled: view.page === 0, onclick: () => { view.page--; render(lastData); } }, "‹ previous"),
        el("button", { disabled: view.page >= pages - 1, onclick: () => { view.page++; render(lastData); } }, "next ›")));
  }
  function controls() {
    const opt = (v, cur) => el("option", { value: v, selected: v === cur }, v || "any");
    return el("div", { class: "controls" },
      el("input", { type: "search", id: "filter", placeholder: "filter jobs…", value: view.filter,
        oninput: (e) => { view.filter = e.target.value; view.page = 0; renderTable(); } }),
      el("label", {}, "status ", el("select", { id: "status-filter", onchange: (e) => { view.status = e.target.value; view.page = 0; renderTable(); } },
        [""].concat(STATUSES).map((s) => opt(s, view.status)))),
      el("label", {}, "verdict ", el("select", { id: "verdict-filter", onchange: (e) => { view.verdict = e.target.value; view.page = 0; renderTable(); } },
        ["", "pass", "fail", "pending"].map((s) => opt(s, view.verdict)))),
      el("label", {}, el("input", { type: "checkbox", id: "more-columns", checked: view.more, onchange: (e) => { view.more = e.target.checked; renderTable(); } }), " more columns"));
  }
  function renderTable() {
    const old = document.getElementById("jobs");
    if (old && lastData) old.replaceWith(table(lastData));
  }
  function timeline(jobs) {
    const t = (s) => (s ? Date.parse(s) / 1000 : null);
    const withTimes = jobs.filter((j) => t(j.started_at)).slice(0, 300);
    if (withTimes.length === 0) return null;
    const now = Date.now() / 1000;
    const t0 = Math.min(...withTimes.map((j) => t(j.started_at)));
    const t1 = Math.max(...withTimes.map((j) => t(j.ended_at) || now), t0 + 1);
    const W = 1000, H = 14, pad = 2;
    const s = svg("svg", { class: "timeline", viewBox: "0 0 " + W + " " + (withTimes.length * (H + pad) + pad), preserveAspectRatio: "none" });
    withTimes.forEach((j, i) => {
      const a = (t(j.started_at) - t0) / (t1 - t0) * W, b = ((t(j.ended_at) || now) - t0) / (t1 - t0) * W;
      const color = j.verdict === "pass" ? "#1a7f37" : j.verdict === "fail" ? "#cf222e" : "#0969da";
      const r = svg("rect", { x: a, y: pad + i * (H + pad), width: Math.max(2, b - a), height: H, fill: color });
      r.appendChild(svg("title", {}, j.name + " (" + dur(j.duration_s) + ")"));
      s.appendChild(r);
    });
    return s;
  }
  // chart(series): a small line chart of one metric's (downsampled) series, in inline SVG.
  function chart(series, title) {
    const pts = (series || []).filter((v) => typeof v === "number" && isFinite(v));
    if (pts.length === 0) return null;
    const W = 240, H = 60, lo = Math.min(...pts), hi = Math.max(...pts), span = hi - lo || 1;
    const xy = pts.map((v, i) => (pts.length === 1 ? W / 2 : i / (pts.length - 1) * W).toFixed(1) + "," + (H - 4 - (v - lo) / span * (H - 8)).toFixed(1));
    const s = svg("svg", { class: "chart", viewBox: "0 0 " + W + " " + H, width: W, height: H });
    s.appendChild(svg("polyline", { points: xy.join(" "), fill: "none", stroke: "#0969da", "stroke-width": 1.5 }));
    s.appendChild(svg("title", {}, title + ": " + pts.length + " points, " + lo + " – " + hi));
    return s;
  }
  // seriesOf(j): the job's metric series (GET …/jobs/JOB/series: its series file), asked once per
  // attempt: a promise of { metrics } or { error }.
  const seriesCache = new Map();
  function seriesOf(j) {
    const key = [currentRun, j.name, j.attempt, j.ended_at].join("\u0000");
    let p = seriesCache.get(key);
    if (!p) {
      p = fetch("/api/runs/" + enc(currentRun) + "/jobs/" + enc(j.name) + "/series", { credentials: "same-origin" })
        .then(async (r) => { const b = await r.json().catch(() => ({})); return r.ok ? b : { error: b.error || "HTTP " + r.status }; })
        .catch((e) => ({ error: String(e.message || e) }));
      seriesCache.set(key, p);
    }
    return p;
  }
  // seriesChart(j, name, m): the chart of one metric of a job, drawn once its series has come;
  // without a series file (missing, damaged), a note saying so in its place.
  function seriesChart(j, name, m) {
    if (m.series) return chart(m.series, name) || el("span", { class: "muted" }, "no points"); // a run recorded before series files
    if (!m.n) return el("span", { class: "muted" }, "no points");
    const slot = el("span", { class: "muted loading" }, "loading…");
    seriesOf(j).then((s) => {
      const e = s.metrics && s.metrics[name];
      slot.replaceWith(e ? chart(e.series, name) || el("span", { class: "muted" }, "no points")
        : el("span", { class: "muted no-series" }, "no chart: " + (s.error || "the series file has none of this metric")));
    });
    return slot;
  }
  // metricsSection(jobs): per metric, each job's series (the first 24 jobs that have it).
  function metricsSection(jobs) {
    const names = [];
    for (const j of jobs) for (const k of Object.keys(j.metrics || {})) if (!names.includes(k)) names.push(k);
    if (names.length === 0) return null;
    return [el("h2", {}, "Metrics"), names.map((name) => el("div", { class: "metric", "data-metric": name },
      el("h3", {}, name),
      el("div", { class: "charts" }, jobs.filter((j) => j.metrics && j.metrics[name]).slice(0, 24).map((j) => {
        const m = j.metrics[name];
        return el("figure", { "data-job": j.name }, seriesChart(j, name, m),
          el("figcaption", {}, j.name + ": " + show(m.value) + " (" + show(m.agg) + " of " + show(m.n) + ")"));
      }))))];
  }
  function failure(j) {
    // A job that never started (SKIPPED, LAUNCH_FAILED) has no log to ask for.
    const tail = el("pre", { class: "tail" }, j.started_at ? "…" : "(never started)");
    if (j.started_at) {
      fetch("/api/runs/" + enc(currentRun) + "/jobs/" + enc(j.name) + "/log?tail=40", { credentials: "same-origin" })
        .then((r) => (r.ok ? r.text() : "(no log)")).then((text) => { tail.textContent = strip(text); });
    }
    const c = j.culprit;
    const chain = (j.cause_chain || []).map((x) => x.reason + " on ranks " + (x.ranks || []).join(",")).join(" → ");
    return el("div", { class: "failure", "data-job": j.name },
      el("h3", {}, el("a", { href: "/runs/" + enc(currentRun) + "/jobs/" + enc(j.name) }, j.name), " ",
        el("span", { class: "s-" + j.status }, j.status)),
      el("div", {}, "exit " + show(j.exit_code) + " · termination " + show(j.termination_reason) + " · restarts " + show(j.restart_count)),
      c ? el("div", { class: "culprit" }, "culprit: rank " + show(c.rank) + (c.node ? " (node " + c.node + ")" : "") + ": " + show(c.reason) + (chain ? " → " + chain : "")) : null,
      (j.mismatches || []).length ? el("ul", {}, j.mismatches.map((m) => el("li", {}, m))) : null,
      j.fields && j.fields.exception ? el("div", {}, "exception: " + j.fields.exception) : null,
      j.fields && j.fields.skipped ? el("div", { class: "skipped" }, "skipped: " + j.fields.skipped) : null,
      tail);
  }
  async function act(what) {
    if (!confirm(what + " run " + currentRun + "?")) return;
    const r = await fetch("/api/runs/" + enc(currentRun) + "/" + what, { method: "POST", credentials: "same-origin",
      headers: { "X-CSRF-Token": CSRF } });
    const body = await r.json().catch(() => ({}));
    const out = document.getElementById("action-output");
    if (out) out.textContent = body.output || body.error || ("HTTP " + r.status);
  }
  function render(data) {
    lastData = data;
    document.title = "jobrun: " + data.run_id;
    const s = data.summary;
    const failed = data.jobs.filter((j) => j.verdict === "fail");
    const focus = document.activeElement && document.activeElement.id;
    put(
      el("h1", {}, "Run " + data.run_id),
      el("div", { class: "muted" }, "suite " + data.suite + " · backend " + data.backend + " · commit " +
        short(data.git && data.git.commit) + " · started " + show(data.started_at)),
      el("div", { class: "counts", id: "counts" }, el("span", { class: "v-pass" }, s.passed + " passed"),
        el("span", { class: "v-fail" }, s.failed + " failed"), el("span", { class: "v-pending" }, s.pending + " pending"),
        el("span", {}, s.total + " jobs")),
      ACTIONS ? el("div", { class: "actions" }, el("button", { id: "kill", onclick: () => act("kill") }, "Kill unfinished jobs"),
        el("button", { id: "rerun", onclick: () => act("rerun") }, "Rerun failed jobs"), el("pre", { id: "action-output" })) : null,
      data.suites ? el("h2", {}, "Suites") : null, needsGraph(data),
      el("h2", {}, "Grid"), grid(data.jobs) || el("p", { class: "muted" }, "No matrix axes."),
      el("h2", {}, "Jobs"), controls(), table(data),
      el("h2", {}, "Timeline"), timeline(data.jobs) || el("p", { class: "muted" }, "No job has started."),
      metricsSection(data.jobs),
      el("h2", {}, "Failures (" + failed.length + ")"),
      failed.length ? failed.slice(0, 50).map(failure) : el("p", { class: "muted" }, "None."));
    if (focus) { const f = document.getElementById(focus); if (f) f.focus(); }
  }
  // needsGraph(data): a run of several suites: the server's graph of what needs what (the
  // --html page's), reloaded with each change of the run.
  function needsGraph(data) {
    if (!data.suites || data.suites.length < 2) return null;
    return el("img", { id: "needs-graph", alt: "the suites and what they need",
      src: "/api/runs/" + enc(data.run_id) + "/graph.svg?v=" + enc(data.suites.map((x) => JSON.stringify(x.summary)).join()) });
  }
  async function runPage(id) {
    currentRun = id;
    render(await getJSON("/api/runs/" + enc(id)));
    const es = new EventSource("/api/runs/" + enc(id) + "/events");
    let busy = false, again = false;
    es.addEventListener("change", async () => {
      if (busy) { again = true; return; }
      busy = true;
      do { again = false; try { render(await getJSON("/api/runs/" + enc(id))); setLive("live · updated " + new Date().toLocaleTimeString()); } catch (e) { setLive(String(e.message)); } } while (again);
      busy = false;
    });
    es.onerror = () => setLive("reconnecting…");
  }

  // ---- a job ----
  async function jobPage(id, name) {
    currentRun = id;
    const j = await getJSON("/api/runs/" + enc(id) + "/jobs/" + enc(name));
    document.title = "jobrun: " + j.name;
    const spec = j.spec || {};
    const dl = (pairs) => el("dl", { class: "show" }, pairs.map(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
    const json = (v) => (v === undefined || v === null ? "-" : typeof v === "object" ? JSON.stringify(v) : String(v));
    const attempts = (j.attempts || []).concat([j]).map((a) => el("tr", {},
      el("td", {}, show(a.attempt)), el("td", { class: "s-" + a.status }, a.status), el("td", {}, show(a.exit_code)),
      el("td", {}, show(a.termination_reason)), el("td", {}, short((a.git || {}).commit)), el("td", {}, json(a.nodes)),
      el("td", { class: "v-" + a.verdict }, a.verdict),
      el("td", {}, el("a", { href: "/api/runs/" + enc(id) + "/jobs/" + enc(name) + "/log?download=1" + (a === j ? "" : "&attempt=" + enc(a.attempt)) }, "log"))));
    const log = el("pre", { id: "log" }, "");
    put(
      el("h1", {}, j.name),
      el("div", { class: "muted" }, el("a", { href: "/runs/" + enc(id) }, "run " + id)),
      dl([["status", j.status], ["verdict", j.verdict], ["exit code", show(j.exit_code)], ["termination", show(j.termination_reason)],
        ["params", json(j.params)], ["command", json(spec.commands)], ["env", json(spec.env)], ["expect", json(spec.expect)],
        ["nodes", json(spec.nodes)], ["timeout", json(spec.timeout)], ["log", show(j.log_path)],
        ["mismatches", (Array.isArray(j.mismatches) ? j.mismatches : []).join("; ") || "-"]]),
      Object.keys(j.metrics || {}).length ? [el("h2", {}, "Metrics"), el("div", { class: "charts" },
        Object.entries(j.metrics).map(([name, m]) => el("figure", { "data-metric": name }, seriesChart(j, name, m),
          el("figcaption", {}, name + ": " + show(m.value) + " (" + show(m.agg) + " of " + show(m.n) + "; min " + show(m.min) + ", max " + show(m.max) + ")"))))] : null,
      el("h2", {}, "Attempts"),
      el("table", {}, el("thead", {}, el("tr", {}, ["Attempt", "Status", "Exit", "Termination", "Commit", "Nodes", "Verdict", ""].map((h) => el("th", {}, h)))),
        el("tbody", {}, attempts)),
      el("h2", {}, "Log ", el("a", { href: "/api/runs/" + enc(id) + "/jobs/" + enc(name) + "/log?download=1", download: "" }, "(download the whole log)")),
      log);
    const r = await fetch("/api/runs/" + enc(id) + "/jobs/" + enc(name) + "/log?tail=500", { credentials: "same-origin" });
    let size = 0;
    if (r.ok) { log.textContent = strip(await r.text()); size = Number(r.headers.get("X-Log-Size") || 0); }
    else log.textContent = "(no log yet)";
    const es = new EventSource("/api/runs/" + enc(id) + "/jobs/" + enc(name) + "/log/events?from=" + size);
    es.addEventListener("log", (e) => { log.textContent += strip(e.data) + "\n"; setLive("following the log"); });
  }

  // ---- diff, history, flaky ----
  async function diffPage(a, b) {
    if (!a || !b) { put(el("h1", {}, "Diff"), el("p", {}, "Give two runs: /diff?a=RUN&b=RUN")); return; }
    const d = await getJSON("/api/diff?a=" + enc(a) + "&b=" + enc(b));
    const rows = (d.jobs || []).map((r) => el("tr", {}, Object.values(r).map((v) => el("td", {}, typeof v === "object" ? JSON.stringify(v) : show(v)))));
    put(el("h1", {}, "Diff " + a + " → " + b), rows.length ? el("table", {}, el("tbody", {}, rows)) : el("p", {}, "No differences."));
  }
  // history and flaky: the CLI's --json (jobrun history / jobrun flaky), one row per job.
  async function listPage(kind) {
    const d = await getJSON("/api/" + kind);
    const jobs = d.jobs || [];
    const head = kind === "history" ? ["Job", "Passed", "Failed", "Pass rate", "Flips", "Recent"] : ["Job", "Passed", "Failed", "Flips", "Commits"];
    const rows = jobs.map((j) => kind === "history"
      ? el("tr", { "data-job": j.name }, el("td", { class: "name" }, j.name), el("td", {}, show(j.passed)), el("td", {}, show(j.failed)),
          el("td", {}, j.pass_rate === undefined || j.pass_rate === null ? "-" : Math.round(j.pass_rate * 100) + "%"), el("td", {}, show(j.flips)),
          el("td", { class: "marks" }, (j.attempts || []).slice(0, 20).reverse().map((a) => el("span", { class: "m-" + (a.verdict || "pending"), title: a.run_id + " " + (a.commit || "") }))))
      : el("tr", { "data-job": j.name }, el("td", { class: "name" }, j.name), el("td", {}, show(j.passed)), el("td", {}, show(j.failed)), el("td", {}, show(j.flips)),
          el("td", {}, (j.commits || []).map((c) => short(c.commit) + ": " + (c.passed || []).length + " passed, " + (c.failed || []).length + " failed").join("; "))));
    put(el("h1", {}, kind === "history" ? "History" : "Flaky jobs"),
      el("p", { class: "muted" }, "over " + (Array.isArray(d.runs) ? d.runs.length : show(d.runs)) + " runs"),
      jobs.length ? el("table", { id: kind }, el("thead", {}, el("tr", {}, head.map((h) => el("th", {}, h)))), el("tbody", {}, rows))
        : el("p", {}, kind === "flaky" ? "No flaky job." : "Nothing yet."));
  }

  const p = app.dataset.page;
  const go = p === "runs" ? runsPage() : p === "run" ? runPage(app.dataset.run) : p === "job" ? jobPage(app.dataset.run, app.dataset.job)
    : p === "diff" ? diffPage(app.dataset.a, app.dataset.b) : listPage(p);
  go.catch(fail);
})();
]==]

return assets
