-- A client of the SkyPilot API server (../shared/reference/skypilot-api.md): the asynchronous
-- request model (POST → X-Skypilot-Request-ID → /api/status, /api/get), version headers,
-- service-account tokens, basic auth from the endpoint URL, the cookie file, and retries with
-- backoff. A GET, or a POST whose operation is safe to repeat (queue, logs, cancel), is retried
-- on any transport failure or 503; any other POST (a launch) only on a 503 or when no connection
-- was made, as the official client does: after a timeout or a dropped connection the server may
-- have taken it, and the caller must look before launching again. Credentials never appear in
-- what this module returns or raises: the endpoint is shown without its user:password part.
local http = require "jobrun.c.http"
local json = require "jobrun.base.json"
local fs = require "jobrun.c.fs"
local common = require "jobrun.backends.common"
local process = require "jobrun.c.process"
local secrets = require "jobrun.base.secrets"

local api = {}
api.__index = api

api.MIN_API_VERSION = 11
api.CLIENT_API_VERSION = 24
api.CLIENT_VERSION = "0.11.2"
api.DEFAULT_ENDPOINT = "http://127.0.0.1:46580"

local TERMINAL = { SUCCEEDED = true, FAILED = true, CANCELLED = true }

local function is_map(v) return type(v) == "table" and getmetatable(v) == nil end

