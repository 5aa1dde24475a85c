-- jobrun plan SUITE: the expanded jobs, launching nothing.
local options = require "jobrun.cli.options"
local plan = require "jobrun.plan"
local json = require "jobrun.base.json"
local color = require "jobrun.report.color"
local textable = require "jobrun.report.table"
local template = require "jobrun.suite.template"
local duration = require "jobrun.suite.duration"
local state = require "jobrun.run.store"
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

-- write_json(p, write): what json.encode(command.to_json(p), true) makes, written in chunks of
-- jobs as they are encoded, with no table per job and no document-sized string. tests/unit/
-- plan_json.lua holds the two to the same bytes.
local CHUNK = 512
function command.write_json(p, write)
  local enc, into, nl = json.encode_string, json.encode_into, json.indent
  local nl2, nl3 = nl(2), nl(3)
  local k = {}
  for _, key in ipairs({ "name", "params", "backend", "nodes", "run", "env", "timeout", "expect" }) do
    k[key] = nl3 .. enc(key) .. ": "
  end
  local redacted = enc(require("jobrun.base.secrets").REDACTED)
  local is_secret = require("jobrun.base.secrets").is_secret_name
  local strip_urls = require("jobrun.base.secrets").strip_urls
  local env_keys = {}
  write("{" .. nl(1) .. enc("run_id") .. ": ")
  local head = {}
  local n = into(p.run_id, head, 0, true, 1)
  head[n + 1] = "," .. nl(1) .. enc("suite") .. ": "
  n = into(p.suite, head, n + 1, true, 1)
  head[n + 1] = "," .. nl(1) .. enc("jobs") .. ": "
  write(table.concat(head, "", 1, n + 1))
  local jobs = p.jobs
  if #jobs == 0 then write("[]" .. nl(0) .. "}\n"); return end
  local out = { "[" }
  n = 1
  for i, job in ipairs(jobs) do
    if i > 1 then n = n + 1; out[n] = "," end
    n = n + 1; out[n] = nl2 .. "{" .. k.name .. enc(job.name) .. "," .. k.params
    -- The params in their order: plan.build gives them a metatable whose order is the job's
    -- param_order, which then names every key they have.
    local params, order = job.params, job.param_order
    local mt = getmetatable(params)
    if #order == 0 or not mt or mt.order ~= order then
      n = into(params, out, n, true, 3)
    else
      for j = 1, #order do
        local key = order[j]
        n = n + 1; out[n] = (j == 1 and "{" or ",") .. nl(4) .. enc(key) .. ": "
        local x = params[key]
        if type(x) == "string" then n = n + 1; out[n] = enc(x)
        elseif math.type(x) == "integer" then n = n + 1; out[n] = tostring(x)
        else n = into(x, out, n, true, 4) end
      end
      n = n + 1; out[n] = nl3 .. "}"
    end
    n = n + 1; out[n] = "," .. k.backend .. enc(job.backend) .. "," .. k.nodes
    n = into(job.nodes, out, n, true, 3)
    local run = job.run
    n = n + 1; out[n] = "," .. k.run
    if type(run) == "string" then n = n + 1; out[n] = enc(run)
    else n = into(type(run) == "table" and json.array(run) or run, out, n, true, 3) end
    n = n + 1; out[n] = "," .. k.env
    -- The env, redacted as state.redact_env does it, its keys sorted as json.object sorts them.
    local env, m = job.env, 0
    for key in pairs(env) do
      if type(key) ~= "string" then m = nil; break end
      m = m + 1; env_keys[m] = key
    end
    if m == nil then
      n = into(state.redact_env(env), out, n, true, 3)
    elseif m == 0 then
      n = n + 1; out[n] = "{}"
    else
      for j = #env_keys, m + 1, -1 do env_keys[j] = nil end
      if m > 1 then table.sort(env_keys) end
      n = n + 1; out[n] = "{"
      for j = 1, m do
        local key = env_keys[j]
        local v = env[key]
        n = n + 1
        out[n] = (j > 1 and "," or "") .. nl(4) .. enc(key) .. ": "
          .. (is_secret(key) and redacted or enc((strip_urls(v))))
      end
      n = n + 1; out[n] = nl3 .. "}"
    end
    n = n + 1; out[n] = "," .. k.timeout
    n = into(job.timeout or json.null, out, n, true, 3)
    n = n + 1; out[n] = "," .. k.expect
    n = into(expect_json(job.expect), out, n, true, 3)
    n = n + 1; out[n] = nl2 .. "}"
    if i % CHUNK == 0 then
      write(table.concat(out, "", 1, n))
      n = 0
    end
  end
  n = n + 1; out[n] = nl(1) .. "]" .. nl(0) .. "}\n"
  write(table.concat(out, "", 1, n))
end

function command.run(opts, args)
  if #args ~= 1 then
    require("jobrun.base.errors").raise("plan: expected one suite file, got %d\nUsage: %s",
      #args, command.usage)
  end
  local p = plan.from_options(args[1], opts)
  if opts.json then
    local stdout = io.stdout
    command.write_json(p, function(text) stdout:write(text) end)
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
  local shown = #p.jobs == p.total_jobs and textable.count(#p.jobs, "job")
    or string.format("%d of %s", #p.jobs, textable.count(p.total_jobs, "job"))
  io.stdout:write(require("jobrun.report.sanitize").format("\n%s · suite %s · backend %s · run id %s\n",
    shown, p.suite, p.backends and table.concat(p.backends, ", ") or p.backend, p.run_id))
  -- What the backend makes of the plan's settings (how Slurm gets the timeout).
  local ok, backend = pcall(require("jobrun.backends").get, p.backend)
  local note = ok and backend.plan_note and backend.plan_note(p.jobs)
  if note then io.stdout:write(note .. "\n") end
  return 0
end

return command
