-- jobrun history [GLOB] [--suite S] [--last N] [--nodes] [--rebuild]: jobs across runs, from the
-- history index (lua/jobrun/run/history.lua): one row per attempt, a pass-rate/flip line per job;
-- --nodes: the failure rate per node, suspects marked.
local options = require "jobrun.cli.options"
local history = require "jobrun.run.history"
local json = require "jobrun.base.json"
local color = require "jobrun.report.color"
local textable = require "jobrun.report.table"
local duration = require "jobrun.suite.duration"
local sanitize = require "jobrun.report.sanitize"
local errors = require "jobrun.base.errors"

local clean = sanitize.text

local command = {
  name = "history",
  usage = "jobrun history [GLOB] [--suite S] [--last N] [--metric NAME] [--nodes] [--rebuild] [--json] [options]",
  summary = "jobs across runs: each attempt, pass rate and flips; --nodes: failures per node",
  options = options.concat({
    { "suite", "value", "S", "only runs of this suite" },
    { "last", "value", "N", "the last N runs (default 20)" },
    { "nodes", "flag", nil, "the failure rate per node over those runs, suspects marked" },
    { "metric", "list", "NAME", "a metric's value per attempt, and its change over the runs (repeatable)" },
    { "rebuild", "flag", nil, "make the index anew from every run's state.json" },
  }, options.JSON, options.COMMON),
  help = [[
GLOB chooses jobs by name (* ? [...]). The history index, <state-dir>/history.sqlite, is derived
from the runs' state.json: runs missing from it are added as it is read, and --rebuild makes it
again from all of them. Runs whose state.json is damaged are skipped and named on stderr.
A node is suspect when it ran at least 3 attempts in the window, at least 2 of them failed,
at least half of its attempts failed, and its failure rate is at least twice that of all the
other nodes' attempts together. Only failures of the infrastructure (cause class infrastructure:
lost or failed nodes, preemptions, NCCL network errors) count against a node; a bug fails on any
node. jobrun rerun --exclude-nodes suspect keeps Slurm jobs off them.]],
}

-- last_of(opts) -> the --last N (default 20).
function command.last_of(opts)
  if opts.last == nil then return 20 end
  local n = math.tointeger(tonumber(opts.last))
  if not n or n < 1 then errors.raise("--last must be a whole number from 1, not '%s'", opts.last) end
  return n
end

-- open(state_dir) -> db: the index, brought up to date; damaged runs named on stderr; a problem
-- that stops it is exit 3.
function command.open(state_dir)
  if not require("jobrun.c.fs").stat(state_dir) then
    errors.raise("no runs in %s yet (start one with jobrun run or jobrun launch)", state_dir)
  end
  local ok, db, note = pcall(history.open, state_dir)
  if not ok then
    if history.is_failure(db) then errors.infra("history: %s", db.message) end
    error(db, 0)
  end
  if not db then errors.infra("history: no index in %s", state_dir) end
  if note.rebuilt == "damaged" then
    io.stderr:write("jobrun: the history index was damaged; rebuilt from the runs' records\n")
  end
  if note.stale then
    io.stderr:write(string.format("jobrun: history: the index could not be brought up to date (%s); "
      .. "showing what it holds\n", clean(note.stale)))
  end
  for _, s in ipairs(note.skipped) do
    io.stderr:write(string.format("jobrun: history: skipped run %s: %s\n", clean(s.run_id), clean(s.why)))
  end
  return db
end

