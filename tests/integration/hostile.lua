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

return tap.done()
