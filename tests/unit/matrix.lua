-- Matrix expansion against the GitHub Actions documentation's own examples.
local tap = require "tap"
local matrix = require "jobrun.matrix"

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
