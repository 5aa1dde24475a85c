-- jobrun serve (issue 29) over real HTTP on loopback, driven with curl and raw sockets: the
-- pages and their security headers, the JSON API against check --json, live updates by
-- server-sent events, tokens and the one-time login, the loopback Host rule, paths that try to
-- leave the state directory, secrets, actions behind --allow-actions and a CSRF token, idle
-- clients timed out, and a new client served while 200 connections are held.
local tap = require "tap"
local h = require "helpers"
local fs = require "jobrun.c.fs"
local process = require "jobrun.c.process"
local json = require "jobrun.base.json"

local start, stop = h.serve, h.stop_server

-- get(dir, url, curl_args) -> status, body, headers (lower-case names).
local function get(dir, url, args)
  local code, out = h.sh(dir, "curl -s -g -D hdr.txt -o body.txt -w '%{http_code}' " .. (args or "") .. " " .. h.q(url))
  assert(code == 0 or code == 28, "curl failed: " .. code)
  local hdrs = {}
  for line in (fs.read(dir .. "/hdr.txt") or ""):gmatch("[^\r\n]+") do
    local k, v = line:match("^([%w-]+):%s*(.*)$")
    if k then hdrs[k:lower()] = v end
  end
  return tonumber(out), fs.read(dir .. "/body.txt") or "", hdrs
end

local SUITE = [[
suite "sv" {
  matrix = { n = { 1, 2 }, c = { "ok", "bad" } },
  run = "echo line-{n}-{c}; sleep ${PAUSE:-0}; [ {c} = ok ]",
  env = { API_TOKEN = "s3cret-value" },
}
]]

tap.test("pages carry a strict CSP; the API's run is check --json's; no secret anywhere", function()
  local dir = h.scratch()
  h.write(dir .. "/s.lua", SUITE)
  h.sh(dir, "jobrun run s.lua --run-id r1")
  local s = start(dir)
  local status, body, hdrs = get(dir, s.url .. "/")
  tap.is(status, 200, "GET / answers")
  tap.like(hdrs["content-security-policy"] or "", "^default%-src 'none'; script%-src 'self'", "a strict CSP")
  tap.is(hdrs["x-content-type-options"], "nosniff", "nosniff")
  tap.ok(not body:find("https?://"), "the page loads nothing from elsewhere")
  status, body = get(dir, s.url .. "/assets/app.js")
  tap.is(status, 200, "the script is served from the binary")
  tap.ok(not body:find("innerHTML", 1, true), "the script never writes HTML from data")
  local _, api = get(dir, s.url .. "/api/runs/r1")
  local _, cli = h.sh(dir, "jobrun check r1 --json")
  local a, c = json.decode(api), json.decode(cli)
  tap.is(a and a.summary, c and c.summary, "the same summary as check --json")
  local names = {}
  for i, j in ipairs(a and a.jobs or {}) do names[i] = j.name .. "=" .. j.status .. "/" .. j.verdict end
  local want = {}
  for i, j in ipairs(c and c.jobs or {}) do want[i] = j.name .. "=" .. j.status .. "/" .. j.verdict end
  tap.is(names, want, "the same jobs, statuses and verdicts")
  local _, runs = get(dir, s.url .. "/api/runs")
  local list = json.decode(runs) or {}
  tap.is({ list[1] and list[1].run_id, list[1] and list[1].summary.failed }, { "r1", 2 }, "/api/runs lists the run")
  local _, job = get(dir, s.url .. "/api/runs/r1/jobs/sv_1_bad")
  local j = json.decode(job) or {}
  tap.is(j.spec and j.spec.env and j.spec.env.API_TOKEN, "<redacted>", "a job's env is redacted")
  local _, logtext = get(dir, s.url .. "/api/runs/r1/jobs/sv_1_bad/log?tail=5")
  tap.like(logtext, "line%-1%-bad", "the job's log")
  for _, u in ipairs({ "/", "/api/runs", "/api/runs/r1", "/api/runs/r1/jobs/sv_1_ok", "/runs/r1",
                       "/runs/r1/jobs/sv_1_ok" }) do
    local _, b = get(dir, s.url .. u)
    tap.ok(not b:find("s3cret-value", 1, true), "no secret in " .. u)
  end
  tap.is(stop(s).exit_code, 143, "SIGTERM ends serve (143)")
end)

