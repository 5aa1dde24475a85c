-- jobrun list: past runs, oldest first: id, suite, backend, started, counts per verdict.
local options = require "jobrun.options"
local state = require "jobrun.state"
local json = require "jobrun.json"
local results = require "jobrun.results"
local textable = require "jobrun.textable"
local color = require "jobrun.color"

local command = {
  name = "list",
  usage = "jobrun list [options]",
  summary = "list past runs with their counts per verdict",
  options = options.concat(options.JSON, options.COMMON),
}

function command.run(opts)
  local state_dir = opts["state-dir"]
  local rows, docs = {}, json.array()
  for _, run in ipairs(state.list(state_dir)) do
    local ok, data = pcall(state.read, state.run_dir(state_dir, run.id))
    if ok then
      local s = results.summary(data.jobs)
      rows[#rows + 1] = { run.id, data.suite or "-", data.backend or "-", data.started_at or "-",
        tostring(s.total), tostring(s.passed), tostring(s.failed), tostring(s.pending) }
      docs[#docs + 1] = json.object({ run_id = run.id, suite = data.suite, backend = data.backend,
        started_at = data.started_at, summary = s }, { "run_id", "suite", "backend", "started_at", "summary" })
    else
      rows[#rows + 1] = { run.id, "(damaged state.json)", "-", "-", "-", "-", "-", "-" }
      docs[#docs + 1] = json.object({ run_id = run.id, error = "damaged state.json" }, { "run_id", "error" })
    end
  end
  if opts.json then
    io.stdout:write(json.encode(docs, true), "\n")
    return 0
  end
  if #rows == 0 then
    io.stdout:write(string.format("No runs in %s yet.\n", state_dir))
    return 0
  end
  local paint = color.painter(color.enabled(opts.color, 1))
  io.stdout:write(textable.render({ "Run", "Suite", "Backend", "Started", "Jobs", "Passed", "Failed", "Pending" },
    rows, { paint = paint }))
  return 0
end

return command
