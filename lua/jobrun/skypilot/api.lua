-- A client of the SkyPilot API server (../shared/reference/skypilot-api.md): the asynchronous
-- request model (POST → X-Skypilot-Request-ID → /api/status, /api/get), version headers,
-- service-account tokens, basic auth from the endpoint URL, the cookie file, and retries with
-- backoff. A GET, or a POST whose operation is safe to repeat (queue, logs, cancel), is retried
-- on any transport failure or 503; any other POST (a launch) only on a 503 or when no connection
-- was made, as the official client does: after a timeout or a dropped connection the server may
-- have taken it, and the caller must look before launching again. Credentials never appear in
-- what this module returns or raises: the endpoint is shown without its user:password part.
local http = require "jobrun.c.http"
local json = require "jobrun.json"
local fs = require "jobrun.c.fs"
local common = require "jobrun.backends.common"
local process = require "jobrun.c.process"
local secrets = require "jobrun.secrets"

local api = {}
api.__index = api

api.MIN_API_VERSION = 11
api.CLIENT_API_VERSION = 24
api.CLIENT_VERSION = "0.11.2"
api.DEFAULT_ENDPOINT = "http://127.0.0.1:46580"

local TERMINAL = { SUCCEEDED = true, FAILED = true, CANCELLED = true }

-- ~/.sky/config.yaml: only `api_server: { endpoint, service_account_token }` is read.
local function read_config()
  local home = os.getenv("HOME") or ""
  local text = fs.read(home .. "/.sky/config.yaml")
  if not text then return {} end
  local out, in_block = {}, false
  for line in text:gmatch("[^\n]+") do
    if line:match("^api_server:%s*$") then
      in_block = true
    elseif line:match("^%S") then
      in_block = false
    elseif in_block then
      local key, value = line:match("^%s+([%w_]+):%s*(.-)%s*$")
      if key then out[key] = value:gsub("^[\"'](.*)[\"']$", "%1") end
    end
  end
  return out
end

-- The user's identity for env_vars (user scoping): SkyPilot's own hash when there is one.
local function user_identity()
  local home = os.getenv("HOME") or ""
  local hash = (fs.read(home .. "/.sky/user_hash") or ""):match("^%s*([%w-]+)")
  local name = os.getenv("USER") or os.getenv("LOGNAME") or "jobrun"
  if not hash then
    local h = 2166136261
    for i = 1, #name do h = ((h ~ name:byte(i)) * 16777619) & 0xffffffff end
    hash = string.format("%08x", h)
  end
  return { id = hash:sub(1, 8), name = name }
end

-- settings(options) -> { endpoint, token, cookie_file }: the suite's skypilot table first, then
-- the environment, then ~/.sky/config.yaml.
function api.settings(options)
  options = options or {}
  local config = read_config()
  -- The suite's endpoint is stored without its user:password; the plan in memory has it.
  local endpoint, source = options.endpoint and secrets.reveal(options.endpoint), "the suite's skypilot.endpoint"
  if not endpoint and os.getenv("SKYPILOT_API_SERVER_ENDPOINT") then
    endpoint, source = os.getenv("SKYPILOT_API_SERVER_ENDPOINT"), "SKYPILOT_API_SERVER_ENDPOINT"
  end
  if not endpoint and config.endpoint then endpoint, source = config.endpoint, "~/.sky/config.yaml" end
  if not endpoint then endpoint, source = api.DEFAULT_ENDPOINT, "the default endpoint" end
  local token = os.getenv("SKYPILOT_SERVICE_ACCOUNT_TOKEN") or config.service_account_token
  if token == "" then token = nil end
  local cookie_file = os.getenv("SKYPILOT_API_COOKIE_FILE")
  if not cookie_file then
    local default = (os.getenv("HOME") or "") .. "/.sky/cookies.txt"
    if fs.stat(default) then cookie_file = default end
  end
  return { endpoint = endpoint:gsub("/+$", ""), token = token, cookie_file = cookie_file, source = source }
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
    user = user_identity(),
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
  if self.server_api_version then
    h[#h + 1] = "X-SkyPilot-API-Version: " .. api.CLIENT_API_VERSION
    h[#h + 1] = "X-SkyPilot-Version: " .. api.CLIENT_VERSION
  end
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
  if doc.status and doc.status ~= "healthy" then
    return nil, string.format("SkyPilot API server %s is %s", self.base, doc.status)
  end
  self.server_api_version = version
  return { api_version = version, version = doc.version }
end

function api:body(fields)
  local b = { env_vars = { SKYPILOT_USER_ID = self.user.id, SKYPILOT_USER = self.user.name } }
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
      out[i] = { error = record_error(doc.detail) }
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

-- call(path, fields [, timeout]) -> value | nil, why, status: one asynchronous operation that
-- is safe to repeat (a query, a cancel), start to finish. Never a launch: see submit_many.
function api:call(path, fields, timeout)
  local sub = self:submit_many({ { path = path, fields = fields } }, { resend = true })[1]
  if not sub.id then return nil, sub.error, sub.status end
  local got = self:get_many({ sub.id }, timeout)[1]
  if got.error then return nil, got.error end
  return got.value == nil and json.null or got.value
end

-- job_logs(job_ids, tail) -> { {text, exit_code} | {error} }…: /jobs/logs (not following)
-- for each job, concurrently; <sky-payload> control lines dropped, ANSI colour kept.
function api:job_logs(job_ids, tail)
  local reqs = {}
  for i, id in ipairs(job_ids) do
    reqs[i] = { method = "POST", path = "/jobs/logs", timeout = 300, resend = true, body = self:body({
      job_id = math.tointeger(tonumber(id)) or id, follow = false, controller = false, refresh = false,
      tail = (tail and tail > 0) and tail or json.null }) }
  end
  local out, ids, where = {}, {}, {}
  for i, r in ipairs(self:perform(reqs)) do
    if r.status == 200 then
      local lines = {}
      for line in (r.body or ""):gmatch("[^\n]*\n?") do
        if line ~= "" and not line:find("<sky-payload", 1, true) then lines[#lines + 1] = line end
      end
      out[i] = { text = table.concat(lines) }
      local id = r.headers["x-skypilot-request-id"]
      if id then ids[#ids + 1] = id; where[#ids] = i end
    else
      out[i] = { error = describe(r) }
    end
  end
  for k, got in ipairs(self:get_many(ids, 60)) do
    out[where[k]].exit_code = math.tointeger(got.value)
  end
  return out
end

return api
