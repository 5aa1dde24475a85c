-- The environment suite files and packs run in. Suites are trusted code, like a Makefile; what
-- this guards is jobrun's own run: os.exit is out of reach by every path (the suite's `os`,
-- `require "os"`, `package.loaded`, `load` without an env, the debug library's registry and
-- upvalues), and every error a suite raises, whatever its value, becomes a user error with the
-- file:line it was raised at. jobrun's own modules keep the real `os`: the suite gets its own
-- `require` and `package` view instead of a changed global one.
local errors = require "jobrun.base.errors"
local embed = require "jobrun.c.embed"

local sandbox = {}

-- Chunk names of the code that runs in a sandbox (suites, packs, their modules, what they
-- load()): an error's location is the innermost frame running one of them.
local chunks = {}

local function copy_lib(lib, keep)
  local out = {}
  for k, v in pairs(lib) do if keep == nil or keep[k] then out[k] = v end end
  return out
end

local function frame_where(info)
  local file = info.source:sub(1, 1) == "@" and info.source:sub(2) or info.short_src
  return { file = file, line = info.currentline }
end

-- where_raised(level): the innermost sandboxed frame from `level` up, else the innermost Lua frame.
local function where_raised(level)
  local first
  for l = level + 1, level + 200 do
    local info = debug.getinfo(l, "Sl")
    if not info then break end
    if info.what ~= "C" and info.currentline and info.currentline > 0 then
      if chunks[info.source] then return frame_where(info) end
      first = first or frame_where(info)
    end
  end
  return first
end
sandbox.where_raised = where_raised

local function has_position(msg)
  return msg:match("^[^:\n]+:%d+: ") ~= nil
end

-- as_user_error(e, where): e as a user error whose message names where it was raised.
local function as_user_error(e, where)
  if errors.is_user(e) then return e end
  if type(e) == "table" and e.signal then return e end -- jobrun.c.guard's: a signal, not an error
  local msg
  if type(e) == "string" or type(e) == "number" then
    msg = tostring(e)
  else
    local mt = getmetatable(e)
    local ok, text = false, nil
    if type(mt) == "table" and mt.__tostring then ok, text = pcall(tostring, e) end
    msg = (ok and type(text) == "string") and text or string.format("(error object is a %s value)", type(e))
  end
  if where and not has_position(msg) then msg = string.format("%s:%d: %s", where.file, where.line, msg) end
  return errors.new(msg)
end

local function handler(e)
  if errors.is_user(e) then return e end
  return as_user_error(e, where_raised(2))
end

-- call(fn, ...) -> ok, results… | false, user_error: fn under a handler that locates any error.
function sandbox.call(fn, ...)
  local res = table.pack(xpcall(fn, handler, ...))
  if not res[1] then
    -- Memory errors skip the handler.
    return false, as_user_error(res[2], nil)
  end
  return table.unpack(res, 1, res.n)
end

-- run(fn, ...) -> results of fn; any error re-raised as a located user error.
function sandbox.run(fn, ...)
  local res = table.pack(sandbox.call(fn, ...))
  if not res[1] then error(res[2], 0) end
  return table.unpack(res, 2, res.n)
end

-- load_chunk(source, chunkname, env) -> function | nil, err: text only, remembered as sandboxed.
function sandbox.load(source, chunkname, env)
  local fn, err = load(source, chunkname, "t", env)
  if fn then
    local info = debug.getinfo(fn, "S")
    chunks[info.source] = true
  end
  return fn, err
end

local STD = { "string", "table", "math", "utf8", "coroutine", "io" }

-- require for a sandbox: the suite's own libraries first, jobrun's modules and C modules as
-- jobrun loads them, Lua files on the suite's package.path run in the suite's environment.
local function make_require(env, loaded)
  local function require_(name)
    if type(name) ~= "string" then
      error(string.format("bad argument #1 to 'require' (string expected, got %s)", type(name)), 2)
    end
    local v = loaded[name]
    if v ~= nil then return v end
    local pkg = env.package
    local jobrun_module = (name == "jobrun" or name:sub(1, 7) == "jobrun.") and embed.source(name)
    if jobrun_module or package.preload[name] then
      v = require(name)
      loaded[name] = v
      return v
    end
    local path_ = type(pkg) == "table" and type(pkg.path) == "string" and pkg.path or package.path
    local file, err = package.searchpath(name, path_)
    if file then
      local f = io.open(file, "rb")
      local source = f and f:read("a")
      if f then f:close() end
      if not source then error(string.format("error loading module '%s': cannot read %s", name, file), 2) end
      local fn, lerr = sandbox.load(source, "@" .. file, env)
      if not fn then error(string.format("error loading module '%s' from file '%s':\n\t%s", name, file, lerr), 2) end
      v = fn(name, file)
      if v == nil then v = loaded[name] ~= nil and loaded[name] or true end
      loaded[name] = v
      return v, file
    end
    local cpath = type(pkg) == "table" and type(pkg.cpath) == "string" and pkg.cpath or package.cpath
    if package.searchpath(name, cpath) or package.searchpath(name:match("^[^.]+"), cpath) then
      v = require(name) -- a C module: trusted native code, loaded as jobrun loads it
      loaded[name] = v
      return v
    end
    error(string.format("module '%s' not found:\n\tno field package.preload['%s']\n\t%s", name, name,
      (err or ""):gsub("^%s+", "")), 2)
  end
  return require_
end

-- env() -> a fresh environment: the standard libraries without os.exit, a debug library that
-- only reads (traceback, getinfo), load() that defaults to this environment, own require/package.
function sandbox.env()
  local env = {}
  for _, name in ipairs({ "assert", "error", "ipairs", "next", "pairs", "pcall", "print",
      "rawequal", "rawget", "rawlen", "rawset", "select", "setmetatable", "getmetatable",
      "tonumber", "tostring", "type", "xpcall", "_VERSION" }) do
    env[name] = _G[name]
  end
  for _, lib in ipairs(STD) do env[lib] = copy_lib(_G[lib]) end
  -- Strings share one metatable, jobrun's own code's included: a suite that changed it (its
  -- __index, or the string library behind it) would change jobrun's output, or break its error
  -- handler. The suite gets a metatable of its own for strings, whose __index is its own copy
  -- of the library; methods on strings still reach the real, unchanged one.
  local string_mt = { __index = env.string }
  env.getmetatable = function(v)
    if type(v) == "string" then return string_mt end
    return getmetatable(v)
  end
  env.debug = copy_lib(debug, { traceback = true, getinfo = true })
  env.os = copy_lib(os)
  env.os.exit = function()
    errors.at(where_raised(1), "os.exit is not available to suites (a suite declares jobs; "
      .. "it cannot end jobrun)")
  end
  env.load = function(...)
    local chunk, chunkname, _, chunk_env = ...
    if select("#", ...) < 4 then chunk_env = env end
    if chunkname == nil and type(chunk) == "string" then chunkname = chunk end
    return sandbox.load(chunk, chunkname or "=(load)", chunk_env)
  end
  local loaded = { _G = env, os = env.os, debug = env.debug }
  for _, lib in ipairs(STD) do loaded[lib] = env[lib] end
  env.package = {
    path = package.path, cpath = package.cpath, config = package.config,
    searchpath = package.searchpath, preload = package.preload, loaded = loaded,
  }
  loaded.package = env.package
  env.require = make_require(env, loaded)
  env._G = env
  return env
end

return sandbox
