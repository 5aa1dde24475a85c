-- The Slurm backend's job arrays, without a cluster: grouping by shape, the split at
-- MaxArraySize, the array script's per-task environment, and reading array task ids from
-- squeue's compact lines (the cluster tests in tests/integration/slurm.lua run them for real).
local tap = require "tap"
local slurm = require "jobrun.backends.slurm"

local function job(name, spec)
  spec = spec or {}
  spec.nodes = spec.nodes or 1
  spec.max_restarts = spec.max_restarts or 0
  spec.commands = spec.commands or { "echo " .. name }
  return { name = name, key = name, spec = spec, log_path_rel = "logs/" .. name .. ".log" }
end

local function names(list)
  local out = {}
  for i, j in ipairs(list) do out[i] = j.name end
  return out
end

-- parse: squeue's compact lines; running tasks one a line, pending ones as ranges (with a
-- throttle, lists, steps).
local text = table.concat({
  "1436_0|1435|0|RUNNING|None|node1||2026-01-01T00:00:00|2026-01-01T00:05:00",
  "1435_[3-5%3]|1435|3-5%3|PENDING|Resources|||N/A|N/A",
  "1500_[7,9-10,20-24:2]|1500|7,9-10,20-24:2|PENDING|Priority|||N/A|N/A",
  "1434|1434|N/A|COMPLETED|None|node2|node2|2026-01-01T00:00:00|2026-01-01T00:00:09",
}, "\n")
local known = slurm.parse(text)
tap.is(known["1435_0"] and known["1435_0"].JobState, "RUNNING", "a running task under <array>_<task>")
tap.is(known["1435_0"] and known["1435_0"].NodeList, "node1", "with its nodes")
tap.is({ known["1435_3"] ~= nil, known["1435_4"] ~= nil, known["1435_5"] ~= nil, known["1435_6"] ~= nil },
  { true, true, true, false }, "a pending range with a throttle stands for each of its tasks, no more")
