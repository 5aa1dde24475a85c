-- Weights & Biases: a run's sampled history through W&B's GraphQL API, asked the way W&B's own
-- public API client asks it (`Run._sampled_history`: the RunSampledHistory query with one spec
-- { keys = { "_step", KEY }, samples = N }, answered with one list of rows per spec), with the
-- API key from WANDB_API_KEY as HTTP basic auth for the user "api", and the server from
-- WANDB_BASE_URL (default https://api.wandb.ai). The key is never stored or shown.
local json = require "jobrun.base.json"

local wandb = {}

wandb.SAMPLES = 1000
wandb.TIMEOUT = 15
wandb.CONNECT_TIMEOUT = 5

wandb.QUERY = [[
query RunSampledHistory($project: String!, $entity: String!, $name: String!, $specs: [JSONString!]!) {
  project(name: $project, entityName: $entity) {
    run(name: $name) { sampledHistory(specs: $specs) }
  }
}]]

-- run_of(text) -> entity, project, run id from a run's URL in text
-- (https://wandb.ai/<entity>/<project>/runs/<id>), or nil.
function wandb.run_of(text)
  return tostring(text):match("https?://[%w.-]+[:%d]*/([%w_.-]+)/([%w_.-]+)/runs/([%w_-]+)")
end

local B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
local function base64(s)
  local out = {}
  for i = 1, #s, 3 do
    local a, b, c = s:byte(i, i + 2)
    local n = (a << 16) | ((b or 0) << 8) | (c or 0)
    for k = 1, 4 do
      local shift = 18 - 6 * (k - 1)
      local six = ((n >> shift) & 63) + 1
      out[#out + 1] = (k == 3 and not b or k == 4 and not c) and "=" or B64:sub(six, six)
    end
  end
  return table.concat(out)
end
wandb.base64 = base64

-- Answers already had, per run and key: a log may print the run's URL many times.
local cache = {}

-- history(entity, project, name, key) -> list of numbers (by _step), or nil, why.
function wandb.history(entity, project, name, key)
  local id = table.concat({ entity, project, name, key }, "\0")
  local hit = cache[id]
  if hit then return hit[1], hit[2] end
  local points, why = wandb.fetch(entity, project, name, key)
  cache[id] = { points, why }
  return points, why
end

function wandb.fetch(entity, project, name, key)
  local api_key = os.getenv("WANDB_API_KEY")
  if not api_key or api_key == "" then return nil, "W&B: no WANDB_API_KEY" end
  local base = os.getenv("WANDB_BASE_URL")
  if not base or base == "" then base = "https://api.wandb.ai" end
  local spec = json.encode(json.object({ keys = { "_step", key }, samples = wandb.SAMPLES }, { "keys", "samples" }))
  local body = json.encode(json.object({ query = wandb.QUERY, variables = json.object({
    entity = entity, project = project, name = name, specs = { spec } }, { "entity", "project", "name", "specs" }) },
    { "query", "variables" }))
  local client = require("jobrun.c.http").client({ connect_timeout = wandb.CONNECT_TIMEOUT })
  local res = client:perform({ { method = "POST", url = base:gsub("/+$", "") .. "/graphql", body = body,
    timeout = wandb.TIMEOUT, headers = { "Content-Type: application/json", "User-Agent: jobrun",
    "Authorization: Basic " .. base64("api:" .. api_key) } } })[1]
  client:close()
  if res.error then return nil, "W&B: unreachable (" .. tostring(res.error):gsub("https?://%S+", "") .. ")" end
  if res.status == 401 or res.status == 403 then return nil, "W&B: unauthorised (HTTP " .. res.status .. ")" end
  if res.status ~= 200 then return nil, "W&B: HTTP " .. res.status end
  local doc = json.decode(res.body)
  if type(doc) ~= "table" then return nil, "W&B: an answer that is not JSON" end
  if type(doc.errors) == "table" and doc.errors[1] then
    return nil, "W&B: " .. tostring(doc.errors[1].message or "error")
  end
  local run = type(doc.data) == "table" and type(doc.data.project) == "table" and doc.data.project.run
  if type(run) ~= "table" then return nil, string.format("W&B: no run %s/%s/%s", entity, project, name) end
  local rows = type(run.sampledHistory) == "table" and run.sampledHistory[1]
  if type(rows) ~= "table" then return nil, "W&B: no sampled history" end
  table.sort(rows, function(a, b) return (tonumber(a._step) or 0) < (tonumber(b._step) or 0) end)
  local points = {}
  for _, row in ipairs(rows) do
    local v = type(row) == "table" and row[key]
    if type(v) == "number" then points[#points + 1] = v end
  end
  return points
end

return wandb
