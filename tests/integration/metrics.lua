-- Metrics end to end on the local backend: multi-node jobs whose throughput the job fakes,
-- judged by rules, references per axis and the suite's scaling check, and shown in the table,
-- --json, JUnit and the Markdown summary; $JOBRUN_METRICS written by every job.
local tap = require "tap"
local h = require "helpers"
local fs = require "jobrun.c.fs"
local json = require "jobrun.base.json"

-- A trainer that logs from its master rank only, as trainers do: tps per step for the job's
-- node count ($TPS_<N>), a progress line with loss, and its own JSON lines.
local SUITE = [[
metric "tps" {}
metric "loss" {}
suite "scale" {
  matrix = { nodes = { 1, 2, 4 } },
  env = { TPS_1 = "%s", TPS_2 = "%s", TPS_4 = "%s" },
  run = [=[
    if [ "$JOBRUN_NODE_RANK" = 0 ]; then
      eval tps=\$TPS_$JOBRUN_NUM_NODES
      for i in 1 2 3 4 5 6 7 8; do
        printf 'step %%d | loss: %%d.5 | tps: %%s\n' "$i" "$((9 - i))" "$tps"
        printf '{"overview/sps": %%d}\n' "$((tps * 10))" >> "$JOBRUN_METRICS"
      done
    fi
  ]=],
  expect = { metrics = {
    tps = { ref = { nodes = { [1] = 1000, [4] = 3800 } }, tol = "-5%%" },
    ["overview/sps"] = ">= 9000",
    loss = { "<= 1.5", agg = "last" },
  } },
  scaling = { axis = "nodes", metric = "tps", min_efficiency = 0.9 },
}
]]