tap.is(known["1435_4"] and known["1435_4"].Reason, "Resources", "pending, with its reason")
local listed = {}
for _, t in ipairs({ 7, 8, 9, 10, 11, 20, 21, 22, 24 }) do listed[#listed + 1] = known["1500_" .. t] ~= nil end
tap.is(listed, { true, false, true, true, false, true, false, true, true }, "lists and stepped ranges")
tap.is(known["1434"] and known["1434"].JobState, "COMPLETED", "a plain job under its id")
tap.is(known["1435"], nil, "an array's own id is no job of ours")
local _, _, ranges = slurm.parse(text)
tap.is(slurm.parse(text, nil, ranges), known, "with the last parse's ranges as its cache: the same answer")
local _, _, moved = slurm.parse((text:gsub("3%-5%%3", "4-5%%3")), nil, ranges)
tap.is(moved["1435|4-5%3"], { "1435_4", "1435_5" }, "a range that moved is expanded anew")
tap.ok(moved["1500|7,9-10,20-24:2"] == ranges["1500|7,9-10,20-24:2"] and moved["1435|0"] == ranges["1435|0"]
  and moved["1435|3-5%3"] == nil, "the others kept as they were, the old range dropped")
local only = slurm.parse(text .. "\n9000_[0-999999]|9000|0-999999|PENDING|None|||N/A|N/A", { ["1435"] = true })
tap.is({ only["1435_4"] ~= nil, only["1500_7"], only["9000_5"], only["1434"] ~= nil }, { true, nil, nil, true },
  "with the run's arrays named, another array's pending tasks are not read; plain jobs still are")

-- seen: what a poll compares with the poll before; a pending job's guessed StartTime moves as
-- other jobs start, and is not part of it (a poll of 10,000 pending tasks looked at each again).
local function seen_of(line) return (slurm.parse(line)["1435_4"] or {}).seen end
local pending = "1435_[3-5]|1435|3-5|PENDING|Resources|||2027-12-07T19:49:20|NONE|N/A"
tap.is(seen_of(pending), seen_of((pending:gsub("19:49:20", "19:49:26"):gsub("3%-5", "4-5"))),
  "a pending task's record: the same when only its guessed start and its array's range moved")
tap.ok(seen_of(pending) ~= seen_of((pending:gsub("Resources", "Priority"))), "not when its reason changed")
local running = "1435_4|1435|4|RUNNING|None|node1||2026-01-01T00:00:00|2026-01-01T00:05:00|N/A"
tap.ok(seen_of(running) ~= seen_of((running:gsub("00:00:00", "00:00:01"))), "a running job's start time counts")

-- groups: one array per shape, in order, split at the limit; a group of one goes alone.
local jobs = {
  job("a1"), job("a2"), job("b1", { nodes = 2 }), job("a3"), job("b2", { nodes = 2 }),
  job("c", { nodes = 4 }), job("a4"), job("t", { timeout = 60 }),
  job("p1", { options = { partition = "x", extra_args = { "--comment=1" } } }),
  job("p2", { options = { partition = "x", extra_args = { "--comment=2" } } }),
}
local arrays, alone = slurm.groups(jobs, {}, 1001)
tap.is({ #arrays, names(arrays[1] or {}), names(arrays[2] or {}) }, { 2, { "a1", "a2", "a3", "a4" }, { "b1", "b2" } },
  "jobs of one shape (nodes, time, options, extra args) share an array")
tap.is(names(alone), { "c", "t", "p1", "p2" }, "jobs of a unique shape go alone")
arrays, alone = slurm.groups(jobs, {}, 3)
tap.is({ #arrays, names(arrays[1]), names(arrays[2]) }, { 2, { "a1", "a2", "a3" }, { "b1", "b2" } },
  "split at MaxArraySize; the rest of a split group alone when one is left")
tap.is(names(alone), { "c", "a4", "t", "p1", "p2" }, "(a4 is a group of one; groups keep the order of their first job)")
arrays, alone = slurm.groups(jobs, {}, 0)
tap.is({ #arrays, #alone }, { 0, #jobs }, "MaxArraySize 0 (arrays off): all alone")
local weird = job("w")
local envs = { [weird] = { ["A-B"] = "1" } }
arrays, alone = slurm.groups({ job("x1"), weird, job("x2") }, envs, 100)
tap.is({ names(arrays[1] or {}), names(alone) }, { { "x1", "x2" }, { "w" } },
  "a variable the shell cannot name keeps its job out of arrays")
tap.ok(slurm.shape(job("r", { max_restarts = 1 })) ~= slurm.shape(job("s")),
  "requeue is part of the shape")

-- The array script: each task's branch exports its own values from the stash, then unsets
-- the stash; the values themselves are not in the script.
local ctx = { run_dir = "/runs/R", run_id = "R" }
local script = slurm.array_script(ctx, { job("one"), job("two") }, { [0] = { "SECRET", "V" }, [1] = { "V" } })
-- sbatch's directive parser splits at spaces and quotes: names and paths go on its command line.
tap.ok(not script:find("#SBATCH --output", 1, true), "no --output directive")
tap.ok(not script:find("#SBATCH --job-name", 1, true), "no --job-name directive")
tap.like(script, "#SBATCH %-%-no%-requeue\n", "never requeued by Slurm itself")
tap.like(script,
  '\n0%) # one\nexport SECRET="%$JOBRUN_ARRAY_ENV_0_SECRET" V="%$JOBRUN_ARRAY_ENV_0_V"\njobrun_unstash\n',
  "task 0 exports its variables from the stash, then drops the stash")
tap.like(script, '\n1%) # two\nexport V="%$JOBRUN_ARRAY_ENV_1_V"\n', "task 1 its own")
tap.like(script, '"%${SLURM_ARRAY_JOB_ID}_%${SLURM_ARRAY_TASK_ID}"', "results recorded under the task's id")
tap.like(script, "\n%*%) echo", "an unknown task id fails loudly")
tap.is(slurm.output_pattern("/a%b/c"), "/a%%b/c", "a % in a path is escaped for --output")
tap.is(slurm.output_pattern("/a\\%b"), "/a\\%b", "unless a backslash turns Slurm's patterns off")

local hosts = {}
for h in pairs(slurm.hostlist("node[1-3,05],gpu1,x[7]")) do hosts[#hosts + 1] = h end
table.sort(hosts)
tap.is(hosts, { "gpu1", "node05", "node1", "node2", "node3", "x7" }, "Slurm host lists expand")

tap.done()
