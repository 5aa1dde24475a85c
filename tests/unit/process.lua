-- jobrun.c.process with real processes: spawn, wait, kill, poll, pipes, signals.
local tap = require("tap")
local process = require("jobrun.c.process")
local fs = require("jobrun.c.fs")

local dir = (os.getenv("TMPDIR") or "/tmp") .. "/jobrun-process-test-" .. process.getpid()
assert(fs.mkdir_p(dir))
local function path(name) return dir .. "/" .. name end

-- Our open fds as a set; whatever we inherited is here before any test runs.
local function open_fds(pid)
  local set = {}
  for _, fd in ipairs(fs.list("/proc/" .. (pid or "self") .. "/fd") or {}) do set[tonumber(fd)] = true end
  return set
end
local fds_at_start = open_fds()

-- Waits for a child to end, failing the test instead of hanging if it does not.
local function finish(proc, timeout)
  local ready = process.poll({ proc }, timeout or 10)
  assert(#ready == 1, "process did not end in time: " .. tostring(proc))
  return proc:wait()
end

local function run(opts)
  local proc = assert(process.spawn(opts))
  return finish(proc), proc
end

-- Polls a condition: only for things no fd can tell, like a grandchild disappearing.
local function eventually(cond, timeout)
  local deadline = process.now() + (timeout or 5)
  while not cond() do
    if process.now() > deadline then return false end
    process.sleep(0.01)
  end
  return true
end

-- Everything a stream will ever yield, read as poll says it is readable.
local function drain(stream)
  local parts = {}
  while true do
    assert(#process.poll({ stream }, 10) == 1, "stream stayed silent")
    local data = stream:read()
    if data == nil then return table.concat(parts) end
    parts[#parts + 1] = data
  end
end

tap.test("exit codes", function()
  tap.is(run({ argv = { "true" } }), { exited = true, exit_code = 0, core = false }, "true exits 0")
  local result, proc = run({ argv = { "sh", "-c", "exit 3" } })
  tap.is(result.exit_code, 3, "sh -c 'exit 3' exits 3")
  tap.is(result.signal, nil, "no signal")
  tap.ok(proc:wait() == result, "wait() again returns the same cached table")
  tap.is(run({ argv = { "sleep", 0 } }).exit_code, 0, "numbers in argv become strings")
end)

tap.test("wait without block while running", function()
  local proc = assert(process.spawn({ argv = { "sleep", "5" } }))
  tap.is(proc:wait(), nil, "nil while running")
  tap.is(proc:wait(false), nil, "nil with block = false")
  assert(proc:kill("KILL"))
  tap.is(proc:wait(true).signal, "KILL", "wait(true) blocks until it ends")
end)

tap.test("stdout and stderr to files", function()
  local out = path("out.txt")
  run({ argv = { "sh", "-c", "echo one" }, stdout = out })
  run({ argv = { "sh", "-c", "echo two; echo hidden >&2" }, stdout = out, stderr = path("err.txt") })
  tap.is(fs.read(out), "one\ntwo\n", "stdout appends to the file")
  tap.is(fs.read(path("err.txt")), "hidden\n", "stderr to its own file")
  local both = path("both.txt")
  run({ argv = { "sh", "-c", "echo out; echo err >&2; echo out2" }, stdout = both, stderr = "stdout" })
  tap.is(fs.read(both), "out\nerr\nout2\n", "stderr = 'stdout' shares stdout's file")
  run({ argv = { "cat" }, stdin = both, stdout = path("cat.txt") })
  tap.is(fs.read(path("cat.txt")), "out\nerr\nout2\n", "stdin from a file")
  run({ argv = { "cat" }, stdout = path("null.txt") })
  tap.is(fs.read(path("null.txt")), "", "stdin defaults to /dev/null")
end)

tap.test("input: text on the child's stdin, through a pipe", function()
  run({ argv = { "cat" }, input = "line one\nsecret=s3cret\n", stdout = path("input.txt") })
  tap.is(fs.read(path("input.txt")), "line one\nsecret=s3cret\n", "the child reads the text, then EOF")
  run({ argv = { "cat" }, input = "", stdout = path("input-empty.txt") })
  tap.is(fs.read(path("input-empty.txt")), "", "empty input: EOF at once")
  local big = string.rep("0123456789abcdef", 40000) -- 640 KB: more than a default pipe holds
  run({ argv = { "sh", "-c", "sleep 0.2; wc -c" }, input = big, stdout = path("input-big.txt") })
  tap.is(fs.read(path("input-big.txt")):match("%d+"), tostring(#big), "input bigger than 64 KiB, read late")
  -- Beyond pipe-max-size (1 MiB by default) only a process with CAP_SYS_RESOURCE may grow a pipe.
  local huge, err = process.spawn({ argv = { "true" }, input = string.rep("x", 64 << 20) })
  if huge then finish(huge); huge:close() end
  tap.ok(huge or err:find("^cannot pass the input through a pipe: "), "more than a pipe can hold: nil, err", err)
  tap.raises(function() process.spawn({ argv = { "cat" }, input = "x", stdin = "/dev/null" }) end,
    "stdin and input exclude each other", "stdin and input together")
end)

tap.test("env and cwd", function()
  local out = path("env.txt")
  run({ argv = { "env" }, env = { FOO = "bar" }, stdout = out })
  tap.is(fs.read(out), "FOO=bar\n", "env is the child's whole environment (PATH lookup still ours)")
  run({ argv = { "env" }, env = {}, stdout = path("empty-env.txt") })
  tap.is(fs.read(path("empty-env.txt")), "", "an empty env gives an empty environment")
  run({ argv = { "sh", "-c", 'echo "$JOBRUN_TOP"' }, stdout = path("inherit.txt") })
  tap.is(fs.read(path("inherit.txt")), (os.getenv("JOBRUN_TOP") or "") .. "\n", "no env inherits ours")
  run({ argv = { "pwd", "-P" }, cwd = dir, stdout = path("pwd.txt") })
  tap.is(fs.read(path("pwd.txt")), fs.realpath(dir) .. "\n", "cwd")
end)

-- The error of spawn(opts), which must fail.
local function spawn_error(opts)
  local proc, err = process.spawn(opts)
  assert(proc == nil, "spawn unexpectedly succeeded")
  return err
end

tap.test("spawn failures are nil, message", function()
  tap.is(spawn_error({ argv = { "jobrun-no-such-program" } }),
    "cannot run 'jobrun-no-such-program': No such file or directory", "exec error message, no handle")
  tap.like(spawn_error({ argv = { "true" }, cwd = path("missing") }),
    "^cannot change directory to '.*missing': No such file", "cwd error message")
  tap.like(spawn_error({ argv = { "true" }, stdout = path("missing/out.txt") }),
    "^cannot open '.*missing/out.txt': No such file", "stdout open error message")
  tap.like(spawn_error({ argv = { "true" }, stdin = path("missing.txt") }),
    "^cannot open '.*missing.txt'", "stdin open error message")
end)

tap.test("argument errors raise", function()
  tap.raises(function() process.spawn({}) end, "argv must be a list", "argv required")
  tap.raises(function() process.spawn({ argv = {} }) end, "argv must not be empty", "argv non-empty")
  tap.raises(function() process.spawn({ argv = { "true", {} } }) end, "argv element must be a string", "argv strings")
  tap.raises(function() process.spawn({ argv = { "env" }, env = { ["A=B"] = "c" } }) end, "env names", "env names")
  tap.raises(function() process.spawn({ argv = { "true" }, cwd = 7 }) end, "cwd must be a string", "cwd type")
  tap.raises(function() process.killpg(0, "TERM") end, "invalid process group", "killpg(0) is refused")
  tap.raises(function() process.killpg(123, "NOPE") end, "unknown signal 'NOPE'", "unknown signal name")
  tap.raises(function() process.poll({ "x" }) end, "item 1 is not a process", "poll item type")
  tap.raises(function() process.poll({}, 0 / 0) end, "timeout is NaN", "NaN timeout")
  tap.raises(function() process.signals({ "KILL" }) end, "cannot be caught", "KILL cannot be caught")
end)

tap.test("kill", function()
  local proc = assert(process.spawn({ argv = { "sleep", "10" } }))
  tap.is(proc:kill("TERM"), true, "kill returns true")
  tap.is(finish(proc), { exited = true, signal = "TERM", signal_number = 15, core = false }, "signalled TERM")
  local ok, err = proc:kill("TERM")
  tap.is(ok, nil, "kill after exit fails")
  tap.like(err, "^not running", "kill after exit: not running")
  proc = assert(process.spawn({ argv = { "sleep", "10" } }))
  assert(proc:kill(9))
  tap.is(finish(proc).signal, "KILL", "signal by number, named in the result")
  proc = assert(process.spawn({ argv = { "sleep", "10" } }))
  assert(proc:kill("SIGINT"))
  tap.is(finish(proc).signal, "INT", "a SIG prefix is accepted")
  -- Every signal has its number, named or not: exit code 128 + N is computed from it.
  for _, case in ipairs({ { "FPE", 8 }, { "USR1", 10 }, { 40, 40 } }) do
    proc = assert(process.spawn({ argv = { "sleep", "10" } }))
    assert(proc:kill(case[1]))
    local r = finish(proc)
    tap.is({ r.signal, r.signal_number }, { tostring(case[1]), case[2] }, "signal_number of " .. case[1])
  end
end)

-- The grandchild is in the child's process group, so killpg reaches it too.
tap.test("setpgid + killpg kills the whole group", function()
  local pidfile = path("grandchild.pid")
  local proc = assert(process.spawn({
    argv = { "sh", "-c", 'sleep 100 & echo $! > "$1"; wait', "sh", pidfile }, setpgid = true }))
  tap.ok(eventually(function() return (fs.read(pidfile) or ""):find("\n") end), "grandchild started")
  local grandchild = tonumber(fs.read(pidfile))
  tap.ok(process.start_time(grandchild), "grandchild is alive")
  tap.is(process.killpg(proc:pid(), "TERM"), true, "killpg returns true")
  tap.is(finish(proc).signal, "TERM", "child signalled TERM")
  tap.ok(eventually(function() return process.start_time(grandchild) == nil end), "grandchild gone too")
end)

tap.test("killpg of a group with no process left", function()
  local _, proc = run({ argv = { "true" }, setpgid = true })
  local ok, err = process.killpg(proc:pid(), "TERM")
  tap.is(ok, nil, "nil")
  tap.like(err, "No such process", "and the error")
end)

tap.test("setsid", function()
  local out = path("sid.txt")
  local proc = assert(process.spawn({ argv = { "sh", "-c", "ps -o sid= -p $$" }, setsid = true, stdout = out }))
  finish(proc)
  tap.is(tonumber(fs.read(out)), proc:pid(), "the child leads its own session")
end)

tap.test("poll", function()
  local long = assert(process.spawn({ argv = { "sleep", "10" } }))
  local short = assert(process.spawn({ argv = { "sleep", "0.2" } }))
  tap.is(process.poll({ long, short }, 10), { 2 }, "index of the process that exited")
  local t0 = process.now()
  tap.is(process.poll({ long }, 0.3), {}, "timeout with nothing ready: empty list")
  local elapsed = process.now() - t0
  tap.ok(elapsed >= 0.25 and elapsed < 3, "returned after about the timeout", elapsed)
  tap.is(process.poll({ long, short, long:fd() }, 0), { 2 }, "plain fds; timeout 0 does not block")
  tap.is(process.poll({ long }, -0.5), {}, "a deadline already passed is a timeout of 0")
  long:kill("KILL")
  finish(long)
  tap.is(process.poll({ long, short }, 0), { 1, 2 }, "several ready at once, even once reaped")
  short:wait()
  long:close()
  tap.raises(function() process.poll({ long }) end, "item 1 is closed", "a closed handle is refused")
end)

-- A process started by someone else: its pidfd tells when it ends; no status to reap.
tap.test("open a process that is not our child", function()
  local sh = assert(process.spawn({ argv = { "sh", "-c", "sleep 1 >/dev/null & echo $!" }, stdout = "pipe" }))
  local pid = tonumber(drain(sh:stdout()))
  tap.is(finish(sh).exit_code, 0, "the intermediate shell exited, leaving its child")
  local other, err = process.open(pid)
  tap.ok(other, "open(pid)", err)
  tap.is(other:pid(), pid, "pid()")
  tap.is(other:wait(), nil, "wait() is nil while it runs")
  tap.is(tostring(other), "process (pid " .. pid .. ", running)", "__tostring running")
  tap.is(process.poll({ other }, 10), { 1 }, "poll tells when it ends")
  tap.is(other:wait(), { exited = true }, "wait() then says it exited, nothing more")
  tap.is(tostring(other), "process (pid " .. pid .. ", exited)", "__tostring exited")
  other:close()
  local none
  none, err = process.open(999999999)
  tap.ok(none == nil and err:find("No such process"), "open of no process: nil, err", err)
end)

tap.test("start_time", function()
  local own = process.start_time(process.getpid())
  tap.ok(math.type(own) == "integer" and own > 0, "an integer for a live pid")
  tap.is(process.start_time(process.getpid()), own, "stable")
  local _, dead = run({ argv = { "true" } })
  tap.is(process.start_time(dead:pid()), nil, "nil for a reaped process")
  local zombie = assert(process.spawn({ argv = { "true" } }))
  process.poll({ zombie }, 10)
  tap.is(process.start_time(zombie:pid()), nil, "nil for a zombie: it has ended")
  zombie:wait()
  -- comm may hold ') (' : parsing must resume after the LAST ')'.
  local odd = path("a) b (c")
  run({ argv = { "ln", "-s", "/bin/sleep", odd } })
  local plain = assert(process.spawn({ argv = { "sleep", "5" } }))
  local tricky = assert(process.spawn({ argv = { odd, "5" } }))
  local t1, t2 = process.start_time(plain:pid()), process.start_time(tricky:pid())
  tap.is(fs.read("/proc/" .. tricky:pid() .. "/comm"), "a) b (c\n", "a process named 'a) b (c'")
  tap.ok(t2 and math.abs(t2 - t1) < 200, "has the start time of its twin", tostring(t1) .. " vs " .. tostring(t2))
  plain:kill("KILL")
  tricky:kill("KILL")
  finish(plain)
  finish(tricky)
end)

-- Runs while USR1 and TERM are blocked (as the runner will block them for its signalfd).
tap.test("signals", function()
  local set = assert(process.signals({ "USR1", "TERM" }))
  tap.like(tostring(set), "^signals %(USR1, TERM, fd %d+%)$", "__tostring")
  tap.is(set:read(), {}, "nothing received yet")
  tap.is(process.poll({ set }, 0), {}, "not ready yet")
  run({ argv = { "sh", "-c", "kill -USR1 " .. process.getpid() } })
  tap.is(process.poll({ set }, 10), { 1 }, "poll sees the signal")
  tap.is(set:read(), { "USR1" }, "read names it")
  tap.is(set:read(), {}, "read again: nothing")

  local out = path("sigblk.txt")
  run({ argv = { "grep", "-E", "^Sig(Blk|Ign)", "/proc/self/status" }, stdout = out })
  -- Signals 32 and 33 belong to glibc and cannot be reset (make, for one, ignores them), so
  -- only the standard signals 1..31 are checked.
  local text = fs.read(out) or ""
  local blocked = tonumber(text:match("SigBlk:%s*(%x+)") or "", 16)
  local ignored = tonumber(text:match("SigIgn:%s*(%x+)") or "", 16)
  tap.ok(blocked == 0 and ignored and ignored & 0x7fffffff == 0,
    "the child starts with an empty mask and no standard signal ignored", text)
  local t0 = process.now()
  local result = run({ argv = { "sh", "-c", "kill -TERM $$; sleep 5" } })
  tap.is(result.signal, "TERM", "so a child's TERM kills it")
  tap.ok(process.now() - t0 < 3, "quickly")

  set:close()
  tap.is(tostring(set), "signals (closed)", "__tostring closed")
  tap.raises(function() set:read() end, "closed signal set", "read after close raises")
  set:close()
end)

tap.test("stream read", function()
  local proc = assert(process.spawn({ argv = { "sh", "-c", "sleep 0.3; printf hello; printf oops >&2" },
    stdout = "pipe", stderr = "pipe" }))
  local out, err = proc:stdout(), proc:stderr()
  tap.ok(proc:stdout() == out, "stdout() returns the same stream each time")
  tap.like(tostring(out), "^stream %(fd %d+%)$", "__tostring")
  tap.is(out:read(), "", "'' while nothing is there yet")
  tap.is(drain(out), "hello", "read collects stdout")
  tap.is(out:read(), nil, "nil at EOF")
  tap.like(tostring(out), "^stream %(fd %d+, eof%)$", "__tostring at eof")
  tap.is(drain(err), "oops", "stderr = 'pipe'")
  finish(proc)
  tap.is(assert(process.spawn({ argv = { "true" } })):stdout(), nil, "no stream without a pipe")
  proc:close()
  tap.is(tostring(out), "stream (closed)", "closing the process closes its streams")
  tap.raises(function() out:read() end, "closed stream", "read after close raises")
end)

local function pump(stream, out, prefix)
  while true do
    assert(#process.poll({ stream }, 10) == 1, "stream stayed silent")
    local open, err = stream:pump_lines(out, prefix)
    assert(open ~= nil, err)
    if not open then return end
  end
end

tap.test("pump_lines", function()
  local out = path("pumped.txt")
  local proc = assert(process.spawn({ argv = { "sh", "-c", "printf 'a\\nb'; sleep 0.1; printf 'c\\nd\\n'" },
    stdout = "pipe" }))
  pump(proc:stdout(), out, "[p] ")
  tap.is(fs.read(out), "[p] a\n[p] bc\n[p] d\n", "partial lines are held until complete")
  tap.is(proc:stdout():pump_lines(out, "[p] "), false, "false again after EOF")
  finish(proc)

  local tail = path("tail.txt")
  proc = assert(process.spawn({ argv = { "printf", "x\\ny" }, stdout = "pipe" }))
  pump(proc:stdout(), tail, "[q] ")
  tap.is(fs.read(tail), "[q] x\n[q] y\n", "a last unfinished line is flushed with a newline")
  finish(proc)

  local long = path("long.txt")
  proc = assert(process.spawn({ argv = { "sh", "-c", "head -c 200000 /dev/zero | tr '\\0' x" }, stdout = "pipe" }))
  pump(proc:stdout(), long, "[r] ")
  local text, lines, xs = fs.read(long), 0, 0
  for line in text:gmatch("([^\n]*)\n") do
    lines = lines + 1
    if line:find("^%[r%] x+$") then xs = xs + #line - 4 end
  end
  tap.ok(xs == 200000 and lines >= 2, "a line without newline is cut, not held forever", lines .. " lines, " .. xs)
  finish(proc)
end)

tap.test("handles: __tostring, close, __close", function()
  local proc = assert(process.spawn({ argv = { "sleep", "10" } }))
  local pid = proc:pid()
  tap.is(tostring(proc), "process (pid " .. pid .. ", running)", "running")
  tap.ok(math.type(proc:fd()) == "integer", "fd() is the pidfd number")
  proc:kill("TERM")
  finish(proc)
  tap.is(tostring(proc), "process (pid " .. pid .. ", signalled TERM)", "signalled")
  proc:close()
  tap.is(tostring(proc), "process (pid " .. pid .. ", closed)", "closed")
  tap.raises(function() proc:pid() end, "attempt to use a closed process", "use after close raises")
  tap.raises(function() proc:wait() end, "attempt to use a closed process", "wait after close raises")
  proc:close()
  tap.ok(true, "close twice is fine")
  local _, exited = run({ argv = { "sh", "-c", "exit 4" } })
  tap.is(tostring(exited), "process (pid " .. exited:pid() .. ", exited 4)", "exited N")
  local kept
  do
    local scoped <close> = assert(process.spawn({ argv = { "true" }, stdout = "pipe" }))
    kept = scoped
    finish(scoped)
  end
  tap.like(tostring(kept), "closed%)$", "__close closes")
  tap.raises(function() kept:stdout() end, "closed process", "stdout() on a closed process raises")
end)

tap.test("environ, getpid, self_exe, sleep, clocks", function()
  local env = process.environ()
  tap.is(env.PATH, os.getenv("PATH"), "environ() has PATH")
  tap.is(env.JOBRUN_TOP, os.getenv("JOBRUN_TOP"), "and what tests/exec exported")
  tap.ok(math.type(process.getpid()) == "integer", "getpid")
  -- readlink's own words: " (deleted)" follows when the binary was rebuilt under us.
  local exe = process.self_exe()
  tap.ok(exe:find("/luarun$") or exe:find("/luarun %(deleted%)$"), "self_exe", exe)
  local t0 = process.now()
  process.sleep(0.05)
  tap.ok(process.now() - t0 >= 0.045, "sleep(0.05)")
  tap.ok(math.abs(process.time() - os.time()) < 2, "time() is wall-clock")
end)

-- With one handle of each kind open, the fds a child has beyond stdio and what we inherited.
local function fds_seen_by_child()
  local set = assert(process.signals({ "USR2" }))
  local busy = assert(process.spawn({ argv = { "sleep", "10" }, stdout = "pipe", stderr = "pipe" }))
  local proc = assert(process.spawn({ argv = { "sh", "-c", "ls /proc/$$/fd" }, stdout = "pipe" }))
  local extra = {}
  for fd in drain(proc:stdout()):gmatch("%d+") do
    fd = tonumber(fd)
    if fd > 2 and not fds_at_start[fd] then extra[#extra + 1] = fd end
  end
  finish(proc)
  busy:kill("KILL")
  finish(busy)
  set:close()
  return extra
end

tap.test("no fd leaks", function()
  -- Pidfds, pipes, signalfds are all CLOEXEC, so no child inherits them.
  tap.is(fds_seen_by_child(), {}, "the child inherits none of our handles' fds")
  collectgarbage()
  collectgarbage()
  tap.is(open_fds(), fds_at_start, "every handle's fd is closed once collected")
end)

tap.test("affinity: the CPUs this process may run on; bound to a list, it runs there", function()
  local all = process.affinity()
  tap.ok(type(all) == "table" and #all >= 1, "a list of CPUs")
  local last = all[#all]
  local before = process.affinity({ last })
  tap.is(before, all, "binding returns the set before it")
  tap.is(process.affinity(), { last }, "bound to the one CPU")
  local stat = fs.read("/proc/self/stat") or ""
  local fields = {}
  for f in (stat:match(".*%)(.*)$") or ""):gmatch("%S+") do fields[#fields + 1] = f end
  tap.is(tonumber(fields[37]), last, "and running on it (/proc/self/stat field 39)")
  process.affinity(before)
  tap.is(process.affinity(), all, "the set restored")
  tap.ok(not pcall(process.affinity, { -1 }), "a CPU number below 0 is an error")
end)

for _, name in ipairs(fs.list(dir) or {}) do fs.remove(path(name)) end
fs.remove(dir)
return tap.done()
