-- jobrun serve: the live dashboard (README "The dashboard"). One process, one thread: the HTTP
-- server (jobrun.c.serve, libmicrohttpd without a thread of its own), inotify watches on the run
-- directories being looked at, and the runs' refreshers all wait in one poll. Pages are shells
-- that the built-in script fills from the JSON API; a run page follows its run through
-- server-sent events sent when its state.json is replaced.
local serve_c = require "jobrun.c.serve"
local fs = require "jobrun.c.fs"
local process = require "jobrun.c.process"
local json = require "jobrun.base.json"
local errors = require "jobrun.base.errors"
local state = require "jobrun.run.store"
local assets = require "jobrun.serve.assets"

local serve = {}

-- How long a client may stay idle on a connection; an event stream's keep-alive comment period;
-- how much of a log one request or event carries at most.
serve.IDLE_TIMEOUT = 30
serve.HEARTBEAT = 15
serve.LOG_CHUNK = 256 * 1024
serve.MAX_CONNECTIONS = 1000

local CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
  .. "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

local function random_hex(n)
  local f = assert(io.open("/dev/urandom", "rb"))
  local bytes = f:read(n)
  f:close()
  return (bytes:gsub(".", function(c) return string.format("%02x", c:byte()) end))
end

-- equal(a, b): compared in time that does not depend on where they differ.
local function equal(a, b)
  if type(a) ~= "string" or type(b) ~= "string" or #a ~= #b then return false end
  local diff = 0
  for i = 1, #a do diff = diff | (a:byte(i) ~ b:byte(i)) end
  return diff == 0
end

local function is_loopback(addr)
  return addr == "127.0.0.1" or addr == "::1" or addr == "localhost" or (addr or ""):match("^127%.") ~= nil
end

-- ---------------------------------------------------------------------------------------------
-- Responses

local function headers(kind, extra)
  local h = {
    ["Content-Type"] = kind, ["Cache-Control"] = "no-store", ["X-Content-Type-Options"] = "nosniff",
    ["Referrer-Policy"] = "no-referrer", ["X-Frame-Options"] = "DENY",
  }
  if kind:find("^text/html") then h["Content-Security-Policy"] = CSP end
  for k, v in pairs(extra or {}) do h[k] = v end
  return h
end

local function reply_json(status, value)
  return status, headers("application/json"), json.encode(value)
end

local function reply_error(status, message)
  return reply_json(status, json.object({ error = message }))
end

-- ---------------------------------------------------------------------------------------------
-- The state directory, read safely: a run id from a URL names a directory under runs/ and
-- nothing else; a job is looked up by its name in the run's record, never used as a path.

local RUN_ID = "^[%w][%w._-]*$"

