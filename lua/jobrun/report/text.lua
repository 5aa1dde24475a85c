-- The human report of a run (README "Reports"): a header, one row per job with the old tool's colours,
-- a status summary, with --grid the verdicts as a grid over two axes; the --json document
-- (README "Jobs, statuses and results"); and the files: --junit, --html, --summary (or $GITHUB_STEP_SUMMARY).
local color = require "jobrun.report.color"
local textable = require "jobrun.report.table"
local template = require "jobrun.suite.template"
local duration = require "jobrun.suite.duration"
local results = require "jobrun.judge.results"
local json = require "jobrun.base.json"
local facts = require "jobrun.report.facts"
local term = require "jobrun.c.term"
local sanitize = require "jobrun.report.sanitize"
local state = require "jobrun.run.store"
local process = require "jobrun.c.process"
local clean = sanitize.text
local forensics = require "jobrun.judge.forensics"
local retry = require "jobrun.run.retry"

local report = {}

-- Colours of the old StatusFormatter, with our normalised statuses.
local STATUS_COLOR = { RUNNING = "cyan", PENDING = "cyan", SUCCEEDED = "green", FAILED = "red",
                       CANCELLED = "red", LAUNCH_FAILED = "red", LOST = "red", SKIPPED = "red", TIMEOUT = "yellow" }
local TERMINATION_COLOR = { job_completed = "green", heartbeat_timeout = "yellow",
                            max_runtime_reached = "yellow", timeout = "yellow" }
local VERDICT_COLOR = { pass = "green", fail = "red", pending = "cyan" }

local function dash(v) if v == nil or v == json.null then return "-" end return tostring(v) end

-- exit_color(job): green for 0; red only when the exit code is why the job failed (a non-zero
-- exit that the job was expected to have is no alarm).
local function exit_color(job)
  if job.exit_code == 0 then return "green" end
  if job.verdict ~= "fail" then return nil end
  for _, m in ipairs(job.mismatches or {}) do
    if m:find("^exit code") then return "red" end
  end
  return nil
end

-- elapsed(job): a running job's time so far, from its start.
local function elapsed(job)
  if job.status ~= "RUNNING" or not job.started_at then return nil end
  local started = state.epoch(job.started_at)
  return started and math.max(0, process.time() - started) or nil
end