local function split_nodes(nodes)
  local out = {}
  for n in nodes:gmatch("[^,]+") do out[#out + 1] = n end
  return out
end

local function short(c) return c and c:sub(1, 8) or "-" end

local function nodes_doc(list)
  local out = json.array()
  for i, n in ipairs(list) do
    out[i] = json.object({ node = n.node, attempts = n.total, failed = n.failed, failure_rate = n.rate,
      suspect = n.suspect }, { "node", "attempts", "failed", "failure_rate", "suspect" })
  end
  return out
end

local function nodes_text(list, paint, last)
  if #list == 0 then
    return string.format("No attempt of the last %d runs names its nodes.\n", last)
  end
  local rows = {}
  for i, n in ipairs(list) do
    rows[i] = { clean(n.node), tostring(n.total), tostring(n.failed), string.format("%.0f%%", n.rate * 100),
      n.suspect and paint("suspect", "red") or "" }
  end
  local out = { textable.render({ "Node", "Attempts", "Failed", "Failure rate", "" }, rows, { paint = paint }) }
  out[#out + 1] = string.format("\nSuspect: at least %d attempts, at least 2 failed, a failure rate of at least 50%% "
    .. "and twice that of the other nodes together.\n", history.SUSPECT_MIN)
  return table.concat(out)
end

-- gpu_per_run(rows, runs) -> { {run_id, gpu_hours, on_retries}… } newest first, for the runs
-- whose attempts recorded GPU-hours (README "Why a distributed job died": GPU-hours); on_retries
-- counts the attempts after each job's first.
local function gpu_per_run(rows, runs)
  local by = {}
  for _, r in ipairs(rows) do
    if type(r.gpu_hours) == "number" then
      local g = by[r.run_id] or { total = 0, retries = 0 }
      by[r.run_id] = g
      g.total = g.total + r.gpu_hours
      if (r.try or 1) > 1 or (r.attempt or 1) > 1 then g.retries = g.retries + r.gpu_hours end
    end
  end
  local out = {}
  local function round(v) return math.floor(v * 10000 + 0.5) / 10000 end
  for _, id in ipairs(runs) do
    local g = by[id]
    if g then out[#out + 1] = { run_id = id, gpu_hours = round(g.total), on_retries = round(g.retries) } end
  end
  return out
end

local function metrics_format(v) return require("jobrun.judge.metrics").format(v) end

function command.run(opts, args)
  if #args > 1 then errors.raise("history: expected at most one GLOB, got %d\nUsage: %s", #args, command.usage) end
  local state_dir = opts["state-dir"]
  if opts.rebuild then
    local ok, n, skipped = pcall(history.rebuild, state_dir)
    if not ok then
      if history.is_failure(n) then errors.infra("history --rebuild: %s", n.message) end
      error(n, 0)
    end
    for _, s in ipairs(skipped) do
      io.stderr:write(string.format("jobrun: history: skipped run %s: %s\n", clean(s.run_id), clean(s.why)))
    end
    local out = opts.json and io.stderr or io.stdout
    out:write(string.format("Rebuilt the history index from %d run%s%s.\n", n, n == 1 and "" or "s",
      #skipped > 0 and string.format(" (%d damaged, skipped)", #skipped) or ""))
    if not opts.json then return 0 end
  end
  local last = command.last_of(opts)
  local db = command.open(state_dir)
  local rows = history.attempts(db, { last = last, suite = opts.suite, glob = args[1] })
  local runs = history.recent_runs(db, last, opts.suite)
  db:close()
  local jobs = history.by_job(rows)
  local node_list = opts.nodes and history.nodes(rows) or nil
  if opts.json then
    local docs = json.array()
    for i, j in ipairs(jobs) do
      local s = history.stats(j.rows)
      local attempts = json.array()
      for k, r in ipairs(j.rows) do
        attempts[k] = json.object({ run_id = r.run_id, try = r.try, attempt = r.attempt, commit = r.commit_id,
          status = r.status, exit_code = r.exit_code, termination_reason = r.termination,
          restart_count = r.restarts, duration_s = r.duration_s, verdict = r.verdict,
          nodes = r.nodes and json.array(split_nodes(r.nodes)) or nil, gpu_hours = r.gpu_hours,
          metrics = r.metrics and json.decode(r.metrics) or nil },
          { "run_id", "try", "attempt", "commit", "status", "exit_code", "termination_reason", "restart_count",
            "duration_s", "verdict", "nodes", "gpu_hours", "metrics" })
      end
      docs[i] = json.object({ name = j.name, passed = s.passed, failed = s.failed, pass_rate = s.rate,
        flips = s.flips, attempts = attempts }, { "name", "passed", "failed", "pass_rate", "flips", "attempts" })
    end
    local gpu
    for i, g in ipairs(gpu_per_run(rows, runs)) do
      gpu = gpu or json.array()
      gpu[i] = json.object(g, { "run_id", "gpu_hours", "on_retries" })
    end
    local doc = json.object({ runs = json.array(runs), jobs = docs, nodes = node_list and nodes_doc(node_list) or nil,
      gpu_hours = gpu }, { "runs", "jobs", "nodes", "gpu_hours" })
    io.stdout:write(json.encode(doc, true), "\n")
    return 0
  end
  local paint = color.painter(color.enabled(opts.color, 1))
  local out = io.stdout
  out:write(paint(string.format("History: the last %d run%s%s", #runs, #runs == 1 and "" or "s",
    opts.suite and (" of suite " .. clean(opts.suite)) or ""), "bold"), "\n\n")
  if node_list then
    out:write(nodes_text(node_list, paint, last))
    return 0
  end
  if #jobs == 0 then
    out:write(args[1] and string.format("No job matching '%s' in them.\n", clean(args[1])) or "No finished attempts.\n")
    return 0
  end
  local tint = { pass = "green", fail = "red" }
  local wanted = opts.metric or {}
  -- metric_of(r, name) -> an attempt's value of the metric, from the index's metrics column.
  local function metric_of(r, name)
    local m = r.metrics and json.decode(r.metrics)
    local rec = type(m) == "table" and m[name]
    return type(rec) == "table" and type(rec.value) == "number" and rec.value or nil
  end
  local metrics = require "jobrun.judge.metrics"
  for i, j in ipairs(jobs) do
    if i > 1 then out:write("\n") end
    local cells = {}
    for k, r in ipairs(j.rows) do
      cells[k] = { clean(r.run_id), tostring(r.try), short(r.commit_id), clean(r.status or "-"),
        clean(r.termination or "-"), r.duration_s and duration.format(r.duration_s) or "-",
        paint(clean(r.verdict or "-"), tint[r.verdict]) }
      for _, name in ipairs(wanted) do
        local v = metric_of(r, name)
        cells[k][#cells[k] + 1] = v and metrics.format(v) or "-"
      end
    end
    out:write(paint(clean(j.name), "bold"), "\n")
    local head = { "Run", "Attempt", "Commit", "Status", "Termination", "Duration", "Verdict" }
    for _, name in ipairs(wanted) do head[#head + 1] = clean(name) end
    out:write(textable.render(head, cells, { paint = paint }))
    for _, name in ipairs(wanted) do
      local first, latest
      for _, r in ipairs(j.rows) do
        local v = metric_of(r, name)
        if v then first = first or v; latest = v end
      end
      if first and latest then
        local pct = first ~= 0 and string.format(" (%+.1f%%)", (latest - first) / math.abs(first) * 100) or ""
        out:write(string.format("%s: %s → %s over these runs%s\n", clean(name), metrics.format(first),
          metrics.format(latest), pct))
      else
        out:write(string.format("%s: no value in these runs\n", clean(name)))
      end
    end
    local s = history.stats(j.rows)
    out:write(string.format("%s: passed %d of %d (%s), %d flip%s\n", clean(j.name), s.passed, s.total,
      s.rate and string.format("%.0f%%", s.rate * 100) or "-", s.flips, s.flips == 1 and "" or "s"))
  end
  local gpu = gpu_per_run(rows, runs)
  if #gpu > 0 then
    out:write("\nGPU-hours per run:\n")
    for _, g in ipairs(gpu) do
      out:write(string.format("  %s  %s GPU-hours%s\n", clean(g.run_id), metrics_format(g.gpu_hours),
        g.on_retries > 0 and string.format(", %s of them on retries", metrics_format(g.on_retries)) or ""))
    end
  end
  return 0
end

return command
