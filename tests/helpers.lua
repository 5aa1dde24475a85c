-- Helpers for tests that drive the jobrun binary as a user would: a scratch directory, commands
-- run through sh with their stdout, stderr and exit code captured.
local fs = require "jobrun.c.fs"
local process = require "jobrun.c.process"
local json = require "jobrun.base.json"

local helpers = {}

helpers.bin = os.getenv("JOBRUN_BIN")

-- scratch() -> a fresh directory inside the test file's scratch directory, JOBRUN_TEST_SCRATCH,
-- which tests/exec makes before the file runs and removes, with everything in it, once the file
-- has ended (so a test need not remove what it made there; a mount it made it must unmount).
local scratch_count = 0
function helpers.scratch()
  local parent = os.getenv("JOBRUN_TEST_SCRATCH")
  assert(parent and parent ~= "", "JOBRUN_TEST_SCRATCH is not set: run tests through tests/exec")
  local dir
  repeat
    scratch_count = scratch_count + 1
    dir = string.format("%s/%d.%d", parent, process.getpid(), scratch_count)
  until not fs.stat(dir)
  assert(fs.mkdir_p(dir))
  return fs.realpath(dir)
end

-- test_in(tap, name, fn): a tap test whose body gets a fresh scratch directory, removed as soon
-- as the test ends (tests/exec removes what is left at the end of the file anyway).
function helpers.test_in(tap, name, fn)
  tap.test(name, function()
    local dir = helpers.scratch()
    local ok, err = pcall(fn, dir)
    os.execute("rm -rf " .. helpers.q(dir))
    if not ok then error(err, 0) end
  end)
end

function helpers.write(path, text)
  local dir = path:match("^(.*)/[^/]*$")
  if dir then assert(fs.mkdir_p(dir)) end
  assert(fs.write_atomic(path, text))
  return path
end

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end
helpers.q = q

-- sh(dir, command) -> code, stdout, stderr. `jobrun` in the command is the binary under test.
function helpers.sh(dir, command)
  local out, err = dir .. "/.stdout", dir .. "/.stderr"
  local full = string.format("cd %s && jobrun() { %s \"$@\"; } && export NO_COLOR=1 && (%s) >%s 2>%s </dev/null",
    q(dir), q(helpers.bin), command, q(out), q(err))
  local ok, _, code = os.execute(full)
  return ok and 0 or code, fs.read(out) or "", fs.read(err) or ""
end

