-- jobrun script (README "Scripts: jobs driven from Lua") on the Slurm backend, against the real
-- test cluster on loopback (tests/slurm/cluster.sh): jobs submitted, polled, streamed and waited
-- for from a Lua program, a suite as one step, the run seen by list, check and logs, and a
-- resume. Without the cluster these tests fail, they do not skip.
local tap = require "tap"
local h = require "helpers"
local fs = require "jobrun.c.fs"
local process = require "jobrun.c.process"

-- status wants all four nodes idle, mixed or allocated: the jobs of a file that ran just before
-- may still be completing, so give it a minute before calling the cluster down.
local slurm = h.slurm_cluster(tap, 60)
if not slurm then return tap.done() end
local conf, env = slurm.conf, slurm.env

local function scratch(name, fn) h.test_in(tap, name, fn) end

-- A job blocked on a file until the script or the test creates it: what "running" means here
-- never depends on how fast the cluster is.
scratch("submit returns at once; done, logs, wait and result on 2 nodes", function(dir)
  h.write(dir .. "/s.lua", [[
local jobrun = require "jobrun"
local go = arg[1]
local a = jobrun.job { name = "a", backend = "slurm", nodes = 2, timeout = "10m",
  run = "echo hello $SLURM_PROCID; while [ ! -e " .. go .. " ]; do sleep 0.2; done; echo world $SLURM_PROCID" }
assert(a:submit() == a)
local status = a:result().status
print("submitted", status, a:done())
local waited = 0
while not (a:logs():find("0: hello 0", 1, true) and a:logs():find("1: hello 1", 1, true)) do
  if waited > 600 then error("no rank started within 600 s") end
  jobrun.sleep(0.2); waited = waited + 0.2
end
-- The log can be ahead of the status (Slurm is polled once a second): done() polls until it sees
-- the job running.
while not a:done() and a:result().status ~= "RUNNING" do
  if waited > 600 then error("not RUNNING within 600 s") end
  jobrun.sleep(0.2); waited = waited + 0.2
end
print("running", a:done(), a:result().status)
io.open(go, "w"):close()
local r = a:wait()
print("result", r.name, r.status, r.verdict, r.exit_code, r.backend, r.native_id ~= nil)
assert(a:result().status == r.status)
print("logs", (a:logs():gsub("\n", "|")))
]])
  local code, out, err = h.sh(dir, env .. "jobrun script s.lua " .. h.q(dir .. "/go"))
  tap.is(code, 0, "the script passes", err)
  tap.like(out, "submitted\tPENDING\tfalse", "submit returned before the job ran")
  tap.like(out, "running\tfalse\tRUNNING", "both ranks started; the job is not done")
  tap.like(out, "result\ta\tSUCCEEDED\tpass\t0\tslurm\ttrue", "the §4 result")
  local logs = out:match("logs\t([^\n]*)") or ""
  for _, line in ipairs({ "0: hello 0|", "1: hello 1|", "0: world 0|", "1: world 1|" }) do
    tap.ok(logs:find(line, 1, true) ~= nil, "the log has " .. line, logs)
  end
  local data = h.state(dir)
  tap.is({ data.backend, #data.jobs, data.jobs[1].spec.nodes }, { "slurm", 1, 2 },
    "one Slurm job of 2 nodes in the run")
end)

scratch("wait { stream = true } prints the log while the job runs", function(dir)
  h.write(dir .. "/s.lua", [[
local jobrun = require "jobrun"
local b = jobrun.job { name = "b", backend = "slurm",
  run = "echo started; while [ ! -e " .. arg[1] .. " ]; do sleep 0.2; done; echo finished" }
print("verdict", b:wait({ stream = true }).verdict)
]])
  local penv = process.environ()
  penv.SLURM_CONF, penv.NO_COLOR = conf, "1"
  local script = assert(process.spawn({ argv = { h.bin, "script", "s.lua", dir .. "/go" }, cwd = dir, env = penv,
                                        stdout = dir .. "/out.log", stderr = dir .. "/err.log" }))
  -- The job cannot end before go exists: a streamed line seen now was printed while it ran.
  tap.ok(h.eventually(function() return (fs.read(dir .. "/out.log") or ""):find("0: started\n", 1, true) end, 300),
    "the first line is streamed while the job runs", fs.read(dir .. "/err.log"))
  tap.is(fs.read(dir .. "/out.log"), "0: started\n", "nothing else yet")
  h.write(dir .. "/go", "")
  local result = script:wait(true)
  script:close()
  tap.is(result.exit_code, 0, "the script passes", fs.read(dir .. "/err.log"))
  tap.is(fs.read(dir .. "/out.log"), "0: started\n0: finished\nverdict\tpass\n", "the rest, then the result")
end)

scratch("jobrun.all on Slurm: streams prefixed, expectations, a function beside the jobs", function(dir)
  h.write(dir .. "/s.lua", [[
local jobrun = require "jobrun"
local c = jobrun.job { name = "c", backend = "slurm", run = "echo c1; sleep 1; echo c2; exit 3",
                       expect = { exit_code = 3 } }
local d = jobrun.job { name = "d", backend = "slurm", nodes = 2, run = "echo d$SLURM_PROCID" }
local f = jobrun.job { name = "f", backend = "slurm", run = "echo 'loss: nan'",
  expect = function(r) return r.exit_code == 0 and false, "the loss went NaN" end }
local rs = jobrun.all({ c, d }, { stream = true })
print("all", rs[1].verdict, rs[1].status, rs[1].exit_code, rs[2].verdict, rs[2].status)
local out = jobrun.all { f, function() return f:wait().verdict end }
print("fn", out[1].verdict, out[1].mismatches[1], out[2])
return 0
]])
  local code, out, err = h.sh(dir, env .. "jobrun script s.lua")
  tap.is(code, 0, "the script's own exit code", err)
  for _, line in ipairs({ "[c] 0: c1", "[c] 0: c2", "[d] 0: d0", "[d] 1: d1" }) do
    tap.ok(out:find("\n" .. line .. "\n", 1, true) ~= nil or out:find("^" .. line:gsub("%p", "%%%0") .. "\n") ~= nil,
      "prefixed: " .. line, out)
  end
  tap.like(out, "all\tpass\tFAILED\t3\tpass\tSUCCEEDED", "c's exit 3 was expected; d passed")
  tap.like(out, "fn\tfail\tthe loss went NaN\tfail", "an expect function decides; a function waits beside")
  local jobs = h.jobs_by_name(h.state(dir))
  local ids = {}
  for _, n in ipairs({ "c", "d", "f" }) do ids[#ids + 1] = (jobs[n] or {}).native_id end
  tap.is(#ids, 3, "every job has its Slurm id")
end)

scratch("a suite on Slurm as one step joins the run; list, check and logs see it", function(dir)
  h.write(dir .. "/suite.lua", [[
suite "mini" { backend = "slurm", matrix = { nodes = { 1, 2 } }, run = "echo mini-{nodes} rank $SLURM_PROCID",
               timeout = "10m" }
]])
  h.write(dir .. "/s.lua", [[
local jobrun = require "jobrun"
local pre = jobrun.job { name = "pre", backend = "slurm", run = "true" }
if pre:wait().verdict == "pass" then
  local s = jobrun.suite "suite.lua"
  local rs = s:wait()
  print("suite", #rs, rs[1].name, rs[1].verdict, rs[2].name, rs[2].verdict, s:passed())
end
]])
  local code, out, err = h.sh(dir, env .. "jobrun script s.lua")
  tap.is(code, 0, "passes", err)
  tap.like(out, "suite\t2\tmini_1\tpass\tmini_2\tpass\ttrue", "the suite's results")
  local data, id = h.state(dir)
  tap.is({ #data.jobs, data.backend }, { 3, "slurm" }, "one Slurm run: the script's job and the suite's two")
  local _, list = h.sh(dir, env .. "jobrun list")
  tap.like(list, id:gsub("%p", "%%%0") .. "%s+s%s+slurm%s.-%s3%s+3%s+0%s+0", "jobrun list: 3 jobs, 3 passed")
  local c2, check, cerr = h.sh(dir, env .. "jobrun check " .. id)
  tap.is(c2, 0, "jobrun check: all passed", cerr)
  tap.like(check, "mini_2%s+SUCCEEDED", "check lists the suite's jobs")
  local c3, logs = h.sh(dir, env .. "jobrun logs " .. id .. " mini_2")
  tap.is(c3, 0, "jobrun logs")
  tap.like(logs, "0: mini%-2 rank 0\n", "rank 0's line")
  tap.like(logs, "1: mini%-2 rank 1\n", "rank 1's line")
end)

scratch("a suite's max_parallel on Slurm: its next job is submitted once the first has ended", function(dir)
  h.write(dir .. "/mp.lua", [[
suite "mp" { backend = "slurm", matrix = { i = { 1, 2 } }, max_parallel = 1,
             run = "echo mp-{i}; while [ ! -e go-{i} ]; do sleep 0.2; done" }
]])
  h.write(dir .. "/s.lua", [[
local jobrun = require "jobrun"
local s = jobrun.suite "mp.lua"
s:launch()
local first, waited = s:job "mp_1", 0
while not first:logs():find("mp-1", 1, true) do
  if waited > 600 then error("mp_1 did not start within 600 s") end
  jobrun.sleep(0.2); waited = waited + 0.2
end
print("held", first:result().native_id ~= nil, s:job("mp_2"):result().native_id)
io.open("go-1", "w"):close()
io.open("go-2", "w"):close()
local rs = s:wait()
print("results", rs[1].verdict, rs[2].verdict, rs[2].native_id ~= rs[1].native_id)
]])
  local code, out, err = h.sh(dir, env .. "jobrun script s.lua")
  tap.is(code, 0, "passes", err)
  tap.like(out, "held\ttrue\tnil", "while mp_1 runs, mp_2 is held back")
  tap.like(out, "results\tpass\tpass\ttrue", "then submitted, and both pass")
end)

scratch("cancel from the script; jobs outlive it; jobrun kill stops them", function(dir)
  h.write(dir .. "/s.lua", [[
local jobrun = require "jobrun"
local function started(job)
  local waited = 0
  while not job:logs():find("started", 1, true) do
    if waited > 600 then error(job.name .. " did not start within 600 s") end
    jobrun.sleep(0.2); waited = waited + 0.2
  end
end
local a = jobrun.job { name = "a", backend = "slurm", run = "echo started; exec sleep 600" }
local b = jobrun.job { name = "b", backend = "slurm", run = "echo started; exec sleep 600" }
a:submit(); b:submit()
started(a); started(b)
print("cancel", a:cancel(), a:done(), a:result().status)
print("b", b:done())
]])
  local code, out, err = h.sh(dir, env .. "jobrun script s.lua")
  tap.is(code, 1, "b has not ended: exit 1", err)
  tap.like(out, "cancel\tkilled\ttrue\tCANCELLED", "cancel ended the job")
  tap.like(out, "b\tfalse", "b still runs")
  tap.like(err, "keep running %(jobrun wait", "the script says so")
  local _, id = h.state(dir)
  local c2, killed = h.sh(dir, env .. "jobrun kill " .. id)
  tap.is(c2, 0, "jobrun kill", killed)
  tap.like(killed, "Killed: 1 ", "b is killed")
  local jobs = h.jobs_by_name(h.state(dir))
  tap.is({ jobs.a.status, jobs.b.status }, { "CANCELLED", "CANCELLED" }, "both CANCELLED in the run")
end)

scratch("--resume RUN on Slurm: a job that succeeded is not submitted again", function(dir)
  h.write(dir .. "/s.lua", [[
local jobrun = require "jobrun"
local function counted(name, extra)
  return jobrun.job { name = name, backend = "slurm",
    run = "echo x >> " .. name .. ".count; " .. (extra or "true") }
end
local rs = jobrun.all { counted("ok"), counted("flaky", '[ -e marker ] || { : > marker; exit 1; }') }
for _, r in ipairs(rs) do print(r.name, r.status, r.verdict, r.attempt, r.native_id) end
]])
  local code, out, err = h.sh(dir, env .. "jobrun script s.lua")
  tap.is(code, 1, "the first run fails", err)
  tap.like(out, "flaky\tFAILED\tfail\t1", "flaky failed")
  local first_ok = out:match("\nok\tSUCCEEDED\tpass\t1\t(%S+)") or out:match("^ok\tSUCCEEDED\tpass\t1\t(%S+)")
  tap.ok(first_ok ~= nil, "ok succeeded", out)
  local _, id = h.state(dir)
  code, out, err = h.sh(dir, env .. "jobrun script --resume " .. id .. " s.lua")
  tap.is(code, 0, "the resumed run passes", err)
  tap.like(err, "resuming run " .. id:gsub("%p", "%%%0"), "says which run")
  tap.like(err, "ok passed in run .- not run again", "says ok is reused")
  tap.ok(out:find("ok\tSUCCEEDED\tpass\t1\t" .. tostring(first_ok), 1, true) ~= nil,
    "ok's recorded result, its Slurm job the same", out)
  tap.like(out, "flaky\tSUCCEEDED\tpass\t2", "flaky's second attempt")
  tap.is(fs.read(dir .. "/ok.count"), "x\n", "ok ran once")
  tap.is(fs.read(dir .. "/flaky.count"), "x\nx\n", "flaky ran twice")
  local data, again = h.state(dir)
  tap.is(again, id, "the same run")
  local jobs = h.jobs_by_name(data)
  tap.is(#((jobs.flaky or {}).attempts or {}), 1, "flaky keeps its first attempt")
  local c2, check = h.sh(dir, env .. "jobrun check " .. id)
  tap.is(c2, 0, "jobrun check: the run passes now")
  tap.like(check, "flaky%s+SUCCEEDED", "check shows flaky's latest attempt")
end)

return tap.done()
