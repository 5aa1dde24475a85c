-- jobrun's command line: dispatch and --version (help: jobrun.cli.help). Each command is a
-- module under jobrun.commands with { name, usage, summary, options, help, run(opts, args) -> exit code }.
local errors = require "jobrun.base.errors"
local options = require "jobrun.cli.options"
local help = require "jobrun.cli.help"
local suggest = require "jobrun.cli.suggest"

local cli = {}

-- The commands this build has, in the order help lists them.
cli.COMMANDS = { "run", "launch", "plan", "check", "wait", "rerun", "kill", "logs", "diff", "history", "flaky",
                 "show", "list", "prune", "analyze", "completion", "script", "notify", "serve" }

function cli.load_command(name)
  for _, c in ipairs(cli.COMMANDS) do
    if c == name then return require("jobrun.commands." .. name) end
  end
  return nil
end

function cli.unknown_command(name)
  local names = { "help" }
  for _, c in ipairs(cli.COMMANDS) do names[#names + 1] = c end
  errors.raise("unknown command '%s'%s\nRun 'jobrun help' for the list of commands.",
    name, suggest.hint(name, names))
end

function cli.main(argv)
  require("jobrun.run.provenance").argv = argv -- each attempt records the command line that started it
  if os.getenv("JOBRUN_GC") == "gen" then collectgarbage("generational") end
  local profile_path = os.getenv("JOBRUN_PROFILE")
  if profile_path and profile_path ~= "" then
    local stop = require("jobrun.cli.profile").start(profile_path)
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
    io.stderr:write(help.general(cli))
    return errors.USAGE
  end
  if first == "--version" or first == "-V" then
    io.stdout:write("jobrun " .. JOBRUN_VERSION .. "\n")
    return 0
  end
  if first == "help" or first == "--help" or first == "-h" then
    return help.run({ table.unpack(argv, 2) }, cli)
  end
  -- Internal entry point of launch's detached driver; not listed in help.
  if first == "__drive" then return require("jobrun.commands.launch").drive(argv[2]) end
  -- The language server annotations (make writes them to share/jobrun-meta.lua); not listed.
  if first == "__meta" then io.stdout:write(require("jobrun.suite.meta").generate()); return 0 end
  -- What shell completion asks for: run ids and job names (jobrun completion); not listed.
  if first == "__complete" then return require("jobrun.commands.completion").complete({ table.unpack(argv, 2) }) end
  local cmd = cli.load_command(first)
  if not cmd then cli.unknown_command(first) end
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
  if opts.help then io.stdout:write(help.command(cmd)); return 0 end
  local state_dir = opts["state-dir"] or os.getenv("JOBRUN_STATE_DIR")
  if state_dir == nil or state_dir == "" then state_dir = require("jobrun.run.store").discover() end
  opts["state-dir"] = state_dir
  require("jobrun.run.store").check_dir(state_dir)
  -- The git guard never counts the state directory as a change, wherever it is.
  require("jobrun.base.git").use_state_dir(state_dir)
  opts.color = opts.color or "auto"
  return cmd.run(opts, args)
end

return cli