-- spawn(dir, args) -> Process: jobrun started in the background, its output in dir/.bg.log.
function helpers.spawn(dir, args)
  local argv = { helpers.bin }
  for _, a in ipairs(args) do argv[#argv + 1] = a end
  local env = process.environ()
  env.NO_COLOR = "1"
  return assert(process.spawn({ argv = argv, cwd = dir, env = env, stdout = dir .. "/.bg.log", stderr = "stdout" }))
end

-- state(dir) -> the latest run's state.json, decoded.
function helpers.state(dir)
  local latest = assert(fs.read(dir .. "/.jobrun/latest")):gsub("%s+$", "")
  return assert(json.decode(assert(fs.read(dir .. "/.jobrun/runs/" .. latest .. "/state.json")))), latest
end

function helpers.jobs_by_name(data)
  local out = {}
  for _, job in ipairs(data.jobs) do out[job.name] = job end
  return out
end

-- gone(pid): the process has ended (a zombie counts as ended).
function helpers.gone(pid)
  return process.start_time(tonumber(pid)) == nil
end

-- ended_record(jobs_dir, key) -> true once a local job's end is recorded: a line of a slot's
-- journal (jobs/*.journal) with its key and state EXITED, or its own result file.
function helpers.ended_record(jobs_dir, key)
  if fs.stat(jobs_dir .. "/" .. key .. ".result.json") then return true end
  for _, f in ipairs(fs.list(jobs_dir) or {}) do
    if f:match("%.journal$") then
      for line in (fs.read(jobs_dir .. "/" .. f) or ""):gmatch("[^\n]+") do
        local rec = json.decode(line)
        if type(rec) == "table" and rec.key == key and rec.state == "EXITED" then return true end
      end
    end
  end
  return false
end

-- eventually(fn, seconds): true once fn() is, checking every 50 ms (tests only).
function helpers.eventually(fn, seconds)
  local deadline = process.now() + (seconds or 5)
  while process.now() < deadline do
    if fn() then return true end
    process.sleep(0.05)
  end
  return fn() and true or false
end

-- listening(dir, argv [, opts]) -> { url, port, proc, out }: a server the tests start, its output in
-- a file in dir, once it has said the port it listens on (opts.pattern, default the fakes'
-- "listening on 127.0.0.1:PORT"); opts.env and opts.cwd as process.spawn takes them.
function helpers.listening(dir, argv, opts)
  opts = opts or {}
  local out = dir .. "/server." .. tostring(math.random(1e9)) .. ".log"
  local proc = assert(process.spawn({ argv = argv, env = opts.env, cwd = opts.cwd, stdout = out, stderr = "stdout" }))
  local got
  helpers.eventually(function()
    got = (fs.read(out) or ""):match(opts.pattern or "listening on 127%.0%.0%.1:(%d+)")
    return got or helpers.gone(proc:pid())
  end, 30)
  assert(got, argv[#argv > 1 and 2 or 1] .. " did not start: " .. (fs.read(out) or ""))
  return { url = "http://127.0.0.1:" .. got, port = tonumber(got), proc = proc, out = out }
end

-- fake_skypilot(dir, args, port) -> { url, port, proc }: the fake SkyPilot API server
-- (tests/skypilot/fake_server.py) on a free port (or `port`), ready; its output in dir.
function helpers.fake_skypilot(dir, args, port)
  local argv = { "python3", os.getenv("JOBRUN_TOP") .. "/tests/skypilot/fake_server.py", "--port", tostring(port or 0),
                 "--tick", "0.1" }
  for _, a in ipairs(args or {}) do argv[#argv + 1] = a end
  return helpers.listening(dir, argv)
end

-- serve(dir, args, env) -> { url, port, proc, out }: `jobrun serve` on a free port in dir, ready;
-- env: variables added to the test's environment.
function helpers.serve(dir, args, env)
  local argv = { helpers.bin, "serve", "--port", "0" }
  for _, a in ipairs(args or {}) do argv[#argv + 1] = a end
  local full = process.environ()
  full.NO_COLOR = "1"
  for k, v in pairs(env or {}) do full[k] = v end
  return helpers.listening(dir, argv, { env = full, cwd = dir, pattern = "http://[%d.]+:(%d+)/" })
end

-- stop_server(s) -> its exit: the server ended (TERM), and reaped.
function helpers.stop_server(s)
  s.proc:kill("TERM")
  local r = s.proc:wait(true)
  s.proc:close()
  return r
end
helpers.stop_fake = helpers.stop_server

-- slurm_cluster(tap [, wait]) -> { cluster, daemon, conf, env } | nil: the shared Slurm test
-- cluster (tests/slurm/cluster.sh), said up or not as the file's first test (waiting up to
-- `wait` seconds for its nodes: a file just before may leave jobs completing). cluster is its
-- script's command; daemon the same without this file's tag, scratch and TMPDIR (a daemon it
-- restarts outlives the file); env the shell prefix that exports its SLURM_CONF. Without the
-- cluster the Slurm tests fail, they do not skip.
function helpers.slurm_cluster(tap, wait)
  local cluster = "sh " .. q(os.getenv("JOBRUN_TOP") .. "/tests/slurm/cluster.sh")
  local up = helpers.eventually(function() return os.execute(cluster .. " status") end, wait or 0)
  tap.ok(up, "the Slurm test cluster is up (tests/slurm/cluster.sh start)")
  if not up then return nil end
  local p = io.popen(cluster .. " env")
  local conf = p:read("a"):match("SLURM_CONF=(%S+)")
  p:close()
  return { cluster = cluster, conf = conf, env = "export SLURM_CONF=" .. q(conf) .. " && ",
           daemon = "env -u JOBRUN_TEST_TAG -u JOBRUN_TEST_SCRATCH -u TMPDIR " .. cluster }
end

return helpers
