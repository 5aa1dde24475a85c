-- The quickstart: Metta's cluster test, shrunk to run here in seconds. 2 node counts × the four
-- exit conditions = 8 jobs of examples/trainer.sh, a stand-in for Metta's run script that ends
-- each way the real one does and prints the same [SUMMARY] block, which the metta pack reads.
--
--   jobrun run examples/quickstart.lua
use "metta"

-- The metta pack's conditions, as the stand-in understands them: launch.py's flags as the
-- environment they became (HEARTBEAT_TIMEOUT, MAX_RUNTIME_HOURS, TEST_JOB_RESTART, TEST_NCCL),
-- tool overrides as arguments, and runtimes of seconds instead of hours; the expectations are
-- the pack's.
condition "normal_completion" {
  description = "Exit normally after training completes",
  args = { "trainer.total_timesteps=20" },
  expect = { termination = "job_completed", exit_code = 0, restarts = 0 },
}
condition "heartbeat_timeout" {
  description = "Exit based on missing heartbeats (1 second timeout)",
  args = { "trainer.total_timesteps=1000" },
  env = { HEARTBEAT_TIMEOUT = "1" },
  expect = { termination = "heartbeat_timeout", restarts = 0 },
}
condition "runtime_timeout" {
  description = "Exit based on timeout (0.00084 hours = 3 seconds), with a forced restart half-way",
  args = { "trainer.total_timesteps=100000" },
  env = { MAX_RUNTIME_HOURS = "0.00084", TEST_JOB_RESTART = "true", TEST_NCCL = "true" },
  tags = { "ci" },
  expect = { termination = "max_runtime_reached", restarts = 1 },
}
condition "cmd_fails" {
  description = "Exit when command fails due to invalid parameters",
  args = { "trainer.total_timesteps=fifty" },
  env = { TEST_JOB_RESTART = "true", TEST_NCCL = "true" },
  tags = { "ci" },
  expect = { exit_code = "nonzero", termination = "job_completed" },
}

suite "quickstart" {
  description = "cluster_test.py's matrix, run on this machine",
  matrix = { nodes = { 1, 2 },
             condition = { "normal_completion", "heartbeat_timeout", "runtime_timeout", "cmd_fails" } },
  name = "{suite}_{nodes}n_{condition}",
  run = "sh {suite_dir}/trainer.sh {args}",
  -- What launch.py always set: its defaults, which the conditions override.
  env = { METTA_RUN_ID = "{name}.{run_id}", HEARTBEAT_TIMEOUT = "300", TEST_JOB_RESTART = "false",
          TEST_NCCL = "false" },
  timeout = "1m",
  max_restarts = 1, -- as SkyPilot's job recovery restarts the forced-restart attempt
  ["local"] = { grace = 2 },
}
