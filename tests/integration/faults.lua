-- Faults on the local backend, with real processes: jobs killed by signals, and a disk that
-- fills up under a running job (a small tmpfs; root only). Every scratch directory, mount and
-- process a test makes is gone when it ends, even when it fails.
local tap = require "tap"
local h = require "helpers"
local fs = require "jobrun.c.fs"
local json = require "jobrun.base.json"

-- scratch(fn): fn(dir) in a fresh directory, removed afterwards (after unmounting what fn
-- registered with cleanup.mounts), whether fn fails or not.
local function scratch(name, fn)
  tap.test(name, function()
    local dir = h.scratch()
    local mounts = {}
    local ok, err = xpcall(fn, debug.traceback, dir, mounts)
    for i = #mounts, 1, -1 do
      if fs.stat(mounts[i]) then os.execute("umount " .. h.q(mounts[i]) .. " 2>/dev/null") end
    end
    os.execute("rm -rf --one-file-system " .. h.q(dir)) -- never across a mount still there
    if not ok then error(err, 0) end
  end)
end

-- A TAP skip ("ok N - # skip why"): tap.lua has no skip of its own.
local function skip(why) tap.ok(true, "# skip " .. why) end

local function root() return select(2, h.sh("/", "id -u")) == "0\n" end

local function mount_tmpfs(dir, size)
  assert(fs.mkdir_p(dir))
  return os.execute(string.format("mount -t tmpfs -o size=%s tmpfs %s 2>/dev/null", size, h.q(dir)))
end

scratch("a signal's exit code is 128 + its number, for every signal", function(dir)
  h.write(dir .. "/s.lua", [[
suite "sig" { matrix = { sig = { "FPE", "USR1", "KILL" } }, run = "kill -{sig} $$", expect = { status = "FAILED" } }
]])
  local code, out = h.sh(dir, "jobrun run s.lua --run-id S")
  tap.is(code, 0, "every job failed as expected")
  tap.like(out, "sig_FPE%s+FAILED%s+0%s+signal_FPE%s+136", "table: SIGFPE is exit 136")
  local jobs = h.jobs_by_name(h.state(dir))
  tap.is({ jobs.sig_FPE.exit_code, jobs.sig_USR1.exit_code, jobs.sig_KILL.exit_code }, { 136, 138, 137 },
    "FPE 136, USR1 138, KILL 137")
  tap.is({ jobs.sig_FPE.native_status, jobs.sig_USR1.termination_reason }, { "SIGFPE", "signal_USR1" },
    "the signal's name kept for display")
end)