tap.test("diff, history and flaky: the API answers what the CLI's --json says", function()
  local dir = h.scratch()
  h.write(dir .. "/s.lua", SUITE)
  h.sh(dir, "jobrun run s.lua --run-id d1")
  h.sh(dir, "jobrun run s.lua --run-id d2")
  local s = start(dir)
  for _, c in ipairs({ { "/api/diff?a=d1&b=d2", "diff d1 d2 --json" }, { "/api/history", "history --json" },
                       { "/api/flaky", "flaky --json" }, { "/api/history?last=1", "history --last 1 --json" } }) do
    local status, body = get(dir, s.url .. c[1])
    local _, out = h.sh(dir, "jobrun " .. c[2])
    tap.is(status, 200, c[1] .. ": 200")
    tap.is(json.decode(body), json.decode(out), c[1] .. " = jobrun " .. c[2])
  end
  local status = get(dir, s.url .. "/api/diff?a=d1%3Brm&b=d2")
  tap.is(status, 400, "a run id that is not one: 400")
  stop(s)
end)

tap.test("paths never leave the state directory", function()
  local dir = h.scratch()
  h.write(dir .. "/s.lua", SUITE)
  h.sh(dir, "jobrun run s.lua --run-id r1")
  h.write(dir .. "/outside/state.json", '{"run_id":"x","backend":"local","jobs":[]}')
  fs.symlink(dir .. "/outside", dir .. "/.jobrun/runs/evil")
  local s = start(dir)
  for _, u in ipairs({ "/api/runs/..%2F..%2Fs.lua", "/api/runs/%2e%2e", "/api/runs/r1%2F..%2F..", "/api/runs/evil",
                       "/api/runs/r1/jobs/..%2F..%2Fstate.json", "/api/runs/r1/jobs/..%2Fstate.json/log",
                       "/runs/..%2F..", "/api/runs/r1/jobs/nope/log" }) do
    local status, body = get(dir, s.url .. u)
    tap.is(status, 404, u .. ": 404")
    tap.ok(not body:find("run_id\":\"x", 1, true) and not body:find("suite \"sv\"", 1, true),
      u .. ": nothing from outside")
  end
  local _, list = get(dir, s.url .. "/api/runs")
  tap.ok(not list:find('"evil"', 1, true), "a run directory that links outside is not listed")
  stop(s)
end)

tap.test("the Host rule on loopback, and tokens: header, one-time login, cookie", function()
  local dir = h.scratch()
  h.write(dir .. "/s.lua", SUITE)
  h.sh(dir, "jobrun run s.lua --run-id r1")
  local s = start(dir)
  local status = get(dir, s.url .. "/api/runs", "-H 'Host: evil.example'")
  tap.is(status, 403, "a foreign Host (DNS rebinding) gets 403 on loopback")
  stop(s)

  local code, _, err = h.sh(dir, "jobrun serve --port 0 --bind 0.0.0.0")
  tap.is(code, 2, "--bind beyond loopback without a token: exit 2")
  tap.like(err, "give a %-%-token", "says to give a token")

  s = start(dir, { "--bind", "0.0.0.0", "--token", "tok-123" })
  status = get(dir, s.url .. "/api/runs")
  tap.is(status, 401, "no token: 401")
  status = get(dir, s.url .. "/api/runs", "-H 'Authorization: Bearer wrong'")
  tap.is(status, 401, "a wrong token: 401")
  status = get(dir, s.url .. "/api/runs", "-H 'Authorization: Bearer tok-123'")
  tap.is(status, 200, "the token in the header: 200")
  local login = (fs.read(s.out) or ""):match("log in once: http://[^/]+(/login%?code=%x+)")
  tap.ok(login ~= nil, "a one-time login URL is printed")
  local hdrs
  status, _, hdrs = get(dir, s.url .. (login or "/login"))
  tap.is(status, 303, "the login URL redirects")
  local cookie = (hdrs["set-cookie"] or ""):match("^(jobrun_session=%x+)")
  tap.like(hdrs["set-cookie"] or "", "HttpOnly; SameSite=Strict", "an HttpOnly, SameSite=Strict cookie")
  status = get(dir, s.url .. "/api/runs", "-H " .. h.q("Cookie: " .. tostring(cookie)))
  tap.is(status, 200, "the cookie lets the browser in")
  status = get(dir, s.url .. (login or "/login"))
  tap.is(status, 403, "the login URL works once")
  tap.ok(not (fs.read(s.out) or ""):find("tok-123", 1, true), "the token itself is not printed")
  stop(s)
end)

tap.test("a run page's events: a change within 2 s of the record's; a launched run is refreshed by serve", function()
  local dir = h.scratch()
  h.write(dir .. "/s.lua", SUITE)
  local s = start(dir)
  tap.is(h.sh(dir, "PAUSE=2 jobrun launch s.lua --run-id live"), 0, "launched (local, no driver)")
  h.sh(dir, "curl -s -N --max-time 8 " .. h.q(s.url .. "/api/runs/live/events") .. " > events.txt")
  local events = fs.read(dir .. "/events.txt") or ""
  local _, n = events:gsub("event: change", "")
  tap.ok(n >= 2, "the first event, then at least one change as the jobs end (" .. n .. ")")
  local _, body = get(dir, s.url .. "/api/runs/live")
  local data = json.decode(body) or { summary = {} }
  tap.is({ data.summary.passed, data.summary.failed, data.summary.pending }, { 2, 2, 0 },
    "serve refreshed the launched run to its end (no check, no wait)")
  stop(s)
end)

