-- Command-line options: --name, --name=value, --name value; -h; "--" ends options.
-- Each command declares its options as data; unknown ones get a "did you mean".
local errors = require "jobrun.base.errors"
local suggest = require "jobrun.cli.suggest"

local options = {}

-- Option groups shared by several commands (README "Using it"). kind: flag | value | list | optional (a
-- flag that may carry a value: --name=VALUE, or --name VALUE when the next argument is one that
-- the option's `takes(arg, following)` accepts (following: the argument after it, if any), so
-- that `check --grid RUN` still reads RUN as the run).
-- What chooses the jobs of a plan (run, launch, plan).
options.SELECT = {
  { "backend", "value", "NAME", "backend to use instead of the suite's" },
  { "only", "list", "GLOB", "only jobs whose name matches; !GLOB: all but those (repeatable)" },
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
  { "durations", "value", "N", "after the table, the N slowest jobs (0: all), as pytest's --durations" },
}

-- run and rerun: -x, as pytest's.
options.FAIL_FAST = {
  { "fail-fast", "flag", nil, "stop launching after the first failure (sets the run's fail_fast)", short = "x" },
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
  local by_name, names, by_short = {}, {}, {}
  for _, o in ipairs(spec) do
    by_name[o[1]] = o; names[#names + 1] = "--" .. o[1]
    if o.short then by_short[o.short] = o end
  end
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
    elseif a:match("^%-%a$") and by_short[a:sub(2)] and by_short[a:sub(2)][2] == "flag" then
      opts[by_short[a:sub(2)][1]] = true
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
function options.help_lines(spec, extra)
  -- extra: more rows { left, doc } in the same columns (help's own -h, --help). Widths count
  -- characters, not bytes: "S,…" is three wide.
  local rows = {}
  for _, o in ipairs(spec) do
    local left = (o.short and "-" .. o.short .. ", " or "") .. "--" .. o[1]
    rows[#rows + 1] = { left .. (o[3] and (" " .. o[3]) or ""), o[4] }
  end
  for _, r in ipairs(extra or {}) do rows[#rows + 1] = r end
  local width = 0
  for _, r in ipairs(rows) do width = math.max(width, utf8.len(r[1]) or #r[1]) end
  local lines = {}
  for _, r in ipairs(rows) do
    lines[#lines + 1] = "  " .. r[1] .. string.rep(" ", width - (utf8.len(r[1]) or #r[1]) + 2) .. r[2]
  end
  return table.concat(lines, "\n")
end

options.OUTPUT = options.concat(options.JSON, options.JUNIT, options.COMMON)

return options
