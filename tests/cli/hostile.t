# Suites that try to end jobrun, raise odd errors, or hold cyclic tables and NUL bytes: each is
# refused at its file:line with exit 2, and nothing is created.

= exit_require.lua
suite "s" { run = "x" }
require("os").exit(7)
=
$ jobrun plan exit_require.lua
! jobrun: exit_require.lua:2: os.exit is not available to suites (a suite declares jobs; it cannot end jobrun)
? 2

= exit_loaded.lua
suite "s" { run = "x" }
package.loaded.os.exit(9)
=
$ jobrun plan exit_loaded.lua
! jobrun: exit_loaded.lua:2: os.exit is not available to suites (a suite declares jobs; it cannot end jobrun)
? 2

= exit_load.lua
suite "s" { run = "x" }
load("return os")().exit(5)
=
$ jobrun plan exit_load.lua
! jobrun: exit_load.lua:2: os.exit is not available to suites (a suite declares jobs; it cannot end jobrun)
? 2

= exit_registry.lua
suite "s" { run = "x" }
assert(debug.getregistry == nil and debug.getupvalue == nil, "debug reaches past the sandbox")
assert(package.loaded._G == _G and package.loaded.os == os and require "os" == os)
assert(require("string").format == string.format)
os.exit(3)
=
$ jobrun plan exit_registry.lua
! jobrun: exit_registry.lua:5: os.exit is not available to suites (a suite declares jobs; it cannot end jobrun)
? 2

# A module the suite requires runs in the suite's environment; jobrun's own still work.
= lib/helper.lua
return { bye = function() os.exit(4) end, json = require("jobrun.base.json").encode({ 1, 2 }) }
=
= uses_helper.lua
package.path = "lib/?.lua;" .. package.path
local helper = require "helper"
assert(helper.json == "[1,2]")
suite "s" { run = "x" }
helper.bye()
=
$ jobrun plan uses_helper.lua
! jobrun: lib/helper.lua:1: os.exit is not available to suites (a suite declares jobs; it cannot end jobrun)
? 2

= error_nil.lua
suite "s" { run = "x" }
error(nil)
=
$ jobrun plan error_nil.lua
! jobrun: error_nil.lua:2: (error object is a nil value)
? 2

= error_table.lua
suite "s" { run = "x" }

error({})
=
$ jobrun plan error_table.lua
! jobrun: error_table.lua:3: (error object is a table value)
? 2

= error_level0.lua
local function check() error("no position", 0) end
suite "s" { run = "x" }
check()
=
$ jobrun plan error_level0.lua
! jobrun: error_level0.lua:1: no position
? 2

= error_tostring.lua
suite "s" { run = function() error(setmetatable({}, { __tostring = function() return "custom" end })) end }
=
$ jobrun plan error_tostring.lua
! jobrun: error_tostring.lua:1: run function failed for job 's': error_tostring.lua:1: custom
? 2

= cyclic.lua
local recipe = { name = "arena" }
recipe.self = recipe
suite "s" {
  matrix = { recipe = { recipe } },
  run = "x",
}
=
$ jobrun plan cyclic.lua
! jobrun: cyclic.lua:3: suite "s": matrix.recipe[1].self refers back to matrix.recipe[1] (a cyclic table; job data must be a tree)
? 2
$ jobrun run cyclic.lua; ls "$JOBRUN_STATE_DIR/runs" 2>/dev/null | wc -l
! jobrun: cyclic.lua:3: suite "s": matrix.recipe[1].self refers back to matrix.recipe[1] (a cyclic table; job data must be a tree)
> 0

= nul_name.lua
suite "s" { matrix = { v = { "a\0b" } }, run = "x" }
=
$ jobrun plan nul_name.lua
! jobrun: nul_name.lua:1: job name 's_a\0b' holds a NUL byte, which no file name can carry
? 2

= nul_run.lua
suite "s" {
  matrix = { v = { "a" } },
  run = { "echo", "x\0y" },
}
=
$ jobrun plan nul_run.lua
! jobrun: nul_run.lua:1: run item 2 of job 's_a' holds a NUL byte (at byte 2), which no command, environment or file name can carry
? 2

