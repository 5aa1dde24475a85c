local tap = require "tap"
local template = require "jobrun.template"

local values = { name = "j1", nodes = 2, args = { "-t", "0.03", "it's" },
                 ["recipe.module"] = "a.b" }
local function lookup(k) return values[k] end

tap.is(template.expand("run {name} on {nodes}", lookup), "run j1 on 2", "plain placeholders")
tap.is(template.expand("x {args}", lookup), "x -t 0.03 'it'\\''s'", "{args} shell-quoted")
tap.is(template.expand("{recipe.module}", lookup), "a.b", "dotted placeholder")
tap.is(template.expand("echo ${HOME} {a,b} {1..3} {{name}}", lookup),
  "echo ${HOME} {a,b} {1..3} {name}", "shell braces and escapes pass through")
local out, unknown = template.expand("echo {nope}", lookup)
tap.is({ out, unknown }, { nil, "nope" }, "unknown placeholder reported")
tap.is(template.expand_argv({ "train", "{args}", "--n={nodes}" }, lookup),
  { "train", "-t", "0.03", "it's", "--n=2" }, "{args} spliced into argv")
tap.is(template.quote(""), "''", "empty word quoted")
tap.is(template.quote("a b"), "'a b'", "space quoted")
tap.is(template.quote("a/b.c=d"), "a/b.c=d", "safe word bare")
tap.is(template.text(2.0), "2", "whole floats print as integers")

return tap.done()
