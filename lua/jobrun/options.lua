-- Command-line options: --name, --name=value, --name value; -h; "--" ends options.
-- Each command declares its options as data; unknown ones get a "did you mean".
local errors = require "jobrun.errors"
local suggest = require "jobrun.suggest"

local options = {}

-- Option groups shared by several commands (SPEC §2). kind: flag | value | list | optional (a
-- flag that may carry a value: --name=VALUE, or --name VALUE when the next argument is one that
-- the option's `takes(arg, following)` accepts (following: the argument after it, if any), so
-- that `check --grid RUN` still reads RUN as the run).
-- What chooses the jobs of a plan (run, launch, plan).
options.SELECT = {
  { "backend", "value", "NAME", "backend to use instead of the suite's" },
  { "only", "list", "GLOB", "only jobs whose name matches (repeatable)" },
  { "tag", "list", "TAG", "only jobs whose condition carries TAG (repeatable)" },
  { "set", "list", "AXIS=V1,V2", "replace an axis's values (repeatable)" },
  { "max-jobs", "value", "N", "refuse a matrix of more than N jobs (default 100000)" },
  { "timeout", "value", "DURATION", "per-job timeout, e.g. 30m" },
  { "run-id", "value", "ID", "name of the run (default: suite and time)" },
  { "suite", "list", "NAME", "only this suite of the file, with what it needs (repeatable)" },
}
-- ... and what only matters when they are launched.
options.LAUNCH = {
  { "max-parallel", "value", "N", "jobs running at once" },
  { "skip-git-check", "flag", nil, "launch even from a dirty or unpushed tree" },
}
for i, o in ipairs(options.SELECT) do table.insert(options.LAUNCH, i, o) end

options.JSON = { { "json", "flag", nil, "machine output on stdout, nothing else there" } }
options.JUNIT = { { "junit", "value", "FILE", "write a JUnit XML report" } }
-- What every command takes (all but analyze, which reads no run, take the state directory).
options.COLOR = { { "color", "value", "WHEN", "auto (default), always or never" } }
options.COMMON = {
  options.COLOR[1],
  { "state-dir", "value", "DIR", "where runs live (default: the nearest .jobrun; env JOBRUN_STATE_DIR)" },
}

-- The report's extras (run, wait, check).
options.REPORT = {
  { "logs", "flag", nil, "after the table, each job's last lines" },
  { "tail", "value", "N", "how many lines --logs shows (default 20)" },
  { "grid", "optional", "[ROWS,COLS]", "the verdicts as a grid over two axes (default: the two largest)",
    takes = function(arg) return arg:find(",", 1, true) ~= nil and arg:sub(1, 1) ~= "-" end,
    check = function(v) return v == true or v:match("^[^,]+,[^,]+$") ~= nil, "two axes, ROWS,COLS" end },
  { "html", "value", "FILE", "write a self-contained HTML report (grid, table, timeline, failures)" },
  { "summary", "value", "FILE", "write a Markdown summary (default: append to $GITHUB_STEP_SUMMARY when set)" },
}

function options.concat(...)
  local out = {}
  for _, group in ipairs({ ... }) do
    for _, o in ipairs(group) do out[#out + 1] = o end
  end
  return out
end

-- parse(command, argv, spec) -> opts, positionals. opts uses the option names with "-" kept.
function options.parse(command, argv, spec)
  local by_name, names = {}, {}
  for _, o in ipairs(spec) do by_name[o[1]] = o; names[#names + 1] = "--" .. o[1] end
  local opts, positionals = {}, {}
  local function usage(fmt, ...)
    errors.raise("%s: %s\nRun 'jobrun help %s' for usage.", command,
      string.format(fmt, ...), command)
  end
  local i = 1
  while i <= #argv do
    local a = argv[i]
    if a == "--" then
      for j = i + 1, #argv do positionals[#positionals + 1] = argv[j] end
      break
    elseif a == "-h" or a == "--help" then
      opts.help = true
    elseif a:sub(1, 2) == "--" then
      local name, value = a:match("^%-%-([^=]+)=(.*)$")
      name = name or a:sub(3)
      local o = by_name[name]
      if not o then
        usage("unknown option '--%s'%s", name, suggest.hint("--" .. name, names))
      end
      if o[2] == "flag" then
        if value then usage("option '--%s' takes no value", name) end
        opts[name] = true
      elseif o[2] == "optional" then
        if not value and argv[i + 1] and o.takes(argv[i + 1], argv[i + 2]) then
          i = i + 1
          value = argv[i]
        end
        opts[name] = value or true
        local ok, want = o.check(opts[name])
        if not ok then usage("option '--%s' takes %s, not '%s'", name, want, value) end
      else
        if not value then
          i = i + 1
          value = argv[i]
          if value == nil then usage("option '--%s' needs a value (%s)", name, o[3]) end
        end
        if o[2] == "list" then
          opts[name] = opts[name] or {}
          table.insert(opts[name], value)
        else
          opts[name] = value
        end
      end
    elseif a:sub(1, 1) == "-" and a ~= "-" then
      usage("unknown option '%s'", a)
    else
      positionals[#positionals + 1] = a
    end
    i = i + 1
  end
  if opts.color and opts.color ~= "auto" and opts.color ~= "always" and opts.color ~= "never" then
    usage("--color must be auto, always or never, not '%s'", opts.color)
  end
  return opts, positionals
end

-- help_lines(spec) -> aligned "  --name VALUE   text" lines.
function options.help_lines(spec)
  local lines, width = {}, 0
  local left = {}
  for i, o in ipairs(spec) do
    left[i] = "--" .. o[1] .. (o[3] and (" " .. o[3]) or "")
    width = math.max(width, #left[i])
  end
  for i, o in ipairs(spec) do
    lines[#lines + 1] = string.format("  %-" .. width .. "s  %s", left[i], o[4])
  end
  return table.concat(lines, "\n")
end

options.OUTPUT = options.concat(options.JSON, options.JUNIT, options.COMMON)

return options
