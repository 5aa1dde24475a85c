-- YAML as SkyPilot reads it (src/yaml.c + jobrun.backends.skypilot.yaml: libyaml, PyYAML SafeLoader's
-- implicit types), and the task overlay of jobrun.backends.skypilot.task.
local tap = require "tap"
local json = require "jobrun.base.json"
local yaml = require "jobrun.backends.skypilot.yaml"
local task = require "jobrun.backends.skypilot.task"

local function enc(v) return json.encode(v) end

tap.test("scalars: YAML 1.1 as PyYAML's SafeLoader resolves them", function()
  local cases = {
    { "yes", true }, { "No", false }, { "on", true }, { "OFF", false }, { "true", true }, { "False", false },
    { "y", "y" }, { "~", json.null }, { "null", json.null }, { "", json.null },
    { "0", 0 }, { "017", 15 }, { "0x1F", 31 }, { "0b101", 5 }, { "1_000", 1000 }, { "-42", -42 }, { "+7", 7 },
    { "1:30", 90 }, { "1.5", 1.5 }, { "1e3", "1e3" }, { "1.0e+3", 1000.0 }, { ".5", 0.5 }, { "1_0.5", 10.5 },
    { "8+", "8+" }, { "L4:1", "L4:1" }, { "0.03", 0.03 }, { "abc", "abc" }, { "09", "09" },
  }
  for _, c in ipairs(cases) do
    local v = yaml.load("v: " .. c[1] .. "\n")
    tap.is(v and v.v, c[2], string.format("%q", c[1]))
  end
  local inf = yaml.load("[.inf, -.Inf, .nan, .INF]")
  tap.is({ inf[1], inf[2], inf[3] ~= inf[3], inf[4] }, { math.huge, -math.huge, true, math.huge }, ".inf, .nan")
  tap.is(math.type(yaml.load("v: 3").v), "integer", "integers stay integers")
end)

tap.test("quoted and tagged scalars", function()
  local v = yaml.load([[
a: "yes"
b: '3'
c: !!str 4
d: !!int "5"
e: !!float 1
f: ! 6
g: "line\nbreak"
h: 'it''s'
]])
  tap.is(v, { a = "yes", b = "3", c = "4", d = 5, e = 1.0, f = "6", g = "line\nbreak", h = "it's" }, "values")
  local bad, why = yaml.load("a: !!int x\n")
  tap.is(bad, nil, "a tag that does not fit fails")
  tap.like(why, "cannot read", "with why")
end)

tap.test("structure: blocks, flows, anchors, merge keys, documents", function()
  local v = yaml.load([[
base: &b {x: 1, y: [1, 2]}
m:
  <<: *b
  x: 2
many:
  <<: [{p: 1, q: 1}, {q: 2, r: 2}]
lst:
  - a
  - {k: v}
empty_list: []
empty_map: {}
blk: |
  one
  two
folded: >-
  one
  two
acc: {H100: 8}
]])
  tap.is(enc(v.empty_list) .. enc(v.empty_map), "[]{}", "an empty list stays a list, an empty map a map")
  tap.is(v.m, { x = 2, y = { 1, 2 } }, "merge key: own keys win")
  tap.is(v.many, { p = 1, q = 1, r = 2 }, "merge of a list: earlier mappings win")
  tap.ok(v.m.y == v.base.y, "an alias shares its anchor's value")
  tap.is({ v.blk, v.folded, v.acc, v.lst }, { "one\ntwo\n", "one two", { H100 = 8 }, { "a", { k = "v" } } }, "blocks")
  tap.is(yaml.load_all("a: 1\n---\nb: 2\n...\n"), { { a = 1 }, { b = 2 } }, "documents")
  tap.is(yaml.load_all(""), {}, "an empty stream has no document")
  tap.is(yaml.load(""), json.null, "and loads as null")
end)

