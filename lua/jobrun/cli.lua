-- jobrun's command line: dispatch, help and --version. Each command is a module under
-- jobrun.commands with { name, usage, summary, options, help, run(opts, args) -> exit code }.
local errors = require "jobrun.errors"
local options = require "jobrun.options"
local suggest = require "jobrun.suggest"

local cli = {}

-- The commands this build has, in the order help lists them.
cli.COMMANDS = { "run", "launch", "plan", "check", "wait", "rerun", "kill", "logs", "diff", "history", "flaky",
                 "show", "list", "prune", "analyze", "completion", "script", "notify", "serve" }

local function load_command(name)
  for _, c in ipairs(cli.COMMANDS) do
    if c == name then return require("jobrun.commands." .. name) end
  end
  return nil
end

local function command_help(cmd)
  local out = { "Usage: " .. cmd.usage, "", cmd.summary:sub(1, 1):upper() .. cmd.summary:sub(2) .. "." }
  if cmd.help then out[#out + 1] = ""; out[#out + 1] = cmd.help end
  out[#out + 1] = ""
  out[#out + 1] = "Options:"
  out[#out + 1] = options.help_lines(cmd.options or {}, { { "-h, --help", "show this help" } })
  return table.concat(out, "\n") .. "\n"
end

local function general_help()
  local out = {
    "jobrun " .. JOBRUN_VERSION .. " — run matrices of test jobs and tell how each one ended.",
    "",
    "Usage: jobrun COMMAND [options]",
    "",
    "Commands:",
  }
  local width = 4
  for _, name in ipairs(cli.COMMANDS) do width = math.max(width, #name) end
  for _, name in ipairs(cli.COMMANDS) do
    out[#out + 1] = string.format("  %-" .. width .. "s  %s", name, load_command(name).summary)
  end
  out[#out + 1] = string.format("  %-" .. width .. "s  %s", "help", "help on a command: jobrun help COMMAND")
  out[#out + 1] = ""
  out[#out + 1] = "Exit codes: 0 all jobs passed · 1 a job failed · 2 usage or suite error ·"
  out[#out + 1] = "3 infrastructure error · 4 (check) none failed, some still running ·"
  out[#out + 1] = "130 interrupted · 143 terminated."
  out[#out + 1] = "Run 'jobrun help COMMAND' for a command's options, 'jobrun help suite' (or condition,"
  out[#out + 1] = "parser, metric) for the fields of a suite file, 'jobrun help expect' for expectations."
  out[#out + 1] = "jobrun --version prints the version."
  return table.concat(out, "\n") .. "\n"
end

local function unknown_command(name)
  local names = { "help" }
  for _, c in ipairs(cli.COMMANDS) do names[#names + 1] = c end
  errors.raise("unknown command '%s'%s\nRun 'jobrun help' for the list of commands.",
    name, suggest.hint(name, names))
end

-- help suite | condition | parser | metric: the DSL's fields, from the same table validation reads.
local DSL_TOPICS = { suite = true, condition = true, parser = true, metric = true }

local function dsl_help(topic)
  local schema = require "jobrun.schema"
  local fields = schema.fields[topic]
  local names = schema.keys_of(fields)
  local width = 0
  for _, n in ipairs(names) do width = math.max(width, #n) end
  local out = { string.format('%s "name" { … } — fields:', topic), "" }
  for _, n in ipairs(names) do
    out[#out + 1] = string.format("  %-" .. width .. "s  %s", n, fields[n].doc or "")
  end
  if topic == "suite" then out[#out + 1] = "\n" .. require("jobrun.plan").SUITE_HELP end
  return table.concat(out, "\n") .. "\n"
end

-- help expect: every form an expectation takes, each with an example.
local function expect_help()
  local plan = require "jobrun.plan"
  local schema = require "jobrun.schema"
  local out = { [[
expect — how a job should end: a suite's expect is every job's, a condition's replaces it.

A table checks only what it names, and a job passes when every check holds; a function
decides alone. Without an expectation a job passes iff its status is SUCCEEDED and its exit
code 0. CANCELLED, LAUNCH_FAILED, LOST and SKIPPED never pass unless status names them.

  status       the job's normalised status, one of:
               ]] .. table.concat(schema.STATUSES, " ") .. [[

                 expect = { status = "TIMEOUT" }
  exit_code    a whole number, or "nonzero" for any code but 0
                 expect = { exit_code = 3 }
                 expect = { exit_code = "nonzero" }
  termination  the termination reason, a plain name (letters, digits, _, - and .), or a
               list of names any of which passes; names are compared as they are
                 expect = { termination = "nccl_timeout" }
                 expect = { termination = { "timeout", "preempted" } }
  restarts     how often the job was restarted: a number, or { min = N, max = N }
                 expect = { restarts = 0 }
                 expect = { restarts = { min = 1, max = 3 } }
  log          a Lua pattern that must occur in the job's log
                 expect = { log = "loss: %d+%.%d+" }
  metrics      rules on the job's metrics (jobrun help metric): a rule on the tail_mean (the
               mean of the last 25 % of points), another aggregate, or a reference per axis
               value with a tolerance; a metric not found is a mismatch
                 expect = { metrics = { ["overview/sps"] = ">= 40000" } }
                 expect = { metrics = { loss = { "<= 2.5", agg = "last" } } }
                 expect = { metrics = { tps = { ref = { nodes = { [1] = 5000, [4] = 19000 } }, tol = "-5%" } } }
  function     function(result) returning ok, why; why is the mismatch shown when ok is
               false. result is the job's result: status, exit_code, termination_reason,
               restart_count, fields (what parsers found), params, name, log_path
                 expect = function(r)
                   if r.fields.nan then return false, "the loss went NaN" end
                   return r.exit_code == 0, "exit code " .. tostring(r.exit_code)
                 end

Checks combine: expect = { status = "FAILED", exit_code = "nonzero", termination = "cuda_oom" }

Termination names jobrun knows (built-in parsers and backends; packs and suites add their
parsers' values), besides signal_<NAME> for a job killed by a signal (signal_KILL):]] }
  local known = plan.known_terminations({})
  local line = " "
  for _, name in ipairs(known) do
    if #line + #name + 1 > 92 then out[#out + 1] = line; line = " " end
    line = line .. " " .. name
  end
  out[#out + 1] = line
  out[#out + 1] = "jobrun plan warns (on stderr) about an expected termination that none of them produces."
  return table.concat(out, "\n") .. "\n"
end

local function help(args)
  local topic = args[1]
  if not topic then io.stdout:write(general_help()); return 0 end
  if DSL_TOPICS[topic] then io.stdout:write(dsl_help(topic)); return 0 end
  if topic == "expect" then io.stdout:write(expect_help()); return 0 end
  local cmd = load_command(topic)
  if not cmd then
    if topic == "help" then io.stdout:write("Usage: jobrun help [COMMAND]\n"); return 0 end
    unknown_command(topic)
  end
  io.stdout:write(command_help(cmd))
  return 0
end

function cli.main(argv)
  require("jobrun.provenance").argv = argv -- each attempt records the command line that started it
  local profile_path = os.getenv("JOBRUN_PROFILE")
  if profile_path and profile_path ~= "" then
    local stop = require("jobrun.profile").start(profile_path)
    local results = table.pack(pcall(cli.dispatch, argv))
    stop()
    if not results[1] then error(results[2], 0) end
    return table.unpack(results, 2, results.n)
  end
  return cli.dispatch(argv)
end

function cli.dispatch(argv)
  local first = argv[1]
  if first == nil then
    io.stderr:write(general_help())
    return errors.USAGE
  end
  if first == "--version" or first == "-V" then
    io.stdout:write("jobrun " .. JOBRUN_VERSION .. "\n")
    return 0
  end
  if first == "help" or first == "--help" or first == "-h" then
    return help({ table.unpack(argv, 2) })
  end
  -- Internal entry point of launch's detached driver; not listed in help.
  if first == "__drive" then return require("jobrun.commands.launch").drive(argv[2]) end
  -- The language server annotations (make writes them to share/jobrun-meta.lua); not listed.
  if first == "__meta" then io.stdout:write(require("jobrun.meta").generate()); return 0 end
  -- What shell completion asks for: run ids and job names (jobrun completion); not listed.
  if first == "__complete" then return require("jobrun.commands.completion").complete({ table.unpack(argv, 2) }) end
  local cmd = load_command(first)
  if not cmd then unknown_command(first) end
  local rest = { table.unpack(argv, 2) }
  local tail = {}
  -- A command that runs a program (script): options before its file, the rest is the program's.
  if cmd.rest_after_first then
    local by_name = {}
    for _, o in ipairs(cmd.options or {}) do by_name[o[1]] = o end
    local i = 1
    while i <= #rest do
      local a = rest[i]
      if a == "--" then break end
      if a:sub(1, 1) ~= "-" or a == "-" then
        tail = { table.unpack(rest, i + 1) }
        rest = { table.unpack(rest, 1, i) }
        break
      end
      local o = a:sub(1, 2) == "--" and not a:find("=", 1, true) and by_name[a:sub(3)]
      if o and (o[2] == "value" or o[2] == "list") then i = i + 1 end
      -- An optional value given as the next argument (script --resume RUN FILE.lua).
      if o and o[2] == "optional" and rest[i + 1] and o.takes(rest[i + 1], rest[i + 2]) then i = i + 1 end
      i = i + 1
    end
  end
  local opts, args = options.parse(first, rest, cmd.options or {})
  for _, a in ipairs(tail) do args[#args + 1] = a end
  if opts.help then io.stdout:write(command_help(cmd)); return 0 end
  local state_dir = opts["state-dir"] or os.getenv("JOBRUN_STATE_DIR")
  if state_dir == nil or state_dir == "" then state_dir = require("jobrun.state").discover() end
  opts["state-dir"] = state_dir
  require("jobrun.state").check_dir(state_dir)
  -- The git guard never counts the state directory as a change, wherever it is.
  local fs = require "jobrun.c.fs"
  require("jobrun.git").state_dir = state_dir:sub(1, 1) == "/" and state_dir or (fs.getcwd() .. "/" .. state_dir)
  opts.color = opts.color or "auto"
  return cmd.run(opts, args)
end

return cli
