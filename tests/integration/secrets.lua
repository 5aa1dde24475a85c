-- Secrets stay secret (issue 11): a job's environment never appears on a command line, and
-- credentials (variables named like them, user:password in URLs) reach neither plan's output
-- nor run/check --json nor any file of the state directory — while the jobs and the SkyPilot
-- client still get the real values, from memory.
local tap = require "tap"
local h = require "helpers"
local fs = require "jobrun.c.fs"
local json = require "jobrun.json"

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

tap.test("plan shows secrets as state.json keeps them: <redacted>, URLs without user:password", function()
  local dir = h.scratch()
  h.write(dir .. "/s.lua", [[
suite "pl" {
  run = "true",
  env = { API_TOKEN = "s3cret-value", DB_URL = "postgres://app:db-pa55@db.example/x", PLAIN = "visible" },
}
]])
  local code, out = h.sh(dir, "jobrun plan s.lua --json")
  tap.is(code, 0, "plan --json")
  local doc = json.decode(out) or { jobs = { {} } }
  tap.is(doc.jobs[1].env, { API_TOKEN = "<redacted>", DB_URL = "postgres://db.example/x", PLAIN = "visible" },
    "plan --json: <redacted>, the URL without its password, the rest as it is")
  local _, text = h.sh(dir, "jobrun plan s.lua")
  tap.ok(not (out .. text):find("s3cret-value", 1, true) and not (out .. text):find("db-pa55", 1, true),
    "neither secret in plan's text or JSON output")
  tap.is(select(1, h.sh(dir, "jobrun run s.lua --run-id r")), 0, "the job runs")
  tap.is(h.jobs_by_name(h.state(dir)).pl.spec.env.DB_URL, "postgres://db.example/x", "state.json agrees")
  tap.is(files_with(dir .. "/.jobrun", { "s3cret-value", "db-pa55" }), "", "no secret in the state directory")
  cleanup(dir)
end)

local function fake(dir, args) return h.fake_skypilot(dir, args) end

tap.test("skypilot: user:password in the suite's endpoint authenticates, and is never stored or shown", function()
  local dir = h.scratch()
  local f = fake(dir, { "--basic", "admin:Sky-Pa55word" })
  local ok, err = pcall(function()
  local endpoint = f.url:gsub("^http://", "http://admin:Sky-Pa55word@")
  h.write(dir .. "/s.lua", string.format([[
suite "cred" {
  backend = "skypilot",
  matrix = { i = { 1, 2 } },
  run = "python train.py",
  env = { FAKE_OUTCOME = "succeed", API_TOKEN = "sky-env-s3cret" },
  skypilot = { endpoint = %q },
}
]], endpoint))
  local secret = { "Sky-Pa55word", "sky-env-s3cret" }
  local outputs = {}
  -- Bounded: without its credential a run's jobs would stay pending, and wait with them.
  local function jobrun(command)
    local code, out, err = h.sh(dir, "unset SKYPILOT_API_SERVER_ENDPOINT SKYPILOT_SERVICE_ACCOUNT_TOKEN; "
      .. "HOME=" .. h.q(dir) .. " timeout 60 \"$JOBRUN_BIN\" " .. command)
    outputs[#outputs + 1] = out .. err
    return code, out, err
  end
  tap.is(select(1, jobrun("plan s.lua --json")), 0, "plan --json")
  tap.is(select(1, jobrun("plan s.lua")), 0, "plan")
  local lc, _, le = jobrun("launch s.lua --run-id L --json")
  tap.is(lc, 0, "launch authenticates with the suite's endpoint", le)
  local cc, _, ce = jobrun("check L --json")
  tap.ok(cc ~= 3, "a later check, in another process, authenticates too (exit " .. cc .. ")", ce)
  local wc, _, we = jobrun("wait L --json")
  tap.is(wc, 0, "wait sees both jobs succeed", we)
  local rc, _, re = jobrun("run s.lua --run-id R --json")
  tap.is(rc, 0, "run authenticates", re)
  local spec = h.jobs_by_name(h.state(dir))["cred_1"].spec
  tap.is(spec.options.endpoint, f.url, "state.json keeps the endpoint without user:password")
  local shown = {}
  for _, o in ipairs(outputs) do
    for _, s in ipairs(secret) do
      if o:find(s, 1, true) then shown[#shown + 1] = s end
    end
  end
  tap.is(shown, {}, "no secret in any output of plan, launch, check, wait, run")
  tap.is(files_with(dir .. "/.jobrun", secret), "", "no secret in any file of the state directory")
  end)
  f.proc:kill("TERM")
  f.proc:wait(true)
  f.proc:close()
  cleanup(dir)
  assert(ok, err)
end)

return tap.done()
