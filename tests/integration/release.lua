-- suites/release.lua against Metta's release plan (metta-origins.md §5, the plan from 10-23):
-- its tasks, backends, nodes and GPUs, timeouts, acceptance rules, the dependency of the
-- evaluation and the checkpoint it receives; the SkyPilot trainings launched on the fake server.
local tap = require "tap"
local h = require "helpers"
local json = require "jobrun.base.json"

local top = os.getenv("JOBRUN_TOP")
local RELEASE = top .. "/suites/release.lua"

-- metta_repo() -> a git repository holding Metta's task YAML (the fixture): the trainings' env
-- names the commit ({git.commit}), as launch.py's METTA_GIT_REF did.
local function metta_repo()
  local dir = h.scratch()
  local code, out = h.sh(dir, "cp -r " .. h.q(top .. "/tests/skypilot/metta") .. " metta && cd metta && "
    .. "git init -q && git add -A && git -c user.name=t -c user.email=t@t commit -qm init")
  assert(code == 0, out)
  return dir .. "/metta"
end

tap.test("the plan is Metta's task list", function()
  local dir = metta_repo()
  local code, out = h.sh(dir, "jobrun plan " .. h.q(RELEASE) .. " --json")
  tap.is(code, 0, "plan exits 0")
  local doc = json.decode(out) or { jobs = {} }
  local got = {}
  for _, j in ipairs(doc.jobs) do
    got[#got + 1] = { j.name, j.backend, j.nodes, j.timeout, j.expect ~= json.null and j.expect.metrics or false }
  end
  tap.is(got, {
    { "python_ci", "local", 1, 1800, false },
    { "cpp_ci", "local", 1, 1800, false },
    { "cpp_benchmark", "local", 1, 1800, false },
    { "arena_local_smoke", "local", 1, 600, false },
    { "arena_single_gpu_100m", "skypilot", 1, 7200,
      { ["overview/sps"] = ">= 40000", ["env_agent/heart.gained"] = "> 0.1" } },
    { "arena_multi_gpu_2b", "skypilot", 4, 172800,
      { ["overview/sps"] = ">= 80000", ["env_agent/heart.gained"] = "> 1.0" } },
    { "arena_evaluate", "local", 1, 1800, false },
  }, "names, backends, nodes, timeouts (seconds) and acceptance rules, task by task")
  local by = {}
  for _, j in ipairs(doc.jobs) do by[j.name] = j end
  tap.is(by.python_ci.run, "uv run metta pytest --ci", "python_ci's command")
  tap.is(by.cpp_benchmark.run, "uv run metta cpptest --benchmark", "cpp_benchmark's command")
  tap.like(by.arena_local_smoke.run,
    "arena_basic_easy_shaped%.train run=stable%.smoke%.%S+ trainer%.total_timesteps=1000$", "the smoke training")
  tap.is(by.arena_single_gpu_100m.env.METTA_ARGS, "trainer.total_timesteps=100000000", "100M steps")
  tap.is(by.arena_multi_gpu_2b.env.METTA_ARGS, "trainer.total_timesteps=2000000000", "2B steps")
  tap.like(by.arena_evaluate.run,
    "arena_basic_easy_shaped%.evaluate policy_uri=@@needs%.train%.arena_single_gpu_100m%.fields%.checkpoint_uri@@$",
    "the evaluation receives the 100M training's checkpoint_uri")
  local _, lone = h.sh(dir, "jobrun plan " .. h.q(RELEASE) .. " --only arena_evaluate --json")
  local names = {}
  for _, j in ipairs((json.decode(lone) or { jobs = {} }).jobs) do names[#names + 1] = j.name end
  tap.is(names, { "arena_single_gpu_100m", "arena_evaluate" }, "the evaluation needs the 100M training only")
end)

tap.test("the checkpoint parser reads checkpoint_uri as TrainingTask made it", function()
  local dir = h.scratch()
  h.write(dir .. "/train.log", "step 1\nwandb: 🚀 View run at https://wandb.ai/metta-research/metta/runs/"
    .. "stable.arena.100m.x1\n[SUMMARY] Exit code: 0\n")
  local code, out = h.sh(dir, "jobrun analyze train.log --suite " .. h.q(RELEASE) .. " --json")
  tap.is(code, 0, "analyze exits 0")
  local fields = (json.decode(out) or {}).fields or {}
  tap.is({ fields.checkpoint_uri, fields.wandb_run_id, fields.wandb_url },
    { "wandb://run/stable.arena.100m.x1", "stable.arena.100m.x1",
      "https://wandb.ai/metta-research/metta/runs/stable.arena.100m.x1" }, "checkpoint_uri, run id and URL")
end)

tap.test("the trainings on SkyPilot (fake): nodes and GPUs per cell; a training that fails its rules skips "
  .. "the evaluation", function()
  local dir = metta_repo()
  local f = h.fake_skypilot(dir)
  local rc, rout = h.sh(dir, "export SKYPILOT_API_SERVER_ENDPOINT=" .. h.q(f.url)
    .. " && jobrun run " .. h.q(RELEASE) .. " --suite train --suite evaluate --skip-git-check --run-id rel")
  tap.is(rc, 1, "exit 1: the fake's trainings print no metrics")
  local http = require("jobrun.c.http").client()
  local tasks = json.decode(http:perform({ { method = "GET", url = f.url .. "/fake/tasks" } })[1].body or "") or {}
  local seen = {}
  for _, t in ipairs(tasks) do
    local task = t.task or {}
    local any = (task.resources or {}).any_of or {}
    seen[(task.envs or {}).JOBRUN_JOB_NAME or "?"] = { task.num_nodes, (any[1] or {}).accelerators,
      (any[1] or {}).use_spot }
  end
  tap.is(seen, { arena_single_gpu_100m = { 1, "L4:1", false }, arena_multi_gpu_2b = { 4, "L4:4", false } },
    "1 node × 1 GPU and 4 nodes × 4 GPUs, no spot")
  local jobs = h.jobs_by_name(h.state(dir))
  tap.like(jobs.arena_single_gpu_100m.mismatches[1] or "", "metric missing", "judged by the acceptance rules")
  tap.is(jobs.arena_evaluate.status, "SKIPPED", "the evaluation is skipped")
  tap.like(jobs.arena_evaluate.fields.skipped or "", "^needs train/arena_single_gpu_100m, which did not pass %(",
    "because its training did not pass")
  tap.like(rout, "Suite evaluate · backend local · needs train/arena_single_gpu_100m", "the report per suite")
  h.stop_fake(f)
end)

return tap.done()
