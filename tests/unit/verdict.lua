local tap = require "tap"
local verdict = require "jobrun.judge.verdict"

local function job(t)
  t.status = t.status or "SUCCEEDED"
  return t
end

tap.is({ verdict.judge(job({ exit_code = 0 }), nil) }, { "pass", {} }, "no expectation: success passes")
tap.is({ verdict.judge(job({ status = "FAILED", exit_code = 2 }), nil) },
  { "fail", { "status is FAILED, expected SUCCEEDED", "exit code is 2, expected 0" } }, "no expectation: failure")
tap.is({ verdict.judge(job({ status = "RUNNING" }), { status = "FAILED" }) }, { "pending", {} }, "running: pending")
tap.is({ verdict.judge(job({ exit_code = 3, termination_reason = "job_completed" }),
  { exit_code = "nonzero", termination = "job_completed" }) }, { "pass", {} }, "nonzero exit expected")
tap.is({ verdict.judge(job({ exit_code = 0 }), { exit_code = "nonzero" }) },
  { "fail", { "exit code is 0, expected non-zero" } }, "nonzero missed")
tap.is({ verdict.judge(job({ termination_reason = "timeout" }), { termination = { "a", "b" } }) },
  { "fail", { "termination is timeout, expected a or b" } }, "termination list")
tap.is({ verdict.judge(job({ restart_count = 3 }), { restarts = { min = 1, max = 2 } }) },
  { "fail", { "restarts are 3, expected at least 1 and at most 2" } }, "restart range")
tap.is({ verdict.judge(job({ restart_count = 1 }), { restarts = { min = 1 } }) }, { "pass", {} }, "restart min")
tap.is({ verdict.judge(job({ status = "CANCELLED" }), { exit_code = 0 }) },
  { "fail", { "the job was cancelled", "exit code is none, expected 0" } }, "cancelled never passes unless expected")
tap.is({ verdict.judge(job({ status = "CANCELLED" }), { status = "CANCELLED" }) }, { "pass", {} },
  "unless it is the expected status")
tap.is({ verdict.judge(job({}), { log = "hello %d+" }, function() return "x hello 42" end) }, { "pass", {} },
  "log pattern found")
tap.is({ verdict.judge(job({}), { log = "bye" }, function() return "hello" end) },
  { "fail", { 'the log has no match for "bye"' } }, "log pattern missing")
tap.is({ verdict.judge(job({ exit_code = 7 }), function(r) return r.exit_code == 7 end) }, { "pass", {} },
  "function expectation")
tap.is({ verdict.judge(job({ exit_code = 1 }), function() return false, "too slow" end) },
  { "fail", { "too slow" } }, "function expectation with a reason")
tap.is(select(2, verdict.judge(job({}), function() error("boom") end))[1]:match("^the expectation function failed"),
  "the expectation function failed", "a failing function is a mismatch")

return tap.done()
