local tap = require "tap"
local textable = require "jobrun.report.table"
local color = require "jobrun.report.color"

local paint = color.painter(true)
tap.is(textable.width(paint("abc", "red")), 3, "colour codes take no room")
tap.is(textable.width("héllo"), 5, "UTF-8 counts characters")
local text = textable.render({ "A", "B" }, { { paint("xx", "green"), "1" }, { "yyyy", "2" } })
tap.is(color.strip(text), "A     B\nxx    1\nyyyy  2\n", "columns aligned by what is visible")
tap.is(textable.cut("abcdef", 4), "abc…", "cut with an ellipsis")
tap.is(textable.cut("abc", 4), "abc", "short text untouched")
tap.is(color.painter(false)("x", "red"), "x", "no colour when off")
return tap.done()
