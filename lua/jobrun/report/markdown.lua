-- The Markdown summary (--summary, $GITHUB_STEP_SUMMARY; README "Reports"): GitHub-flavoured Markdown
-- with the counts, the grid as a table, and each failure with its mismatches and a short log tail
-- in a <details> block. GitHub refuses a step summary over 1 MiB, so the summary is kept under a
-- byte budget: log tails are cut first, then failures beyond the first ones, then the grid.
local fs = require "jobrun.c.fs"
local json = require "jobrun.base.json"
local sanitize = require "jobrun.report.sanitize"
local results = require "jobrun.judge.results"
local grid = require "jobrun.report.grid"
local facts = require "jobrun.report.facts"

local markdown = {}

markdown.LIMIT = 1024 * 1024 -- GitHub's limit for one step's summary
markdown.TAIL = { 10, 5, 2, 0 } -- log lines per failure, tried in turn until the summary fits
markdown.TEXT_WIDTH = 500

local HTML = { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;" }

local function cut(s, n)
  if #s <= n then return s end
  local stop = n
  while stop > 1 and (s:byte(stop + 1) or 0) & 0xC0 == 0x80 do stop = stop - 1 end
  return s:sub(1, stop) .. "…"
end

-- html(s): text for inside HTML (<summary>, <code>): escaped, one line.
local function html(s) return (cut(sanitize.text(s), markdown.TEXT_WIDTH):gsub("[&<>\"]", HTML)) end

-- md(s): text for Markdown (a table cell, a list item): HTML specials as entities, and the
-- characters that would format, link or end a cell escaped with a backslash.
local function md(s)
  s = cut(sanitize.text(s), markdown.TEXT_WIDTH):gsub("[&<>\"]", HTML)
  return (s:gsub("[\\`*_%[%]|~#!()]", "\\%0"))
end
markdown.escape = md

local MARK = { pass = "✅", fail = "❌", pending = "⏳" }

local function cell_md(cell)
  if not cell then return "·" end
  if cell.total == 1 then return MARK[cell.verdict] .. " " .. cell.verdict end
  return string.format("%d/%d %s", cell.passed, cell.total, MARK[cell.verdict])
end

local function grid_md(data, want)
  local model = grid.build(data.jobs, want)
  if not model then return nil end
  local out = {}
  out[#out + 1] = "**Grid: " .. grid.title(model, md) .. "**"
  out[#out + 1] = ""
  local head = { model.cols_axis and (md(model.rows_axis) .. " \\\\ " .. md(model.cols_axis)) or md(model.rows_axis) }
  local rule = { "---" }
  for _, c in ipairs(model.cols) do
    head[#head + 1] = model.cols_axis and md(c) or "verdict"
    rule[#rule + 1] = ":---:"
  end
  out[#out + 1] = "| " .. table.concat(head, " | ") .. " |"
  out[#out + 1] = "| " .. table.concat(rule, " | ") .. " |"
  for r, label in ipairs(model.rows) do
    local row = { "**" .. md(label) .. "**" }
    for c = 1, #model.cols do row[#row + 1] = cell_md(model.cells[r][c]) end
    out[#out + 1] = "| " .. table.concat(row, " | ") .. " |"
  end
  out[#out + 1] = ""
  local legend = "✅ passed · ❌ failed · ⏳ not finished · · no job"
  if #model.folded > 0 then
    local f = {}
    for i, n in ipairs(model.folded) do f[i] = md(n) end
    legend = legend .. " · n/m: n of m jobs passed (over " .. table.concat(f, ", ") .. ")"
  end
  out[#out + 1] = legend
  return table.concat(out, "\n")
end

-- metrics_md(data) -> a table of the metrics the reports show (report.metrics, else those with
-- expectations, else every metric found), one row per job that has any; nil when none.
local function metrics_md(data)
  local report = require "jobrun.report.text"
  local names = report.metric_columns(data)
  if #names == 0 then
    local seen = {}
    for _, job in ipairs(data.jobs) do
      for name in pairs(type(job.metrics) == "table" and job.metrics or {}) do
        if not seen[name] then seen[name] = true; names[#names + 1] = name end
      end
    end
    table.sort(names)
  end
  if #names == 0 then return nil end
  local head, rule = { "job" }, { "---" }
  for _, n in ipairs(names) do head[#head + 1] = md(n); rule[#rule + 1] = "---:" end
  local out = { "**Metrics**", "", "| " .. table.concat(head, " | ") .. " |",
                "| " .. table.concat(rule, " | ") .. " |" }
  local rows = 0
  for _, job in ipairs(data.jobs) do
    if type(job.metrics) == "table" and next(job.metrics) then
      local row = { "`" .. cut(sanitize.text(job.name), 200):gsub("[`|]", "'") .. "`" }
      for _, n in ipairs(names) do
        local v, bad = report.metric_cell(job, n)
        local rec = job.metrics[n]
        if v ~= "-" and type(rec) == "table" then
          v = string.format("%s (%s of %s)", v, md(rec.agg or "?"), require("jobrun.judge.metrics").count(rec.n))
        end
        row[#row + 1] = (bad and "❌ " or "") .. v
      end
      out[#out + 1] = "| " .. table.concat(row, " | ") .. " |"
      rows = rows + 1
    end
  end
  if rows == 0 then return nil end
  for _, c in ipairs(report.checks(data)) do
    out[#out + 1] = ""
    out[#out + 1] = string.format("%s %s: %s", c.ok == nil and "⏳" or c.ok and "✅" or "❌", md(c.name), md(c.text))
  end
  return table.concat(out, "\n")
end

-- fence(lines) -> a fence of backticks longer than any run of them in the lines.
local function fence(lines)
  local longest = 2
  for _, l in ipairs(lines) do
    for run in l:gmatch("`+") do longest = math.max(longest, #run) end
  end
  return string.rep("`", longest + 1)
end

local function failure_md(r, tail, flaky)
  local out = {}
  local ms = r.mismatches
  local why = #ms > 0 and ms[1] or ("status " .. tostring(r.status))
  if flaky then why = "failed; " .. flaky .. " — " .. why end
  out[#out + 1] = string.format("<details><summary>❌ <code>%s</code>: %s%s</summary>", html(r.name), html(why),
    #ms > 1 and string.format(" (+%d more)", #ms - 1) or "")
  out[#out + 1] = ""
  for i, m in ipairs(ms) do
    if i > 10 then out[#out + 1] = string.format("- … and %d more", #ms - 10); break end
    out[#out + 1] = "- " .. md(m)
  end
  local shown = {}
  for k, f in ipairs(r.facts) do shown[k] = f.label .. " " .. md(f.value) end
  out[#out + 1] = "- " .. table.concat(shown, " · ")
  for _, c in ipairs(r.causes) do out[#out + 1] = "- " .. (c.label and c.label .. ": " or "") .. md(c.text) end
  for _, e in ipairs(r.errors) do out[#out + 1] = "- " .. e.label .. ": " .. md(e.text) end
  if tail and #tail > 0 then
    local f = fence(tail)
    out[#out + 1] = ""
    out[#out + 1] = f .. "text"
    for _, l in ipairs(tail) do out[#out + 1] = l end
    out[#out + 1] = f
  end
  out[#out + 1] = ""
  out[#out + 1] = "</details>"
  return table.concat(out, "\n")
end

-- document(data, run_dir, opts) -> the summary, at most opts.limit bytes (default 1 MiB).
function markdown.document(data, run_dir, opts)
  opts = opts or {}
  local limit = opts.limit or markdown.LIMIT
  local sum = results.summary(data.jobs)
  local failed = {}
  for _, job in ipairs(data.jobs) do if job.verdict == "fail" then failed[#failed + 1] = job end end
  local mark = sum.failed > 0 and "❌" or sum.pending > 0 and "⏳" or "✅"
  local head = {
    string.format("## %s jobrun: %s — %d passed, %d failed, %d pending of %d", mark, md(data.suite or "?"),
      sum.passed, sum.failed, sum.pending, sum.total),
    "",
  }
  local git = data.git ~= json.null and data.git or {}
  local meta = { "Run `" .. cut(sanitize.text(data.run_id), 200):gsub("`", "'") .. "`",
    "backend " .. md(data.backend or "-") }
  if git.commit and git.commit ~= json.null then
    meta[#meta + 1] = "commit `" .. cut(sanitize.text(git.commit), 40):gsub("`", "'") .. "`"
      .. (git.dirty and " (dirty)" or "")
  end
  local commits = require("jobrun.run.provenance").commits(data)
  if #commits > 1 then meta[#meta + 1] = "attempts at commits " .. md(table.concat(commits, ", ")) end
  if data.started_at then meta[#meta + 1] = "started " .. md(data.started_at) end
  local gpu = require("jobrun.judge.forensics").gpu_line(data.jobs)
  if gpu then meta[#meta + 1] = md(gpu) end
  head[#head + 1] = table.concat(meta, " · ")
  -- Jobs that passed only after a retry policy started them again (failures say their own).
  for _, job in ipairs(data.jobs) do
    local retried = job.verdict ~= "fail" and require("jobrun.run.retry").text(job)
    if retried then
      head[#head + 1] = "\n- `" .. cut(sanitize.text(job.name), 200):gsub("`", "'") .. "`: " .. md(retried)
    end
  end
  local header = table.concat(head, "\n") .. "\n"
  -- Failure records, made once, with the most log lines any try needs.
  local records, tails = {}, {}
  for i, job in ipairs(failed) do
    records[i] = facts.of(job, run_dir, markdown.TAIL[1])
    local lines = {}
    for k, l in ipairs(records[i].plain) do lines[k] = sanitize.text(l, true) end
    tails[i] = lines
  end
  local grid_text = grid_md(data, opts.grid)
  local metrics_text = metrics_md(data)
  local flaky = require("jobrun.run.history").flaky_notes(run_dir, data)
  local function render(n_tail, n_failed, with_grid)
    local out = { header }
    if with_grid and grid_text then out[#out + 1] = grid_text .. "\n" end
    if with_grid and metrics_text then out[#out + 1] = metrics_text .. "\n" end
    if #failed > 0 then
      out[#out + 1] = string.format("### Failures (%d of %s)\n", #failed,
        require("jobrun.report.table").count(#data.jobs, "job"))
      for i = 1, math.min(n_failed, #failed) do
        local tail = {}
        local lines = tails[i]
        for k = math.max(1, #lines - n_tail + 1), #lines do if n_tail > 0 then tail[#tail + 1] = lines[k] end end
        out[#out + 1] = failure_md(records[i], tail, flaky[records[i].name]) .. "\n"
      end
      if n_failed < #failed then
        out[#out + 1] = string.format("… and %d more failures (cut to keep this summary under %d KiB): "
          .. "`jobrun check %s --failed`\n", #failed - n_failed, limit // 1024,
          cut(sanitize.text(data.run_id), 200):gsub("`", "'"))
      end
    end
    return table.concat(out, "\n")
  end
  for _, n in ipairs(markdown.TAIL) do
    local text = render(n, #failed, true)
    if #text <= limit then return text end
  end
  local n = #failed
  while n > 0 do
    n = n // 2
    local text = render(0, n, true)
    if #text <= limit then return text end
  end
  local text = render(0, 0, false)
  if #text <= limit then return text end
  return cut(header, math.max(0, limit - 4))
end

-- write(path, data, run_dir, opts): opts.append adds to the file (as GitHub expects of
-- $GITHUB_STEP_SUMMARY), keeping the whole file under the limit.
function markdown.write(path, data, run_dir, opts)
  opts = opts or {}
  local limit = markdown.LIMIT
  if opts.append then
    local st = fs.stat(path)
    limit = limit - (st and st.size or 0) - 1 -- and the newline that ends it
    if limit < 512 then return nil, "it is already at GitHub's 1 MiB limit" end
  end
  local text = markdown.document(data, run_dir, { grid = opts.grid, limit = limit })
  if opts.append then
    local f, err = io.open(path, "a")
    if not f then return nil, err end
    local ok, werr = f:write(text, "\n")
    f:close()
    if not ok then return nil, werr end
    return true
  end
  return fs.write_atomic(path, text)
end

return markdown
