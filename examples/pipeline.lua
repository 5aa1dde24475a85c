-- A release pipeline that runs here, on the local backend: the shape of suites/release.lua with
-- examples/trainer.sh standing in for the trainer. Four suites in one run:
--   ci        two quick checks, needing nothing
--   train     two trainings; "flaky" runs out of GPU memory on its first try
--   evaluate  needs the arena training and receives its checkpoint_uri (env and command line)
--   report    needs every training: SKIPPED while "flaky" fails, saying so
--
--   jobrun run examples/pipeline.lua   # exit 1: train_flaky failed (cuda_oom), report SKIPPED
--   jobrun rerun                       # train_flaky and report only; the rest keeps its pass
--
-- The trainer's files and the flaky marker live under $TMPDIR (default /tmp).
use "metta"

parser "checkpoint" { contains = "checkpoint_uri:", pattern = "checkpoint_uri: (%S+)", field = "checkpoint_uri",
  description = "where the training saved its policy" }

suite "ci" {
  matrix = { check = { "lint", "unit" } },
  run = "echo running the {check} checks",
  timeout = "1m",
}

suite "train" {
  matrix = { recipe = { "arena", "flaky" } },
  env = { METTA_RUN_ID = "{name}.{run_id}" },
  -- The flaky recipe fails once per run: the marker says it already did.
  run = "work=${TMPDIR:-/tmp}/jobrun-pipeline/{name}.{run_id}; mkdir -p \"$work\"; "
     .. "if [ {recipe} = flaky ] && [ ! -e \"$work/failed_once\" ]; then : > \"$work/failed_once\"; "
     .. "echo 'RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB'; exit 1; fi; "
     .. "sh {suite_dir}/trainer.sh trainer.total_timesteps=10 trainer.step_time=0.01 "
     .. "&& echo \"checkpoint_uri: file://$work/model.pt\"",
  timeout = "1m",
  expect = { exit_code = 0, metrics = { ["overview/sps"] = ">= 40000" } },
}

suite "evaluate" {
  needs = { "train/train_arena" },
  env = { POLICY_URI = "{needs.train.train_arena.fields.checkpoint_uri}" },
  run = "echo \"evaluating $POLICY_URI\"; echo policy_uri={needs.train.train_arena.fields.checkpoint_uri}",
  timeout = "1m",
}

suite "report" {
  needs = { "train" },
  run = "echo 'release candidate: arena {needs.train.train_arena.fields.checkpoint_uri}, "
     .. "flaky {needs.train.train_flaky.fields.checkpoint_uri}'",
  timeout = "1m",
}
