-- jobrun list [--limit N]: past runs, newest first: id, suite, backend, started, counts per
-- verdict as they are now (a local run's finished jobs are counted from their own files).
local options = require "jobrun.cli.options"
local state = require "jobrun.run.store"
local json = require "jobrun.base.json"
local results = require "jobrun.judge.results"
local textable = require "jobrun.report.table"
local color = require "jobrun.report.color"
local errors = require "jobrun.base.errors"

local command = {
  name = "list",
  usage = "jobrun list [--limit N] [options]",
  summary = "list past runs, newest first, with their counts per verdict",
  options = options.concat({ { "limit", "value", "N", "only the newest N runs" } }, options.JSON, options.COMMON),
}

-- runs(state_dir) -> { id, data | nil, error }, newest first (by start time, then id).
function command.runs(state_dir)
  local Run = require "jobrun.run"
  local out = {}
  for _, entry in ipairs(state.list(state_dir)) do
    local ok, run = pcall(Run.current, state.run_dir(state_dir, entry.id))
    if ok then
      out[#out + 1] = { id = entry.id, data = run.data, run = run }
    else
      out[#out + 1] = { id = entry.id, error = errors.is_user(run) and run.message or tostring(run) }
    end
  end
  table.sort(out, function(a, b)
    local sa, sb = a.data and a.data.started_at or "", b.data and b.data.started_at or ""
    if sa ~= sb then return sa > sb end
    return a.id > b.id
  end)
  return out
end

function command.run(opts)
  local state_dir = opts["state-dir"]
  local limit
  if opts.limit then
    limit = math.tointeger(tonumber(opts.limit))
    if not limit or limit < 1 then errors.raise("--limit must be a whole number from 1, not '%s'", opts.limit) end
  end
  local rows, docs = {}, json.array()
  for i, r in ipairs(command.runs(state_dir)) do
    if limit and i > limit then break end
    local data = r.data
    if data then
      local s = results.summary(data.jobs)
      rows[#rows + 1] = { r.id, data.suite or "-", data.backend or "-", data.started_at or "-",
        tostring(s.total), tostring(s.passed), tostring(s.failed), tostring(s.pending) }
      docs[#docs + 1] = json.object({ run_id = r.id, suite = data.suite, backend = data.backend,
        started_at = data.started_at, summary = s }, { "run_id", "suite", "backend", "started_at", "summary" })
    else
      rows[#rows + 1] = { r.id, "(damaged state.json)", "-", "-", "-", "-", "-", "-" }
      docs[#docs + 1] = json.object({ run_id = r.id, error = "damaged state.json" }, { "run_id", "error" })
    end
  end
  if opts.json then
    io.stdout:write(json.encode(docs, true), "\n")
    return 0
  end
  if #rows == 0 then
    io.stdout:write(require("jobrun.report.sanitize").format("No runs in %s yet.\n", state_dir))
    return 0
  end
  local paint = color.painter(color.enabled(opts.color, 1))
  io.stdout:write(textable.render({ "Run", "Suite", "Backend", "Started", "Jobs", "Passed", "Failed", "Pending" },
    rows, { paint = paint }))
  return 0
end

return command
