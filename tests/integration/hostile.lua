-- Hostile bytes in job names and logs, end to end: the table, --logs and the JUnit report of a
-- real run show no raw control character (jobrun's own colours still work), and the JUnit file
-- is valid XML whatever the names hold.
local tap = require "tap"
local h = require "helpers"
local fs = require "jobrun.c.fs"

local top = os.getenv("JOBRUN_TOP")

-- raw(text): the control characters (but newline and tab) and stray bytes left once jobrun's own
-- colours are removed.
local function raw(text)
  local plain = text:gsub("\27%[[%d;]*m", "")
  local bad = {}
  for i = 1, #plain do
    local c = plain:byte(i)
    if (c < 32 and c ~= 10 and c ~= 9) or c == 127 then bad[#bad + 1] = string.format("\\x%02x at %d", c, i) end
  end
  if not utf8.len(plain) then bad[#bad + 1] = "invalid UTF-8" end
  if plain:find("\194[\128-\159]") then bad[#bad + 1] = "a C1 control" end
  return bad
end

tap.test("hostile names and logs", function()
  local dir = h.scratch()
  h.write(dir .. "/s.lua", [[
suite "h" {
  matrix = { x = { "\27]0;title\7", "bad\255utf", "c1\194\155x", "ok" } },
  run = { "sh", "-c", "printf 'a\\033[2J\\033]0;t\\007b\\tc\\n50%%\\r100%%\\n'; test \"$1\" = ok", "sh", "{x}" },
}
]])
  local code, out = h.sh(dir, "jobrun run s.lua --junit j.xml --color always --logs --tail 2")
  tap.is(code, 1, "three jobs fail")
  tap.is(raw(out), {}, "no raw control character or stray byte on screen")
  tap.like(out, "h_\\x1b%]0;title\\x07", "the OSC sequence shown escaped")
  tap.like(out, "h_bad\\xffutf", "the stray byte shown escaped")
  tap.like(out, "h_c1\\xc2\\x9bx", "the C1 control shown escaped")
  tap.like(out, "\27%[31mFAILED\27%[0m", "jobrun's own colours still painted")
  -- (the log's tail comes with its escape sequences taken out, the OSC title with its BEL: the
  -- one stripper, as HTML and Markdown show it)
  tap.like(out, "\nab\tc\n100%%\n", "log lines cleaned, tabs kept, \\r redraws")
  local _, check = h.sh(dir, "jobrun check --color never")
  tap.is(raw(check), {}, "check's table too")
  local _, _, xml_err = h.sh(dir, "xmllint --noout --schema " .. h.q(top .. "/tests/fixtures/junit.xsd") .. " j.xml")
  tap.like(xml_err, "j.xml validates", "the JUnit report is valid XML against the schema")
  local xml = fs.read(dir .. "/j.xml") or ""
  tap.like(xml, 'name="h_bad\239\191\189utf"', "a stray byte is U+FFFD in JUnit")
  tap.like(xml, 'name="h_%]0;title"', "control characters dropped from JUnit")
  local _, logs = h.sh(dir, "jobrun logs h_ok")
  tap.ok(logs:find("\27[2J", 1, true) ~= nil, "jobrun logs stays raw")
  os.execute("rm -rf " .. h.q(dir))
end)

-- Issue 21 (12): kill printed job names raw (check and list escape them); so did error messages
-- that quote the user's own arguments.
tap.test("kill and error messages escape what they quote", function()
  local dir = h.scratch()
  h.write(dir .. "/s.lua", [[
suite "k" {
  matrix = { x = { "n_t\27]0;PWNED\7x", "c1\194\155y" } },
  name = "{x}",
  run = "sleep 30",
}
]])
  tap.is(select(1, h.sh(dir, "jobrun launch s.lua --run-id K")), 0, "launched")
  local code, out, err = h.sh(dir, "jobrun kill K --color always")
  tap.is(code, 0, "killed")
  tap.is(raw(out .. err), {}, "kill: no raw control character or stray byte")
  tap.like(out, "n_t\\x1b%]0;PWNED\\x07x: ", "the name shown escaped")
  tap.like(out, "\27%[32m✓ Killed\27%[0m", "kill's own colours still painted")
  local _, _, kerr = h.sh(dir, "jobrun kill K --json")
  tap.is(raw(kerr), {}, "kill --json: the table on stderr escaped too")
  local hostile = "'x\27]0;PWNED\7\27[2J\194\155y'"
  for _, cmd in ipairs({ "logs K " .. hostile, "check " .. hostile, "bogus" .. hostile, "logs K k --tail " .. hostile,
                         "plan " .. hostile, "kill K --only " .. hostile .. " --color never --bad" .. hostile }) do
    local c, o, e = h.sh(dir, "jobrun " .. cmd)
    tap.ok(c ~= 0, cmd:gsub("%c", "?") .. ": refused")
    tap.is(raw(o .. e), {}, cmd:gsub("%c", "?") .. ": the message escapes the argument it quotes")
  end
  local _, _, lerr = h.sh(dir, "jobrun logs K " .. hostile)
  tap.like(lerr, "x\\x1b%]0;PWNED\\x07\\x1b%[2J\\xc2\\x9by", "shown as visible escapes")
  os.execute("rm -rf " .. h.q(dir))
end)

-- Issue 21 (11): strings share one metatable; a suite that broke it broke jobrun's own code
-- ("jobrun: error in error handling", no location), and one that rewrote the string library
-- behind it rewrote jobrun's summary.
tap.test("a suite cannot change the string metatable jobrun's own code uses", function()
  local dir = h.scratch()
  h.write(dir .. "/broken.lua", [[
getmetatable("").__index = nil
suite "b" { run = "true" }
]])
  local code, out, err = h.sh(dir, "jobrun run broken.lua")
  tap.is(code, 0, "a suite that removed __index: the run passes")
  tap.like(out, "Verdict: 1 passed, 0 failed, 0 pending, of 1", "with its summary")
  tap.ok(not err:find("error in error handling", 1, true), "no error in error handling", err)
  h.write(dir .. "/rewrite.lua", [[
local lib = getmetatable("").__index
lib.format = function() return "PWNED" end
lib.rep = function() return "PWNED" end
lib.gsub = function() return "PWNED", 0 end
getmetatable("").__index = function() return function() return "PWNED" end end
-- A failing job too: its verdict goes through jobrun's error path.
suite "r" { matrix = { x = { "true", "false" } }, run = "{x}" }
]])
  code, out, err = h.sh(dir, "jobrun run rewrite.lua")
  tap.is(code, 1, "the run's exit code is its own")
  tap.like(out, "Verdict: 1 passed, 1 failed, 0 pending, of 2", "the summary is jobrun's")
  tap.ok(not (out .. err):find("PWNED", 1, true), "nothing of the suite's in jobrun's output", out .. err)
  h.write(dir .. "/own.lua", [[
local mt = getmetatable("")
mt.__index.shout = function(s) return s:upper() .. "!" end
suite "o" { run = "echo " .. mt.__index.shout("hi"), expect = { log = "HI!" } }
]])
  code, out = h.sh(dir, "jobrun run own.lua")
  tap.is(code, 0, "the suite's own copy of the string library works for the suite", out)
  os.execute("rm -rf " .. h.q(dir))
end)

-- Issue 21 (10): a job name longer than a file name may be is refused at its file:line, at once
-- (a 100,000-byte name kept `plan` busy for 30 s); a long cell keeps `plan`'s table linear.
tap.test("a job name over 255 bytes: exit 2 at file:line, fast", function()
  local dir = h.scratch()
  h.write(dir .. "/s.lua", 'suite "long" {\n  name = string.rep("n", 100000),\n  run = "true",\n}\n')
  local code, out, err = h.sh(dir, "timeout 10 \"$JOBRUN_BIN\" plan s.lua")
  tap.is(code, 2, "exit 2, within 10 s")
  tap.like(err, "^jobrun: s%.lua:1: .*100000 bytes long.*at most 255 bytes", "says where, how long and the limit")
  tap.is(out, "", "no plan printed")
  h.write(dir .. "/ok.lua", 'suite "ok" { name = string.rep("n", 255), run = "true" }\n')
  tap.is(select(1, h.sh(dir, "jobrun plan ok.lua")), 0, "255 bytes is allowed")
  h.write(dir .. "/wide.lua", 'suite "wide" { matrix = { x = { string.rep("v", 100000) } }, name = "j", '
    .. 'run = "echo {x}" }\n')
  local wc, wide = h.sh(dir, "timeout 10 \"$JOBRUN_BIN\" plan wide.lua")
  tap.is(wc, 0, "a 100,000-byte parameter: plan's table within 10 s")
  tap.ok(not wide:find(" \n", 1, true), "no line ends in blanks")
  os.execute("rm -rf " .. h.q(dir))
end)

return tap.done()
