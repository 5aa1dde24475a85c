-- jobrun's help: `jobrun help`, `jobrun help COMMAND`, `COMMAND --help`, and the suite language's
-- topics (`help suite`, `condition`, `parser`, `metric`: the DSL's fields, from the table that
-- validation reads; `help expect`: jobrun.judge.verdict's).
local options = require "jobrun.cli.options"

local help = {}

function help.command(cmd)
  local out = { "Usage: " .. cmd.usage, "", cmd.summary:sub(1, 1):upper() .. cmd.summary:sub(2) .. "." }
  if cmd.help then out[#out + 1] = ""; out[#out + 1] = cmd.help end
  out[#out + 1] = ""
  out[#out + 1] = "Options:"
  out[#out + 1] = options.help_lines(cmd.options or {}, { { "-h, --help", "show this help" } })
  return table.concat(out, "\n") .. "\n"
end

-- general(cli): the commands of the build (jobrun.cli's COMMANDS), each with its summary.
function help.general(cli)
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
    out[#out + 1] = string.format("  %-" .. width .. "s  %s", name, cli.load_command(name).summary)
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

-- help suite | condition | parser | metric: the DSL's fields, from the same table validation reads.
local DSL_TOPICS = { suite = true, condition = true, parser = true, metric = true }

local function dsl_help(topic)
  local schema = require "jobrun.suite.schema"
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

-- run(args, cli): `jobrun help [TOPIC]`.
function help.run(args, cli)
  local topic = args[1]
  if not topic then io.stdout:write(help.general(cli)); return 0 end
  if DSL_TOPICS[topic] then io.stdout:write(dsl_help(topic)); return 0 end
  if topic == "expect" then io.stdout:write(require("jobrun.judge.verdict").help()); return 0 end
  local cmd = cli.load_command(topic)
  if not cmd then
    if topic == "help" then io.stdout:write("Usage: jobrun help [COMMAND]\n"); return 0 end
    cli.unknown_command(topic)
  end
  io.stdout:write(help.command(cmd))
  return 0
end

return help
