-- Metrics (README "Metrics"): each format trainers print, on excerpts written from what those tools
-- print (Hugging Face's Trainer, tqdm, Lightning, torchtitan, JSON lines, key=value), the
-- aggregates, expectations and their messages, scaling, and bad input at file:line.
local tap = require "tap"
local fs = require "jobrun.c.fs"
local json = require "jobrun.base.json"
local cm = require "jobrun.c.metrics"
local metrics = require "jobrun.judge.metrics"
local dsl = require "jobrun.suite.dsl"
local plan = require "jobrun.plan"
local helpers = require "helpers"

local dir = helpers.scratch()
local n = 0
local function log(text)
  n = n + 1
  local path = dir .. "/log" .. n
  assert(fs.write_atomic(path, text))
  return path
end

-- found(text, names [, mexpect]) -> { NAME = record } for metrics found by name.
local function found(text, names, mexpect)
  local decl = {}
  for i, name in ipairs(names) do decl[i] = { name = name } end
  return assert(metrics.collect(log(text), decl, mexpect))
end

local function series(rec) return rec and rec.series end

tap.test("Hugging Face Trainer dict lines; train_loss is not loss", function()
  local m = found(table.concat({
    "  5%|▌         | 10/200 [00:04<01:20,  2.36it/s]",
    "{'loss': 2.3124, 'grad_norm': 3.1415927410125732, 'learning_rate': 4.75e-05, 'epoch': 0.05}",
    "{'loss': 1.9876, 'grad_norm': 2.718281745910645, 'learning_rate': 4.5e-05, 'epoch': 0.1}",
    "{'eval_loss': 1.8, 'eval_runtime': 3.2, 'eval_samples_per_second': 312.5, 'epoch': 0.1}",
    "{'train_runtime': 84.2, 'train_samples_per_second': 19.0, 'train_loss': 2.1, 'epoch': 1.0}",
  }, "\n") .. "\n", { "loss", "learning_rate", "epoch" })
  tap.is(series(m.loss), { 2.3124, 1.9876 }, "loss: the two logged points, not eval_loss or train_loss")
  tap.is(m.learning_rate.first, 4.75e-05, "exponents")
  tap.is(m.epoch.n, 4, "epoch on every dict line")
end)

tap.test("JSON lines, nested keys, a string value that is not a number", function()
  local m = found(table.concat({
    '{"step": 1, "loss": 2.5, "throughput": {"tps": 5123.5}}',
    '{"step": 2, "loss": "NaN", "throughput": {"tps": 5200}}',
    '{"step": 3, "loss": 2.25, "val/loss": 9}',
  }, "\n") .. "\n", { "loss", "tps" })
  tap.is(series(m.loss), { 2.5, 2.25 }, "loss; val/loss is another key")
  tap.is(m.loss.n_skipped, 1, "\"NaN\" skipped and counted")
  tap.is(series(m.tps), { 5123.5, 5200 }, "a key inside a nested object")
end)

tap.test("tqdm and Lightning progress bars: every \\r redraw a point", function()
  local bar = "Epoch 0:  %d%%|%s| %d/10 [00:0%d<00:04, 4.%d0it/s, loss=%s, v_num=0]"
  local parts = {}
  for i, v in ipairs({ "0.693", "0.61", "0.5", "0.472" }) do
    parts[#parts + 1] = string.format(bar, i * 10, string.rep("█", i) .. string.rep(" ", 10 - i), i, i, i, v)
  end
  local lightning = "Epoch 1: 100%|██████████| 50/50 [00:02<00:00, 20.10it/s, v_num=3, train_loss_step=0.412, "
    .. "loss=0.398, val_loss=0.52, train_loss_epoch=0.44]"
  local m = found(table.concat(parts, "\r") .. "\n" .. lightning .. "\n", { "loss", "v_num" })
  tap.is(series(m.loss), { 0.693, 0.61, 0.5, 0.472, 0.398 }, "each redraw, then Lightning's loss (not *_loss*)")
  tap.is(m.v_num.n, 5, "v_num on every bar")
end)

tap.test("torchtitan's table: ANSI colours, thousands separators, %", function()
  local e = "\27["
  local line = "[titan] 2026-01-05 10:12:01,123 - root - INFO - " .. e .. "31mstep: %2d  " .. e .. "32mloss: %7.4f  "
    .. e .. "33mmemory: 27.46GiB(28.91%%)  " .. e .. "34mtps: %s  " .. e .. "36mtflops: 210.47  "
    .. e .. "35mmfu: %s%%" .. e .. "39m"
  local text = string.format(line, 1, 12.2502, "1,342", "13.57") .. "\n"
    .. string.format(line, 10, 7.9321, "5,123", "40.10") .. "\n"
    .. string.format(line, 20, 6.1, "12,345,678", "41.2") .. "\n"
  local m = found(text, { "loss", "tps", "mfu", "step" })
  tap.is(series(m.tps), { 1342, 5123, 12345678 }, "thousands separators")
  tap.is(series(m.mfu), { 13.57, 40.1, 41.2 }, "a trailing %")
  tap.is(series(m.loss), { 12.2502, 7.9321, 6.1 }, "loss after a colour code")
  tap.is(series(m.step), { 1, 10, 20 }, "step")
end)

tap.test("NAME=V and NAME: V; whole keys only", function()
  local m = found(table.concat({
    "iter 10: loss=2.5 lr=1e-4 loss_scale=65536 sps=41000",
    "iter 20: loss: 2.4, lr: 2.5E-04, overview/sps: 42000",
    "train/loss: 99 val_loss: 98 myloss=97 loss.avg=96",
    "iter 30 | loss = -0.5 | grad = +1.25",
    "loss: nan",
    "loss: None",
    "the loss went down",
  }, "\n") .. "\n", { "loss", "lr", "sps", "overview/sps", "grad" })
  tap.is(series(m.loss), { 2.5, 2.4, -0.5 }, "loss only where loss is the whole key")
  tap.is(m.loss.n_skipped, 2, "nan and None skipped and counted")
  tap.is(series(m.lr), { 1e-4, 2.5e-4 }, "exponents, either case")
  tap.is(series(m.sps), { 41000 }, "sps is not overview/sps")
  tap.is(series(m["overview/sps"]), { 42000 }, "a key with a slash")
  tap.is(series(m.grad), { 1.25 }, "a plus sign")
end)

tap.test("values as read from text", function()
  tap.is(cm.number("5,123"), 5123, "thousands")
  tap.is(cm.number("1,234,567.5"), 1234567.5, "thousands and a fraction")
  tap.is(cm.number("40.1%"), 40.1, "%")
  tap.is(cm.number("1,23"), 1, "a comma not followed by three digits ends the number")
  tap.is(cm.number("1.5e3"), 1500, "exponent")
  tap.is(cm.number("0.1"), 0.1, "exactly what tonumber reads")
  tap.is(cm.number("123456789012345678901234"), 1.2345678901234568e23, "long mantissas")
  tap.is(cm.number("nan"), nil, "nan")
  tap.is(cm.number("inf"), nil, "inf")
  tap.is(cm.number("-"), nil, "a lone sign")
end)

tap.test("pattern and fn metrics", function()
  local path = log(table.concat({
    "iter 1: loss 3.25 | 5,000 tok/s",
    "iter 2: loss 3.0 | 5,500 tok/s, 5,600 tok/s",
    "iter 3: loss nan | 6,000 tok/s",
  }, "\n") .. "\n")
  local m = assert(metrics.collect(path, {
    { name = "iter_loss", pattern = "^iter %d+: loss (%S+)" },
    { name = "tokens", contains = "tok/s", fn = function(line, emit)
        for v in line:gmatch("([%d,]+) tok/s") do emit(v) end
      end },
  }))
  tap.is(series(m.iter_loss), { 3.25, 3.0 }, "the first capture")
  tap.is(m.iter_loss.n_skipped, 1, "a capture that is not a number is counted")
  tap.is(series(m.tokens), { 5000, 5500, 5600, 6000 }, "fn emits any number of points per line")
  tap.is(metrics.literal_of("^iter %d+: loss (%S+)"), ": loss ", "the pattern's prefilter")
  tap.is(metrics.literal_of("tok/s%s*=%s*([%d.]+)"), "tok/s", "prefilter before a class")
  local bad = assert(metrics.collect(path, {
    { name = "boom", contains = "iter", fn = function() error("no number here") end },
    { name = "slow", contains = "iter", budget = 0.05, fn = function() while true do end end },
  }))
  -- seen: the fn's own table for one log — a second read of the same log starts afresh.
  local decl = { { name = "once", contains = "tok/s", fn = function(_, emit, _, seen)
    if not seen.done then seen.done = true; emit(1) end
  end } }
  tap.is({ series(assert(metrics.collect(path, decl)).once), series(assert(metrics.collect(path, decl)).once) },
    { { 1 }, { 1 } }, "seen is per log read: the second read counts as the first did")
  tap.like(bad.boom.error, "no number here", "an fn error is kept on the metric")
  tap.like(bad.slow.error, "CPU budget", "an fn past its budget is stopped")
  tap.is(metrics.judge(bad, { boom = ">= 1" }, {})[1]:match("^boom: metric fn failed"), "boom: metric fn failed",
    "and judged a mismatch")
end)

tap.test("aggregates", function()
  local lines = {}
  for i = 1, 10 do lines[i] = "loss=" .. i end
  local text = table.concat(lines, "\n") .. "\n"
  local want = { last = 10, first = 1, min = 1, max = 10, mean = 5.5, median = 5.5, p95 = 10, count = 10,
                 tail_mean = 9, ["tail_mean:0.5"] = 8 }
  for agg, v in pairs(want) do
    local m = found(text, { "loss" }, { loss = { ">= 0", agg = agg } })
    tap.is(m.loss.value, v, agg)
    tap.is(m.loss.agg, agg, agg .. " named in the record")
  end
  -- tail_mean: the last ceil(25 %) of the points (10 points: the last 3, mean 9 above).
  tap.is(found("loss=1\nloss=2\nloss=3\nloss=100\nloss=200\n", { "loss" }).loss.value, 150,
    "5 points: the mean of the last 2 (ceil of 1.25)")
  tap.is(found(text, { "loss" }).loss.agg, "tail_mean", "tail_mean is the default")
  tap.is(found("loss=1\nloss=2\nloss=3\nloss=4\nloss=5\nloss=6\nloss=7\nloss=8\nloss=9\nloss=10\n"
    .. "loss=11\nloss=12\nloss=13\nloss=14\nloss=15\nloss=16\nloss=17\nloss=18\nloss=19\nloss=20\n",
    { "loss" }, { loss = { ">= 0", agg = "p95" } }).loss.value, 19, "p95: nearest rank")
end)

tap.test("tail_mean against a plain count, for many sizes and fractions", function()
  local bad = {}
  for _, frac in ipairs({ 0.1, 0.25, 1 / 3, 0.5, 0.9, 1 }) do
    local acc = cm.acc(frac)
    local values = {}
    for k = 1, 20000 do
      local v = (k * 7919) % 1000
      values[k] = v
      acc:push(v)
      if k <= 300 or k % 997 == 0 then
        local take = math.max(1, math.ceil(frac * k - 1e-9))
        local sum = 0
        for i = k - take + 1, k do sum = sum + values[i] end
        local got = acc:stats().tail_mean
        if math.abs(got - sum / take) > 1e-9 then bad[#bad + 1] = string.format("%g of %d", frac, k) end
      end
    end
  end
  tap.is(bad, {}, "the mean of the last ceil(fraction × n) points, every time")
end)

tap.test("series: at most 200 points, downsampled in order", function()
  local lines = {}
  for i = 1, 1000 do lines[i] = "step " .. i .. " loss: " .. i end
  local m = found(table.concat(lines, "\n") .. "\n", { "loss" })
  tap.ok(#m.loss.series <= 200 and #m.loss.series >= 100, "between 100 and 200 points: " .. #m.loss.series)
  tap.is(m.loss.n, 1000, "every point counted")
  local sorted = true
  for i = 2, #m.loss.series do if m.loss.series[i] <= m.loss.series[i - 1] then sorted = false end end
  tap.ok(sorted, "bucket means keep the order")
  tap.is(m.loss.series[1], (1 + m.loss.series_step) / 2, "each point is its bucket's mean")
  tap.is(m.loss.tail_mean, nil, "only the declared fields")
  tap.is(m.loss.value, (751 + 1000) / 2, "tail_mean of the last 250")
end)

tap.test("a log bigger than one read, with a line longer than any kept", function()
  local parts, want = {}, 0
  for i = 1, 120000 do
    parts[#parts + 1] = string.format("step %d | loss: %d.5 | \27[1mtps: 1,%03d\27[0m", i, i % 7, i % 1000)
    want = want + 1
  end
  parts[#parts + 1] = "x" .. string.rep("y", 200000) .. " loss: 3.5"
  parts[#parts + 1] = "loss: 4.5"
  local m = found(table.concat(parts, "\n") .. "\n", { "loss", "tps" })
  tap.is(m.loss.n, want + 2, "every line's loss across reads, the long line's too")
  tap.is(m.loss.last, 4.5, "the last line")
  tap.is(m.tps.n, want, "tps through ANSI codes")
  tap.is(m.tps.max, 1999, "thousands")
end)

tap.test("a needle that starts with a line break ends (found by tests/fuzz/metrics_fuzz.c)", function()
  local path = log("a\n\n\nb\rc\n")
  local calls = 0
  tap.ok(cm.scan(path, { { needle = "\n" }, { needle = "\r" } }, function() calls = calls + 1 end), "the scan ends")
  tap.is(calls, 5, "once per break, each on an empty line")
end)

tap.test("$JOBRUN_METRICS: every key of its JSON lines is a metric", function()
  local path = log("loss: 9\n")
  local file = dir .. "/m.jsonl"
  assert(fs.write_atomic(file, '{"overview/sps": 41000, "env_agent/heart.gained": 0.5}\n'
    .. 'not json\n{"overview/sps": 43000, "env_agent/heart.gained": "nan"}\n'))
  local m = assert(metrics.collect(path, { { name = "loss" } }, nil, file))
  tap.is(series(m["overview/sps"]), { 41000, 43000 }, "a key with no declaration")
  tap.is(m["env_agent/heart.gained"].n_skipped, 1, "a value that is not a number is counted")
  tap.is(m.loss.value, 9, "the log's metrics too")
  tap.is(metrics.collect(path, {}, nil, dir .. "/absent.jsonl"), nil, "nothing to look for: nil")
end)

tap.test("$JOBRUN_METRICS: Python's bare NaN and Infinity (json.dumps writes them)", function()
  local path = log("loss: 9\n")
  local file = dir .. "/nan.jsonl"
  assert(fs.write_atomic(file, '{"sps": 41000, "loss": NaN}\n{"sps": 42000, "loss": Infinity}\n{"loss": 2.5}\n'))
  local m = assert(metrics.collect(path, {}, nil, file))
  tap.is(series(m.sps), { 41000, 42000 }, "the lines are read: their other keys count")
  tap.is({ m.loss.n, m.loss.n_skipped }, { 1, 2 }, "NaN and Infinity skipped and counted")
end)

tap.test("expectations: rules, aggregates, refs by axis, missing metrics, messages", function()
  local lines = {}
  for i = 1, 1200 do lines[i] = "overview/sps: 38210" end
  local path = log(table.concat(lines, "\n") .. "\nloss: 2.6\n")
  local mexpect = { ["overview/sps"] = ">= 40000", loss = { "<= 2.5", agg = "last" },
                    ["env_agent/heart.gained"] = "> 0.1" }
  local m = assert(metrics.collect(path, {}, mexpect))
  tap.is(metrics.judge(m, mexpect, {}), {
    "env_agent/heart.gained: metric missing",
    "loss: expected <= 2.5, saw 2.6 (last of 1 point)",
    "overview/sps: expected >= 40000, saw 38210 (tail_mean of 1,200 points)",
  }, "Metta's messages")
  local tps = { tps = { ref = { nodes = { [1] = 5000, [4] = 19000 } }, tol = "-5%" } }
  local function tps_of(v) return { tps = { value = v, n = 10, agg = "tail_mean" } } end
  local job4 = { params = { nodes = 4 } }
  tap.is(metrics.judge(tps_of(18100), tps, job4), {}, "within 5 % below the reference")
  tap.is(metrics.judge(tps_of(99999), tps, job4), {}, "-5% bounds only below")
  tap.is(metrics.judge(tps_of(18000), tps, job4),
    { "tps: expected >= 18050 (ref 19000 -5% for nodes=4), saw 18000 (tail_mean of 10 points)" }, "below")
  tap.is(metrics.judge(tps_of(4700), tps, { params = {}, spec = { nodes = 1 } }),
    { "tps: expected >= 4750 (ref 5000 -5% for nodes=1), saw 4700 (tail_mean of 10 points)" },
    "nodes from the job when it is not an axis")
  tap.is(metrics.judge(tps_of(1), tps, { params = { nodes = 2 } }), {}, "no reference for nodes=2: nothing to check")
  local both = { t = { ref = { gpu = { a100 = 100 } }, tol = "-5%,+10%" } }
  tap.is(metrics.judge({ t = { value = 111, n = 1, agg = "last" } }, both, { params = { gpu = "a100" } }),
    { "t: expected between 95 and 110 (ref 100 -5%,+10% for gpu=a100), saw 111 (last of 1 point)" }, "both sides")
  tap.is(metrics.parse_tol("±5%"), { lo = 0.05, hi = 0.05 }, "±")
  -- As a run's state.json gives an expectation back to a later process (JSON keys are strings).
  local back = json.decode(json.encode({ loss = { "<= 2.5", agg = "last" }, tps = tps.tps }))
  local seen = { loss = { value = 2.6, n = 1, agg = "last" }, tps = { value = 18000, n = 10, agg = "tail_mean" } }
  tap.is(metrics.judge(seen, back, job4), { "loss: expected <= 2.5, saw 2.6 (last of 1 point)",
    "tps: expected >= 18050 (ref 19000 -5% for nodes=4), saw 18000 (tail_mean of 10 points)" },
    "expectations read back from JSON judge the same")
end)

tap.test("scaling: efficiency per step within groups that differ only in the axis", function()
  local function job(nodes, gpu, tps)
    return { status = "SUCCEEDED", params = { nodes = nodes, gpu = gpu }, spec = { param_order = { "gpu", "nodes" } },
             metrics = { tps = { value = tps } } }
  end
  local jobs = { job(1, "a", 1000), job(2, "a", 1940), job(4, "a", 3440), job(1, "b", 500), job(2, "b", 1000) }
  local c = metrics.scaling(jobs, { axis = "nodes", metric = "tps", min_efficiency = 0.9 }, { SUCCEEDED = true })
  tap.is(c.ok, false, "fails: 1→4 is below 0.9")
  tap.is(c.text, "gpu=a: 1→2: 0.97, 1→4: 0.86 ✗; gpu=b: 1→2: 1.00", "each step's efficiency")
  jobs[3].metrics = nil
  c = metrics.scaling(jobs, { axis = "nodes", metric = "tps", min_efficiency = 0.9 }, { SUCCEEDED = true })
  tap.like(c.text, "1→4: tps missing ✗", "a missing metric fails the step")
  jobs[3].status = "RUNNING"
  tap.is(metrics.scaling(jobs, { axis = "nodes", metric = "tps", min_efficiency = 0.9 }, { SUCCEEDED = true }).ok,
    nil, "pending while a job runs")
end)

-- Bad input: at the declaration's file:line, before anything runs.
local function suite_file(text)
  n = n + 1
  local path = dir .. "/suite" .. n .. ".lua"
  assert(fs.write_atomic(path, text))
  return path
end
local function build(text) return plan.build(dsl.load(suite_file(text)), { run_id = "r" }) end

tap.test("bad expectations and declarations are errors at file:line", function()
  local head = "\n\nsuite \"s\" { run = \"true\", matrix = { nodes = { 1, 4 } }, "
  tap.raises(function() build(head .. "expect = { metrics = { sps = \">== 5\" } } }") end,
    "suite%d+%.lua:3: .*sps: '>== 5' is not a rule: write an operator", "'>== 5'")
  tap.raises(function() build(head .. "expect = { metrics = { sps = \"fast\" } } }") end,
    "suite%d+%.lua:3: .*'fast' is not a rule", "'fast'")
  tap.raises(function() build(head .. "expect = { metrics = { sps = { \">= 1\", agg = \"tail_man\" } } } }") end,
    "suite%d+%.lua:3: .*unknown aggregate 'tail_man'.*did you mean 'tail_mean'", "unknown aggregate")
  tap.raises(function() build(head .. "expect = { metrics = { sps = { \">= 1\", agg = \"tail_mean:2\" } } } }") end,
    ":3: .*fraction must be a number in %(0, 1%]", "a fraction out of range")
  local ref = "expect = { metrics = { tps = { ref = { %s = { [1] = 5 } }%s } } } }"
  tap.raises(function() build(head .. ref:format("node", ", tol = \"-5%\"")) end,
    "suite%d+%.lua:3: .*ref names 'node', which is no axis of the matrix %(did you mean 'nodes'%?%)", "unknown axis")
  tap.raises(function() build(head .. "expect = { metrics = { tps = { ref = { nodes = { [1] = 5 } } } } } }") end,
    ":3: .*ref needs a tolerance", "ref without tol")
  tap.raises(function() build(head .. ref:format("nodes", ", tol = \"5\"")) end,
    ":3: .*'5' is not a tolerance", "bad tol")
  tap.raises(function() build(head .. "expect = { metrics = { tps = { agg = \"last\", tol = \"-5%\" } } } }") end,
    ":3: .*tol applies to a rule, a ref or a baseline", "tol alone")
  tap.ok(pcall(build, head .. "expect = { metrics = { tps = { \">= 1\", tol = \"-5%\" } } } }"),
    "tol with a plain rule is diff's run-to-run tolerance")
  tap.raises(function() build(head .. "scaling = { axis = \"node\", metric = \"tps\", min_efficiency = 0.9 } }") end,
    "suite%d+%.lua:3: .*scaling: axis 'node' is no axis of the matrix %(did you mean 'nodes'%?%)", "scaling axis")
  tap.raises(function() build(head .. "scaling = { axis = \"nodes\", metric = \"tps\", min_efficency = 0.9 } }") end,
    ":3: .*unknown key 'min_efficency' %(did you mean 'min_efficiency'%?%)", "scaling key")
  tap.raises(function() build("\n\nsuite \"s\" { run = \"true\", matrix = { size = { \"s\", \"m\" } }, "
    .. "scaling = { axis = \"size\", metric = \"tps\", min_efficiency = 0.9 } }") end,
    ":3: .*scaling: axis 'size' has the value s, which is not a number", "scaling over words")
  tap.raises(function() build("metric \"x\" { fn = function() end }\n" .. head .. "}") end,
    "suite%d+%.lua:1: metric \"x\": fn needs contains", "fn without contains")
  tap.raises(function() build("\nmetric \"x\" { pattern = \"loss %d+\" }\n" .. head .. "}") end,
    "suite%d+%.lua:2: metric \"x\": pattern has no capture", "pattern without a capture")
  tap.raises(function() build("metric \"x\" { patern = \"(%d+)\" }\n" .. head .. "}") end,
    ":1: unknown key 'patern' in metric \"x\" %(did you mean 'pattern'%?%)", "a typo in a declaration")
  tap.raises(function() build(head .. "report = { metric = { \"a\" } } }") end, ":3: .*report.*metric", "report keys")
  local p = build(head .. "expect = { metrics = { tps = { ref = { nodes = { [1] = 5 } }, tol = \"±5%\" } } }, "
    .. "scaling = { axis = \"nodes\", metric = \"tps\", min_efficiency = 0.9 }, report = { metrics = { \"tps\" } } }")
  tap.is(#p.jobs, 2, "a good suite plans")
  tap.is(p.scaling.metric, "tps", "its scaling is in the plan")
end)

tap.test("the series file: a line per judged attempt, the last one of a key wins, odd keys kept apart", function()
  local run = dir .. "/run-series"
  assert(fs.mkdir_p(run))
  local job = { name = 'a/"b', key = 'a_"b' }
  local other = { name = "a", key = "a" }
  tap.is({ metrics.read_series(run, job) }, { nil, "no series file" }, "no file yet: said so")
  local found1 = { loss = { value = 2, n = 2, series = { 3, 2 }, series_step = 1 } }
  tap.is(metrics.take_series(found1), { loss = { series = { 3, 2 }, series_step = 1 } }, "take_series: the series")
  tap.is(found1.loss, { value = 2, n = 2 }, "taken out of the record")
  assert(metrics.write_series(run, job.key, job.name, { loss = { series = { 3, 2 }, series_step = 1 } }))
  assert(metrics.write_series(run, other.key, other.name, { loss = { series = { 9 }, series_step = 1 } }))
  assert(metrics.write_series(run, job.key, job.name, { loss = { series = { 5, 4, 3 }, series_step = 2 } }))
  tap.is(metrics.read_series(run, job), { loss = { series = { 5, 4, 3 }, series_step = 2 } },
    "the job's last line (a rerun of its judging replaced the first)")
  tap.is(metrics.read_series(run, other), { loss = { series = { 9 }, series_step = 1 } },
    "another job's own line, though its key begins the first job's")
  tap.is({ metrics.read_series(run, { name = "c", key = "c" }) }, { nil, "no series of this job in the series file" },
    "a job without a line: said so")
  fs.append_record(metrics.series_path(run), '{"key":"c","job":"c","metrics":{"loss":{"series":[1,"x"]}}}\n')
  tap.is({ metrics.read_series(run, { name = "c", key = "c" }) },
    { nil, "the series file is damaged (loss[2]: not a number)" }, "a damaged line: said so")
  -- raw (--json): each series as its text, checked, not decoded; the same answers otherwise
  local got = metrics.read_series(run, job, nil, true) or { loss = {} }
  tap.is({ json.encode(got.loss.series), got.loss.series_step }, { "[5,4,3]", 2 },
    "raw: the series' text, and its step")
  tap.is({ metrics.read_series(run, { name = "c", key = "c" }, nil, true) },
    { nil, "the series file is damaged (loss[2]: not a number)" }, "raw: a damaged line said so the same")
  fs.append_record(metrics.series_path(run), '{"key":"e","job":"e","metrics":{"loss":{"series":[1,2.5e3,-0.25]}}}\n')
  fs.append_record(metrics.series_path(run), '{"key":"f","job":"f","metrics":{"loss":{"series":[1,,2]}}}\n')
  fs.append_record(metrics.series_path(run), '{"key":"g","job":"g\\"q","metrics":{"l\\u00e9":{"series":[4]}}}\n')
  tap.is(json.encode((metrics.read_series(run, { name = "e", key = "e" }, nil, true) or { loss = {} }).loss.series),
    "[1,2.5e3,-0.25]", "raw: exponents and signs")
  tap.is({ metrics.read_series(run, { name = "f", key = "f" }, nil, true) },
    { nil, "the series file is damaged (loss[2]: not a number)" }, "raw: a hole in the list")
  tap.is(metrics.read_series(run, { name = 'g"q', key = "g" }, nil, true), { ["lé"] = { series = { 4 } } },
    "raw: a line with escapes is decoded instead")
  tap.is({ metrics.read_series(run, { name = "d", metrics = { m = { n = 1, series = { 7 } } } }) },
    { { m = { series = { 7 } } } }, "a run recorded before series files: the record's own series")
end)

return tap.done()
