-- Metta's release validation (release_stable.py's task plan, metta-origins.md §5, as of 10-23) as
-- one suite file: local CI, a local smoke training, two SkyPilot trainings judged by Metta's
-- acceptance rules, and a local evaluation of the 100M training's checkpoint. One run holds all
-- of it; the suites that need nothing start at once, the evaluation when its training passed.
-- Run it from Metta's checkout (the SkyPilot jobs use its task YAML):
--
--   jobrun run suites/release.lua                         # the whole release plan
--   jobrun run suites/release.lua --suite ci --suite smoke  # the local part only
--   jobrun rerun                                          # after a failure: the failed jobs and
--                                                         # what needs them; passed ones stay
--
-- What release_stable.py did and jobrun does instead:
--   * "Dependency X did not pass" → the evaluation is SKIPPED, saying which job failed and why.
--   * cached passed/skipped results on resume → `jobrun rerun` runs only what failed (and its
--     dependents); `--all` runs everything again.
--   * TrainingTask's W&B lookup → the parsers below read the run's URL from the log;
--     checkpoint_uri is "wandb://run/<id>", as TrainingTask set it, and reaches the evaluation
--     as policy_uri (EvaluationTask appended policy_uri=<checkpoint_uri>).
--   * the acceptance rules (the mean of the last 25 % of the run's history) → expect.metrics
--     with the default aggregate, tail_mean, read from the training's own log.
local metta = use "metta"

local WANDB = "https://wandb%.ai/[^/%s]+/[^/%s]+/runs/([%w_.-]+)"
parser "wandb_run_id" { contains = "wandb.ai/", pattern = WANDB, field = "wandb_run_id",
  description = "the W&B run the training logged to" }
parser "wandb_url" { contains = "wandb.ai/", pattern = "(" .. WANDB:gsub("%(", ""):gsub("%)", "") .. ")",
  field = "wandb_url", description = "the W&B run's page" }
parser "checkpoint_uri" {
  contains = "wandb.ai/",
  description = "wandb://run/<id>, the policy TrainingTask handed to the evaluation",
  fn = function(log, result)
    local id
    for found in log:gmatch(WANDB) do id = found end
    if id then result.fields.checkpoint_uri = "wandb://run/" .. id end
  end,
}

local RECIPE = "experiments.recipes.arena_basic_easy_shaped"

-- python_ci, cpp_ci, cpp_benchmark (metta_ci split in three on 10-23; metta_ci had 1800 s).
suite "ci" {
  description = "local CI: the Python tests, the C++ tests and the C++ benchmarks",
  matrix = { task = {
    { name = "python_ci", command = "uv run metta pytest --ci" },
    { name = "cpp_ci", command = "uv run metta cpptest --test" },
    { name = "cpp_benchmark", command = "uv run metta cpptest --benchmark" },
  } },
  name = "{task.name}",
  run = function(job) return job.params.task.command end, -- (a placeholder would be one quoted word)
  timeout = "30m",
}

suite "smoke" {
  description = "a short local training of the arena recipe",
  name = "arena_local_smoke",
  run = "uv run ./tools/run.py " .. RECIPE .. ".train run=stable.smoke.{run_id} trainer.total_timesteps=1000",
  timeout = "10m",
}

-- The two remote trainings: launch.py's task (the repository's YAML, no spot instances), the
-- node and GPU counts, timeouts and acceptance rules per cell.
local env = metta.env(RECIPE .. ".train")
env.METTA_ARGS = "trainer.total_timesteps={training.steps}"

suite "train" {
  description = "the arena recipe trained on SkyPilot, judged by Metta's acceptance rules",
  backend = "skypilot",
  matrix = { training = {
    { name = "arena_single_gpu_100m", steps = 100000000 },
    { name = "arena_multi_gpu_2b", steps = 2000000000 },
  } },
  name = "{training.name}",
  run = metta.run,
  env = env,
  git = { require_clean = true, require_pushed = true },
  skypilot = metta.skypilot(),
  include = {
    { training = { name = "arena_single_gpu_100m" },          -- --no-spot --gpus=1 --nodes=1
      nodes = 1, timeout = "2h",                               -- 7200 s
      skypilot = { task = metta.task, resources = { use_spot = false, gpus = 1 } },
      expect = { metrics = { ["overview/sps"] = ">= 40000", ["env_agent/heart.gained"] = "> 0.1" } } },
    { training = { name = "arena_multi_gpu_2b" },             -- --gpus=4 --nodes=4
      nodes = 4, timeout = "48h",                              -- 172800 s
      skypilot = { task = metta.task, resources = { use_spot = false, gpus = 4 } },
      expect = { metrics = { ["overview/sps"] = ">= 80000", ["env_agent/heart.gained"] = "> 1.0" } } },
  },
}

suite "evaluate" {
  description = "the 100M training's policy evaluated locally",
  needs = { "train/arena_single_gpu_100m" },
  name = "arena_evaluate",
  run = "uv run ./tools/run.py " .. RECIPE .. ".evaluate "
    .. "policy_uri={needs.train.arena_single_gpu_100m.fields.checkpoint_uri}",
  timeout = "30m",
}
