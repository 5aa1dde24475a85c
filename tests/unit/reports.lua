-- The report views on made-up runs: the grid's axes and cells, the ETA, the Markdown summary's
-- 1 MiB limit with many failures and huge logs, ANSI in HTML, JUnit's failure message.
local tap = require "tap"
local grid = require "jobrun.report.grid"
local progress = require "jobrun.report.progress"
local markdown = require "jobrun.report.markdown"
local html = require "jobrun.report.html"
local junit = require "jobrun.report.junit"
local color = require "jobrun.report.color"
local fs = require "jobrun.c.fs"
local process = require "jobrun.c.process"
local state = require "jobrun.run.store"

-- jobs(axes, verdict_of) -> the jobs of a matrix (axes: { {name, {values}}… }, in order).
local function jobs(axes, verdict_of)
  local order = {}
  for i, a in ipairs(axes) do order[i] = a[1] end
  local out = {}
  local function walk(i, params)
    if i > #axes then
      local p = {}
      for k, v in pairs(params) do p[k] = v end
      local parts = {}
      for _, a in ipairs(axes) do parts[#parts + 1] = tostring(p[a[1]]) end
      local v = verdict_of and verdict_of(p) or "pass"
      out[#out + 1] = { name = "j_" .. table.concat(parts, "_"), params = p, spec = { param_order = order },
        verdict = v, status = v == "pass" and "SUCCEEDED" or v == "fail" and "FAILED" or "RUNNING",
        mismatches = v == "fail" and { "status is FAILED, expected SUCCEEDED" } or {} }
      return
    end
    for _, v in ipairs(axes[i][2]) do params[axes[i][1]] = v; walk(i + 1, params) end
    params[axes[i][1]] = nil
  end
  walk(1, {})
  return out
end

tap.test("grid: the two largest axes by default, in declaration order; others folded", function()
  local js = jobs({ { "nodes", { 1, 2 } }, { "seed", { 1, 2, 3 } }, { "condition", { "a", "b", "c", "d" } } },
    function(p) return (p.condition == "b" and p.seed == 2) and "fail" or "pass" end)
  local m = grid.build(js)
  tap.is({ m.rows_axis, m.cols_axis, m.folded }, { "seed", "condition", { "nodes" } }, "seed × condition, nodes folded")
  tap.is({ m.rows, m.cols }, { { "1", "2", "3" }, { "a", "b", "c", "d" } }, "values in declaration order")
  local cell = m.cells[2][2]
  tap.is({ cell.total, cell.passed, cell.failed, cell.verdict }, { 2, 0, 2, "fail" }, "a folded cell counts its jobs")
  tap.is(grid.cell_text(m.cells[1][1], false), "2/2 ok", "ASCII: n/m ok")
  tap.is(grid.cell_text(cell, false), "0/2 FAIL", "ASCII: n/m FAIL")
  tap.is(grid.cell_text(m.cells[1][1], true), "2/2 ✓", "marks with colour")
  local chosen = grid.build(js, "condition,nodes")
  tap.is({ chosen.rows_axis, chosen.cols_axis, chosen.folded }, { "condition", "nodes", { "seed" } },
    "--grid ROWS,COLS")
  local bad = grid.build(js, "nodez,seed")
  tap.like(bad.warning, "no axis 'nodez' %(did you mean 'nodes'%?%)", "an unknown axis: a warning, with a hint")
  tap.is({ bad.rows_axis, bad.cols_axis }, { "seed", "condition" }, "and the default axes")
  tap.is(grid.build({ { name = "x", params = {}, spec = { param_order = {} } } }), nil, "no axes: no grid")
  local one = grid.build(jobs({ { "x", { "p", "q" } } }))
  tap.is({ one.rows_axis, one.cols_axis, #one.cols }, { "x", nil, 1 }, "one axis: one column")
end)

tap.test("grid text: ASCII without colour, marks and colour with it; hostile labels escaped", function()
  local js = jobs({ { "n", { 1, 2 } }, { "c", { "ok", "\27[2Jbad" } } },
    function(p) return p.c == "ok" and "pass" or p.n == 1 and "fail" or "pending" end)
  js[#js] = nil -- a hole: no job for (2, bad)
  local plain = grid.text(js, true, color.painter(false), false)
  tap.ok(not plain:find("[\128-\255]"), "plain ASCII without colour", plain)
  tap.like(plain, "n \\ c%s+ok%s+\\x1b%[2Jbad\n1%s+pass%s+FAIL\n2%s+pass%s+%-\n", "rows, columns, a hole", plain)
  local fancy = grid.text(js, true, color.painter(true), true)
  tap.like(fancy, "\27%[32m✓ pass\27%[0m", "green ✓")
  tap.like(fancy, "\27%[31m✗ fail\27%[0m", "red ✗")
  tap.like(fancy, "Legend: ✓ passed", "a legend")
  tap.ok(not fancy:find("\27[2J", 1, true), "no raw control sequence from a value")
end)

tap.test("ETA: from finished jobs' durations and the slots", function()
  local now = math.floor(process.time())
  local function job(status, dur, ran)
    return { status = status, duration_s = dur, started_at = ran and state.iso(now - ran) or nil }
  end
  tap.is(progress.eta({ jobs = { job("RUNNING", nil, 1), job("PENDING") } }, 1, now), nil, "nothing finished: no ETA")
  -- 1 slot: 10 s mean; the running job has 4 s left, then 2 pending × 10 s
  local data = { jobs = { job("SUCCEEDED", 10), job("RUNNING", nil, 6), job("PENDING"), job("PENDING") } }
  tap.is(progress.eta(data, 1, now), 24, "one slot: the queue in turn")
  tap.is(progress.eta(data, 3, now), 10, "three slots: side by side")
  tap.is(progress.eta({ jobs = { job("SUCCEEDED", 10), job("FAILED", 20) } }, 2, now), nil, "all done: no ETA")
end)

tap.test("Markdown summary: under 1 MiB with many failures and huge logs, log tails cut first", function()
  local dir = assert(os.getenv("JOBRUN_TEST_SCRATCH")) .. "/md"
  assert(fs.mkdir_p(dir .. "/logs"))
  local big = string.rep("x", 200000) .. "\n"
  local js = jobs({ { "a", {} } })
  for i = 1, 400 do
    local name = string.format("job_%03d", i)
    js[i] = { name = name, params = { a = i }, spec = { param_order = { "a" } }, verdict = "fail", status = "FAILED",
      mismatches = { "exit code is 1, expected 0", "termination is oom, expected job_completed" },
      log_path_rel = "logs/" .. name .. ".log" }
    local log = {}
    for k = 1, 30 do log[k] = string.format("line %d of %s %s", k, name, string.rep("y", 200)) end
    assert(fs.write_atomic(dir .. "/logs/" .. name .. ".log", big .. table.concat(log, "\n") .. "\n\27[31m```\27[0m\n"))
  end
  local data = { run_id = "R", suite = "s", backend = "local", jobs = js }
  local text = markdown.document(data, dir)
  tap.ok(#text <= markdown.LIMIT, "at most 1 MiB (" .. #text .. " bytes)")
  tap.like(text, "^## ❌ jobrun: s — 0 passed, 400 failed, 0 pending of 400", "the counts first")
  tap.like(text, "| %*%*1%*%* | ❌ fail |", "the grid as a table")
  tap.like(text, "<details><summary>❌ <code>job_001</code>: exit code is 1, expected 0 %(%+1 more%)</summary>",
    "each failure in a details block")
  tap.ok(not text:find("\27", 1, true), "no raw ANSI")
  tap.like(text, "````text\n", "a fence longer than the log's own backticks")
  -- A small budget: tails go before failures, failures before the counts.
  local small = markdown.document(data, dir, { limit = 20000 })
  tap.ok(#small <= 20000, "a 20 KB budget is kept (" .. #small .. ")")
  tap.ok(not small:find("line 30 of", 1, true), "log tails cut first")
  tap.like(small, "… and %d+ more failures", "then failures, saying how many")
  local few = { run_id = "R", suite = "s", backend = "local", jobs = { js[1], js[2] } }
  local full = markdown.document(few, dir)
  tap.like(full, "line 30 of job_001", "with room, the log tail is there")
  tap.ok(not full:find(string.rep("x", 400), 1, true), "a huge line is cut")
end)

tap.test("HTML: ANSI colours become spans, other sequences go, text is escaped", function()
  tap.is(html.ansi_line("\27[31mred\27[0m <b>&"), '<span class="ar">red</span> &lt;b&gt;&amp;', "colour and escapes")
  tap.is(html.ansi_line("\27]0;title\7x\27[2Ky\7"), "xy\\x07", "OSC and CSI dropped, BEL shown")
  tap.is(html.ansi_line("\27[1;32mok"), '<span class="ag abold">ok</span>', "bold and colour")
end)

tap.test("HTML jobs table: essential columns shown, the rest behind a chooser; details; log links and tails", function()
  local dir = assert(os.getenv("JOBRUN_TEST_SCRATCH")) .. "/table"
  assert(fs.mkdir_p(dir .. "/state/logs") and fs.mkdir_p(dir .. "/pages"))
  local js = {}
  for i = 1, 30 do
    local name = string.format("job %02d", i) -- a space: percent-encoded in the link
    local fail = i % 10 == 0
    js[i] = { name = name, params = { a = i, b = "x", c = "y" }, spec = { param_order = { "a", "b", "c" } },
      verdict = fail and "fail" or "pass", status = fail and "FAILED" or "SUCCEEDED", exit_code = fail and 1 or 0,
      mismatches = fail and { "exit code is 1, expected 0" } or {}, log_path_rel = "logs/" .. name .. ".log",
      log_path = "state/logs/" .. name .. ".log",
      fields = fail and { exception = "RuntimeError: CUDA out of memory. " .. string.rep("Tried to allocate ", 20),
        culprit = "train.py:12", step = 7 } or { step = 100 } }
    local log = {}
    for k = 1, 200 do log[k] = string.format("line %d of %s <%s>", k, name, string.rep("z", 40)) end
    assert(fs.write_atomic(dir .. "/state/logs/" .. name .. ".log", table.concat(log, "\n") .. "\n"))
  end
  local data = { run_id = "R", suite = "s", backend = "local", jobs = js }
  local page = html.document(data, dir .. "/state", { page_dir = dir .. "/pages" })
  local table_part = page:match('<div class="jobs%-box">.*</table>') or ""
  local heads = {}
  for th in table_part:match("<thead>(.-)</thead>"):gmatch("<th>(.-)</th>") do heads[#heads + 1] = th end
  tap.is(#heads, 21, "21 columns in all (9 + 3 params + 9)")
  local hidden = {}
  for i, name in ipairs(heads) do
    local box = table_part:match('<input type="checkbox" class="jc" id="jc%-' .. i .. '"([^>]*)>')
    if i > 1 and box and not box:find("checked", 1, true) then hidden[#hidden + 1] = name end
    if i > 1 and box and not box:find("checked", 1, true) then
      tap.like(table_part, "#jc%-" .. i .. ":not%(:checked%)~%.jobs%-wrap #jobs tr>:nth%-child%(" .. i .. "%)",
        name .. ": hidden by CSS while unchecked")
    end
  end
  tap.is(hidden, { "Native status", "Backend exit", "Attempt", "Backend", "Native id", "Submitted", "Started",
    "Ended" }, "these start hidden; Job, Status, Restarts, Termination, Exit, Duration, Verdict, the params, "
    .. "Mismatches, Fields and Log show")
  tap.like(table_part, '<label for="jc%-3">Native status</label>', "the chooser names each column")
  tap.ok(not table_part:find("<script", 1, true), "the chooser is CSS (no script of its own)")
  -- Fields, with an exception, collapsed.
  tap.like(table_part, '<details class="fields"><summary>3 fields, exception</summary><div>culprit=train%.py:12<br>'
    .. 'exception=RuntimeError: CUDA', "fields and the exception text inside <details>")
  local rows = select(2, table_part:gsub("<tr id=", ""))
  local collapsed = select(2, table_part:gsub('<td class="mono"><details class="fields">', ""))
  tap.is({ rows, collapsed }, { 30, 30 }, "every row's fields are collapsed")
  -- Log links: relative to the page, percent-encoded, to the file itself.
  local link = table_part:match('<tr id="row%-job%-1">.-<a href="([^"#]+)"')
  tap.is(link, "../state/logs/job%2001.log", "the log path is a link, relative to the page")
  tap.ok(fs.stat(dir .. "/pages/" .. link:gsub("%%20", " ")), "which resolves to the log")
  tap.like(table_part, '<tr id="row%-job%-10">.-<a href="#job%-10">failure</a>', "a failed job links to its failure")
  -- A passed job's tail, collapsed; none for a failed job (its tail is under Failures).
  tap.like(table_part, '<tr id="row%-job%-1">.-<details class="tail"><summary>last 20 lines</summary>'
    .. '<pre class="log">line 181 of job 01 &lt;z+&gt;\n', "a passed job's last 20 lines, escaped")
  local failed_row = table_part:match('<tr id="row%-job%-10">(.-)</tr>') or ""
  tap.ok(not failed_row:find('class="tail"', 1, true), "not a failed job's")
  -- The budget: past it, no more tails, and the page says so.
  local budget = html.TAIL_BUDGET
  html.TAIL_BUDGET = 5000
  local small = html.document(data, dir .. "/state", { page_dir = dir .. "/pages" })
  html.TAIL_BUDGET = budget
  local tails = select(2, small:gsub('<details class="tail">', ""))
  tap.is(tails, 4, "a 5000-byte budget holds 4 tails of ~1.3 KB (the one that crosses it included)")
  tap.like(small, "The log tails of 23 more jobs are left out %(the page keeps 4 KiB of them%)", "and says so")
  tap.ok(#page - #small > 20 * 1200, "the page is smaller by the tails left out")
end)

tap.test("JUnit: the failure message is never empty or nil", function()
  tap.is(junit.message({ status = "LOST", mismatches = {} }), "failed: status LOST", "facts when no mismatch")
  tap.is(junit.message({ status = "FAILED", mismatches = { "a", "b" } }), "a; b", "the mismatches")
end)

return tap.done()