tap.test("errors say where, and nothing is cyclic or too deep", function()
  local cases = {
    { "a: [1\n", "line 2, column 1: did not find expected" },
    { "a: *nope\n", "alias %*nope names no anchor" },
    { "a: &x\n  b: *x\n", "alias %*x names no anchor" },
    { "? [1]\n: 2\n", "a mapping key must be a scalar" },
    { "a: 1\n a: 2\n", "line 2" },
    { string.rep("[", 300) .. string.rep("]", 300), "nested deeper than" },
    { "<<: 3\n", "merge key" },
  }
  for _, c in ipairs(cases) do
    local v, why = yaml.load(c[1])
    tap.is(v, nil, "refused: " .. c[1]:sub(1, 20):gsub("\n", "\\n"))
    tap.like(why or "", c[2], "why: " .. c[2])
  end
  local two, why = yaml.load("a: 1\n---\nb: 2\n")
  tap.is(two, nil, "load wants one document")
  tap.like(why, "2 YAML documents", "says so")
  -- Garbage never crashes the parser.
  math.randomseed(13)
  local alphabet = "ab:-[]{}&*!|>'\"#,? \n\t%@`<\0\255"
  for _ = 1, 300 do
    local t = {}
    for i = 1, math.random(0, 60) do
      local k = math.random(#alphabet)
      t[i] = alphabet:sub(k, k)
    end
    yaml.load_all(table.concat(t))
  end
  tap.ok(true, "300 random texts parsed or refused")
end)

tap.test("task overlay: GPU counts, alternatives, job_recovery, local paths", function()
  tap.is({ task.set_count("L4:1", 4), task.set_count("H100", 2), task.set_count("{A10G:1, L4:1}", 4) },
    { "L4:4", "H100:2", "{A10G:4, L4:4}" }, "string forms")
  tap.is(task.set_count({ H100 = 8 }, 4), { H100 = 4 }, "a mapping")
  tap.is(task.set_count(json.array({ "L4:1", "A10G" }), 4), { "L4:4", "A10G:4" }, "a list")
  local built, why = task.build({ options = { resources = { gpus = 4 } }, name = "n", nodes = 1, run = "r",
                                  endpoint = "http://127.0.0.1:1" })
  tap.is(built, nil, "gpus without accelerators is refused")
  tap.like(why, "names no accelerators", "with why")
  built = assert(task.build({
    options = { resources = { accelerators = "L4:1", gpus = 4, use_spot = false }, job_recovery = "FAILOVER" },
    name = "n", nodes = 2, run = "r", env = { A = "1" }, max_restarts = 5, endpoint = "http://127.0.0.1:1" }))
  tap.is(built, { name = "n", num_nodes = 2, run = "r", envs = { A = "1" },
                  resources = { accelerators = "L4:4", use_spot = false,
                                job_recovery = { strategy = "FAILOVER", max_restarts_on_errors = 5 } } },
    "the suite's fields, gpus applied and not sent, recovery by name plus max_restarts")
  tap.ok(task.is_loopback("http://127.0.0.1:46580") and task.is_loopback("http://u:p@localhost/")
    and task.is_loopback("http://[::1]:8080") and not task.is_loopback("https://sky.example.com")
    and not task.is_loopback("http://127.example.com"), "loopback endpoints")
  local paths = task.local_paths({ workdir = { url = "https://github.com/x/y", ref = "main" },
    file_mounts = { ["/a"] = "~/data", ["/b"] = "s3://b", ["/c"] = { source = "./c" },
                    ["/d"] = { source = json.array({ "r2://x", "./d" }) },
                    ["/e"] = { name = "bucket", store = "s3" } } })
  local fields = {}
  for _, p in ipairs(paths) do fields[#fields + 1] = p.field .. "=" .. p.path end
  tap.is(fields, { 'file_mounts["/a"]=~/data', 'file_mounts["/c"].source=./c', 'file_mounts["/d"].source[2]=./d' },
    "local sources found; buckets and a git workdir are not local")
end)

return tap.done()
