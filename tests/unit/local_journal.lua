-- The local backend reading a slot's journal (jobs/<pool>.slot-<pid>.journal) through a claim
-- that is a link to the slot's record: a line is taken only once it is whole (a slot killed in
-- the middle of a write leaves its job LOST, never a half record read as one), later lines
-- are read on from where the last look stopped, and a damaged line makes its job LOST with
-- the journal named.
local tap = require "tap"
local h = require "helpers"
local fs = require "jobrun.c.fs"
local process = require "jobrun.c.process"
local json = require "jobrun.base.json"
local backend = require "jobrun.backends.local"
local status = require "jobrun.run.status"

-- poll(ctx, jobs): the backend's poll, what it observed applied as the run applies it.
local function poll(ctx, jobs)
  for job, obs in pairs(backend.poll(ctx, jobs)) do assert(status.apply(job, obs)) end
end

-- run_dir with one slot record (this process, alive, or a dead one) and its journal's text.
local function setup(alive)
  local dir = h.scratch()
  assert(fs.mkdir_p(dir .. "/jobs"))
  local pid = alive and process.getpid() or 2147483647
  local start = alive and process.start_time(pid) or 1
  local record = dir .. "/jobs/pool-1-1.slot-" .. pid .. "-1.json"
  assert(fs.write_atomic(record, json.encode({ state = "RUNNING", supervisor_pid = pid, supervisor_start = start,
    journal = "pool-1-1.slot-" .. pid .. ".journal" }) .. "\n"))
  local function line(fields)
    local rec = { key = "j", state = "RUNNING", attempt = 1, restart_count = 0, started_at = 100.0,
                  supervisor_pid = pid, supervisor_start = start }
    for k, v in pairs(fields or {}) do rec[k] = v end
    return json.encode(rec) .. "\n"
  end
  return dir, record, dir .. "/jobs/pool-1-1.slot-" .. pid .. ".journal", line, pid
end

local function new_job(pid)
  return { name = "j", key = "j", native_id = tostring(pid), local_start_time = process.start_time(pid) or 1,
           status = "RUNNING", log_path_rel = "logs/j.log", fields = {} }
end

tap.test("a line is taken once whole; later lines are read on", function()
  local dir, record, journal, line, pid = setup(true)
  local ctx = { run_dir = dir }
  local job = new_job(pid)
  tap.ok(fs.link(record, dir .. "/jobs/j.status.json"), "claimed by a link")
  poll(ctx, { job })
  tap.is({ job.status, job.attempt }, { "RUNNING", 1 }, "a claim with no line yet: running, attempt 1")
  fs.append(journal, line())
  local ended = line({ state = "EXITED", ended_at = 101.5, exit_code = 0 })
  fs.append(journal, ended:sub(1, 40)) -- half of the end, as a slot in the middle of its write
  poll(ctx, { job })
  tap.is(job.status, "RUNNING", "half a line is not taken")
  tap.is(job.started_at, "1970-01-01T00:01:40Z", "the claim's line is")
  fs.append(journal, ended:sub(41))
  poll(ctx, { job })
  tap.is({ job.status, job.backend_exit_code, job.duration_s }, { "SUCCEEDED", 0, 1.5 }, "the whole line is the end")
  tap.ok(ctx.journals and next(ctx.journals), "and the journal is read from where it stopped")
end)

tap.test("a slot that died in the middle of a line: its job is LOST, the half line never read", function()
  local dir, record, journal, line, pid = setup(false)
  local job = new_job(pid)
  assert(fs.link(record, dir .. "/jobs/j.status.json"))
  fs.append(journal, line() .. line({ state = "EXITED", ended_at = 101, exit_code = 0 }):sub(1, 30))
  poll({ run_dir = dir }, { job })
  tap.is({ job.status, job.native_status }, { "LOST", "SUPERVISOR_GONE" }, "LOST: its slot is gone without its end")
end)

tap.test("damaged lines: the job says so, naming the journal", function()
  local dir, record, journal, line, pid = setup(false)
  local job = new_job(pid)
  assert(fs.link(record, dir .. "/jobs/j.status.json"))
  fs.append(journal, line() .. line({ state = "EXITED", exit_code = "zero" }))
  local ok, err = pcall(poll, { run_dir = dir }, { job })
  tap.ok(ok, "poll does not raise", err)
  tap.is(job.status, "LOST", "LOST")
  tap.like(job.record_error, "%.journal: exit_code is not a whole number", "the journal and the fault named")
  local other = new_job(pid)
  other.name, other.key = "k", "k"
  assert(fs.link(record, dir .. "/jobs/k.status.json"))
  fs.append(journal, "{not a record\n")
  poll({ run_dir = dir }, { other })
  tap.like(other.record_error, "%.journal: a line that is not a job's record",
    "a line naming no job, its slot gone: the job without an end is LOST with it")
end)

tap.test("the end written over the slot's record (no room for a line) is the named job's only", function()
  local dir, record, journal, line, pid = setup(false)
  assert(fs.link(record, dir .. "/jobs/a.status.json"))
  assert(fs.link(record, dir .. "/jobs/b.status.json"))
  fs.append(journal, line({ key = "b" }))
  assert(fs.write_in_place(record, json.encode({ key = "a", state = "EXITED", exit_code = 0, ended_at = 5,
    supervisor_pid = pid, supervisor_start = 1, journal = "pool-1-1.slot-" .. pid .. ".journal",
    result_error = "cannot write x: No space left on device" }) .. "\n"))
  local a, b = new_job(pid), new_job(pid)
  a.name, a.key, b.name, b.key = "a", "a", "b", "b"
  poll({ run_dir = dir }, { a, b })
  tap.is({ a.status, a.result_error }, { "SUCCEEDED", "cannot write x: No space left on device" },
    "a: its end, from the slot's record")
  tap.is({ b.status, b.native_status }, { "LOST", "SUPERVISOR_GONE" }, "b: not taken for ended by a's end")
end)

tap.test("a claim written over through its link: the job's end is taken from its slot's journal", function()
  local dir, record, journal, line, pid = setup(false)
  assert(fs.link(record, dir .. "/jobs/j.status.json"))
  fs.append(journal, line({ pid = 4242 }) .. line({ state = "EXITED", ended_at = 102, exit_code = 0, pid = 4242 }))
  assert(fs.write_in_place(dir .. "/jobs/j.status.json", "garbage{"))
  -- as a runner that never saw it claimed: queued to the pool
  local job = { name = "j", key = "j", native_id = "pool", pool = "pool-1-1", status = "PENDING",
                native_status = "QUEUED", log_path_rel = "logs/j.log", fields = {} }
  poll({ run_dir = dir }, { job })
  tap.is({ job.status, job.backend_exit_code, job.record_error }, { "SUCCEEDED", 0, nil }, "its end, from the journal")
  tap.is({ job.native_id, job.slot }, { "4242", tostring(pid) }, "the native id is the job's pid; its slot is kept")
  -- no line of it anywhere: LOST, naming the damaged claim
  local other = { name = "k", key = "k", native_id = "pool", pool = "pool-1-1", status = "PENDING",
                  native_status = "QUEUED", log_path_rel = "logs/k.log", fields = {} }
  assert(fs.link(record, dir .. "/jobs/k.status.json"))
  poll({ run_dir = dir }, { other })
  tap.is({ other.status, other.native_status }, { "LOST", "DAMAGED_RECORD" }, "k: LOST, a damaged record")
  tap.like(other.record_error, "k%.status%.json: not JSON", "naming the file")
end)

return tap.done()
