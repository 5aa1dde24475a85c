# Suites written as GitHub Actions matrices are written: object values without a name, partial
# recursive matching, any axis name with its placeholder, keys without regard to case, and
# `axes` for a matrix that is no literal. Then what plan refuses or warns about in a suite.

= gh.lua
suite "gh" {
  matrix = { ["node-version"] = { 14, 16 },
             node = { { version = 14, os = "linux" }, { version = 16, os = "mac" } } },
  exclude = { { node = { os = "mac" }, ["Node-Version"] = 14 } },
  include = { { NODE = { os = "linux" }, npm = 6 }, { ["node-version"] = 18, npm = 9, node = { os = "bsd" } } },
  run = "echo {node-version} {node.os} {a,b} {1..3} ${HOME}",
}
=

# A table's label is its name, else its scalar fields in sorted key order joined by "-".
$ jobrun plan gh.lua --run-id r
> Job               Nodes  Params                               Timeout  Command
> gh_14_linux-14_6  1      node-version=14 node=linux-14 npm=6  -        echo 14 linux {a,b} {1..3} ${HOME}
> gh_16_linux-14_6  1      node-version=16 node=linux-14 npm=6  -        echo 16 linux {a,b} {1..3} ${HOME}
> gh_16_mac-16      1      node-version=16 node=mac-16          -        echo 16 mac {a,b} {1..3} ${HOME}
> gh_18_bsd_9       1      node-version=18 node=bsd npm=9       -        echo 18 bsd {a,b} {1..3} ${HOME}
>
> 4 jobs · suite gh · backend local · run id r

# --set takes any axis name, in any case, and a table value by its label. Narrowed so, the
# first include entry matches no row and becomes one, without node-version: an error, not text.
$ jobrun plan gh.lua --run-id r --set NODE-VERSION=16 --set node=mac-16
! jobrun: gh.lua:1: placeholder {node-version} in run of job 'gh_linux_6': this job has no value for it (its row, node=linux npm=6, came from an include entry without it, or its value has no such field)
? 2

# Placeholders match keys without regard to case.
$ sed -i 's/run = /name = "{Node-Version}-{node.OS}", run = /' gh.lua && jobrun plan gh.lua --run-id r | cut -c1-10 | sed 's/ *$//'
> Job
> 14-linux
> 16-linux
> 16-mac
> 18-bsd
>
> 4 jobs ·

# A matrix that is no literal has no order Lua can tell: two axes or more need `axes`.
= var.lua
local m = { b = { 1, 2 }, a = { 3, 4 } }
suite "x" {
  matrix = m,
  run = "true",
}
=
$ jobrun plan var.lua
! jobrun: var.lua:2: suite "x": the matrix is not a table written in the declaration, so the order of its axes is unknown; state it with axes = { "a", "b" } (in the order you want)
? 2
$ sed -i 's/run = /axes = { "b", "a" }, run = /' var.lua && jobrun plan var.lua --run-id r | cut -c1-5 | sed 's/ *$//'
> Job
> x_1_3
> x_1_4
> x_2_3
> x_2_4
>
> 4 job
$ sed -i 's/"b", "a"/"b", "c"/' var.lua && jobrun plan var.lua
! jobrun: var.lua:2: suite "x": axes names 'c', which is no axis of the matrix (did you mean 'a'?)
? 2
$ sed -i 's/"b", "c"/"b"/' var.lua && jobrun plan var.lua
! jobrun: var.lua:2: suite "x": axes leaves out the matrix's axis 'a' (it must list every axis once)
? 2
$ printf 'suite "x" { matrix = { A = { 1 }, a = { 2 } }, run = "true" }\n' > case.lua && jobrun plan case.lua
! jobrun: case.lua:1: suite "x": matrix axes 'A' and 'a' differ only in case (matrix keys match without regard to case)
? 2
$ printf 'suite "x" { matrix = { [""] = { 1 } }, run = "true" }\n' > empty.lua && jobrun plan empty.lua
! jobrun: empty.lua:1: suite "x": matrix axis name '' must be a non-empty string (write ["node-version"] = { … } for names that are not identifiers)
? 2

