-- The HTML report (--html; README "Reports"): one self-contained page — no network, no external script,
-- style or font — with the run's header and counts, the grid, the full table (sortable by
-- clicking a column, in a little inline JS), a timeline of the jobs (inline SVG) and each failed
-- job's mismatches, termination and last log lines (ANSI colours rendered as HTML). Every piece of
-- text from a suite, a job or a log is escaped: names are hostile input.
local fs = require "jobrun.c.fs"
local process = require "jobrun.c.process"
local json = require "jobrun.base.json"
local sanitize = require "jobrun.report.sanitize"
local template = require "jobrun.suite.template"
local duration = require "jobrun.suite.duration"
local results = require "jobrun.judge.results"
local state = require "jobrun.run.store"
local grid = require "jobrun.report.grid"
local facts = require "jobrun.report.facts"
local scan = require "jobrun.c.scan"

local html = {}

-- How many log lines a failed job shows (their width: jobrun.report.facts).
html.LOG_LINES = 40

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
    t = esc(scan.strip(t), true)
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
.charts{display:flex;flex-wrap:wrap;gap:.6em}
.chart{margin:0;padding:.3em;border:1px solid var(--line);border-radius:4px}
.chart svg{display:block}.chart figcaption{font-size:.85em;color:var(--mute)}
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
.jobs-box{position:relative}
#jobs{font-size:13px}#jobs th{white-space:nowrap}#jobs td.name{min-width:10em}
#jobs th:after{content:none}#jobs th[data-dir=asc]:after{content:" \2191"}
#jobs th[data-dir=desc]:after{content:" \2193"}
#jobs details.fields summary{white-space:normal}
#jobs td.wrap{min-width:12em;max-width:20em;overflow-wrap:break-word}
#jobs details summary{cursor:pointer;color:var(--mute);white-space:nowrap}
#jobs details.fields>div{width:26em;overflow-wrap:anywhere;white-space:normal}
#jobs details.tail[open]>pre{position:absolute;left:0;right:0;max-height:24em;overflow:auto;z-index:1;
box-shadow:0 4px 12px rgba(0,0,0,.3)}
.jc{position:absolute;opacity:0;pointer-events:none}
.chooser{margin:.3em 0}.chooser summary{cursor:pointer;color:var(--mute)}
.chooser label{display:inline-block;margin:.2em .9em .2em 0;cursor:pointer;user-select:none}
.chooser label:before{content:"\2610  "}
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

-- The jobs table fits a screen: the columns of the terminal's table (and the params, the
-- mismatches, the details and the log) are shown; the rest are behind a column chooser, in CSS
-- alone (a checkbox per column before the table; each unchecked one hides its column). Fields
-- and exception text are collapsed in <details>; the log is a link (relative to the page) and,
-- for a job that did not fail (a failed one has its tail under Failures), its last lines, within
-- a budget for the whole page.
html.TAIL_LINES = 20          -- lines of a passed job's tail
html.TAIL_WIDTH = 500         -- bytes a line of it may take
html.TAIL_BUDGET = 1024 * 1024 -- bytes of such tails in one page, over all its jobs

-- href(path, base) -> path (absolute) as a URL relative to the directory base (absolute), each
-- byte outside the unreserved set percent-encoded.
local function href(path, base)
  local function parts(p)
    local t = {}
    for seg in p:gmatch("[^/]+") do
      if seg == ".." and #t > 0 then t[#t] = nil elseif seg ~= "." then t[#t + 1] = seg end
    end
    return t
  end
  local a, b = parts(path), parts(base)
  local i = 1
  while i <= #a and i <= #b and a[i] == b[i] do i = i + 1 end
  local out = {}
  for _ = i, #b do out[#out + 1] = ".." end
  for k = i, #a do out[#out + 1] = a[k] end
  local rel = table.concat(out, "/")
  return (rel:gsub("[^%w%-._~/]", function(c) return string.format("%%%02X", c:byte()) end))
end
html.href = href

