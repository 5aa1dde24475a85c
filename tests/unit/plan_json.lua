-- `plan --json` writes its document in chunks (commands/plan.lua write_json); what it writes
-- must be, byte for byte, json.encode(to_json(plan), true) .. "\n", the plain way to make it.
-- Checked for the shipped suites and examples, the suite of bench/plan.sh, and a suite of
-- awkward values (secrets, URLs with credentials, quotes, control characters, UTF-8, argv).
local tap = require "tap"
local fs = require "jobrun.c.fs"
local plan = require "jobrun.plan"
local json = require "jobrun.base.json"
local command = require "jobrun.commands.plan"
local helpers = require "helpers"

local top = os.getenv("JOBRUN_TOP") or "."
local dir = helpers.scratch()

local function streamed(p)
  local parts = {}
  command.write_json(p, function(s) parts[#parts + 1] = s end)
  return table.concat(parts)
end

local function same(path, what, extra)
  local p = plan.from_options(path, { ["run-id"] = "same", set = extra })
  local want = json.encode(command.to_json(p), true) .. "\n"
  local got = streamed(p)
  if got == want then tap.ok(true, what) return end
  local at = 1
  while got:sub(at, at) == want:sub(at, at) do at = at + 1 end
  tap.ok(false, string.format("%s: differs at byte %d:\n# want …%s…\n# got  …%s…", what, at,
    want:sub(at - 40, at + 40), got:sub(at - 40, at + 40)))
end

local shipped = 0
for _, d in ipairs({ "suites", "examples" }) do
  local names = assert(fs.list(top .. "/" .. d))
  table.sort(names)
  for _, name in ipairs(names) do
    -- (release.lua is a `jobrun script`, not a suite)
    if name:match("%.lua$") and name ~= "release.lua" then
      same(top .. "/" .. d .. "/" .. name, d .. "/" .. name)
      shipped = shipped + 1
    end
  end
end
tap.ok(shipped >= 3, "every shipped suite and example was checked (" .. shipped .. ")")

-- bench/plan.sh's suite, narrowed to 5 seeds.
local conds = {}
for _, c in ipairs({ "c", "d", "e", "f", "g", "h", "i", "j" }) do
  conds[#conds + 1] = string.format('condition "%s" { args = { "--mode", "%s" } }', c, c)
end
assert(fs.write_atomic(dir .. "/big.lua", table.concat(conds, "\n") .. [[

local seeds = {}
for i = 1, 5 do seeds[i] = i end
condition "a" { args = { "--mode", "a" }, expect = { exit_code = 0 } }
condition "b" { args = { "--mode", "b", "it's" }, tags = { "ci" } }
suite "big" {
  matrix = { seed = seeds, lr = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 },
             condition = { "a", "b", "c", "d", "e", "f", "g", "h", "i", "j" } },
  exclude = { { seed = 1, lr = 1 } },
  include = { { lr = 2, extra = "x" } },
  name = "{suite}_{seed}_{lr}_{condition}",
  run = "train --seed {seed} --lr {lr} {args}",
  env = { RUN = "{name}.{run_id}", ARGS = "{args}" },
  timeout = "1h",
}
]]))
same(dir .. "/big.lua", "bench/plan.sh's suite")

assert(fs.write_atomic(dir .. "/odd.lua", [[
condition "plain" { env = { EXTRA = "x" } }
condition "odd" { args = { "a\"b", "back\\slash", "tab\there", "é", "\127" }, expect = function() return true end,
                  env = { DB_PASSWORD = "hunter2", URL = "https://user:pw@example.com/x" } }
suite "odd" {
  matrix = { word = { "it's", "a/b", "new\nline", "ü" }, condition = { "plain", "odd" } },
  run = { "prog", "{word}", "{args}" },
  env = { API_TOKEN = "t0ken", PATHS = "/usr/bin:/bin", W = "{word}", Q = "\"{word}\"" },
  description = "awkward values",
}
]]))
same(dir .. "/odd.lua", "awkward values")

assert(fs.write_atomic(dir .. "/bare.lua", [[suite "bare" { run = "true" }
]]))
same(dir .. "/bare.lua", "no matrix, no env")

-- json's fast path for plain strings gives what cjson gives.
for _, s in ipairs({ "", "plain", "a/b", "a b ~!#$%&()*+,-.:;<=>?@[]^_`{|}", "q\"", "b\\", "\t", "\0",
                     "\127", "é", "ü/ß" }) do
  tap.is(json.encode(s), (require("cjson").encode(s):gsub("\\/", "/")), "string " .. string.format("%q", s))
end

return tap.done()