-- A job whose ranks fill the disk that holds the whole state directory: rank 0 writes until
-- ENOSPC (first running `before`), then rank 1 prints a line (which the log can no longer take),
-- and both exit 0. fill_disk(dir, mounts, before) -> the runner's exit code and stderr, then
-- check's exit code, its --json job and state.json's job once there is room again; nil where
-- the tmpfs cannot be had (the test is skipped).
local function fill_disk(dir, mounts, before)
  if not root() then skip("needs root to mount a tmpfs"); return nil end
  if not mount_tmpfs(dir .. "/state", "1m") then skip("mount -t tmpfs failed"); return nil end
  mounts[#mounts + 1] = dir .. "/state"
  h.write(dir .. "/s.lua", [[
suite "full" {
  nodes = 2,
  run = [=[
    if [ $JOBRUN_NODE_RANK = 0 ]; then
      ]] .. before .. [[

      head -c 4M /dev/zero > state/filler 2>/dev/null; touch filled
    else
      while [ ! -e filled ]; do sleep 0.05; done
      echo written after the disk filled up
    fi
  ]=],
}
]])
  local code, _, err = h.sh(dir, "jobrun run s.lua --state-dir state --run-id F")
  os.remove(dir .. "/state/filler")
  local c2, js = h.sh(dir, "jobrun check F --state-dir state --json")
  local job = (json.decode(js) or { jobs = {} }).jobs[1] or {}
  local saved = json.decode(fs.read(dir .. "/state/runs/F/state.json") or "") or { jobs = {} }
  return code, err, c2, job, saved.jobs[1] or {}
end

-- The slot's journal has room left in the block it has: the end is recorded there, with the
-- log's fault.
scratch("a full disk: the slot's journal still takes the job's end, with the log's fault", function(dir, mounts)
  local code, err, c2, job, rec = fill_disk(dir, mounts, ":")
  if not code then return end
  tap.is(code, 3, "the runner cannot write state.json: exit 3")
  tap.like(err, "No space left on device", "and says why")
  tap.is({ c2, job.status, job.exit_code }, { 0, "SUCCEEDED", 0 }, "check finds the job's real outcome")
  tap.like(rec.log_error, "^log write failed: .*No space left on device$", "state.json: log_error")
  tap.is(rec.result_error, nil, "no result_error: the journal took it")
end)

-- The same, and the slot's journal is gone too (rank 0 removes it before it fills the disk): the
-- end can be written neither as a journal line nor as a result file, and goes over the slot's
-- record in place.
scratch("a full disk: the job's record says so, with the cause, and keeps its exit code", function(dir, mounts)
  -- (once the slot has written the line that says the job started, with its pid: after it, the
  -- slot writes nothing to the journal until the job's end)
  local code, err, c2, job, rec = fill_disk(dir, mounts, "until grep -qs '\"pid\"' state/runs/F/jobs/*.journal; "
    .. "do sleep 0.05; done; rm -f state/runs/F/jobs/*.journal")
  if not code then return end
  tap.is(code, 3, "the runner cannot write state.json either: exit 3")
  tap.like(err, "No space left on device", "and says why")
  tap.is({ c2, job.status, job.exit_code }, { 0, "SUCCEEDED", 0 },
    "once there is room again, check finds the job's real outcome")
  tap.is(job.termination_reason, "result_unwritable: No space left on device", "--json: the cause, as its termination")
  tap.like(rec.result_error, "^cannot write .*full%.result%.json: No space left on device", "state.json: result_error")
  tap.like(rec.log_error, "^log write failed: .*No space left on device$", "state.json: log_error")
  tap.is(rec.native_status, "EXITED", "native status of an exit")
end)

-- The slot's journal removed while its job runs (as a job that hides jobs/ under a mount makes it
-- vanish): the slot does not make a new journal, which the runner, reading on from where it
-- stopped in the old one, would not see (the job was once taken for SUPERVISOR_GONE); the end
-- goes to the job's result file.
scratch("a slot's journal removed under it: the job's end still found, never SUPERVISOR_GONE", function(dir)
  h.write(dir .. "/s.lua", [[
suite "j" {
  run = [=[until grep -qs '"pid"' .jobrun/runs/J/jobs/*.journal; do sleep 0.05; done
    rm -f .jobrun/runs/J/jobs/*.journal; sleep 0.3; exit 0]=],
}
]])
  local code, out = h.sh(dir, "jobrun run s.lua --run-id J")
  tap.is(code, 0, "the run passes")
  tap.like(out, "j%s+SUCCEEDED%s+0%s+%-%s+0%s", "the job SUCCEEDED with exit code 0")
  tap.ok(fs.stat(dir .. "/.jobrun/runs/J/jobs/j.result.json"), "its end is in its result file")
  local _, journals = h.sh(dir, "ls .jobrun/runs/J/jobs | grep -c 'journal$'")
  tap.is(journals, "0\n", "and no new journal was made")
end)

-- Nothing at all can be written: the job hides the run's jobs/ directory under a full tmpfs,
-- so neither the result nor the claim can be written. The runner, the supervisor's parent,
-- learns the cause from the supervisor's exit status.
scratch("no file writable at all: LOST with the cause, never a bare SUPERVISOR_GONE", function(dir, mounts)
  if not root() then return skip("needs root to mount a tmpfs") end
  local jobs_dir = dir .. "/.jobrun/runs/G/jobs"
  mounts[#mounts + 1] = jobs_dir
  if not mount_tmpfs(dir .. "/probe", "4k") then return skip("mount -t tmpfs failed") end
  os.execute("umount " .. h.q(dir .. "/probe"))
  h.write(dir .. "/s.lua", string.format([[
suite "ro" {
  run = "mount -t tmpfs -o size=4k tmpfs %s && head -c 1M /dev/zero > %s/filler 2>/dev/null; exit 0",
}
]], jobs_dir, jobs_dir))
  local code, out = h.sh(dir, "jobrun run s.lua --run-id G")
  tap.is(code, 1, "the job is not a pass")
  tap.like(out, "ro%s+LOST%s+%S+%s+result_unwritable: No space left on device", "the table names the cause")
  local job = h.state(dir).jobs[1]
  tap.is({ job.status, job.native_status, job.termination_reason },
    { "LOST", "RESULT_UNWRITABLE", "result_unwritable: No space left on device" }, "state.json: LOST, and why")
end)

return tap.done()
