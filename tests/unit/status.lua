-- How a job's record moves (README "How a job's record moves"), without processes: every move
-- goes through status.apply, which checks it before it writes anything. Each transition the run
-- makes — submit, cancel, withdraw, finish/abandon, a rerun's new attempt, adopt — and a
-- backend's observations, accepted and refused; then the copies a backend of the kind before
-- is given (the adapter in jobrun.backends) and the copies a cancel follows its jobs on.
local tap = require "tap"
local status = require "jobrun.run.status"
local schema = require "jobrun.suite.schema"

local NONE = status.NONE

-- job(fields) -> a job record as jobrun.judge.results makes one, with these fields over it.
local function job(fields)
  local j = { name = "j", key = "j", status = "PENDING", verdict = "pending", fields = {}, mismatches = {},
              log_path = "runs/r/logs/j.log", log_path_rel = "logs/j.log", spec = { max_restarts = 0 } }
  for k, v in pairs(fields or {}) do j[k] = v end
  return j
end

local function copy(t)
  local c = {}
  for k, v in pairs(t) do c[k] = v end
  return c
end

-- refused(j, obs, pattern, name): the move is refused, saying why, and nothing of it written.
local function refused(j, obs, pattern, name)
  local before = copy(j)
  local ok, why = status.apply(j, obs)
  tap.is(ok, false, name)
  tap.like(why, pattern, name .. ": saying why")
  tap.is(j, before, name .. ": nothing written")
end