# Terminations are plain names.
= term.lua
suite "t" {
  run = "true",
  expect = { termination = "!nccl_timeout" },
}
=
$ jobrun plan term.lua
! jobrun: term.lua:1: suite "t".expect: termination '!nccl_timeout' is not a plain name: a termination is a name of letters, digits, _, - and . ("nccl_timeout"), or a list of names, any of which passes; there is no negation: write function(r) return r.termination_reason ~= "x" end
? 2
$ sed -i 's/"!nccl_timeout"/{ "timeout", "nccl*" }/' term.lua && jobrun plan term.lua
! jobrun: term.lua:1: suite "t".expect: termination item 2 'nccl*' is not a plain name: a termination is a name of letters, digits, _, - and . ("nccl_timeout"), or a list of names, any of which passes; there are no patterns: list the names accepted, { "a", "b" }
? 2

# An expected termination that nothing produces is a warning (stderr), with the nearest name.
= warn.lua
use "metta"
condition "c" { expect = { termination = "nccl_timout" } }
parser "mine" { contains = "GIVING UP", field = "termination_reason", value = "gave_up" }
suite "w" {
  matrix = { condition = { "c", "heartbeat_timeout" } },
  run = "true",
  expect = { termination = { "gave_up", "signal_KILL", "job_complete", "setup_failed" } },
}
=
$ jobrun plan warn.lua --run-id r
> Job                  Nodes  Params                       Timeout  Command
> w_c                  1      condition=c                  -        true
> w_heartbeat_timeout  1      condition=heartbeat_timeout  -        true
>
> 2 jobs · suite w · backend local · run id r
! jobrun: warning: warn.lua:4: suite "w" expects termination 'job_complete', which no parser, pack or backend declares (did you mean 'job_completed'?)
! jobrun: warning: warn.lua:2: condition "c" expects termination 'nccl_timout', which no parser, pack or backend declares (did you mean 'nccl_timeout'?)

# The backend's name is checked at plan time, at the suite's file:line.
$ printf 'suite "b" {\n  backend = "slrum",\n  run = "true" }\n' > b.lua && jobrun plan b.lua
! jobrun: b.lua:1: suite "b": unknown backend 'slrum' (did you mean 'slurm'?); the backends are local, slurm and skypilot, or a Lua module jobrun.backends.slrum on package.path (jobrun/backends/slrum.lua beside the suite)
? 2
$ jobrun plan b.lua --backend lcoal
! jobrun: --backend: unknown backend 'lcoal' (did you mean 'local'?); the backends are local, slurm and skypilot, or a Lua module jobrun.backends.lcoal on package.path (jobrun/backends/lcoal.lua beside the suite)
? 2
$ mkdir -p jobrun/backends && echo 'return {}' > jobrun/backends/slrum.lua && jobrun plan b.lua --run-id r | tail -1
> 1 job · suite b · backend slrum · run id r

# jobrun help expect: every form, each with an example.
$ jobrun help expect | grep -E '^  [a-z_]+  +[a-z]'
>   status       the job's normalised status, one of:
>   exit_code    a whole number, or "nonzero" for any code but 0
>   termination  the termination reason, a plain name (letters, digits, _, - and .), or a
>   restarts     how often the job was restarted: a number, or { min = N, max = N }
>   log          a Lua pattern that must occur in the job's log
>   metrics      rules on the job's metrics (jobrun help metric): a rule on the tail_mean (the
>   function     function(result) returning ok, why; why is the mismatch shown when ok is
$ jobrun help expect | grep -c 'expect = '
> 13
$ jobrun help suite | grep -E '^  (axes|expect) '
>   axes          the axes' order, needed when matrix is not a table written here: { "b", "a" }
>   expect        default expectation of every job (see jobrun help expect)
