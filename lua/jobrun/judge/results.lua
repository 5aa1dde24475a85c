-- Job records: what state.json keeps per job and what --json prints (README "Jobs, statuses and results"), made from a
-- planned job, and settled (exit code, termination, verdict) once the backend has spoken.
local json = require "jobrun.base.json"
local state = require "jobrun.run.store"
local verdict = require "jobrun.judge.verdict"
local fs = require "jobrun.c.fs"
local analysis = require "jobrun.judge.analysis"
local secrets = require "jobrun.base.secrets"
local metrics = require "jobrun.judge.metrics"
local forensics = require "jobrun.judge.forensics"

local results = {}

results.ORDER = { "name", "params", "backend", "native_id", "status", "native_status", "pending_reason", "exit_code",
  "backend_exit_code", "termination_reason", "restart_count", "fields", "attempt", "submitted_at",
  "started_at", "ended_at", "duration_s", "log_path", "verdict", "mismatches", "metrics", "git", "nodes",
  "command_line", "cause_class", "culprit", "cause_chain", "gpu_hours", "retries" }

local function serializable_expect(expect)
  if type(expect) == "function" then return nil end
  return expect
end

-- record(planned_job, run_dir_as_given, key) -> the job's entry in state.json; key is the job's
-- file stem, unique in the run (state.assign_keys).
function results.record(pjob, run_dir_shown, key)
  local safe = key or state.safe_name(pjob.name)
  local commands = { pjob.run }
  if pjob.max_restarts > 0 then
    for attempt = 2, pjob.max_restarts + 1 do commands[attempt] = pjob.run_for_attempt(attempt) end
  end
  local env = state.redact_env(pjob.env)
  -- The variables whose URLs lost their user:password: a rerun must find those values again
  -- (jobrun.base.secrets.restore_env), as it must the "<redacted>" ones.
  local stripped
  for k, v in pairs(pjob.env or {}) do
    if env[k] ~= v and env[k] ~= secrets.REDACTED then stripped = stripped or {}; stripped[#stripped + 1] = k end
  end
  if stripped then table.sort(stripped) end
  return {
    name = pjob.name,
    key = safe,
    params = pjob.params,
    backend = pjob.backend,
    status = "PENDING",
    fields = {},
    mismatches = {},
    verdict = "pending",
    log_path = run_dir_shown .. "/logs/" .. safe .. ".log",
    log_path_rel = "logs/" .. safe .. ".log",
    spec = {
      index = pjob.index, param_order = pjob.param_order, nodes = pjob.nodes, commands = commands,
      setup = pjob.setup, env = env, env_stripped = stripped, timeout = pjob.timeout,
      max_restarts = pjob.max_restarts, expect = serializable_expect(pjob.expect),
      expect_fn = type(pjob.expect) == "function" or nil, tags = pjob.tags,
      condition = pjob.condition, description = pjob.description, options = pjob.options,
      suite = pjob.suite, outputs = pjob.outputs,
      retry = pjob.retry, classes = pjob.classes, gpus = pjob.gpus,
    },
  }
end

-- What an earlier attempt keeps (`attempts`, README "Jobs, statuses and results"), oldest first.
results.ATTEMPT_ORDER = { "attempt", "native_id", "status", "native_status", "pending_reason", "exit_code",
  "backend_exit_code", "termination_reason", "restart_count", "submitted_at", "started_at", "ended_at", "duration_s",
  "log_path", "verdict", "mismatches", "fields", "git", "nodes", "command_line", "metrics", "cause_class", "culprit",
  "cause_chain", "gpu_hours", "retried" }

-- Where a job's attempts start and end, and the fields a new attempt starts without.
local RESET = { "native_id", "native_status", "pending_reason", "nodes", "exit_code", "backend_exit_code",
  "termination_reason",
  "restart_count", "submitted_at", "started_at", "ended_at", "duration_s", "backend_termination", "signal",
  "local_start_time", "launch_error", "record_error", "result_error", "log_error", "log_fetched",
  "launch_request_id", "slot", "pool_returns", "git", "command_line", "metrics", "tres", "cause_class", "culprit",
  "cause_chain", "gpu_hours", "retried", "retry_at" }

-- new_attempt(job, run_dir_shown, commands): the job's latest attempt moves into job.attempts
-- and the job starts over under fresh files (its key gets "@<try>"), so that every attempt
-- keeps its own log and backend files. Called by status.new_attempt only, which checks the move
-- and makes the job PENDING.
function results.new_attempt(job, run_dir_shown, commands)
  local entry = {}
  for _, k in ipairs(results.ATTEMPT_ORDER) do entry[k] = job[k] end
  entry.attempt = job.attempt or ((job.attempt_base or 0) + (job.restart_count or 0) + 1)
  entry.attempt_base = job.attempt_base or 0
  entry.log_path_rel = job.log_path_rel
  job.attempts = job.attempts or {}
  job.attempts[#job.attempts + 1] = entry
  job.attempt_base = entry.attempt
  job.try = (job.try or 1) + 1
  for _, k in ipairs(RESET) do job[k] = nil end
  job.verdict, job.mismatches, job.fields = "pending", {}, {}
  job.attempt = job.attempt_base + 1
  local base = (job.key or state.safe_name(job.name)):gsub("@%d+$", "")
  job.key = base .. "@" .. job.try
  job.log_path = run_dir_shown .. "/logs/" .. job.key .. ".log"
  job.log_path_rel = "logs/" .. job.key .. ".log"
  if commands and job.spec then job.spec.commands = commands end
end

-- The parts of a job record that state.json stores; arrays marked so that [] stays [].
function results.for_state(job)
  local out = {}
  for k, v in pairs(job) do out[k] = v end
  out.params = json.object(job.params, job.spec and job.spec.param_order)
  out.mismatches = json.array(job.mismatches or {})
  out.fields = json.object(job.fields or {})
  if job.metrics then out.metrics = metrics.for_json(job.metrics) end
  out.culprit, out.cause_chain = forensics.json_culprit(job.culprit), forensics.json_chain(job.cause_chain)
  if job.spec then
    local spec = {}
    for k, v in pairs(job.spec) do spec[k] = v end
    spec.param_order = json.array(spec.param_order or {})
    spec.tags = json.array(spec.tags or {})
    spec.commands = json.array(spec.commands or {})
    for i, c in ipairs(spec.commands) do
      if type(c) == "table" then spec.commands[i] = json.array(c) end
    end
    spec.env = json.object(spec.env or {})
    out.spec = spec
  end
  if job.attempts then
    local list = json.array()
    for i, a in ipairs(job.attempts) do
      local e = {}
      for k, v in pairs(a) do e[k] = v end
      e.mismatches = json.array(a.mismatches or {})
      e.fields = json.object(a.fields or {})
      if type(a.metrics) == "table" then e.metrics = metrics.for_json(a.metrics) end
      e.culprit, e.cause_chain = forensics.json_culprit(a.culprit), forensics.json_chain(a.cause_chain)
      list[i] = json.object(e, results.ATTEMPT_ORDER)
    end
    out.attempts = list
  end
  return json.object(out, results.ORDER)
end

-- The public result (README "Jobs, statuses and results"): no spec, no backend internals.
-- own_metrics: the caller puts in the metric records itself (report.json, with their series).
function results.public(job, own_metrics)
  -- results.ORDER's fields, named in one constructor: the table is made at its size at once
  -- (a --json of 10,000 jobs makes 10,000 of them). tests/unit/results_public.lua checks the list.
  local out = {
    name = job.name, params = nil, backend = job.backend, native_id = job.native_id, status = job.status,
    native_status = job.native_status, pending_reason = job.pending_reason, exit_code = job.exit_code,
    backend_exit_code = job.backend_exit_code,
    termination_reason = job.termination_reason, restart_count = job.restart_count, fields = nil,
    attempt = job.attempt, submitted_at = job.submitted_at, started_at = job.started_at,
    ended_at = job.ended_at, duration_s = job.duration_s, log_path = job.log_path, verdict = job.verdict,
    mismatches = nil, metrics = nil, git = job.git, nodes = job.nodes, command_line = job.command_line,
    cause_class = job.cause_class, culprit = forensics.json_culprit(job.culprit),
    cause_chain = forensics.json_chain(job.cause_chain), gpu_hours = job.gpu_hours, retries = job.retries,
  }
  if job.metrics and not own_metrics then out.metrics = metrics.for_json(job.metrics) end
  out.params = json.object(job.params, job.spec and job.spec.param_order)
  out.fields = json.object(job.fields or {})
  out.mismatches = json.array(job.mismatches or {})
  if job.attempts then
    local list = json.array()
    for i, a in ipairs(job.attempts) do
      local e = {}
      for _, k in ipairs(results.ATTEMPT_ORDER) do e[k] = a[k] end
      e.mismatches = json.array(a.mismatches or {})
      e.fields = json.object(a.fields or {})
      if type(a.metrics) == "table" then e.metrics = metrics.for_json(a.metrics) end
      e.culprit, e.cause_chain = forensics.json_culprit(a.culprit), forensics.json_chain(a.cause_chain)
      list[i] = json.record(e, results.ATTEMPT_ORDER)
    end
    out.attempts = list
    local order = {}
    for i, k in ipairs(results.ORDER) do order[i] = k end
    order[#order + 1] = "attempts"
    return json.record(out, order)
  end
  return json.record(out, results.ORDER)
end

-- analyze(jobs, run_dir, parsers_of) -> per job what its log's parsers found ({} without a
-- log): all of them at once, so that user parsers run in one sandbox (jobrun.judge.analysis).
function results.analyze(jobs, run_dir, parsers_of)
  local items, at = {}, {}
  for i, job in ipairs(jobs) do
    local parsers = parsers_of(job)
    local log = job.log_path_rel and run_dir .. "/" .. job.log_path_rel
    if parsers and log and fs.stat(log) then
      items[#items + 1] = { path = log, parsers = parsers, job = job }
      at[#items] = i
    end
  end
  local out = {}
  for i = 1, #jobs do out[i] = {} end
  for n, found in ipairs(#items > 0 and analysis.analyze_many(items) or {}) do
    if found[1] ~= false then out[at[n]] = found end
  end
  return out
end

-- settle(job, expect, run_dir, parsers [, found]): analyse the log of a job that has ended (or
-- take `found`, results.analyze's), then its exit code (the parsers' over the backend's),
-- termination, restarts and verdict.
function results.settle(job, expect, run_dir, parsers, found)
  if not verdict.TERMINAL[job.status] then
    job.verdict, job.mismatches = "pending", {}
    return
  end
  found = found or results.analyze({ job }, run_dir, function() return parsers end)[1]
  -- A backend whose own exit code is not the program's (SkyPilot's JobExitCode: 0, 100–103)
  -- keeps it as backend_exit_code only: without a parser's value, the exit code is unknown.
  local ok, backend = pcall(require("jobrun.backends").get, job.backend)
  local program_codes = not (ok and backend.exit_codes == false)
  job.exit_code = found.exit_code
  if job.exit_code == nil and program_codes then job.exit_code = job.backend_exit_code end
  job.exit_code_unknown = (job.exit_code == nil and not program_codes) or nil
  -- Without a log (or a parser that replaced backend_facts), the backend's facts still count.
  job.termination_reason = found.termination_reason
  if job.termination_reason == nil then job.termination_reason = require("jobrun.judge.parsers.builtin").fact(job) end
  if found.restart_count then job.restart_count = found.restart_count end
  job.fields = found.fields or job.fields or {}
  -- Metrics: the log's and the job's own $JOBRUN_METRICS lines, all in one pass per job.
  if job.log_path_rel then
    local log = run_dir .. "/" .. job.log_path_rel
    local done, got = pcall(metrics.collect, fs.stat(log) and log or nil, parsers and parsers.metrics,
      type(expect) == "table" and expect.metrics or nil, metrics.file_of(log))
    if not done and type(got) == "table" and got.signal then error(got, 0) end
    job.metrics = done and got or nil
    if job.metrics then
      -- The series go to the run's series file (a line for this attempt, for the charts), not into its record.
      local saved, why = metrics.write_series(run_dir, state.job_key(job), job.name, metrics.take_series(job.metrics))
      if not saved then
        io.stderr:write(require("jobrun.report.sanitize").format(
          "jobrun: job %s: its metric series were not saved: %s\n",
          job.name, tostring(why)))
      end
    end
    if job.metrics and type(expect) == "table" and expect.metrics then
      -- Baselines: this job's earlier passing runs (by its name; the run directory names the run).
      metrics.attach_baselines(job, expect.metrics, run_dir, nil, run_dir:match("([^/]+)/?$"))
    end
  end
  job.culprit, job.cause_chain = found.culprit, found.cause_chain
  -- What the backend noted about the job's own files (a damaged record, a result or log that
  -- could not be written, a launch error) is part of the answer, where --json shows it.
  for _, k in ipairs({ "record_error", "result_error", "log_error", "launch_error" }) do
    if job[k] ~= nil then job.fields[k] = job[k] end
  end
  local function read_log()
    return fs.read(run_dir .. "/" .. job.log_path_rel) or ""
  end
  job.verdict, job.mismatches = verdict.judge(job, expect, read_log)
  -- A parser that failed leaves the job's facts unknown: never a pass (README "Suite files").
  for _, e in ipairs(found.parser_errors or {}) do
    if job.verdict ~= "pending" then job.verdict = "fail" end
    job.mismatches[#job.mismatches + 1] = string.format("parser '%s' failed: %s", e.parser, e.error)
    io.stderr:write(require("jobrun.report.sanitize").format(
      "jobrun: parser '%s' failed on job %s: %s\n", e.parser, job.name, e.error))
  end
  job.cause_class = forensics.class(job, job.spec and job.spec.classes)
  job.gpu_hours = forensics.gpu_hours(job)
end

function results.summary(jobs)
  local s = { total = #jobs, passed = 0, failed = 0, pending = 0 }
  for _, job in ipairs(jobs) do
    if job.verdict == "pass" then s.passed = s.passed + 1
    elseif job.verdict == "fail" then s.failed = s.failed + 1
    else s.pending = s.pending + 1 end
  end
  return json.object(s, { "total", "passed", "failed", "pending" })
end

return results
