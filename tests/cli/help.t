# help, --version and unknown commands.
$ jobrun --version
> jobrun 0.1.0

$ jobrun help | head -1
> jobrun 0.1.0 — run matrices of test jobs and tell how each one ended.

$ jobrun help | grep -E '^  (plan|completion|help) '
>   plan        print the expanded jobs; launch nothing
>   completion  print a shell completion script: bash, zsh or fish
>   help        help on a command: jobrun help COMMAND

$ jobrun help | grep -E '^  script '
>   script      run a Lua program that drives jobs itself (require "jobrun")

$ jobrun help script | head -1
> Usage: jobrun script [--resume [RUN]] [--state-dir DIR] FILE.lua [ARGS…]

$ jobrun help plan | head -3
> Usage: jobrun plan SUITE.lua [options]
>
> Print the expanded jobs; launch nothing.

$ jobrun plan --help | grep -E -- '--(set|json|only) '
>   --only GLOB         only jobs whose name matches; !GLOB: all but those (repeatable)
>   --set AXIS=V1,V2    replace an axis's values (repeatable)
>   --json              machine output on stdout, nothing else there

$ jobrun pln
! jobrun: unknown command 'pln' (did you mean 'plan'?)
! Run 'jobrun help' for the list of commands.
? 2

$ jobrun help nosuch
! jobrun: unknown command 'nosuch'
! Run 'jobrun help' for the list of commands.
? 2

$ jobrun > /dev/null 2>&1
? 2

$ jobrun 2>&1 >/dev/null | head -1
> jobrun 0.1.0 — run matrices of test jobs and tell how each one ended.

# JOBRUN_LUA_DIR loads the library from disk: an error in it is internal (traceback, exit 3),
# and names the file and line.
$ cp -r "$TOP/lua" mylua && JOBRUN_LUA_DIR=mylua jobrun --version
> jobrun 0.1.0
$ cp -r "$TOP/lua" broken && sed -i '1i error("broken on purpose")' broken/jobrun/commands/plan.lua && JOBRUN_LUA_DIR=broken jobrun plan x.lua 2>err.txt; echo "exit $?"; head -3 err.txt
> exit 3
> jobrun: internal error: broken/jobrun/commands/plan.lua:1: broken on purpose
> stack traceback:
> 	[C]: in function 'error'

# The DSL's fields, from the schema that validation reads.
$ jobrun help suite | grep -E '^  (timeout|max_restarts) '
>   max_restarts  restarts after a non-zero exit
>   timeout       per job: 90, "30m", "2h"
$ jobrun help parser | head -1
> parser "name" { … } — fields:

# Options line up, however wide their metavariable's characters are (issue 24 item 9).
$ jobrun help check | grep -E -- '^  (--status|--only|-h, --help) '
>   --status S,…         show only jobs with these statuses, e.g. RUNNING,LOST
>   --only GLOB          show only jobs whose name matches; !GLOB: all but those (repeatable)
>   -h, --help           show this help
