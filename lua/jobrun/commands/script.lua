-- jobrun script FILE.lua [ARGS…]: a Lua program that drives jobs itself (README "Scripts: jobs driven from Lua"). Its
-- `require "jobrun"` (jobrun.script.api) gives jobs and suites; everything it starts is one run.
local options = require "jobrun.cli.options"
local errors = require "jobrun.base.errors"
local sandbox = require "jobrun.suite.sandbox"
local state = require "jobrun.run.store"
local plan = require "jobrun.plan"
local results = require "jobrun.judge.results"
local Run = require "jobrun.run"
local fs = require "jobrun.c.fs"
local process = require "jobrun.c.process"
local guard = require "jobrun.c.guard"

local command = {
  name = "script",
  usage = "jobrun script [--resume [RUN]] [--state-dir DIR] FILE.lua [ARGS…]",
  summary = "run a Lua program that drives jobs itself (require \"jobrun\")",
  -- Options come before the file; everything after it is the script's `arg`.
  rest_after_first = true,
  options = {
    { "resume", "optional", "[RUN]", "reuse the jobs that passed in RUN (default: this script's latest run)",
      -- `--resume RUN FILE.lua`: the word after --resume is the run when another argument (the
      -- file) follows it and it is no script: it does not end in .lua and is no file here.
      -- `--resume FILE.lua [ARGS…]` resumes the latest.
      takes = function(arg, following)
        return following ~= nil and arg:sub(1, 1) ~= "-" and not arg:find("%.lua$")
          and (fs.stat(arg) or {}).type ~= "file"
      end,
      check = function(v) return v == true or v:match("^[%w./][%w._/-]*$") ~= nil, "a run id" end },
    { "skip-git-check", "flag", nil, "start jobs even from a dirty or unpushed tree" },
    options.COMMON[1], options.COMMON[2],
  },
  help = [[
Runs FILE.lua as trusted code (no os.exit; an error names its file:line and exits 2). Its
require "jobrun" gives:
  jobrun.job { name, backend, run, setup, env, nodes, timeout, max_restarts, expect, … }
      -> :submit() :done() :logs() :wait { stream = true } :result() :cancel()
  jobrun.suite(PATH, { set =, only =, tag = })  -> :launch() :wait() :results() :job(NAME)
  jobrun.all { a, b, function() … end }  waits for several at once
  jobrun.sleep(seconds) · arg holds ARGS
Every job and suite job the script starts belongs to one run (jobrun list, check, logs, kill).
Jobs keep running when the script ends, fails or is interrupted (Ctrl-C: it says so):
jobrun wait RUN follows them, jobrun kill RUN stops them. With --resume, a job whose name and
spec match one that passed in that run is not run again: its result is returned at once; one
that is still running is waited for, and its result used.
  jobrun script --resume FILE.lua [ARGS…]       resumes this script's latest run
  jobrun script --resume RUN FILE.lua [ARGS…]   resumes run RUN (also --resume=RUN)
The word after --resume is the run only when the file follows it and it is no script (it does
not end in .lua and names no file).
Exit code: the script's own when it returns a number, else 0 iff every job of the run passed.]],
}

-- sanitize_arg(s): a word as the shell would need it typed back.
local function sanitize_arg(s)
  s = require("jobrun.report.sanitize").text(s)
  if s:match("^[%w./_%-]+$") then return s end
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

-- latest_of(state_dir, script) -> run_dir of the newest run made by this script file.
local function latest_of(state_dir, script)
  local runs = state.list(state_dir)
  for i = #runs, 1, -1 do
    local dir = state.run_dir(state_dir, runs[i].id)
    local ok, data = pcall(state.read, dir)
    if ok and data.script == script then return dir end
  end
  errors.raise("no earlier run of %s in %s to resume", script, state_dir)
end

function command.run(opts, args)
  local file = args[1]
  if not file then errors.raise("script: expected a script file\nUsage: %s", command.usage) end
  local source, err = fs.read(file)
  if not source then errors.raise("cannot read script: %s", err) end
  local script = fs.realpath(file) or state.absolute(file)
  local state_dir = opts["state-dir"]
  local git = require "jobrun.base.git"
  local git_info = git.info(".")
  local S = { opts = opts, script = script, state_dir = state_dir, git_info = git_info, git = git.record(git_info) }
  S.name = (file:match("([^/]+)$") or file):gsub("%.lua$", "")
  if opts.resume then
    local dir = opts.resume == true and latest_of(state_dir, script) or state.resolve(state_dir, opts.resume)
    S.resume = Run.open(dir)
    S.resume:sync()
    S.run_id = S.resume.data.run_id
    S.resume.plan = { jobs = {} }
    io.stderr:write(require("jobrun.report.sanitize").format("jobrun: resuming run %s\n", S.run_id))
  else
    S.run_id = plan.new_run_id(S.name, state_dir)
  end

  local env = sandbox.env()
  local jobrun = require("jobrun.script.api").new(S)
  env.package.loaded.jobrun = jobrun
  local script_arg = { [0] = file }
  for i = 2, #args do script_arg[i - 1] = args[i] end
  env.arg = script_arg
  local chunk, lerr = sandbox.load(source, "@" .. file, env)
  if not chunk then errors.raise("%s", lerr) end
  -- Ctrl-C, TERM and HUP are read by the script's event loop (jobrun.script.session), and raised inside
  -- the script's own Lua by the guard: either way the script stops and says what keeps running.
  S.signals = assert(process.signals({ "INT", "TERM", "HUP" }))
  local res = table.pack(guard.call(nil, function() return sandbox.call(chunk, table.unpack(script_arg)) end))
  res = res[1] and table.pack(table.unpack(res, 2, res.n)) or { false, res[2], n = 2 }
  local ok, finish_err = true, nil
  if res[1] or not (type(res[2]) == "table" and res[2].signal) then
    ok, finish_err = guard.call(nil, S.finish)
  end
  local sig = (type(res[2]) == "table" and res[2].signal) or (type(finish_err) == "table" and finish_err.signal)
  S.signals:read() -- drained: a signal left pending would kill jobrun once unblocked
  S.signals:close()
  if sig then return command.interrupted(S, file, sig) end
  if not res[1] then
    if S.run and #S.run:open_jobs() > 0 then
      io.stderr:write(require("jobrun.report.sanitize").format(
        "jobrun: the script stopped; run %s's jobs keep running (jobrun kill %s)\n",
        S.run_id, S.run_id))
    end
    error(res[2], 0)
  end
  if not ok then error(finish_err, 0) end
  if S.run then state.set_latest(state_dir, S.run_id) end
  if math.type(res[2]) == "integer" then return res[2] end
  if not S.run then return 0 end
  local sum = results.summary(S.run.data.jobs)
  io.stderr:write(require("jobrun.report.sanitize").format(
    "jobrun: run %s: %s, %d passed, %d failed, %d pending\n", S.run_id,
    require("jobrun.report.table").count(sum.total, "job"), sum.passed, sum.failed, sum.pending))
  if #S.run:open_jobs() > 0 then
    io.stderr:write(require("jobrun.report.sanitize").format(
      "jobrun: its jobs that have not ended keep running (jobrun wait %s follows them, "
      .. "jobrun kill %s stops them)\n", S.run_id, S.run_id))
  end
  return (sum.failed > 0 or sum.pending > 0) and 1 or 0
end

-- interrupted(S, file, sig) -> exit code: the script was stopped by a signal; its jobs keep
-- running, as after `jobrun run`'s Ctrl-C, and this says how to wait for them or kill them.
function command.interrupted(S, file, sig)
  local run = S.run
  if run then
    pcall(run.save, run)
    state.set_latest(S.state_dir, S.run_id)
  end
  if not run then
    io.stderr:write(string.format("%sjobrun: %s: the script stopped; it had started no job\n",
      sig == "INT" and "\n" or "", sig == "INT" and "interrupted" or "SIG" .. sig))
    return Run.SIGNAL_EXIT[sig == "INT" and "interrupted" or "terminated"]
  end
  local running, unsent = 0, 0
  for _, job in ipairs(run:open_jobs()) do
    if job.native_id then running = running + 1 else unsent = unsent + 1 end
  end
  local out = {}
  if sig == "INT" then
    out[1] = string.format("\njobrun: interrupted: the script stopped; the %d running job%s of run %s keep%s running.",
      running, running == 1 and "" or "s", S.run_id, running == 1 and "s" or "")
  else
    out[1] = string.format("jobrun: SIG%s: the script stopped; the %d running job%s of run %s keep%s running.",
      sig, running, running == 1 and "" or "s", S.run_id, running == 1 and "s" or "")
  end
  if running > 0 then
    out[#out + 1] = string.format("  Resume waiting: jobrun wait %s\n  Cancel them:    jobrun kill %s",
      S.run_id, S.run_id)
  end
  if unsent > 0 then
    out[#out + 1] = string.format("  %d job%s not submitted yet.", unsent, unsent == 1 and " was" or "s were")
  end
  out[#out + 1] = string.format("  Resume the script (waits for the jobs still running, reuses those that passed):\n"
    .. "                  jobrun script --resume %s %s", S.run_id, sanitize_arg(file))
  io.stderr:write(table.concat(out, "\n"), "\n")
  return Run.SIGNAL_EXIT[sig == "INT" and "interrupted" or "terminated"]
end

return command
