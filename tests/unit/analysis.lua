-- Parsers over realistic logs: restarts, prefixes, ANSI, CRLF, empty and unterminated logs,
-- binary noise, scopes, priorities, fn parsers, and the C scan underneath.
local tap = require "tap"
local fs = require "jobrun.c.fs"
local scan = require "jobrun.c.scan"
local analysis = require "jobrun.judge.analysis"
local dsl = require "jobrun.suite.dsl"

local dir = require("helpers").scratch()
local n = 0
local function log(text)
  n = n + 1
  local path = dir .. "/log" .. n
  assert(fs.write_atomic(path, text))
  return path
end

local metta = analysis.parsers(dsl.load_packs({ "metta" }))
local function summary(attempt_lines)
  return table.concat(attempt_lines, "\n") .. "\n"
end

tap.test("the last attempt's summary wins", function()
  local path = log(summary({
    "(task, pid=1234) [INFO] starting",
    "(task, pid=1234) [SUMMARY] ===== Job Summary =====",
    "(task, pid=1234) [SUMMARY] Metta Run ID: run.1",
    "(task, pid=1234) [SUMMARY] Restart Count: 0",
    "(task, pid=1234) [SUMMARY] Exit code: 0",
    "(task, pid=1234) [SUMMARY] Termination reason: force_restart_test",
    "(head, rank=0, pid=99) [SUMMARY] Restart Count: 1",
    "(head, rank=0, pid=99) [SUMMARY] Exit code: 0",
    "(head, rank=0, pid=99) [SUMMARY] Termination reason: max_runtime_reached [cleanup]",
    "(head, rank=0, pid=99) [SUMMARY] Skypilot Task ID: sky-2026-abc_1",
  }))
  local found = analysis.analyze(path, metta)
  tap.is(found.restart_count, 1, "restart count from the second attempt")
  tap.is(found.exit_code, 0, "exit code")
  tap.is(found.termination_reason, "max_runtime_reached", "termination, cut before ' ['")
  tap.is(found.fields.metta_run_id, "run.1", "run id from the only attempt that printed it")
  tap.is(found.fields.skypilot_task_id, "sky-2026-abc_1", "task id")
  tap.is(math.type(found.restart_count), "integer", "numbers are numbers")
end)

tap.test("ANSI colour, CRLF, no trailing newline", function()
  local path = log("\27[1m[SUMMARY]\27[0m Exit code: \27[31m3\27[0m\r\n"
    .. "\27[33m[SUMMARY] Termination reason: heartbeat_timeout\27[0m\r\n"
    .. "[SUMMARY] Restart Count: 2")
  local found = analysis.analyze(path, metta)
  tap.is({ found.exit_code, found.termination_reason, found.restart_count }, { 3, "heartbeat_timeout", 2 },
    "colour codes inside the marker and the value are ignored")
end)

