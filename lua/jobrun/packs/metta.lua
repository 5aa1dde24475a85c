-- The Metta pack: the cluster test's four exit conditions, the recipe list, and parsers for the
-- `[SUMMARY]` block that Metta's skypilot_run.sh prints on exit (the last attempt's wins).
-- See ../shared/reference/metta-origins.md §1 (cluster_test.py, recipe_test.py) and §7.

condition "normal_completion" {
  description = "Exit normally after training completes",
  args = { "trainer.total_timesteps=50000" },
  expect = { termination = "job_completed", exit_code = 0, restarts = 0 },
}

condition "heartbeat_timeout" {
  description = "Exit based on missing heartbeats (1 second timeout)",
  args = { "-hb", "1" },
  expect = { termination = "heartbeat_timeout", restarts = 0 },
}

-- ci = True in the old tool: --run-ci-tests forces one restart half-way through the run.
condition "runtime_timeout" {
  description = "Exit based on timeout (0.03 hours = 1.8 minutes)",
  args = { "-t", "0.03", "--run-ci-tests" },
  tags = { "ci" },
  expect = { termination = "max_runtime_reached", restarts = 1 },
}

condition "cmd_fails" {
  description = "Exit when command fails due to invalid parameters",
  args = { "evaluator.epoch_interval=1", "trainer.checkpoint.checkpoint_interval=10", "--run-ci-tests" },
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

-- The seven recipes of recipe_test.py, in its order; `local metta = use "metta"` reaches them.
-- `id` is the name with '/' made '_', as the old run names had it.
return {
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
