-- jobrun completion bash|zsh|fish: a shell completion script, generated from the commands'
-- own option tables and usage lines (the ones the command line parses and help prints), so it
-- never drifts. Run ids and job names come from the state directory at completion time, through
-- the hidden `jobrun __complete [--state-dir DIR] runs | jobs [RUN]`.
local errors = require "jobrun.base.errors"

local command = {
  name = "completion",
  usage = "jobrun completion bash|zsh|fish",
  summary = "print a shell completion script: bash, zsh or fish",
  options = {},
  help = [[
Completes commands, options, option values (--color, --backend, --status, files and
directories), suite and log files (a suite: .lua files and directories only), run ids and job
names (read from the state directory when you press Tab), the axes of the suite or run after
--grid and --set, a suite's job names after run SUITE --only, and packs and .lua files after
--use. Load it with:
  bash   source <(jobrun completion bash)          (in ~/.bashrc)
  zsh    source <(jobrun completion zsh)           (in ~/.zshrc, after compinit)
  fish   jobrun completion fish > ~/.config/fish/completions/jobrun.fish]],
}

-- Option values: by option name, else by the metavariable its table gives. takes: what the
-- command's first operand is ("run" or "suite"), where the value depends on it.
local function value_kind(name, meta, takes)
  if name == "color" then return { words = { "auto", "always", "never" } } end
  if name == "backend" then return { words = require("jobrun.plan").BUILTIN_BACKENDS } end
  if name == "status" then return { words = require("jobrun.suite.schema").STATUSES } end
  -- The jobs of the run, or of the suite (planned when you press Tab).
  if name == "only" and takes then return { job = true } end
  -- The axes of the suite or the run: ROWS,COLS for --grid, AXIS= for --set.
  if name == "grid" and takes then return { axes = "grid" } end
  if name == "set" and takes then return { axes = "set" } end
  if name == "use" then return { words = require("jobrun.suite.dsl").BUILTIN_PACKS, lua = true } end
  -- script --resume [RUN] FILE.lua: a run id or the script itself.
  if name == "resume" then return { run = true, lua = true } end
  if meta and meta:match("%.lua$") then return { lua = true } end
  if meta == "FILE" then return { file = true } end
  if meta == "DIR" then return { dir = true } end
  return nil
end

