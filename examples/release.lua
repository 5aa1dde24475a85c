-- A release validation in the old tool's style (release.py): run the quickstart matrix; if it
-- passes, train each recipe once with examples/trainer.sh; print a summary. One run holds every
-- job; a failure is picked up again with --resume, which runs only what did not pass.
--
--   jobrun script examples/release.lua
--   jobrun script --resume examples/release.lua     # after a failure: only the failed jobs again
--
-- $MARKER (optional) names a file: while it is absent, the "flaky" recipe fails once and makes
-- it, so that the first run fails and a resume passes (the end-to-end test of resume).
-- Then the training runs, judged by Metta's acceptance rules as release_stable.py wrote them
-- (metta-origins.md §5): on 1 GPU overview/sps ≥ 40000 and env_agent/heart.gained > 0.1, on 4×4
-- sps ≥ 80000 and heart.gained > 1.0, each the mean of the last 25 % of the run (tail_mean).
-- $FAKE_SPS (optional) sets the steps per second per node that the trainer reports.
local jobrun = require "jobrun"

local here = (arg[0] or "release.lua"):match("^(.*)/[^/]*$") or "."
local trainer = "sh " .. here .. "/trainer.sh"

print("== quickstart matrix ==")
local matrix = jobrun.suite(here .. "/quickstart.lua")
local failed = {}
for _, r in ipairs(matrix:wait()) do
  print(string.format("  %-40s %-10s %s", r.name, r.status, r.verdict))
  if r.verdict ~= "pass" then failed[#failed + 1] = r.name end
end
if #failed > 0 then
  print("quickstart failed (" .. table.concat(failed, ", ") .. "): no recipes")
  return 1
end

-- Each recipe: the trainer with its own settings, as the recipes' train tools were.
local recipes = {
  { name = "recipe_arena", env = { RECIPE = "arena" }, args = "trainer.total_timesteps=10" },
  { name = "recipe_navigation", env = { RECIPE = "navigation" }, args = "trainer.total_timesteps=15" },
  { name = "recipe_flaky", env = { RECIPE = "flaky", MARKER = os.getenv("MARKER") or "" },
    args = "trainer.total_timesteps=5",
    pre = 'if [ -n "$MARKER" ] && [ ! -e "$MARKER" ]; then : > "$MARKER"; '
      .. 'echo "flaky: first try fails"; exit 1; fi; ' },
}
print("== recipes ==")
local jobs = {}
for i, r in ipairs(recipes) do
  jobs[i] = jobrun.job { name = r.name, env = r.env, timeout = "1m",
                         run = (r.pre or "") .. trainer .. " " .. r.args }
end
local out = jobrun.all(jobs)

print("== training ==")
-- Each run its own trainer state (METTA_RUN_ID), as each Metta run has.
local fake = { FAKE_SPS = os.getenv("FAKE_SPS"), METTA_RUN_ID = "{name}.{run_id}" }
local training = {
  jobrun.job { name = "arena_single_gpu", nodes = 1, timeout = "1m", env = fake,
               run = trainer .. " trainer.total_timesteps=20 trainer.step_time=0.02",
               expect = { metrics = { ["overview/sps"] = ">= 40000", ["env_agent/heart.gained"] = "> 0.1" } } },
  jobrun.job { name = "arena_multi_gpu_4x4", nodes = 4, timeout = "1m",
               env = { FAKE_SPS = fake.FAKE_SPS, FAKE_HEART = "2", METTA_RUN_ID = fake.METTA_RUN_ID },
               run = trainer .. " trainer.total_timesteps=20 trainer.step_time=0.02",
               expect = { metrics = { ["overview/sps"] = ">= 80000", ["env_agent/heart.gained"] = "> 1.0" } } },
}
local trained = jobrun.all(training)

print("== summary ==")
local bad, bad_training = 0, 0
for i, r in ipairs(out) do
  if r.verdict ~= "pass" then bad = bad + 1 end
  print(string.format("  %-20s %-10s exit %-4s %s", recipes[i].name, r.status, tostring(r.exit_code), r.verdict))
end
for _, r in ipairs(trained) do
  if r.verdict ~= "pass" then bad_training = bad_training + 1 end
  local m = r.metrics or {}
  local sps, heart = m["overview/sps"] or {}, m["env_agent/heart.gained"] or {}
  print(string.format("  %-20s %-10s sps %-8s heart.gained %-6s %s", r.name, r.status, tostring(sps.value),
    tostring(heart.value), r.verdict))
  for _, why in ipairs(r.mismatches or {}) do print("    " .. why) end
end
print(string.format("release %s: quickstart passed, %d/%d recipes passed, %d/%d training runs accepted",
  jobrun.run_id(), #out - bad, #out, #trained - bad_training, #trained))
return (bad > 0 or bad_training > 0) and 1 or 0
