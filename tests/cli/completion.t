# jobrun completion: the bash script, sourced in bash and called as bash calls it (COMP_WORDS,
# COMP_CWORD), over a state directory with two runs. zsh and fish: tests/unit/completion.lua.

= comp.sh
# comp.sh WORD…: what bash completion offers for the last word of `WORD…`.
source <(jobrun completion bash)
COMP_WORDS=("$@")
COMP_CWORD=$(($# - 1))
_jobrun
printf '%s\n' "${COMPREPLY[@]}"
=
= s.lua
suite "c" { matrix = { n = { 1, 2 } }, run = "true" }
=

$ jobrun run s.lua --run-id r1 >/dev/null 2>&1 && touch -d '1 hour ago' "$JOBRUN_STATE_DIR/runs/r1/state.json" && jobrun run s.lua --run-id r2 --only c_1 >/dev/null 2>&1

# Commands, then each command's options and their values.
$ bash comp.sh jobrun "" | tr '\n' ' '
> run launch plan check wait rerun kill logs diff history flaky show list prune analyze completion script notify serve help --help --version  (no eol)
$ bash comp.sh jobrun ch
> check
$ bash comp.sh jobrun plan --co
> --color
$ bash comp.sh jobrun plan --color ""
> auto
> always
> never
$ bash comp.sh jobrun check --color = a
> auto
> always
$ bash comp.sh jobrun run --backend s
> slurm
> skypilot
$ bash comp.sh jobrun check --status F
> FAILED
$ bash comp.sh jobrun plan s
> s.lua
$ bash comp.sh jobrun completion ""
> bash
> zsh
> fish
$ bash comp.sh jobrun help ex
> expect

# Run ids (newest first) and job names, from the state directory.
$ bash comp.sh jobrun check ""
> r2
> r1

# script --resume [RUN] FILE.lua: a run id or the script file (.lua files only).
$ bash comp.sh jobrun script --resume "" | sort
> r1
> r2
> s.lua
$ bash comp.sh jobrun script --resume r1 s
> s.lua
$ bash comp.sh jobrun diff r1 ""
> r2
> r1
$ bash comp.sh jobrun logs ""
> r2
> r1
> c_1
$ bash comp.sh jobrun logs r1 ""
> c_1
> c_2
$ bash comp.sh jobrun logs --tail 5 r1 c_
> c_1
> c_2
$ bash comp.sh jobrun check --only ""
> c_1

# Issue 24 item 6. A suite operand: .lua files and directories only, not the other files nor
# hidden ones (unless the word starts with a dot).
$ mkdir -p sub .hid && touch report.html sub/t.lua && bash comp.sh jobrun run "" | sort
> s.lua
> sub
$ bash comp.sh jobrun run sub/
> sub/t.lua
$ bash comp.sh jobrun run .h
> .hid

= g.lua
suite "g" { matrix = { nodes = { 1, 2 }, lr = { "a", "b" } }, run = "true" }
=

# --grid and --set: the axes of the suite on the line (or of the run: check, wait, rerun).
$ bash comp.sh jobrun run g.lua --grid ""
> nodes
> lr
$ bash comp.sh jobrun run g.lua --grid nodes,
> nodes,lr
$ bash comp.sh jobrun plan g.lua --set l
> lr=
$ bash comp.sh jobrun check --grid ""
> n
$ bash comp.sh jobrun check r1 --grid ""
> n

# run SUITE --only: the suite's jobs; check RUN --only: that run's.
$ bash comp.sh jobrun run g.lua --only g_2
> g_2_a
> g_2_b
$ bash comp.sh jobrun check r1 --only ""
> c_1
> c_2

# --use: the built-in packs, .lua files and directories.
$ bash comp.sh jobrun analyze x.log --use "" | sort
> g.lua
> metta
> s.lua
> sub

$ jobrun __complete axes g.lua
> nodes
> lr
$ jobrun __complete jobs g.lua
> g_1_a
> g_1_b
> g_2_a
> g_2_b
$ jobrun __complete axes nosuch.lua

# The hidden call the scripts make: quiet when there is nothing to say.
$ jobrun __complete runs
> r2
> r1
$ jobrun __complete jobs r1
> c_1
> c_2
$ jobrun __complete jobs nosuch
$ jobrun __complete --state-dir nowhere runs

$ jobrun completion tcsh
! jobrun: completion: expected one of bash, zsh or fish, not 'tcsh'
! Usage: jobrun completion bash|zsh|fish
? 2
