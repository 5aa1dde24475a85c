-- Pipelines (SPEC §3 "Several suites in one file"): per-cell settings in include entries,
-- several suites in one run, needs, outputs, SKIPPED, rerun of a failed need and its dependents.
local tap = require "tap"
local h = require "helpers"
local json = require "jobrun.json"

tap.test("include entries set a cell's expect and timeout; other keys stay parameters", function()
  local dir = h.scratch()
  h.write(dir .. "/s.lua", [[
suite "cells" {
  matrix = { model = { "small", "big", "slow" } },
  include = {
    { model = "big", expect = { status = "FAILED", exit_code = 3 }, size = "7b" },
    { model = "slow", timeout = "1s", expect = { status = "TIMEOUT" } },
    { model = "small", expct = 1 },
  },
  run = "case {model} in big) exit 3;; slow) sleep 30;; esac; echo ok",
}
]])
  local pc, pout, perr = h.sh(dir, "jobrun plan s.lua --json")
  tap.is(pc, 0, "plan exits 0")
  local doc = json.decode(pout)
  local by = {}
  for _, j in ipairs(doc and doc.jobs or {}) do by[j.name] = j end
  tap.is(by.cells_big_7b and by.cells_big_7b.expect, { status = "FAILED", exit_code = 3 }, "big carries its own expect")
  tap.is(by.cells_big_7b and by.cells_big_7b.params, { model = "big", size = "7b" }, "expect is no parameter; size is")
  tap.is(by.cells_slow and by.cells_slow.timeout, 1, "slow carries its own timeout")
  tap.is(by.cells_small_1 and by.cells_small_1.expect, json.null, "small keeps the suite's (none)")
  tap.like(perr, "s%.lua:1: suite \"cells\": include entry 3: 'expct' is taken as a parameter; did you mean "
    .. "the job field 'expect'%?", "a misspelt job field is warned of, with file:line")
  local code, out = h.sh(dir, "jobrun run s.lua --run-id r1")
  tap.is(code, 0, "every cell passes by its own expectation: " .. out)
  local jobs = h.jobs_by_name(h.state(dir))
  tap.is(jobs.cells_slow.status, "TIMEOUT", "the 1s timeout of the slow cell applied")
  tap.is(jobs.cells_big_7b.verdict, "pass", "the FAILED cell passes by its own expect")
end)

tap.test("a bad value in an include cell is an error at file:line", function()
  local dir = h.scratch()
  h.write(dir .. "/s.lua", [[

suite "cells" {
  matrix = { model = { "small" } },
  include = { { model = "small", timeout = "soon" } },
  run = "true",
}
]])
  local code, _, err = h.sh(dir, "jobrun plan s.lua")
  tap.is(code, 2, "exit 2")
  tap.like(err, "s%.lua:2: .*include entry 1.*timeout", "names file:line, the entry and the key")
end)
return tap.done()
