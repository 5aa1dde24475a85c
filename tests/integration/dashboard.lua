-- jobrun serve in a real browser (issue 29): headless Chromium (Debian's chromium) driven by
-- puppeteer-core (pinned in tests/browser/package.json; `make test` installs it) through
-- tests/browser/dashboard.mjs. Without Chromium or puppeteer-core the tests are skipped, saying
-- so. A scenario that fails leaves a screenshot of its page in the test's scratch directory
-- (its path in the diagnostics; JOBRUN_KEEP_SHOTS=DIR copies it there).
local tap = require "tap"
local h = require "helpers"
local fs = require "jobrun.c.fs"
local json = require "jobrun.base.json"

local top = os.getenv("JOBRUN_TOP")
local chromium = os.getenv("CHROMIUM") or "/usr/bin/chromium"
local driver = top .. "/tests/browser/dashboard.mjs"

local function skip(why) tap.ok(true, "# skip " .. why) end

local missing
if not fs.stat(chromium) then missing = "no Chromium at " .. chromium .. " (apt-get install chromium)"
elseif not fs.stat(top .. "/tests/browser/node_modules/puppeteer-core") then
  missing = "puppeteer-core is not installed (make test installs it: npm ci --prefix tests/browser)"
elseif os.execute("command -v node >/dev/null 2>&1") ~= true then missing = "no node"
end
if missing then
  skip(missing)
  tap.done()
  return
end

local start, stop = h.serve, h.stop_server

-- browse(dir, scenario, url, ...) -> the scenario's observations (a screenshot on its error).
local shots = 0
local function browse(dir, scenario, url, ...)
  shots = shots + 1
  local shot = string.format("%s/%s-%d.png", dir, scenario, shots)
  local args = { ... }
  for i, a in ipairs(args) do args[i] = h.q(a) end
  -- Chromium makes its singleton socket in TMPDIR, and a socket's path must fit in 108 bytes:
  -- under tests/asan.sh the scratch directory is nested one level deeper and too long, so the
  -- browser gets a short TMPDIR of its own under /tmp, removed by the same shell whatever node's
  -- exit (only a kill of this file could leave it).
  local _, out, err = h.sh(dir, "t=$(mktemp -d /tmp/jobrun-chromium.XXXXXX) && SHOT=" .. h.q(shot)
    .. " TMPDIR=\"$t\" node " .. h.q(driver) .. " " .. scenario .. " " .. h.q(url) .. " " .. table.concat(args, " ")
    .. "; rc=$?; rm -rf \"$t\"; exit $rc")
  local r = json.decode(out:match("[^\n]*\n?$") or "") or { error = "no result: " .. out .. err }
  if r.error then
    local where = fs.stat(shot) and ("\nscreenshot: " .. shot) or ""
    tap.ok(false, scenario .. ": the browser scenario ran", r.error .. where)
  end
  return r, shot
end

-- keep(shot): on a failed check, the screenshot is kept where JOBRUN_KEEP_SHOTS says.
local function check(ok, name, shot)
  if not tap.ok(ok, name) and shot then
    local keep = os.getenv("JOBRUN_KEEP_SHOTS")
    if keep and fs.stat(shot) then os.execute("cp " .. h.q(shot) .. " " .. h.q(keep)) end
  end
end

tap.test("a RUNNING row turns to pass in the page, without a reload", function()
  local dir = h.scratch()
  h.write(dir .. "/s.lua", [[
suite "lv" {
  matrix = { n = { 1, 2 } },
  run = "while [ ! -e {suite_dir}/go-{n} ]; do sleep 0.05; done; echo done",
}
]])
  local s = start(dir)
  tap.is(h.sh(dir, "jobrun launch s.lua --run-id live"), 0, "launched")
  local r, shot = browse(dir, "live", s.url, "lv_1", dir .. "/go-1")
  check(r.running_after_ms and r.running_after_ms >= 0, "the row shows RUNNING", shot)
  check(r.pass_after_ms and r.pass_after_ms >= 0, "then pass, pushed to the page", shot)
  tap.ok(true, "# pass " .. tostring(r.measured_from_go_ms)
    .. " ms after the job was let end (bench/serve.sh measures it)")
  tap.is(r.reloads, 1, "no reload: one navigation")
  tap.is(r.page_errors, {}, "no script error")
  -- Both jobs are let end whatever the browser did (a scenario that failed early never wrote go-1).
  fs.write_atomic(dir .. "/go-1", "go\n")
  fs.write_atomic(dir .. "/go-2", "go\n")
  h.sh(dir, "jobrun wait live")
  stop(s)
end)

local FAILING = [[
suite "fl" {
  matrix = { n = { 1, 2, 3 } },
  run = "echo 'step 1'; if [ {n} = 2 ]; then "
    .. "echo '[rank1]: RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB'; "
    .. "echo '[rank0]: [Rank 0] Watchdog caught collective operation timeout: WorkNCCL(SeqNum=8)'; exit 1; fi",
}
]]

tap.test("a failed job: its failure, tail and page; the table filtered to failures", function()
  local dir = h.scratch()
  h.write(dir .. "/s.lua", FAILING)
  h.sh(dir, "jobrun run s.lua --run-id f1")
  local s = start(dir)
  local r, shot = browse(dir, "failed", s.url, "f1", "fl_2")
  local f = r.failure or {}
  check(type(f.tail) == "string" and f.tail:find("CUDA out of memory", 1, true) ~= nil,
    "the failure shows the log's tail", shot)
  check(f.mismatches and #f.mismatches > 0, "and its mismatches in words", shot)
  check(type(f.culprit) == "string" and f.culprit:find("rank 1", 1, true) ~= nil
    and f.culprit:find("cuda_oom", 1, true) ~= nil, "and its culprit: rank 1's CUDA OOM", shot)
  local jp = r.job_page or {}
  tap.is(jp.title, "jobrun: fl_2", "the job's page opens from the failure")
  check((jp.log or ""):find("CUDA out of memory", 1, true) ~= nil, "with its log", shot)
  r = browse(dir, "filter", s.url, "f1")
  tap.is(r.before, 3, "three rows")
  tap.is(r.after, { "fail" }, "filtered to failures: one row")
  tap.is(r.text_filtered, { "fl_2" }, "and by text")
  tap.is(r.page_errors, {}, "no script error")
  stop(s)
end)

tap.test("a run of several suites: the graph of what needs what, with each suite's counts", function()
  local dir = h.scratch()
  h.write(dir .. "/p.lua", [[
suite "build" { run = "echo built" }
suite "test" { needs = { "build" }, matrix = { n = { 1, 2 } }, run = "test {n} = 1" }
suite "ship" { needs = { "test" }, run = "echo shipped" }
]])
  h.sh(dir, "jobrun run p.lua --run-id g1")
  local _, cj = h.sh(dir, "jobrun check g1 --json")
  local suites = (json.decode(cj) or {}).suites or {}
  tap.is(#suites, 3, "check --json lists the run's suites")
  tap.is(suites[3] and { suites[3].name, suites[3].needs, suites[3].summary.skipped },
    { "ship", { "test" }, 1 }, "each with what it needs and its counts (ship skipped: a test job failed)")
  local s = start(dir)
  local r, shot = browse(dir, "graph", s.url, "g1")
  local boxes = {}
  for _, b in ipairs(r.boxes or {}) do boxes[b.suite] = b.text end
  tap.is(r.graph_shown, true, "the page shows the graph")
  check(boxes.build and boxes.build:find("local · 1/1 passed", 1, true) and not boxes.build:find("failed", 1, true),
    "the page draws build's box with its counts", shot)
  check(boxes.test and boxes.test:find("1/2 passed · 1 failed", 1, true), "test's: one passed, one failed", shot)
  check(boxes.ship and boxes.ship:find("0/1 passed · 1 skipped", 1, true), "ship's: skipped", shot)
  tap.is(r.arrows, 2, "an arrow per need: build → test → ship")
  tap.is(r.skipped, { "skipped: needs test/test_2, which failed (exit code 1)" }, "the skipped job's failure says why")
  tap.is(r.page_errors, {}, "no script error")
  stop(s)
end)

tap.test("metrics: a chart of each job's series (its series file) on the run page and the job page", function()
  local dir = h.scratch()
  h.write(dir .. "/s.lua", [[
metric "loss" {}
suite "mt" {
  matrix = { n = { 1, 2, 3 } },
  run = "for i in 1 2 3 4 5 6; do echo \"step $i loss=$((60 - i * {n}))\"; done",
}
]])
  h.sh(dir, "jobrun run s.lua --run-id m1")
  -- mt_1's line of the series file damaged, mt_3's gone: their charts say so; mt_2's is drawn
  -- from its line.
  local file = dir .. "/.jobrun/runs/m1/metrics/series.jsonl"
  local lines = {}
  for line in (fs.read(file) or ""):gmatch("[^\n]+") do
    if line:find('"key":"mt_1"', 1, true) then lines[#lines + 1] = line:sub(1, 40)
    elseif not line:find('"key":"mt_3"', 1, true) then lines[#lines + 1] = line end
  end
  h.write(file, table.concat(lines, "\n") .. "\n")
  local s = start(dir)
  local r = browse(dir, "metrics", s.url, "m1", "mt_2")
  tap.is(r.run_charts, { { "loss", { { "mt_1", 0 }, { "mt_2", 6 }, { "mt_3", 0 } } } },
    "the run page: a chart per job, mt_2's with its six points")
  tap.is(r.run_notes, {
    { "mt_1", "no chart: the series file is damaged (its line is not a JSON object with metrics)" },
    { "mt_3", "no chart: no series of this job in the series file" } }, "the charts without a series say why")
  tap.is(r.job_charts, { { "loss", "loss: 49 (tail_mean of 6; min 48, max 58)" } },
    "the job page: the chart and its figures")
  tap.is(r.job_points, { { "loss", 6 } }, "the job page's chart: six points")
  local errs = {}
  for _, e in ipairs(r.page_errors or {}) do
    if not e:find("Failed to load resource: the server responded with a status of 404", 1, true) then
      errs[#errs + 1] = e
    end
  end
  tap.is(errs, {}, "no script error (the two missing series are answered 404)")
  stop(s)
end)

tap.test("kill: no button without --allow-actions; with it, a kill shows CANCELLED", function()
  local dir = h.scratch()
  h.write(dir .. "/s.lua", 'suite "kl" {\n  matrix = { n = { 1, 2 } },\n  run = "sleep 60",\n}\n')
  tap.is(h.sh(dir, "jobrun launch s.lua --run-id k1"), 0, "launched")
  local s = start(dir)
  local r = browse(dir, "kill", s.url, "k1")
  tap.is(r.button, false, "no kill button without --allow-actions")
  stop(s)
  s = start(dir, { "--allow-actions" })
  local shot
  r, shot = browse(dir, "kill", s.url, "k1")
  tap.is(r.button, true, "a kill button with --allow-actions")
  check(r.cancelled_after_ms and r.cancelled_after_ms >= 0, "every row turns CANCELLED", shot)
  tap.is(r.statuses, { "CANCELLED", "CANCELLED" }, "both jobs")
  stop(s)
end)

tap.test("hostile names, log lines, descriptions and params render as text", function()
  local dir = h.scratch()
  h.write(dir .. "/s.lua", [==[
local img = [[<img src=x onerror="document.title='PWNED';window.__pwned=1">]]
suite "xs" {
  description = [[<script>window.__pwned=2</script>]] .. img,
  matrix = { p = { img, [["><svg onload="window.__pwned=3">]] } },
  name = "x{p}",
  run = { "sh", "-c",
          [[echo '<script>window.__pwned=4</script>'; echo '<img src=x onerror=window.__pwned=5>'; exit 1]] },
}
]==])
  h.sh(dir, "jobrun run s.lua --run-id x1")
  local data = h.state(dir)
  local s = start(dir)
  local r, shot = browse(dir, "xss", s.url, "x1", data.jobs[1].name)
  for _, url in ipairs({ "/", "/runs/x1", "/runs/x1/jobs/" }) do
    local key
    for k in pairs(r) do if k:sub(1, #url) == url and (url ~= "/" or k == "/") then key = k end end
    local seen = r[key] or {}
    check(seen.pwned == nil or seen.pwned == json.null, url .. ": no payload ran (window.__pwned unset)", shot)
    check(type(seen.title) == "string" and seen.title:find("^jobrun") ~= nil, url .. ": the title is jobrun's", shot)
    tap.is({ seen.scripts, seen.imgs, seen.iframes, seen.svgs_outside_timeline }, { 1, 0, 0, 0 },
      url .. ": no injected script, image, frame or svg")
  end
  tap.ok((r["/runs/x1"] or {}).text_has_payload, "the payload is shown as text")
  tap.is(r.page_errors, {}, "no script error")
  stop(s)
end)

tap.done()
