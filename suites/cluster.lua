-- The Metta cluster test (cluster_test.py): 3 node configurations × 4 exit conditions = 12 jobs
-- on SkyPilot, each judged by the [SUMMARY] block its run script prints. Each job is the task
-- launch.py built (metta-origins §3): devops/skypilot/config/skypilot_run.yaml from the
-- repository root (run jobrun there), with METTA_RUN_ID, METTA_MODULE_PATH, METTA_ARGS (the
-- condition's tool overrides), METTA_GIT_REF (the commit the image checks out), the condition's
-- launch.py flags as environment (HEARTBEAT_TIMEOUT, MAX_RUNTIME_HOURS, TEST_JOB_RESTART,
-- TEST_NCCL), num_nodes, no spot instances and 4 GPUs per accelerator.
local metta = use "metta"

suite "cluster_test" {
  description = "SkyPilot cluster behaviour: completion, heartbeat, runtime limit, failing command",
  backend = "skypilot",
  matrix = { nodes = { 1, 2, 4 },
             condition = { "normal_completion", "heartbeat_timeout", "runtime_timeout", "cmd_fails" } },
  name = "{suite}_{nodes}n_{condition}",
  run = metta.run,
  env = metta.env("experiments.recipes.arena_basic_easy_shaped.train"),
  timeout = "2h",
  git = { require_clean = true, require_pushed = true },
  skypilot = metta.skypilot(),
}