function serve.run_dir(state_dir, id)
  if type(id) ~= "string" or not id:match(RUN_ID) or #id > 128 or id:find("..", 1, true) then return nil end
  local dir = state_dir .. "/runs/" .. id
  local st = fs.stat(dir)
  if not st or st.type ~= "directory" then return nil end
  local real, root = fs.realpath(dir), fs.realpath(state_dir .. "/runs")
  if not real or not root or real:sub(1, #root + 1) ~= root .. "/" then return nil end
  return real
end

-- inside(path, dir): path (resolved) lies within dir.
local function inside(path, dir)
  local real = fs.realpath(path)
  return real ~= nil and real:sub(1, #dir + 1) == dir .. "/"
end

-- ---------------------------------------------------------------------------------------------
-- The server

local Server = {}
Server.__index = Server

-- new(opts) -> server: opts.state_dir, port, bind, token, allow_actions, timeout.
function serve.new(opts)
  local bind = opts.bind or "127.0.0.1"
  if not is_loopback(bind) and not opts.token then
    errors.raise("serve: --bind %s would let other machines in: give a --token (or JOBRUN_SERVE_TOKEN)", bind)
  end
  local srv, err = serve_c.listen({ bind = bind, port = opts.port or 8765, timeout = opts.timeout or serve.IDLE_TIMEOUT,
                                    limit = serve.MAX_CONNECTIONS })
  if not srv then errors.infra("serve: %s", err) end
  local self = setmetatable({
    srv = srv, bind = bind, state_dir = fs.realpath(opts.state_dir) or opts.state_dir, token = opts.token,
    allow_actions = opts.allow_actions, csrf = random_hex(16), login_code = opts.token and random_hex(16) or nil,
    sessions = {},
    watched = {},   -- run id -> { watch, dir, streams = {}, logs = {}, next_refresh, run }
    summaries = {}, -- run id -> { stamp, summary } (the runs page)
    cache = {},     -- run id -> { stamp, text } (the run JSON)
    loopback = is_loopback(bind),
  }, Server)
  return self
end

function Server:port() return self.srv:port() end

function Server:base_url()
  local host = self.bind:find(":", 1, true) and ("[" .. self.bind .. "]") or self.bind
  return string.format("http://%s:%d", host, self:port())
end

-- authorised(req): no token asked for, or the request carries it (header) or a session cookie
-- that the one-time login URL set.
function Server:authorised(req)
  if not self.token then return true end
  local auth = req.headers.authorization or ""
  local bearer = auth:match("^Bearer%s+(.+)$")
  if bearer and equal(bearer, self.token) then return true end
  local session = req.cookies.jobrun_session
  return session ~= nil and self.sessions[session] == true
end

-- host_ok(req): on loopback, only the loopback names (a page of another site that points a
-- name of its own at 127.0.0.1 — DNS rebinding — gets nothing).
function Server:host_ok(req)
  if not self.loopback then return true end
  local host = (req.headers.host or ""):gsub(":%d+$", "")
  return host == "127.0.0.1" or host == "localhost" or host == "[::1]" or host:match("^127%.%d+%.%d+%.%d+$") ~= nil
end

-- ---------------------------------------------------------------------------------------------
-- Runs

local function open_run(self, id)
  local dir = serve.run_dir(self.state_dir, id)
  if not dir then return nil, 404, "no run " .. tostring(id) end
  local ok, run = pcall(require("jobrun.run").open, dir)
  if not ok then return nil, 500, errors.is_user(run) and run.message or tostring(run) end
  return run
end

local function run_summary(data)
  local s = require("jobrun.judge.results").summary(data.jobs)
  local started, ended = state.epoch(data.started_at), nil
  for _, job in ipairs(data.jobs) do
    local e = state.epoch(job.ended_at)
    if e and (not ended or e > ended) then ended = e end
  end
  return json.object({
    run_id = data.run_id, suite = data.suite, backend = data.backend,
    commit = data.git and data.git.commit or json.null, started_at = data.started_at,
    duration_s = (started and ended and s.pending == 0) and (ended - started) or json.null,
    summary = json.object(s, { "total", "passed", "failed", "pending" }),
  }, { "run_id", "suite", "backend", "commit", "started_at", "duration_s", "summary" })
end

-- runs() -> each run's summary, newest first; each read once per change of its state.json, and
-- only its summary kept (a state directory of 1,000 runs stays small in memory).
function Server:runs()
  local out = {}
  for _, entry in ipairs(state.list(self.state_dir)) do
    local dir = serve.run_dir(self.state_dir, entry.id)
    local stamp = dir and state.stamp(dir)
    if stamp then
      local c = self.summaries[entry.id]
      if not c or c.stamp ~= stamp then
        local ok, data = pcall(state.read, dir)
        c = { stamp = stamp, summary = ok and run_summary(data)
              or json.object({ run_id = entry.id, error = errors.is_user(data) and data.message or tostring(data) }) }
        self.summaries[entry.id] = c
      end
      out[#out + 1] = c.summary
    end
  end
  table.sort(out, function(a, b)
    local sa, sb = a.started_at or "", b.started_at or ""
    if sa ~= sb then return sa > sb end
    return tostring(a.run_id) > tostring(b.run_id)
  end)
  return out
end

-- run_json(id) -> the run's `check --json` text, from the record as it is (a run being
-- refreshed by this server is read after its refresh), cached per state.json version.
function Server:run_json(id)
  local dir = serve.run_dir(self.state_dir, id)
  local c = self.cache[id]
  if dir and c and c.stamp == state.stamp(dir) then return c.text end
  local run, status, why = open_run(self, id)
  if not run then return nil, status, why end
  local stamp = state.stamp(run.dir)
  local report = require "jobrun.report.text"
  local text = json.encode(report.json(run.data))
  self.cache = { [id] = { stamp = stamp, text = text } } -- one run's text at a time
  return text
end

local function find_job(data, name)
  for _, job in ipairs(data.jobs) do if job.name == name then return job end end
end

-- job_json(run, job): `show`: the public result with the job's spec (environment redacted, as
-- state.json keeps it) and its log's place.
local function job_json(run, job)
  local results = require "jobrun.judge.results"
  local spec = job.spec or {}
  local extra = json.object({
    nodes = spec.nodes, timeout = spec.timeout, max_restarts = spec.max_restarts,
    commands = spec.commands, setup = spec.setup, env = json.object(spec.env or {}),
    expect = spec.expect, tags = spec.tags, description = spec.description, condition = spec.condition,
  }, { "nodes", "timeout", "max_restarts", "commands", "setup", "env", "expect", "tags", "description",
       "condition" })
  -- The public result as --json writes it, with the spec and the run's git after it.
  local text = json.encode(results.public(job))
  return text:sub(1, -2) .. ',"spec":' .. json.encode(extra)
    .. ',"run_git":' .. json.encode(run.data.git or json.null) .. "}"
end

-- log_file(run, job, attempt) -> the path of the job's (or an earlier attempt's) log, within the
-- run directory, or nil.
local function log_file(run, job, attempt)
  local rel = job.log_path_rel
  if attempt and job.attempts then
    for _, a in ipairs(job.attempts) do if tostring(a.attempt) == tostring(attempt) then rel = a.log_path_rel end end
  end
  if type(rel) ~= "string" or rel:find("..", 1, true) or rel:sub(1, 1) == "/" then return nil end
  local path = run.dir .. "/" .. rel
  if not inside(path, run.dir) then return nil end
  local st = fs.stat(path)
  if not st or st.type ~= "file" then return nil end
  return path, st.size
