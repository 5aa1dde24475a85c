-- jobrun rerun [RUN] [--failed | --all | --only GLOB] [--exclude-nodes …] [--detach]: new attempts of the chosen
-- jobs in the same run, on the same backend and spec; then wait and report as run does.
local options = require "jobrun.cli.options"
local Run = require "jobrun.run"
local report = require "jobrun.report.text"
local state = require "jobrun.run.store"
local verdict = require "jobrun.judge.verdict"
local plan = require "jobrun.plan"
local process = require "jobrun.c.process"
local errors = require "jobrun.base.errors"

local command = {
  name = "rerun",
  usage = "jobrun rerun [RUN] [--failed | --all | --only GLOB] [--exclude-nodes suspect|LIST] [--detach] [options]",
  summary = "run the failed (or chosen) jobs of a run again, as new attempts",
  options = options.concat({
    { "failed", "flag", nil, "every job whose verdict is fail (the default)" },
    { "all", "flag", nil, "every job of the run" },
    { "only", "list", "GLOB", "the jobs whose name matches; !GLOB: all but those (repeatable)" },
    { "detach", "flag", nil, "start them and return; follow with check or wait" },
    { "exclude-nodes", "value", "suspect|LIST", "keep the jobs off these nodes (Slurm): the suspects of "
      .. "jobrun history --nodes, or a comma-separated list" },
    { "skip-git-check", "flag", nil, "launch even from a dirty or unpushed tree" },
  }, options.FAIL_FAST, options.OUTPUT, options.REPORT),
  help = [[
Failed means every job whose verdict is fail: FAILED, TIMEOUT, CANCELLED, LOST, SKIPPED and LAUNCH_FAILED
included. Each chosen job keeps its earlier attempts (jobrun logs --attempt N shows their logs,
--json lists them under "attempts"); the run's verdict comes from each job's latest attempt.
The git guard applies as it does for run. Exits as run does.
--exclude-nodes passes Slurm's --exclude; "suspect" takes the suspect nodes of the run's suite's
last 20 runs (jobrun history --nodes). Other backends cannot choose nodes: it is said, and ignored.]],
}

