-- The report's views as a user meets them: --grid on the quickstart (2 × 4), the --html page
-- (parsed with python3's html.parser, and rendered by headless Chromium where it is installed),
-- the Markdown step summary ($GITHUB_STEP_SUMMARY), JUnit's log tails, and the live ETA on a TTY.
local tap = require "tap"
local h = require "helpers"
local fs = require "jobrun.c.fs"
local json = require "jobrun.base.json"

local top = os.getenv("JOBRUN_TOP")

-- A TAP skip ("ok N - # skip why"): tap.lua has no skip of its own.
local function skip(why) tap.ok(true, "# skip " .. why) end

tap.test("--grid on the quickstart: nodes × condition, ASCII without colour", function()
  local dir = h.scratch()
  local code, out = h.sh(dir, "jobrun run " .. h.q(top .. "/examples/quickstart.lua")
    .. " --run-id Q --grid --color never")
  tap.is(code, 0, "every job passed")
  local g = out:match("(Grid: .-)\n\n") or out:match("(Grid: .*)$") or ""
  tap.like(g, "^Grid: nodes x condition\nnodes \\ condition%s+normal_completion%s+heartbeat_timeout%s+runtime_timeout"
    .. "%s+cmd_fails\n1%s+pass%s+pass%s+pass%s+pass\n2%s+pass%s+pass%s+pass%s+pass\nLegend: ",
    "2 rows × 4 columns", out)
  tap.ok(not g:find("[\128-\255]"), "plain ASCII: no box drawing, no ✓", g)
  local _, coloured = h.sh(dir, "jobrun check Q --grid --color always")
  tap.like(coloured, "\27%[32m✓ pass\27%[0m", "with colour: a green ✓")
  tap.like(coloured, "Legend: ✓ passed · ✗ failed", "and a legend")
  local _, swapped = h.sh(dir, "jobrun check --grid condition,nodes Q --color never")
  tap.like(swapped, "Grid: condition x nodes\ncondition \\ nodes%s+1%s+2\nnormal_completion%s+pass%s+pass\n",
    "--grid ROWS,COLS chooses the axes (and RUN after it is still the run)")
  local c3, bare = h.sh(dir, "jobrun check --grid Q")
  tap.is(c3, 0, "--grid RUN: RUN is the run, not the axes")
  tap.like(bare, "Grid: nodes x condition", "default axes")
  local c4, folded, err4 = h.sh(dir, "jobrun check Q --grid=nodes,nodez")
  tap.is(c4, 0, "an unknown axis does not change the exit code")
  tap.like(err4, "%-%-grid: the run has no axis 'nodez' %(did you mean 'nodes'%?%)", "it is named, with a hint")
  tap.like(folded, "Grid: nodes x condition", "and the default axes are shown")
  local c5, _, err5 = h.sh(dir, "jobrun check Q --grid=nodes")
  tap.is(c5, 2, "--grid with one axis is a usage error")
  tap.like(err5, "option '%-%-grid' takes two axes, ROWS,COLS, not 'nodes'", "saying what it takes")
  local _, js = h.sh(dir, "jobrun check Q --grid --json")
  tap.ok(not js:find("Grid:", 1, true) and json.decode(js) ~= nil, "--json: no grid, only JSON")
end)

local HOSTILE = [[
suite "h" {
  matrix = { model = { "<script>alert(1)</script>", "b&b" }, seed = { 1, 2 }, lr = { "0.1", "0.01" } },
  name = "{model}_{seed}_{lr}",
  run = [=[printf '\033[31mred error\033[0m for {seed}\n'; echo "tail <b>{lr}</b>"; test {seed} = 1]=],
  max_restarts = 1,
}
]]

-- parse(page) -> what python3's html.parser sees: text, hrefs, srcs, script count, <pre> text.
local PARSER = [[
import html.parser, json, sys
class P(html.parser.HTMLParser):
    def __init__(self):
        super().__init__(); self.text = []; self.urls = []; self.scripts = 0; self.pre = []; self.in_pre = 0
        self.tags = set()
    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        if tag == "script": self.scripts += 1
        if tag == "pre": self.in_pre += 1
        for k, v in attrs:
            if k in ("src", "href", "xlink:href", "action", "poster", "srcset") \
                    or (k == "style" and "url(" in (v or "")):
                self.urls.append(v or "")
    def handle_endtag(self, tag):
        if tag == "pre": self.in_pre -= 1
    def handle_data(self, d):
        self.text.append(d)
        if self.in_pre: self.pre.append(d)
p = P(); p.feed(open(sys.argv[1], encoding="utf-8").read()); p.close()
print(json.dumps({"text": "".join(p.text), "urls": p.urls, "scripts": p.scripts, "pre": "".join(p.pre),
                  "tags": sorted(p.tags)}))
]]

tap.test("--html: one self-contained page; hostile names stay text; summary and JUnit", function()
  local dir = h.scratch()
  h.write(dir .. "/s.lua", HOSTILE)
  h.write(dir .. "/parse.py", PARSER)
  h.write(dir .. "/step.md", "previous step\n")
  local code, out = h.sh(dir, "GITHUB_STEP_SUMMARY=step.md jobrun run s.lua --run-id H --html page.html "
    .. "--junit j.xml --grid")
  tap.is(code, 1, "failures: exit 1")
  tap.like(out, "HTML report: page.html\n", "the page's path is printed")
  local page = fs.read(dir .. "/page.html") or ""
  local pc, parsed = h.sh(dir, "python3 parse.py page.html")
  tap.is(pc, 0, "python3's html.parser reads it")
  local doc = json.decode(parsed) or { text = "", urls = {}, pre = "", tags = {} }
  local data = json.decode(select(2, h.sh(dir, "jobrun check H --json"))) or { jobs = {} }
  tap.is(#data.jobs, 8, "8 jobs")
  local missing = {}
  for _, job in ipairs(data.jobs) do
    if not doc.text:find(job.name, 1, true) then missing[#missing + 1] = job.name end
  end
  tap.is(missing, {}, "every job is named in the page's text")
  tap.is(doc.scripts, 1, "one script: the page's own (the <script> in a name is text)")
  local bad, logs = {}, 0
  for _, u in ipairs(doc.urls) do
    -- A job's log link: relative to the page, to the log file in the run's directory.
    local rel = u:match("^%.jobrun/runs/H/logs/[^/]+%.log$")
    if rel and fs.stat(dir .. "/" .. u:gsub("%%(%x%x)", function(x) return string.char(tonumber(x, 16)) end)) then
      logs = logs + 1
    elseif not (u:sub(1, 1) == "#" or u:sub(1, 5) == "data:") then
      bad[#bad + 1] = u
    end
  end
  tap.is(bad, {}, "src=/href= only #, data: or a job's log file")
  tap.is(logs, 8, "each job's log is linked, relative to the page")
  tap.ok(not page:find("://", 1, true), "no URL anywhere: nothing loads from the network")
  tap.ok(not page:find("\27", 1, true), "no raw ANSI in the page")
  tap.like(page, '<span class="ar">red error</span> for 2', "ANSI red rendered as HTML")
  for _, job in ipairs(data.jobs) do
    if job.verdict == "fail" then
      tap.ok(doc.pre:find("tail <b>" .. job.params.lr .. "</b>", 1, true) and doc.text:find(job.mismatches[1], 1, true),
        "failed job's mismatches and log tail: " .. job.name)
    end
  end
  tap.like(doc.text, "Run H · suite h · backend local", "the header: run, suite, backend")
  tap.like(doc.text, "4 passed4 failed0 pending8 jobs", "the counts")
  tap.ok(page:find("<svg", 1, true) and page:find('<rect', 1, true), "a timeline in inline SVG")
  tap.like(page, "↻1", "restarts marked on the timeline")
  tap.like(page, '<table class="sortable" id="jobs"', "the full table, sortable")
  -- The step summary: appended, Markdown.
  local md = fs.read(dir .. "/step.md") or ""
  tap.like(md, "^previous step\n## ❌ jobrun: h — 4 passed, 4 failed, 0 pending of 8",
    "appended to $GITHUB_STEP_SUMMARY")
  tap.like(md, "| %*%*&lt;script&gt;alert\\%(1\\%)&lt;/script&gt;%*%* | 2/2 ✅ | 0/2 ❌ |",
    "the grid as a table, escaped, the folded axis counted")
  tap.like(md, "<details><summary>❌ <code>b&amp;b_2_0%.1</code>: status is FAILED", "each failure in a <details>")
  tap.like(md, "```text\n.-tail <b>0%.1</b>\n```", "with its log tail")
  local _, _, _ = h.sh(dir, "jobrun check H --summary own.md")
  tap.like(fs.read(dir .. "/own.md") or "", "^## ❌ jobrun: h", "--summary FILE writes a file of its own")
  -- JUnit: log tails, and still valid.
  local _, _, xml_err = h.sh(dir, "xmllint --noout --schema " .. h.q(top .. "/tests/fixtures/junit.xsd") .. " j.xml")
  tap.like(xml_err, "j.xml validates", "JUnit with properties and system-out validates")
  local xml = fs.read(dir .. "/j.xml") or ""
  tap.like(xml, "<system%-out>red error for 2\ntail &lt;b&gt;0%.1&lt;/b&gt;\n%[jobrun%] attempt 1 exited",
    "<system-out>: the log's tail, ANSI stripped")
  tap.like(xml, '<property name="param.model" value="&lt;script&gt;alert%(1%)&lt;/script&gt;"/>', "params")
  tap.ok(not xml:find('message="nil"', 1, true) and not xml:find('message=""', 1, true), "no empty message")

  -- Headless Chromium renders the page to something that is not blank (where it is installed).
  if select(1, h.sh(dir, "command -v chromium")) ~= 0 then
    skip("chromium is not installed (apt-get install chromium)")
  else
    -- Its own profile directory, so that any helper it leaves behind (crashpad) can be ended:
    -- tests/exec fails a file that leaves a process.
    local profile = dir .. "/chromium-profile"
    local cc
    -- Chromium itself sometimes aborts on a loaded machine (exit 134 seen under the ASan run):
    -- tried up to three times; a browser that keeps crashing is a skip, not jobrun's failure.
    for _ = 1, 3 do
      cc = h.sh(dir, "env -u ASAN_OPTIONS -u LSAN_OPTIONS -u UBSAN_OPTIONS HOME=" .. h.q(dir)
        .. " timeout 60 chromium --headless --no-sandbox --disable-gpu --disable-dev-shm-usage "
        .. "--disable-breakpad --disable-crash-reporter --user-data-dir=" .. h.q(profile)
        .. " --hide-scrollbars --window-size=1200,1600 --screenshot=shot.png file://" .. h.q(dir .. "/page.html"))
      os.execute("pkill -KILL -f " .. h.q(profile) .. " 2>/dev/null")
      if cc == 0 then break end
    end
    if cc >= 128 then return skip("chromium crashed three times (exit " .. cc .. ")") end
    tap.is(cc, 0, "chromium --headless --screenshot")
    local pc2, verdict = h.sh(dir, "python3 -c " .. h.q([[
import sys, zlib, struct
b = open("shot.png", "rb").read(); i = 8; idat = b""
while i < len(b):
    n, t = struct.unpack(">I4s", b[i:i + 8]); i += 8
    if t == b"IDAT": idat += b[i:i + n]
    i += n + 4
raw = zlib.decompress(idat)
print(len(set(raw)), sum(1 for x in raw if x not in (0, 255)))
]]))
    local distinct, inked = verdict:match("(%d+) (%d+)")
    tap.ok(pc2 == 0 and tonumber(distinct or 0) > 30 and tonumber(inked or 0) > 10000,
      "the screenshot is not blank (" .. tostring(distinct) .. " byte values, " .. tostring(inked) .. " inked)")
    -- The jobs table fits a 1400 px window: a copy of the page reports the layout Chromium made
    -- (the page's CSP lets an inline script run) in its title, read back with --dump-dom.
    local probe = page:gsub("</body>", function()
      return "<script>var t=document.getElementById('jobs').getBoundingClientRect();document.title='fit '+"
        .. "Math.round(t.right)+' '+document.documentElement.clientWidth+' '+document.documentElement.scrollWidth;"
        .. "</script></body>"
    end)
    h.write(dir .. "/probe.html", probe)
    local _, dom = h.sh(dir, "env -u ASAN_OPTIONS -u LSAN_OPTIONS -u UBSAN_OPTIONS HOME=" .. h.q(dir)
      .. " timeout 60 chromium --headless --no-sandbox --disable-gpu --disable-dev-shm-usage --disable-breakpad "
      .. "--disable-crash-reporter --user-data-dir=" .. h.q(profile) .. " --window-size=1400,1000 --dump-dom file://"
      .. h.q(dir .. "/probe.html"))
    os.execute("pkill -KILL -f " .. h.q(profile) .. " 2>/dev/null")
    local right, client, scroll = dom:match("<title>fit (%d+) (%d+) (%d+)</title>")
    if not right then return skip("chromium did not lay the page out") end
    tap.ok(tonumber(right) <= tonumber(client) and tonumber(scroll) <= tonumber(client),
      string.format("at 1400 px the jobs table ends at %s px, within the %s px of the window", right, client))
  end
end)

tap.test("$GITHUB_STEP_SUMMARY: not written by a check of a run still going", function()
  local dir = h.scratch()
  h.write(dir .. "/slow.lua", [[suite "slow" { run = "sleep 5" }]])
  h.sh(dir, "jobrun launch slow.lua --run-id S")
  local code = h.sh(dir, "GITHUB_STEP_SUMMARY=step.md jobrun check S")
  tap.is(code, 4, "still running")
  tap.ok(not fs.stat(dir .. "/step.md"), "no step summary yet")
  h.sh(dir, "jobrun kill S")
  h.sh(dir, "GITHUB_STEP_SUMMARY=step.md jobrun wait S")
  tap.like(fs.read(dir .. "/step.md") or "", "## ❌ jobrun: slow", "once it has ended, wait writes it")
end)

tap.test("live progress on a TTY: counts, elapsed time and an ETA", function()
  local dir = h.scratch()
  h.write(dir .. "/e.lua", [[
suite "eta" { matrix = { i = { 1, 2, 3 } }, run = "sleep 2", max_parallel = 1 }
]])
  local code, tty = h.sh(dir, "script -qec " .. h.q(h.bin .. " run e.lua --run-id T --color never") .. " /dev/null")
  tap.is(code, 0, "run under a pseudo-terminal")
  -- (how many are shown running or pending depends on when the line is drawn: a loaded machine)
  tap.like(tty, "0:0%d  0/3 done · %d running · %d pending · 0 passed · 0 failed\r", "counts before any ETA")
  tap.like(tty, "0:%d%d  [12]/3 done · %d running · %d pending · [12] passed · 0 failed · ETA 0:%d%d",
    "an ETA once a job has finished")
  local _, piped = h.sh(dir, "jobrun run e.lua --run-id P 2>&1 | cat")
  tap.ok(not piped:find("ETA", 1, true) and not piped:find("done ·", 1, true), "nothing off a TTY")
end)

return tap.done()
