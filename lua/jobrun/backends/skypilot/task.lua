-- The task a job sends to /jobs/launch (README "SkyPilot"): the YAML file named by `skypilot.task`, read
-- as SkyPilot reads it (jobrun.backends.skypilot.yaml), overlaid with the job's run, setup, env (merged
-- into envs), nodes (num_nodes) and the rest of the suite's `skypilot` table:
--   resources      each field replaces the base's, inside any_of/ordered alternatives too (as
--                  launch.py's --no-spot set use_spot on every alternative); `gpus = N` is
--                  jobrun's own key: it sets every accelerator's count (launch.py's --gpus) and
--                  is not sent
--   job_recovery   a strategy name or a table, merged over the base's resources.job_recovery
--                  (itself a name or a table), and the suite's max_restarts as
--                  max_restarts_on_errors; sent as resources.job_recovery
--   workdir, file_mounts, secrets, config, volumes   file_mounts, secrets and config merge
--                  key by key over the base's; the others replace it
-- A relative `task` path is relative to the root of the git work tree jobrun runs in (the
-- repository whose commit {git.commit} names, as launch.py read
-- ./devops/skypilot/config/skypilot_run.yaml from the repository root), or to the current
-- directory outside one.
--
-- Local paths: a `workdir` or `file_mounts` source on this machine is uploaded first by the
-- official client (POST /upload); jobrun does not upload, so it refuses them when the API
-- server is not on this machine (not loopback), and makes them absolute when it is (the
-- server resolves them on its own disk, from its own directory).
local fs = require "jobrun.c.fs"
local json = require "jobrun.base.json"
local yaml = require "jobrun.backends.skypilot.yaml"
local template = require "jobrun.suite.template"

local task = {}

-- Keys of the suite's skypilot table that are jobrun's, not task fields.
task.OWN = { endpoint = true, task = true, resources = true, job_recovery = true }
-- Task fields the suite's skypilot table may set; MERGED ones merge key by key over the base.
task.FIELDS = { workdir = true, file_mounts = true, secrets = true, config = true, volumes = true }
local MERGED = { file_mounts = true, secrets = true, config = true }
-- SkyPilot's top-level task keys (sky/utils/schemas.py).
local TASK_KEYS = { name = true, num_nodes = true, resources = true, setup = true, run = true, envs = true,
                    secrets = true, workdir = true, file_mounts = true, event_callback = true, service = true,
                    pool = true, volumes = true, config = true }

local function copy(v)
  if type(v) ~= "table" then return v end
  local out = setmetatable({}, getmetatable(v))
  for k, x in pairs(v) do out[copy(k)] = copy(x) end
  return out
end
task.copy = copy

local function is_map(v) return type(v) == "table" and getmetatable(v) == nil end

-- repo_root(dir) -> the git work tree's root above dir (a .git directory or file), else nil.
function task.repo_root(dir)
  local d = fs.realpath(dir) or dir
  while d and d ~= "" do
    if fs.stat(d .. "/.git") then return d end
    local parent = d:match("^(.*)/[^/]+$")
    if parent == nil or parent == d then break end
    d = parent ~= "" and parent or (d ~= "/" and "/" or nil)
  end
  return nil
end

-- base_dir(cwd) -> where relative task and local paths are read from.
function task.base_dir(cwd)
  cwd = cwd or fs.getcwd()
  return task.repo_root(cwd) or cwd
end

local cache = {}

-- base(path, cwd) -> the task YAML's mapping, its absolute path | nil, why
function task.base(path, cwd)
  local dir = task.base_dir(cwd)
  local full = path:sub(1, 1) == "/" and path or (dir .. "/" .. path)
  if cache[full] then return copy(cache[full]), full end
  local text, err = fs.read(full)
  if not text then
    return nil, string.format("skypilot.task: cannot read %s (%s)%s", full, tostring(err or "no such file"),
      path:sub(1, 1) == "/" and "" or string.format("; a relative path is read from the repository root, %s", dir))
  end
  local docs, why = yaml.load_all(text)
  if not docs then return nil, string.format("skypilot.task: %s: %s", full, why) end
  -- A chain DAG's first document holds only its name (dag_utils); then the task follows.
  if #docs == 2 and is_map(docs[1]) and next(docs[1]) == "name" and next(docs[1], "name") == nil then
    docs = { docs[2] }
  end
  if #docs > 1 then
    return nil, string.format("skypilot.task: %s holds %d YAML documents; jobrun launches one task per job",
      full, #docs)
  end
  local doc = docs[1]
  if doc == nil or doc == json.null then doc = {} end
  if not is_map(doc) then
    return nil, string.format("skypilot.task: %s: the task must be a mapping of task fields", full)
  end
  for k in pairs(doc) do
    if not TASK_KEYS[k] then
      return nil, string.format("skypilot.task: %s: '%s' is not a SkyPilot task field", full, tostring(k))
    end
  end
  if doc.envs ~= nil and doc.envs ~= json.null and not is_map(doc.envs) then
    return nil, string.format("skypilot.task: %s: envs must be a mapping", full)
  end
  cache[full] = doc
  return copy(doc), full
end

-- set_count(acc, n) -> the accelerators with every count set to n: "L4:1" / "L4", a list of
-- those, { H100 = 8 }, or "{A10G:1, L4:1}".
local function set_count(acc, n)
  if type(acc) == "string" then
    local open, body, close = acc:match("^%s*({?)(.-)(}?)%s*$")
    local parts = {}
    for part in (body .. ","):gmatch("([^,]*),") do
      local name = part:match("^%s*([^:%s]+)")
      if name then parts[#parts + 1] = name .. ":" .. n end
    end
    return open .. table.concat(parts, ", ") .. close
  elseif type(acc) == "table" and getmetatable(acc) ~= nil or (type(acc) == "table" and #acc > 0) then
    local out = json.array({})
    for i, a in ipairs(acc) do out[i] = set_count(a, n) end
    return out
  elseif type(acc) == "table" then
    local out = {}
    for name in pairs(acc) do out[name] = n end
    return out
  end
  return acc
end
task.set_count = set_count

local function alternatives(resources)
  local out = {}
  for _, key in ipairs({ "any_of", "ordered" }) do
    if type(resources[key]) == "table" then
      for _, alt in ipairs(resources[key]) do
        if is_map(alt) then out[#out + 1] = alt end
      end
    end
  end
  return out
end

local function recovery_table(v)
  if type(v) == "string" then return { strategy = v } end
  if is_map(v) then return copy(v) end
  return {}
end

-- resources(base, o, max_restarts) -> the task's resources (nil when empty) | nil, why
local function resources(base, o, max_restarts)
  local r = is_map(base) and copy(base) or {}
  local alts = alternatives(r)
  local suite = o.resources or {}
  for k, v in pairs(suite) do
    if k ~= "gpus" and k ~= "job_recovery" then
      r[k] = copy(v)
      for _, alt in ipairs(alts) do
        if alt[k] ~= nil then alt[k] = copy(v) end
      end
    end
  end
  if suite.gpus ~= nil then
    local n, found = suite.gpus, false
    for _, holder in ipairs({ r, table.unpack(alts) }) do
      if holder.accelerators ~= nil and holder.accelerators ~= json.null then
        holder.accelerators = set_count(holder.accelerators, n)
        found = true
      end
    end
    if not found then
      return nil, string.format("skypilot.resources.gpus = %s sets every accelerator's count, but the task "
        .. "names no accelerators (set resources.accelerators, e.g. \"H100:%s\")", tostring(n), tostring(n))
    end
  end
  local recovery = recovery_table(r.job_recovery)
  for k, v in pairs(recovery_table(suite.job_recovery)) do recovery[k] = v end
  for k, v in pairs(recovery_table(o.job_recovery)) do recovery[k] = v end
  if (max_restarts or 0) > 0 then recovery.max_restarts_on_errors = max_restarts end
  r.job_recovery = next(recovery) and recovery or nil
  if next(r) == nil then return nil end
  return r
end

local function is_url(s)
  return type(s) == "string" and s:match("^%a[%w+.-]*://") ~= nil
end

-- local_paths(t) -> { {field, path, set = function(new)} … }: the sources on this machine.
function task.local_paths(t)
  local out = {}
  if type(t.workdir) == "string" and not is_url(t.workdir) then
    out[#out + 1] = { field = "workdir", path = t.workdir, set = function(p) t.workdir = p end }
  end
  if is_map(t.file_mounts) then
    for dst, src in pairs(t.file_mounts) do
      local field = string.format("file_mounts[%q]", tostring(dst))
      if type(src) == "string" and not is_url(src) then
        out[#out + 1] = { field = field, path = src, set = function(p) t.file_mounts[dst] = p end }
      elseif is_map(src) and type(src.source) == "string" and not is_url(src.source) then
        out[#out + 1] = { field = field .. ".source", path = src.source, set = function(p) src.source = p end }
      elseif is_map(src) and type(src.source) == "table" then
        for i, s in ipairs(src.source) do
          if type(s) == "string" and not is_url(s) then
            out[#out + 1] = { field = string.format("%s.source[%d]", field, i), path = s,
                              set = function(p) src.source[i] = p end }
          end
        end
      end
    end
  end
  table.sort(out, function(a, b) return a.field < b.field end)
  return out
end

-- is_loopback(endpoint): the API server runs on this machine.
function task.is_loopback(endpoint)
  local rest = tostring(endpoint):gsub("^%a[%w+.-]*://", ""):gsub("^[^/@]*@", "")
  local host = rest:match("^%[([^%]]+)%]") or rest:match("^([^:/]+)") or ""
  host = host:lower()
  return host == "localhost" or host:match("^127%.%d+%.%d+%.%d+$") ~= nil or host == "::1"
    or host == "0.0.0.0" or host:match("%.localhost$") ~= nil
end

-- join(dir, path) -> dir/path with "." and ".." segments resolved.
local function join(dir, path)
  local parts = {}
  for seg in (dir .. "/" .. path):gmatch("[^/]+") do
    if seg == ".." then parts[#parts] = nil
    elseif seg ~= "." then parts[#parts + 1] = seg end
  end
  return "/" .. table.concat(parts, "/")
end

-- localise(t, endpoint, dir) -> true | nil, why: local paths made absolute (a loopback
-- server), or refused (any other).
local function localise(t, endpoint, dir)
  local paths = task.local_paths(t)
  if #paths == 0 then return true end
  if not task.is_loopback(endpoint) then
    local p = paths[1]
    return nil, string.format("%s = %q is a path on this machine, but the SkyPilot API server %s is not on "
      .. "this machine: the server would look for it on its own disk (the official client uploads such paths "
      .. "first; jobrun does not). Check the code out in `setup` instead (e.g. git clone … && git checkout "
      .. "$METTA_GIT_REF), use a git workdir ({ url = …, ref = … }), or mount a bucket (s3://…, gs://…)",
      p.field, p.path, require("jobrun.backends.skypilot.api").shown(endpoint))
  end
  for _, p in ipairs(paths) do
    if p.path:sub(1, 1) ~= "/" and p.path:sub(1, 1) ~= "~" then p.set(join(dir, p.path)) end
  end
  return true
end

-- build(args) -> task table | nil, why
-- args: options (the suite's skypilot table), name, nodes, run, setup (shell strings or nil),
-- env, max_restarts, endpoint, cwd.
function task.build(args)
  local o = args.options or {}
  local t = {}
  if o.task then
    local base, why = task.base(o.task, args.cwd)
    if not base then return nil, why end
    t = base
  end
  for k, v in pairs(o) do
    if task.FIELDS[k] then
      if MERGED[k] and is_map(v) and is_map(t[k]) then
        for kk, vv in pairs(v) do t[k][kk] = copy(vv) end
      else
        t[k] = copy(v)
      end
    end
  end
  local envs = is_map(t.envs) and t.envs or {}
  for k, v in pairs(args.env or {}) do envs[k] = tostring(v) end
  t.envs = envs
  t.name = args.name
  t.num_nodes = args.nodes
  if args.run then t.run = args.run end
  if args.setup then t.setup = args.setup end
  local r, why = resources(t.resources, o, args.max_restarts)
  if why then return nil, why end
  t.resources = r
  local ok, err = localise(t, args.endpoint, task.base_dir(args.cwd))
  if not ok then return nil, err end
  return t
end

-- for_job(job, env, endpoint, cwd [, name]) -> task table | nil, why (name: the launch's, else
-- the job's sky_name, else its own)
function task.for_job(job, env, endpoint, cwd, name)
  local spec = job.spec
  return task.build({
    options = spec.options, name = name or job.sky_name or job.name, nodes = spec.nodes,
    run = spec.commands and spec.commands[1] and template.shell_command(spec.commands[1]),
    setup = spec.setup and template.shell_command(spec.setup) or nil,
    env = env, max_restarts = spec.max_restarts, endpoint = endpoint, cwd = cwd,
  })
end

return task
