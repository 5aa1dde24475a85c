-- The Metta pack: the cluster test's four exit conditions, the recipe list, and parsers for the
-- `[SUMMARY]` block that Metta's skypilot_run.sh prints on exit (the last attempt's wins).
-- See ../shared/reference/metta-origins.md §1 (cluster_test.py, recipe_test.py), §3 (launch.py) and §7.

-- The old tool's extra_args were launch.py's command line (metta-origins §1, §3): its flags
-- became the environment of skypilot_run.sh on the cluster (-hb 1 → HEARTBEAT_TIMEOUT=1;
-- -t 0.03 → MAX_RUNTIME_HOURS=0.03; --run-ci-tests, the `ci` conditions → TEST_JOB_RESTART=true
-- and TEST_NCCL=true), and only the tool's key=value overrides reached METTA_ARGS — which is
-- what `args` ({args}) holds here.
condition "normal_completion" {
  description = "Exit normally after training completes",
  args = { "trainer.total_timesteps=50000" },
  expect = { termination = "job_completed", exit_code = 0, restarts = 0 },
}

condition "heartbeat_timeout" {
  description = "Exit based on missing heartbeats (1 second timeout)",
  env = { HEARTBEAT_TIMEOUT = "1" },
  expect = { termination = "heartbeat_timeout", restarts = 0 },
}

-- ci = True in the old tool: --run-ci-tests forces one restart half-way through the run.
condition "runtime_timeout" {
  description = "Exit based on timeout (0.03 hours = 1.8 minutes)",
  env = { MAX_RUNTIME_HOURS = "0.03", TEST_JOB_RESTART = "true", TEST_NCCL = "true" },
  tags = { "ci" },
  expect = { termination = "max_runtime_reached", restarts = 1 },
}

-- Without MAX_RUNTIME_HOURS the restart monitor does nothing: --run-ci-tests runs the NCCL test.
condition "cmd_fails" {
  description = "Exit when command fails due to invalid parameters",
  args = { "evaluator.epoch_interval=1", "trainer.checkpoint.checkpoint_interval=10" },
  env = { TEST_JOB_RESTART = "true", TEST_NCCL = "true" },
  tags = { "ci" },
  expect = { exit_code = "nonzero", termination = "job_completed" },
}

-- Each marker as the old JobSummaryParser read it: substring test, then the regex.
parser "metta_exit_code" {
  contains = "[SUMMARY] Exit code:", pattern = "Exit code: (%d+)",
  field = "exit_code", number = true, priority = 10,
  description = "the training command's real exit code",
}
parser "metta_termination" {
  contains = "[SUMMARY] Termination reason:", pattern = "Termination reason: ([^%[]+)",
  field = "termination_reason", priority = 10,
  description = "why the run ended: job_completed, heartbeat_timeout, max_runtime_reached, …",
}
parser "metta_restart_count" {
  contains = "[SUMMARY] Restart Count:", pattern = "Restart Count: (%d+)",
  field = "restart_count", number = true, priority = 10,
}
parser "metta_run_id" {
  contains = "[SUMMARY] Metta Run ID:", pattern = "Metta Run ID: ([^%[]+)", field = "metta_run_id",
}
parser "metta_skypilot_task_id" {
  contains = "[SUMMARY] Skypilot Task ID:", pattern = "Skypilot Task ID: ([^%[]+)",
  field = "skypilot_task_id",
}

-- What launch.py sent with every job (metta-origins §3), for the suites: the repository's own
-- task YAML (image, S3 mount, run script, job recovery), its environment — the run id, module,
-- tool overrides and commit the image checks out, and the defaults of the flags the conditions
-- override — and from cluster_test's BASE_ARGS no spot instances (--no-spot) and 4 GPUs per
-- accelerator (--gpus=4). The run command is the task YAML's own.
local TASK = "devops/skypilot/config/skypilot_run.yaml"
local RUN = "set -e && /workspace/metta/devops/skypilot/config/skypilot_run.sh"
local function env(module)
  return {
    METTA_RUN_ID = "{name}.{run_id}",
    METTA_MODULE_PATH = module,
    METTA_ARGS = "{args}",
    METTA_GIT_REF = "{git.commit}",
    HEARTBEAT_TIMEOUT = "300",
    TEST_JOB_RESTART = "false",
    TEST_NCCL = "false",
  }
end

-- The seven recipes of recipe_test.py, in its order; `local metta = use "metta"` reaches them.
-- `id` is the name with '/' made '_', as the old run names had it.
return {
  task = TASK,
  run = RUN,
  env = env,
  skypilot = function() return { task = TASK, resources = { use_spot = false, gpus = 4 } } end,
  recipes = {
    { name = "in_context_learning/ordered_chains", id = "in_context_learning_ordered_chains",
      module = "experiments.recipes.in_context_learning.ordered_chains.train",
      description = "In-context learning resource chain" },
    { name = "arena_basic_easy_shaped", id = "arena_basic_easy_shaped",
      module = "experiments.recipes.arena_basic_easy_shaped.train",
      description = "Basic arena with easy shaping" },
    { name = "arena", id = "arena",
      module = "experiments.recipes.arena.train",
      description = "Standard arena recipe" },
    { name = "cvc_arena", id = "cvc_arena",
      module = "experiments.recipes.cvc_arena.train",
      description = "Cogs vs Clips recipe" },
    { name = "navigation_sequence", id = "navigation_sequence",
      module = "experiments.recipes.navigation_sequence.train",
      description = "Sequential navigation task" },
    { name = "navigation", id = "navigation",
      module = "experiments.recipes.navigation.train",
      description = "Navigation task" },
    { name = "object_use", id = "object_use",
      module = "experiments.recipes.object_use.train",
      description = "Object Use task" },
  },
}
