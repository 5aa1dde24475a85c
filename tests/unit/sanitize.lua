-- Text on its way to a terminal or an XML file: control characters and stray bytes never pass raw.
local tap = require "tap"
local sanitize = require "jobrun.report.sanitize"
local textable = require "jobrun.report.table"
local junit = require "jobrun.report.junit"

tap.is(sanitize.text("plain name_1.2 é ✓"), "plain name_1.2 é ✓", "printable text and UTF-8 unchanged")
tap.is(sanitize.text("\27]0;title\7"), "\\x1b]0;title\\x07", "OSC title sequence escaped")
tap.is(sanitize.text("a\tb\nc\rd\0e\127"), "a\\tb\\nc\\rd\\x00e\\x7f", "C0 controls and DEL escaped")
tap.is(sanitize.text("a\tb", true), "a\tb", "tab kept where asked (log lines)")
tap.is(sanitize.text("x\194\155y\194\160z"), "x\\xc2\\x9by\194\160z", "C1 control (CSI) escaped, U+00A0 kept")
tap.is(sanitize.text("bad\255\192\128\237\160\128!"), "bad\\xff\\xc0\\x80\\xed\\xa0\\x80!",
  "invalid, overlong and surrogate bytes escaped")
tap.is(sanitize.text("cut\226\156"), "cut\\xe2\\x9c", "a truncated character escaped")
tap.is(sanitize.cell("\27[31mred\27]0;x\7\27[0m"), "\27[31mred\\x1b]0;x\\x07\27[0m",
  "a painted cell keeps its colour, its text is cleaned")
tap.is(sanitize.utf8("a\255b\226\156"), "a\239\191\189b\239\191\189\239\191\189", "stray bytes become U+FFFD")

local out = textable.render({ "Job", "x" }, { { "\27[2Jwipe", "\27[32mok\27[0m" }, { "n\7", "-" } })
tap.ok(not out:gsub("\27%[3?2?m", ""):gsub("\27%[0m", ""):find("[%z\1-\8\11-\31\127]"),
  "a table shows no raw control character but its own colours")
tap.is(out, "Job          x\n\\x1b[2Jwipe  \27[32mok\27[0m\nn\\x07        -\n", "widths count the escapes")

local xml = junit.escape("a\0b\27c\239\191\190\255<&>\t\n")
tap.is(xml, "abc\239\191\189&lt;&amp;&gt;\t\n", "JUnit text: forbidden characters dropped, stray bytes U+FFFD")
tap.ok(utf8.len(xml) ~= nil, "and it is UTF-8")

return tap.done()
