-- jobrun show [RUN] JOB: one job, readable: params, command, environment (redacted), expect, and
-- each attempt with its commit, nodes, command line and log path.
local options = require "jobrun.cli.options"
local state = require "jobrun.run.store"
local json = require "jobrun.base.json"
local color = require "jobrun.report.color"
local duration = require "jobrun.suite.duration"
local sanitize = require "jobrun.report.sanitize"
local template = require "jobrun.suite.template"
local suggest = require "jobrun.cli.suggest"
local results = require "jobrun.judge.results"
local errors = require "jobrun.base.errors"

local clean = sanitize.text

local command = {
  name = "show",
  usage = "jobrun show [RUN] JOB [--json] [options]",
  summary = "one job in readable form: params, command, env, expect, attempts",
  options = options.concat(options.JSON, options.COMMON),
  help = [[
RUN is a run id, a path to a run's state.json, or omitted for the latest run. Secrets in the
environment and in command lines are shown as <redacted>. As last saved (jobrun check first for
the newest).]],
}

local function dash(v) if v == nil or v == json.null then return "-" end return tostring(v) end

local function command_text(c)
  if type(c) == "table" then
    local parts = {}
    for i, a in ipairs(c) do parts[i] = a:find("[%s'\"]") and ("'" .. a:gsub("'", "'\\''") .. "'") or a end
    return table.concat(parts, " ")
  end
  return tostring(c)
end

