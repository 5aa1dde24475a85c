-- What `require "jobrun"` gives a script (README "Scripts: jobs driven from Lua"), and only a
-- script: jobs and suites that a Lua program starts and waits for itself, all in one run (the
-- script's), on one event loop.
-- Blocking calls (wait, sleep, all) run that loop (jobrun.script.session), a step of the run's
-- scheduler (jobrun.run.scheduler): one backend wait over every running job of the run (pidfds for
-- local jobs), one refresh (for a backend without pidfds, at most one per its poll interval, however
-- often the script asks), the jobs a suite's max_parallel held back started, the streamed logs
-- printed (fetched first, at the same pace, from a backend whose logs live elsewhere), the
-- state saved. Functions given to jobrun.all run as coroutines on the same loop. The job and suite
-- handles are jobrun.script.jobs'.
local process = require "jobrun.c.process"
local errors = require "jobrun.base.errors"
local dsl = require "jobrun.suite.dsl"
local Session = require "jobrun.script.session"
local jobs = require "jobrun.script.jobs"

local Job, Suite = jobs.Job, jobs.Suite

local api = {}

-- all_items(session, list, o, where) -> the items of jobrun.all, each { job [, entry] }, { suite } or
-- { task }: its jobs not started yet launched together (one batch: one request for all where the
-- backend can), its suites launched, its functions made tasks of the loop.
local function all_items(session, list, o, where)
  local fresh, seen = {}, {}
  for _, item in ipairs(list) do
    if getmetatable(item) == Job and not item.record and not seen[item] then
      seen[item] = true
      fresh[#fresh + 1] = item
    end
  end
  jobs.launch(session, fresh)
  local items = {}
  for i, item in ipairs(list) do
    local mt = getmetatable(item)
    if mt == Job then
      if type(o) == "table" and o.stream and not item.reused then
        items[i] = { job = item, entry = session:stream(item.record, true) }
      else
        items[i] = { job = item }
      end
    elseif mt == Suite then
      item:launch()
      items[i] = { suite = item }
    elseif type(item) == "function" then
      local task = { co = coroutine.create(item) }
      session.tasks[#session.tasks + 1] = task
      items[i] = { task = task }
    else
      errors.at(where, "jobrun.all: item %d is not a job, a suite or a function", i)
    end
  end
  return items
end

local function item_done(it)
  if it.job then return jobs.finished(it.job) end
  if it.suite then return it.suite:done() end
  return it.task.done
end

local function item_result(it)
  if it.job then return it.job:result() end
  if it.suite then return it.suite:results() end
  return it.task.result
end

-- new(S) -> the module a script requires. S: { opts, script (absolute path), run_id, state_dir,
-- git (record), git_info, resume (a Run or nil) }; it becomes the script's session, and
-- S.finish is set for the script command to call once the script has returned.
function api.new(S)
  local session = Session.new(S)
  local M = {}

  function M.job(spec)
    local where = dsl.location(2)
    return jobs.new_job(session, jobs.plan_one(session, spec, where, "jobrun.job"), where)
  end

  function M.suite(path, o)
    local where = dsl.location(2)
    if type(path) ~= "string" then errors.at(where, "jobrun.suite needs a suite file's path") end
    if o ~= nil and type(o) ~= "table" then errors.at(where, "jobrun.suite's options must be a table") end
    return jobs.new_suite(session, path, o or {}, where)
  end

  -- all { a, b, f… } [, { stream = bool }] -> their results, in order: jobs and suites are
  -- started and waited for together; functions run as coroutines on the same loop.
  function M.all(list, o)
    local where = dsl.location(3) -- (the script's line: past the shielded wrapper)
    if type(list) ~= "table" then errors.at(where, "jobrun.all needs a list: jobrun.all { a, b }") end
    local items = all_items(session, list, o, where)
    session:block(function()
      for _, it in ipairs(items) do if not item_done(it) then return false end end
      return true
    end)
    session:stream_out(true)
    local out = {}
    for i, it in ipairs(items) do
      if it.entry then session:unstream(it.entry) end
      out[i] = item_result(it)
    end
    session:save(true)
    return out
  end

  function M.sleep(seconds)
    if type(seconds) ~= "number" or seconds < 0 then
      errors.at(dsl.location(3), "jobrun.sleep needs a number of seconds")
    end
    local deadline = process.now() + seconds
    session:block(function() return process.now() >= deadline end, deadline)
  end

  -- The run, for the script's own reports: its id and directory.
  function M.run_id() return S.run_id end

  -- finish(): once the script has returned (or failed). Jobs it held back for a suite's
  -- max_parallel are all submitted before it ends, as slots free up; jobs keep running.
  local function finish()
    local n = S.sched and S.sched:unlaunched() or 0
    if n > 0 then
      io.stderr:write(string.format("jobrun: %d job(s) not submitted yet (a suite's max_parallel): "
        .. "submitting them as earlier ones end\n", n))
      session:block(function() return S.sched:unlaunched() == 0 end)
    end
    session:stream_out(true)
    if S.run then S.run:save() end
  end

  for _, name in ipairs({ "all", "sleep" }) do M[name] = Session.shielded(M[name]) end
  S.finish = Session.shielded(finish)
  return M
end

return api
