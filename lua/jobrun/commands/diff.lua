-- jobrun diff RUN_A RUN_B: the jobs whose verdict, status, termination or exit code differ
-- between two runs, side by side (matched by name); exit 1 when a job that passed in A fails
-- in B (a regression).
local options = require "jobrun.options"
local state = require "jobrun.state"
local json = require "jobrun.json"
local color = require "jobrun.color"
local textable = require "jobrun.textable"
local errors = require "jobrun.errors"

local command = {
  name = "diff",
  usage = "jobrun diff RUN_A RUN_B [--json] [options]",
  summary = "compare two runs job by job; exit 1 on a regression",
  options = options.concat(options.JSON, options.COMMON),
  help = [[
Jobs are matched by name. A job is shown when its verdict, status, termination reason or exit
code differs, or when it is in only one of the runs. Exits 1 if a job that passed in RUN_A fails
in RUN_B, else 0. Runs are compared as last saved (run jobrun check first for the newest).]],
}

local COMPARED = { "verdict", "status", "termination_reason", "exit_code" }

local function value(v) if v == nil or v == json.null then return nil end return v end

local function differs(a, b)
  for _, k in ipairs(COMPARED) do
    if value(a[k]) ~= value(b[k]) then return true end
  end
  return false
end

-- compare(a, b) -> rows: { name, change, a = job|nil, b = job|nil } in A's order, then B's new.
function command.compare(data_a, data_b)
  local by_b, seen = {}, {}
  for _, job in ipairs(data_b.jobs) do by_b[job.name] = job end
  local rows = {}
  for _, ja in ipairs(data_a.jobs) do
    seen[ja.name] = true
    local jb = by_b[ja.name]
    if not jb then
      rows[#rows + 1] = { name = ja.name, change = "only in A", a = ja }
    elseif differs(ja, jb) then
      local change = "changed"
      if ja.verdict == "pass" and jb.verdict == "fail" then change = "regressed"
      elseif ja.verdict == "fail" and jb.verdict == "pass" then change = "fixed" end
      rows[#rows + 1] = { name = ja.name, change = change, a = ja, b = jb }
    end
  end
  for _, jb in ipairs(data_b.jobs) do
    if not seen[jb.name] then rows[#rows + 1] = { name = jb.name, change = "only in B", b = jb } end
  end
  return rows
end

local function side(job)
  if not job then return "-" end
  local parts = { job.status or "?" }
  if value(job.exit_code) ~= nil then parts[#parts + 1] = "exit " .. tostring(job.exit_code) end
  if value(job.termination_reason) ~= nil then parts[#parts + 1] = tostring(job.termination_reason) end
  parts[#parts + 1] = job.verdict or "pending"
  return table.concat(parts, " · ")
end

local function brief(job)
  if not job then return json.null end
  local out = {}
  for _, k in ipairs(COMPARED) do out[k] = value(job[k]) == nil and json.null or job[k] end
  return json.object(out, COMPARED)
end

function command.run(opts, args)
  if #args ~= 2 then errors.raise("diff: expected two runs\nUsage: %s", command.usage) end
  local dir_a = state.resolve(opts["state-dir"], args[1])
  local dir_b = state.resolve(opts["state-dir"], args[2])
  local a, b = state.read(dir_a), state.read(dir_b)
  local rows = command.compare(a, b)
  local regressions = 0
  for _, r in ipairs(rows) do if r.change == "regressed" then regressions = regressions + 1 end end
  if opts.json then
    local list = json.array()
    for i, r in ipairs(rows) do
      list[i] = json.object({ name = r.name, change = r.change, a = brief(r.a), b = brief(r.b) },
        { "name", "change", "a", "b" })
    end
    io.stdout:write(json.encode(json.object({ a = a.run_id, b = b.run_id, regressions = regressions, jobs = list },
      { "a", "b", "regressions", "jobs" }), true), "\n")
    return regressions > 0 and 1 or 0
  end
  local paint = color.painter(color.enabled(opts.color, 1))
  local out = io.stdout
  out:write(paint(string.format("Diff %s → %s", a.run_id, b.run_id), "bold"), "\n\n")
  if #rows == 0 then
    out:write(string.format("No differences in %s.\n", require("jobrun.textable").count(#a.jobs, "job")))
    return 0
  end
  local tint = { regressed = "red", fixed = "green", ["only in A"] = "yellow", ["only in B"] = "yellow" }
  local cells = {}
  for i, r in ipairs(rows) do
    cells[i] = { r.name, paint(r.change, tint[r.change] or "yellow"), side(r.a), side(r.b) }
  end
  out:write(textable.render({ "Job", "Change", "A: " .. a.run_id, "B: " .. b.run_id }, cells, { paint = paint }))
  out:write(string.format("\n%d job%s differ%s; %d regression%s.\n", #rows, #rows == 1 and "" or "s",
    #rows == 1 and "s" or "", regressions, regressions == 1 and "" or "s"))
  return regressions > 0 and 1 or 0
end

return command