-- excluded(run, opts) -> the nodes to keep the jobs off, or nil.
local function excluded(run, opts)
  local want = opts["exclude-nodes"]
  if not want then return nil end
  if want ~= "suspect" then
    local nodes = {}
    for n in want:gmatch("[^,%s]+") do nodes[#nodes + 1] = n end
    if #nodes == 0 then errors.raise("--exclude-nodes: name the nodes, or say suspect") end
    return nodes
  end
  local history = require "jobrun.run.history"
  local db = require("jobrun.commands.history").open(history.state_dir_of(run.dir))
  local rows = history.attempts(db, { last = 20, suite = run.data.suite })
  db:close()
  local nodes = {}
  for _, n in ipairs(history.nodes(rows)) do if n.suspect then nodes[#nodes + 1] = n.node end end
  io.stderr:write(#nodes > 0 and ("jobrun: suspect nodes: " .. table.concat(nodes, ",") .. "\n")
    or "jobrun: no suspect node in the suite's last 20 runs: none excluded\n")
  return nodes
end

-- choose(run, opts) -> the jobs to run again.
local function choose(run, opts)
  local chosen = {}
  for _, job in ipairs(run.data.jobs) do
    local pick
    if opts.all then pick = true
    elseif opts.only and #opts.only > 0 then pick = plan.matches_any(job.name, opts.only)
    else pick = job.verdict == "fail" end
    if pick then chosen[#chosen + 1] = job end
  end
  -- In a pipeline, what needs a job run again runs again after it (with its new outputs).
  -- (one still waiting to start, after an interrupted run, just waits for them)
  if run.data.suites and not opts.all then
    local picked = {}
    for _, job in ipairs(chosen) do picked[job] = true end
    local all = {}
    for _, job in ipairs(require("jobrun.plan.needs").dependents(run.data, chosen)) do
      if picked[job] or verdict.TERMINAL[job.status] then all[#all + 1] = job end
    end
    chosen = all
  end
  return chosen
end

function command.run(opts, args)
  if #args > 1 then errors.raise("rerun: expected at most one RUN, got %d", #args) end
  local picks = (opts.failed and 1 or 0) + (opts.all and 1 or 0) + ((opts.only and #opts.only > 0) and 1 or 0)
  if picks > 1 then errors.raise("rerun: choose one of --failed, --all and --only") end
  local run = Run.open(state.resolve(opts["state-dir"], args[1]))
  local exclude = excluded(run, opts)
  if exclude and #exclude > 0 and run.data.backend ~= "slurm" then
    io.stderr:write(string.format("jobrun: --exclude-nodes: the %s backend cannot choose the nodes its jobs run on; "
      .. "ignored\n", run.data.backend))
    exclude = nil
  end
  local lock = run:try_driver()
  if not lock then
    errors.raise("run %s is still being driven by another jobrun (its jobs are starting); "
      .. "wait for it (jobrun wait %s) or kill it first", run.data.run_id, run.data.run_id)
  end
  local chosen
  run:update(function(r)
    r:recover()
    r:refresh()
    chosen = choose(r, opts)
    for _, job in ipairs(chosen) do
      if not verdict.TERMINAL[job.status] then
        errors.raise("rerun: job %s of run %s has not ended yet (%s); wait for it or kill it first",
          job.name, r.data.run_id, job.status)
      end
    end
    if #chosen == 0 then return false end
    -- The git guard, as for run: the suite's policy against the tree as it is now.
    local p = r.plan
    if p == nil and r.data.suite_path then
      r:expect_of(r.data.jobs[1]) -- loads the plan from the suite
      p = r.plan
    end
    if p and not opts["skip-git-check"] then
      local git = require "jobrun.base.git"
      git.guard(git.info(r.data.cwd or "."), p.git_policy, p.git_where, r.data.backend)
    end
    -- -x: from now on the run stops launching at its first failure, whatever its suite says.
    if opts["fail-fast"] then r.data.fail_fast = true end
    r:rerun(chosen)
    -- Kept in the record, so that a detached driver or a later wait starts them the same way.
    r.data.exclude_nodes = exclude
    Run.exclude(r.ctx, exclude)
  end)
  if #chosen == 0 then
    lock:release()
    local out = opts.json and io.stderr or io.stdout
    out:write(require("jobrun.report.sanitize").format("Nothing to rerun in run %s: %s.\n", run.data.run_id,
      (opts.only and #opts.only > 0) and "no job matches" or "no job has failed"))
    if opts.json then
      report.write_json(run.data, run.dir)
    end
    return report.exit_code(run.data)
  end
  io.stderr:write(require("jobrun.report.sanitize").format(
    "jobrun: rerun of %d job%s of run %s\n", #chosen, #chosen == 1 and "" or "s",
    run.data.run_id))
  require("jobrun.report.notify").on_launch(run)
  if opts.detach then
    run:launch_pending(run.data.max_parallel)
    run:save()
    lock:release()
    local waiting = 0
    for _, job in ipairs(run.data.jobs) do
      if job.status == "PENDING" and not job.native_id then waiting = waiting + 1 end
    end
    if waiting > 0 then -- the rest start as slots free up, driven by a detached process
      local driver = process.spawn({ argv = { "/proc/self/exe", "__drive", run.dir },
        stdout = run.dir .. "/driver.log", stderr = "stdout", setsid = true })
      if driver then driver:close() end
    end
    io.stderr:write(require("jobrun.report.sanitize").format(
      "  jobrun check %s    # status table\n  jobrun wait %s     # block until all end\n",
      run.data.run_id, run.data.run_id))
    return 0
  end
  local outcome = run:drive({})
  lock:release()
  return require("jobrun.commands.run").finish(run, outcome, opts)
end

return command