tap.test("the statuses are schema's", function()
  tap.is(#schema.STATUSES, 9, "nine statuses")
  for _, s in ipairs(schema.STATUSES) do
    local j = job({ native_id = "1" })
    local ok = status.apply(j, { status = s })
    tap.ok(ok, "launched PENDING → " .. s)
  end
  refused(job({ native_id = "1" }), { status = "DONE" }, "DONE is not a status", "an unknown status")
  refused(job({ native_id = "1" }), { status = NONE }, "is not a status", "a status cleared")
  refused(job({ native_id = "1" }), "RUNNING", "must be a table", "an observation that is not a table")
end)

tap.test("a backend's observations within an attempt", function()
  local j = job({ native_id = "42", native_status = "PD" })
  local ok, changed = status.apply(j, { status = "RUNNING", native_status = "R", started_at = "2024-05-01T00:00:00Z",
                                        nodes = { "n1" }, notes = { slurm_source = "controller" } })
  tap.is({ ok, changed }, { true, true }, "PENDING → RUNNING")
  tap.is({ j.status, j.native_status, j.started_at, j.nodes[1], j.slurm_source },
    { "RUNNING", "R", "2024-05-01T00:00:00Z", "n1", "controller" }, "its fields and its notes written")
  tap.is({ status.apply(j, { status = "RUNNING", nodes = { "n1" } }) }, { true, false },
    "the same again: nothing changed (a node list equal by its items)")
  ok = status.apply(j, { status = "FAILED", native_status = "F", exit_code = 3, termination = "oom", signal = "KILL",
                         ended_at = "2024-05-01T00:01:00Z", duration_s = 60 })
  tap.ok(ok, "RUNNING → FAILED")
  tap.is({ j.status, j.backend_exit_code, j.backend_termination, j.signal, j.exit_code },
    { "FAILED", 3, "oom", "KILL", nil }, "exit_code is the backend's (backend_exit_code); termination too")
  ok = status.apply(j, { status = "FAILED", nodes = "n[1-2]", pending_reason = NONE,
                         notes = { slurm_source = "sacct" } })
  tap.ok(ok, "an end seen again, with more of the backend's word on it")
  tap.is({ j.nodes, j.slurm_source }, { "n[1-2]", "sacct" }, "taken")
  ok = status.apply(j, { exit_code = 4 })
  tap.ok(ok, "an observation without a status keeps the job's")
  tap.is({ j.status, j.backend_exit_code }, { "FAILED", 4 }, "its exit code taken (SkyPilot's fetch_logs)")
  ok = status.apply(j, { signal = NONE, notes = { slurm_source = NONE } })
  tap.is({ ok, j.signal, j.slurm_source }, { true, nil, nil }, "NONE clears a field and a note")
end)

tap.test("an end is final", function()
  for _, s in ipairs({ "SUCCEEDED", "FAILED", "TIMEOUT", "CANCELLED", "LAUNCH_FAILED", "LOST", "SKIPPED" }) do
    refused(job({ native_id = "1", status = s }), { status = "RUNNING", native_status = "RUNNING" },
      "RUNNING after " .. s, s .. " → RUNNING")
    refused(job({ native_id = "1", status = s }), { status = "PENDING" }, "PENDING after " .. s, s .. " → PENDING")
  end
  refused(job({ native_id = "1", status = "CANCELLED" }), { status = "SUCCEEDED", exit_code = 0 },
    "SUCCEEDED after CANCELLED", "one end → another")
  refused(job({ native_id = "1", status = "FAILED" }), { status = "FAILED", native_id = "2" },
    "a new native id after FAILED", "an end under another native id")
  refused(job({ native_id = "1", status = "FAILED" }), { native_id = NONE }, "a new native id",
    "an end's id taken away")
end)

tap.test("a restart takes RUNNING back to PENDING only with a higher restart count", function()
  refused(job({ native_id = "1", status = "RUNNING", restart_count = 1 }),
    { status = "PENDING", native_status = "REQUEUED" },
    "PENDING after RUNNING without a restart", "the same restart count")
  refused(job({ native_id = "1", status = "RUNNING", restart_count = 2 }), { status = "PENDING", restart_count = 1 },
    "PENDING after RUNNING without a restart", "a lower one")
  local j = job({ native_id = "1", status = "RUNNING", restart_count = 1 })
  tap.ok(status.apply(j, { status = "PENDING", native_status = "REQUEUED", restart_count = 2, attempt = 3 }),
    "a higher one: requeued")
  tap.is({ j.status, j.restart_count, j.attempt }, { "PENDING", 2, 3 }, "PENDING, attempt 3")
  tap.ok(status.apply(j, { status = "RUNNING" }), "and running again")
end)

tap.test("a job without a native id is PENDING or ended", function()
  refused(job(), { status = "RUNNING" }, "RUNNING without a native id", "not launched → RUNNING")
  refused(job({ native_id = "1", status = "RUNNING" }), { status = "RUNNING", native_id = NONE },
    "RUNNING without a native id", "a running job's native id taken away")
  local j = job()
  tap.ok(status.apply(j, { status = "LOST", native_status = "NOT_IN_QUEUE" }), "not launched → an end")
end)

tap.test("notes are the backend's own", function()
  for _, k in ipairs({ "status", "backend_exit_code", "exit_code", "verdict", "spec", "termination_reason", "try",
                       "attempts", "fields", "key" }) do
    refused(job({ native_id = "1" }), { notes = { [k] = "x" } }, "a note may not set the job's " .. k,
      "a note named " .. k)
  end
  refused(job({ native_id = "1" }), { notes = "x" }, "notes must be a table", "notes that are not a table")
end)

tap.test("submit: a launch's answer", function()
  local j = job()
  local ok = status.submit(j, { native_id = "123", notes = { slurm_cancelled = NONE } }, "2024-05-01T00:00:00Z")
  tap.ok(ok, "not launched → launched")
  tap.is({ j.status, j.native_id, j.submitted_at }, { "PENDING", "123", "2024-05-01T00:00:00Z" },
    "PENDING unless the backend says more, submitted when the request went out")
  local again = copy(j)
  tap.is({ status.submit(j, { native_id = "124" }) }, { false, "already launched (123)" }, "a second launch is refused")
  tap.is(j, again, "and writes nothing")
  local r = job()
  tap.ok(status.submit(r, { native_id = "pool", status = "PENDING", native_status = "QUEUED",
                            notes = { pool = "p1" } }),
    "queued in a pool")
  tap.is({ r.native_status, r.pool }, { "QUEUED", "p1" }, "its pool noted")
  local n = job()
  tap.is({ status.submit(n, { launch_error = "no" }) }, { false, "a launch without a native id" },
    "a launch without a native id is no launch")
  tap.is(n.status, "PENDING", "still pending")
end)

tap.test("launch_failed: no native id", function()
  local j = job()
  local ok = status.launch_failed(j, nil, { launch_error = "sbatch: invalid partition", status = "PENDING",
                                             notes = { sky_attempt = 1 } }, "2024-05-01T00:00:00Z")
  tap.ok(ok, "PENDING → LAUNCH_FAILED")
  tap.is({ j.status, j.launch_error, j.sky_attempt, j.submitted_at },
    { "LAUNCH_FAILED", "sbatch: invalid partition", 1, "2024-05-01T00:00:00Z" }, "saying why, with the backend's notes")
  local k = job()
  tap.ok(status.launch_failed(k, "needs a.out, which a did not give"), "a launch refused before it went out")
  tap.is(k.launch_error, "needs a.out, which a did not give", "why")
  refused(job({ status = "FAILED" }), { status = "LAUNCH_FAILED" }, "LAUNCH_FAILED after FAILED", "after an end")
  tap.is({ status.launch_failed(job({ native_id = "1" }), "x") }, { false, "already launched (1)" }, "a launched job")
end)

tap.test("cancel: before it was launched", function()
  local j = job()
  tap.ok(status.cancel(j), "PENDING → CANCELLED")
  tap.is({ j.status, j.native_status }, { "CANCELLED", "NOT_STARTED" }, "NOT_STARTED")
  local l = job({ native_id = "7", status = "RUNNING" })
  tap.is({ status.cancel(l) }, { false, "launched: its backend cancels it" }, "a launched job is its backend's")
  tap.is(l.status, "RUNNING", "left running")
  tap.is({ status.cancel(job({ status = "SKIPPED" })) }, { false, "CANCELLED after SKIPPED (an end is final)" },
    "an ended job")
end)

tap.test("withdraw: a queued job taken back", function()
  local j = job({ native_id = "pool", native_status = "QUEUED", pool = "p1" })
  tap.ok(status.withdraw(j, { notes = { pool = NONE } }), "QUEUED → PENDING, not launched")
  tap.is({ j.status, j.native_id, j.native_status, j.pool }, { "PENDING", nil, nil, nil }, "no native id, no pool")
  tap.is({ status.withdraw(j) }, { false, "not launched" }, "a job not launched cannot be withdrawn")
  refused(job({ native_id = "9", status = "RUNNING" }), { status = "PENDING", native_id = NONE },
    "withdrawn at RUNNING", "a running job")
  refused(job({ native_id = "pool", native_status = "QUEUED", started_at = "2024-05-01T00:00:00Z" }),
    { status = "PENDING", native_id = NONE }, "withdrawn after it started", "a job that started")
  refused(job({ native_id = "9", status = "CANCELLED" }), { status = "PENDING", native_id = NONE },
    "PENDING after CANCELLED", "an ended job")
  -- A pool that ended before starting it hands it back: the same move, as a poll observes it.
  local k = job({ native_id = "pool", native_status = "QUEUED", pool = "p1" })
  tap.ok(status.apply(k, { status = "PENDING", native_id = NONE, native_status = NONE,
                           notes = { pool = NONE, pool_returns = 1 } }), "handed back by a poll")
  tap.is({ k.native_id, k.pool_returns }, { nil, 1 }, "pending again, counted")
end)

tap.test("finish (abandon, skip): a job closed without its backend", function()
  local j = job()
  tap.ok(status.finish(j, "CANCELLED", "NOT_STARTED"), "abandoned: PENDING → CANCELLED")
  tap.is({ j.status, j.native_status }, { "CANCELLED", "NOT_STARTED" }, "NOT_STARTED")
  local s = job()
  tap.ok(status.finish(s, "SKIPPED", "NOT_STARTED"), "skipped")
  tap.is({ status.finish(job(), "RUNNING") }, { false, "RUNNING is not an end" }, "only to an end")
  local f = job({ native_id = "1", status = "SUCCEEDED", native_status = "EXITED" })
  tap.is({ status.finish(f, "CANCELLED", "NOT_STARTED") }, { false, "CANCELLED after SUCCEEDED (an end is final)" },
    "never over an end")
  tap.is({ f.status, f.native_status }, { "SUCCEEDED", "EXITED" }, "the end kept")
end)

tap.test("a rerun's new attempt", function()
  local j = job({ native_id = "5", status = "FAILED", native_status = "EXITED", backend_exit_code = 1, exit_code = 1,
                  verdict = "fail", mismatches = { "exit code is 1, expected 0" }, restart_count = 1, attempt = 2,
                  slot = "77", pool = "p1" })
  local ok = status.new_attempt(j, "runs/r", { "echo 3", "echo 4" })
  tap.ok(ok, "FAILED → PENDING, a new attempt")
  tap.is({ j.status, j.verdict, j.native_id, j.native_status, j.try, j.key, j.attempt, j.attempt_base },
    { "PENDING", "pending", nil, nil, 2, "j@2", 3, 2 }, "pending, under fresh files, attempt 3")
  tap.is({ #j.attempts, j.attempts[1].status, j.attempts[1].attempt }, { 1, "FAILED", 2 }, "the latest attempt kept")
  tap.is(j.spec.commands, { "echo 3", "echo 4" }, "its commands for the attempts to come")
  tap.is(j.log_path_rel, "logs/j@2.log", "a log of its own")
  -- Within the new attempt, a backend's restart counts on from the attempts before.
  status.submit(j, { native_id = "6" })
  status.apply(j, { status = "RUNNING", restart_count = 1 })
  tap.is(j.attempt, 4, "{attempt} counts across reruns")
  for _, s in ipairs({ "PENDING", "RUNNING" }) do
    refused(job({ native_id = "5", status = s }), { status = "PENDING", new_attempt = { dir = "runs/r" } },
      "a new attempt after " .. s, "not after " .. s)
  end
  refused(job({ status = "FAILED" }), { status = "RUNNING", new_attempt = { dir = "runs/r" } },
    "a new attempt starts PENDING", "a new attempt that would start RUNNING")
end)

tap.test("adopt after a crash: a launch the dead runner did not save", function()
  local j = job()
  tap.ok(status.adopt(j, { native_id = "4242", status = "RUNNING", notes = { slot = "77", local_start_time = 5 } }),
    "a claim found: RUNNING under its native id")
  tap.is({ j.status, j.native_id, j.slot }, { "RUNNING", "4242", "77" }, "taken")
  tap.is({ status.adopt(j, { native_id = "1" }) }, { false, "already launched (4242)" }, "never over a launch")
  local q = job()
  tap.ok(status.adopt(q, { native_id = "pool", native_status = "QUEUED", notes = { pool = "p2" } }),
    "queued in a pool still at work")
  tap.is(q.status, "PENDING", "pending")
  local u = job()
  tap.ok(status.adopt(u, { notes = { sky_unsure = true } }), "a launch still being made: noted, not launched")
  tap.is({ u.native_id, u.sky_unsure }, { nil, true }, "noted")
end)

tap.test("two copies of a job: the one further along", function()
  local pending, launched = job(), job({ native_id = "1" })
  local running, ended = job({ native_id = "1", status = "RUNNING" }), job({ native_id = "1", status = "FAILED" })
  local judged = job({ native_id = "1", status = "FAILED", verdict = "fail" })
  tap.ok(status.ahead(launched, pending) and status.ahead(running, launched) and status.ahead(ended, running)
    and status.ahead(judged, ended), "each further along than the one before")
  tap.ok(not status.ahead(running, ended) and not status.ahead(pending, pending), "never backwards; a tie is not ahead")
  local requeued = job({ native_id = "1", status = "PENDING", restart_count = 1 })
  tap.ok(status.ahead(requeued, running), "a restart is further along")
  local rerun = job({ status = "PENDING", try = 2 })
  tap.ok(status.ahead(rerun, judged), "a new attempt is further along than the last one's end")
  tap.ok(require("jobrun.run.record").ahead == status.ahead, "the merge asks status")
end)

tap.test("a backend's working copies: diff, fold, scratch", function()
  local j = job({ native_id = "1", status = "RUNNING", slot = "9", signal = "TERM" })
  local copies, observed, of = status.scratch({ j })
  local c = copies[1]
  tap.ok(of[c] == j and c ~= j, "a copy of its own")
  status.fold(c, { status = "CANCELLED", exit_code = 143, signal = NONE,
                   notes = { slurm_cancelled = true, slot = NONE } })
  tap.is({ c.status, c.backend_exit_code, c.signal, c.slurm_cancelled, c.slot },
    { "CANCELLED", 143, nil, true, nil }, "the copy takes an observation, unchecked")
  c.verdict = "pass" -- the run's: never observed
  local obs = observed()[j]
  tap.is(obs, { status = "CANCELLED", exit_code = 143, signal = NONE, notes = { slurm_cancelled = true, slot = NONE } },
    "what changed on it is the observation")
  tap.is({ j.status, j.slot }, { "RUNNING", "9" }, "the job itself untouched")
  tap.ok(status.apply(j, obs), "and the run applies it")
  tap.is({ j.status, j.slot, j.verdict }, { "CANCELLED", nil, "pending" }, "through the rule")
  tap.is(status.diff(j, copy(j)), nil, "an unchanged copy: no observation")
end)

tap.test("a backend of the kind before, through the adapter", function()
  local calls = {}
  package.preload["jobrun.backends.oldkind"] = function()
    local b = {}
    function b.submit(_, j)
      j.native_id, j.my_handle = "old-" .. j.name, "h"
      return true
    end
    function b.poll(_, jobs)
      calls[#calls + 1] = jobs[1]
      for _, j in ipairs(jobs) do
        if j.cancelled_here then j.status, j.native_status = "CANCELLED", "KILLED"
        else j.status, j.native_status, j.backend_exit_code = "RUNNING", "R", nil end
        j.exit_code, j.verdict = 99, "pass" -- the run's fields: never taken from a backend
      end
      return jobs -- (what some return: not observations)
    end
    function b.cancel(ctx, jobs)
      for _, j in ipairs(jobs) do j.cancelled_here = true end
      return require("jobrun.backends.common").follow_cancel(function(list) b.poll(ctx, list) end, jobs, {}, 5, 0)
    end
    return b
  end
  local backend = require("jobrun.backends").get("oldkind")
  tap.ok(backend.observes and backend.adapted, "adapted")
  local j = job()
  local obs = backend.submit({}, j)
  tap.is({ j.native_id, obs.native_id, obs.notes }, { nil, "old-j", { my_handle = "h" } },
    "submit: the job untouched, its native id observed")
  status.submit(j, obs)
  local seen = backend.poll({}, { j })
  tap.is({ j.status, seen[j].status, seen[j].native_status }, { "PENDING", "RUNNING", "R" },
    "poll: observed, not written")
  tap.is({ seen[j].exit_code, seen[j].notes }, { nil, nil }, "what the run owns is not observed")
  tap.ok(calls[1] ~= j, "the backend was given a copy")
  status.apply(j, seen[j])
  backend.poll({}, { j })
  tap.ok(calls[2] == calls[1], "the same copy at every call")
  local said, after = backend.cancel({}, { j })
  tap.is(said, { j = "killed" }, "cancel: its outcomes")
  tap.is({ after[j].status, after[j].native_status, after[j].notes },
    { "CANCELLED", "KILLED", { cancelled_here = true } },
    "and what it saw while cancelling, for the run to apply")
  tap.is(j.status, "RUNNING", "the job still untouched")
  package.preload["jobrun.backends.oldkind"], package.loaded["jobrun.backends.oldkind"] = nil, nil
end)

tap.test("a cancel followed on copies, through observing polls", function()
  local common = require "jobrun.backends.common"
  local a, b = job({ native_id = "1", status = "RUNNING" }), job({ native_id = "2", status = "RUNNING", name = "k" })
  local copies, observed = status.scratch({ a, b })
  local round = 0
  local function poll(list)
    round = round + 1
    local out = {}
    for _, c in ipairs(list) do
      if c.name == "j" then out[c] = { status = round == 1 and "RUNNING" or "CANCELLED", native_status = "CG" }
      else out[c.name] = { status = "SUCCEEDED" } end
    end
    return out
  end
  local results = common.follow_cancel(poll, copies, {}, 5, 0, function() end)
  tap.is(results, { j = "killed", k = "already completed" }, "killed once CANCELLED; another end: already completed")
  local seen = observed()
  tap.is({ seen[a].status, seen[b].status, a.status, b.status }, { "CANCELLED", "SUCCEEDED", "RUNNING", "RUNNING" },
    "observed, the jobs themselves untouched")
end)

return tap.done()