function report.cells(job, paint)
  local shown = job.status
  -- Why the scheduler has not started it (Slurm's pending reason).
  if shown == "PENDING" and type(job.pending_reason) == "string" then
    shown = shown .. " (" .. job.pending_reason .. ")"
  end
  local status = paint(clean(shown), STATUS_COLOR[job.status] or "yellow")
  local restarts = job.restart_count == nil and "-"
    or paint(tostring(job.restart_count), job.restart_count == 0 and "green" or "yellow")
  local termination = job.termination_reason == nil and "-"
    or paint(clean(job.termination_reason), TERMINATION_COLOR[job.termination_reason] or "red")
  local exit = job.exit_code == nil and "-" or paint(tostring(job.exit_code), exit_color(job))
  local dur = job.duration_s and duration.format(job.duration_s) or "-"
  if dur == "-" and elapsed(job) then dur = duration.format(elapsed(job)) .. "…" end
  local v = paint(clean(retry.text(job) or job.verdict or "pending"), VERDICT_COLOR[job.verdict] or "cyan")
  return { clean(job.name), status, restarts, termination, exit, dur, v }
end

-- metric_columns(data) -> the metric names the reports show: report.metrics where the suite
-- names them, else those that have expectations (README "Metrics"), in first-seen order.
function report.metric_columns(data)
  local names, seen = {}, {}
  local function add(n) if type(n) == "string" and not seen[n] then seen[n] = true; names[#names + 1] = n end end
  if type(data.report_metrics) == "table" then
    for _, n in ipairs(data.report_metrics) do add(n) end
    return names
  end
  for _, job in ipairs(data.jobs) do
    local e = job.spec and job.spec.expect
    if type(e) == "table" and type(e.metrics) == "table" then
      local keys = {}
      for k in pairs(e.metrics) do keys[#keys + 1] = k end
      table.sort(keys)
      for _, k in ipairs(keys) do add(k) end
    end
  end
  return names
end

-- metric_cell(job, name) -> the value shown, and whether an expectation on it failed.
function report.metric_cell(job, name)
  local rec = type(job.metrics) == "table" and job.metrics[name]
  local bad = false
  for _, m in ipairs(job.mismatches or {}) do
    if m:sub(1, #name + 1) == name .. ":" then bad = true end
  end
  if type(rec) ~= "table" or rec.value == nil or rec.value == json.null then return "-", bad end
  return require("jobrun.judge.metrics").format(rec.value), bad
end

-- checks(data) -> the run's suite-level checks (README "Metrics": scaling): { name, ok
-- (nil while jobs run), text }.
function report.checks(data)
  if type(data.scaling) ~= "table" then return {} end
  local c = require("jobrun.judge.metrics").scaling(data.jobs, data.scaling, require("jobrun.judge.verdict").TERMINAL)
  return c and { c } or {}
end

-- by_suite(data) -> { { suite, jobs }, … } in a run of several suites (nil otherwise).
function report.by_suite(data)
  if type(data.suites) ~= "table" or #data.suites < 2 then return nil end
  local out, at = {}, {}
  for _, s in ipairs(data.suites) do
    at[s.name] = { suite = s, jobs = {} }
    out[#out + 1] = at[s.name]
  end
  for _, job in ipairs(data.jobs) do
    local g = at[job.spec and job.spec.suite or ""]
    if g then g.jobs[#g.jobs + 1] = job end
  end
  return out
end

-- table_of(jobs, data, paint) -> the status table of these jobs (their params as columns).
local function table_of(jobs, data, paint)
  local params = {}
  local seen = {}
  for _, job in ipairs(jobs) do
    for _, k in ipairs(job.spec and job.spec.param_order or {}) do
      if not seen[k] then seen[k] = true; params[#params + 1] = k end
    end
  end
  local headers = { "Job", "Status", "Restarts", "Termination", "Exit", "Duration", "Verdict" }
  local mcols = report.metric_columns(jobs == data.jobs and data
    or { jobs = jobs, report_metrics = data.report_metrics })
  for _, m in ipairs(mcols) do headers[#headers + 1] = clean(m) end
  -- Attempts at several commits (a rerun after a fix): each job's commits, oldest first.
  local provenance = require "jobrun.run.provenance"
  local commits = provenance.commits(data)
  if #commits > 1 then headers[#headers + 1] = "Commit" end
  for _, k in ipairs(params) do headers[#headers + 1] = k end
  local rows = {}
  for _, job in ipairs(jobs) do
    local row = report.cells(job, paint)
    for _, m in ipairs(mcols) do
      local v, bad = report.metric_cell(job, m)
      row[#row + 1] = paint(v, bad and "red" or nil)
    end
    if #commits > 1 then
      local trail = provenance.trail(job)
      row[#row + 1] = #trail > 0 and table.concat(trail, "→") or "-"
    end
    for _, k in ipairs(params) do
      local v = job.params[k]
      row[#row + 1] = v == nil and "-" or template.text(v)
    end
    rows[#rows + 1] = row
  end
  return textable.render(headers, rows, { paint = paint, max = { [1] = 60 } })
end

-- text(data, opts) -> the report as text, and a warning about --grid's axes (or nil).
function report.text(data, opts)
  local on = color.enabled(opts.color, opts.json and 2 or 1)
  local paint = color.painter(on)
  local groups = report.by_suite(data)
  local out = {}
  local commits = require("jobrun.run.provenance").commits(data)
  local git = data.git and data.git ~= json.null and data.git.commit and
    string.format(" · commit %s%s", tostring(data.git.commit):sub(1, 8), data.git.dirty and " (dirty)" or "") or ""
  if #commits > 1 then git = " · commits " .. table.concat(commits, ", ") end
  out[#out + 1] = paint(string.format("Run %s", data.run_id), "bold")
    .. clean(string.format(" · suite %s · backend %s · started %s%s", dash(data.suite),
      dash(type(data.backends) == "table" and table.concat(data.backends, ",") or data.backend),
      dash(data.started_at), git))
  out[#out + 1] = ""
  if groups then
    -- A run of several suites: one table per suite, headed by its backend and what it needs.
    for _, g in ipairs(groups) do
      if #g.jobs > 0 then
        local sum = results.summary(g.jobs)
        local needs = type(g.suite.needs) == "table" and (" · needs " .. table.concat(g.suite.needs, ", ")) or ""
        out[#out + 1] = paint("Suite " .. clean(g.suite.name), "bold")
          .. clean(string.format(" · backend %s%s · %d of %d passed", dash(g.suite.backend), needs,
            sum.passed, sum.total))
        out[#out + 1] = table_of(g.jobs, data, paint)
      end
    end
  else
    out[#out + 1] = table_of(data.jobs, data, paint)
  end
  local counts, order = {}, {}
  for _, job in ipairs(data.jobs) do
    if not counts[job.status] then counts[job.status] = 0; order[#order + 1] = job.status end
    counts[job.status] = counts[job.status] + 1
  end
  table.sort(order)
  local parts = {}
  for _, s in ipairs(order) do
    parts[#parts + 1] = paint(clean(s), STATUS_COLOR[s] or "yellow") .. ": " .. counts[s]
  end
  local sum = results.summary(data.jobs)
  out[#out + 1] = string.format("Status: %s", table.concat(parts, ", "))
  out[#out + 1] = string.format("Verdict: %s passed, %s failed, %d pending, of %d",
    paint(tostring(sum.passed), sum.passed > 0 and "green" or nil),
    paint(tostring(sum.failed), sum.failed > 0 and "red" or nil), sum.pending, sum.total)
  for _, c in ipairs(report.checks(data)) do
    local word = c.ok == nil and paint("pending", "cyan") or c.ok and paint("pass", "green") or paint("fail", "red")
    out[#out + 1] = string.format("Check: %s (min efficiency %s): %s — %s", clean(c.name),
      tostring(c.min_efficiency), clean(c.text), word)
  end
  local gpu = forensics.gpu_line(data.jobs)
  if gpu then out[#out + 1] = "GPU: " .. gpu end
  local warning
  if opts.grid then
    -- Marks (✓ ✗) with colour; plain ASCII words without it (--color never, a pipe, a log).
    local text
    if groups then
      -- Per suite: each has its own axes (a suite without a matrix has no grid).
      for _, g in ipairs(groups) do
        local has_params = false
        for _, job in ipairs(g.jobs) do if next(job.params or {}) then has_params = true end end
        if has_params then
          local w
          text, w = require("jobrun.report.grid").text(g.jobs, opts.grid, paint, on)
          warning = warning or w
          out[#out + 1] = ""
          out[#out + 1] = paint("Suite " .. clean(g.suite.name), "bold")
          out[#out + 1] = (text:gsub("\n$", ""))
        end
      end
    else
      text, warning = require("jobrun.report.grid").text(data.jobs, opts.grid, paint, on)
      out[#out + 1] = ""
      out[#out + 1] = (text:gsub("\n$", ""))
    end
  end
  return table.concat(out, "\n") .. "\n", warning
end

-- suites_json(data) -> a run of several suites' suites: name, backend, what each needs, and its
-- jobs' counts (skipped among them), for the dashboard's graph; nil for a run of one suite.
local function suites_json(data)
  if type(data.suites) ~= "table" or #data.suites < 2 then return nil end
  local out = json.array()
  local counts = require("jobrun.plan.needs").counts(data)
  for i, s in ipairs(data.suites) do
    local needs = json.array()
    for k, n in ipairs(type(s.needs) == "table" and s.needs or {}) do needs[k] = n end
    out[i] = json.object({ name = s.name, backend = s.backend, needs = needs,
      summary = json.object(counts[s.name], { "total", "passed", "failed", "pending", "skipped" }) },
      { "name", "backend", "needs", "summary" })
  end
  return out
end

-- (run_dir: each metric record gets its series, from the run's series file, read once)
function report.json(data, run_dir)
  local jobs = json.array()
  local series_file
  for i, job in ipairs(data.jobs) do
    local with_series = run_dir and type(job.metrics) == "table" and next(job.metrics) ~= nil
    jobs[i] = results.public(job, with_series)
    if with_series then
      local metrics = require "jobrun.judge.metrics"
      if not series_file then
        series_file = {}
        series_file.text, series_file.why = metrics.read_series_file(run_dir)
      end
      jobs[i].metrics = metrics.json_records(run_dir, job, series_file)
    end
  end
  local checks
  for _, c in ipairs(report.checks(data)) do
    checks = checks or json.array()
    checks[#checks + 1] = json.object({ name = c.name, ok = c.ok == nil and json.null or c.ok, text = c.text },
      { "name", "ok", "text" })
  end
  return json.object({
    run_id = data.run_id, suite = data.suite, backend = data.backend,
    git = data.git or json.null, started_at = data.started_at, jobs = jobs,
    summary = results.summary(data.jobs), checks = checks, suites = suites_json(data),
  }, { "run_id", "suite", "backend", "git", "started_at", "jobs", "summary", "checks", "suites" })
end

-- The --logs block's labels, as the old tool's -l printed them.
local LOGS_LABEL = { exit_code = "Exit Code", restart_count = "Restart Count", termination_reason = "Termination",
                     native_status = "Backend Status" }

-- logs_text(data, run_dir, opts): each job's failure record (jobrun.report.facts) and last lines, framed
-- as the old tool's -l did.
function report.logs_text(data, run_dir, opts)
  local paint = color.painter(color.enabled(opts.color, opts.json and 2 or 1))
  local n = math.tointeger(tonumber(opts.tail or 20)) or 20
  local out = {}
  for _, job in ipairs(data.jobs) do
    local r = facts.of(job, run_dir, n)
    out[#out + 1] = string.rep("=", 80)
    out[#out + 1] = string.format("Job: %s (%s)", paint(clean(r.name), "cyan"),
      paint(clean(r.status), STATUS_COLOR[r.status]))
    local later = {}
    for _, f in ipairs(r.facts) do
      local line = LOGS_LABEL[f.key] and (LOGS_LABEL[f.key] .. ": " .. clean(f.value))
      if f.key == "native_status" then later[#later + 1] = line elseif line then out[#out + 1] = line end
    end
    for _, m in ipairs(r.mismatches) do out[#out + 1] = paint("Mismatch: " .. clean(m), "red") end
    for _, line in ipairs(later) do out[#out + 1] = line end
    for _, e in ipairs(r.errors) do
      out[#out + 1] = (e.label:gsub("^%l", string.upper)) .. ": " .. clean(e.text)
    end
    out[#out + 1] = string.rep("=", 80)
    if #r.plain == 0 then out[#out + 1] = "No log content available" end
    for _, line in ipairs(r.plain) do out[#out + 1] = clean(line, true) end
    out[#out + 1] = string.rep("-", 80)
  end
  return table.concat(out, "\n") .. "\n"
end

-- durations_text(data, n) -> the n slowest ended jobs (every one for 0), as pytest's --durations.
function report.durations_text(data, n)
  local timed = {}
  for _, job in ipairs(data.jobs) do
    if type(job.duration_s) == "number" then timed[#timed + 1] = job end
  end
  table.sort(timed, function(a, b)
    if a.duration_s ~= b.duration_s then return a.duration_s > b.duration_s end
    return a.name < b.name
  end)
  if n > 0 and #timed > n then
    for i = #timed, n + 1, -1 do timed[i] = nil end
  end
  local rows = {}
  for i, job in ipairs(timed) do rows[i] = { duration.format(job.duration_s), job.name, job.status } end
  local title = n > 0 and string.format("Slowest %s:", require("jobrun.report.table").count(#timed, "job"))
    or "Durations, slowest first:"
  if #timed == 0 then return "\n" .. title .. " none has ended\n" end
  local body = textable.render({ "Duration", "Job", "Status" }, rows, { max = { [2] = 60 } })
  return "\n" .. title .. "\n" .. body
end

-- emit(data, opts, run_dir): the table (stdout; stderr with --json), --logs, --junit, and the
-- JSON (stdout).
function report.emit(data, opts, run_dir)
  if opts.tail and (math.tointeger(tonumber(opts.tail)) or -1) < 0 then
    require("jobrun.base.errors").raise("--tail must be a whole number, not '%s'", opts.tail)
  end
  local durations = opts.durations and math.tointeger(tonumber(opts.durations))
  if opts.durations and (not durations or durations < 0) then
    require("jobrun.base.errors").raise("--durations must be a whole number, not '%s'", opts.durations)
  end
  -- --json is machine output only: no human table anywhere (README "Using it").
  if not opts.json then
    local text, warning = report.text(data, opts)
    if warning then io.stderr:write("jobrun: ", require("jobrun.report.sanitize").message(warning), "\n") end
    io.stdout:write(text)
    if durations then io.stdout:write(report.durations_text(data, durations)) end
    local paint = color.painter(color.enabled(opts.color, 1))
    -- With --logs, each job's block below holds its whole failure record: no summary, so that
    -- each failure is shown once.
    if not (opts.logs and run_dir) then
      io.stdout:write(require("jobrun.report.failures").text(data, run_dir, paint))
    end
    -- Where to look next, as the old tool's check ended; only for a person at a terminal.
    local sum = results.summary(data.jobs)
    if not opts.logs and sum.failed > 0 and term.isatty(1) then
      io.stdout:write(require("jobrun.report.sanitize").format(
        "\nMore: jobrun check %s --logs   (each job's last lines)\n"
        .. "      jobrun rerun %s          (run the failed jobs again)\n", data.run_id, data.run_id))
    end
  end
  report.emit_extras(data, opts, run_dir)
end

-- summary_target(opts, data) -> path, append: --summary FILE (replaced), else
-- $GITHUB_STEP_SUMMARY (appended to, as GitHub expects) once the run has ended — a `check` of a
-- run still going adds nothing there, so that polling does not fill the job page.
function report.summary_target(opts, data)
  local step = os.getenv("GITHUB_STEP_SUMMARY")
  if step == "" then step = nil end
  if opts.summary then return opts.summary, opts.summary == step end
  if step and results.summary(data.jobs).pending == 0 then return step, true, true end
  return nil
end

-- emit_extras(data, opts, run_dir): all of emit but the table (--logs, --junit, --html,
-- --summary, --json).
function report.emit_extras(data, opts, run_dir)
  if opts.logs and run_dir and not opts.json then io.stdout:write("\n", report.logs_text(data, run_dir, opts)) end
  -- Each report written is recorded as jobrun's own, so that the git guard does not count it.
  local own = require("jobrun.base.git").note_report
  if opts.junit then
    require("jobrun.report.junit").write(opts.junit, data, run_dir)
    own(opts.junit, data.run_id)
    if not opts.json then io.stdout:write("JUnit report: ", clean(opts.junit), "\n") end
  end
  if opts.html then
    require("jobrun.report.html").write(opts.html, data, run_dir, opts)
    own(opts.html, data.run_id)
    if not opts.json then io.stdout:write("HTML report: ", clean(opts.html), "\n") end
  end
  local path, append, implicit = report.summary_target(opts, data)
  if path then
    local ok, err = require("jobrun.report.markdown").write(path, data, run_dir, { append = append, grid = opts.grid })
    if ok and not append then own(path, data.run_id) end
    if ok and not opts.json then
      io.stdout:write(implicit and "Summary appended to $GITHUB_STEP_SUMMARY: " or "Summary: ", clean(path), "\n")
    end
    if not ok then
      if implicit then
        io.stderr:write(require("jobrun.report.sanitize").format(
          "jobrun: the step summary was not written to $GITHUB_STEP_SUMMARY (%s): %s\n",
          clean(path), clean(err)))
      else
        require("jobrun.base.errors").infra("cannot write the summary: %s", err)
      end
    end
  end
  if opts.json then report.write_json(data, run_dir) end
end

-- write_json(data [, run_dir]): the --json answer (report.json's), pretty, to standard output.
-- The collector waits meanwhile: what is made for the answer lives until it is written, so a
-- cycle would only mark the whole run's state again (reading a 10,000-job run's series file
-- set one off: 70 ms of its 80).
local function gc_paused()
  local running = collectgarbage("isrunning")
  collectgarbage("stop")
  return setmetatable({}, { __close = function() if running then collectgarbage("restart") end end })
end

-- A write that fails (a full disk) stops the command (exit 3): the answer is not whole.
function report.write_json(data, run_dir)
  local _ <close> = gc_paused()
  local ok, why = json.write(io.stdout, report.json(data, run_dir), true)
  if ok then ok, why = io.stdout:write("\n") end
  if ok then ok, why = io.stdout:flush() end
  if not ok then require("jobrun.base.errors").infra("cannot write the --json answer: %s", why) end
end

-- exit_code(data): 0 when every job passed, 1 when any failed or missed its expectation.
function report.exit_code(data)
  local sum = results.summary(data.jobs)
  if sum.failed > 0 then return 1 end
  for _, c in ipairs(report.checks(data)) do if c.ok == false then return 1 end end
  if sum.pending > 0 then return 1 end
  return 0
end

return report
