-- The drive's saves of state.json in a real run: paced (at most about one a second, each at
-- least 100 times its own CPU time: jobrun.run.scheduler.paced), not one per job that ends,
-- and the last one holds every job's end.
local tap = require "tap"
local h = require "helpers"
local fs = require "jobrun.c.fs"
local process = require "jobrun.c.process"

tap.test("a local run of 300 short jobs saves its state about once a second", function()
  local dir = h.scratch()
  h.write(dir .. "/s.lua", [[
local ids = {}
for i = 1, 300 do ids[i] = i end
suite "many" { matrix = { i = ids }, max_parallel = 4, run = "sleep 0.05" }
]])
  local proc = h.spawn(dir, { "run", "s.lua", "--run-id", "paced" })
  local state_path = dir .. "/.jobrun/runs/paced/state.json"
  -- Each save replaces state.json (a new file renamed over it): a new inode. Looked at every
  -- 10 ms, which would see dozens a second if each job's end were saved.
  local inodes, seen, started = 0, nil, process.now()
  while process.start_time(proc:pid()) do
    local st = fs.stat(state_path)
    if st and st.ino ~= seen then inodes, seen = inodes + 1, st.ino end
    process.sleep(0.01)
  end
  local took = process.now() - started
  proc:wait()
  local data = h.state(dir)
  local ended = 0
  for _, job in ipairs(data.jobs) do if job.status == "SUCCEEDED" then ended = ended + 1 end end
  tap.is(ended, 300, "every job's end is in the last save")
  tap.ok(took > 3, string.format("the run took long enough to show the pace (%.1f s; 75 rounds of 50 ms)", took))
  tap.ok(inodes >= 2 and inodes <= took + 4,
    string.format("state.json saved %d times in %.1f s for 300 job ends (at most about one a second)", inodes, took))
end)

return tap.done()
