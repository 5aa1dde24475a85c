-- Retry policies (README "Why a distributed job died"): a failed attempt whose termination
-- reason or cause class the policy names starts a new attempt of the job, as `jobrun rerun`
-- does — a preemption or a lost node is retried, a bug is not. `max_restarts` stays the
-- backend's own restart.
local errors = require "jobrun.base.errors"
local suggest = require "jobrun.cli.suggest"
local duration = require "jobrun.suite.duration"
local schema = require "jobrun.suite.schema"

local retry = {}

-- The default number of new attempts a policy allows per job.
retry.DEFAULT_MAX = 1

local function list(on) return type(on) == "string" and { on } or on end

-- check(decls) -> check(policy, where, what): every name in the suite's and the conditions' `on`
-- is a termination reason that something can produce, or a cause class; else an error at the
-- declaration's file:line. The function returned checks another policy (an include cell's).
function retry.check(decls)
  local known, is_known = require("jobrun.plan").known_terminations(decls)
  local extra = { "exception", "lost" }
  for _, c in ipairs(schema.CAUSE_CLASSES) do extra[#extra + 1] = c end
  for k in pairs(decls.suite.fields.classes or {}) do extra[#extra + 1] = k end
  for _, v in ipairs(extra) do
    if not is_known[v] then is_known[v] = true; known[#known + 1] = v end
  end
  local function check(policy, where, what)
    if type(policy) ~= "table" then return end
    for _, v in ipairs(list(policy.on) or {}) do
      if not is_known[v] and not v:match("^signal_%w+$") then
        errors.at(where, "%s: retry.on names '%s', which is no termination reason or cause class "
          .. "(infrastructure, program, unknown)%s", what, v, suggest.hint(v, known))
      end
    end
  end
  check(decls.suite.fields.retry, decls.suite.where, string.format("suite \"%s\"", decls.suite.name))
  for _, name in ipairs(decls.condition_order or {}) do
    local c = decls.conditions[name]
    check(c.fields.retry, c.where, string.format("condition \"%s\"", name))
  end
  return check
end

-- spec(policy) -> what a job record keeps of a policy (plain data, for state.json).
function retry.spec(policy)
  if type(policy) ~= "table" then return nil end
  return { on = list(policy.on), max = policy.max or retry.DEFAULT_MAX,
           backoff = policy.backoff and duration.parse(policy.backoff) or 0,
           exclude_node = policy.exclude_node or nil }
end

-- matches(policy, job) -> the name in policy.on that the job's latest attempt ended with, or nil.
-- A class matches the job's cause class; a reason its termination reason or its culprit's.
function retry.matches(policy, job)
  local culprit = type(job.culprit) == "table" and job.culprit.reason or nil
  for _, v in ipairs(policy.on or {}) do
    if v == job.cause_class or v == job.termination_reason or v == culprit then return v end
  end
  return nil
end

-- due(job, used, max_total) -> policy | nil: whether the job's ended attempt gets a new one.
-- used: new attempts the run has started for its policies; max_total: the suite's cap.
function retry.due(job, used, max_total)
  local policy = job.spec and job.spec.retry
  if type(policy) ~= "table" or job.verdict ~= "fail" then return nil end
  if (job.retries or 0) >= (policy.max or retry.DEFAULT_MAX) then return nil end
  if max_total and used >= max_total then return nil end
  if not retry.matches(policy, job) then return nil end
  return policy
end

-- nodes(job) -> the nodes the job's latest attempt ran on, as far as anything said.
-- (A list, or Slurm's NodeList, expanded.)
function retry.nodes(job)
  local nodes = require("jobrun.run.provenance").expand_nodes(job.nodes)
  if #nodes > 0 then return nodes end
  local c = job.culprit
  if type(c) == "table" and type(c.node) == "string" then return { c.node } end
  return {}
end

-- why(job) -> "preempted on node3": what made the job's latest attempt fail, in words; the node
-- is the culprit's where the log named it (a message of the scheduler's, a rank's prefix).
function retry.why(job)
  local reason = type(job.culprit) == "table" and job.culprit.reason or job.termination_reason
  if type(reason) ~= "string" then reason = job.cause_class or "failed" end
  local c = job.culprit
  local nodes = type(c) == "table" and type(c.node) == "string" and { c.node } or retry.nodes(job)
  if #nodes > 0 then return reason .. " on " .. table.concat(nodes, ",") end
  return reason
end

-- prepare(job, policy): what the failed attempt leaves to the next one (kept on the job record
-- and carried over by results.new_attempt): why it was retried, and Slurm's --exclude.
function retry.prepare(job, policy)
  job.retries = (job.retries or 0) + 1
  job.retried_for = job.retried_for or {}
  job.retried_for[#job.retried_for + 1] = retry.why(job)
  if policy.exclude_node and job.spec then
    local nodes = retry.nodes(job)
    if #nodes > 0 then
      -- The job's own copy: options are shared by every job of a condition.
      local o = {}
      for k, v in pairs(job.spec.options or {}) do o[k] = v end
      local args = {}
      for _, a in ipairs(o.extra_args or {}) do
        if not tostring(a):match("^%-%-exclude=") then args[#args + 1] = a end
      end
      job.excluded_nodes = job.excluded_nodes or {}
      local seen = {}
      for _, n in ipairs(job.excluded_nodes) do seen[n] = true end
      for _, n in ipairs(nodes) do
        if not seen[n] then seen[n] = true; job.excluded_nodes[#job.excluded_nodes + 1] = n end
      end
      args[#args + 1] = "--exclude=" .. table.concat(job.excluded_nodes, ",")
      o.extra_args = args
      job.spec.options = o
    end
  end
end

-- text(job) -> "pass after 1 retry (preempted on node3)", or nil for a job never retried.
function retry.text(job)
  local n = math.tointeger(job.retries)
  if not n or n < 1 then return nil end
  local why = type(job.retried_for) == "table" and table.concat(job.retried_for, "; ") or ""
  return string.format("%s after %d retr%s%s", tostring(job.verdict), n, n == 1 and "y" or "ies",
    why ~= "" and (" (" .. why .. ")") or "")
end

-- waiting(job) -> true while a retried job waits out its backoff.
function retry.waiting(job)
  return type(job.retry_at) == "number" and job.retry_at > require("jobrun.c.process").time()
end

-- after(run, jobs) -> true when one of these ended jobs was started again (as a new attempt,
-- PENDING, launched by the caller once its backoff has passed).
function retry.after(run, jobs)
  local used, started = nil, false
  local cancelled = run:cancel_requested()
  for _, job in ipairs(jobs) do
    local policy = job.spec and job.spec.retry
    -- A job someone cancelled is never started again behind their back.
    if policy and job.verdict == "fail" and job.status ~= "CANCELLED" and not cancelled
        and require("jobrun.judge.verdict").TERMINAL[job.status] then
      if not used then
        used = 0
        for _, j in ipairs(run.data.jobs) do used = used + (math.tointeger(j.retries) or 0) end
      end
      policy = retry.due(job, used, run.data.retry_max_total)
      if policy then
        retry.prepare(job, policy)
        job.retried = job.retried_for[#job.retried_for]
        run:rerun({ job }, true)
        if (policy.backoff or 0) > 0 then job.retry_at = require("jobrun.c.process").time() + policy.backoff end
        used = used + 1
        started = true
        io.stderr:write(string.format("jobrun: %s: retrying (%s), retry %d of %d\n", job.name,
          job.retried_for[#job.retried_for], job.retries, policy.max or retry.DEFAULT_MAX))
      end
    end
  end
  return started
end

return retry
