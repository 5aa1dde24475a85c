-- Matrix expansion against the GitHub Actions documentation's own examples.
local tap = require "tap"
local matrix = require "jobrun.suite.matrix"

local function params(rows)
  local out = {}
  for i, r in ipairs(rows) do out[i] = r.params end
  return out
end

tap.test("product in declaration order", function()
  local rows = matrix.expand({ axes = { "os", "node" },
    values = { os = { "windows", "ubuntu" }, node = { 14, 16 } } })
  tap.is(params(rows), {
    { os = "windows", node = 14 }, { os = "windows", node = 16 },
    { os = "ubuntu", node = 14 }, { os = "ubuntu", node = 16 } }, "outer axis first")
  tap.is(rows[1].keys, { "os", "node" }, "keys follow the axes")
end)

-- docs: "Excluding matrix configurations": 2×3×2 = 12, minus 1, minus 2 = 9.
tap.test("exclude, partial match", function()
  local rows = matrix.expand({ axes = { "os", "version", "environment" },
    values = { os = { "macos-latest", "windows-latest" }, version = { 12, 14, 16 },
               environment = { "staging", "production" } },
    exclude = { { os = "macos-latest", version = 12, environment = "production" },
                { os = "windows-latest", version = 16 } } })
  tap.is(#rows, 9, "nine combinations remain")
  for _, r in ipairs(rows) do
    local p = r.params
    if (p.os == "macos-latest" and p.version == 12 and p.environment == "production")
      or (p.os == "windows-latest" and p.version == 16) then
      tap.ok(false, "excluded row survived: " .. p.os .. " " .. p.version)
    end
  end
end)

tap.test("exclude with a key that is no axis is an error", function()
  local rows, why = matrix.expand({ axes = { "os" }, values = { os = { "a" } }, exclude = { { oss = "a" } } })
  tap.is(rows, nil, "no rows")
  tap.like(why, "exclude entry 1: 'oss' is not an axis.*did you mean 'os'", "names the key")
end)

-- docs: "Example: Expanding configurations" (fruit × animal with five includes).
tap.test("include: job fields set the cell, other keys are parameters", function()
  local cells = { expect = true, timeout = true, nodes = true }
  local rows = matrix.expand({ axes = { "model", "nodes" },
    values = { model = { "small", "big" }, nodes = { 1, 2 } },
    cell_keys = cells,
    include = { { model = "big", expect = { status = "FAILED" }, size = "7b" },
                { model = "big", nodes = 2, timeout = "5m" },
                { model = "tiny", Timeout = "1m" } } })
  tap.is(params(rows), {
    { model = "small", nodes = 1 }, { model = "small", nodes = 2 },
    { model = "big", nodes = 1, size = "7b" }, { model = "big", nodes = 2, size = "7b" },
    { model = "tiny" } }, "expect and timeout are no parameters; an axis named like a field stays an axis")
  tap.is({ rows[1].cell, rows[3].cell, rows[4].cell, rows[5].cell },
    { nil, { expect = { status = "FAILED" } }, { expect = { status = "FAILED" }, timeout = "5m" }, { timeout = "1m" } },
    "each cell's fields, later entries merged over earlier ones, keys matched without regard to case")
end)

tap.test("include: merge into matching rows, else append", function()
  local rows = matrix.expand({ axes = { "fruit", "animal" },
    values = { fruit = { "apple", "pear" }, animal = { "cat", "dog" } },
    include = { { color = "green" }, { color = "pink", animal = "cat" },
                { fruit = "apple", shape = "circle" }, { fruit = "banana" },
                { fruit = "banana", animal = "cat" } } })
  tap.is(params(rows), {
    { fruit = "apple", animal = "cat", color = "pink", shape = "circle" },
    { fruit = "apple", animal = "dog", color = "green", shape = "circle" },
    { fruit = "pear", animal = "cat", color = "pink" },
    { fruit = "pear", animal = "dog", color = "green" },
    { fruit = "banana" },
    { fruit = "banana", animal = "cat" },
  }, "the six jobs of the documentation")
  tap.is(rows[1].keys, { "fruit", "animal", "color", "shape" }, "added keys after the axes")
end)

-- docs: "Example: Adding configurations" (npm: 6 only on windows/16).
tap.test("include adds a value to one row", function()
  local rows = matrix.expand({ axes = { "os", "node" },
    values = { os = { "windows-latest", "ubuntu-latest" }, node = { 14, 16 } },
    include = { { os = "windows-latest", node = 16, npm = 6 } } })
  tap.is(#rows, 4, "no row added")
  tap.is(rows[2].params, { os = "windows-latest", node = 16, npm = 6 }, "merged into its row")
  tap.is(rows[1].params.npm, nil, "other rows untouched")
end)

-- docs: a matrix of only include entries makes exactly those jobs.
tap.test("include-only matrix", function()
  local rows = matrix.expand({ axes = {}, values = {},
    include = { { site = "production", datacenter = "site-a" }, { site = "staging", datacenter = "site-b" } } })
  tap.is(params(rows), { { site = "production", datacenter = "site-a" },
                         { site = "staging", datacenter = "site-b" } }, "two jobs")
end)

tap.test("no matrix is one job", function()
  local rows = matrix.expand({ axes = {}, values = {} })
  tap.is(#rows, 1, "one row")
end)

tap.test("include never overwrites an original axis value", function()
  local rows = matrix.expand({ axes = { "a" }, values = { a = { 1, 2 } }, include = { { a = 1, b = "x" } } })
  tap.is(params(rows), { { a = 1, b = "x" }, { a = 2 } }, "matched on a, b added")
end)

tap.test("table values match by name", function()
  local arena = { name = "arena", module = "m.arena" }
  local nav = { name = "nav", module = "m.nav" }
  local rows = matrix.expand({ axes = { "recipe" }, values = { recipe = { arena, nav } },
    exclude = { { recipe = "nav" } }, include = { { recipe = "arena", steps = 5 } } })
  tap.is(#rows, 1, "nav excluded by its name")
  tap.is(rows[1].params.recipe, arena, "the table itself is the value")
  tap.is(rows[1].params.steps, 5, "include matched by name")
end)

-- GitHub allows any object as a value, with or without a name; its label in job names is its
-- name, else its scalars in sorted key order (docs: "Using a matrix strategy", objects as values).
tap.test("object values need no name", function()
  local template = require "jobrun.suite.template"
  local rows = matrix.expand({ axes = { "node" },
    values = { node = { { version = 14, os = "linux" }, { version = 16, os = "linux" } } } })
  tap.is(#rows, 2, "two jobs")
  tap.is(template.label(rows[1].params.node), "linux-14", "label: scalar fields in sorted key order")
  tap.is(template.label({ name = "arena", x = 1 }), "arena", "label: the name when there is one")
  tap.is(template.label({ "-O2", "-g" }), "-O2--g", "label: a list's items in order")
  tap.is(template.label({ env = { key1 = "val1" } }), "val1", "label: scalars inside nested tables")
end)

-- docs: "An excluded configuration only has to be a partial match"; a given object matches when
-- every key it gives matches, recursively, lists inside it too.
tap.test("exclude matches objects partially and recursively", function()
  local linux14 = { version = 14, os = "linux", env = { CC = "gcc", flags = { "-O2", "-g" } } }
  local linux16 = { version = 16, os = "linux", env = { CC = "clang", flags = { "-O2" } } }
  local mac16 = { version = 16, os = "mac", env = { CC = "clang", flags = { "-O2" } } }
  local spec = { axes = { "node", "arch" },
    values = { node = { linux14, linux16, mac16 }, arch = { "x86", "arm" } } }
  local function left(exclude)
    spec.exclude = exclude
    local out = {}
    for _, r in ipairs(assert(matrix.expand(spec))) do
      out[#out + 1] = r.params.node.os .. r.params.node.version .. "/" .. r.params.arch
    end
    return table.concat(out, " ")
  end
  tap.is(left({ { node = { os = "linux" } } }), "mac16/x86 mac16/arm", "one key of the object")
  tap.is(left({ { node = { env = { CC = "clang" } }, arch = "arm" } }),
    "linux14/x86 linux14/arm linux16/x86 mac16/x86", "a key two levels down, with another axis")
  tap.is(left({ { node = { env = { flags = { "-O2", "-g" } } } } }),
    "linux16/x86 linux16/arm mac16/x86 mac16/arm", "a list matches a list with the same items")
  tap.is(left({ { node = { env = { flags = { "-O2" } } } } }),
    "linux14/x86 linux14/arm", "a list does not match a longer one")
  tap.is(left({ { node = { os = "linux", version = 18 } } }),
    "linux14/x86 linux14/arm linux16/x86 linux16/arm mac16/x86 mac16/arm", "every key given must match")
  tap.is(left({ { node = { os = "linux", nope = 1 } } }),
    "linux14/x86 linux14/arm linux16/x86 linux16/arm mac16/x86 mac16/arm", "a key the value lacks never matches")
end)

-- docs: include entries merge into the original rows whose values they match.
tap.test("include matches objects partially", function()
  local rows = matrix.expand({ axes = { "node" },
    values = { node = { { version = 14, os = "linux" }, { version = 16, os = "linux" } } },
    include = { { node = { version = 16 }, npm = 8 }, { node = { version = 18 }, npm = 9 } } })
  tap.is(#rows, 3, "one row appended for the value that matches none")
  tap.is({ rows[1].params.npm, rows[2].params.npm }, { nil, 8 }, "merged into the matching row only")
  tap.is(rows[3].params, { node = { version = 18 }, npm = 9 }, "the unmatched entry as a row of its own")
end)

-- GitHub's matrix keys match without regard to case: an include key `hello` matches axis `Hello`.
tap.test("keys match without regard to case", function()
  local rows = matrix.expand({ axes = { "Hello" }, values = { Hello = { "a", "b" } },
    include = { { hello = "a", extra = 1 }, { HELLO = "b", Extra = 2 } },
    exclude = { { HELLO = "c" } } })
  tap.is(params(rows), { { Hello = "a", extra = 1 }, { Hello = "b", extra = 2 } },
    "include keys take the axis's spelling; a later added key takes the first one's")
  tap.is(rows[1].keys, { "Hello", "extra" }, "keys as first spelled")
  rows = matrix.expand({ axes = { "Hello" }, values = { Hello = { "a", "b" } }, exclude = { { hELLO = "a" } } })
  tap.is(params(rows), { { Hello = "b" } }, "exclude keys too")
  local none, why = matrix.expand({ axes = { "Hello", "hello" }, values = { Hello = { 1 }, hello = { 2 } } })
  tap.is(none, nil, "two axes that differ only in case are refused")
  tap.like(why, "differ only in case", "and say so")
  tap.is(matrix.size({ axes = { "Hello" }, values = { Hello = { "a", "b" } }, exclude = { { hello = "a" } } }, 0), 1,
    "size counts the same way")
end)

-- GitHub allows any axis name ("node-version"); the key in include must then name that axis.
tap.test("any axis name", function()
  local rows = matrix.expand({ axes = { "node-version", "a b" },
    values = { ["node-version"] = { "14.x", "16.x" }, ["a b"] = { 1 } },
    include = { { ["node-version"] = "16.x", npm = 8 } }, exclude = { { ["a b"] = 2 } } })
  tap.is(params(rows), { { ["node-version"] = "14.x", ["a b"] = 1 },
                         { ["node-version"] = "16.x", ["a b"] = 1, npm = 8 } }, "matched by their names")
end)

-- nektos/act, pkg/model/workflow_test.go TestReadWorkflow_Strategy over
-- pkg/model/testdata/strategy/push.yml (job strategy-all): 2 datacenters × 2 node versions ×
-- 1 site, one exclude, an include that only adds a key, two that match no row.
tap.test("act: strategy-all", function()
  local rows = matrix.expand({ axes = { "datacenter", "node-version", "site" },
    values = { datacenter = { "site-c", "site-d" }, ["node-version"] = { "14.x", "16.x" }, site = { "staging" } },
    exclude = { { datacenter = "site-d", ["node-version"] = "14.x", site = "staging" } },
    include = { { ["php-version"] = 5.4 },
                { datacenter = "site-a", ["node-version"] = "10.x", site = "prod" },
                { datacenter = "site-b", ["node-version"] = "12.x", site = "dev" } } })
  tap.is(params(rows), {
    { datacenter = "site-c", ["node-version"] = "14.x", site = "staging", ["php-version"] = 5.4 },
    { datacenter = "site-c", ["node-version"] = "16.x", site = "staging", ["php-version"] = 5.4 },
    { datacenter = "site-d", ["node-version"] = "16.x", site = "staging", ["php-version"] = 5.4 },
    { datacenter = "site-a", ["node-version"] = "10.x", site = "prod" },
    { datacenter = "site-b", ["node-version"] = "12.x", site = "dev" },
  }, "the five configurations act expects")
end)

-- nektos/act, TestReadWorkflow_Strategy (jobs strategy-no-matrix, strategy-only-fail-fast,
-- strategy-only-max-parallel): a strategy without a matrix is one job with empty params.
tap.test("act: no matrix", function()
  tap.is(params(matrix.expand({ axes = {}, values = {} })), { {} }, "one empty configuration")
end)

-- nektos/act, TestMatrixOnlyIncludes: a matrix of only include entries.
tap.test("act: only includes", function()
  tap.is(params(matrix.expand({ axes = {}, values = {},
    include = { { a = "1", b = "2" }, { a = "3", b = "4" } } })),
    { { a = "1", b = "2" }, { a = "3", b = "4" } }, "exactly the two entries")
end)

-- nektos/act, pkg/runner/testdata/matrix-include-exclude/push.yml (and
-- matrix-with-user-inclusions, the same matrix): 2 × 4 minus one, plus an os of its own.
tap.test("act: matrix-include-exclude", function()
  local rows = matrix.expand({ axes = { "os", "node" },
    values = { os = { "ubuntu-18.04", "macos-latest" }, node = { 4, 6, 8, 10 } },
    exclude = { { os = "macos-latest", node = 4 } }, include = { { os = "ubuntu-16.04", node = 10 } } })
  tap.is(#rows, 8, "7 combinations and the included one")
  tap.is(rows[8].params, { os = "ubuntu-16.04", node = 10 }, "the include is a new row (its os is no value)")
  for _, r in ipairs(rows) do
    if r.params.os == "macos-latest" and r.params.node == 4 then tap.ok(false, "macos-latest/4 survived") end
  end
end)

-- nektos/act, pkg/runner/testdata/matrix/push.yml (job build; job test is one axis of four) and
-- matrix-exitcode/push.yml (one axis of two).
tap.test("act: plain products", function()
  tap.is(#matrix.expand({ axes = { "os", "node" },
    values = { os = { "ubuntu-18.04", "macos-latest" }, node = { 4, 6, 8, 10 } } }), 8, "2 × 4")
  tap.is(#matrix.expand({ axes = { "node" }, values = { node = { "8.x", "10.x", "12.x", "13.x" } } }), 4, "4")
  tap.is(params(matrix.expand({ axes = { "val" }, values = { val = { "success", "failure" } } })),
    { { val = "success" }, { val = "failure" } }, "in order")
end)

-- nektos/act, pkg/runner/testdata/evalmatrix-merge-array/push.yml: values that are objects
-- without a name, holding an object (a.env.key1 …).
tap.test("act: evalmatrix-merge-array", function()
  local template = require "jobrun.suite.template"
  local rows = matrix.expand({ axes = { "a" }, values = { a = {
    { env = { key1 = "val1" } }, { env = { key2 = "val2" } }, { env = { key3 = "val3" } } } } })
  tap.is(#rows, 3, "three jobs")
  tap.is(rows[2].params.a.env.key2, "val2", "the object reaches the job whole")
  tap.is({ template.label(rows[1].params.a), template.label(rows[3].params.a) }, { "val1", "val3" },
    "labels from the nested scalars, so names differ")
  rows = matrix.expand({ axes = { "a" }, values = { a = {
    { env = { key1 = "val1" } }, { env = { key2 = "val2" } } } },
    exclude = { { a = { env = { key2 = "val2" } } } } })
  tap.is(#rows, 1, "an exclude reaches inside them (partial, recursive; act compares whole values)")
end)

-- size() counts what expand() makes without making it: checked against expand on random specs.
tap.test("size matches expand", function()
  local seed = tonumber(os.getenv("JOBRUN_SEED")) or os.time()
  math.randomseed(seed)
  tap.ok(true, "seed " .. seed .. " (JOBRUN_SEED=" .. seed .. " reproduces)")
  local wrong = {}
  for case = 1, 300 do
    local axes, values = {}, {}
    for a = 1, math.random(0, 3) do
      axes[a] = "a" .. a
      values[axes[a]] = {}
      for i = 1, math.random(1, 4) do values[axes[a]][i] = math.random(1, 5) end
    end
    local function pattern()
      local p = {}
      for _ = 1, math.random(1, 2) do
        local k = (#axes > 0 and math.random(4) > 1) and axes[math.random(#axes)] or "x" .. math.random(2)
        p[k] = math.random(1, 5)
      end
      return p
    end
    local spec = { axes = axes, values = values, exclude = {}, include = {} }
    for i = 1, math.random(0, 3) do
      spec.exclude[i] = pattern()
      for k in pairs(spec.exclude[i]) do if not values[k] then spec.exclude[i][k] = nil end end
    end
    for i = 1, math.random(0, 3) do spec.include[i] = pattern() end
    local rows = matrix.expand(spec)
    local n, exact = matrix.size(spec)
    if not (exact and n == #rows) then
      wrong[#wrong + 1] = string.format("case %d: size %s (exact %s), expand %d", case, n, exact, #rows)
    end
  end
  tap.is(wrong, {}, "300 random matrices: exact sizes")
  local big = {}
  for i = 1, 100 do big[i] = i end
  local n, exact = matrix.size({ axes = { "a", "b", "c" }, values = { a = big, b = big, c = big } }, 10)
  tap.is({ n, exact }, { 1000000, true }, "a million rows counted at once")
end)

return tap.done()
