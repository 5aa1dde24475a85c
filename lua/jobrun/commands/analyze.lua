-- jobrun analyze LOGFILE [--suite SUITE.lua]: run the parsers over one log and say what they
-- found, so that a parser can be developed against a saved log.
local analysis = require "jobrun.judge.analysis"
local forensics = require "jobrun.judge.forensics"
local options = require "jobrun.cli.options"
local dsl = require "jobrun.suite.dsl"
local json = require "jobrun.base.json"
local color = require "jobrun.report.color"
local errors = require "jobrun.base.errors"
local fs = require "jobrun.c.fs"

local command = {
  name = "analyze",
  usage = "jobrun analyze LOGFILE [--suite SUITE.lua] [--use PACK] [--json]",
  summary = "run the parsers on a log file and print what they found",
  options = options.concat({
    { "suite", "value", "SUITE.lua", "use this file's parsers and packs: a suite, or parsers alone" },
    { "use", "list", "PACK", "also use a pack: a name (metta) or a file (lib/p.lua); repeatable" },
  }, options.JSON, options.COLOR),
  help = [[
Without --suite, only the built-in parsers run, plus the packs named with --use (a name,
looked up beside the current directory, on package.path, then among the built-in packs; or
a path: anything with a '/' or ending in .lua). --suite takes a file of parsers too. The
built-ins name the termination reason, the most specific cause first: cuda_oom, oom,
disk_full, shm_exhausted, cuda_error, nccl_error, nccl_timeout, then timeout, preempted,
node_fail (Slurm), segfault, killed; and put the last Python exception in fields.exception.]],
}

function command.run(opts, args)
  if #args ~= 1 then errors.raise("analyze: expected one log file\nUsage: %s", command.usage) end
  local path = args[1]
  local st = fs.stat(path)
  if not st or st.type ~= "file" then errors.raise("analyze: no log file '%s'", path) end
  -- --suite: a suite, or a file of parsers alone; --use: packs by name or path, beside it.
  local decls
  if opts.suite then decls = dsl.load(opts.suite, nil, true) end
  if opts.use then
    local packs = dsl.load_packs(opts.use)
    if decls then
      for _, name in ipairs(decls.parser_order) do
        if not packs.parsers[name] then packs.parser_order[#packs.parser_order + 1] = name end
        packs.parsers[name] = decls.parsers[name]
      end
    end
    decls = packs
  end
  local parsers = analysis.parsers(decls)
  local found, err = analysis.analyze(path, parsers, nil)
  if not found then errors.infra("analyze: %s", err) end
  local metrics = require "jobrun.judge.metrics"
  local suite_expect = decls and decls.suite and decls.suite.fields.expect
  local found_metrics = metrics.collect(path, parsers.metrics,
    type(suite_expect) == "table" and suite_expect.metrics or nil, nil)
  -- The class of what the log says (a log that says nothing, or a clean exit, has none).
  local cause_class
  if found.termination_reason ~= nil or found.culprit or (found.exit_code ~= nil and found.exit_code ~= 0) then
    cause_class = forensics.class({ verdict = "fail", termination_reason = found.termination_reason,
      culprit = found.culprit, exit_code = found.exit_code }, decls and decls.suite and decls.suite.fields.classes)
  end
  if opts.json then
    local function null(v) if v == nil then return json.null end return v end
    io.stdout:write(json.encode(json.object({
      exit_code = null(found.exit_code),
      termination_reason = null(found.termination_reason),
      restart_count = null(found.restart_count),
      fields = json.object(found.fields),
      metrics = found_metrics and metrics.for_json(found_metrics) or json.null,
      culprit = null(forensics.json_culprit(found.culprit)),
      cause_chain = null(forensics.json_chain(found.cause_chain)),
      cause_class = null(cause_class),
    }, { "exit_code", "termination_reason", "restart_count", "fields", "metrics", "culprit", "cause_chain",
         "cause_class" }), true), "\n")
    return 0
  end
  local paint = color.painter(color.enabled(opts.color, 1))
  local clean = require("jobrun.report.sanitize").text
  local function line(label, v)
    io.stdout:write(string.format("%-20s %s\n", paint(clean(label), "bold"), v == nil and "-" or clean(v)))
  end
  line("exit code", found.exit_code)
  line("termination reason", found.termination_reason)
  line("restart count", found.restart_count)
  local keys = {}
  for k in pairs(found.fields) do keys[#keys + 1] = k end
  table.sort(keys)
  for _, k in ipairs(keys) do line(k, found.fields[k]) end
  local names = {}
  for k in pairs(found_metrics or {}) do names[#names + 1] = k end
  table.sort(names)
  for _, k in ipairs(names) do
    local rec = found_metrics[k]
    line("metric " .. k, rec.value == nil and string.format("missing (%d not numbers)", rec.n_skipped)
      or string.format("%s (%s of %s points; last %s, min %s, max %s)", metrics.format(rec.value), rec.agg,
        metrics.count(rec.n), metrics.format(rec.last), metrics.format(rec.min), metrics.format(rec.max)))
  end
  line("culprit", forensics.line(found.culprit, found.cause_chain, found.exit_code))
  line("cause class", cause_class)
  io.stdout:write(require("jobrun.report.sanitize").format("(%d parsers over %s, %d bytes)\n", #parsers, path, st.size))
  return 0
end

return command
