-- The Metta recipe test (recipe_test.py): each of the seven recipes trains 50k steps on one node.
local metta = use "metta"

suite "recipe_test" {
  description = "every recipe trains to completion",
  backend = "skypilot",
  matrix = { recipe = metta.recipes },
  name = "{suite}_{recipe.id}",
  run = "./devops/skypilot/config/skypilot_run.sh",
  env = {
    METTA_RUN_ID = "{name}.{run_id}",
    METTA_MODULE_PATH = "{recipe.module}",
    METTA_ARGS = "trainer.total_timesteps=50000",
  },
  nodes = 1,
  timeout = "2h",
  expect = { termination = "job_completed", exit_code = 0, restarts = 0 },
  git = { require_clean = true, require_pushed = true },
  skypilot = { resources = { accelerators = "L4:4", use_spot = false },
               job_recovery = { max_restarts_on_errors = 20 } },
}
