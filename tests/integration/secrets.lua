-- Secrets stay secret (issue 11): a job's environment never appears on a command line, and
-- credentials (variables named like them, user:password in URLs) reach neither plan's output
-- nor run/check --json nor any file of the state directory — while the jobs and the SkyPilot
-- client still get the real values, from memory.
local tap = require "tap"
local h = require "helpers"
local fs = require "jobrun.c.fs"
local json = require "jobrun.base.json"

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

tap.test("issue 21: names with KEY, AUTH, PASSPHRASE, … and a suite's own `secrets` are redacted everywhere", function()
  local dir = h.scratch()
  local values = { SSH_KEY = "v-ssh-key-1", ENCRYPTION_KEY = "v-enc-key-2", X_KEY_ID = "v-key-id-3", AUTH = "v-auth-4",
                   PASSPHRASE = "v-phrase-5", SESSION_COOKIE = "v-cookie-6", ODD_NAME = "v-odd-7" }
  local env = {}
  for k, v in pairs(values) do env[#env + 1] = string.format("%s = %q", k, v) end
  table.sort(env)
  h.write(dir .. "/s.lua", [[
suite "wide" {
  run = "env | grep -c '^[A-Z_]*=v-' > seen; sleep 1",
  secrets = { "ODD_NAME" },
  env = { ]] .. table.concat(env, ", ") .. [[, PLAIN = "visible" },
}
]])
  local list = {}
  for _, v in pairs(values) do list[#list + 1] = v end
  local code, out, err = h.sh(dir, "jobrun plan s.lua --json; jobrun plan s.lua")
  tap.ok(code == 0, "plan", err)
  local shown = {}
  for _, v in ipairs(list) do if out:find(v, 1, true) then shown[#shown + 1] = v end end
  tap.is(shown, {}, "plan and plan --json show none of the values")
  local lc, _, le = h.sh(dir, "jobrun launch s.lua --run-id r")
  tap.ok(lc == 0, "launched", le)
  -- The pool's work list is on disk while the job runs: look then, and after.
  tap.ok(h.eventually(function() return fs.read(dir .. "/seen") ~= nil end, 10), "the job ran")
  tap.is(files_with(dir .. "/.jobrun", list), "", "no value in state.json, jobs/pool-*.work.json or any file")
  tap.is(select(1, h.sh(dir, "jobrun wait r")), 0, "the job passes")
  tap.is((fs.read(dir .. "/seen") or ""):match("%d+"), "7", "the job got all seven real values")
  local spec_env = h.jobs_by_name(h.state(dir)).wide.spec.env
  tap.is(spec_env.SSH_KEY, "<redacted>", "state.json: SSH_KEY redacted")
  tap.is(spec_env.ODD_NAME, "<redacted>", "state.json: the suite's own secret redacted")
  tap.is(spec_env.PLAIN, "visible", "state.json: the rest shown")
  tap.is(files_with(dir .. "/.jobrun", list), "", "nor after the run")
  cleanup(dir)
end)

tap.test("issue 21: rerun without the suite never launches the placeholder: exit 2, naming the variable", function()
  local dir = h.scratch()
  local suite = [[
suite "gh" {
  run = "printf '%s\\n' \"$GH_TOKEN\" >> ../seen; test \"$GH_TOKEN\" != '<redacted>'",
  env = { GH_TOKEN = "real-tok-1" },
}
]]
  h.write(dir .. "/w/s.lua", suite)
  local rc0, _, re0 = h.sh(dir .. "/w", "jobrun run s.lua --run-id r")
  tap.ok(rc0 == 0, "the first run passes", re0)
  tap.is(fs.read(dir .. "/seen"), "real-tok-1\n", "with the real token")
  os.rename(dir .. "/w/s.lua", dir .. "/moved.lua")
  local code, _, err = h.sh(dir .. "/w", "unset GH_TOKEN; jobrun rerun --all")
  tap.ok(code == 2, "rerun --all without the suite: exit 2", err)
  tap.ok(err:find("GH_TOKEN", 1, true) and err:find(dir .. "/w/s.lua", 1, true),
    "the error names the variable and the suite it came from", err)
  tap.is(fs.read(dir .. "/seen"), "real-tok-1\n", "no job was launched")
  local job = h.jobs_by_name(h.state(dir .. "/w")).gh
  tap.is({ job.status, job.attempts }, { "SUCCEEDED", nil }, "the record is as it was: no new attempt")
  local _, log = h.sh(dir .. "/w", "cat .jobrun/runs/r/logs/*; cat ../seen")
  tap.ok(not log:find("<redacted>", 1, true), "no job ever saw <redacted>")

  -- A suite that is back but no longer gives the variable: the same refusal.
  h.write(dir .. "/w/s.lua", (suite:gsub('env = { GH_TOKEN = "real%-tok%-1" },', "")))
  code, _, err = h.sh(dir .. "/w", "unset GH_TOKEN; jobrun rerun --all")
  tap.ok(code == 2, "a changed suite without it: exit 2", err)
  tap.ok(err:find("GH_TOKEN", 1, true), "named", err)

  -- From jobrun's own environment, the rerun goes ahead with the real value.
  code, _, err = h.sh(dir .. "/w", "GH_TOKEN=real-tok-2 jobrun rerun --all")
  tap.ok(code == 0, "with GH_TOKEN exported, the rerun runs", err)
  tap.is(fs.read(dir .. "/seen"), "real-tok-1\nreal-tok-2\n", "with that value")
  tap.is(files_with(dir .. "/w/.jobrun", { "real-tok-1", "real-tok-2" }), "", "stored nowhere")
  cleanup(dir)
end)

tap.test("issue 21: nor a URL without its user:password", function()
  local dir = h.scratch()
  h.write(dir .. "/w/s.lua", [[
suite "db" {
  run = "printf '%s\\n' \"$DB_URL\" >> ../seen",
  env = { DB_URL = "postgres://app:db-pa55@db.example/x" },
}
]])
  local rc0, _, re0 = h.sh(dir .. "/w", "jobrun run s.lua --run-id r")
  tap.ok(rc0 == 0, "the first run passes", re0)
  local spec = h.jobs_by_name(h.state(dir .. "/w")).db.spec
  tap.is({ spec.env.DB_URL, spec.env_stripped }, { "postgres://db.example/x", { "DB_URL" } },
    "state.json: the URL without its password, and that it lost it")
  os.rename(dir .. "/w/s.lua", dir .. "/moved.lua")
  local code, _, err = h.sh(dir .. "/w", "unset DB_URL; jobrun rerun --all")
  tap.ok(code == 2 and err:find("DB_URL", 1, true) ~= nil, "without the suite: exit 2, naming DB_URL", err)
  code, _, err = h.sh(dir .. "/w", "DB_URL=postgres://other:x@elsewhere/y jobrun rerun --all")
  tap.ok(code == 2, "another URL in the environment is not taken for it", err)
  tap.is(fs.read(dir .. "/seen"), "postgres://app:db-pa55@db.example/x\n", "no job launched without the password")
  code, _, err = h.sh(dir .. "/w", "DB_URL=postgres://app:db-pa55@db.example/x jobrun rerun --all")
  tap.ok(code == 0, "the same URL with its password: the rerun runs", err)
  tap.is(fs.read(dir .. "/seen"), "postgres://app:db-pa55@db.example/x\npostgres://app:db-pa55@db.example/x\n",
    "with the password")
  tap.is(files_with(dir .. "/w/.jobrun", { "db-pa55" }), "", "stored nowhere")
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
