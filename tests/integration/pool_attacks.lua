-- The local backend's slot pool under attack (issue 21, items 1-5): slots killed or paused, its
-- records written over, replaced by links, devices and FIFOs. Real slots, real jobs, and the
-- runner's verdict read back from state.json.
local tap = require "tap"
local h = require "helpers"
local fs = require "jobrun.c.fs"
local json = require "jobrun.base.json"
local process = require "jobrun.c.process"

-- pool_of(jobs_dir) -> the pool's record { slots = { { pid, start } … }, jobs } (the first one).
local function pool_of(jobs_dir)
  for _, f in ipairs(fs.list(jobs_dir) or {}) do
    if f:match("^pool%-[%d%-]+%.json$") then return json.decode(fs.read(jobs_dir .. "/" .. f) or "") end
  end
end

-- claims(jobs_dir) -> how many jobs a slot has claimed (jobs/<job>.status.json).
local function claims(jobs_dir)
  local n = 0
  for _, f in ipairs(fs.list(jobs_dir) or {}) do if f:match("%.status%.json$") then n = n + 1 end end
  return n
end

local function count(jobs, field, value)
  local n = 0
  for _, job in ipairs(jobs) do if job[field] == value then n = n + 1 end end
  return n
end

-- launch_and_kill_pool(dir, id): 10 jobs on two slots, both SIGKILLed while their first jobs run.
local function launch_and_kill_pool(dir, id)
  h.write(dir .. "/s.lua", [[
suite "g" { matrix = { i = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 } }, run = "sleep 1", max_parallel = 2 }]])
  tap.is(h.sh(dir, "jobrun launch s.lua --run-id " .. id), 0, "launched on two slots")
  local jobs_dir = dir .. "/.jobrun/runs/" .. id .. "/jobs"
  local pool = pool_of(jobs_dir)
  tap.is(pool and #pool.slots, 2, "two slots")
  tap.ok(h.eventually(function() return claims(jobs_dir) >= 2 end, 10), "both slots are running a job")
  for _, slot in ipairs(pool.slots) do os.execute("kill -KILL " .. slot.pid) end
  tap.ok(h.eventually(function() return h.gone(pool.slots[1].pid) and h.gone(pool.slots[2].pid) end, 5),
    "both slots are gone")
  return jobs_dir
end

tap.test("a dead pool: jobs it never started are pending, and wait starts them in a new pool", function()
  local dir = h.scratch()
  launch_and_kill_pool(dir, "DP")
  local code, out = h.sh(dir, "jobrun wait DP")
  tap.is(code, 1, "the run fails (the jobs the slots were running are lost)")
  local jobs = h.state(dir).jobs
  local lost, ok = count(jobs, "status", "LOST"), count(jobs, "status", "SUCCEEDED")
  tap.ok(lost >= 1 and lost <= 2, "only the jobs the dead slots were running are LOST", out)
  tap.is(ok, 10 - lost, "every other job ran, in a new pool, and succeeded")
  tap.is(count(jobs, "native_status", "POOL_GONE"), 0, "no job that never started is taken for lost")
  tap.is(count(jobs, "native_status", "SUPERVISOR_GONE"), lost, "the lost ones: their slot died under them")
end)

tap.test("a dead pool: check says the unstarted jobs are pending and starts a new pool", function()
  local dir = h.scratch()
  local jobs_dir = launch_and_kill_pool(dir, "DC")
  local code, out = h.sh(dir, "jobrun check DC")
  local jobs = h.state(dir).jobs
  tap.ok(count(jobs, "status", "LOST") <= 2, "check: no unstarted job is LOST", out)
  tap.is(count(jobs, "native_status", "POOL_GONE"), 0, "none POOL_GONE")
  tap.ok(code == 1 or code == 4, "check's exit code: a lost job, or not finished", tostring(code))
  tap.ok(h.eventually(function()
    local n = 0
    for i = 1, 10 do if h.ended_record(jobs_dir, "g_" .. i) then n = n + 1 end end
    return n >= 8
  end, 30), "the jobs run with nobody waiting: check started a new pool for them")
  h.sh(dir, "jobrun wait DC")
  jobs = h.state(dir).jobs
  tap.is(count(jobs, "status", "SUCCEEDED") + count(jobs, "native_status", "SUPERVISOR_GONE"), 10,
    "each job succeeded, but those whose slot died under them")
end)

tap.test("a dead pool under a running `jobrun run`: the rest start in a new pool", function()
  local dir = h.scratch()
  h.write(dir .. "/s.lua", [[
suite "g" { matrix = { i = { 1, 2, 3, 4, 5, 6, 7, 8 } }, run = "sleep 1", max_parallel = 2 }]])
  local runner = h.spawn(dir, { "run", "s.lua", "--run-id", "DR" })
  local jobs_dir = dir .. "/.jobrun/runs/DR/jobs"
  local pool
  tap.ok(h.eventually(function()
    pool = pool_of(jobs_dir)
    return pool and claims(jobs_dir) >= 2
  end, 10), "two jobs running on the pool's two slots")
  for _, slot in ipairs(pool.slots) do os.execute("kill -KILL " .. slot.pid) end
  local ended = runner:wait(true)
  tap.is(ended.exit_code, 1, "run ends (the two jobs under the slots are lost)")
  local jobs = h.state(dir).jobs
  tap.ok(count(jobs, "status", "LOST") <= 2, "at most the two running jobs LOST", fs.read(dir .. "/.bg.log"))
  tap.is(count(jobs, "status", "SUCCEEDED") + count(jobs, "status", "LOST"), 8, "every other job succeeded")
end)

tap.test("a paused slot: the job's end and verdict are its own, not when the slot saw it", function()
  local dir = h.scratch()
  h.write(dir .. "/s.lua", [[
suite "k" { matrix = { i = { 1, 2, 3, 4 } }, run = "sleep 1", timeout = 3, max_parallel = 2 }]])
  tap.is(h.sh(dir, "jobrun launch s.lua --run-id PS"), 0, "launched")
  local jobs_dir = dir .. "/.jobrun/runs/PS/jobs"
  local pool = pool_of(jobs_dir)
  local slot = pool.slots[1].pid
  local key
  tap.ok(h.eventually(function()
    for i = 1, 4 do
      local claim = json.decode(fs.read(jobs_dir .. "/k_" .. i .. ".status.json") or "")
      if claim and claim.supervisor_pid == slot then key = "k_" .. i; return true end
    end
  end, 10), "the first slot has claimed a job")
  process.sleep(0.3) -- its job has started
  os.execute("kill -STOP " .. slot)
  process.sleep(5) -- the job (1 s) ends, and its timeout (3 s) passes, while the slot is stopped
  os.execute("kill -CONT " .. slot)
  local code, out = h.sh(dir, "jobrun wait PS")
  tap.is(code, 0, "every job passed", out)
  local job = h.jobs_by_name(h.state(dir))[key]
  tap.is({ job.status, job.exit_code }, { "SUCCEEDED", 0 }, "the paused slot's job: SUCCEEDED, not TIMEOUT")
  if fs.stat("/proc/self/sched") then
    tap.ok(job.duration_s and job.duration_s < 2.5, "its duration is the job's own (~1 s), not the pause's",
      tostring(job.duration_s))
  else
    tap.ok(true, "# skip no /proc/PID/sched (a kernel without CONFIG_SCHED_DEBUG): the end is when the slot saw it")
  end
end)

tap.test("a slot paused past a job's deadline while the job still ran: TIMEOUT all the same", function()
  local dir = h.scratch()
  h.write(dir .. "/s.lua", [[suite "t" { run = "sleep 3", timeout = 1 }]])
  tap.is(h.sh(dir, "jobrun launch s.lua --run-id PT"), 0, "launched")
  local jobs_dir = dir .. "/.jobrun/runs/PT/jobs"
  local slot = pool_of(jobs_dir).slots[1].pid
  tap.ok(h.eventually(function() return fs.stat(jobs_dir .. "/t.status.json") end, 10), "claimed")
  process.sleep(0.3)
  os.execute("kill -STOP " .. slot)
  process.sleep(4) -- past the deadline (1 s) and past the job's own end (3 s)
  os.execute("kill -CONT " .. slot)
  h.sh(dir, "jobrun wait PT")
  local job = h.state(dir).jobs[1]
  tap.is(job.status, "TIMEOUT", "the job was still running at its deadline: TIMEOUT")
end)

-- one_job(dir, id, run): a one-job run launched; returns its jobs dir and the claim's path once
-- the job is claimed.
local function one_job(dir, id, run)
  h.write(dir .. "/s.lua", string.format([[suite "p" { matrix = { i = { 1, 2 } }, run = %q, max_parallel = 1 }]], run))
  tap.is(h.sh(dir, "jobrun launch s.lua --run-id " .. id), 0, "launched")
  local jobs_dir = dir .. "/.jobrun/runs/" .. id .. "/jobs"
  tap.ok(h.eventually(function() return fs.stat(jobs_dir .. "/p_1.status.json") end, 10), "p_1 is claimed")
  return jobs_dir
end

tap.test("a claim written over through its link: the journal's end is taken, or the file named", function()
  local dir = h.scratch()
  local jobs_dir = one_job(dir, "DM", "sleep 0.5")
  -- through the hard link: the slot's own record, which every claim of the slot links to
  local f = assert(io.open(jobs_dir .. "/p_1.status.json", "r+"))
  f:write("garbage{"); f:close()
  local code, out = h.sh(dir, "jobrun wait DM")
  local jobs = h.jobs_by_name(h.state(dir))
  tap.is({ jobs.p_1.status, jobs.p_1.exit_code }, { "SUCCEEDED", 0 }, "p_1: the end its slot's journal holds", out)
  local p2 = jobs.p_2
  tap.ok(p2.status == "SUCCEEDED" or (p2.status == "LOST" and (p2.record_error or ""):find("p_2.status.json", 1, true)),
    "p_2 (claimed through the same damaged record): its end, or LOST naming the file", json.encode(p2))
  tap.ok(code == 0 or code == 1, "wait ends")
end)

tap.test("a damaged claim and no journal line: LOST, naming the damaged file", function()
  local dir = h.scratch()
  local jobs_dir = one_job(dir, "DN", "sleep 0.5")
  -- the slot gone, its journal gone, its claim garbage: nothing holds the end
  local claim = json.decode(fs.read(jobs_dir .. "/p_1.status.json") or "")
  os.execute("kill -KILL " .. claim.supervisor_pid)
  tap.ok(h.eventually(function() return h.gone(claim.supervisor_pid) end, 5), "the slot is gone")
  for _, f in ipairs(fs.list(jobs_dir)) do
    if f:match("%.journal$") then fs.remove(jobs_dir .. "/" .. f) end
  end
  local f = assert(io.open(jobs_dir .. "/p_1.status.json", "r+"))
  f:write("garbage{"); f:close()
  h.sh(dir, "jobrun wait DN")
  local p1 = h.jobs_by_name(h.state(dir)).p_1
  tap.is({ p1.status, p1.native_status }, { "LOST", "DAMAGED_RECORD" }, "LOST for a damaged record")
  tap.like(p1.record_error or "", "p_1%.status%.json: not JSON", "the damaged file named")
end)

tap.test("a journal replaced by a link while the run is live: never followed", function()
  local dir = h.scratch()
  local target = h.write(dir .. "/target.txt", "untouched\n")
  local jobs_dir = one_job(dir, "SJ", "sleep 1")
  local journal
  tap.ok(h.eventually(function()
    for _, f in ipairs(fs.list(jobs_dir)) do if f:match("%.journal$") then journal = jobs_dir .. "/" .. f end end
    return journal
  end, 5), "the slot's journal")
  assert(fs.symlink(target, journal))
  h.sh(dir, "jobrun wait SJ")
  tap.is(fs.read(target), "untouched\n", "the link's target is untouched: the slot wrote nothing through it")
  local jobs = h.jobs_by_name(h.state(dir))
  for _, name in ipairs({ "p_1", "p_2" }) do
    local job = jobs[name]
    tap.ok(job.status == "SUCCEEDED" or (job.status == "LOST" and (job.record_error or ""):find("journal", 1, true)),
      name .. ": its end (from its result file), or LOST naming the journal", json.encode(job))
  end
end)

-- stuck_jobs(dir, id, n): a run of n jobs (`exec sleep 30`), each claimed, then its
-- slots and jobs killed, so that what their files say is final. Returns the jobs dir.
local function stuck_jobs(dir, id, n)
  h.write(dir .. "/s.lua", string.format(
    [[suite "z" { matrix = { i = { %s } }, run = "echo $$ > pid.{i}; exec sleep 30" }]],
    n == 2 and "1, 2" or "1, 2, 3"))
  tap.is(h.sh(dir, "jobrun launch s.lua --run-id " .. id), 0, "launched")
  local jobs_dir = dir .. "/.jobrun/runs/" .. id .. "/jobs"
  tap.ok(h.eventually(function()
    if claims(jobs_dir) < n then return false end
    for i = 1, n do if not fs.stat(dir .. "/pid." .. i) then return false end end
    return true
  end, 10), "every job claimed and started")
  for _, slot in ipairs(pool_of(jobs_dir).slots) do os.execute("kill -KILL " .. slot.pid) end
  for i = 1, n do os.execute("kill -KILL " .. (fs.read(dir .. "/pid." .. i) or ""):gsub("%s", "")) end
  return jobs_dir
end

tap.test("claim and result files replaced by links: damage, naming the file; targets untouched", function()
  local dir = h.scratch()
  local jobs_dir = stuck_jobs(dir, "SR", 2)
  -- a well-formed end elsewhere, which a reader that follows links would take
  local ended = json.encode({ state = "EXITED", exit_code = 0, supervisor_pid = 1, supervisor_start = 1, ended_at = 1 })
  local target = h.write(dir .. "/target.json", ended .. "\n")
  for _, f in ipairs(fs.list(jobs_dir)) do -- (no journal: the claim alone would say the end)
    if f:match("%.journal$") then fs.remove(jobs_dir .. "/" .. f) end
  end
  fs.remove(jobs_dir .. "/z_1.status.json")
  assert(fs.symlink(target, jobs_dir .. "/z_1.status.json"))
  assert(fs.symlink(target, jobs_dir .. "/z_2.result.json"))
  h.sh(dir, "jobrun check SR")
  local jobs = h.jobs_by_name(h.state(dir))
  tap.is({ jobs.z_1.status, jobs.z_2.status }, { "LOST", "LOST" }, "neither end is taken through a link")
  tap.like(jobs.z_1.record_error or "", "z_1%.status%.json: a symbolic link, not a regular file", "the claim named")
  tap.like(jobs.z_2.record_error or "", "z_2%.result%.json: a symbolic link, not a regular file", "the result named")
  tap.is(fs.read(target), ended .. "\n", "the target is untouched")
end)

tap.test("a job file linked to /dev/zero or a FIFO: check returns at once, naming the file", function()
  local dir = h.scratch()
  local jobs_dir = stuck_jobs(dir, "DZ", 3)
  fs.remove(jobs_dir .. "/z_2.status.json")
  assert(fs.symlink("/dev/zero", jobs_dir .. "/z_2.status.json"))
  fs.remove(jobs_dir .. "/z_3.status.json")
  tap.ok(os.execute("mkfifo " .. h.q(jobs_dir .. "/z_3.status.json")), "a FIFO in place of a claim")
  -- (bounded, so that a reader without a bound fails here rather than take the machine's memory;
  -- not under ASan, which reserves far more address space)
  local limit = os.getenv("JOBRUN_BUILD") == "asan" and "" or "ulimit -v 4000000; "
  local t0 = process.now()
  local code, out, err = h.sh(dir, limit .. "timeout 20 " .. h.q(h.bin) .. " check DZ")
  tap.ok(process.now() - t0 < 15, "check returns promptly", string.format("%.1fs", process.now() - t0))
  tap.is(code, 1, "and reports the lost jobs (not a timeout, not a crash)", out .. err)
  local jobs = h.jobs_by_name(h.state(dir))
  tap.like(jobs.z_2.record_error or "", "z_2%.status%.json: a symbolic link, not a regular file", "the link named")
  tap.like(jobs.z_3.record_error or "", "z_3%.status%.json: a FIFO, not a regular file", "the FIFO named")
end)

tap.test("state.json linked to /dev/zero: every command that reads it stops at once, naming it", function()
  local dir = h.scratch()
  h.write(dir .. "/s.lua", [[suite "sz" { run = "true" }]])
  tap.is(h.sh(dir, "jobrun run s.lua --run-id SZ"), 0, "ran")
  local path = dir .. "/.jobrun/runs/SZ/state.json"
  fs.remove(path)
  assert(fs.symlink("/dev/zero", path))
  local limit = os.getenv("JOBRUN_BUILD") == "asan" and "" or "ulimit -v 4000000; "
  local t0 = process.now()
  local code, _, err = h.sh(dir, limit .. "timeout 20 " .. h.q(h.bin) .. " check SZ")
  tap.ok(process.now() - t0 < 15, "check returns promptly", string.format("%.1fs", process.now() - t0))
  tap.is(code, 3, "exit 3: the state cannot be read")
  tap.like(err, "state%.json: a symbolic link, not a regular file", "naming the file", err)
end)

tap.test("an end taken from the kernel's record never comes before the job's start", function()
  local dir = h.scratch()
  h.write(dir .. "/s.lua", 'local ids = {}\nfor i = 1, 40 do ids[i] = i end\n'
    .. 'suite "fast" { matrix = { i = ids }, run = { "true" }, max_parallel = 4 }\n')
  local code, out = h.sh(dir, "jobrun run s.lua --run-id f --json")
  tap.is(code, 0, "40 jobs of true passed")
  local neg = {}
  for _, j in ipairs((json.decode(out) or { jobs = {} }).jobs) do
    if type(j.duration_s) ~= "number" or j.duration_s < 0 then
      neg[#neg + 1] = j.name .. "=" .. tostring(j.duration_s)
    end
  end
  tap.is(neg, {}, "no negative (or missing) duration (the scheduler's per-CPU clocks drift)")
end)

return tap.done()
