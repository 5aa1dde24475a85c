-- `jobrun logs --tail N`: the end of the log, read backwards from it; big logs and very long
-- lines cost what is shown. Memory is checked loosely (peak RSS from /usr/bin/time); timing
-- is the benchmark's business (bench/tail.sh), not the tests'.
local tap = require "tap"
local h = require "helpers"
local fs = require "jobrun.c.fs"

local dir = h.scratch()
h.write(dir .. "/s.lua", 'suite "lt" { run = "echo first line" }\n')
local code = h.sh(dir, "jobrun run s.lua --run-id r")
local log = dir .. "/" .. h.jobs_by_name(h.state(dir)).lt.log_path

-- logs(n) -> exit code, stdout, peak RSS in KiB
local function logs(n)
  local c, out = h.sh(dir, "/usr/bin/time -f %M -o .rss \"$JOBRUN_BIN\" logs r lt --tail " .. n)
  return c, out, tonumber((fs.read(dir .. "/.rss") or ""):match("(%d+)%s*$"))
end

tap.test("--tail N: the last N lines", function()
  tap.is(code, 0, "the run passed")
  assert(fs.write_atomic(log, "one\ntwo\r\nthree\nfour"))
  local c2, out2 = logs(2)
  tap.is({ c2, out2 }, { 0, "three\nfour" }, "two lines, the last without its newline")
  tap.is(select(2, logs(10)), "one\ntwo\r\nthree\nfour", "more lines than the log has: all of it")
  tap.is(select(2, logs(0)), "", "zero lines")
  assert(fs.write_atomic(log, ""))
  tap.is(select(2, logs(3)), "", "an empty log")
end)

tap.test("--tail of a 200 MB log reads its end only; a 100 KB line is cut", function()
  -- 200 MB without a single line break (a sparse file: no disk used), then 10 lines, one of them 100 KB.
  assert(fs.write_atomic(log, ""))
  assert(os.execute("truncate -s 200M " .. h.q(log)))
  local lines = {}
  for i = 1, 10 do lines[i] = "line " .. i .. "\n" end
  lines[8] = string.rep("x", 102400) .. "\n"
  assert(fs.append(log, table.concat(lines)))
  local c, out, rss = logs(5)
  tap.is(c, 0, "exit 0")
  tap.is(out, "line 6\nline 7\n" .. string.rep("x", 4096) .. "… [cut: 98,304 more bytes]\nline 9\nline 10\n",
    "the last five lines, the long one cut with a marker")
  tap.ok(rss and rss < 64 * 1024, "peak RSS stays small (" .. tostring(rss) .. " KiB; the log is 200 MB)")
  local c1, out1 = logs(1)
  tap.is({ c1, out1 }, { 0, "line 10\n" }, "--tail 1")
end)

-- Issue 21 (also): a log with no line break at all (a 2 GB sparse file reads as NUL bytes) was
-- scanned whole, backwards (4.9 s); the scan is bounded, and says where it cut.
tap.test("--tail of a 2 GB log with no line break: a bounded window, the cut said", function()
  assert(fs.write_atomic(log, ""))
  assert(os.execute("truncate -s 2G " .. h.q(log)))
  local c, out = h.sh(dir, "/usr/bin/time -f '%U %S' -o .cpu \"$JOBRUN_BIN\" logs r lt --tail 5")
  local user, sys = (fs.read(dir .. "/.cpu") or ""):match("([%d.]+) ([%d.]+)%s*$")
  local cpu = (tonumber(user) or 99) + (tonumber(sys) or 99)
  tap.is(c, 0, "exit 0")
  tap.ok(cpu < 1.0, string.format("%.2f s of CPU (the whole file took seconds)", cpu))
  tap.is(out:match("^[^\n]*"), "… [cut: 2,130,706,432 earlier bytes not read: too few line breaks in the last "
    .. "16,777,216]", "first, what was not read")
  tap.ok(#out < 8192 and out:find("… [cut: 16,773,120 more bytes]", 1, true),
    "then the window's one line, itself cut (" .. #out .. " bytes shown)")
  assert(fs.write_atomic(log, ""))
end)

-- tqdm redraws its bar with "\r" and may write no "\n" at all: "\r" breaks lines for display.
tap.test("--tail: a lone \\r is a line break", function()
  local states = {}
  for i = 1, 100 do states[i] = string.format("progress %3d%%", i) end
  assert(fs.write_atomic(log, "start\n" .. table.concat(states, "\r")))
  local c, out = logs(3)
  tap.is({ c, out }, { 0, "progress  98%\nprogress  99%\nprogress 100%" }, "the last three states, a line each")
  assert(fs.write_atomic(log, "a\r\nb\rc\r"))
  tap.is(select(2, logs(2)), "b\nc\n", "\\r\\n is one break; a final \\r ends the last line")
  tap.is(select(2, logs(3)), "a\r\nb\nc\n", "\\r\\n kept as the file has it")
end)

os.execute("rm -rf " .. h.q(dir))
return tap.done()
