-- The Metta cluster test (cluster_test.py): 3 node configurations × 4 exit conditions = 12 jobs
-- on SkyPilot, each judged by the [SUMMARY] block its run script prints.
use "metta"

suite "cluster_test" {
  description = "SkyPilot cluster behaviour: completion, heartbeat, runtime limit, failing command",
  backend = "skypilot",
  matrix = { nodes = { 1, 2, 4 },
             condition = { "normal_completion", "heartbeat_timeout", "runtime_timeout", "cmd_fails" } },
  name = "{suite}_{nodes}n_{condition}",
  run = "./devops/skypilot/config/skypilot_run.sh",
  env = {
    METTA_RUN_ID = "{name}.{run_id}",
    METTA_MODULE_PATH = "experiments.recipes.arena_basic_easy_shaped.train",
    METTA_ARGS = "{args}",
  },
  timeout = "2h",
  git = { require_clean = true, require_pushed = true },
  skypilot = { resources = { accelerators = "L4:4", use_spot = false },
               job_recovery = { max_restarts_on_errors = 20 } },
}