end

-- read_range(path, from, max) -> bytes [from, from + max) of a file.
local function read_range(path, from, max)
  local f = io.open(path, "rb")
  if not f then return "" end
  f:seek("set", from)
  local s = f:read(max) or ""
  f:close()
  return s
end

-- tail_of(path, size, lines) -> the last `lines` lines (at most LOG_CHUNK bytes of them).
local function tail_of(path, size, lines)
  local from = math.max(0, size - serve.LOG_CHUNK)
  local text = read_range(path, from, size - from)
  if from > 0 then text = text:gsub("^[^\n]*\n", "") end
  local starts = {}
  for pos in text:gmatch("()[^\n]*\n?") do
    if pos <= #text then starts[#starts + 1] = pos end
  end
  if #starts > lines then text = text:sub(starts[#starts - lines + 1]) end
  return text
end

-- ---------------------------------------------------------------------------------------------
-- Watching: a run directory is watched while a client follows it; its refresher runs while it
-- has unfinished jobs and no jobrun process drives it.

function Server:watch(id, dir)
  local w = self.watched[id]
  if w then return w end
  local handle = fs.watch(dir)
  if not handle then return nil end
  local logs = dir .. "/logs"
  w = { watch = handle, dir = dir, streams = {}, log_streams = {}, next_refresh = process.now() }
  if fs.stat(logs) then w.log_watch = fs.watch(logs, true) end
  self.watched[id] = w
  return w
end

function Server:unwatch(id)
  local w = self.watched[id]
  if not w then return end
  w.watch:close()
  if w.log_watch then w.log_watch:close() end
  self.watched[id] = nil
end

-- broadcast(id): every client following the run is told that its record changed.
function Server:broadcast(id)
  local w = self.watched[id]
  if not w then return end
  local dir = w.dir
  local stamp = state.stamp(dir) or ""
  local msg = "event: change\ndata: " .. json.encode(stamp) .. "\n\n"
  for s in pairs(w.streams) do
    if not s:send(msg) then w.streams[s] = nil; s:close() end
  end
