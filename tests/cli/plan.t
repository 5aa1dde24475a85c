# jobrun plan: the table, --json, filters, and what happens with bad suites.

= s.lua
condition "fast" { args = { "--steps", "10" }, tags = { "ci" } }
condition "slow" { args = { "--steps", "1e9", "it's" }, timeout = "2h" }
suite "demo" {
  matrix = { nodes = { 1, 2 }, condition = { "fast", "slow" } },
  name = "{suite}_{nodes}n_{condition}",
  run = "train {args}",
  env = { RUN_ID = "{name}.{run_id}" },
  timeout = "10m",
}
=

$ jobrun plan s.lua --run-id r1
> Job           Nodes  Params                  Timeout  Command
> demo_1n_fast  1      nodes=1 condition=fast  10m00s   train --steps 10
> demo_1n_slow  1      nodes=1 condition=slow  2h00m    train --steps 1e9 'it'\''s'
> demo_2n_fast  2      nodes=2 condition=fast  10m00s   train --steps 10
> demo_2n_slow  2      nodes=2 condition=slow  2h00m    train --steps 1e9 'it'\''s'
>
> 4 jobs · suite demo · backend local · run id r1

$ jobrun plan s.lua --tag ci --set nodes=2 --run-id r1 --backend slurm
> Job           Nodes  Params                  Timeout  Command
> demo_2n_fast  2      nodes=2 condition=fast  10m00s   train --steps 10
>
> 1 of 2 jobs · suite demo · backend slurm · run id r1
> Timeouts on Slurm: the batch script ends the job's step at the timeout (TERM, then KILL after Slurm's KillWait; KILL to srun 10 s later, slurm.grace), and the job is TIMEOUT; Slurm's own --time is a backstop, the timeout + grace + 30 s rounded up to whole minutes (10m00s: --time=0-00:11:00).

$ jobrun plan s.lua --only '*slow' --only demo_1n_fast --json --run-id r2 | grep '"name"'
>       "name": "demo_1n_fast",
>       "name": "demo_1n_slow",
>       "name": "demo_2n_slow",

$ jobrun plan s.lua --json --only demo_1n_slow --run-id r3
> {
>   "run_id": "r3",
>   "suite": "demo",
>   "jobs": [
>     {
>       "name": "demo_1n_slow",
>       "params": {
>         "nodes": 1,
>         "condition": "slow"
>       },
>       "backend": "local",
>       "nodes": 1,
>       "run": "train --steps 1e9 'it'\\''s'",
>       "env": {
>         "RUN_ID": "demo_1n_slow.r3"
>       },
>       "timeout": 7200,
>       "expect": null
>     }
>   ]
> }

$ jobrun plan s.lua --json | grep -c run_id
> 1

# Errors: file:line, exit 2, nothing on stdout.
= bad_key.lua
suite "s" {
  run = "x",
  tiemout = "1h",
}
=
$ jobrun plan bad_key.lua
! jobrun: bad_key.lua:1: unknown key 'tiemout' in suite "s" (did you mean 'timeout'?)
? 2

= bad_syntax.lua
suite "s" {
  run = "x",
=
$ jobrun plan bad_syntax.lua
! jobrun: bad_syntax.lua:3: unexpected symbol near <eof>
? 2

= bad_runtime.lua
local cfg = nil
suite "s" { run = cfg.command }
=
$ jobrun plan bad_runtime.lua
! jobrun: bad_runtime.lua:2: attempt to index a nil value (local 'cfg')
? 2

$ jobrun plan s.lua --set nodez=1
! jobrun: --set nodez: the suite has no axis 'nodez' (axes: nodes, condition) (did you mean 'nodes'?)
? 2

$ jobrun plan s.lua --only nothing
! jobrun: no job of suite "demo" matches --only nothing (4 jobs in all; see jobrun plan s.lua)
? 2

$ jobrun plan s.lua --only fast
! jobrun: no job of suite "demo" matches --only fast (4 jobs in all; see jobrun plan s.lua)
!   Globs match whole names: try --only '*fast*'
? 2

$ jobrun run s.lua --max-parallel 0
! jobrun: --max-parallel must be a whole number of at least 1, not '0'
? 2

$ jobrun plan s.lua --max-parallel 2
! jobrun: plan: unknown option '--max-parallel'
! Run 'jobrun help plan' for usage.
? 2

$ jobrun plan s.lua --timeout soon
! jobrun: --timeout: 'soon' is not a duration (use s, m, h or d, e.g. "1h30m")
? 2

$ jobrun plan s.lua --run-id ../x
! jobrun: run id '../x' must be letters, digits, '.', '_' or '-' (at most 128), starting with a letter or digit
? 2

$ jobrun plan missing.lua
! jobrun: cannot read suite: missing.lua: No such file or directory
? 2

$ jobrun plan
! jobrun: plan: expected one suite file, got 0
! Usage: jobrun plan SUITE.lua [options]
? 2

$ jobrun plan s.lua --jsn
! jobrun: plan: unknown option '--jsn' (did you mean '--json'?)
! Run 'jobrun help plan' for usage.
? 2

$ jobrun plan s.lua --color sometimes
! jobrun: plan: --color must be auto, always or never, not 'sometimes'
! Run 'jobrun help plan' for usage.
? 2

# Colour: never off a TTY unless asked, never with NO_COLOR.
$ jobrun plan s.lua --color always --only demo_1n_fast | grep -c "$(printf '\033')\["
> 2
$ NO_COLOR=1 jobrun plan s.lua --only demo_1n_fast | grep -c "$(printf '\033')"
> 0
? 1
$ NO_COLOR=1 jobrun plan s.lua --only demo_1n_fast --color always | grep -c "$(printf '\033')"
> 2

# --only '!GLOB': all but the jobs it matches (issue 24 item 8); with plain globs, those of them
# that no negated one matches.
$ jobrun plan s.lua --only '!*slow' --run-id r3
> Job           Nodes  Params                  Timeout  Command
> demo_1n_fast  1      nodes=1 condition=fast  10m00s   train --steps 10
> demo_2n_fast  2      nodes=2 condition=fast  10m00s   train --steps 10
>
> 2 of 4 jobs · suite demo · backend local · run id r3

$ jobrun plan s.lua --only 'demo_1n*' --only '!*slow' --run-id r3 | grep demo_
> demo_1n_fast  1      nodes=1 condition=fast  10m00s   train --steps 10

$ jobrun plan s.lua --only '!demo*'
! jobrun: no job of suite "demo" matches --only !demo* (4 jobs in all; see jobrun plan s.lua)
? 2

= one.lua
suite "one" { run = "true" }
=

# One job is "1 job" (issue 24 item 9).
$ jobrun plan one.lua --run-id r4 | tail -1
> 1 job · suite one · backend local · run id r4