-- series_lines(run_dir) -> { [key] = the last line of the run's series file for that job key }
local function series_lines(run_dir)
  local out = {}
  for line in (fs.read(run_dir .. "/metrics/series.jsonl") or ""):gmatch("[^\n]+") do
    local doc = json.decode(line)
    if type(doc) == "table" and doc.key then out[doc.key] = doc end
  end
  return out
end

local function by_name(doc)
  local out = {}
  for _, j in ipairs(doc and doc.jobs or {}) do out[j.name] = j end
  return out
end

tap.test("a run that scales badly: references, the scaling check and every report", function()
  local dir = h.scratch()
  h.write(dir .. "/s.lua", SUITE:format("1000", "1940", "3440"))
  local code, out = h.sh(dir, "jobrun run s.lua --run-id M --json --junit j.xml --summary sum.md")
  tap.is(code, 1, "the run fails")
  local doc = json.decode(out) or {}
  local jobs = by_name(doc)
  local one, four = jobs.scale_1 or {}, jobs.scale_4 or {}
  tap.is(one.verdict, "pass", "1 node: within its reference")
  tap.is(four.verdict, "fail", "4 nodes: below its reference")
  tap.is(four.mismatches, { "tps: expected >= 3610 (ref 3800 -5% for nodes=4), saw 3440 (tail_mean of 8 points)" },
    "the mismatch in words")
  local m = one.metrics and one.metrics.tps or {}
  tap.is({ m.value, m.agg, m.n, m.n_skipped, m.first, m.last, m.min, m.max },
    { 1000, "tail_mean", 8, 0, 1000, 1000, 1000, 1000 }, "the result's metric record")
  tap.is({ m.series, m.series_step }, { { 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000 }, 1 },
    "the result's record has its series (from the run's series file)")
  local sf = series_lines(dir .. "/.jobrun/runs/M").scale_1 or {}
  tap.is(sf.job, "scale_1", "the run's series file has a line for the job, naming it")
  tap.is(sf.metrics and sf.metrics.tps, { series = { 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000 },
    series_step = 1 },
    "and holds each metric's series: tps's eight points")
  tap.is(sf.metrics and sf.metrics.loss and sf.metrics.loss.series, { 8.5, 7.5, 6.5, 5.5, 4.5, 3.5, 2.5, 1.5 },
    "loss's")
  local st = fs.read(dir .. "/.jobrun/runs/M/state.json") or ""
  tap.ok(st:find('"tps":{"value":1000,', 1, true) and not st:find('"series', 1, true),
    "state.json keeps each metric's summary, no series")
  local sps = one.metrics and one.metrics["overview/sps"] or {}
  tap.is({ sps.value, sps.n }, { 10000, 8 }, "$JOBRUN_METRICS: a key with no declaration")
  tap.is(one.metrics and one.metrics.loss and one.metrics.loss.value, 1.5, "loss, last")
  tap.ok(fs.stat(dir .. "/.jobrun/runs/M/logs/scale_1.metrics.jsonl"), "the job's metrics file is in the run")
  local check = doc.checks and doc.checks[1] or {}
  tap.is(check.ok, false, "the scaling check fails")
  tap.is(check.text, "1→2: 0.97, 1→4: 0.86 ✗", "each step's efficiency")

  local _, table_out = h.sh(dir, "jobrun check M")
  tap.like(table_out, "Job%s+Status.-Verdict%s+loss%s+overview/sps%s+tps%s+nodes",
    "metrics with expectations are columns")
  tap.like(table_out, "scale_4 .- 3440 ", "the 4-node job's tps")
  tap.like(table_out, "Check: scaling of tps over nodes %(min efficiency 0.9%): 1→2: 0.97, 1→4: 0.86 ✗ — fail",
    "the suite-level check")
  local xml = fs.read(dir .. "/j.xml") or ""
  tap.like(xml, '<property name="metric.tps" value="3440"/>', "JUnit: the metric as a property")
  tap.like(xml, '<property name="metric.tps.agg" value="tail_mean"/>', "and how it was taken")
  local md = fs.read(dir .. "/sum.md") or ""
  tap.like(md, "%*%*Metrics%*%*", "the summary's metrics table")
  tap.like(md, "| `scale_4` |[^\n]-| ❌ 3440 %(tail%\\_mean of 8%) |", "a row with the failing value marked")
  tap.like(md, "❌ scaling of tps over nodes: 1→2: 0%.97, 1→4: 0%.86 ✗", "and the check")
end)

tap.test("a run that scales well passes, and a missing metric is a mismatch in words", function()
  local dir = h.scratch()
  h.write(dir .. "/s.lua", SUITE:format("1000", "1980", "3900"))
  local code, out = h.sh(dir, "jobrun run s.lua --json")
  tap.is(code, 0, "every job and the check pass")
  local doc = json.decode(out) or {}
  tap.is(doc.checks and doc.checks[1] and doc.checks[1].text, "1→2: 0.99, 1→4: 0.97", "efficiencies")
  h.write(dir .. "/t.lua", [[
suite "quiet" { run = "echo nothing to see", expect = { metrics = { sps = ">= 40000" } } }
]])
  code, out = h.sh(dir, "jobrun run t.lua --json")
  tap.is(code, 1, "fails")
  local job = (json.decode(out) or { jobs = { {} } }).jobs[1] or {}
  tap.is(job.mismatches, { "sps: metric missing" }, "sps: metric missing")
end)

tap.test("analyze --json shows a log's metrics", function()
  local dir = h.scratch()
  h.write(dir .. "/s.lua", 'metric "loss" {}\nsuite "a" { run = "true" }\n')
  h.write(dir .. "/x.log", "{'loss': 2.5, 'epoch': 0.1}\n{'loss': 1.5, 'epoch': 0.2}\n")
  local code, out = h.sh(dir, "jobrun analyze x.log --suite s.lua --json")
  tap.is(code, 0, "analyze")
  local doc = json.decode(out) or {}
  tap.is(doc.metrics and doc.metrics.loss and { doc.metrics.loss.value, doc.metrics.loss.n }, { 1.5, 2 },
    "tail_mean of 2 points: the last one")
end)

tap.test("the release example: Metta's acceptance rules pass good numbers and fail a low sps in words", function()
  local dir = h.scratch()
  local cmd = "DATA_DIR=" .. h.q(dir .. "/data") .. " jobrun script "
    .. h.q(os.getenv("JOBRUN_TOP") .. "/examples/release.lua")
  local code, out, err = h.sh(dir, cmd)
  tap.is(code, 0, "good numbers: the release passes", err)
  tap.like(out, "arena_single_gpu%s+SUCCEEDED%s+sps 45000%s+heart.gained 0.54%s+pass", "1 GPU: sps and heart.gained")
  tap.like(out, "arena_multi_gpu_4x4%s+SUCCEEDED%s+sps 180000%s+heart.gained 1.8%s+pass", "4×4")
  local dir2 = h.scratch()
  code, out = h.sh(dir2, "FAKE_SPS=30000 " .. cmd:gsub("/data", "/data2"))
  tap.is(code, 1, "sps too low: the release fails")
  tap.like(out,
    "arena_single_gpu[^\n]*fail\n    overview/sps: expected >= 40000, saw 30000 %(tail_mean of 20 points%)\n",
    "Metta's message")
  tap.like(out, "arena_multi_gpu_4x4[^\n]*pass", "4×4 at 30000 per node still makes 120000")
  tap.like(out, "1/2 training runs accepted", "the summary")
end)

tap.test("a baseline from history: the job's last passing runs, not yet, required, and a drop past tol", function()
  local dir = h.scratch()
  h.write(dir .. "/s.lua", [[
suite "bl" {
  run = "echo \"tps=${TPS:-100}\"",
  expect = { metrics = { tps = { baseline = 3, tol = "-5%", require_baseline = os.getenv("REQ") == "1" } } },
}
]])
  local code = h.sh(dir, "jobrun run s.lua --run-id b1")
  local out
  tap.is(code, 0, "no history: no baseline yet, which is no failure")
  h.sh(dir, "TPS=110 jobrun run s.lua --run-id b2")
  code, out = h.sh(dir, "REQ=1 jobrun run s.lua --run-id b3")
  tap.is(code, 1, "require_baseline with 2 earlier runs of 3: a failure")
  tap.like(out, "tps: no baseline yet %(2 of 3 runs%)", "says how many runs it has")
  h.sh(dir, "TPS=90 jobrun run s.lua --run-id b4")
  code, out = h.sh(dir, "TPS=96 jobrun run s.lua --run-id b5 --json")
  local doc = json.decode(out) or { jobs = { {} } }
  local b = ((doc.jobs[1].metrics or {}).tps or {}).baseline or {}
  tap.is({ b.runs, b.of, b.value }, { 3, 3, 100 }, "the mean of the last 3 passing runs (b4, b2, b1: 90, 110, 100)")
  tap.is(code, 0, "96 >= 95% of 100")
  code, out = h.sh(dir, "TPS=90 jobrun run s.lua --run-id b6")
  tap.is(code, 1, "a drop past the tolerance fails")
  tap.like(out, "tps: expected >= 93%.7333 %(baseline 98%.6667 over the last 3 passing runs, %-5%%%), saw 90 "
    .. "%(tail_mean of 1 point%)", "in words, against the baseline of b5, b4 and b2 (96, 90, 110)")
  code = h.sh(dir, "jobrun plan " .. h.q(h.write(dir .. "/bad.lua",
    'suite "x" { run = "true", expect = { metrics = { tps = { baseline = 0, tol = "-5%" } } } }\n')))
  tap.is(code, 2, "baseline = 0 is refused at plan time")
end)

tap.test("the HTML report: a chart of each job's series, and its trend over the last runs", function()
  local dir = h.scratch()
  h.write(dir .. "/s.lua", [[
suite "ch" {
  matrix = { n = { 1, 2 } },
  run = "for i in 1 2 3 4 5; do echo \"tps=$((i * {n} * ${BASE:-100}))\"; done",
  expect = { metrics = { tps = ">= 1" } },
}
]])
  h.sh(dir, "BASE=100 jobrun run s.lua --run-id t1")
  h.sh(dir, "BASE=120 jobrun run s.lua --run-id t2")
  tap.is(h.sh(dir, "BASE=90 jobrun run s.lua --run-id t3 --html page.html"), 0, "the third run passes")
  local page = fs.read(dir .. "/page.html") or ""
  tap.like(page, '<h2 id="metrics">Metrics</h2>', "a metrics section")
  local fig = page:match('<figure class="chart" data%-job="ch_2" data%-metric="tps">(.-)</figure>') or ""
  local series = fig:match('<polyline [^>]*points="([^"]*)"') or ""
  local n = 0
  for _ in series:gmatch("%S+") do n = n + 1 end
  tap.is(n, 5, "ch_2's chart: its five points in this run")
  local _, svgs = fig:gsub("<svg ", "")
  tap.is(svgs, 2, "and a second chart: its trend over the runs")
  tap.like(fig, "ch_2</span>: 810 %(tail_mean%) · 3 runs", "captioned with the value and how many runs")
  -- the trend rises then falls: t1's value (tail_mean 1,000) < t2's (1,200) > t3's (900)
  local trend = {}
  for y in (fig:match('over runs</title><polyline [^>]*points="([^"]*)"') or ""):gmatch(",([%d.]+)") do
    trend[#trend + 1] = tonumber(y)
  end
  tap.ok(#trend == 3 and trend[2] < trend[1] and trend[3] > trend[1], "the trend's shape follows the runs' values")

  -- The chart is the series file's: ch_2's five points, rising (an SVG's y grows downwards).
  local file = dir .. "/.jobrun/runs/t3/metrics/series.jsonl"
  local sf = series_lines(dir .. "/.jobrun/runs/t3").ch_2 or {}
  tap.is(sf.metrics and sf.metrics.tps and sf.metrics.tps.series, { 180, 360, 540, 720, 900 },
    "ch_2's line in the series file")
  local ys = {}
  for y in series:gmatch(",([%d.]+)") do ys[#ys + 1] = tonumber(y) end
  tap.ok(#ys == 5 and ys[1] > ys[2] and ys[2] > ys[3] and ys[3] > ys[4] and ys[4] > ys[5],
    "the chart draws it: five points, each above the last")
  -- ch_1's line damaged (cut), ch_2's gone: the page is made, without those charts, saying why.
  local lines = {}
  for line in (fs.read(file) or ""):gmatch("[^\n]+") do
    if line:find('"key":"ch_1"', 1, true) then lines[#lines + 1] = line:sub(1, 30)
    elseif not line:find('"key":"ch_2"', 1, true) then lines[#lines + 1] = line end
  end
  h.write(file, table.concat(lines, "\n") .. "\n")
  local code, _, err = h.sh(dir, "jobrun check t3 --html page2.html")
  tap.is({ code, err }, { 0, "" }, "check --html still passes, saying nothing on stderr")
  page = fs.read(dir .. "/page2.html") or ""
  local f1 = page:match('<figure class="chart" data%-job="ch_1" data%-metric="tps">(.-)</figure>') or ""
  local f2 = page:match('<figure class="chart" data%-job="ch_2" data%-metric="tps">(.-)</figure>') or ""
  tap.like(f1, '<span class="meta no%-series">no chart: the series file is damaged %(its line is not a '
    .. 'JSON object with metrics%)</span>', "ch_1: no chart, its line of the series file is damaged")
  tap.like(f2, '<span class="meta no%-series">no chart: no series of this job in the series file</span>',
    "ch_2: no chart, no line of its own")
  local _, svgs1 = f1:gsub("<svg ", "")
  tap.is(svgs1, 1, "ch_1: one chart left, its trend over the runs")
  tap.like(f2, "ch_2</span>: 810 %(tail_mean%) · 3 runs", "the caption and the trend are still there")
  os.remove(file)
  tap.is(h.sh(dir, "jobrun check t3 --html page3.html"), 0, "without the series file, check --html passes")
  page = fs.read(dir .. "/page3.html") or ""
  local _, notes = page:gsub('<span class="meta no%-series">no chart: no series file</span>', "")
  tap.is(notes, 2, "and each chart says there is no series file")
end)

tap.test("diff shows metric deltas; a drop past the tolerance is a regression (exit 1), within it not", function()
  local dir = h.scratch()
  h.write(dir .. "/s.lua", 'suite "df" {\n  run = "echo tps=${TPS:-100}",\n'
    .. '  expect = { metrics = { tps = { ">= 1", tol = "-5%" } } },\n}\n')
  h.sh(dir, "jobrun run s.lua --run-id a")
  h.sh(dir, "TPS=94 jobrun run s.lua --run-id b")
  h.sh(dir, "TPS=96 jobrun run s.lua --run-id c")
  local code, out = h.sh(dir, "jobrun diff a b")
  tap.is(code, 1, "a 6 % drop with a 5 % tolerance: exit 1")
  tap.like(out, "df%s+regressed.*tps 100→94 %(%-6%.0%%%) ✗", "the delta in %, marked")
  code, out = h.sh(dir, "jobrun diff a c")
  tap.is(code, 0, "a 4 % drop: exit 0")
  tap.like(out, "df%s+changed.*tps 100→96 %(%-4%.0%%%)", "still shown")
  local _, js = h.sh(dir, "jobrun diff a b --json")
  local m = (((json.decode(js) or {}).jobs or {})[1] or {}).metrics or {}
  tap.is(m[1] and { m[1].name, m[1].a, m[1].b, m[1].change_pct, m[1].regressed }, { "tps", 100, 94, -6, true },
    "--json: the metric's change")
  code, out = h.sh(dir, "jobrun history --metric tps")
  tap.is(code, 0, "history --metric")
  tap.like(out, "Verdict%s+tps\n.-%s94\n.-%s96\ntps: 100 → 96 over these runs %(%-4%.0%%%)",
    "the metric per attempt, and its change over the runs")
  -- A rerun's attempts keep their metrics: diff RUN compares them.
  h.write(dir .. "/r.lua", 'suite "rr" {\n  run = "echo tps=$(cat ' .. dir .. '/tps); exit $(cat ' .. dir .. '/rc)",\n'
    .. '  expect = { exit_code = 0, metrics = { tps = { ">= 1", tol = "-5%" } } },\n}\n')
  h.write(dir .. "/tps", "100\n"); h.write(dir .. "/rc", "1\n")
  h.sh(dir, "jobrun run r.lua --run-id r")
  h.write(dir .. "/tps", "80\n"); h.write(dir .. "/rc", "0\n")
  h.sh(dir, "jobrun rerun r")
  _, out = h.sh(dir, "jobrun diff r")
  tap.like(out, "rr%s+fixed.*tps 100→80 %(%-20%.0%%%) ✗", "diff RUN: the attempts' metrics, attempt 1 against 2")
end)

return tap.done()
