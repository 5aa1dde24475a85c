-- jobrun plan SUITE: the expanded jobs, launching nothing.
local options = require "jobrun.options"
local plan = require "jobrun.plan"
local json = require "jobrun.json"
local color = require "jobrun.color"
local textable = require "jobrun.textable"
local template = require "jobrun.template"
local duration = require "jobrun.duration"
local state = require "jobrun.state"
local term = require "jobrun.c.term"

local command = {
  name = "plan",
  usage = "jobrun plan SUITE.lua [options]",
  summary = "print the expanded jobs; launch nothing",
  options = options.concat(options.SELECT, options.JSON, options.COMMON),
  help = [[
Expands the suite's matrix, merges conditions, fills placeholders and validates everything,
then prints one line per job: name, nodes, params and command. With --json, prints
{ "run_id", "suite", "jobs": [{ "name", "params", "backend", "nodes", "run", "env", "timeout",
"expect" }] } on stdout. Credentials are shown as state.json keeps them: "<redacted>" for
variables named like them (TOKEN, SECRET, PASSWORD, …), and no user:password in URLs.]],
}

local function command_text(run)
  return template.shell_command(run) or ""
end

local function params_text(job)
  local parts = {}
  for _, k in ipairs(job.param_order) do
    parts[#parts + 1] = k .. "=" .. template.text(job.params[k])
  end
  return table.concat(parts, " ")
end

local function expect_json(expect)
  if type(expect) == "function" then return "<function>" end
  if expect == nil then return json.null end
  return expect
end

function command.to_json(p)
  local jobs = json.array()
  for _, job in ipairs(p.jobs) do
    jobs[#jobs + 1] = json.object({
      name = job.name, params = job.params, backend = job.backend, nodes = job.nodes,
      run = type(job.run) == "table" and json.array(job.run) or job.run,
      env = state.redact_env(job.env), timeout = job.timeout or json.null, expect = expect_json(job.expect),
    }, { "name", "params", "backend", "nodes", "run", "env", "timeout", "expect" })
  end
  return json.object({ run_id = p.run_id, suite = p.suite, jobs = jobs }, { "run_id", "suite", "jobs" })
end

function command.run(opts, args)
  if #args ~= 1 then
    require("jobrun.errors").raise("plan: expected one suite file, got %d\nUsage: %s",
      #args, command.usage)
  end
  local p = plan.from_options(args[1], opts)
  if opts.json then
    io.stdout:write(json.encode(command.to_json(p), true), "\n")
    return 0
  end
  local paint = color.painter(color.enabled(opts.color, 1))
  local rows = {}
  for _, job in ipairs(p.jobs) do
    rows[#rows + 1] = { paint(job.name, "cyan"), tostring(job.nodes), params_text(job),
                        duration.format(job.timeout), command_text(job.run) }
  end
  local cols = term.size(1)
  local max
  if cols then max = { [5] = math.max(20, cols - 60) } end
  io.stdout:write(textable.render({ "Job", "Nodes", "Params", "Timeout", "Command" }, rows,
    { paint = paint, max = max }))
  local shown = #p.jobs == p.total_jobs and tostring(#p.jobs)
    or string.format("%d of %d", #p.jobs, p.total_jobs)
  io.stdout:write(string.format("\n%s jobs · suite %s · backend %s · run id %s\n",
    shown, p.suite, p.backend, p.run_id))
  return 0
end

return command