-- positionals(usage) -> list of { kind = "file"|"run"|"job"|"words", words, optional }: the
-- operands of a usage line, its options and [options] left out.
local function positionals(usage)
  local rest = usage:gsub("^jobrun%s+%S+", ""):gsub("%[[^%]]*%-%-[^%]]*%]", ""):gsub("%[options%]", "")
  local out = {}
  for token in rest:gmatch("%S+") do
    local optional = token:match("^%[(.*)%]$")
    local word = optional or token
    local p = { optional = optional ~= nil }
    if word:find("|", 1, true) then
      p.kind, p.words = "words", {}
      for w in word:gmatch("[^|]+") do p.words[#p.words + 1] = w end
    elseif word:match("^RUN") then p.kind = "run"
    elseif word == "JOB" then p.kind = "job"
    elseif word:match("%.lua$") then p.kind = "lua"; p.suite = word == "SUITE.lua"
    elseif word:match("FILE$") then p.kind = "file"
    end
    if p.kind then out[#out + 1] = p end
  end
  return out
end

-- at_position(list) -> { [n] = { kinds… } }: what the n-th operand can be, given that optional
-- operands may be left out ("logs [RUN] JOB": a run or a job first, a job second).
local function at_position(list)
  local out = {}
  local optional = {}
  for i, p in ipairs(list) do if p.optional then optional[#optional + 1] = i end end
  for mask = 0, (1 << #optional) - 1 do
    local drop = {}
    for b, i in ipairs(optional) do if mask & (1 << (b - 1)) ~= 0 then drop[i] = true end end
    local n = 0
    for i, p in ipairs(list) do
      if not drop[i] then
        n = n + 1
        out[n] = out[n] or {}
        local key = p.kind == "job" and n > 1 and list[1].kind == "run" and "job_of_first" or p.kind
        out[n][key] = p
      end
    end
  end
  return out
end

-- model() -> the commands, each { name, summary, options = { {name, takes_value, doc, value} },
-- at = at_position(...) }, in help's order, with help itself.
function command.model()
  local cli = require "jobrun.cli"
  local cmds = {}
  for _, name in ipairs(cli.COMMANDS) do
    local c = require("jobrun.commands." .. name)
    local list = positionals(c.usage)
    local takes
    for _, p in ipairs(list) do
      if p.kind == "run" then takes = "run" elseif p.suite then takes = "suite" end
    end
    local opts = {}
    for _, o in ipairs(c.options or {}) do
      opts[#opts + 1] = { name = o[1], takes_value = o[2] ~= "flag", doc = o[4], short = o.short,
                          value = o[2] ~= "flag" and value_kind(o[1], o[3], takes) or nil }
    end
    opts[#opts + 1] = { name = "help", doc = "show this help" }
    cmds[#cmds + 1] = { name = name, summary = c.summary, options = opts, at = at_position(list) }
  end
  local topics = { kind = "words", words = { "suite", "condition", "parser", "expect" } }
  for _, c in ipairs(cmds) do topics.words[#topics.words + 1] = c.name end
  cmds[#cmds + 1] = { name = "help", summary = "help on a command: jobrun help COMMAND",
    options = {}, at = { { words = topics } } }
  return cmds
end

local function shell_words(list) return table.concat(list, " ") end

-- ---------------------------------------------------------------- bash (and zsh through it)

local function bash_value_lines(kind, indent)
  local out = {}
  if kind.words then out[#out + 1] = indent .. "_jobrun_words " .. string.format("%q", shell_words(kind.words)) end
  if kind.run then out[#out + 1] = indent .. "_jobrun_call runs" end
  if kind.file then out[#out + 1] = indent .. "_jobrun_files" end
  if kind.lua then out[#out + 1] = indent .. "_jobrun_lua" end
  if kind.dir then out[#out + 1] = indent .. "_jobrun_dirs" end
  -- The jobs and axes of the run or suite the line names first (else the latest run).
  if kind.job then out[#out + 1] = indent .. "_jobrun_call jobs \"$first\"" end
  if kind.axes then out[#out + 1] = indent .. "_jobrun_axes " .. kind.axes end
  return out
end

local function bash_script()
  local cmds = command.model()
  local names = {}
  for _, c in ipairs(cmds) do names[#names + 1] = c.name end
  local out = {
    "# bash completion for jobrun. Generated by `jobrun completion bash`; load it with",
    "#   source <(jobrun completion bash)",
    "_jobrun_words() { local IFS=$' \\t\\n'; COMPREPLY+=($(compgen -W \"$1\" -- \"$cur\")); }",
    "_jobrun_files() { local IFS=$'\\n'; COMPREPLY+=($(compgen -f -- \"$cur\")); }",
    "_jobrun_dirs() { local IFS=$'\\n'; COMPREPLY+=($(compgen -d -- \"$cur\")); }",
    "# _jobrun_lua: .lua files and directories (hidden ones only when the word starts with a dot).",
    "_jobrun_lua() {",
    "  local IFS=$'\\n' f",
    "  for f in $(compgen -f -- \"$cur\"); do",
    "    [[ ${f##*/} == .* && ${cur##*/} != .* ]] && continue",
    "    if [[ -d $f || $f == *.lua ]]; then COMPREPLY+=(\"$f\"); fi",
    "  done",
    "}",
    "# _jobrun_axes grid|set: the axes of the suite or run the line names first: ROWS,COLS or AXIS=.",
    "_jobrun_axes() {",
    "  local IFS=$'\\n' a prefix=",
    "  [[ $1 == grid && $cur == *,* ]] && prefix=${cur%,*},",
    "  while IFS= read -r a; do",
    "    [[ $1 == grid && ,$prefix == *,$a,* ]] && continue",
    "    [[ $1 == set ]] && a+==",
    "    [[ $prefix$a == \"$cur\"* ]] && COMPREPLY+=(\"$prefix$a\")",
    "  done < <(\"${COMP_WORDS[0]}\" __complete ${state_dir:+--state-dir \"$state_dir\"} axes \"$first\" 2>/dev/null)",
    "  if [[ $1 == set && ${#COMPREPLY[@]} -gt 0 ]] && type compopt >/dev/null 2>&1; then",
    "    compopt -o nospace 2>/dev/null",
    "  fi",
    "}",
    "# _jobrun_call runs | jobs [RUN]: run ids or job names, asked of jobrun itself.",
    "_jobrun_call() {",
    "  local IFS=$'\\n' line",
    "  while IFS= read -r line; do",
    "    [[ $line == \"$cur\"* ]] && COMPREPLY+=(\"$line\")",
    "  done < <(\"${COMP_WORDS[0]}\" __complete ${state_dir:+--state-dir \"$state_dir\"} \"$@\" 2>/dev/null)",
    "}",
    "# _jobrun_valued CMD: the options of CMD that take a value.",
    "_jobrun_valued() {",
    "  case $1 in",
  }
  for _, c in ipairs(cmds) do
    local v = {}
    for _, o in ipairs(c.options) do if o.takes_value then v[#v + 1] = "--" .. o.name end end
    if #v > 0 then out[#out + 1] = string.format("    %s) echo \" %s \" ;;", c.name, shell_words(v)) end
  end
  out[#out + 1] = "  esac"
  out[#out + 1] = "}"
  out[#out + 1] = "# _jobrun_value CMD OPTION: complete the value of an option."
  out[#out + 1] = "_jobrun_value() {"
  out[#out + 1] = "  case \"$1 $2\" in"
  for _, c in ipairs(cmds) do
    for _, o in ipairs(c.options) do
      if o.value then
        out[#out + 1] = string.format("    \"%s --%s\")", c.name, o.name)
        for _, l in ipairs(bash_value_lines(o.value, "      ")) do out[#out + 1] = l end
        out[#out + 1] = "      ;;"
      end
    end
  end
  out[#out + 1] = "  esac"
  out[#out + 1] = "}"
  out[#out + 1] = "# _jobrun_options CMD: its options."
  out[#out + 1] = "_jobrun_options() {"
  out[#out + 1] = "  case $1 in"
  for _, c in ipairs(cmds) do
    local o = {}
    for _, x in ipairs(c.options) do o[#o + 1] = "--" .. x.name end
    out[#out + 1] = string.format("    %s) _jobrun_words %q ;;", c.name, shell_words(o))
  end
  out[#out + 1] = "  esac"
  out[#out + 1] = "}"
  out[#out + 1] = "# _jobrun_operand CMD N: its N-th operand."
  out[#out + 1] = "_jobrun_operand() {"
  out[#out + 1] = "  case \"$1 $2\" in"
  for _, c in ipairs(cmds) do
    for n, kinds in ipairs(c.at) do
      out[#out + 1] = string.format("    \"%s %d\")", c.name, n)
      for _, key in ipairs({ "words", "file", "lua", "run", "job", "job_of_first" }) do
        local p = kinds[key]
        if p and key == "job_of_first" then
          out[#out + 1] = "      _jobrun_call jobs \"$first\""
        elseif p then
          for _, l in ipairs(bash_value_lines(key == "words" and p or { [key] = true }, "      ")) do
            out[#out + 1] = l
          end
        end
      end
      out[#out + 1] = "      ;;"
    end
  end
  out[#out + 1] = "  esac"
  out[#out + 1] = "}"
  out[#out + 1] = [==[
_jobrun() {
  local cur=${COMP_WORDS[COMP_CWORD]} cmd= first= state_dir= option= w i n=0
  COMPREPLY=()
  # --opt=value: bash splits it into --opt, =, value.
  if [[ $cur == = ]]; then cur=; option=${COMP_WORDS[COMP_CWORD-1]}; fi
  if [[ ${COMP_WORDS[COMP_CWORD-1]} == = && $COMP_CWORD -ge 2 ]]; then option=${COMP_WORDS[COMP_CWORD-2]}; fi
  for ((i = 1; i < COMP_CWORD; i++)); do
    w=${COMP_WORDS[i]}
    if [[ -z $cmd ]]; then
      [[ $w == -* ]] || cmd=$w
      continue
    fi
    case $w in
      =) ((i++)) ;;
      -*)
        if [[ $(_jobrun_valued "$cmd") == *" $w "* && ${COMP_WORDS[i+1]} != = ]]; then
          [[ $w == --state-dir ]] && state_dir=${COMP_WORDS[i+1]}
          ((i + 1 == COMP_CWORD)) && option=$w
          ((i++))
        fi ;;
      *) ((n++)); [[ $n == 1 ]] && first=$w ;;
    esac
  done
  if [[ -z $cmd ]]; then
    _jobrun_words "]==] .. shell_words(names) .. [==[ --help --version"
  elif [[ -n $option ]]; then
    _jobrun_value "$cmd" "$option"
  elif [[ $cur == -* ]]; then
    _jobrun_options "$cmd"
  else
    _jobrun_operand "$cmd" $((n + 1))
  fi
  return 0
}
complete -o filenames -F _jobrun jobrun]==]
  return table.concat(out, "\n") .. "\n"
end

local function zsh_script()
  return table.concat({
    "#compdef jobrun",
    "# zsh completion for jobrun. Generated by `jobrun completion zsh`; load it, after compinit, with",
    "#   source <(jobrun completion zsh)",
    "# It is the bash completion, through zsh's bashcompinit.",
    "autoload -U +X bashcompinit && bashcompinit",
    "",
  }, "\n") .. bash_script():gsub("^#[^\n]*\n#[^\n]*\n", "")
end

-- ---------------------------------------------------------------- fish

local function fish_quote(s) return "'" .. tostring(s):gsub("\\", "\\\\"):gsub("'", "\\'") .. "'" end

-- valued_options(cmds) -> every option of any command that takes a value, as --name.
local function valued_options(cmds)
  local out, seen = {}, {}
  for _, c in ipairs(cmds) do
    for _, o in ipairs(c.options) do
      if o.takes_value and not seen[o.name] then seen[o.name] = true; out[#out + 1] = "--" .. o.name end
    end
  end
  table.sort(out)
  return out
end

local function fish_script()
  local cmds = command.model()
  local out = {
    "# fish completion for jobrun. Generated by `jobrun completion fish`; install it with",
    "#   jobrun completion fish > ~/.config/fish/completions/jobrun.fish",
    "# __jobrun_call runs | jobs: run ids or job names, asked of jobrun (with the line's --state-dir).",
    "function __jobrun_call",
    "    command -q jobrun; or return",
    "    set -l sd",
    "    set -l words (commandline -opc)",
    "    if set -l i (contains -i -- --state-dir $words); and test (count $words) -gt $i",
    "        set sd $words[(math $i + 1)]",
    "    end",
    "    if test -n \"$sd\"",
    "        jobrun __complete --state-dir $sd $argv 2>/dev/null",
    "    else",
    "        jobrun __complete $argv 2>/dev/null",
    "    end",
    "end",
    "# __jobrun_first: the first operand on the line (a suite file or a run id), options skipped.",
    "function __jobrun_first",
    "    set -l words (commandline -opc)",
    "    set -l valued " .. shell_words(valued_options(cmds)),
    "    set -l i 3",
    "    while test $i -le (count $words)",
    "        set -l w $words[$i]",
    "        if contains -- $w $valued",
    "            set i (math $i + 2)",
    "        else if string match -q -- '-*' $w",
    "            set i (math $i + 1)",
    "        else",
    "            echo $w",
    "            return",
    "        end",
    "    end",
    "end",
    "# __jobrun_lua: .lua files and directories (hidden ones only when the word starts with a dot).",
    "function __jobrun_lua",
    "    set -l cur (commandline -ct)",
    "    for f in $cur*",
    "        if test -d $f",
    "            echo $f/",
    "        else if string match -q -- '*.lua' \"$f\"",
    "            echo $f",
    "        end",
    "    end",
    "end",
    "# __jobrun_axes grid|set: the axes of the suite or run on the line, as ROWS,COLS or AXIS=.",
    "function __jobrun_axes",
    "    set -l cur (commandline -ct)",
    "    set -l prefix \"\"",
    "    if test $argv[1] = grid; and string match -q -- '*,*' \"$cur\"",
    "        set prefix (string replace -r ',[^,]*$' ',' -- $cur)",
    "    end",
    "    for a in (__jobrun_call axes (__jobrun_first))",
    "        if test $argv[1] = set",
    "            echo $a=",
    "        else if not contains -- $a (string split , -- \"$prefix\")",
    "            echo $prefix$a",
    "        end",
    "    end",
    "end",
    "complete -c jobrun -f",
    "complete -c jobrun -n __fish_use_subcommand -l help -s h -d 'show help'",
    "complete -c jobrun -n __fish_use_subcommand -l version -s V -d 'print the version'",
  }
  for _, c in ipairs(cmds) do
    out[#out + 1] = string.format("complete -c jobrun -n __fish_use_subcommand -a %s -d %s", c.name,
      fish_quote(c.summary))
  end
  for _, c in ipairs(cmds) do
    local cond = fish_quote("__fish_seen_subcommand_from " .. c.name)
    for _, o in ipairs(c.options) do
      local line = string.format("complete -c jobrun -n %s -l %s", cond, o.name)
      if o.short then line = line .. " -s " .. o.short end
      if o.takes_value then
        local v = o.value
        if v and v.words and v.lua then
          line = line .. " -x -a " .. fish_quote(shell_words(v.words) .. " (__jobrun_lua)")
        elseif v and v.words then line = line .. " -x -a " .. fish_quote(shell_words(v.words))
        elseif v and v.run and v.lua then line = line .. " -x -a '(__jobrun_call runs) (__jobrun_lua)'"
        elseif v and v.run then line = line .. " -r -F -a '(__jobrun_call runs)'"
        elseif v and v.lua then line = line .. " -x -a '(__jobrun_lua)'"
        elseif v and v.file then line = line .. " -r -F"
        elseif v and v.dir then line = line .. " -x -a '(__fish_complete_directories)'"
        elseif v and v.job then line = line .. " -x -a '(__jobrun_call jobs (__jobrun_first))'"
        elseif v and v.axes then line = line .. " -x -a '(__jobrun_axes " .. v.axes .. ")'"
        else line = line .. " -x" end
      end
      out[#out + 1] = line .. " -d " .. fish_quote(o.doc)
    end
    local seen = {}
    for _, kinds in ipairs(c.at) do
      for _, key in ipairs({ "words", "file", "lua", "run", "job", "job_of_first" }) do
        local p = kinds[key]
        local arg
        if not p then arg = nil
        elseif key == "words" then arg = "-a " .. fish_quote(shell_words(p.words))
        elseif key == "file" then arg = "-F"
        elseif key == "lua" then arg = "-a '(__jobrun_lua)'"
        elseif key == "run" then arg = "-a '(__jobrun_call runs)'"
        else arg = "-a '(__jobrun_call jobs)'" end
        if arg and not seen[arg] then
          seen[arg] = true
          out[#out + 1] = string.format("complete -c jobrun -n %s %s", cond, arg)
        end
      end
    end
  end
  return table.concat(out, "\n") .. "\n"
end

function command.script(shell)
  if shell == "bash" then return bash_script() end
  if shell == "zsh" then return zsh_script() end
  if shell == "fish" then return fish_script() end
  return nil
end

function command.run(_, args)
  if #args ~= 1 or not command.script(args[1]) then
    errors.raise("completion: expected one of bash, zsh or fish%s\nUsage: %s",
      args[1] and (", not '" .. args[1] .. "'") or "", command.usage)
  end
  io.stdout:write(command.script(args[1]))
  return 0
end

-- suite_plan(path) -> the plan of a suite file, or nil: what `run SUITE --only <Tab>` and
-- `--set <Tab>` offer come from the suite as it is now (it is evaluated, as make reads a
-- Makefile to complete its targets).
local function suite_plan(path)
  local fs = require "jobrun.c.fs"
  local st = path and path:match("%.lua$") and fs.stat(path)
  if not st or st.type ~= "file" then return nil end
  return require("jobrun.plan").from_options(path, { ["run-id"] = "completion" })
end

-- axes_of(jobs) -> the axis names, in declaration order, of these jobs (planned or recorded).
local function axes_of(jobs)
  local out, seen = {}, {}
  for _, job in ipairs(jobs) do
    for _, k in ipairs(job.param_order or (job.spec and job.spec.param_order) or {}) do
      if type(k) == "string" and not seen[k] then seen[k] = true; out[#out + 1] = k end
    end
  end
  return out
end

local function say(name)
  if type(name) == "string" and not name:find("[\n%z]") then io.stdout:write(name, "\n") end
end

-- complete({ [--state-dir DIR,] "runs" | "jobs" [, RUN | SUITE.lua] | "axes" [, RUN | SUITE.lua] }):
-- one name per line, newest run first; nothing at all when there is nothing to say (completion
-- must stay quiet).
function command.complete(args)
  local state = require "jobrun.run.store"
  local state_dir
  if args[1] == "--state-dir" then state_dir = args[2]; args = { table.unpack(args, 3) } end
  if state_dir == nil or state_dir == "" then state_dir = os.getenv("JOBRUN_STATE_DIR") end
  if state_dir == nil or state_dir == "" then state_dir = state.discover() end
  pcall(function()
    if args[1] == "runs" then
      local runs = state.list(state_dir)
      for i = #runs, 1, -1 do io.stdout:write(runs[i].id, "\n") end
    elseif args[1] == "jobs" or args[1] == "axes" then
      local p = suite_plan(args[2])
      local jobs = p and p.jobs
      if not jobs then
        local run = args[2] ~= "" and args[2] or nil
        jobs = state.read(state.resolve(state_dir, run)).jobs or {}
      end
      if args[1] == "axes" then
        for _, a in ipairs(axes_of(jobs)) do say(a) end
      else
        for _, job in ipairs(jobs) do say(job.name) end
      end
    end
  end)
  return 0
end

return command
