-- The suite DSL end to end: files on disk -> declarations -> planned jobs.
local tap = require "tap"
local fs = require "jobrun.c.fs"
local dsl = require "jobrun.suite.dsl"
local plan = require "jobrun.plan"

local dir = require("helpers").scratch()

local function write(name, text)
  assert(fs.write_atomic(dir .. "/" .. name, text))
  return dir .. "/" .. name
end

local function build(name, text, opts)
  local path = write(name, text)
  return plan.build(dsl.load(path), opts or { run_id = "r1" }), path
end

local function names(p)
  local out = {}
  for i, j in ipairs(p.jobs) do out[i] = j.name end
  return out
end

tap.test("conditions merge into jobs", function()
  local p = build("cluster.lua", [[
condition "hb" { args = { "-hb", "1" }, env = { HB = "1" }, tags = { "ci" },
                 expect = { termination = "heartbeat_timeout" }, timeout = "5m" }
condition "ok" { args = { "steps=5" }, description = "completes" }
suite "cluster" {
  matrix = { nodes = { 1, 2 }, condition = { "ok", "hb" } },
  name = "{suite}_{nodes}n_{condition}",
  run = "train {args}",
  env = { RUN = "{name}.{run_id}", ARGS = "{args}", HB = "0" },
  timeout = "1h",
  expect = { status = "SUCCEEDED" },
}
]])
  tap.is(names(p), { "cluster_1n_ok", "cluster_1n_hb", "cluster_2n_ok", "cluster_2n_hb" }, "names in order")
  local hb = p.jobs[2]
  tap.is(hb.run, "train -hb 1", "args reach run")
  tap.is(hb.env, { RUN = "cluster_1n_hb.r1", ARGS = "-hb 1", HB = "1" }, "env merged and expanded")
  tap.is(hb.timeout, 300, "condition timeout wins")
  tap.is(p.jobs[1].timeout, 3600, "suite timeout otherwise")
  tap.is(hb.expect, { termination = "heartbeat_timeout" }, "condition expectation")
  tap.is(p.jobs[1].expect, { status = "SUCCEEDED" }, "suite expectation otherwise")
  tap.is(hb.tags, { "ci" }, "condition tags")
  tap.is(p.jobs[3].nodes, 2, "nodes axis sets nodes")
  tap.is(p.jobs[1].description, "completes", "condition description")
end)

tap.test("filters and --set", function()
  local text = [[
condition "a" { args = {}, tags = { "fast" } }
condition "b" { args = {} }
suite "f" { matrix = { n = { 1, 2, 3 }, condition = { "a", "b" } }, run = "x" }
]]
  local p = build("f.lua", text, { run_id = "r", only = { "f_[12]_*" } })
  tap.is(names(p), { "f_1_a", "f_1_b", "f_2_a", "f_2_b" }, "--only glob")
  p = build("f.lua", text, { run_id = "r", tags = { "fast" } })
  tap.is(names(p), { "f_1_a", "f_2_a", "f_3_a" }, "--tag")
  p = build("f.lua", text, { run_id = "r", set = { { "n", { "3" } }, { "condition", { "b" } } } })
  tap.is(names(p), { "f_3_b" }, "--set replaces axis values")
  tap.is(math.type(p.jobs[1].params.n), "integer", "--set keeps the axis's number type")
  tap.raises(function() build("f.lua", text, { run_id = "r", set = { { "m", { "1" } } } }) end,
    "no axis 'm'.*did you mean 'n'", "--set of an unknown axis")
  tap.raises(function() build("f.lua", text, { run_id = "r", only = { "zzz" } }) end,
    "no job of suite \"f\" matches %-%-only zzz", "a filter matching nothing is an error")
end)

tap.test("table axis values, argv run, include", function()
  local p = build("recipes.lua", [[
suite "recipe_test" {
  matrix = { recipe = { { name = "arena", module = "r.arena" }, { name = "nav", module = "r.nav" } } },
  include = { { recipe = "nav", steps = 10 } },
  run = { "tool", "{recipe.module}", "run={name}", "{args}" },
}
]])
  tap.is(names(p), { "recipe_test_arena", "recipe_test_nav_10" }, "default names use labels")
  tap.is(p.jobs[1].run, { "tool", "r.arena", "run=recipe_test_arena" }, "empty {args} splices nothing")
  tap.is(p.jobs[2].params.steps, 10, "include merged")
end)

tap.test("run as a function, packs, env()", function()
  write("mypack.lua", [[
condition "from_pack" { args = { "--pack" }, expect = { exit_code = 0 } }
parser "found" { contains = "FOUND", field = "found", value = true }
]])
  local p = build("fn.lua", [[
use "mypack"
use "mypack"
suite "fn" {
  matrix = { condition = { "from_pack" } },
  run = function(job) return "echo " .. job.name .. " " .. job.nodes end,
  env = { HOME_SEEN = env("HOME", "none"), MISSING = env("JOBRUN_SURELY_UNSET", "dflt") },
}
]])
  tap.is(p.jobs[1].run, "echo fn_from_pack 1", "function run gets the job")
  tap.is(p.jobs[1].env.MISSING, "dflt", "env() default")
  tap.is(p.jobs[1].env.HOME_SEEN, os.getenv("HOME"), "env() reads the environment")
  tap.is(p.jobs[1].expect, { exit_code = 0 }, "pack condition used")
end)

