-- The Metta recipe test (recipe_test.py): each of the seven recipes trains 50k steps on one node.
-- Each job is the task launch.py built (metta-origins §3): devops/skypilot/config/skypilot_run.yaml
-- from the repository root (run jobrun there), with METTA_RUN_ID, METTA_MODULE_PATH (the
-- recipe), METTA_ARGS, METTA_GIT_REF (the commit the image checks out), launch.py's default
-- flags as environment, one node, no spot instances and 4 GPUs per accelerator.
local metta = use "metta"

local env = metta.env("{recipe.module}")
env.METTA_ARGS = "trainer.total_timesteps=50000"

suite "recipe_test" {
  description = "every recipe trains to completion",
  backend = "skypilot",
  matrix = { recipe = metta.recipes },
  name = "{suite}_{recipe.id}",
  run = metta.run,
  env = env,
  nodes = 1,
  timeout = "2h",
  expect = { termination = "job_completed", exit_code = 0, restarts = 0 },
  git = { require_clean = true, require_pushed = true },
  skypilot = metta.skypilot(),
}
