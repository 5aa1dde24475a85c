-- A release validation in the old tool's style (release.py): run the quickstart matrix; if it
-- passes, train each recipe once with examples/trainer.sh; print a summary. One run holds every
-- job; a failure is picked up again with --resume, which runs only what did not pass.
--
--   jobrun script examples/release.lua
--   jobrun script --resume examples/release.lua     # after a failure: only the failed jobs again
--
-- $MARKER (optional) names a file: while it is absent, the "flaky" recipe fails once and makes
-- it, so that the first run fails and a resume passes (the end-to-end test of resume).
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

print("== summary ==")
local bad = 0
for i, r in ipairs(out) do
  if r.verdict ~= "pass" then bad = bad + 1 end
  print(string.format("  %-20s %-10s exit %-4s %s", recipes[i].name, r.status, tostring(r.exit_code), r.verdict))
end
print(string.format("release %s: quickstart passed, %d/%d recipes passed", jobrun.run_id(), #out - bad, #out))
return bad > 0 and 1 or 0
