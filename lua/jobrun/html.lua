-- The HTML report (SPEC §7 --html): one self-contained page — no network, no external script,
-- style or font — with the run's header and counts, the grid, the full table (sortable by
-- clicking a column, in a little inline JS), a timeline of the jobs (inline SVG) and each failed
-- job's mismatches, termination and last log lines (ANSI colours rendered as HTML). Every piece of
-- text from a suite, a job or a log is escaped: names are hostile input.
local fs = require "jobrun.c.fs"
local process = require "jobrun.c.process"
local json = require "jobrun.json"
local sanitize = require "jobrun.sanitize"
local template = require "jobrun.template"
local duration = require "jobrun.duration"
local results = require "jobrun.results"
local state = require "jobrun.state"
local grid = require "jobrun.grid"
local logtail = require "jobrun.logtail"

local html = {}

-- How many log lines a failed job shows, and how wide a line may be.
html.LOG_LINES = 40
html.LINE_WIDTH = 2000

local ESC = { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;", ["'"] = "&#39;" }

-- esc(v): any value as HTML text: control characters and stray bytes shown as escapes, then
-- the five HTML specials as entities.
local function esc(v, keep_tab)
  return (sanitize.text(v == nil and "" or tostring(v), keep_tab):gsub("[&<>\"']", ESC))
end
html.escape = esc

local function known(v) return v ~= nil and v ~= json.null end

-- SGR colour codes to CSS classes: 30-37 and 90-97 (foreground), bold.
local FG = { [30] = "k", [31] = "r", [32] = "g", [33] = "y", [34] = "b", [35] = "m", [36] = "c", [37] = "w" }

-- ansi_line(s) -> the line as HTML: SGR colours become <span class>, every other escape
-- sequence is dropped, control characters show as escapes.
function html.ansi_line(s)
  local out = {}
  local fg, bold = nil, false
  local function text(t)
    if t == "" then return end
    t = esc(logtail.strip(t), true)
    if t == "" then return end
    local classes = {}
    if fg then classes[#classes + 1] = "a" .. fg end
    if bold then classes[#classes + 1] = "abold" end
    if #classes > 0 then
      out[#out + 1] = '<span class="' .. table.concat(classes, " ") .. '">' .. t .. "</span>"
    else
      out[#out + 1] = t
    end
  end
  local i = 1
  while true do
    local a, b, params = s:find("\27%[([%d;]*)m", i)
    if not a then text(s:sub(i)); break end
    text(s:sub(i, a - 1))
    if params == "" then params = "0" end
    for p in params:gmatch("%d+") do
      local n = tonumber(p)
      if n == 0 then fg, bold = nil, false
      elseif n == 1 then bold = true
      elseif n == 22 then bold = false
      elseif n == 39 then fg = nil
      elseif FG[n] then fg = FG[n]
      elseif n >= 90 and n <= 97 then fg = FG[n - 60] end
    end
    i = b + 1
  end
  return table.concat(out)
end

local CSS = [[
:root{--pass:#1a7f37;--fail:#cf222e;--pend:#0969da;--none:#8c959f;--bg:#fff;--fg:#1f2328;--mute:#59636e;--line:#d1d9e0}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:var(--fg);background:var(--bg);margin:0 2em 3em}
h1{font-size:1.5em;margin:.8em 0 .2em}
h2{font-size:1.2em;margin:1.6em 0 .5em;border-bottom:1px solid var(--line)}
h3{font-size:1em;margin:1.2em 0 .3em}
.meta{color:var(--mute)}.meta b{color:var(--fg);font-weight:600}
.counts span{display:inline-block;margin:.4em .6em 0 0;padding:.15em .6em;border-radius:1em;color:#fff;font-weight:600}
.c-pass{background:var(--pass)}.c-fail{background:var(--fail)}.c-pending{background:var(--pend)}
.c-total{background:#57606a}
table{border-collapse:collapse;margin:.3em 0}
th,td{border:1px solid var(--line);padding:.25em .6em;text-align:left;vertical-align:top}
th{background:#f6f8fa}table.sortable th{cursor:pointer;user-select:none}
table.sortable th:after{content:" \2195";color:var(--none)}
td.v-pass,.v-pass{color:var(--pass);font-weight:600}td.v-fail,.v-fail{color:var(--fail);font-weight:600}
td.v-pending,.v-pending{color:var(--pend)}
table.grid td{text-align:center;min-width:5em}table.grid td.g-pass{background:#dafbe1}
table.grid td.g-fail{background:#ffebe9}
table.grid td.g-pending{background:#ddf4ff}table.grid td.g-none{color:var(--none)}
table.grid th.row{text-align:right}
table.grid a{color:inherit;text-decoration:none}
.legend span{margin-right:1.2em}
.sw{display:inline-block;width:.9em;height:.9em;border-radius:2px;vertical-align:-.1em;margin-right:.3em}
.s-pass{background:var(--pass)}.s-fail{background:var(--fail)}.s-pending{background:var(--pend)}
.s-none{background:var(--none)}
td.mono,pre{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12px}
pre{background:#0d1117;color:#e6edf3;padding:.6em .8em;overflow-x:auto;border-radius:6px;
white-space:pre-wrap;word-break:break-all}
.ak{color:#8b949e}.ar{color:#ff7b72}.ag{color:#7ee787}.ay{color:#e3b341}.ab{color:#79c0ff}
.am{color:#d2a8ff}.ac{color:#76e3ea}.aw{color:#f0f6fc}.abold{font-weight:700}
.fail-job{border-left:4px solid var(--fail);padding-left:.8em;margin:1em 0}
.fail-job ul{margin:.2em 0}.facts{color:var(--mute)}
svg text{font:11px system-ui,sans-serif;fill:var(--fg)}svg .axis{stroke:var(--line)}
]]

-- The column sort: numbers (data-v) as numbers, the rest as text; a second click reverses.
local JS = [[
(function(){
  document.querySelectorAll("table.sortable").forEach(function(t){
    t.querySelectorAll("th").forEach(function(th,i){
      th.addEventListener("click",function(){
        var b=t.tBodies[0],rows=Array.prototype.slice.call(b.rows),asc=th.getAttribute("data-dir")!=="asc";
        function key(r){var c=r.cells[i];if(!c)return "";
          var v=c.getAttribute("data-v");return v!==null?v:c.textContent;}
        rows.sort(function(x,y){
          var a=key(x),c=key(y),na=parseFloat(a),nc=parseFloat(c),d;
          if(!isNaN(na)&&!isNaN(nc)&&String(na)===a.trim()&&String(nc)===c.trim())d=na-nc;else d=a.localeCompare(c);
          return asc?d:-d;
        });
        rows.forEach(function(r){b.appendChild(r);});
        t.querySelectorAll("th").forEach(function(h){h.removeAttribute("data-dir");});
        th.setAttribute("data-dir",asc?"asc":"desc");
      });
    });
  });
})();
]]

local function verdict_of(job)
  return job.verdict == "pass" and "pass" or job.verdict == "fail" and "fail" or "pending"
end

-- params(data) -> the axis names in declaration order.
local function param_names(data)
  local names = grid.axes(data.jobs)
  return names
end

local function grid_html(data, want, ids)
  local model = grid.build(data.jobs, want)
  if not model then return '<p class="meta">The run has no matrix axes.</p>' end
  local out = {}
  out[#out + 1] = '<p class="meta">' .. grid.title(model, esc) .. "</p>"
  out[#out + 1] = '<table class="grid"><thead><tr><th>' .. (model.cols_axis and (esc(model.rows_axis) .. " \\ "
    .. esc(model.cols_axis)) or esc(model.rows_axis)) .. "</th>"
  for _, c in ipairs(model.cols) do out[#out + 1] = "<th>" .. (model.cols_axis and esc(c) or "verdict") .. "</th>" end
  out[#out + 1] = "</tr></thead><tbody>"
  for r, label in ipairs(model.rows) do
    out[#out + 1] = '<tr><th class="row">' .. esc(label) .. "</th>"
    for c = 1, #model.cols do
      local cell = model.cells[r][c]
      if not cell then
        out[#out + 1] = '<td class="g-none">·</td>'
      else
        local names = {}
        for i, job in ipairs(cell.jobs) do
          names[i] = esc(job.name) .. ": " .. esc(job.status) .. " (" .. verdict_of(job) .. ")"
        end
        local text = esc(grid.cell_text(cell, true))
        local target = cell.jobs[1] and ids[cell.jobs[1]]
        for _, job in ipairs(cell.jobs) do
          if job.verdict == "fail" then target = ids[job]; break end
        end
        out[#out + 1] = string.format('<td class="g-%s" title="%s"><a href="#%s">%s</a></td>', cell.verdict,
          table.concat(names, "&#10;"), target, text)
      end
    end
    out[#out + 1] = "</tr>"
  end
  out[#out + 1] = "</tbody></table>"
  local legend = '<p class="legend"><span><i class="sw s-pass"></i>✓ passed</span>'
    .. '<span><i class="sw s-fail"></i>✗ failed'
    .. '</span><span><i class="sw s-pending"></i>… not finished</span><span><i class="sw s-none"></i>· no job</span>'
  if #model.folded > 0 then
    local f = {}
    for i, n in ipairs(model.folded) do f[i] = esc(n) end
    legend = legend .. "<span>n/m: n of m jobs passed (over " .. table.concat(f, ", ") .. ")</span>"
  end
  out[#out + 1] = legend .. "</p>"
  return table.concat(out, "\n")
end

local function fields_html(fields)
  local keys = {}
  for k in pairs(fields or {}) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  local parts = {}
  for _, k in ipairs(keys) do
    local v = fields[k]
    if v == json.null then v = "null" elseif type(v) == "table" then v = json.encode(v) end
    parts[#parts + 1] = esc(tostring(k) .. "=" .. tostring(v))
  end
  return table.concat(parts, "<br>")
end

local function table_html(data, ids)
  local params = param_names(data)
  local heads = { "Job", "Status", "Native status", "Restarts", "Termination", "Exit", "Backend exit", "Duration",
    "Verdict" }
  for _, p in ipairs(params) do heads[#heads + 1] = p end
  for _, h in ipairs({ "Attempt", "Backend", "Native id", "Submitted", "Started", "Ended", "Mismatches", "Fields",
    "Log" }) do heads[#heads + 1] = h end
  local out = { '<table class="sortable" id="jobs"><thead><tr>' }
  for _, h in ipairs(heads) do out[#out + 1] = "<th>" .. esc(h) .. "</th>" end
  out[#out + 1] = "</tr></thead><tbody>"
  for _, job in ipairs(data.jobs) do
    local function td(v, class, sort)
      local attrs = class and (' class="' .. class .. '"') or ""
      if sort ~= nil then attrs = attrs .. ' data-v="' .. esc(sort) .. '"' end
      return "<td" .. attrs .. ">" .. (known(v) and esc(v) or "-") .. "</td>"
    end
    local row = { '<tr id="row-' .. ids[job] .. '">' }
    local v = verdict_of(job)
    row[#row + 1] = '<td class="mono">' .. (job.verdict == "fail" and ('<a href="#' .. ids[job] .. '">' .. esc(job.name)
      .. "</a>") or esc(job.name)) .. "</td>"
    row[#row + 1] = td(job.status, "v-" .. (job.status == "SUCCEEDED" and "pass" or (job.status == "PENDING"
      or job.status == "RUNNING") and "pending" or "fail"))
    row[#row + 1] = td(job.native_status)
    row[#row + 1] = td(job.restart_count)
    row[#row + 1] = td(job.termination_reason)
    row[#row + 1] = td(job.exit_code)
    row[#row + 1] = td(job.backend_exit_code)
    row[#row + 1] = td(job.duration_s and duration.format(job.duration_s), nil, job.duration_s or -1)
    row[#row + 1] = td(job.verdict or "pending", "v-" .. v)
    for _, p in ipairs(params) do
      local pv = job.params and job.params[p]
      row[#row + 1] = td(pv ~= nil and template.text(pv) or nil)
    end
    row[#row + 1] = td(job.attempt)
    row[#row + 1] = td(job.backend)
    row[#row + 1] = td(job.native_id, "mono")
    row[#row + 1] = td(job.submitted_at)
    row[#row + 1] = td(job.started_at)
    row[#row + 1] = td(job.ended_at)
    local ms = {}
    for i, m in ipairs(job.mismatches or {}) do ms[i] = esc(m) end
    row[#row + 1] = "<td>" .. table.concat(ms, "<br>") .. "</td>"
    row[#row + 1] = '<td class="mono">' .. fields_html(job.fields) .. "</td>"
    row[#row + 1] = td(job.log_path, "mono")
    row[#row + 1] = "</tr>"
    out[#out + 1] = table.concat(row)
  end
  out[#out + 1] = "</tbody></table>"
  return table.concat(out, "\n")
end

local FILL = { pass = "#1a7f37", fail = "#cf222e", pending = "#0969da" }

-- The timeline draws at most this many jobs (a bar each); the table still lists them all.
html.TIMELINE_MAX = 2000

-- span(rec, now) -> start, end (epoch seconds) of an attempt or a job, or nil if it never started.
local function span(rec, now)
  local s = rec.started_at and state.epoch(rec.started_at)
  if not s then return nil end
  local e
  if rec.duration_s then e = s + rec.duration_s
  elseif rec.ended_at then e = state.epoch(rec.ended_at) end
  return s, e or now, e == nil
end

local function timeline_html(data, ids)
  local all = data.jobs
  if #all > html.TIMELINE_MAX then
    data = { jobs = table.move(all, 1, html.TIMELINE_MAX, 1, {}) }
  end
  local note = #all > html.TIMELINE_MAX
    and string.format('<p class="meta">The first %d of %d jobs.</p>\n', html.TIMELINE_MAX, #all) or ""
  local now = process.time()
  local t0, t1 = math.huge, -math.huge
  local bars = {}
  for i, job in ipairs(data.jobs) do
    local entries = {}
    for _, a in ipairs(job.attempts or {}) do
      local s, e = span(a, now)
      if s then
        entries[#entries + 1] = { s = s, e = e, verdict = verdict_of(a), earlier = true, attempt = a.attempt }
      end
    end
    local s, e, open = span(job, now)
    if s then entries[#entries + 1] = { s = s, e = e, verdict = verdict_of(job), open = open } end
    for _, en in ipairs(entries) do t0 = math.min(t0, en.s); t1 = math.max(t1, en.e) end
    bars[i] = entries
  end
  if t0 == math.huge then return '<p class="meta">No job has started yet.</p>' end
  local total = math.max(t1 - t0, 1)
  local label_w, chart_w, row_h = 260, 700, 18
  local h = #data.jobs * row_h + 30
  local out = { string.format('<svg width="%d" height="%d" role="img" '
    .. 'aria-label="timeline">', label_w + chart_w + 60, h) }
  -- time axis: ticks at 5 even steps
  for k = 0, 4 do
    local x = label_w + chart_w * k / 4
    out[#out + 1] = string.format('<line class="axis" x1="%.1f" y1="0" x2="%.1f" y2="%d"/>', x, x, h - 18)
    out[#out + 1] = string.format('<text x="%.1f" y="%d" text-anchor="middle">+%s</text>', x, h - 4,
      esc(duration.format(total * k / 4)))
  end
  local function x_of(t) return label_w + chart_w * (t - t0) / total end
  for i, job in ipairs(data.jobs) do
    local y = (i - 1) * row_h + 2
    local name = sanitize.text(job.name)
    if utf8.len(name) and utf8.len(name) > 40 then name = name:sub(1, utf8.offset(name, 40) - 1) .. "…" end
    out[#out + 1] = string.format('<a href="#%s"><text x="%d" y="%d" text-anchor="end">%s</text></a>',
      job.verdict == "fail" and ids[job] or ("row-" .. ids[job]), label_w - 6, y + 12, esc(name))
    local entries = bars[i]
    if #entries == 0 then
      out[#out + 1] = string.format('<text x="%d" y="%d" fill="#8c959f">not started (%s)</text>', label_w + 4, y + 12,
        esc(job.status))
    end
    for _, en in ipairs(entries) do
      local x1, x2 = x_of(en.s), x_of(en.e)
      local w = math.max(x2 - x1, 2)
      local tip = string.format("%s%s: %s, %s", sanitize.text(job.name),
        en.earlier and (" (attempt " .. tostring(en.attempt) .. ")") or "", en.verdict, duration.format(en.e - en.s))
      out[#out + 1] = string.format('<rect x="%.1f" y="%d" width="%.1f" height="%d" rx="2" fill="%s"%s>'
        .. '<title>%s</title></rect>', x1, y + 2, w, row_h - 5, FILL[en.verdict],
        en.earlier and ' opacity="0.35"'
          or (en.open and ' stroke="#0969da" stroke-dasharray="3 2" fill-opacity="0.6"' or ""),
        esc(tip))
    end
    local last = entries[#entries]
    local restarts = tonumber(job.restart_count) or 0
    local reruns = #(job.attempts or {})
    if last and (restarts > 0 or reruns > 0) then
      -- restarts (within the attempt) and reruns (earlier attempts, drawn faded) are marked
      local marks = {}
      if restarts > 0 then marks[#marks + 1] = "↻" .. restarts end
      if reruns > 0 then marks[#marks + 1] = "attempt " .. tostring(job.attempt or reruns + 1) end
      out[#out + 1] = string.format('<text x="%.1f" y="%d" class="restart"><title>%s</title>%s</text>',
        x_of(last.e) + 4, y + 12, esc(string.format("restarts: %d; earlier attempts: %d", restarts, reruns)),
        esc(table.concat(marks, " ")))
      -- a tick per restart at the bar's start: the attempt began again this many times
      for k = 1, restarts do
        out[#out + 1] = string.format('<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#e3b341" stroke-width="2"/>',
          x_of(last.s) + 3 * k, y, x_of(last.s) + 3 * k, y + row_h - 1)
      end
    end
  end
  out[#out + 1] = "</svg>"
  return note .. table.concat(out, "\n")
end

local function failures_html(data, run_dir, ids)
  local out = {}
  local n = 0
  for _, job in ipairs(data.jobs) do
    if job.verdict == "fail" then
      n = n + 1
      out[#out + 1] = string.format('<div class="fail-job" id="%s"><h3>✗ <span class="mono">%s</span></h3>', ids[job],
        esc(job.name))
      if job.mismatches and #job.mismatches > 0 then
        out[#out + 1] = "<ul>"
        for _, m in ipairs(job.mismatches) do out[#out + 1] = "<li>" .. esc(m) .. "</li>" end
        out[#out + 1] = "</ul>"
      end
      local facts = { "status " .. esc(job.status) }
      if known(job.termination_reason) then facts[#facts + 1] = "termination " .. esc(job.termination_reason) end
      if known(job.exit_code) then facts[#facts + 1] = "exit code " .. esc(job.exit_code) end
      if known(job.restart_count) then facts[#facts + 1] = "restarts " .. esc(job.restart_count) end
      if known(job.native_status) and job.native_status ~= job.status then
        facts[#facts + 1] = "backend " .. esc(job.native_status)
      end
      out[#out + 1] = '<p class="facts">' .. table.concat(facts, " · ") .. "</p>"
      local fields = job.fields or {}
      for _, k in ipairs({ "launch_error", "record_error", "result_error", "log_error", "exception" }) do
        local v = fields[k] or job[k]
        if type(v) == "string" then
          out[#out + 1] = '<p class="facts">' .. esc((k:gsub("_", " "))) .. ": " .. esc(v) .. "</p>"
        end
      end
      local lines = job.log_path_rel and run_dir
        and logtail.lines(run_dir .. "/" .. job.log_path_rel, html.LOG_LINES, { width = html.LINE_WIDTH }) or {}
      if #lines > 0 then
        local rendered = {}
        for i, l in ipairs(lines) do rendered[i] = html.ansi_line(l) end
        out[#out + 1] = string.format('<p class="facts">last %d log lines of <span class="mono">%s</span></p>',
          #lines, esc(job.log_path))
        out[#out + 1] = '<pre class="log">' .. table.concat(rendered, "\n") .. "</pre>"
      else
        out[#out + 1] = '<p class="facts">No log content.</p>'
      end
      out[#out + 1] = "</div>"
    end
  end
  if n == 0 then return '<p class="meta">No job failed.</p>' end
  return table.concat(out, "\n")
end

-- document(data, run_dir, opts) -> the page.
function html.document(data, run_dir, opts)
  opts = opts or {}
  local ids = {}
  for i, job in ipairs(data.jobs) do ids[job] = "job-" .. i end
  local sum = results.summary(data.jobs)
  local git = data.git ~= json.null and data.git or {}
  local commit = known(git.commit) and (tostring(git.commit):sub(1, 12) .. (git.dirty and " (dirty)" or "")
    .. (known(git.branch) and (" on " .. tostring(git.branch)) or "")) or "-"
  local status = sum.failed > 0 and "failed" or sum.pending > 0 and "not finished" or "passed"
  local title = string.format("jobrun %s — %s: %s", sanitize.text(data.suite or "?"), sanitize.text(data.run_id),
    status)
  local out = {
    "<!DOCTYPE html>",
    '<html lang="en"><head><meta charset="utf-8">',
    -- Nothing may load from anywhere: the page is whole as it is.
    "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; "
      .. "script-src 'unsafe-inline'; img-src data:\">",
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    "<title>" .. esc(title) .. "</title>",
    "<style>" .. CSS .. "</style></head><body>",
    "<h1>" .. esc(title) .. "</h1>",
    string.format('<p class="meta">Run <b>%s</b> · suite <b>%s</b> · backend <b>%s</b> · commit <b>%s</b> · '
      .. "started <b>%s</b> · report written %s</p>", esc(data.run_id), esc(data.suite or "-"),
      esc(data.backend or "-"),
      esc(commit), esc(data.started_at or "-"), esc(state.iso(process.time()))),
    string.format('<p class="counts"><span class="c-pass">%d passed</span><span class="c-fail">%d failed</span>'
      .. '<span class="c-pending">%d pending</span><span class="c-total">%d jobs</span></p>',
      sum.passed, sum.failed, sum.pending, sum.total),
    -- A run of several suites: what needs what (jobrun.needs).
    type(data.suites) == "table" and #data.suites > 1
      and ('<h2 id="suites">Suites</h2>' .. require("jobrun.needs").graph_svg(data, esc)) or "",
    '<h2 id="grid">Grid</h2>', require("jobrun.report").by_suite(data)
      and html.suite_grids(data, opts.grid, ids, grid_html) or grid_html(data, opts.grid, ids),
    '<h2 id="failures">Failures</h2>', failures_html(data, run_dir, ids),
    '<h2 id="timeline">Timeline</h2>', timeline_html(data, ids),
    '<h2 id="table">Jobs</h2><p class="meta">Click a column to sort.</p>', table_html(data, ids),
    "<script>" .. JS .. "</script>",
    "</body></html>",
  }
  return table.concat(out, "\n") .. "\n"
end

-- suite_grids(...): in a run of several suites, one grid per suite with a matrix.
function html.suite_grids(data, want, ids, grid_of)
  local out = {}
  for _, g in ipairs(require("jobrun.report").by_suite(data)) do
    local has = false
    for _, job in ipairs(g.jobs) do if next(job.params or {}) then has = true end end
    if has then
      out[#out + 1] = "<h3>Suite " .. esc(g.suite.name) .. "</h3>"
      out[#out + 1] = grid_of(setmetatable({ jobs = g.jobs }, { __index = data }), want, ids)
    end
  end
  return #out > 0 and table.concat(out, "\n") or '<p class="meta">No suite of the run has matrix axes.</p>'
end

function html.write(path, data, run_dir, opts)
  local ok, err = fs.write_atomic(path, html.document(data, run_dir, opts))
  if not ok then require("jobrun.errors").infra("cannot write the HTML report: %s", err) end
end

return html
