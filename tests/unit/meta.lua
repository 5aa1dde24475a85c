-- share/jobrun-meta.lua, the Lua language server's annotations of the suite DSL: generated from
-- the schema (so it is current: `make` rewrites it), valid Lua, and complete.
local tap = require "tap"
local fs = require "jobrun.c.fs"
local meta = require "jobrun.suite.meta"
local schema = require "jobrun.suite.schema"

local path = os.getenv("JOBRUN_TOP") .. "/share/jobrun-meta.lua"
local text = meta.generate()

tap.test("the committed file is current", function()
  local on_disk = fs.read(path)
  tap.ok(on_disk ~= nil, "share/jobrun-meta.lua exists")
  tap.ok(on_disk == text, "it is what jobrun __meta prints now (run make to regenerate it)")
end)

tap.test("valid Lua", function()
  local chunk, err = load(text, "=jobrun-meta", "t", {})
  tap.ok(chunk ~= nil, "loads: " .. tostring(err))
  tap.ok(text:match("^%-%-%-@meta\n") ~= nil, "starts with ---@meta")
  -- Its globals are declarations only: running it in an empty environment defines them.
  local env = {}
  load(text, "=jobrun-meta", "t", env)()
  for _, g in ipairs({ "suite", "condition", "parser", "use", "env" }) do
    tap.is(type(env[g]), "function", g .. " is declared")
  end
end)

tap.test("every field of the schema, with its type and doc", function()
  local missing = {}
  local CLASS = { suite = "Suite", condition = "Condition", parser = "Parser", expect = "Expect", git = "GitPolicy" }
  for _, decl in ipairs({ "suite", "condition", "parser", "expect", "git" }) do
    local block = text:match("\n%-%-%-@class jobrun%." .. CLASS[decl] .. "\n(.-)\n\n") or ""
    for name, f in pairs(schema.fields[decl]) do
      local key = name == "local" and '%["local"%]' or name:gsub("%p", "%%%0")
      local line = ("\n" .. block):match("\n%-%-%-@field " .. key .. "%? ([^\n]*)")
      if not line or not line:find(schema.LUA_TYPES[f.kind], 1, true) or (f.doc and not line:find(f.doc, 1, true)) then
        missing[#missing + 1] = decl .. "." .. name
      end
    end
  end
  tap.is(missing, {}, "each appears as ---@field NAME? TYPE DOC")
  for name in pairs(schema.git_info) do
    tap.ok(text:find("\n---@field " .. name .. " ", 1, true), "git." .. name)
  end
end)

-- share/jobrun-script.lua: the script API (`require "jobrun"`), written by hand: every function
-- lua/jobrun/script/api.lua gives a script (its job and suite handles' methods in
-- lua/jobrun/script/jobs.lua) is annotated, and every field of a job's result.
tap.test("the script API's annotations: complete, and valid Lua", function()
  local top = os.getenv("JOBRUN_TOP")
  local api_text = assert(fs.read(top .. "/share/jobrun-script.lua"))
  tap.ok(api_text:match("^%-%-%-@meta jobrun\n") ~= nil, "a meta file that `require \"jobrun\"` finds")
  local chunk, err = load(api_text, "=jobrun-script", "t", {})
  tap.ok(chunk ~= nil, "loads: " .. tostring(err))
  local module = chunk and chunk()
  local source = assert(fs.read(top .. "/lua/jobrun/script/api.lua"))
  local handles = assert(fs.read(top .. "/lua/jobrun/script/jobs.lua"))
  local missing, seen = {}, 0
  local OWNER = { M = "jobrun.", Job = "Job:", Suite = "SuiteStep:" }
  local found = {}
  for owner, sep, name in source:gmatch("\n  function (%a+)([.:])([%w_]+)%(") do
    found[#found + 1] = { owner, sep, name }
  end
  for owner, sep, name in handles:gmatch("\nfunction (%a+)([.:])([%w_]+)%(") do
    if owner == "Job" or owner == "Suite" then found[#found + 1] = { owner, sep, name } end
  end
  for _, f in ipairs(found) do
    local owner, sep, name = f[1], f[2], f[3]
    seen = seen + 1
    local annotated = OWNER[owner] and OWNER[owner]:sub(-1) == sep
      and api_text:find("\nfunction " .. OWNER[owner] .. name .. "(", 1, true)
    if not annotated then missing[#missing + 1] = owner .. sep .. name end
    if owner == "M" and type(module) == "table" and type(module[name]) ~= "function" then
      missing[#missing + 1] = "returned: jobrun." .. name
    end
  end
  tap.ok(seen >= 15, "api.lua's functions found (" .. seen .. ")")
  tap.is(missing, {}, "each is annotated")
  local results = require "jobrun.judge.results"
  local fields = {}
  for _, cls in ipairs({ "jobrun%.Result", "jobrun%.JobResult: jobrun%.Result" }) do
    local block = ((cls:find("JobResult") and api_text or text):match("\n%-%-%-@class " .. cls .. "\n(.-)\n\n")) or ""
    for name in ("\n" .. block):gmatch("\n%-%-%-@field ([%w_]+)") do fields[name] = true end
  end
  local absent = {}
  for _, name in ipairs(results.ORDER) do if not fields[name] then absent[#absent + 1] = name end end
  tap.is(absent, {}, "every field of a job's result (results.ORDER)")
end)

return tap.done()
