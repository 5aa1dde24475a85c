-- The state directory must be jobrun's own (issue 21): `JOBRUN_STATE_DIR=/` made /runs and
-- /latest; the file system's root, or a directory another user owns, is refused (exit 2) before
-- anything is written there. (A volume mounted for the state is fine: tests/integration/faults.lua
-- mounts one.)
local tap = require "tap"
local h = require "helpers"
local fs = require "jobrun.c.fs"

h.test_in(tap, "the file system's root is refused, nothing made there", function(dir)
  h.write(dir .. "/s.lua", 'suite "sd" { run = "true" }\n')
  local before = { runs = fs.stat("/runs") ~= nil, latest = fs.stat("/latest") ~= nil }
  assert(fs.symlink("/", dir .. "/to-root"))
  for _, how in ipairs({ "JOBRUN_STATE_DIR=/ jobrun run s.lua", "jobrun run s.lua --state-dir /",
                         "jobrun launch s.lua --state-dir /.", "JOBRUN_STATE_DIR=to-root jobrun run s.lua",
                         "JOBRUN_STATE_DIR=/ jobrun list" }) do
    local code, _, err = h.sh(dir, how)
    tap.is(code, 2, how .. ": exit 2")
    tap.like(err, "^jobrun: the state directory [^ ]+ is the root of the file system", how .. ": says why")
  end
  tap.is({ runs = fs.stat("/runs") ~= nil, latest = fs.stat("/latest") ~= nil }, before, "no /runs, no /latest")
  -- (what a jobrun that let it through made there, the test takes away)
  if not before.runs and fs.stat("/runs") then os.execute("rm -rf /runs") end
  if not before.latest and fs.stat("/latest") then os.remove("/latest") end
end)

h.test_in(tap, "a state directory another user owns is refused", function(dir)
  h.write(dir .. "/s.lua", 'suite "sd" { run = "true" }\n')
  local me = fs.geteuid()
  -- The directory is given away: only root can (the tests run as root).
  if me ~= 0 then tap.ok(true, "# SKIP not root: cannot give a directory to another user") return end
  local other = dir .. "/.jobrun"
  assert(fs.mkdir_p(other))
  assert(os.execute("chown 65534 " .. h.q(other)))
  local code, _, err = h.sh(dir, "jobrun run s.lua --state-dir " .. h.q(other))
  tap.is(code, 2, "exit 2")
  tap.like(err, "belongs to another user %(uid %d+, not " .. me .. "%)", "names the owner")
  tap.is(fs.list(other) or {}, {}, "nothing written in it")
  code, _, err = h.sh(dir, "jobrun list")
  tap.is(code, 2, "discovered (./.jobrun), the same")
  tap.like(err, "%.jobrun belongs to another user", "says so")
  os.execute("chown 0 " .. h.q(other))
  tap.is(select(1, h.sh(dir, "jobrun run s.lua")), 0, "one's own: the run goes ahead")
end)

return tap.done()