-- overlay(a, b): b's keys over a's, mappings merged recursively (skypilot_config's layering).
local function overlay(a, b)
  for k, v in pairs(b) do
    if is_map(v) and is_map(a[k]) then overlay(a[k], v) else a[k] = v end
  end
  return a
end

-- read_config(cwd) -> the client's SkyPilot config, as the official client layers it: the user
-- config ($SKYPILOT_CONFIG, else ~/.sky/config.yaml) under the project config
-- ($SKYPILOT_PROJECT_CONFIG, else .sky.yaml in the current directory). A file that is not
-- valid YAML is a usage error, as it is for the official client.
function api.read_config(cwd)
  local yaml = require "jobrun.backends.skypilot.yaml"
  local home = os.getenv("HOME") or ""
  local user = os.getenv("SKYPILOT_CONFIG") or os.getenv("SKYPILOT_GLOBAL_CONFIG") or (home .. "/.sky/config.yaml")
  local project = os.getenv("SKYPILOT_PROJECT_CONFIG") or ((cwd or fs.getcwd()) .. "/.sky.yaml")
  local config = {}
  for _, path in ipairs({ user, project }) do
    local text = fs.read(path)
    if text then
      local doc, why = yaml.load(text)
      if not doc then require("jobrun.base.errors").raise("SkyPilot config %s is not valid YAML: %s", path, why) end
      if is_map(doc) then overlay(config, doc) end
    end
  end
  return config
end

-- The user's identity for env_vars (user scoping), as common_utils.get_user_hash computes it:
-- SKYPILOT_USER_ID if it is a valid hash (8 hex digits), else ~/.sky/user_hash if valid, else
-- md5("<user>-<last 4 hex digits of md5(hostname)>")[:8] — what the official client would
-- compute (and store) on this machine. The name: SKYPILOT_USER, else getpass.getuser()'s.
local function valid_hash(h)
  return type(h) == "string" and #h == 8 and h:match("^%x+$") ~= nil
end

function api.user_identity()
  local md5 = require "jobrun.backends.skypilot.md5"
  local login = os.getenv("LOGNAME") or os.getenv("USER") or os.getenv("LNAME") or os.getenv("USERNAME") or "unknown"
  local name = os.getenv("SKYPILOT_USER") or login
  local hash = os.getenv("SKYPILOT_USER_ID")
  if not valid_hash(hash) then
    local home = os.getenv("HOME") or ""
    hash = (fs.read(home .. "/.sky/user_hash") or ""):match("^%s*(.-)%s*$")
  end
  if not valid_hash(hash) then
    local host = (fs.read("/proc/sys/kernel/hostname") or os.getenv("HOSTNAME") or ""):gsub("%s+$", "")
    hash = md5.hex(login .. "-" .. md5.hex(host):sub(-4)):sub(1, 8)
  end
  return { id = hash, name = name }
end

-- settings(options) -> { endpoint, token, cookie_file, config }: the suite's skypilot table
-- first, then the environment, then the SkyPilot config. config is what requests carry as
-- override_skypilot_config: the client config without api_server and admin_policy.
function api.settings(options)
  options = options or {}
  local full = api.read_config()
  local server = is_map(full.api_server) and full.api_server or {}
  local config = {}
  for k, v in pairs(full) do
    if k ~= "api_server" and k ~= "admin_policy" then config[k] = v end
  end
  -- The suite's endpoint is stored without its user:password; the plan in memory has it.
  local endpoint, source = options.endpoint and secrets.reveal(options.endpoint), "the suite's skypilot.endpoint"
  if not endpoint and os.getenv("SKYPILOT_API_SERVER_ENDPOINT") then
    endpoint, source = os.getenv("SKYPILOT_API_SERVER_ENDPOINT"), "SKYPILOT_API_SERVER_ENDPOINT"
  end
  if not endpoint and type(server.endpoint) == "string" then
    endpoint, source = server.endpoint, "the SkyPilot config"
  end
  if not endpoint then endpoint, source = api.DEFAULT_ENDPOINT, "the default endpoint" end
  local token = os.getenv("SKYPILOT_SERVICE_ACCOUNT_TOKEN")
  if not token and type(server.service_account_token) == "string" then token = server.service_account_token end
  if token == "" then token = nil end
  -- As the official client: the cookie file only when there is no Bearer token.
  local cookie_file
  if not token then
    cookie_file = os.getenv("SKYPILOT_API_COOKIE_FILE")
    if not cookie_file then
      local default = (os.getenv("HOME") or "") .. "/.sky/cookies.txt"
      if fs.stat(default) then cookie_file = default end
    end
  end
  return { endpoint = endpoint:gsub("/+$", ""), token = token, cookie_file = cookie_file, source = source,
           config = config }
end

-- shown(url): the URL without credentials, for messages and state.
function api.shown(url)
  return (url:gsub("^(%a[%w+.-]*://)[^/@]*@", "%1"))
end

function api.new(settings)
  local self = setmetatable({
    endpoint = settings.endpoint,
    base = api.shown(settings.endpoint),
    token = settings.token,
    client = http.client({ connect_timeout = 5, cookie_file = settings.cookie_file }),
    cookie_file = settings.cookie_file,
    source = settings.source,
    user = api.user_identity(),
    config = settings.config or {},
    requests = 0, -- HTTP requests sent, for the benchmark and the tests
    connections = 0, -- connections opened for them (reuse keeps this small)
    retries = settings.retries or 5,
    server_api_version = nil,
  }, api)
  return self
end

function api:headers()
  local h = { "Content-Type: application/json", "Accept: application/json" }
  if self.token then h[#h + 1] = "Authorization: Bearer " .. self.token end
  -- On every request, /api/health included, as the official client sends them.
  h[#h + 1] = "X-SkyPilot-API-Version: " .. api.CLIENT_API_VERSION
  h[#h + 1] = "X-SkyPilot-Version: " .. api.CLIENT_VERSION
  return h
end

-- unsent(r): the request failed before any of it reached the server (libcurl's messages for a
-- failed name lookup, a refused or timed-out connect; a timeout later reads "Operation timed out").
local function unsent(r)
  local e = r.error
  if not e then return false end
  return e:find("^Failed to connect") ~= nil or e:find("^Could not resolve") ~= nil
    or e:find("^Couldn't connect") ~= nil or e:find("^Connection timed out after") ~= nil
    or e:find("^Resolving timed out after") ~= nil
end

-- transient(req, r): worth another try. A 503 was answered unprocessed; a POST that may have
-- reached the server is sent again only when its operation is safe to repeat (req.resend).
local function transient(req, r)
  if r.status == 503 then return true end
  if not r.error then return false end
  return req.method ~= "POST" or req.resend or unsent(r)
end

local function describe(r)
  if r.error then return r.error end
  local doc = json.decode(r.body or "")
  local detail = type(doc) == "table" and (doc.detail or doc.message or doc.error) or r.body
  if type(detail) == "table" then detail = detail.message or json.encode(detail) end
  return string.format("HTTP %d: %s", r.status, tostring(detail):sub(1, 300))
end
api.describe = describe

-- perform(reqs [, client]) -> responses, with every transient failure retried (backoff with
-- jitter). Each response says whether the server may have taken its request (`maybe_sent`).
function api:perform(reqs, client)
  client = client or self.client
  local results, pending = {}, {}
  for i = 1, #reqs do pending[i] = i end
  for attempt = 1, self.retries do
    local batch = {}
    for k, i in ipairs(pending) do
      local r = reqs[i]
      batch[k] = { method = r.method, url = self.endpoint .. r.path, body = r.body, timeout = r.timeout or 60,
                   headers = self:headers() }
    end
    self.requests = self.requests + #batch
    local responses = client:perform(batch)
    local again = {}
    for k, i in ipairs(pending) do
      local r = responses[k]
      -- Once any try may have reached the server, the request stays "maybe sent".
      r.maybe_sent = (results[i] and results[i].maybe_sent) or (r.error ~= nil and not unsent(r)) or nil
      results[i] = r
      self.connections = self.connections + (r.connects or 0)
      if transient(reqs[i], r) then again[#again + 1] = i end
    end
    pending = again
    if #pending == 0 or attempt == self.retries then break end
    process.sleep(common.backoff(attempt, 0.2, 5))
  end
  return results
end

function api:request(method, path, body, timeout)
  return self:perform({ { method = method, path = path, body = body, timeout = timeout } })[1]
end

-- health() -> { api_version, version } | nil, why. Refuses servers below API 11.
function api:health()
  local r = self:request("GET", "/api/health", nil, 15)
  if r.error or r.status ~= 200 then
    local hint = ""
    if r.error then
      hint = string.format("\n  (endpoint from %s) Set the endpoint with "
        .. "skypilot = { endpoint = \"http://HOST:PORT\" } in the suite, SKYPILOT_API_SERVER_ENDPOINT, "
        .. "or api_server.endpoint in ~/.sky/config.yaml (`sky api login` writes it).",
        self.source or "the default endpoint")
    end
    return nil, string.format("SkyPilot API server %s: %s%s", self.base, describe(r), hint)
  end
  local doc = json.decode(r.body) or {}
  local version = math.tointeger(tonumber(doc.api_version))
  if not version or not doc.version then
    return nil, string.format("%s does not look like a SkyPilot API server (no api_version)", self.base)
  end
  if version < api.MIN_API_VERSION then
    return nil, string.format("SkyPilot API server %s speaks API %d (SkyPilot %s); jobrun needs API %d "
      .. "(SkyPilot 0.10.0) or newer", self.base, version, tostring(doc.version), api.MIN_API_VERSION)
  end
  if doc.status == "needs_auth" then
    return nil, string.format("SkyPilot API server %s needs authentication: set SKYPILOT_SERVICE_ACCOUNT_TOKEN "
      .. "(a sky_… service-account token) or api_server.service_account_token in ~/.sky/config.yaml, or put "
      .. "user:password in the endpoint URL", self.base)
  end
  if doc.status and doc.status ~= "healthy" then
    return nil, string.format("SkyPilot API server %s is %s", self.base, doc.status)
  end
  self.server_api_version = version
  return { api_version = version, version = doc.version }
end

function api:body(fields)
  -- override_skypilot_config: the client's config (its active_workspace, jobs settings …).
  local b = { env_vars = { SKYPILOT_USER_ID = self.user.id, SKYPILOT_USER = self.user.name },
              override_skypilot_config = json.object(self.config) }
  for k, v in pairs(fields) do b[k] = v end
  return json.encode(b)
end

-- submit_many({ {path, fields}… } [, opts]) -> { {id} | {error, status, maybe_sent} }…: async
-- POSTs, concurrently. opts.resend: the operation is safe to send twice. opts.fresh: over new
-- connections, because libcurl silently sends a request again when a reused connection dies
-- before any answer, which a launch must never be.
function api:submit_many(calls, opts)
  opts = opts or {}
  local reqs = {}
  for i, c in ipairs(calls) do
    reqs[i] = { method = "POST", path = c.path, body = self:body(c.fields), resend = opts.resend }
  end
  local client = opts.fresh and http.client({ connect_timeout = 5, cookie_file = self.cookie_file }) or nil
  local responses = self:perform(reqs, client)
  if client then client:close() end
  local out = {}
  for i, r in ipairs(responses) do
    local id = r.headers and (r.headers["x-skypilot-request-id"] or r.headers["x-request-id"])
    if r.status == 200 and id then out[i] = { id = id }
    else out[i] = { error = describe(r), status = r.status, maybe_sent = r.maybe_sent } end
  end
  return out
end

-- The value a request returned: return_value is JSON text inside JSON.
local function decode_record(record)
  local value = record.return_value
  if type(value) == "string" then value = json.decode(value) end
  if value == json.null then value = nil end
  return value
end

local function record_error(record)
  local e = record.error
  if type(e) == "string" then e = json.decode(e) end
  if type(e) == "table" then return string.format("%s: %s", tostring(e.type), tostring(e.message)) end
  return "request " .. tostring(record.status)
end

local function record_error_type(record)
  local e = record.error
  if type(e) == "string" then e = json.decode(e) end
  return type(e) == "table" and type(e.type) == "string" and e.type or nil
end

-- get_many(ids) -> { {value} | {error} }…: /api/get for each (they block until terminal).
function api:get_many(ids, timeout)
  local reqs = {}
  for i, id in ipairs(ids) do
    reqs[i] = { method = "GET", path = "/api/get?request_id=" .. id, timeout = timeout or 120 }
  end
  local out = {}
  for i, r in ipairs(self:perform(reqs)) do
    local doc = r.body and json.decode(r.body)
    if r.status == 200 and type(doc) == "table" then
      if doc.status == "CANCELLED" then out[i] = { error = "request cancelled" }
      else out[i] = { value = decode_record(doc) } end
    elseif r.status == 500 and type(doc) == "table" and type(doc.detail) == "table" then
      out[i] = { error = record_error(doc.detail), error_type = record_error_type(doc.detail) }
    else
      out[i] = { error = describe(r), transport = r.error ~= nil or r.status == 503 }
    end
  end
  return out
end

-- active() -> records | nil, why: every request still PENDING or RUNNING (/api/status without
-- ids); their request_body is the body as JSON text.
function api:active()
  local r = self:request("GET", "/api/status", nil, 30)
  if r.status ~= 200 then return nil, describe(r) end
  local doc = json.decode(r.body or "")
  return type(doc) == "table" and doc or {}
end

-- status(ids) -> { [id] = status }: one /api/status for many requests.
function api:status(ids)
  local q = {}
  for i, id in ipairs(ids) do q[i] = "request_ids=" .. id end
  local r = self:request("GET", "/api/status?" .. table.concat(q, "&"), nil, 30)
  if r.status ~= 200 then return nil, describe(r) end
  local out = {}
  for _, rec in ipairs(json.decode(r.body) or {}) do out[rec.request_id] = rec.status end
  return out
end

-- wait_many(ids) -> results as get_many: polls /api/status (one call for all) until each is
-- terminal, then fetches the finished ones.
function api:wait_many(ids, deadline)
  local delay = 0.05
  local results, open = {}, {}
  for i = 1, #ids do open[i] = i end
  while #open > 0 do
    local query = {}
    for k, i in ipairs(open) do query[k] = ids[i] end
    local statuses = self:status(query) or {}
    local done, still = {}, {}
    for _, i in ipairs(open) do
      if TERMINAL[statuses[ids[i]]] or (deadline and process.now() > deadline) then done[#done + 1] = i
      else still[#still + 1] = i end
    end
    if #done > 0 then
      local got_ids = {}
      for k, i in ipairs(done) do got_ids[k] = ids[i] end
      for k, r in ipairs(self:get_many(got_ids)) do results[done[k]] = r end
    end
    open = still
    if #open > 0 then process.sleep(delay); delay = math.min(delay * 2, 2) end
  end
  return results
end

-- call(path, fields [, timeout]) -> value | nil, why, status, error_type: one asynchronous operation that
-- is safe to repeat (a query, a cancel), start to finish. Never a launch: see submit_many.
function api:call(path, fields, timeout)
  local sub = self:submit_many({ { path = path, fields = fields } }, { resend = true })[1]
  if not sub.id then return nil, sub.error, sub.status end
  local got = self:get_many({ sub.id }, timeout)[1]
  if got.error then return nil, got.error, nil, got.error_type end
  return got.value == nil and json.null or got.value
end

-- job_logs(job_ids, tail) -> { {text, exit_code} | {error} }…: /jobs/logs (not following)
-- for each job, concurrently; <sky-payload> control lines dropped, ANSI colour kept. The
-- stream answers 200 even when the request fails (its text is then the error): the text is
-- kept only when /api/get says the request succeeded. A jobs controller that has stopped
-- (ClusterNotUpError: it auto-stops when idle) is asked again with refresh, which starts it;
-- a stream that says <retry>, or whose outcome could not be fetched, is asked again.
function api:job_logs(job_ids, tail)
  local out, waiting = {}, {}
  for i, id in ipairs(job_ids) do waiting[#waiting + 1] = { i = i, id = id, refresh = false, tries = 0 } end
  while #waiting > 0 do
    local reqs = {}
    for k, item in ipairs(waiting) do
      item.tries = item.tries + 1
      reqs[k] = { method = "POST", path = "/jobs/logs", timeout = 300, resend = true, body = self:body({
        job_id = math.tointeger(tonumber(item.id)) or item.id, follow = false, controller = false,
        refresh = item.refresh, tail = (tail and tail > 0) and tail or json.null }) }
    end
    local ids, where, texts = {}, {}, {}
    for k, r in ipairs(self:perform(reqs)) do
      local item = waiting[k]
      if r.status == 200 then
        local lines, retry = {}, false
        for line in (r.body or ""):gmatch("[^\n]*\n?") do
          if line:find("<sky-payload", 1, true) then
            if line:find("<retry>", 1, true) then retry = true end
          elseif line ~= "" then
            lines[#lines + 1] = line
          end
        end
        texts[k] = { text = table.concat(lines), retry = retry }
        local id = r.headers["x-skypilot-request-id"] or r.headers["x-request-id"]
        if id then ids[#ids + 1] = id; where[#ids] = k
        else out[item.i] = { error = "the log stream carried no request id" } end
      else
        out[item.i] = { error = describe(r) }
      end
    end
    local again = {}
    for n, got in ipairs(self:get_many(ids, 60)) do
      local k = where[n]
      local item, fetched = waiting[k], texts[k]
      if (fetched.retry or got.transport) and item.tries < 3 then
        again[#again + 1] = item
      elseif got.error_type == "ClusterNotUpError" and not item.refresh then
        item.refresh = true
        again[#again + 1] = item
      elseif got.error or fetched.retry then
        out[item.i] = { error = got.error or "the server asked for the logs request to be sent again" }
      else
        out[item.i] = { text = fetched.text, exit_code = math.tointeger(got.value) }
      end
    end
    waiting = again
  end
  return out
end

return api
