-- A small TAP producer for the Lua unit tests (run by tests/exec through build/luarun).
local tap = { count = 0, failed = 0 }

local function report(ok, name, diag)
  tap.count = tap.count + 1
  if not ok then tap.failed = tap.failed + 1 end
  io.write(ok and "ok " or "not ok ", tap.count, " - ", (name or ""):gsub("\n", " "), "\n")
  if not ok and diag then
    for line in tostring(diag):gmatch("[^\n]+") do io.write("#   ", line, "\n") end
  end
  io.flush()
  return ok
end

local function show(v)
  if type(v) == "string" then return string.format("%q", v) end
  if type(v) ~= "table" then return tostring(v) end
  local ok, cjson = pcall(require, "cjson")
  local encoded = ok and pcall(cjson.encode, v) and cjson.encode(v)
  return encoded or tostring(v)
end

local function deep_equal(a, b)
  if a == b then return true end
  if type(a) ~= "table" or type(b) ~= "table" then return false end
  for k, v in pairs(a) do if not deep_equal(v, b[k]) then return false end end
  for k in pairs(b) do if a[k] == nil then return false end end
  return true
end
tap.deep_equal = deep_equal

function tap.ok(cond, name, diag) return report(cond and true or false, name, diag) end

function tap.is(got, want, name)
  return report(deep_equal(got, want), name, "got:  " .. show(got) .. "\nwant: " .. show(want))
end

function tap.like(got, pattern, name)
  local ok = type(got) == "string" and got:find(pattern) ~= nil
  return report(ok, name, "got:  " .. show(got) .. "\nwant match: " .. pattern)
end

-- raises(fn, pattern, name): fn must raise an error whose message matches the Lua pattern.
function tap.raises(fn, pattern, name)
  local ok, err = pcall(fn)
  local msg = type(err) == "table" and err.message or tostring(err)
  return report(not ok and msg:find(pattern) ~= nil, name,
    ok and "no error raised" or ("error: " .. msg .. "\nwant match: " .. pattern))
end

-- test(name, fn): runs fn; an unexpected error counts as one failed test.
function tap.test(name, fn)
  local ok, err = xpcall(fn, debug.traceback)
  if not ok then report(false, name .. " (raised)", type(err) == "table" and err.message or err) end
end

function tap.done()
  io.write("1..", tap.count, "\n")
  return tap.failed == 0 and 0 or 1
end

return tap