= nul_setup.lua
suite "s" { run = "x", setup = function() return "echo \0" end }
=
$ jobrun plan nul_setup.lua
! jobrun: nul_setup.lua:1: setup of job 's' holds a NUL byte (at byte 6), which no command, environment or file name can carry
? 2

= nul_env.lua
condition "c" { env = { X = "1\0" } }
suite "s" { matrix = { condition = { "c" } }, run = "x" }
=
$ jobrun plan nul_env.lua
! jobrun: nul_env.lua:2: env X of job 's_c' holds a NUL byte (at byte 2), which no command, environment or file name can carry
? 2
$ jobrun run nul_env.lua; ls "$JOBRUN_STATE_DIR/runs" 2>/dev/null | wc -l
! jobrun: nul_env.lua:2: env X of job 's_c' holds a NUL byte (at byte 2), which no command, environment or file name can carry
> 0

# --max-jobs: a matrix is sized before it is built.
= big.lua
local v = {}
for i = 1, 100 do v[i] = i end
suite "big" {
  matrix = { a = v, b = v, c = v },
  exclude = { { a = 1 } },
  include = { { a = 1, b = 1, c = 1, extra = true } },
  run = "true",
}
=
$ jobrun plan big.lua
! jobrun: big.lua:3: suite "big": the matrix makes 990,001 jobs, more than the limit of 100,000 (raise it with --max-jobs 990001, or narrow the matrix with --set or exclude)
? 2
$ jobrun launch big.lua; ls "$JOBRUN_STATE_DIR/runs" 2>/dev/null | wc -l
! jobrun: big.lua:3: suite "big": the matrix makes 990,001 jobs, more than the limit of 100,000 (raise it with --max-jobs 990001, or narrow the matrix with --set or exclude)
> 0
$ jobrun plan big.lua --set a=1,2 --max-jobs 10001 | tail -1
> 10001 jobs · suite big · backend local · run id big-* (glob)
$ jobrun plan big.lua --set a=1,2 --max-jobs 10000
! jobrun: big.lua:3: suite "big": the matrix makes 10,001 jobs, more than the limit of 10,000 (raise it with --max-jobs 10001, or narrow the matrix with --set or exclude)
? 2
$ jobrun run big.lua --max-jobs 0
! jobrun: --max-jobs must be a whole number of at least 1, not '0'
? 2

# Placeholders in shell strings reach the command verbatim, quoted only when they need it.
= quoting.lua
suite "q" {
  matrix = { v = { "$(touch pwned)", "it's", "a b", "", "x-1.5" } },
  run = "printf '<%s>' {v} '{v}' \"{v}\"; echo",
  env = { V = "{v}" },
}
=
$ jobrun plan quoting.lua --json | sed -n 's/^ *"run": //p'
> "printf '<%s>' '$(touch pwned)' '$(touch pwned)' \"\\$(touch pwned)\"; echo",
> "printf '<%s>' 'it'\\''s' 'it'\\''s' \"it's\"; echo",
> "printf '<%s>' 'a b' 'a b' \"a b\"; echo",
> "printf '<%s>'  '' \"\"; echo",
> "printf '<%s>' x-1.5 'x-1.5' \"x-1.5\"; echo",
# ... and run by sh, every form gives the value itself, and nothing else runs.
$ jobrun plan quoting.lua --json | sed -n 's/^ *"run": "\(.*\)",$/\1/p' | sed 's/\\\(.\)/\1/g' | sh; test ! -e pwned
> <$(touch pwned)><$(touch pwned)><$(touch pwned)>
> <it's><it's><it's>
> <a b><a b><a b>
> <><>
> <x-1.5><x-1.5><x-1.5>

# Control characters in names are shown escaped in the plan's table, coloured or not.
= title.lua
suite "t" { matrix = { x = { "\27]0;owned\7" } }, run = "true" }
=
$ jobrun plan title.lua --run-id r | head -2
> Job                 Nodes  Params              Timeout  Command
> t_\x1b]0;owned\x07  1      x=\x1b]0;owned\x07  -        true
$ jobrun plan title.lua --run-id r --color always | sed -n 2p | tr '\033\007' 'EB'
> E[36mt_\x1b]0;owned\x07E[0m  1      x=\x1b]0;owned\x07  -        true
