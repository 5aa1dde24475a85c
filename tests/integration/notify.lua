-- Notifications when a run ends (issue 30): webhook messages in Slack's, Discord's and a JSON
-- format, GitHub commit statuses, retries, one message per run end whoever sees it, the `change`
-- rule, escaping of hostile names, and secrets that reach no file — against a real HTTP
-- receiver on loopback (tests/notify/receiver.py).
local tap = require "tap"
local h = require "helpers"
local fs = require "jobrun.c.fs"
local json = require "jobrun.base.json"

local GIT = "git -c user.name=t -c user.email=t@example.com -c init.defaultBranch=main"

-- receiver(dir, args) -> { url, port, proc, log }: the receiver on a free port, ready.
local function receiver(dir, args)
  local log = dir .. "/requests." .. tostring(math.random(1e9)) .. ".jsonl"
  local argv = { "python3", os.getenv("JOBRUN_TOP") .. "/tests/notify/receiver.py", "--log", log }
  for _, a in ipairs(args or {}) do argv[#argv + 1] = a end
  local r = h.listening(dir, argv)
  r.log = log
  return r
end

local stop = h.stop_server

-- requests(r) -> what the receiver got, in order.
local function requests(r)
  local out = {}
  for line in (fs.read(r.log) or ""):gmatch("[^\n]+") do out[#out + 1] = json.decode(line) end
  return out
end

-- files_with(dir, s) -> the files under dir whose bytes contain s ("" when none).
local function files_with(dir, s)
  local _, out = h.sh(dir, "grep -r -l -F --exclude='requests.*' " .. h.q(s) .. " . || true")
  return out
end

local PASS_FAIL = [[
suite "nt" {
  matrix = { case = { "ok", "bad" } },
  run = "if [ {case} = bad ]; then echo 'RuntimeError: boom'; exit 3; fi; echo fine",
  notify = { on = "failure", webhook = env("JOBRUN_WEBHOOK"), format = "%s", url = "http://dash.example:8765" },
}
]]

local function hook_env(r) return "JOBRUN_WEBHOOK=" .. h.q(r.url .. "/hook/T000/B000/XXsecretXX") .. " " end

tap.test("slack: one message with Slack's webhook JSON, the URL's secret part in no file", function()
  local dir = h.scratch()
  local r = receiver(dir)
  h.write(dir .. "/s.lua", PASS_FAIL:format("slack"))
  local code, _, err = h.sh(dir, hook_env(r) .. "jobrun run s.lua --run-id r1")
  tap.is(code, 1, "the run's exit code is its verdict's (a job failed)")
  local got = requests(r)
  tap.is(#got, 1, "one request")
  local req = got[1] or { headers = {} }
  tap.is(req.path, "/hook/T000/B000/XXsecretXX", "POSTed to the webhook's path")
  tap.is(req.headers["content-type"], "application/json", "Content-Type: application/json")
  local text = "❌ jobrun run `r1` (suite `nt`): 1 passed, 1 failed of 2\n"
    .. "• `nt_bad`: `FAILED, exit 3`\n"
    .. "<http://dash.example:8765/runs/r1|Open the run>"
  local want = json.encode(json.object({ text = text, blocks = { json.object({ type = "section",
    text = json.object({ type = "mrkdwn", text = text }, { "type", "text" }) }, { "type", "text" }) } },
    { "text", "blocks" }))
  tap.is(req.body, want, "the exact body: text and one mrkdwn section")
  local data = h.state(dir)
  local n = data.notifications or {}
  tap.is(#n, 1, "the delivery is recorded in the run")
  tap.is(n[1] and n[1].target, "slack:127.0.0.1:" .. r.port, "the target is shown by host only")
  tap.is(n[1] and n[1].http_status, 200, "with the HTTP status")
  tap.is(files_with(dir .. "/.jobrun", "XXsecretXX"), "", "the webhook URL's path is in no file of the state dir")
  tap.ok(not err:find("XXsecretXX", 1, true), "nor on stderr")
  stop(r)
end)

tap.test("a distributed job's failure names its culprit rank and what followed", function()
  local dir = h.scratch()
  local r = receiver(dir)
  h.write(dir .. "/s.lua", [[
suite "dd" {
  run = "echo '[rank1]: torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB'; "
    .. "echo '[rank0]: [Rank 0] Watchdog caught collective operation timeout: WorkNCCL(SeqNum=8)'; exit 1",
  notify = { on = "failure", webhook = env("JOBRUN_WEBHOOK"), format = "slack" },
}
]])
  tap.is(h.sh(dir, hook_env(r) .. "jobrun run s.lua --run-id c1"), 1, "the job fails")
  local body = json.decode((requests(r)[1] or {}).body or "null") or {}
  -- (The node is this machine's name: a local job ran here.)
  tap.like(body.text or "", "• `dd`: `rank 1 %(node [^)]+%): cuda_oom → nccl_timeout on rank 0 → exit 1`",
    "the message gives the culprit's line")
  stop(r)
end)

tap.test("discord and json: each format's exact body", function()
  local dir = h.scratch()
  local r = receiver(dir)
  h.write(dir .. "/d.lua", PASS_FAIL:format("discord"))
  h.sh(dir, hook_env(r) .. "jobrun run d.lua --run-id d1")
  h.write(dir .. "/j.lua", PASS_FAIL:format("json"))
  h.sh(dir, hook_env(r) .. "jobrun run j.lua --run-id j1")
  local got = requests(r)
  tap.is(#got, 2, "two requests")
  local content = "❌ jobrun run `d1` (suite `nt`): 1 passed, 1 failed of 2\n• `nt_bad`: `FAILED, exit 3`\n"
    .. "<http://dash.example:8765/runs/d1>"
  tap.is(got[1] and got[1].body, json.encode(json.object({ content = content,
    allowed_mentions = json.object({ parse = json.array() }) }, { "content", "allowed_mentions" })),
    "discord: content, and allowed_mentions that ping no one")
  local body = got[2] and json.decode(got[2].body) or {}
  tap.is(body.run_id, "j1", "json: the run id")
  tap.is(body.summary, { total = 2, passed = 1, failed = 1, pending = 0 }, "json: the --json summary's counts")
  tap.is(body.passed, false, "json: passed = false")
  tap.is(#(body.failures or {}), 1, "json: one failure")
  local f = body.failures and body.failures[1] or {}
  tap.is({ f.name, f.status, f.exit_code }, { "nt_bad", "FAILED", 3 }, "json: the failure's name, status, exit code")
  tap.is(body.url, "http://dash.example:8765/runs/j1", "json: the dashboard link")
  stop(r)
end)

tap.test("github: pending at launch, failure at the end, the token in the header and in no file", function()
  local dir = h.scratch()
  local r = receiver(dir)
  local suite = [[
suite "gh" {
  run = "exit 1",
  notify = { github = { repo = "acme/app", token = env("GH_TOKEN") } },
}
]]
  local code = h.sh(dir, table.concat({ GIT .. " init -q .", "printf '%s' " .. h.q(suite) .. " > s.lua",
    "printf '.jobrun/\\n.stdout\\n.stderr\\nrequests*\\n' > .gitignore", GIT .. " add -A",
    GIT .. " commit -qm one" }, " && "))
  assert(code == 0)
  local _, sha = h.sh(dir, "git rev-parse HEAD")
  sha = sha:gsub("%s+$", "")
  code = h.sh(dir, "GH_TOKEN=ghp_XXtokenXX GITHUB_API_URL=" .. h.q(r.url) .. " jobrun run s.lua --run-id g1")
  tap.is(code, 1, "the job failed: exit 1")
  local got = requests(r)
  tap.is(#got, 2, "two statuses")
  for i, state in ipairs({ "pending", "failure" }) do
    local req = got[i] or { headers = {} }
    tap.is(req.path, "/repos/acme/app/statuses/" .. sha, state .. ": POST /repos/{repo}/statuses/{sha}")
    tap.is(req.headers.authorization, "Bearer ghp_XXtokenXX", state .. ": the token in the Authorization header")
    tap.is(req.headers.accept, "application/vnd.github+json", state .. ": GitHub's media type")
    local body = json.decode(req.body or "null") or {}
    tap.is(body.state, state, state .. ": the state")
    tap.is(body.context, "jobrun/gh", state .. ": context jobrun/{suite}")
    tap.ok(type(body.description) == "string" and #body.description <= 140, state .. ": a description within 140")
  end
  tap.is(json.decode(got[2] and got[2].body or "null").description, "0 passed, 1 failed of 1", "the counts")
  tap.is(files_with(dir, "XXtokenXX"), "", "the token is in no file")
  stop(r)
end)

local ALWAYS = [[
suite "al" {
  run = "sleep %s; exit ${FAIL:-0}",
  notify = { on = "%s", webhook = env("JOBRUN_WEBHOOK"), format = "json" },
}
]]

tap.test("503 is tried 3 times; 404 once; neither changes the exit code", function()
  local dir = h.scratch()
  local r = receiver(dir, { "--statuses", "503,503,200" })
  h.write(dir .. "/s.lua", ALWAYS:format("0", "always"))
  local code = h.sh(dir, hook_env(r) .. "jobrun run s.lua --run-id a1")
  tap.is(code, 0, "the run passed")
  tap.is(#requests(r), 3, "three tries: 503, 503, then 200")
  local n = h.state(dir).notifications or {}
  tap.is({ n[1] and n[1].tries, n[1] and n[1].http_status }, { 3, 200 }, "recorded: 3 tries, HTTP 200 at last")
  stop(r)

  r = receiver(dir, { "--statuses", "404" })
  local _, err
  code, _, err = h.sh(dir, hook_env(r) .. "jobrun run s.lua --run-id a2")
  tap.is(code, 0, "a failed notification does not change the exit code")
  tap.is(#requests(r), 1, "404: one try, no retry")
  tap.like(err, "notification to json:127%.0%.0%.1:%d+ failed: HTTP 404", "said on stderr")
  local _, count = err:gsub("notification to", "")
  tap.is(count, 1, "said once")
  n = h.state(dir).notifications or {}
  tap.is({ n[1] and n[1].tries, n[1] and n[1].error }, { 1, "HTTP 404" }, "recorded: 1 try, the error")
  stop(r)

  -- Nothing listens: network errors are tried 3 times and recorded; the run still passes.
  code = h.sh(dir, "JOBRUN_WEBHOOK=http://127.0.0.1:9/x jobrun run s.lua --run-id a3")
  tap.is(code, 0, "a receiver that is down does not change the exit code")
  n = h.state(dir).notifications or {}
  tap.is(n[1] and n[1].tries, 3, "3 tries on a network error")
  tap.ok(n[1] and type(n[1].error) == "string", "the error recorded")
end)

tap.test("two observers that see the end at once send one message; a rerun's end sends again", function()
  local dir = h.scratch()
  local r = receiver(dir)
  h.write(dir .. "/s.lua", ALWAYS:format("1", "always"))
  local env = hook_env(r)
  tap.is(h.sh(dir, env .. "jobrun launch s.lua --run-id o1"), 0, "launched")
  local code = h.sh(dir, "(" .. env .. "jobrun wait o1 >w1 2>&1 & " .. env .. "jobrun wait o1 >w2 2>&1 & "
    .. env .. "jobrun check o1 --watch >w3 2>&1 & wait)")
  tap.is(code, 0, "both waits and a watching check ended")
  tap.is(#requests(r), 1, "one message")
  h.sh(dir, env .. "jobrun check o1")
  tap.is(#requests(r), 1, "a later check sends nothing")
  h.sh(dir, env .. "jobrun rerun o1 --all")
  tap.is(#requests(r), 2, "the rerun's end is notified again")
  stop(r)
end)

tap.test("on = change: only when the verdict differs from the suite's previous run", function()
  local dir = h.scratch()
  local r = receiver(dir)
  h.write(dir .. "/s.lua", ALWAYS:format("0", "change"))
  local env = hook_env(r)
  h.sh(dir, env .. "jobrun run s.lua --run-id c1")
  tap.is(#requests(r), 1, "the first run of the suite is a change (nothing before it)")
  h.sh(dir, env .. "jobrun run s.lua --run-id c2")
  tap.is(#requests(r), 1, "passed again: no message")
  h.sh(dir, env .. "FAIL=1 jobrun run s.lua --run-id c3")
  tap.is(#requests(r), 2, "failed after a pass: a message")
  h.sh(dir, env .. "FAIL=1 jobrun run s.lua --run-id c4")
  tap.is(#requests(r), 2, "failed again: no message")
  stop(r)
end)

tap.test("a hostile job name cannot add a link or a mention", function()
  local dir = h.scratch()
  local r = receiver(dir)
  h.write(dir .. "/s.lua", [[
suite "ho" {
  name = "<!channel> @here [x](http://evil.example) `b` <http://evil.example|click>",
  run = "exit 1",
  notify = { on = "failure", webhook = env("JOBRUN_WEBHOOK"), format = "slack" },
}
]])
  h.write(dir .. "/d.lua", [[
suite "ho2" {
  name = "@everyone [x](http://evil.example) `b`",
  run = "exit 1",
  notify = { on = "failure", webhook = env("JOBRUN_WEBHOOK"), format = "discord" },
}
]])
  h.sh(dir, hook_env(r) .. "jobrun run s.lua --run-id x1")
  h.sh(dir, hook_env(r) .. "jobrun run d.lua --run-id x2")
  local got = requests(r)
  tap.is(#got, 2, "two messages")
  local slack = json.decode(got[1] and got[1].body or "null") or {}
  local text = slack.text or ""
  tap.ok(not text:find("<!channel>", 1, true) and not text:find("<http://evil", 1, true),
    "slack: no <!channel> and no <link|…> from the name")
  tap.ok(text:find("&lt;!channel&gt;", 1, true) ~= nil, "slack: < and > escaped as Slack documents")
  local span = "`&lt;!channel&gt; @here [x](http://evil.example) 'b' &lt;http://evil.example|click&gt;`"
  tap.ok(text:find(span, 1, true) ~= nil,
    "slack: the name is one code span (its backticks replaced)")
  local discord = json.decode(got[2] and got[2].body or "null") or {}
  tap.is(discord.allowed_mentions, { parse = {} }, "discord: no mention is parsed")
  tap.ok((discord.content or ""):find("`@everyone [x](http://evil.example) 'b'`", 1, true) ~= nil,
    "discord: the name is one code span, where Markdown makes no link")
  stop(r)
end)

tap.test("jobrun notify: --dry-run prints and sends nothing; without it, sends again", function()
  local dir = h.scratch()
  local r = receiver(dir)
  h.write(dir .. "/s.lua", PASS_FAIL:format("json"))
  local env = hook_env(r)
  h.sh(dir, env .. "jobrun run s.lua --run-id n1")
  tap.is(#requests(r), 1, "the run sent one")
  local code, out = h.sh(dir, env .. "jobrun notify n1 --dry-run")
  tap.is(code, 0, "dry run: exit 0")
  tap.like(out, "^POST json:127%.0%.0%.1:%d+\n{\"run_id\":\"n1\"", "prints the target by host, and the body")
  tap.ok(not out:find("XXsecretXX", 1, true), "not the URL's secret part")
  tap.is(#requests(r), 1, "sent nothing")
  code, out = h.sh(dir, env .. "jobrun notify n1")
  tap.is(code, 0, "resend: exit 0")
  tap.like(out, "sent %(HTTP 200%)", "says it was sent")
  tap.is(#requests(r), 2, "sent again")
  tap.is(#(h.state(dir).notifications or {}), 2, "both deliveries recorded")
  stop(r)
end)

tap.test("a bad notify table is refused at file:line, with did you mean", function()
  local dir = h.scratch()
  h.write(dir .. "/s.lua", 'suite "b" {\n  run = "true",\n  notify = { format = "slak" },\n}\n')
  local code, _, err = h.sh(dir, "jobrun plan s.lua")
  tap.is(code, 2, "exit 2")
  tap.like(err, "s%.lua:1: .*format must be one of slack, discord, json.*did you mean 'slack'", "file:line and a hint")
  h.write(dir .. "/t.lua", 'suite "b" {\n  run = "true",\n  notify = { github = { repo = "nope" } },\n}\n')
  code, _, err = h.sh(dir, "jobrun plan t.lua")
  tap.is(code, 2, "a bad repo: exit 2")
  tap.like(err, "github%.repo must be \"OWNER/NAME\"", "says what a repo looks like")
end)

tap.done()
