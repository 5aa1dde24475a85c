-- Suspect nodes on the real 4-node test cluster (issue 25): one node made to fail the jobs it
-- runs with an NCCL system error (a failure of the infrastructure, README "Why a distributed job
-- died"); after three runs `history --nodes` names it, and `rerun --exclude-nodes suspect` keeps
-- the failed jobs off it (checked in their NodeList). (Its name holds "slurm": it takes its turn
-- on the cluster with the other Slurm files.)
local tap = require "tap"
local h = require "helpers"
local json = require "jobrun.base.json"

local slurm = h.slurm_cluster(tap)
if not slurm then return tap.done() end
local env = slurm.env

-- Each job takes a whole node (8 CPUs), so that the 8 jobs of a run go over all four nodes.
local SUITE = [[
suite "sn" {
  backend = "slurm", matrix = { i = { 1, 2, 3, 4, 5, 6, 7, 8 } },
  slurm = { extra_args = { "--cpus-per-task=8" } },
  run = "if [ -e {suite_dir}/bad-$SLURMD_NODENAME ]; then "
    .. "echo 'ncclSystemError: System call (e.g. socket, malloc) or external library call failed or device error.'; "
    .. "exit 1; fi; echo fine on $SLURMD_NODENAME",
}
]]

tap.test("a failing node is named suspect, and a rerun avoids it", function()
  local dir = h.scratch()
  h.write(dir .. "/s.lua", SUITE)
  h.write(dir .. "/bad-node3", "")
  -- Three runs: node3 runs at least one job of each (the first wave fills all four nodes), so at
  -- least the 3 attempts the rule asks for.
  for _, id in ipairs({ "N1", "N2", "N3" }) do h.sh(dir, env .. "jobrun run s.lua --run-id " .. id) end
  local jobs = h.jobs_by_name(h.state(dir))
  local on3, failed = 0, 0
  for _, j in pairs(jobs) do
    if j.nodes == "node3" then on3 = on3 + 1 end
    if j.verdict == "fail" then failed = failed + 1 end
  end
  tap.ok(on3 > 0 and failed == on3, "N3: the jobs on node3 failed, the others passed (" .. on3 .. " on node3)")
  local code, out = h.sh(dir, env .. "jobrun history --nodes --json")
  tap.is(code, 0, "history --nodes")
  local nodes = {}
  for _, n in ipairs((json.decode(out) or {}).nodes or {}) do nodes[n.node] = n end
  tap.is(nodes.node3 and nodes.node3.suspect, true, "node3 is suspect")
  tap.is(nodes.node3 and nodes.node3.failure_rate, 1, "all its attempts failed")
  for _, other in ipairs({ "node1", "node2", "node4" }) do
    tap.is(nodes[other] and nodes[other].failed, 0, other .. ": no failure counted against it")
  end
  local _, text = h.sh(dir, env .. "jobrun history --nodes")
  tap.like(text, "node3%s+%d+%s+%d+%s+100%%%s+suspect", "the text names it")
  -- The rerun of N3's failed jobs, kept off node3 (the file still fails any job there).
  code = h.sh(dir, env .. "jobrun rerun N3 --exclude-nodes suspect")
  tap.is(code, 0, "the rerun passes")
  jobs = h.jobs_by_name(h.state(dir))
  local moved, all_pass = 0, true
  for _, j in pairs(jobs) do
    if j.verdict ~= "pass" then all_pass = false end
    if j.attempts and #j.attempts > 0 then
      moved = moved + 1
      tap.ok(j.nodes ~= "node3" and j.attempts[1].nodes == "node3",
        j.name .. ": from node3 to " .. tostring(j.nodes))
    end
  end
  tap.is(moved, on3, "every failed job ran again")
  tap.ok(all_pass, "and every job of N3 has passed")
end)

return tap.done()