tap.test("serve is an observer: it sends a launched run's notification when its refresher sees the end", function()
  local dir = h.scratch()
  local log = dir .. "/requests.jsonl"
  local recv = h.listening(dir, { "python3", os.getenv("JOBRUN_TOP") .. "/tests/notify/receiver.py", "--log", log })
  local port = recv.port
  h.write(dir .. "/s.lua", [[
suite "nt" {
  run = "sleep 1",
  notify = { on = "always", webhook = env("JOBRUN_WEBHOOK"), format = "json" },
}
]])
  local hook = "http://127.0.0.1:" .. tostring(port) .. "/hook"
  tap.is(h.sh(dir, "JOBRUN_WEBHOOK=" .. hook .. " jobrun launch s.lua --run-id n1"), 0, "launched")
  local s = start(dir, {}, { JOBRUN_WEBHOOK = hook })
  h.sh(dir, "curl -s -N --max-time 5 " .. h.q(s.url .. "/api/runs/n1/events") .. " > /dev/null")
  local function count()
    local n = 0
    for _ in (fs.read(log) or ""):gmatch("[^\n]+") do n = n + 1 end
    return n
  end
  tap.is(count(), 1, "one message, sent by serve's refresher (no wait, no check)")
  h.sh(dir, "JOBRUN_WEBHOOK=" .. hook .. " jobrun check n1")
  tap.is(count(), 1, "a later check sends nothing more")
  stop(s)
  stop(recv)
end)

tap.test("actions: off by default; with --allow-actions a POST needs the page's CSRF token", function()
  local dir = h.scratch()
  h.write(dir .. "/s.lua", SUITE)
  h.sh(dir, "PAUSE=60 jobrun launch s.lua --run-id k1")
  local s = start(dir)
  local status = get(dir, s.url .. "/api/runs/k1/kill", "-X POST")
  tap.is(status, 403, "actions off: 403")
  stop(s)
  s = start(dir, { "--allow-actions" })
  status = get(dir, s.url .. "/api/runs/k1/kill", "-X POST")
  tap.is(status, 403, "no CSRF token: 403")
  local _, page = get(dir, s.url .. "/runs/k1")
  local csrf = page:match('name="jobrun%-csrf" content="(%x+)"')
  tap.ok(csrf ~= nil, "the page carries its CSRF token")
  local body
  status, body = get(dir, s.url .. "/api/runs/k1/kill", "-X POST -H " .. h.q("X-CSRF-Token: " .. tostring(csrf)))
  tap.is(status, 200, "kill with the token: 200")
  tap.like(body, "Killed", "the CLI's own kill ran")
  local _, out = h.sh(dir, "jobrun check k1 --json")
  local d = json.decode(out) or { jobs = {} }
  local cancelled = 0
  for _, j in ipairs(d.jobs) do if j.status == "CANCELLED" then cancelled = cancelled + 1 end end
  tap.is(cancelled, 4, "every job is CANCELLED")
  stop(s)
end)

tap.test("idle clients time out; 200 connections held (100 event streams) do not stop a new client", function()
  local dir = h.scratch()
  h.write(dir .. "/s.lua", SUITE)
  h.sh(dir, "jobrun run s.lua --run-id r1")
  local s = start(dir, { "--idle-timeout", "1" })
  -- A client that connects and sends nothing is closed by the server.
  local t0 = process.now()
  local code = h.sh(dir, "python3 -c " .. h.q([[
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
s.sendall(b"GET / HTTP/1.1\r\n")
sys.exit(0 if s.recv(1) == b"" else 1)
]]) .. " " .. s.port)
  tap.is(code, 0, "an idle connection is closed by the server")
  tap.ok(process.now() - t0 < 8, "within a few seconds of --idle-timeout 1")
  stop(s)
  s = start(dir)
  local clients = h.q(os.getenv("JOBRUN_TOP") .. "/tests/serve/clients.py")
  local _, out = h.sh(dir, "python3 " .. clients .. " load --port " .. s.port
    .. " --run r1 --streams 100 --idle 100")
  local r = json.decode(out) or {}
  tap.is(r.streams, 100, "100 event streams open")
  tap.is(r.status, 200, "a new client is served while 200 connections are held")
  stop(s)
end)

tap.done()