end

-- follow_logs(id): clients following a job's log get what was appended since they last looked.
function Server:follow_logs(id)
  local w = self.watched[id]
  if not w then return end
  for s, f in pairs(w.log_streams) do
    local st = fs.stat(f.path)
    if st and st.size > f.offset then
      local chunk = read_range(f.path, f.offset, math.min(serve.LOG_CHUNK, st.size - f.offset))
      f.offset = f.offset + #chunk
      local lines = {}
      for line in (chunk .. "\n"):gmatch("([^\n]*)\n") do lines[#lines + 1] = "data: " .. line:gsub("\r", "") end
      if not s:send("event: log\n" .. table.concat(lines, "\n") .. "\n\n") then
        w.log_streams[s] = nil; s:close()
      end
    end
  end
end

-- refresh(id): one look at the run's backend, as `check` takes it, when no jobrun process
-- drives the run (a launched Slurm or SkyPilot run, or a local pool): at most one per run.
function Server:refresh(id, w)
  local ok, err = pcall(function()
    local run = w.run or select(1, open_run(self, id))
    if not run then return end
    w.run = run
    run:sync()
    if #run:open_jobs() == 0 then w.next_refresh = math.huge; return end
    local lock = run:try_driver()
    if not lock then return end -- a driver is attached: it writes the record itself
    lock:release()
    run:update(function(r) return (r:recover() + r:refresh()) > 0 end)
    if #run:open_jobs() == 0 then require("jobrun.report.notify").on_end(run) end
  end)
  if not ok then io.stderr:write("jobrun serve: refreshing run ", id, ": ",
    errors.is_user(err) and err.message or tostring(err), "\n") end
  local backend = w.run and w.run.ctx.backend
  w.next_refresh = process.now() + ((backend and backend.poll_interval) or 1)
end

-- ---------------------------------------------------------------------------------------------
-- Actions (--allow-actions): the CLI's own commands, run as a child process of this binary, so
-- that they go through exactly the same code (the git guard included).

function Server:action(run, what)
  local argv = { "/proc/self/exe", what, run.data.run_id, "--state-dir", self.state_dir, "--color", "never" }
  if what == "rerun" then argv[#argv + 1] = "--failed"; argv[#argv + 1] = "--detach" end
  local out = os.tmpname()
  local p = process.spawn({ argv = argv, stdout = out, stderr = "stdout", cwd = run.data.cwd })
  if not p then os.remove(out); return reply_error(500, "cannot start jobrun " .. what) end
  local result = p:wait(true)
  p:close()
  local code = result.exit_code or 128 + (result.signal_number or 0)
  local text = fs.read(out) or ""
  os.remove(out)
  return reply_json(200, json.object({ exit_code = code, output = text }, { "exit_code", "output" }))
end

-- ---------------------------------------------------------------------------------------------
-- Routing

local function page(self, kind, attrs)
  local a = { 'data-page="' .. kind .. '"' }
  for k, v in pairs(attrs or {}) do
    a[#a + 1] = string.format('data-%s="%s"', k, (tostring(v):gsub("[&<>\"']", function(c)
      return string.format("&#%d;", c:byte()) end)))
  end
  table.sort(a)
  local html = assets.shell:gsub("{{ATTRS}}", function() return table.concat(a, " ") end)
    :gsub("{{CSRF}}", function() return self.csrf end)
    :gsub("{{ACTIONS}}", function() return self.allow_actions and "on" or "off" end)
  return 200, headers("text/html; charset=utf-8"), html
end

-- (libmicrohttpd gives the path %-decoded: a job name is looked up as it arrives, once.)