-- attempt_lines(a, n, paint) -> lines about one attempt (n: its place, RUN@n).
local function attempt_lines(a, n, paint)
  local out = {}
  local tint = { pass = "green", fail = "red", pending = "cyan" }
  local facts = { dash(a.status) }
  if a.exit_code ~= nil and a.exit_code ~= json.null then facts[#facts + 1] = "exit " .. tostring(a.exit_code) end
  if a.termination_reason ~= nil and a.termination_reason ~= json.null then
    facts[#facts + 1] = tostring(a.termination_reason)
  end
  if a.restart_count and a.restart_count ~= json.null and a.restart_count > 0 then
    facts[#facts + 1] = a.restart_count .. " restart" .. (a.restart_count == 1 and "" or "s")
  end
  if type(a.duration_s) == "number" then facts[#facts + 1] = duration.format(a.duration_s) end
  local number = (type(a.attempt) == "number" and a.attempt ~= n) and string.format(" (attempt %d)", a.attempt) or ""
  out[#out + 1] = string.format("  @%d%s  %s · %s", n, number, clean(table.concat(facts, " · ")),
    paint(clean(a.verdict or "pending"), tint[a.verdict]))
  local g = type(a.git) == "table" and a.git or nil
  if g and g.commit then
    out[#out + 1] = string.format("      commit   %s%s%s", clean(g.commit),
      g.branch and (" (" .. clean(g.branch) .. ")") or "",
      g.dirty and " dirty" or "")
  end
  if type(a.nodes) == "table" and #a.nodes > 0 then
    out[#out + 1] = "      nodes    " .. clean(table.concat(a.nodes, ","))
  elseif type(a.nodes) == "string" then
    out[#out + 1] = "      nodes    " .. clean(a.nodes)
  end
  if a.started_at then out[#out + 1] = "      started  " .. clean(dash(a.started_at)) end
  if a.ended_at then out[#out + 1] = "      ended    " .. clean(dash(a.ended_at)) end
  if type(a.command_line) == "table" then
    out[#out + 1] = "      by       " .. clean(command_text(a.command_line))
  end
  if a.native_id then out[#out + 1] = "      id       " .. clean(dash(a.native_id)) end
  if a.log_path then out[#out + 1] = "      log      " .. clean(a.log_path) end
  for _, m in ipairs(a.mismatches or {}) do out[#out + 1] = "      - " .. paint(clean(m), "red") end
  return out
end

function command.run(opts, args)
  if #args < 1 or #args > 2 then errors.raise("show: expected [RUN] JOB\nUsage: %s", command.usage) end
  local run_arg, name = nil, args[1]
  if #args == 2 then run_arg, name = args[1], args[2] end
  local data = state.read(state.resolve(opts["state-dir"], run_arg))
  local job
  local names = {}
  for _, j in ipairs(data.jobs) do
    names[#names + 1] = j.name
    if j.name == name then job = j end
  end
  if not job then errors.raise("run %s has no job '%s'%s", data.run_id, name, suggest.hint(name, names)) end
  local spec = job.spec or {}
  if opts.json then
    local doc = results.public(job)
    local extra = json.object({ run_id = data.run_id, suite = data.suite, commands = json.array(spec.commands or {}),
      setup = spec.setup, env = json.object(spec.env or {}), expect = spec.expect,
      expect_function = spec.expect_fn or nil, nodes_requested = spec.nodes, timeout = spec.timeout,
      max_restarts = spec.max_restarts, result = doc },
      { "run_id", "suite", "commands", "setup", "env", "expect", "expect_function", "nodes_requested", "timeout",
        "max_restarts", "result" })
    io.stdout:write(json.encode(extra, true), "\n")
    return 0
  end
  local paint = color.painter(color.enabled(opts.color, 1))
  local out = {}
  out[#out + 1] = paint("Job " .. clean(job.name), "bold") .. clean(string.format(" · run %s · suite %s · backend %s",
    dash(data.run_id), dash(data.suite), dash(job.backend or data.backend)))
  local params = {}
  for _, k in ipairs(spec.param_order or {}) do
    local v = job.params and job.params[k]
    if v ~= nil then params[#params + 1] = k .. "=" .. template.text(v) end
  end
  if #params > 0 then out[#out + 1] = "params   " .. clean(table.concat(params, " ")) end
  local commands = spec.commands or {}
  if #commands > 0 then
    out[#out + 1] = "command  " .. clean(command_text(commands[1]))
    for i = 2, #commands do
      if command_text(commands[i]) ~= command_text(commands[1]) then
        out[#out + 1] = string.format("  restart %d: %s", i - 1, clean(command_text(commands[i])))
      end
    end
  end
  if spec.setup then out[#out + 1] = "setup    " .. clean(command_text(spec.setup)) end
  local env_names = {}
  for k in pairs(spec.env or {}) do env_names[#env_names + 1] = k end
  table.sort(env_names)
  if #env_names > 0 then
    out[#out + 1] = "env"
    for _, k in ipairs(env_names) do out[#out + 1] = "  " .. clean(k .. "=" .. tostring(spec.env[k])) end
  end
  local expect
  if spec.expect_fn then expect = "a function in the suite"
  elseif spec.expect ~= nil and spec.expect ~= json.null then expect = json.encode(spec.expect)
  else expect = "status SUCCEEDED and exit code 0 (the default)" end
  out[#out + 1] = "expect   " .. clean(expect)
  local extras = {}
  if spec.nodes then extras[#extras + 1] = "nodes " .. tostring(spec.nodes) end
  if spec.timeout and spec.timeout ~= json.null then
    extras[#extras + 1] = "timeout " .. duration.format(spec.timeout)
  end
  if spec.max_restarts and spec.max_restarts > 0 then extras[#extras + 1] = "max_restarts " .. spec.max_restarts end
  if #extras > 0 then out[#out + 1] = "limits   " .. table.concat(extras, " · ") end
  out[#out + 1] = ""
  local tries = {}
  for _, a in ipairs(job.attempts or {}) do tries[#tries + 1] = a end
  tries[#tries + 1] = job
  out[#out + 1] = string.format("Attempts (%d):", #tries)
  for i, a in ipairs(tries) do
    for _, l in ipairs(attempt_lines(a, i, paint)) do out[#out + 1] = l end
  end
  out[#out + 1] = string.format("\nLogs: jobrun logs %s %s [--attempt N]", clean(data.run_id), clean(job.name))
  io.stdout:write(table.concat(out, "\n"), "\n")
  return 0
end

return command