tap.test("errors name file:line", function()
  local function fails(name, text, pattern, what)
    local path = write(name, text)
    tap.raises(function() plan.build(dsl.load(path), { run_id = "r" }) end,
      pattern:gsub("FILE", function() return (path:gsub("%p", "%%%0")) end), what)
  end
  fails("e1.lua", 'suite "s" {\n  run = "x",\n  max_paralel = 2,\n}\n',
    "^FILE:1: unknown key 'max_paralel' in suite \"s\" %(did you mean 'max_parallel'%?%)", "unknown key")
  fails("e2.lua", '\n\ncondition "c" { args = "x" }\nsuite "s" { run = "x" }\n',
    "^FILE:3: condition \"c\": args must be a list of strings", "bad value")
  fails("e3.lua", 'suite "s" {\n  matrix = { a = { 1, 2 } },\n  name = "same",\n  run = "x" }\n',
    "^FILE:1: suite \"s\": duplicate job name 'same'", "duplicate job names")
  fails("e4.lua", 'suite "s" { run = "echo {nodez}" }\n',
    "^FILE:1: unknown placeholder {nodez} in run of job 's' %(did you mean 'nodes'%?%)", "placeholder")
  fails("e5.lua", 'use "nonexistent_pack"\nsuite "s" { run = "x" }\n',
    "^FILE:1: unknown pack 'nonexistent_pack'", "unknown pack")
  fails("e6.lua", 'suite "s" { run = "x" }\nos.exit(1)\n',
    "^FILE:2: os.exit is not available to suites", "os.exit refused")
  fails("e7.lua", 'suite "s" { run = "x" }\nsuite "s" { run = "y" }\n',
    "^FILE:2: suite \"s\" is declared twice %(first at line 1%)", "a suite declared twice")
  fails("e8.lua", '\nparser "p" { contains = "x" }\nsuite "s" { run = "x" }\n',
    "^FILE:2: parser \"p\" needs a field", "parser without field")
  fails("e9.lua", 'suite "s" { run = "x", matrix = { n = {} } }\n',
    "^FILE:1: suite \"s\": matrix axis 'n' must be a non%-empty list", "empty axis")
  fails("e10.lua", 'suite "s" { run = "x", expect = { staus = "FAILED" } }\n',
    "^FILE:1: unknown key 'staus' in suite \"s\".expect %(did you mean 'status'%?%)", "expect keys")
  fails("e11.lua", 'suite "s"\n', "^FILE:1: suite \"s\" has no body", "declaration without body")
  fails("e12.lua", 'suite "s" {\n run = function() error("boom") end }\n',
    "^FILE:1: run function failed for job 's': .*boom", "run function error")
  fails("e13.lua", 'suite "s" { run = "x", matrix = { condition = { "nope" } } }\n',
    "^FILE:1: suite \"s\": unknown condition 'nope'", "unknown condition")
end)

tap.test("the sandbox: os.exit out of reach, jobrun keeps the real os", function()
  local real_exit = os.exit
  local path = write("sb.lua", [[
local o = require "os"
SEEN = { same_os = o == os, loaded_os = package.loaded.os == os, g = package.loaded._G == _G,
         no_registry = debug.getregistry == nil, load_env = load("return os")() == os,
         exit = pcall(package.loaded.os.exit, 1) }
suite "sb" { run = "x" }
]])
  local decls = dsl.load(path)
  tap.ok(decls.suite ~= nil, "the suite still loads")
  tap.is(os.exit, real_exit, "the real os keeps its exit")
  tap.is(package.loaded.os.exit, real_exit, "and package.loaded.os is the real os")
  tap.is(rawget(_G, "SEEN"), nil, "suite globals stay in the suite")
  local fails = function(name, text, pattern, what)
    local p = write(name, text)
    tap.raises(function() dsl.load(p) end, "^" .. p:gsub("%p", "%%%0") .. pattern, what)
  end
  fails("x1.lua", 'suite "s" { run = "x" }\nrequire("os").exit(7)\n', ":2: os.exit is not available", "require 'os'")
  fails("x2.lua", 'suite "s" { run = "x" }\npackage.loaded.os.exit(9)\n', ":2: os.exit is not available",
    "package.loaded.os")
  fails("x3.lua", 'suite "s" { run = "x" }\nerror(nil)\n', ":2: %(error object is a nil value%)", "error(nil)")
  fails("x4.lua", 'suite "s" { run = "x" }\n\nerror({})\n', ":3: %(error object is a table value%)", "error({})")
  fails("x5.lua", 'suite "s" { run = "x" }\nerror(42, 0)\n', ":2: 42$", "error(42)")
  fails("x6.lua", 'local t = { name = "a" }\nt.me = t\nsuite "s" { run = "x", matrix = { v = { t } } }\n',
    ":3: suite \"s\": matrix.v%[1%].me refers back to matrix.v%[1%]", "a cyclic matrix value")
  fails("x7.lua", 'local t = {}\nt.me = t\nsuite "s" { run = "x", ["local"] = t }\n',
    ":3: suite \"s\": local.me refers back to local", "a cyclic backend table")
end)

tap.test("embedded pack", function()
  local p = build("m.lua", 'use "metta"\nsuite "m" { matrix = { condition = { "heartbeat_timeout" } }, run = "x" }\n')
  tap.is(p.jobs[1].expect.termination, "heartbeat_timeout", "metta pack's condition")
end)

os.execute("rm -rf '" .. dir .. "'")
return tap.done()
