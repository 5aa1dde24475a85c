-- Random suites, seeded: every one either plans or fails with a user error that names the suite
-- file and a line — never an internal error. JOBRUN_SEED=N reproduces a run (the seed is printed),
-- JOBRUN_FUZZ_SECONDS sets the time spent (default 3).
local tap = require "tap"
local fs = require "jobrun.c.fs"
local process = require "jobrun.c.process"
local errors = require "jobrun.base.errors"
local dsl = require "jobrun.suite.dsl"
local plan = require "jobrun.plan"

local seed = tonumber(os.getenv("JOBRUN_SEED")) or (os.time() % 1000000)
local seconds = tonumber(os.getenv("JOBRUN_FUZZ_SECONDS")) or 3
math.randomseed(seed)
tap.ok(true, string.format("seed %d (JOBRUN_SEED=%d reproduces this run)", seed, seed))

local dir = os.tmpname()
os.remove(dir)
assert(fs.mkdir_p(dir))

local R = math.random
local function pick(list) return list[R(#list)] end
local function lit(v) return string.format("%q", v) end

local ODD_STRINGS = { "", "a b", "$(touch pwned)", "`id`", "it's", '"q"', "{name}", "{{x}}", "${HOME}",
  "\0", "a\0b", "\255\254", "\27]0;t\7", "\n", "é✓", "-", "--flag", "x=1", string.rep("z", 300), "nan" }
local NAMES = { "a", "b", "nodes", "condition", "recipe", "node-version", "", "a b", "include", "1x", "name",
  "suite", "args", "x.y" }

local value -- forward
-- Half the suites are tame (values and fields of the right kinds, odd strings allowed), so
-- that many plan; the wild half may put anything anywhere.
local wild = true

local function table_value(depth)
  local parts = {}
  if R(5) > 1 or not wild then parts[#parts + 1] = "name = " .. value(depth + 1, true) end
  for _ = 1, R(0, 3) do
    parts[#parts + 1] = string.format("[%s] = %s", lit(pick(NAMES)), value(depth + 1))
  end
  if R(6) == 1 then parts[#parts + 1] = value(depth + 1) end
  return "{ " .. table.concat(parts, ", ") .. " }"
end

-- value(depth [, scalar]): Lua source of a random value.
value = function(depth, scalar)
  local k = R((scalar or not wild) and 7 or 12)
  if not wild and k == 2 then k = 1 end
  if not wild and k == 6 then k = 3 end
  if not wild and k == 7 and depth == 0 and R(2) == 1 then return table_value(0) end
  if k == 1 then return tostring(R(-3, 5)) end
  if k == 2 then return pick({ "1.5", "2.0", "0/0", "1/0", "-0.0", "math.maxinteger", "1e300" }) end
  if k <= 5 then return lit(R(3) == 1 and pick(ODD_STRINGS) or ("v" .. R(4))) end
  if k == 6 then return pick({ "true", "false" }) end
  if k == 7 then return lit(pick(ODD_STRINGS)) end
  if k <= 9 and depth < 3 then return table_value(depth) end
  if k == 10 then return pick({ "cyc", "deep", "function() end", "nil", "io.stdout" }) end
  return lit("w" .. R(3))
end

local function list(n, gen)
  local out = {}
  for i = 1, n do out[i] = gen() end
  return "{ " .. table.concat(out, ", ") .. " }"
end

local function template(axes)
  local out = {}
  for _ = 1, R(1, 5) do
    local k = R(10)
    if k <= 3 and #axes > 0 then out[#out + 1] = "{" .. pick(axes) .. "}"
    elseif k == 4 and #axes > 0 then out[#out + 1] = "{" .. pick(axes) .. "." .. pick({ "name", "x", "a" }) .. "}"
    elseif k == 5 then out[#out + 1] = pick(wild and { "{suite}", "{nodes}", "{run_id}", "{attempt}", "{args}",
      "{git.commit}", "{suite_dir}", "{name}", "{condition.name}" } or { "{suite}", "{nodes}", "{args}", "{run_id}" })
    elseif k == 6 and wild then
      out[#out + 1] = pick({ "{zzz}", "{nodez}", "{", "}", "{{", "}}", "${X}", "{a,b}", "{1..3}", "'", '"' })
    else out[#out + 1] = pick({ "echo ", "_", "x", " ", "-", "\\" }) end
  end
  return table.concat(out)
end

local function command(axes)
  local k = wild and R(8) or R(5)
  if k <= 4 then return lit(template(axes)) end
  if k == 5 then return list(R(0, 3), function() return lit(template(axes)) end) end
  if k == 6 then
    return pick({ "function(job) return 'echo ' .. job.name end", "function() return 42 end",
      "function() error(nil) end", "function() error({}) end", "function() return {} end",
      "function(job) return { 'x', job.name } end", "function() return '{zzz}' end" })
  end
  return value(0)
end

local function suite_source()
  wild = R(2) == 1
  local lines = { "local cyc = { name = 'c' }; cyc.me = cyc",
                  "local deep = {}; do local t = deep; for _ = 1, 40 do t.x = {}; t = t.x end end" }
  local conditions = {}
  for i = 1, R(0, 2) do
    local name = "c" .. i
    conditions[#conditions + 1] = name
    local fields = {}
    if R(2) == 1 then fields[#fields + 1] = "args = " .. list(R(0, 3), function() return value(2, true) end) end
    if R(3) == 1 then
      local key = wild and pick({ "X", "['1X']", "Y" }) or "X"
      fields[#fields + 1] = "env = { " .. key .. " = " .. value(1, not wild) .. " }"
    end
    if R(4) == 1 then
      fields[#fields + 1] = "expect = " .. (wild and pick({ "{ status = 'FAILED' }", "{ staus = 1 }", "5" })
        or "{ status = 'FAILED' }")
    end
    if R(5) == 1 then
      fields[#fields + 1] = "timeout = " .. (wild and pick({ "'5m'", "'soon'", "-1", "0" }) or "'5m'")
    end
    if wild and R(8) == 1 then fields[#fields + 1] = "bogus = 1" end
    lines[#lines + 1] = string.format("condition %s { %s }", lit(name), table.concat(fields, ", "))
  end
  local axes, matrix = {}, {}
  for _ = 1, R(0, 3) do
    local axis = (wild and R(4) == 1) and pick(NAMES) or ("a" .. R(9))
    axes[#axes + 1] = axis
    local values
    if axis == "condition" and #conditions > 0 and R(3) > 1 then
      values = list(R(1, 3), function() return lit(R(5) == 1 and "nope" or pick(conditions)) end)
    elseif wild and R(12) == 1 then
      values = pick({ "{}", "'x'", "cyc", "{ cyc }", "{ deep }", "{ [1] = 1, [3] = 3 }" })
    else
      values = list(R(1, 4), function() return value(0) end)
    end
    matrix[#matrix + 1] = string.format("[%s] = %s", lit(axis), values)
  end
  local fields = {}
  if #matrix > 0 or R(4) == 1 then fields[#fields + 1] = "matrix = { " .. table.concat(matrix, ", ") .. " }" end
  local function pattern()
    local p = {}
    for _ = 1, R(0, 2) do
      local key = (#axes > 0 and (R(4) > 1 or not wild)) and pick(axes) or pick(NAMES)
      p[#p + 1] = string.format("[%s] = %s", lit(key), value(1))
    end
    return "{ " .. table.concat(p, ", ") .. " }"
  end
  if R(3) == 1 then fields[#fields + 1] = "exclude = " .. (R(8) == 1 and "'x'" or list(R(0, 2), pattern)) end
  if R(3) == 1 then fields[#fields + 1] = "include = " .. (R(8) == 1 and "{ 1 }" or list(R(0, 2), pattern)) end
  if R(2) == 1 then fields[#fields + 1] = "name = " .. ((wild and R(8) == 1) and value(0) or lit(template(axes))) end
  if R(10) > 1 or not wild then fields[#fields + 1] = "run = " .. command(axes) end
  if R(4) == 1 then fields[#fields + 1] = "setup = " .. command(axes) end
  if R(3) == 1 then
    fields[#fields + 1] = string.format("env = { %s = %s }", wild and pick({ "X", "Y_1", "['1X']", "['a b']" }) or "X",
      (R(2) == 1 or not wild) and lit(template(axes)) or value(1))
  end
  local extras = { "nodes = " .. pick({ "1", "2", "0", "-1", "1.5", "'2'" }),
    "timeout = " .. pick({ "'1h'", "90", "'bogus'", "-5", "{}" }),
    "max_parallel = " .. pick({ "2", "0", "'x'" }), "fail_fast = " .. pick({ "true", "'yes'" }),
    "max_restarts = " .. pick({ "1", "-1" }), "tiemout = 1",
    "expect = " .. pick({ "{ exit_code = 0 }", "{ exit_code = 'x' }", "{ restarts = { min = 1 } }",
      "function() return true end", "{ status = 'SUCCEDED' }" }),
    "tags = " .. pick({ "{ 'ci' }", "'ci'", "{ {} }" }), "backend = " .. pick({ "'local'", "'slurm'", "5" }),
    "['local'] = " .. pick({ "{ grace = 1 }", "cyc", "deep", "'x'" }),
    "git = " .. pick({ "{ require_clean = true }", "{ requre_clean = true }", "true" }),
    "description = " .. value(0, true), "[1] = 'positional'" }
  for _ = 1, R(0, 3) do if wild then fields[#fields + 1] = pick(extras) end end
  local decl = string.format("suite %s {\n  %s,\n}", lit(R(6) == 1 and pick(ODD_STRINGS) or "s"),
    table.concat(fields, ",\n  "))
  local k = wild and R(30) or 0
  if k == 1 then decl = decl:sub(1, -3) -- a syntax error
  elseif k == 2 then decl = decl .. "\nerror(nil)"
  elseif k == 3 then decl = decl .. "\nerror({})"
  elseif k == 4 then decl = decl .. "\nrequire('os').exit(3)"
  elseif k == 5 then decl = decl .. "\npackage.loaded.os.exit(4)"
  elseif k == 6 then decl = "suite 's'"
  elseif k == 7 then decl = decl .. "\nsuite 't' { run = 'x' }"
  elseif k == 8 then decl = decl .. "\nlocal t = nil; t.x = 1"
  end
  lines[#lines + 1] = decl
  return table.concat(lines, "\n") .. "\n"
end

local function escape_pattern(s) return (s:gsub("%p", "%%%0")) end

-- try(path) -> "planned" | "user" | nil, why: in-process, as plan/run/launch do it.
local function try(path)
  local ok, err = xpcall(function()
    local decls = dsl.load(path)
    return plan.build(decls, { run_id = "r1", max_jobs = 500,
      git = R(2) == 1 and { commit = "0123abcd", branch = "main" } or nil })
  end, debug.traceback)
  if ok then return "planned" end
  if not errors.is_user(err) then return nil, "internal error: " .. tostring(err) end
  local msg = err.message
  local file = escape_pattern(path)
  if msg:find("^" .. file .. ":%d+: ") or msg:find("^" .. file .. ": no suite declared") then return "user" end
  return nil, "a user error without the suite's file:line: " .. msg
end

local counts, failures = { planned = 0, user = 0 }, {}
local deadline = process.now() + seconds
local n = 0
while process.now() < deadline and n < 5000 do
  n = n + 1
  local path = string.format("%s/s%d.lua", dir, n)
  local source = suite_source()
  assert(fs.write_atomic(path, source))
  local outcome, why = try(path)
  if outcome then
    counts[outcome] = counts[outcome] + 1
    os.remove(path)
  elseif #failures < 5 then
    failures[#failures + 1] = string.format("suite %d:\n%s\n%s", n, source, why)
  end
end
tap.ok(#failures == 0, string.format("%d random suites: %d planned, %d refused with file:line, none internal",
  n, counts.planned, counts.user), table.concat(failures, "\n----\n"))
tap.ok(counts.planned > 0 and counts.user > 0, "both outcomes were exercised")

-- A sample through the binary: exit 0 or 2, never the internal error's exit code or text.
local bin = os.getenv("JOBRUN_BIN")
local bad = {}
for i = 1, 12 do
  local path = string.format("%s/b%d.lua", dir, i)
  assert(fs.write_atomic(path, suite_source()))
  local out = path .. ".err"
  local ok, _, code = os.execute(string.format("cd '%s' && '%s' plan --max-jobs 500 b%d.lua >/dev/null 2>'%s'",
    dir, bin, i, out))
  code = ok and 0 or code
  local err = fs.read(out) or ""
  if (code ~= 0 and code ~= 2) or err:find("internal error", 1, true)
      or (code == 2 and not err:find("^jobrun: b" .. i .. "%.lua:")) then
    bad[#bad + 1] = string.format("b%d.lua: exit %s: %s\n%s", i, tostring(code), err, fs.read(path))
  end
end
tap.ok(#bad == 0, "12 random suites through jobrun plan: exit 0 or 2 with file:line", table.concat(bad, "\n----\n"))

os.execute("rm -rf '" .. dir .. "'")
return tap.done()
