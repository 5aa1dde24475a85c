-- The Metta suites (suites/cluster.lua, suites/recipes.lua) plan the jobs cluster_test.py and
-- recipe_test.py launched, with the environment launch.py gave each (metta-origins §1, §3):
-- the condition's launch.py flags as HEARTBEAT_TIMEOUT / MAX_RUNTIME_HOURS / TEST_JOB_RESTART /
-- TEST_NCCL, only tool overrides in METTA_ARGS, the commit in METTA_GIT_REF.
local tap = require "tap"
local h = require "helpers"
local json = require "jobrun.base.json"

local top = os.getenv("JOBRUN_TOP")

-- A Metta checkout: a git repository with the task YAML the suites name.
local function repo()
  local dir = h.scratch()
  local code, out = h.sh(dir, "cp -r " .. h.q(top .. "/tests/skypilot/metta/.") .. " . && git init -q && git add -A && "
    .. "git -c user.name=t -c user.email=t@t commit -qm init && git rev-parse HEAD")
  assert(code == 0, out)
  return dir, out:match("%x+")
end

local function plan(dir, suite)
  local code, out, err = h.sh(dir, "jobrun plan " .. h.q(top .. "/suites/" .. suite) .. " --json --run-id R")
  tap.is(code, 0, suite .. ": plan exits 0" .. (code ~= 0 and (" (" .. err .. ")") or ""))
  return json.decode(out) or { jobs = {} }
end

local MODULE = "experiments.recipes.arena_basic_easy_shaped.train"
local RUN = "set -e && /workspace/metta/devops/skypilot/config/skypilot_run.sh"

-- metta-origins §1's conditions, as the environment launch.py made of their extra_args.
local CONDITIONS = {
  normal_completion = { METTA_ARGS = "trainer.total_timesteps=50000", HEARTBEAT_TIMEOUT = "300",
                        TEST_JOB_RESTART = "false", TEST_NCCL = "false" },
  heartbeat_timeout = { METTA_ARGS = "", HEARTBEAT_TIMEOUT = "1", TEST_JOB_RESTART = "false", TEST_NCCL = "false" },
  runtime_timeout = { METTA_ARGS = "", HEARTBEAT_TIMEOUT = "300", MAX_RUNTIME_HOURS = "0.03",
                      TEST_JOB_RESTART = "true", TEST_NCCL = "true" },
  cmd_fails = { METTA_ARGS = "evaluator.epoch_interval=1 trainer.checkpoint.checkpoint_interval=10",
                HEARTBEAT_TIMEOUT = "300", TEST_JOB_RESTART = "true", TEST_NCCL = "true" },
}
local ORDER = { "normal_completion", "heartbeat_timeout", "runtime_timeout", "cmd_fails" }

tap.test("suites/cluster.lua: 12 jobs, nodes × conditions, launch.py's environment", function()
  local dir, commit = repo()
  local doc = plan(dir, "cluster.lua")
  tap.is(#doc.jobs, 12, "12 jobs")
  local k = 0
  for _, nodes in ipairs({ 1, 2, 4 }) do
    for _, cond in ipairs(ORDER) do
      k = k + 1
      local job = doc.jobs[k] or {}
      local name = string.format("cluster_test_%dn_%s", nodes, cond)
      local want = { METTA_RUN_ID = name .. ".R", METTA_MODULE_PATH = MODULE, METTA_GIT_REF = commit }
      for key, v in pairs(CONDITIONS[cond]) do want[key] = v end
      tap.is({ job.name, job.nodes, job.backend, job.run }, { name, nodes, "skypilot", RUN },
        name .. ": name, nodes, run")
      tap.is(job.env, want, name .. ": env as launch.py set it")
    end
  end
end)

tap.test("suites/recipes.lua: the 7 recipes, one node each", function()
  local dir, commit = repo()
  local doc = plan(dir, "recipes.lua")
  local recipes = {
    { "in_context_learning_ordered_chains", "experiments.recipes.in_context_learning.ordered_chains.train" },
    { "arena_basic_easy_shaped", "experiments.recipes.arena_basic_easy_shaped.train" },
    { "arena", "experiments.recipes.arena.train" },
    { "cvc_arena", "experiments.recipes.cvc_arena.train" },
    { "navigation_sequence", "experiments.recipes.navigation_sequence.train" },
    { "navigation", "experiments.recipes.navigation.train" },
    { "object_use", "experiments.recipes.object_use.train" },
  }
  tap.is(#doc.jobs, 7, "7 jobs")
  for i, r in ipairs(recipes) do
    local job = doc.jobs[i] or {}
    local name = "recipe_test_" .. r[1]
    tap.is({ job.name, job.nodes, job.run }, { name, 1, RUN }, name .. ": name, one node, run")
    tap.is(job.env, { METTA_RUN_ID = name .. ".R", METTA_MODULE_PATH = r[2], METTA_GIT_REF = commit,
                      METTA_ARGS = "trainer.total_timesteps=50000", HEARTBEAT_TIMEOUT = "300",
                      TEST_JOB_RESTART = "false", TEST_NCCL = "false" }, name .. ": env as launch.py set it")
  end
end)

tap.test("no launch.py flag reaches METTA_ARGS", function()
  local dir = repo()
  local bad, words = {}, 0
  for _, suite in ipairs({ "cluster.lua", "recipes.lua" }) do
    for _, job in ipairs(plan(dir, suite).jobs) do
      for word in ((job.env or {}).METTA_ARGS or ""):gmatch("%S+") do
        words = words + 1
        if not word:match("^[%w_.]+=") then bad[#bad + 1] = job.name .. ": " .. word end
      end
    end
  end
  tap.ok(words > 0, "the plans carry METTA_ARGS words (" .. words .. ")")
  tap.is(bad, {}, "every METTA_ARGS word is a key=value override")
end)

return tap.done()
