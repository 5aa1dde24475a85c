# jobrun analyze with parsers from a file given by path (issue 24 item 4): --use takes a path
# wherever it takes a pack name, --suite a file of parsers alone, and an unknown pack's error
# says where jobrun looked.

= suites/diverge.lua
parser "diverged" { contains = "loss diverged", field = "termination_reason", value = "diverged", priority = 50 }
parser "lr" { pattern = "lr=([%d.]+)", field = "lr", number = true }
=

= job.log
step 1 lr=0.1
loss diverged at step 2
=

$ jobrun analyze job.log --use suites/diverge.lua --json
> {
>   "exit_code": null,
>   "termination_reason": "diverged",
>   "restart_count": null,
>   "fields": {
>     "lr": 0.1
>   },
>   "metrics": null,
>   "culprit": null,
>   "cause_chain": null,
>   "cause_class": "unknown"
> }

$ jobrun analyze job.log --use ./suites/diverge.lua --json | grep termination
>   "termination_reason": "diverged",

$ jobrun analyze job.log --suite suites/diverge.lua --json | grep termination
>   "termination_reason": "diverged",

$ cd suites && jobrun analyze ../job.log --use diverge --json | grep termination
>   "termination_reason": "diverged",

$ jobrun analyze job.log --use suites/nope.lua
! jobrun: unknown pack 'suites/nope.lua' (no file 'suites/nope.lua')
? 2

$ jobrun analyze job.log --use nope
! jobrun: unknown pack 'nope' (looked for ./nope.lua, * built-in packs: metta) (glob)
? 2

= empty.lua
local x = 1
=

$ jobrun analyze job.log --suite empty.lua
! jobrun: empty.lua: no parser declared, and no suite (write parser "name" { … })
? 2

# In a suite, `use` takes a path too, relative to the suite's directory.
= s.lua
use "suites/diverge.lua"
suite "s" { run = "true" }
=

$ jobrun analyze job.log --suite s.lua --json | grep termination
>   "termination_reason": "diverged",

= bad.lua
use "nope"
suite "s" { run = "true" }
=

$ jobrun plan bad.lua
! jobrun: bad.lua:1: unknown pack 'nope' (looked for ./nope.lua, * built-in packs: metta) (glob)
? 2