-- route(req) -> status, headers, body.
function Server:route(req)
  local path, method = req.path, req.method
  if not self:host_ok(req) then return reply_error(403, "this server answers to its loopback address only") end
  if path == "/login" then
    local code = req.query.code
    if not (self.login_code and code and equal(code, self.login_code)) then
      return reply_error(403, "this login link is not valid (it works once)")
    end
    self.login_code = nil
    local session = random_hex(16)
    self.sessions[session] = true
    return 303, headers("text/plain", { Location = "/",
      ["Set-Cookie"] = "jobrun_session=" .. session .. "; Path=/; HttpOnly; SameSite=Strict" }), "logged in\n"
  end
  if not self:authorised(req) then
    return 401, headers("application/json", { ["WWW-Authenticate"] = 'Bearer realm="jobrun"' }),
      json.encode(json.object({ error = "a token is needed: Authorization: Bearer TOKEN, or the login URL" }))
  end
  if path == "/assets/app.js" then return 200, headers("text/javascript; charset=utf-8"), assets.js end
  if path == "/assets/app.css" then return 200, headers("text/css; charset=utf-8"), assets.css end
  if path == "/favicon.ico" then return 204, headers("text/plain"), "" end

  if method == "POST" then
    if not self.allow_actions then return reply_error(403, "actions are off (start jobrun serve --allow-actions)") end
    if not equal(req.headers["x-csrf-token"] or "", self.csrf) then
      return reply_error(403, "missing or wrong CSRF token")
    end
    local id, what = path:match("^/api/runs/([^/]+)/(%a+)$")
    if not id or (what ~= "kill" and what ~= "rerun") then return reply_error(404, "no such action") end
    local run, status, why = open_run(self, id)
    if not run then return reply_error(status, why) end
    return self:action(run, what)
  end
  if method ~= "GET" and method ~= "HEAD" then return reply_error(405, "method not allowed") end

  -- Pages
  if path == "/" then return page(self, "runs") end
  if path == "/history" or path == "/flaky" then return page(self, path:sub(2)) end
  if path == "/diff" then return page(self, "diff", { a = req.query.a or "", b = req.query.b or "" }) end
  local rid = path:match("^/runs/([^/]+)/?$")
  if rid then
    if not serve.run_dir(self.state_dir, rid) then return 404, headers("text/plain"), "no such run\n" end
    return page(self, "run", { run = rid })
  end
  local jrid, jname = path:match("^/runs/([^/]+)/jobs/(.+)$")
  if jrid then
    if not serve.run_dir(self.state_dir, jrid) then return 404, headers("text/plain"), "no such run\n" end
    return page(self, "job", { run = jrid, job = jname })
  end

  -- API
  if path == "/api/runs" then return reply_json(200, json.array(self:runs())) end
  local id = path:match("^/api/runs/([^/]+)$")
  if id then
    local text, status, why = self:run_json(id)
    if not text then return reply_error(status, why) end
    return 200, headers("application/json"), text
  end
  -- A run of several suites: the --html page's graph of what needs what (jobrun.plan.needs), as an
  -- image (an SVG in <img> runs nothing).
  id = path:match("^/api/runs/([^/]+)/graph%.svg$")
  if id then
    local run, status, why = open_run(self, id)
    if not run then return reply_error(status, why) end
    local svg = require("jobrun.plan.needs").graph_svg(run.data, require("jobrun.report.html").escape)
    if svg == "" then return reply_error(404, "run " .. id .. " has one suite: no graph") end
    return 200, headers("image/svg+xml"), svg
  end
  id = path:match("^/api/runs/([^/]+)/events$")
  if id then
    local dir = serve.run_dir(self.state_dir, id)
    if not dir then return reply_error(404, "no run " .. id) end
    local w = self:watch(id, dir)
    if not w then return reply_error(500, "cannot watch the run") end
    local s = self.srv:stream()
    s:send("retry: 2000\nevent: change\ndata: " .. json.encode(state.stamp(dir) or "") .. "\n\n")
    w.streams[s] = true
    return 200, headers("text/event-stream", { ["X-Accel-Buffering"] = "no" }), s
  end
  local name
  id, name = path:match("^/api/runs/([^/]+)/jobs/(.+)$")
  if id then
    local sub
    name, sub = name:match("^(.-)(/log/?[%a]*)$")
    if not name then name, sub = path:match("^/api/runs/[^/]+/jobs/(.-)(/series)$") end
    name = name or path:match("^/api/runs/[^/]+/jobs/(.+)$")
    local run, status, why = open_run(self, id)
    if not run then return reply_error(status, why) end
    local job = find_job(run.data, name)
    if not job then return reply_error(404, "no job " .. name .. " in run " .. id) end
    if not sub then return 200, headers("application/json"), job_json(run, job) end
    if sub == "/series" then
      -- The job's metric series (its line of the run's series file), for the charts.
      -- (the file read once per version of it: a run page asks for each of its charted jobs)
      local metrics = require "jobrun.judge.metrics"
      local file = metrics.series_path(run.dir)
      local st = fs.stat(file)
      local stamp = st and string.format("%s:%d:%.9f", file, st.size, st.mtime)
      local c = self.series_cache
      if not (stamp and c and c.stamp == stamp) then
        c = { stamp = stamp, file = {} }
        c.file.text, c.file.why = metrics.read_series_file(run.dir)
        self.series_cache = c
      end
      local series, missing = metrics.read_series(run.dir, job, c.file)
      if not series then return reply_error(404, missing) end
      local out = {}
      for k, e in pairs(series) do
        out[k] = json.object({ series = json.array(e.series), series_step = e.series_step },
          { "series", "series_step" })
      end
      return reply_json(200, json.object({ job = job.name, metrics = json.object(out) }, { "job", "metrics" }))
    end
    local file, size = log_file(run, job, req.query.attempt)
    if sub == "/log" then
      if not file then return reply_error(404, "the job has no log yet") end
      if req.query.download then
        if size > 512 * 1024 * 1024 then
          return reply_error(413, "the log is larger than 512 MiB: read it with jobrun logs")
        end
        return 200, headers("text/plain; charset=utf-8", {
          ["Content-Disposition"] = 'attachment; filename="' .. (job.key or "job"):gsub("[^%w._-]", "_") .. '.log"' }),
          read_range(file, 0, size)
      end
      local lines = math.tointeger(tonumber(req.query.tail or "")) or 200
      return 200, headers("text/plain; charset=utf-8", { ["X-Log-Size"] = tostring(size) }),
        tail_of(file, size, math.max(1, math.min(lines, 100000)))
    elseif sub == "/log/events" then
      local dir = serve.run_dir(self.state_dir, id)
      local w = self:watch(id, dir)
      if not w then return reply_error(500, "cannot watch the run") end
      if not w.log_watch and fs.stat(dir .. "/logs") then w.log_watch = fs.watch(dir .. "/logs", true) end
      local s = self.srv:stream()
      local from = math.tointeger(tonumber(req.query.from or "")) or size or 0
      s:send("retry: 2000\n\n")
      w.log_streams[s] = { path = file or (dir .. "/" .. tostring(job.log_path_rel)), offset = from }
      return 200, headers("text/event-stream"), s
    end
    return reply_error(404, "not found")
  end
  if path == "/api/diff" then
    local argv = { "diff" }
    for _, k in ipairs({ "a", "b" }) do
      local v = req.query[k]
      if v and v ~= "" then
        if not v:match("^[%w][%w._-]*@?%d*$") then return reply_error(400, "a run id or RUN@N, please") end
        argv[#argv + 1] = v
      end
    end
    return self:cli_json(argv, { [0] = true, [1] = true })
  end
  if path == "/api/history" or path == "/api/flaky" then
    local argv = { path:sub(6) }
    local last = math.tointeger(tonumber(req.query.last or ""))
    if last then argv[#argv + 1] = "--last"; argv[#argv + 1] = tostring(last) end
    if req.query.suite and req.query.suite ~= "" then argv[#argv + 1] = "--suite"; argv[#argv + 1] = req.query.suite end
    if path == "/api/history" and req.query.nodes then argv[#argv + 1] = "--nodes" end
    if path == "/api/history" and req.query.job and req.query.job ~= "" then
      argv[#argv + 1] = "--"; argv[#argv + 1] = req.query.job
    end
    return self:cli_json(argv, { [0] = true })
  end
  return reply_error(404, "not found")
end

-- cli_json(argv, ok_codes) -> the CLI's own `--json` answer (diff, history, flaky), run as a
-- child of this binary over this state directory: the API's shapes are the CLI's by
-- construction. Its stderr becomes the error when it exits otherwise.
function Server:cli_json(argv, ok_codes)
  local full = { "/proc/self/exe" }
  local words = 0
  for _, a in ipairs(argv) do
    if a == "--" then break end
    words = words + 1
  end
  for i = 1, words do full[#full + 1] = argv[i] end
  for _, a in ipairs({ "--json", "--color", "never", "--state-dir", self.state_dir }) do full[#full + 1] = a end
  for i = words + 1, #argv do full[#full + 1] = argv[i] end
  local out, err = os.tmpname(), os.tmpname()
  local p = process.spawn({ argv = full, stdout = out, stderr = err })
  if not p then os.remove(out); os.remove(err); return reply_error(500, "cannot start jobrun " .. argv[1]) end
  local result = p:wait(true)
  p:close()
  local text, why = fs.read(out) or "", fs.read(err) or ""
  os.remove(out); os.remove(err)
  if not ok_codes[result.exit_code or -1] or not json.decode(text) then
    local msg = why:gsub("^jobrun: ", ""):gsub("%s+$", "")
    return reply_error((result.exit_code == 2) and 400 or 500, msg ~= "" and msg or ("jobrun " .. argv[1] .. " failed"))
  end
  return 200, headers("application/json"), text
end

-- handle(req): route, answering any error with 500 (said on stderr with its traceback).
function Server:handle(req)
  local ok, status, h, body = xpcall(self.route, debug.traceback, self, req)
  if not ok then
    io.stderr:write("jobrun serve: internal error on ", tostring(req.path), ":\n", tostring(status), "\n")
    return reply_error(500, "internal error")
  end
  if req.method == "HEAD" and type(body) == "string" then body = "" end
  return status, h, body
end

-- loop(signals): serve until a signal; returns its name.
function Server:loop(signals)
  local handler = function(req) return self:handle(req) end
  local next_beat = process.now() + serve.HEARTBEAT
  while true do
    local handles, what = { signals, self.srv:fd() }, {}
    for id, w in pairs(self.watched) do
      handles[#handles + 1] = w.watch:fd(); what[#handles] = { id, "state" }
      if w.log_watch then handles[#handles + 1] = w.log_watch:fd(); what[#handles] = { id, "logs" } end
    end
    local now = process.now()
    local timeout = math.min(self.srv:timeout() or serve.HEARTBEAT, next_beat - now)
    for _, w in pairs(self.watched) do timeout = math.min(timeout, w.next_refresh - now) end
    local ready = process.poll(handles, math.max(0, timeout))
    for _, i in ipairs(ready) do
      if i == 1 then
        local sigs = signals:read()
        if #sigs > 0 then return sigs[1] end
      elseif what[i] then
        local id, kind = what[i][1], what[i][2]
        local w = self.watched[id]
        if w then
          if kind == "state" then
            local names = w.watch:read()
            local changed = names.overflow
            for _, n in ipairs(names) do if n == "state.json" then changed = true end end
            if changed then self:broadcast(id) end
          else
            w.log_watch:read()
            self:follow_logs(id)
          end
        end
      end
    end
    self.srv:run(handler)
    now = process.now()
    for id, w in pairs(self.watched) do
      -- A run nobody follows any more is let go.
      for s in pairs(w.streams) do if not s:alive() then w.streams[s] = nil; s:close() end end
      for s in pairs(w.log_streams) do if not s:alive() then w.log_streams[s] = nil; s:close() end end
      if next(w.streams) == nil and next(w.log_streams) == nil then
        self:unwatch(id)
      elseif now >= w.next_refresh then
        self:refresh(id, w)
      end
    end
    if now >= next_beat then
      next_beat = now + serve.HEARTBEAT
      for _, w in pairs(self.watched) do
        for s in pairs(w.streams) do if not s:send(": ping\n\n") then w.streams[s] = nil; s:close() end end
        for s in pairs(w.log_streams) do if not s:send(": ping\n\n") then w.log_streams[s] = nil; s:close() end end
      end
      self.srv:run(handler)
    end
  end
end

function Server:close()
  for id in pairs(self.watched) do self:unwatch(id) end
  self.srv:close()
end

return serve
