local tap = require "tap"
local template = require "jobrun.suite.template"

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

-- In shell strings (the third argument), a value is quoted for the place it is pasted at.
local hostile = { v = "$(touch x) `y` \\ \"q\" it's", safe = "a-b_c.d/e=f+g@h%i:j,k", empty = "",
                  args = { "-t", "it's" } }
local function hl(k) return hostile[k] end
tap.is(template.expand("run {safe} '{safe}' \"{safe}\" {empty}.", hl, true),
  "run a-b_c.d/e=f+g@h%i:j,k 'a-b_c.d/e=f+g@h%i:j,k' \"a-b_c.d/e=f+g@h%i:j,k\" .", "ordinary values unchanged")
tap.is(template.expand("echo {v}", hl, true), "echo '$(touch x) `y` \\ \"q\" it'\\''s'", "bare: one quoted word")
tap.is(template.expand("echo '<{v}>'", hl, true), "echo '<$(touch x) `y` \\ \"q\" it'\\''s>'",
  "inside single quotes: only ' is escaped")
tap.is(template.expand("echo \"<{v}>\"", hl, true), "echo \"<\\$(touch x) \\`y\\` \\\\ \\\"q\\\" it's>\"",
  "inside double quotes: $ ` \\ \" escaped")
tap.is(template.expand("echo \\'{v}", hl, true), "echo \\''$(touch x) `y` \\ \"q\" it'\\''s'",
  "an escaped quote opens no quoting")
tap.is(template.expand("x {args} '{args}'", hl, true), "x -t 'it'\\''s' '-t it'\\''s'",
  "lists as words, or one word in quotes")
tap.is(template.expand("{v}", hl), hostile.v, "outside shell strings values are pasted as they are")
tap.like(template.expand("n={nan}", function() return 0 / 0 end, true), "^n=%-?nan$", "NaN pasted too")
local scratch = os.tmpname()
os.remove(scratch)
assert(os.execute("mkdir " .. template.quote(scratch)))
for _, form in ipairs({ "printf %s {v}", "printf %s '{v}'", "printf %s \"{v}\"", "printf %s x'{v}'\"{v}\"" }) do
  local cmd = template.expand(form, hl, true)
  local p = io.popen("cd " .. template.quote(scratch) .. " && sh -c " .. template.quote(cmd) .. " 2>&1")
  local got = p:read("a"); p:close()
  local want = form:find("x'", 1, true) and ("x" .. hostile.v .. hostile.v) or hostile.v
  tap.is(got, want, "sh reads back the value verbatim: " .. form)
end
local p = io.popen("ls -A " .. template.quote(scratch))
tap.is(p:read("a"), "", "and nothing ran")
p:close()
os.execute("rm -rf " .. template.quote(scratch))

-- Issue 21 (10): filling is linear in the template's length, whatever it holds (text, quotes,
-- placeholders). Measured against a template a tenth as long: a quadratic fill is 100 times slower.
do
  local function fill_time(n)
    local piece = "ab 'c' \"d\" {name} "
    local str = string.rep(piece, n // #piece) .. string.rep("n", n % #piece)
    local t0 = os.clock()
    local filled = template.expand(str, lookup, true)
    local t1 = os.clock()
    assert(filled and #filled > 0)
    return t1 - t0
  end
  fill_time(10000) -- warm up
  local small, big = fill_time(20000), fill_time(200000)
  tap.ok(big < 0.5 and big < 40 * small + 0.05,
    string.format("a 200 kB template fills in %.3fs, a 20 kB one in %.3fs", big, small))
end

return tap.done()
