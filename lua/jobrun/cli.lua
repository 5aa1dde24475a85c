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

local function help(args)
  local topic = args[1]
  if not topic then io.stdout:write(general_help()); return 0 end
  if DSL_TOPICS[topic] then io.stdout:write(dsl_help(topic)); return 0 end
  if topic == "expect" then io.stdout:write(require("jobrun.verdict").help()); return 0 end
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
  require("jobrun.git").use_state_dir(state_dir)
  opts.color = opts.color or "auto"
  return cmd.run(opts, args)
end

return cli
