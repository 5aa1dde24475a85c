-- Suite files: plain Lua evaluated in a fresh environment (jobrun.suite.sandbox) whose globals are the
-- declarations (suite, condition, parser, metric, use, env, git) and the standard libraries without os.exit.
-- Every declaration remembers the file:line it was written at; errors about it name that place.
local errors = require "jobrun.base.errors"
local schema = require "jobrun.suite.schema"
local sandbox = require "jobrun.suite.sandbox"
local embed = require "jobrun.c.embed"
local fs = require "jobrun.c.fs"

local dsl = {}

local function location(level)
  local info = debug.getinfo(level + 1, "Sl")
  if not info then return { file = "?", line = 0 } end
  local file = info.source:sub(1, 1) == "@" and info.source:sub(2) or info.short_src
  return { file = file, line = info.currentline }
end
dsl.location = location

local function run_chunk(path, source, env)
  local chunk, err = sandbox.load(source, "@" .. path, env)
  if not chunk then errors.raise("%s", err) end
  return sandbox.run(chunk)
end

-- A fresh declaration set for one suite file.
local function new_decls(path)
  return {
    file = path,
    suite = nil,
    conditions = {}, condition_order = {},
    parsers = {}, parser_order = {},
    metrics = {}, metric_order = {},
    packs = {}, pack_values = {},
    open = {}, -- declarations whose body table never came: suite "x" without { … }
  }
end

-- declare(kind, decls, store): builds `kind "name" { … }`.
local function declarer(kind, decls, on_body)
  return function(name)
    local where = location(2)
    if type(name) == "table" then
      errors.at(where, "%s needs a name: %s \"name\" { … }", kind, kind)
    end
    if type(name) ~= "string" or name == "" then
      errors.at(where, "%s name must be a non-empty string", kind)
    end
    local pending = { kind = kind, name = name, where = where }
    decls.open[pending] = true
    return function(body)
      decls.open[pending] = nil
      if type(body) ~= "table" then
        errors.at(where, "%s \"%s\" must be followed by a table: %s \"%s\" { … }",
          kind, name, kind, name)
      end
      local what = string.format("%s \"%s\"", kind, name)
      schema.check_table(kind, body, where, what)
      schema.check_tree(body, where, what)
      on_body(name, body, where)
    end
  end
end

local function add_named(decls, list_key, order_key, name, body, where, kind)
  local existing = decls[list_key][name]
  if existing and existing.where.file == where.file then
    errors.at(where, "%s \"%s\" is declared twice (first at line %d)", kind, name, existing.where.line)
  end
  if not existing then table.insert(decls[order_key], name) end
  -- What a pack declared and the suite redeclared is kept aside: a pack's conditions say which
  -- terminations its parsers capture (plan.known_terminations).
  if existing then
    decls.replaced = decls.replaced or {}
    table.insert(decls.replaced, existing)
  end
  decls[list_key][name] = { name = name, where = where, fields = body }
end

-- condition and parser: named declarations, several per file.
local function declare_named(env, decls)
  env.condition = declarer("condition", decls, function(name, body, where)
    add_named(decls, "conditions", "condition_order", name, body, where, "condition")
  end)
  env.parser = declarer("parser", decls, function(name, body, where)
    add_named(decls, "parsers", "parser_order", name, body, where, "parser")
  end)
  env.metric = declarer("metric", decls, function(name, body, where)
    add_named(decls, "metrics", "metric_order", name, body, where, "metric")
  end)
end

-- validate_metrics(decls): each metric's pattern and prefilter (jobrun.judge.metrics.validate).
local function validate_metrics(decls)
  local metrics = require "jobrun.judge.metrics"
  for _, name in ipairs(decls.metric_order) do
    local m = decls.metrics[name]
    local why = metrics.validate(m.fields)
    if why then errors.at(m.where, "metric \"%s\": %s", name, why) end
  end
end

-- jobrun's own packs (lua/jobrun/packs), for error messages and completion.
dsl.BUILTIN_PACKS = { "metta" }

-- is_pack_path(name): a pack given as a file ("lib/parsers.lua", "./mine") rather than a name.
function dsl.is_pack_path(name)
  return name:find("/", 1, true) ~= nil or name:match("%.lua$") ~= nil
end

