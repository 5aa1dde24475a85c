-- check --watch while jobs run: each running job's last log line (escaped, cut to the width)
-- and the ETA, rendered from a real run, then end to end under a pseudo-terminal (script(1))
-- of a set width; --interval.
local tap = require "tap"
local h = require "helpers"
local fs = require "jobrun.c.fs"
local process = require "jobrun.c.process"
local Run = require "jobrun.run"
local textable = require "jobrun.report.table"

-- A quick job, and one that writes a progress bar redrawn with \r, a long line with escapes,
-- then waits on a FIFO that the test writes to once it has looked.
local SUITE = [[
suite "w" {
  matrix = { i = { 1, 2 } },
  run = [=[if [ {i} = 1 ]; then echo quick; exit 0; fi
printf 'progress 10%%\rprogress 50%%\r\n'
printf 'loading \033[32mok\033[0m \033]0;evil title\007 then a line far longer than any terminal it might be shown in\n'
read x < gate]=],
}
]]

local function widest(text)
  local w = 0
  for line in text:gmatch("[^\n]*") do w = math.max(w, textable.width((line:gsub("\r", "")))) end
  return w
end

h.test_in(tap, "the watch view: the running job's last line and the ETA", function(dir)
  h.write(dir .. "/s.lua", SUITE)
  assert(os.execute("mkfifo " .. h.q(dir .. "/gate")))
  tap.is(select(1, h.sh(dir, "jobrun launch s.lua --run-id W")), 0, "launched")
  local run_dir = dir .. "/.jobrun/runs/W"
  tap.ok(h.eventually(function()
    h.sh(dir, "jobrun check W")
    local run = Run.open(run_dir)
    local log = fs.read(run_dir .. "/logs/w_2.log") or ""
    return run.data.jobs[1].status == "SUCCEEDED" and log:find("terminal it might", 1, true)
  end, 10), "w_1 ended; w_2 runs and has written its lines")

  local check = require "jobrun.commands.check"
  local run = Run.open(run_dir)
  local text = check.watch_text(run.data, run.dir, { color = "never" }, 50, process.time())
  tap.like(text, "\nRunning:\n  w_2  loading ok  then a line far longer than an…\n",
    "the running job's last line: escape sequences dropped (the reports' one stripper), cut with … at 50 columns")
  tap.ok(not text:find("\27]", 1, true) and not text:find("\7", 1, true), "no raw control sequence reaches the screen")
  tap.like(text, "\nETA: %d+:%d%d ", "the ETA, once a job has ended")
  tap.ok(not text:find("quick", 1, true), "no line of a job that has ended")
  tap.ok(widest(text:match("Running:.*$")) <= 50, "nothing below the table is wider")
  -- A progress bar redrawn with \r: what the terminal was left showing.
  h.write(run_dir .. "/logs/w_2.log", "start\nprogress 10%\rprogress 50%\r\n\n")
  tap.like(check.watch_text(run.data, run.dir, { color = "never" }, 50, process.time()),
    "\n  w_2  progress 50%%\n", "a line redrawn with \\r: its last state; blank lines skipped")
  h.write(run_dir .. "/logs/w_2.log", "")
  tap.like(check.watch_text(run.data, run.dir, { color = "never" }, 50, process.time()),
    "  w_2  %(no output yet%)", "a job with no output yet")
  h.sh(dir, "echo > gate")
  tap.ok(h.eventually(function() return select(1, h.sh(dir, "jobrun check W")) == 0 end, 10), "the run ends")
end)

h.test_in(tap, "check --watch under a pseudo-terminal 44 columns wide; --interval", function(dir)
  h.write(dir .. "/s.lua", SUITE)
  assert(os.execute("mkfifo " .. h.q(dir .. "/gate")))
  tap.is(select(1, h.sh(dir, "jobrun launch s.lua --run-id P")), 0, "launched")
  -- The gate opens after a second: --watch draws while w_2 runs, and returns when it ends.
  local code, out = h.sh(dir, "(sleep 1.5; echo > gate) & script -qec "
    .. h.q("stty cols 44 rows 50; " .. h.q(h.bin) .. " check --watch --interval 0.2 --color never") .. " /dev/null")
  tap.is(code, 0, "--watch returns 0 once every job has passed")
  local screen = out:gsub("\r", "")
  tap.like(screen, "\nRunning:\n  w_2  [^\n]*\n", "a running job's line")
  tap.like(screen, "  w_2  loading ok ", "its last log line")
  tap.like(screen, "ETA: %d+:%d%d", "the ETA")
  local frames = select(2, screen:gsub("Running:", ""))
  tap.ok(frames >= 3, "redrawn every --interval (0.2s) while nothing ends: " .. frames .. " frames")
  local last = screen:match(".*\27%[2J(.*)$") or ""
  tap.like(last, "w_2%s+SUCCEEDED", "the last frame: everything ended")
  tap.ok(not last:find("Running:", 1, true) and not last:find("ETA", 1, true), "with no running line or ETA")
  local wide = 0
  for rows in screen:gsub("\27%[[HJ2]+", ""):gmatch("Running:\n(.-)\nETA") do wide = math.max(wide, widest(rows)) end
  tap.is(wide, 44, "the running lines are cut to the 44 columns")

  local c2, _, e2 = h.sh(dir, "jobrun check P --watch --interval soon")
  tap.is(c2, 2, "a bad --interval: exit 2")
  tap.like(e2, "%-%-interval: 'soon' is not a duration", "said")
  local c3, _, e3 = h.sh(dir, "jobrun check P --interval 1s")
  tap.is(c3, 2, "--interval without --watch: exit 2")
  tap.like(e3, "%-%-interval goes with %-%-watch", "said")
end)

return tap.done()
