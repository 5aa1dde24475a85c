-- Secrets stay secret (issue 11): a job's environment never appears on a command line, and
-- credentials (variables named like them, user:password in URLs) reach neither plan's output
-- nor run/check --json nor any file of the state directory — while the jobs and the SkyPilot
-- client still get the real values, from memory.
local tap = require "tap"
local h = require "helpers"
local fs = require "jobrun.c.fs"
local json = require "jobrun.json"
local process = require "jobrun.c.process"

local top = os.getenv("JOBRUN_TOP")

-- Every process's command line that contains `needle` (none of them may).
local function cmdlines_with(needle)
  local found = {}
  for _, pid in ipairs(fs.list("/proc") or {}) do
    if pid:match("^%d+$") then
      local cmdline = fs.read("/proc/" .. pid .. "/cmdline")
      if cmdline and cmdline:find(needle, 1, true) then
        found[#found + 1] = pid .. ": " .. cmdline:gsub("%z", " ")
      end
    end
  end
  return found
end

-- grep -r over a directory: the files that contain any of the strings.
local function files_with(dir, strings)
  local args = {}
  for _, s in ipairs(strings) do args[#args + 1] = "-e " .. h.q(s) end
  local _, out = h.sh(dir, "grep -r -l -F " .. table.concat(args, " ") .. " . || true")
  return out
end

local function cleanup(dir) os.execute("rm -rf " .. h.q(dir)) end

tap.test("a local job's environment is not on any command line", function()
  local dir = h.scratch()
  h.write(dir .. "/s.lua", [[
suite "sec" {
  run = "printf '%s' \"$API_TOKEN\" > seen; sleep 30",
  env = { API_TOKEN = "s3cret-value" },
  ["local"] = { grace = 1 },
}
]])
  local code = h.sh(dir, "jobrun launch s.lua --run-id r")
  tap.is(code, 0, "launched")
  tap.ok(h.eventually(function() return fs.read(dir .. "/seen") == "s3cret-value" end, 10),
    "the job sees the variable's real value")
  local found = cmdlines_with("s3cret-value")
  tap.is(found, {}, "no process's /proc/PID/cmdline holds the value")
  tap.is(h.jobs_by_name(h.state(dir)).sec.spec.env.API_TOKEN, "<redacted>", "state.json says <redacted>")
  local kc = h.sh(dir, "jobrun kill r")
  tap.is(kc, 0, "killed")
  local _, leaked = h.sh(dir, "grep -r -l -F s3cret-value .jobrun || true")
  tap.is(leaked, "", "the value is in no file of the state directory")
  cleanup(dir)
end)

return tap.done()