tap.test("empty, binary and marker-free logs", function()
  local found = analysis.analyze(log(""), metta)
  tap.is({ found.exit_code, found.termination_reason, found.restart_count }, { nil, nil, nil }, "0-byte log")
  local blob = {}
  for i = 0, 4095 do blob[#blob + 1] = string.char(i % 256) end
  found = analysis.analyze(log(table.concat(blob) .. "\n[SUMMARY] Exit code: 9\n" .. table.concat(blob)), metta)
  tap.is(found.exit_code, 9, "a marker between binary blobs")
  local missing, err = analysis.analyze(dir .. "/nope", metta)
  tap.is(missing, nil, "a missing log")
  tap.like(err, "No such file", "says why")
end)

tap.test("tail scope, all scope, first", function()
  local filler = string.rep("x", 99) .. "\n"
  local early = "[SUMMARY] Exit code: 5\nEARLY marker\n"
  local path = log(early .. string.rep(filler, (analysis.TAIL_BYTES // 100) + 100) .. "LATE marker\n")
  local found = analysis.analyze(path, metta)
  tap.is(found.exit_code, nil, "a marker before the tail is not seen by default")
  local parsers = analysis.parsers(nil)
  parsers[#parsers + 1] = { name = "early_all", contains = "[SUMMARY] Exit code:", pattern = "code: (%d+)",
                            field = "exit_code", number = true, scope = "all", order = 100 }
  parsers[#parsers + 1] = { name = "marker_first", contains = "marker", pattern = "^(%u+) marker",
                            field = "which", first = true, scope = "all", order = 101 }
  parsers[#parsers + 1] = { name = "marker_last", contains = "marker", pattern = "^(%u+) marker",
                            field = "which_last", scope = "all", order = 102 }
  found = analysis.analyze(path, parsers)
  tap.is(found.exit_code, 5, "scope = all finds it")
  tap.is(found.fields.which, "EARLY", "first = true: the first occurrence")
  tap.is(found.fields.which_last, "LATE", "default: the last")
end)

tap.test("priority, replacement of a built-in, fn parsers, pattern-only parsers", function()
  local suite = log([[
use "metta"
parser "cuda_oom" { contains = "CUDA out of memory", field = "termination_reason", value = "gpu_oom", priority = 20 }
parser "nan" { fn = function(text, result) if text:find("NaN loss") then result.fields.nan = true end end }
parser "lr" { pattern = "lr=([%d.]+)", field = "lr", number = true }
parser "broken" { fn = function() error("oops") end }
suite "s" { run = "x" }
]])
  fs.write_atomic(suite .. ".lua", fs.read(suite))
  local parsers = analysis.parsers(dsl.load(suite .. ".lua"))
  local path = log("step lr=0.1\nstep lr=0.05\nNaN loss at step 3\nRuntimeError: CUDA out of memory. Tried\n"
    .. "[SUMMARY] Termination reason: job_completed\n")
  local found = analysis.analyze(path, parsers)
  tap.is(found.termination_reason, "gpu_oom", "the suite's cuda_oom replaced the built-in and outranks metta")
  tap.is(found.fields.nan, true, "fn parser sets a field")
  tap.is(found.fields.lr, 0.05, "pattern-only parser, last occurrence")
  tap.like(found.fields["parser_error.broken"], "oops", "a failing fn parser is reported, not fatal")
  local builtin_only = analysis.analyze(path, analysis.parsers(nil))
  tap.is(builtin_only.termination_reason, "cuda_oom", "the built-in alone")
  local with_metta = analysis.analyze(path, metta)
  tap.is(with_metta.termination_reason, "job_completed", "metta's marker (priority 10) beats the built-in (5)")
end)

-- Issue 21 item 8: user parsers run in a forked child, under limits enforced from outside.
local process = require "jobrun.c.process"
local function suite_parsers(text)
  local path = log(text)
  fs.write_atomic(path .. ".lua", text)
  return analysis.parsers(dsl.load(path .. ".lua"))
end

tap.test("a parser stuck in one C call is ended by its CPU budget; the others still run", function()
  -- The issue's exact parser, behind a needle so that it runs on one of the two logs only.
  local parsers = suite_parsers([[
parser "stuck" { contains = "STUCK", budget = 0.2,
  fn = function(log) local s = string.rep("a", 40000); return s:find(string.rep("a*", 30) .. "b") end }
parser "seen" { fn = function(text, result) result.fields.seen = #text end }
parser "lr" { pattern = "lr=([%d.]+)", field = "lr", number = true }
suite "s" { run = "x" }
]])
  local wall = analysis.wall_limit
  analysis.wall_limit = function() return 600 end -- only the CPU limit can end it here
  local t0 = process.now()
  local ok, out = pcall(analysis.analyze_many, {
    { path = log("lr=0.5\nSTUCK\n"), parsers = parsers },
    { path = log("lr=0.25\n"), parsers = parsers },
  })
  analysis.wall_limit = wall
  tap.ok(ok, "analysis ends", not ok and tostring(out) or nil)
  out = ok and out or { {}, {} }
  local first, second = out[1], out[2]
  tap.is(first.parser_errors, { { parser = "stuck", error = "CPU budget of 0.2s exceeded" } },
    string.format("the stuck parser is named, ended by its CPU budget (%.1fs)", process.now() - t0))
  tap.is(first.fields and first.fields.seen, 13, "the same log's other fn parser ran")
  tap.is(first.fields and first.fields.lr, 0.5, "and its pattern parser")
  tap.is(second.parser_errors, nil, "the next log: no failure")
  tap.is(second.fields, { seen = 8, lr = 0.25 }, "the next log is analysed in full")
end)

tap.test("a parser that waits without using CPU is ended at the wall-clock limit", function()
  local fifo = dir .. "/fifo"
  os.execute("mkfifo '" .. fifo .. "'")
  local parsers = suite_parsers(string.format([[
parser "wait" { fn = function() local f = io.open(%q); return f and f:read("a") end }
parser "after" { fn = function(_, result) result.fields.after = true end }
suite "s" { run = "x" }
]], fifo))
  local wall = analysis.wall_limit
  analysis.wall_limit = function() return 0.5 end
  local t0 = process.now()
  local found = analysis.analyze(log("x\n"), parsers)
  analysis.wall_limit = wall
  tap.ok(process.now() - t0 < 5, "it ends")
  tap.is(found.parser_errors, { { parser = "wait", error = "wall-clock limit of 0.5s exceeded" } }, "named, with why")
  tap.is(found.fields.after, true, "the next parser ran")
end)

tap.test("a signal ends a stuck analysis at once, and is left pending for the caller", function()
  local parsers = suite_parsers([[
parser "stuck" { budget = 30, fn = function(log)
  local s = string.rep("a", 40000); return s:find(string.rep("a*", 30) .. "b") end }
suite "s" { run = "x" }
]])
  local sigs = assert(process.signals({ "TERM" })) -- as run's drive loop has them
  local path = log("x\n")
  -- The TERM comes while the child is inside string.find: from a shell started now.
  local killer = assert(process.spawn({ argv = { "sh", "-c", "sleep 0.5; kill -TERM " .. process.getpid() } }))
  local t0 = process.now()
  local ok, err = pcall(analysis.analyze, path, parsers)
  local took = process.now() - t0
  killer:wait(true)
  tap.ok(not ok and type(err) == "table" and err.signal == "TERM", "raises { signal = 'TERM' }", tostring(err))
  -- (its budget is 30 s: well before that, however loaded the machine)
  tap.ok(took < 15, string.format("soon after the signal (%.2fs after the start)", took))
  tap.is(sigs:read(), { "TERM" }, "the signal is still there for the caller's signalfd")
  sigs:close()
end)

tap.test("what fn parsers found travels back whole", function()
  local parsers = suite_parsers([[
parser "kinds" { fn = function(text, result)
  result.fields.int, result.fields.float, result.fields.yes = 3, 0.5, true
  result.fields.text = "two\nlines \"quoted\""
  result.fields.list = { 1, "b" }
  result.fields.big = string.rep("0123456789", 300000)
  result.fields.fn = print
  result.exit_code = 7
end }
suite "s" { run = "x" }
]])
  local found = analysis.analyze(log("x\n"), parsers)
  tap.is({ found.fields.int, math.type(found.fields.int), found.fields.float, found.fields.yes },
    { 3, "integer", 0.5, true }, "numbers and booleans")
  tap.is(found.fields.text, "two\nlines \"quoted\"", "a string with a newline and quotes")
  tap.is(found.fields.list, { 1, "b" }, "a list")
  tap.is(found.fields.fn, "<function>", "a function: a placeholder, as in state.json, not a crash")
  tap.is(found.exit_code, 7, "a top-level fact")
  tap.ok(found.fields.big == string.rep("0123456789", 300000), "3 MB in one field, whole")
end)

tap.test("Python traceback, signals", function()
  local path = log("Traceback (most recent call last):\n  File \"a.py\", line 1\nKeyError: 'old'\n"
    .. "(rank=1) Traceback (most recent call last):\n(rank=1)   File \"t.py\", line 9, in <module>\n"
    .. "(rank=1)     main()\n(rank=1) ValueError: learning rate must be positive\n")
  local found = analysis.analyze(path, analysis.parsers(nil))
  tap.is(found.fields.exception, "ValueError: learning rate must be positive", "the last traceback's exception")
  tap.is(found.fields.exception_type, "ValueError", "its type")
  local killed = analysis.analyze(log("working\n"), analysis.parsers(nil), { status = "FAILED", signal = "KILL" })
  tap.is(killed.termination_reason, "signal_KILL", "the backend's signal as a fallback")
  local timeout = analysis.analyze(log("working\n"), analysis.parsers(nil), { status = "TIMEOUT", signal = "KILL" })
  tap.is(timeout.termination_reason, "timeout", "a timeout says timeout")
end)

tap.test("scan.find in C", function()
  -- A marker line that straddles the 4 MiB read chunk boundary.
  local chunk = 4 * 1024 * 1024
  local head = string.rep(string.rep("y", 63) .. "\n", (chunk - 10) // 64)
  local pad = string.rep("z", chunk - 10 - #head)
  local path = log(head .. pad .. "\n[SUMMARY] Exit code: 42\n" .. string.rep("w\n", 10))
  local hits, info = scan.find(path, { "[SUMMARY] Exit code:", "nothing-here" })
  tap.is(hits[1].last, { "[SUMMARY] Exit code: 42" }, "a line across the chunk boundary is whole")
  tap.is(hits[2].count, 0, "no hit")
  tap.is(info.start, 0, "whole file scanned")
  local many = {}
  for i = 1, 20 do many[i] = "hit " .. i end
  hits = scan.find(log(table.concat(many, "\n") .. "\n"), { "hit" })
  tap.is(hits[1].count, 20, "every hit counted")
  tap.is(hits[1].first, { "hit 1", "hit 2", "hit 3", "hit 4", "hit 5", "hit 6", "hit 7", "hit 8" }, "the first 8")
  tap.is(hits[1].last[8], "hit 20", "the last 8 end with the last hit")
  tap.is(hits[1].last[1], "hit 13", "and start 8 before")
  local tail_hits, tail_info = scan.find(path, { "y" }, 100)
  tap.is(tail_hits[1].count, 0, "a tail scan sees only the tail")
  tap.ok(tail_info.start > 0, "and says where it started")
  tap.is(scan.tail(log("one\ntwo\nthree\n"), 9), "three\n", "tail cuts to whole lines")
  tap.is(scan.tail(log("a\n\27[31mred\27[0m\n"), 100), "a\nred\n", "tail strips ANSI")
  tap.raises(function() scan.find(path, { "" }) end, "empty needle", "empty needles refused")
end)

tap.test("scan.line_index in C", function()
  local text = '{"key":"a","job":"a","m":1}\n' .. "no separator here\n" .. '{"key":"b","job":"b","m":2}\n'
    .. '{"key":"a","job":"a","m":3}\n' .. '{"key":"c\\"q","job":"c"}\n' .. '{"key":"d","job":"d"}'
  local index = scan.line_index(text, ',"job":')
  local function line_at(at) return text:sub(math.abs(at)):match("^[^\n]*") end
  tap.is(line_at(index['{"key":"a",']), '{"key":"a","job":"a","m":3}', "a later line with the same head wins")
  tap.is(line_at(index['{"key":"b",']), '{"key":"b","job":"b","m":2}', "each head's line, where it starts")
  tap.ok(index['{"key":"c\\"q",'] < 0, "a line with a backslash: negated")
  tap.is(line_at(index['{"key":"d",']), '{"key":"d","job":"d"}', "the last line, with no newline after it")
  local count = 0
  for _ in pairs(index) do count = count + 1 end
  tap.is(count, 4, "a line without the separator is not indexed")
  tap.is(next(scan.line_index("", ",")), nil, "an empty text: an empty index")
  tap.raises(function() scan.line_index(text, "") end, "empty separator", "an empty separator refused")
end)

os.execute("rm -rf '" .. dir .. "'")
return tap.done()
