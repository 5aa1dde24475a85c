-- results.public names results.ORDER's fields in one constructor (made at its size at once):
-- it must give every field of the list, in the list's order, and nothing else.
local tap = require "tap"
local json = require "jobrun.base.json"
local results = require "jobrun.judge.results"

local job = { spec = { param_order = { "b", "a" } }, params = { a = 1, b = "x" }, fields = { f = 1 },
  mismatches = { "m" }, key = "k", log_path_rel = "logs/k.log", launch_error = "internal" }
for i, k in ipairs(results.ORDER) do
  if job[k] == nil then job[k] = "v" .. i end
end
local out = results.public(job)
local got = {}
for k in pairs(out) do got[#got + 1] = k end
table.sort(got)
local want = {}
for _, k in ipairs(results.ORDER) do want[#want + 1] = k end
table.sort(want)
tap.is(got, want, "every field of results.ORDER, nothing else")
for _, k in ipairs(results.ORDER) do
  if k ~= "params" and k ~= "fields" and k ~= "mismatches" then tap.is(out[k], job[k], k) end
end
local text = json.encode(out)
tap.ok(text:find('^{"name":"v1","params":{"b":"x","a":1},"backend":"v3"'), "in order: " .. text:sub(1, 60))
tap.ok(not text:find("internal"), "no backend internals")

return tap.done()
