local tap = require "tap"
local source_order = require "jobrun.suite.source_order"

local src = [==[
-- a comment with { braces
suite "s" {
  description = "matrix = { zz = 1 }",
  matrix = {
    nodes = { 1, 2, 4 },  -- comment }
    ["condition"] = { "a", [[x]] .. "" },
    alpha = { { name = "n", t = { k = 1 } } },
  },
  run = "x",
}
]==]
tap.is(source_order.matrix_axes(src, 2), { "nodes", "condition", "alpha" }, "written order")
tap.is(source_order.matrix_axes('suite "s" { matrix = M, run = "x" }', 1), nil, "no literal: unknown")
tap.is(source_order.matrix_axes('suite "s" { run = "x" }', 1), nil, "no matrix")
tap.is(source_order.matrix_axes('suite("s")({ matrix = { b = {1}, a = {2} } })', 1), { "b", "a" },
  "call syntax with parentheses")

return tap.done()
