-- jobrun.backends.local.jobfile: a supervisor's claim or result read back; a damaged one makes the local
-- backend report the job LOST, naming the file and what is wrong, instead of an internal error.
local tap = require "tap"
local jobfile = require "jobrun.backends.local.jobfile"
local fs = require "jobrun.c.fs"
local process = require "jobrun.c.process"

tap.test("jobfile.check", function()
  local good = { state = "EXITED", attempt = 1, restart_count = 0, exit_code = 3, started_at = 1.5,
                 ended_at = 2, signal = "TERM", supervisor_pid = 42, supervisor_start = 7 }
  tap.ok(jobfile.check(good) == good, "a supervisor's record")
  for i, bad in ipairs({
    "EXITED", 5, {}, { state = 1 },
    { state = "EXITED", started_at = "x" }, { state = "EXITED", exit_code = 1.5 },
    { state = "EXITED", exit_code = "0" }, { state = "EXITED", signal = {} },
    { state = "EXITED", result_cause = true }, { state = "RUNNING", supervisor_pid = 0 },
    { state = "RUNNING", supervisor_pid = 1 << 40 }, { state = "EXITED", ended_at = 0 / 0 },
  }) do
    tap.is(jobfile.check(bad), nil, "refused: bad record " .. i)
  end
  tap.is(jobfile.decode("not json"), false, "not JSON")
  tap.is(jobfile.decode(nil), nil, "no file")
end)

tap.test("a damaged result file: the job is LOST, not an internal error", function()
  local dir = (os.getenv("TMPDIR") or "/tmp") .. "/jobrun-record-test-" .. process.getpid()
  assert(fs.mkdir_p(dir .. "/jobs"))
  assert(fs.write_atomic(dir .. "/jobs/j.result.json", '{"state": "EXITED", "started_at": "yesterday"}'))
  local job = { name = "j", key = "j", native_id = "2147483647", local_start_time = 1, status = "RUNNING",
                log_path_rel = "logs/j.log", fields = {} }
  local ok, err = pcall(function()
    for j, obs in pairs(require("jobrun.backends.local").poll({ run_dir = dir, handles = {} }, { job })) do
      assert(require("jobrun.run.status").apply(j, obs))
    end
  end)
  tap.ok(ok, "poll does not raise", err)
  tap.is(job.status, "LOST", "the job is LOST (its supervisor is gone, its record unreadable)")
  tap.like(job.record_error, "j%.result%.json: ", "and says which file is damaged")
  os.execute("rm -rf '" .. dir .. "'")
end)

return tap.done()