local function fields_details(job)
  local fields = job.fields or {}
  local n = 0
  for _ in pairs(fields) do n = n + 1 end
  if n == 0 then return "" end
  local exc = type(fields.exception) == "string"
  local label = string.format("%d field%s%s", n, n == 1 and "" or "s", exc and ", exception" or "")
  return '<details class="fields"><summary>' .. esc(label) .. "</summary><div>" .. fields_html(fields)
    .. "</div></details>"
end

local function table_html(data, ids, run_dir, opts)
  local params = param_names(data)
  -- { heading, shown by default }
  local cols = { { "Job", true }, { "Status", true }, { "Native status" }, { "Restarts", true },
    { "Termination", true }, { "Exit", true }, { "Backend exit" }, { "Duration", true }, { "Verdict", true } }
  for _, p in ipairs(params) do cols[#cols + 1] = { p, true } end
  for _, c in ipairs({ { "Attempt" }, { "Backend" }, { "Native id" }, { "Submitted" }, { "Started" }, { "Ended" },
    { "Mismatches", true }, { "Fields", true }, { "Log", true } }) do cols[#cols + 1] = c end
  local out = { '<div class="jobs-box">' }
  -- The chooser: one checkbox per column (the Job column always shows), before the table so
  -- that CSS can hide an unchecked one's cells.
  local css, labels, checked = {}, {}, {}
  for i = 2, #cols do
    local id = "jc-" .. i
    out[#out + 1] = string.format('<input type="checkbox" class="jc" id="%s"%s>', id, cols[i][2] and " checked" or "")
    css[#css + 1] = string.format("#%s:not(:checked)~.jobs-wrap #jobs tr>:nth-child(%d)", id, i)
    checked[#checked + 1] = string.format("#%s:checked~.chooser label[for=%s]:before", id, id)
    labels[#labels + 1] = string.format('<label for="%s">%s</label>', id, esc(cols[i][1]))
  end
  local hidden = 0
  for _, c in ipairs(cols) do if not c[2] then hidden = hidden + 1 end end
  out[#out + 1] = "<style>" .. table.concat(css, ",\n") .. "{display:none}\n" .. table.concat(checked, ",\n")
    .. '{content:"\\2611  "}</style>'
  out[#out + 1] = string.format('<details class="chooser"><summary>Columns (%d more hidden: choose)</summary>%s'
    .. "</details>", hidden, table.concat(labels, ""))
  out[#out + 1] = '<div class="jobs-wrap"><table class="sortable" id="jobs"><thead><tr>'
  for _, c in ipairs(cols) do out[#out + 1] = "<th>" .. esc(c[1]) .. "</th>" end
  out[#out + 1] = "</tr></thead><tbody>"
  local base = opts.page_dir
  local budget, left_out = html.TAIL_BUDGET, 0
  for _, job in ipairs(data.jobs) do
    local function td(v, class, sort)
      local attrs = class and (' class="' .. class .. '"') or ""
      if sort ~= nil then attrs = attrs .. ' data-v="' .. esc(sort) .. '"' end
      return "<td" .. attrs .. ">" .. (known(v) and esc(v) or "-") .. "</td>"
    end
    local row = { '<tr id="row-' .. ids[job] .. '">' }
    local v = verdict_of(job)
    -- A long name may wrap after its separators, and only there, when the screen is narrow.
    local name = esc(job.name):gsub("[_%-./]", "%0<wbr>")
    row[#row + 1] = '<td class="mono name">' .. (job.verdict == "fail" and ('<a href="#' .. ids[job] .. '">'
      .. name .. "</a>") or name) .. "</td>"
    row[#row + 1] = td(job.status, "v-" .. (job.status == "SUCCEEDED" and "pass" or (job.status == "PENDING"
      or job.status == "RUNNING") and "pending" or "fail"))
    row[#row + 1] = td(job.native_status)
    row[#row + 1] = td(job.restart_count)
    row[#row + 1] = td(job.termination_reason)
    row[#row + 1] = td(job.exit_code)
    row[#row + 1] = td(job.backend_exit_code)
    row[#row + 1] = td(job.duration_s and duration.format(job.duration_s), nil, job.duration_s or -1)
    row[#row + 1] = td(require("jobrun.run.retry").text(job) or job.verdict or "pending", "v-" .. v)
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
    row[#row + 1] = '<td class="wrap">' .. table.concat(ms, "<br>") .. "</td>"
    row[#row + 1] = '<td class="mono">' .. fields_details(job) .. "</td>"
    -- The log: a link to the file (relative to the page), its tail for a job that did not fail.
    local log = {}
    local file = job.log_path_rel and run_dir and (run_dir .. "/" .. job.log_path_rel)
    if file and base and fs.stat(file) then
      log[#log + 1] = string.format('<a href="%s" title="%s">log</a>', esc(href(state.absolute(file), base)),
        esc(job.log_path or job.log_path_rel))
    elseif known(job.log_path) then
      log[#log + 1] = '<span class="mono">' .. esc(job.log_path) .. "</span>"
    end
    if job.verdict == "fail" then
      log[#log + 1] = '<a href="#' .. ids[job] .. '">failure</a>'
    elseif file then
      local lines = budget > 0 and scan.tail_lines(file, html.TAIL_LINES, { width = html.TAIL_WIDTH, sgr = true }) or {}
      if budget <= 0 then
        left_out = left_out + 1
      elseif #lines > 0 then
        local rendered = {}
        for i, l in ipairs(lines) do rendered[i] = html.ansi_line(l) end
        local body = table.concat(rendered, "\n")
        budget = budget - #body
        log[#log + 1] = string.format('<details class="tail"><summary>last %d line%s</summary><pre class="log">%s'
          .. "</pre></details>", #lines, #lines == 1 and "" or "s", body)
      end
    end
    row[#row + 1] = "<td>" .. table.concat(log, " ") .. "</td>"
    row[#row + 1] = "</tr>"
    out[#out + 1] = table.concat(row)
  end
  out[#out + 1] = "</tbody></table></div>"
  if left_out > 0 then
    out[#out + 1] = string.format('<p class="meta">The log tails of %d more job%s are left out (the page keeps '
      .. "%d KiB of them): follow their log links.</p>", left_out, left_out == 1 and "" or "s",
      html.TAIL_BUDGET // 1024)
  end
  out[#out + 1] = "</div>"
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
      local r = facts.of(job, run_dir, html.LOG_LINES)
      if #r.mismatches > 0 then
        out[#out + 1] = "<ul>"
        for _, m in ipairs(r.mismatches) do out[#out + 1] = "<li>" .. esc(m) .. "</li>" end
        out[#out + 1] = "</ul>"
      end
      local shown = {}
      for k, f in ipairs(r.facts) do shown[k] = esc(f.label) .. " " .. esc(f.value) end
      out[#out + 1] = '<p class="facts">' .. table.concat(shown, " · ") .. "</p>"
      for _, c in ipairs(r.causes) do
        out[#out + 1] = '<p class="facts">' .. (c.label and esc(c.label) .. ": " or "") .. esc(c.text) .. "</p>"
      end
      for _, e in ipairs(r.errors) do
        out[#out + 1] = '<p class="facts">' .. esc(e.label) .. ": " .. esc(e.text) .. "</p>"
      end
      if #r.tail > 0 then
        local rendered = {}
        for i, l in ipairs(r.tail) do rendered[i] = html.ansi_line(l) end
        out[#out + 1] = string.format('<p class="facts">last %d log lines of <span class="mono">%s</span></p>',
          #r.tail, esc(r.log_path))
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

-- recent_html(data, run_dir) -> each job's last outcomes across runs as a row of small marks,
-- from the history index (nothing without one).
local function recent_html(data, run_dir)
  local history = require "jobrun.run.history"
  local state_dir = run_dir and history.state_dir_of(run_dir)
  local names = {}
  for i, job in ipairs(data.jobs) do names[i] = job.name end
  local outcomes = state_dir and #names > 0 and history.peek(state_dir, function(db)
    return history.last_outcomes(db, names, 20)
  end)
  if not outcomes then return "" end
  local out = { '<h2 id="recent">Recent outcomes</h2><p class="meta">Each job\'s last 20 attempts across runs, '
    .. "oldest first (from the history index).</p><table><tbody>" }
  for _, job in ipairs(data.jobs) do
    local marks = {}
    for _, o in ipairs(outcomes[job.name] or {}) do
      local v = (o.verdict == "pass" or o.verdict == "fail") and o.verdict or "none"
      marks[#marks + 1] = string.format('<span class="sw s-%s" title="%s@%s: %s"></span>', v, esc(o.run_id),
        esc(o.try), esc(o.verdict or "-"))
    end
    out[#out + 1] = string.format("<tr><td>%s</td><td>%s</td></tr>", esc(job.name), table.concat(marks))
  end
  out[#out + 1] = "</tbody></table>"
  return table.concat(out, "\n")
end

-- How many jobs get a chart per metric, and how many runs a trend spans.
html.CHART_JOBS = 24
html.TREND_RUNS = 20

-- sparkline(values, title, w, h) -> a small inline SVG line chart of the numbers, or nil.
function html.sparkline(values, title, w, h)
  local pts = {}
  for _, v in ipairs(values or {}) do
    if type(v) == "number" and v == v and v ~= math.huge and v ~= -math.huge then pts[#pts + 1] = v end
  end
  if #pts == 0 then return nil end
  local lo, hi = math.huge, -math.huge
  for _, v in ipairs(pts) do lo, hi = math.min(lo, v), math.max(hi, v) end
  local range = hi > lo and hi - lo or 1
  local coords = {}
  for i, v in ipairs(pts) do
    local x = #pts == 1 and w / 2 or (i - 1) * (w - 4) / (#pts - 1) + 2
    local y = h - 2 - (v - lo) / range * (h - 4)
    coords[i] = string.format("%.1f,%.1f", x, y)
  end
  if #pts == 1 then coords[2] = coords[1] end
  return string.format('<svg class="spark" width="%d" height="%d" viewBox="0 0 %d %d" role="img"><title>%s</title>'
    .. '<polyline fill="none" stroke="#0969da" stroke-width="1.5" points="%s"/></svg>', w, h, w, h, esc(title),
    table.concat(coords, " "))
end

-- metrics_html(data, run_dir) -> per metric, each job's series in this run (a chart per job, the
-- first CHART_JOBS that have it) and its value over the last TREND_RUNS runs from the history
-- index (README "Metrics"); "" when no job has a metric.
local function metrics_html(data, run_dir)
  local names, seen = {}, {}
  for _, job in ipairs(data.jobs) do
    for name in pairs(type(job.metrics) == "table" and job.metrics or {}) do
      if not seen[name] then seen[name] = true; names[#names + 1] = name end
    end
  end
  if #names == 0 then return "" end
  table.sort(names)
  local metrics = require "jobrun.judge.metrics"
  local history = require "jobrun.run.history"
  local state_dir = run_dir and history.state_dir_of(run_dir)
  local job_names = {}
  for _, job in ipairs(data.jobs) do
    if type(job.metrics) == "table" and #job_names < html.CHART_JOBS then job_names[#job_names + 1] = job.name end
  end
  local trend = state_dir and history.peek(state_dir, function(db)
    return history.metric_trend(db, job_names, html.TREND_RUNS)
  end) or {}
  local out = { '<h2 id="metrics">Metrics</h2><p class="meta">Each job\'s series in this run (downsampled), '
    .. "then its value over its last " .. html.TREND_RUNS .. " runs (from the history index).</p>" }
  -- Each charted job's series, from the run's series file (read once).
  local series_of, file = {}, nil
  local function series(job)
    local s = series_of[job]
    if not s then
      if not file then
        file = {}
        file.text, file.why = metrics.read_series_file(run_dir)
      end
      local got, why = metrics.read_series(run_dir, job, file)
      s = { got = got, why = why }
      series_of[job] = s
    end
    return s
  end
  for _, name in ipairs(names) do
    out[#out + 1] = string.format('<h3 class="mono">%s</h3><div class="charts">', esc(name))
    local shown = 0
    for _, job in ipairs(data.jobs) do
      local rec = type(job.metrics) == "table" and job.metrics[name]
      if type(rec) == "table" and shown < html.CHART_JOBS then
        shown = shown + 1
        local value = known(rec.value) and (metrics.format(rec.value) .. " (" .. tostring(rec.agg or "") .. ")")
          or "missing"
        local chart
        if (rec.n or 0) == 0 then
          chart = '<span class="meta">no points</span>'
        else
          local s = series(job)
          local e = s.got and s.got[name]
          chart = e and (html.sparkline(e.series, job.name .. " · " .. name, 160, 40)
              or '<span class="meta">no points</span>')
            or string.format('<span class="meta no-series">no chart: %s</span>',
              esc(s.why or "the series file has none of this metric"))
        end
        local past = {}
        for _, a in ipairs(trend[job.name] or {}) do past[#past + 1] = a.metrics[name] end
        local trend_svg = #past > 1 and html.sparkline(past, job.name .. " · " .. name .. " over runs", 160, 24)
        out[#out + 1] = string.format('<figure class="chart" data-job="%s" data-metric="%s">%s%s'
          .. '<figcaption><span class="mono">%s</span>: %s%s</figcaption></figure>', esc(job.name), esc(name), chart,
          trend_svg or "", esc(job.name), esc(value),
          trend_svg and esc(string.format(" · %d runs", #past)) or "")
      end
    end
    out[#out + 1] = "</div>"
  end
  return table.concat(out, "\n")
end

function html.document(data, run_dir, opts)
  opts = opts or {}
  local ids = {}
  for i, job in ipairs(data.jobs) do ids[job] = "job-" .. i end
  local sum = results.summary(data.jobs)
  local git = data.git ~= json.null and data.git or {}
  local commit = known(git.commit) and (tostring(git.commit):sub(1, 12) .. (git.dirty and " (dirty)" or "")
    .. (known(git.branch) and (" on " .. tostring(git.branch)) or "")) or "-"
  local commits = require("jobrun.run.provenance").commits(data)
  if #commits > 1 then commit = table.concat(commits, ", ") .. " (the jobs' attempts ran several)" end
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
      .. '<span class="c-pending">%d pending</span><span class="c-total">%s</span></p>',
      sum.passed, sum.failed, sum.pending, require("jobrun.report.table").count(sum.total, "job")),
    require("jobrun.judge.forensics").gpu_line(data.jobs)
      and ('<p class="meta">' .. esc(require("jobrun.judge.forensics").gpu_line(data.jobs)) .. "</p>") or "",
    -- A run of several suites: what needs what (jobrun.plan.needs).
    type(data.suites) == "table" and #data.suites > 1
      and ('<h2 id="suites">Suites</h2>' .. require("jobrun.plan.needs").graph_svg(data, esc)) or "",
    '<h2 id="grid">Grid</h2>', require("jobrun.report.text").by_suite(data)
      and html.suite_grids(data, opts.grid, ids, grid_html) or grid_html(data, opts.grid, ids),
    '<h2 id="failures">Failures</h2>', failures_html(data, run_dir, ids),
    '<h2 id="timeline">Timeline</h2>', timeline_html(data, ids),
    '<h2 id="table">Jobs</h2><p class="meta">Click a column to sort.</p>', table_html(data, ids, run_dir, opts),
    metrics_html(data, run_dir),
    recent_html(data, run_dir),
    "<script>" .. JS .. "</script>",
    "</body></html>",
  }
  return table.concat(out, "\n") .. "\n"
end

-- suite_grids(...): in a run of several suites, one grid per suite with a matrix.
function html.suite_grids(data, want, ids, grid_of)
  local out = {}
  for _, g in ipairs(require("jobrun.report.text").by_suite(data)) do
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
  -- Log links are relative to the page's directory.
  local page = {}
  for k, v in pairs(opts or {}) do page[k] = v end
  local dir = path:match("^(.*)/[^/]*$") or "."
  page.page_dir = fs.realpath(dir == "" and "/" or dir)
  local ok, err = fs.write_atomic(path, html.document(data, run_dir, page))
  if not ok then require("jobrun.base.errors").infra("cannot write the HTML report: %s", err) end
end

return html
