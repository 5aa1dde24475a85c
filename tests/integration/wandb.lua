-- The wandb pack (issue 26): a metric read from the job's W&B run, found from the run's URL in
-- the log, through W&B's GraphQL sampled-history query, against a fake of that API on loopback
-- (tests/wandb/fake_server.py): the series, an unauthorised key, an unknown run, an unreachable
-- server — and the API key in no file.
local tap = require "tap"
local h = require "helpers"
local fs = require "jobrun.c.fs"
local process = require "jobrun.c.process"
local json = require "jobrun.base.json"

local function fake(dir, args)
  local log = dir .. "/wandb." .. tostring(math.random(1e9)) .. ".jsonl"
  local argv = { "python3", os.getenv("JOBRUN_TOP") .. "/tests/wandb/fake_server.py", "--log", log }
  for _, a in ipairs(args) do argv[#argv + 1] = a end
  local f = h.listening(dir, argv)
  f.log = log
  return f
end

local stop = h.stop_server

local SUITE = [[
local wandb = use "wandb"
wandb.metric "overview/sps"
suite "wb" {
  run = "echo 'wandb: 🚀 View run at https://wandb.ai/metta-research/metta/runs/%s'; echo done",
  expect = { metrics = { ["overview/sps"] = ">= 40000" } },
}
]]

tap.test("the series comes from the W&B run named in the log; Metta's rule judges it", function()
  local dir = h.scratch()
  local f = fake(dir, { "--key", "k-XXsecretXX",
                        "--run", "metta-research/metta/good=overview/sps:1000,41000,42000,43000",
                        "--run", "metta-research/metta/slow=overview/sps:1000,30000,31000,32000" })
  h.write(dir .. "/good.lua", SUITE:format("good"))
  h.write(dir .. "/slow.lua", SUITE:format("slow"))
  local env = "WANDB_API_KEY=k-XXsecretXX WANDB_BASE_URL=" .. h.q(f.url) .. " "
  local code, out = h.sh(dir, env .. "jobrun run good.lua --run-id g --json")
  tap.is(code, 0, "good numbers: the run passes")
  local d = json.decode(out) or { jobs = { {} } }
  local m = (d.jobs[1].metrics or {})["overview/sps"] or {}
  tap.is({ m.n, m.value, m.agg }, { 4, 43000, "tail_mean" }, "four points; tail_mean of the last 25 %")
  local reqs = {}
  for line in (fs.read(f.log) or ""):gmatch("[^\n]+") do reqs[#reqs + 1] = json.decode(line) end
  tap.is(#reqs, 1, "one request for the job")
  local body = json.decode(reqs[1] and reqs[1].body or "null") or { variables = {} }
  tap.like(body.query or "", "query RunSampledHistory%(%$project: String!, %$entity: String!, %$name: String!, "
    .. "%$specs: %[JSONString!%]!%)", "W&B's public client's query")
  tap.is({ body.variables.entity, body.variables.project, body.variables.name },
    { "metta-research", "metta", "good" }, "the run from the log's URL")
  tap.is(json.decode(body.variables.specs and body.variables.specs[1] or "null"),
    { keys = { "_step", "overview/sps" }, samples = 1000 }, "one spec: _step and the key")
  code, out = h.sh(dir, env .. "jobrun run slow.lua --run-id s")
  tap.is(code, 1, "slow: the run fails")
  tap.like(out, "overview/sps: expected >= 40000, saw 32000 %(tail_mean of 4 points%)", "in Metta's words")
  local _, leaked = h.sh(dir, "grep -r -l -F XXsecretXX .jobrun || true")
  tap.is(leaked, "", "the API key is in no file of the state directory")
  stop(f)
end)

tap.test("unauthorised, unknown run, unreachable: metric missing (W&B: why), never a hang", function()
  local dir = h.scratch()
  local f = fake(dir, { "--key", "right", "--run", "metta-research/metta/good=overview/sps:50000" })
  h.write(dir .. "/good.lua", SUITE:format("good"))
  h.write(dir .. "/gone.lua", SUITE:format("gone"))
  local code, out = h.sh(dir, "WANDB_API_KEY=wrong WANDB_BASE_URL=" .. h.q(f.url) .. " jobrun run good.lua --run-id a")
  tap.is(code, 1, "a wrong key: the job fails its expectation")
  tap.like(out, "overview/sps: metric missing %(W&B: unauthorised %(HTTP 401%)%)", "says W&B refused the key")
  code, out = h.sh(dir, "WANDB_API_KEY=right WANDB_BASE_URL=" .. h.q(f.url) .. " jobrun run gone.lua --run-id b")
  tap.is(code, 1, "an unknown run fails")
  tap.like(out, "metric missing %(W&B: no run metta%-research/metta/gone%)", "names the run")
  out = select(2, h.sh(dir, "WANDB_API_KEY= jobrun run good.lua --run-id c"))
  tap.like(out, "metric missing %(W&B: no WANDB_API_KEY%)", "no key: says so")
  stop(f)
  local t0 = process.now()
  code, out = h.sh(dir, "WANDB_API_KEY=right WANDB_BASE_URL=http://127.0.0.1:9 jobrun run good.lua --run-id d")
  tap.is(code, 1, "unreachable: fails")
  tap.like(out, "metric missing %(W&B: unreachable", "says W&B could not be reached")
  tap.ok(process.now() - t0 < 30, "and the run ended (bounded by the request timeouts)")
end)

tap.done()