-- find_pack(name, base_dir) -> path, source | nil, where_looked: a path (relative to base_dir:
-- the suite's directory, or "." on the command line), else NAME.lua beside the suite or on
-- package.path, else a built-in pack.
local function find_pack(name, base_dir)
  if dsl.is_pack_path(name) then
    local path = name:sub(1, 1) == "/" and name or (base_dir == "." and name or base_dir .. "/" .. name)
    local st = fs.stat(path)
    local source = st and st.type == "file" and fs.read(path)
    if source then return path, source end
    return nil, string.format("no file '%s'", path)
  end
  local search = base_dir .. "/?.lua;" .. package.path
  local path, tried = package.searchpath(name, search)
  if path then
    local source = fs.read(path)
    if source then return path, source end
  end
  local source, chunkname = embed.source("jobrun.packs." .. name)
  if source then return chunkname:sub(2), source end
  local files, seen = {}, {}
  for file in (tried or ""):gmatch("no file '([^']+)'") do
    if not seen[file] then seen[file] = true; files[#files + 1] = file end
  end
  return nil, string.format("looked for %s; built-in packs: %s", table.concat(files, ", "),
    table.concat(dsl.BUILTIN_PACKS, ", "))
end

local function validate_parser(p)
  local f = p.fields
  local what = string.format("parser \"%s\"", p.name)
  if not (f.contains or f.pattern or f.fn) then
    errors.at(p.where, "%s needs contains, pattern or fn", what)
  end
  if not f.fn and not f.field then errors.at(p.where, "%s needs a field to set", what) end
  if f.pattern then
    local ok, err = pcall(string.find, f.pattern .. "", f.pattern)
    if not ok then errors.at(p.where, "%s: bad pattern: %s", what, tostring(err):gsub("^.-: ", "")) end
    if not f.pattern:find("%(") and f.value == nil then
      errors.at(p.where, "%s: pattern has no capture and no value is given", what)
    end
  end
end

-- load(path [, git_info [, parsers_only]]) -> decls: the suite, conditions and parsers declared
-- by the file and its packs. git_info (jobrun.base.git.info) becomes the read-only `git` global.
-- parsers_only: a file without a suite is fine (analyze --suite on a file of parsers).
function dsl.load(path, git_info, parsers_only)
  local source, err = fs.read(path)
  if not source then errors.raise("cannot read suite: %s", err) end
  local suite_dir = path:match("^(.*)/[^/]*$") or "."
  package.path = suite_dir .. "/?.lua;" .. suite_dir .. "/?/init.lua;" .. package.path

  local decls = new_decls(path)
  local env = sandbox.env()

  -- Several suites make one run (README "Pipelines: several suites in one file"); decls.suite is
  -- the first, as a one-suite file has it.
  decls.suites = {}
  env.suite = declarer("suite", decls, function(name, body, where)
    for _, other in ipairs(decls.suites) do
      if other.name == name then
        errors.at(where, "suite \"%s\" is declared twice (first at line %d)", name, other.where.line)
      end
    end
    local s = { name = name, where = where, fields = body }
    decls.suites[#decls.suites + 1] = s
    decls.suite = decls.suite or s
  end)
  declare_named(env, decls)
  env.use = function(name)
    local where = location(2)
    if type(name) ~= "string" then errors.at(where, "use needs a pack name: use \"metta\"") end
    if decls.packs[name] then return decls.pack_values[name] end
    local pack_path, pack_source = find_pack(name, suite_dir)
    if not pack_path then errors.at(where, "unknown pack '%s' (%s)", name, pack_source) end
    decls.packs[name] = pack_path
    table.insert(decls.packs, name)
    decls.pack_values[name] = run_chunk(pack_path, pack_source, env)
    return decls.pack_values[name]
  end
  env.env = function(name, default)
    if type(name) ~= "string" then errors.at(location(2), "env needs a variable name") end
    local v = os.getenv(name)
    if v == nil then return default end
    return v
  end
  if git_info and getmetatable(git_info) then
    env.git = git_info -- already a read-only proxy (jobrun.base.git.lazy)
  else
    env.git = git_info and require("jobrun.base.git").readonly(git_info) or nil
  end

  decls.source = source
  run_chunk(path, source, env)

  local first_open
  for pending in pairs(decls.open) do
    if not first_open or pending.where.line < first_open.where.line then first_open = pending end
  end
  if first_open then
    errors.at(first_open.where, "%s \"%s\" has no body: write %s \"%s\" { … }",
      first_open.kind, first_open.name, first_open.kind, first_open.name)
  end
  if not decls.suite and not parsers_only then
    errors.raise("%s: no suite declared (write suite \"name\" { … })", path)
  end
  if not decls.suite and #decls.parser_order == 0 then
    errors.raise("%s: no parser declared, and no suite (write parser \"name\" { … })", path)
  end
  for _, name in ipairs(decls.parser_order) do validate_parser(decls.parsers[name]) end
  validate_metrics(decls)
  return decls
end

-- Packs evaluated on their own (for `jobrun analyze` without a suite).
function dsl.load_packs(names)
  local decls = new_decls("(packs)")
  local env = sandbox.env()
  declare_named(env, decls)
  env.suite = function() return function() end end
  env.use = function() end
  env.env = function(_, default) return default end
  for _, name in ipairs(names) do
    local path, source = find_pack(name, ".")
    if not path then errors.raise("unknown pack '%s' (%s)", name, source) end
    run_chunk(path, source, env)
  end
  for _, name in ipairs(decls.parser_order) do validate_parser(decls.parsers[name]) end
  validate_metrics(decls)
  return decls
end

return dsl
