-- jobrun diff [A [B]]: the jobs whose verdict, status, termination or exit code differ between
-- two runs or attempts, side by side (matched by name), each side with its commit; exit 1 when a
-- job that passed in A fails in B (a regression). No argument: the latest run against the
-- previous run of its suite; one RUN: each job's latest attempt against its previous one;
-- RUN@N: the run as its N-th attempts left it.
local options = require "jobrun.cli.options"
local state = require "jobrun.run.store"
local json = require "jobrun.base.json"
local color = require "jobrun.report.color"
local textable = require "jobrun.report.table"
local errors = require "jobrun.base.errors"

local command = {
  name = "diff",
  usage = "jobrun diff [RUN_A] [RUN_B] [--json] [options]",
  summary = "compare two runs or attempts job by job; exit 1 on a regression",
  options = options.concat(options.JSON, options.COMMON),
  help = [[
Jobs are matched by name. A job is shown when its verdict, status, termination reason or exit
code differs, or when it is in only one side. Exits 1 if a job that passed in A fails in B, else 0.
  jobrun diff              the latest run against the previous run of the same suite
  jobrun diff RUN          each job's latest attempt against its previous one (after a rerun)
  jobrun diff A B          two runs; either may be RUN@N, the run as its N-th attempts left it
                           (each job's attempt N, or its last one before N)
Each side shows the commit it ran. Runs are compared as last saved (jobrun check first).]],
}

local COMPARED = { "verdict", "status", "termination_reason", "exit_code" }

local function value(v) if v == nil or v == json.null then return nil end return v end

local function differs(a, b)
  for _, k in ipairs(COMPARED) do
    if value(a[k]) ~= value(b[k]) then return true end
  end
  return false
end

-- A metric's change shown (README "Metrics"): at least this much, in %, or past its tolerance.
command.METRIC_SHOWN_PCT = 1

-- metric_changes(a, b) -> { { name, a, b, pct, regressed } … } (sorted by name): each metric both
-- sides have a value for. regressed: the metric has an expectation with a tolerance, and moved
-- past it the wrong way ("-5%": a drop of more than 5 %; "+5%": a rise; "±5%": either).
local function metric_changes(ja, jb)
  local ma, mb = type(ja.metrics) == "table" and ja.metrics, type(jb.metrics) == "table" and jb.metrics
  if not (ma and mb) then return {} end
  local expect = (type(jb.expect) == "table" and jb.expect.metrics)
    or (type(ja.expect) == "table" and ja.expect.metrics)
  local metrics = require "jobrun.judge.metrics"
  local out = {}
  for name, ra in pairs(ma) do
    local rb = mb[name]
    local va, vb = type(ra) == "table" and value(ra.value), type(rb) == "table" and value(rb.value)
    if type(va) == "number" and type(vb) == "number" then
      local pct = va ~= 0 and (vb - va) / math.abs(va) * 100 or (vb == 0 and 0 or math.huge)
      local regressed = false
      local entry = type(expect) == "table" and expect[name]
      local tol = type(entry) == "table" and entry.tol and metrics.parse_tol(entry.tol)
      if tol then
        if tol.lo and pct < -tol.lo * 100 then regressed = true end
        if tol.hi and pct > tol.hi * 100 then regressed = true end
      end
      out[#out + 1] = { name = name, a = va, b = vb, pct = pct, regressed = regressed }
    end
  end
  table.sort(out, function(x, y) return x.name < y.name end)
  return out
end

-- compare(a, b) -> rows: { name, change, a = job|nil, b = job|nil, metrics } in A's order, then
-- B's new. A job whose only change is a metric's is shown when it moved by METRIC_SHOWN_PCT or
-- more, and counts as "regressed" when a metric with a tolerance moved past it.
function command.compare(data_a, data_b)
  local by_b, seen = {}, {}
  for _, job in ipairs(data_b.jobs) do by_b[job.name] = job end
  local rows = {}
  for _, ja in ipairs(data_a.jobs) do
    seen[ja.name] = true
    local jb = by_b[ja.name]
    if not jb then
      rows[#rows + 1] = { name = ja.name, change = "only in A", a = ja }
    else
      local mc = metric_changes(ja, jb)
      local shown, metric_regressed = false, false
      for _, m in ipairs(mc) do
        if m.regressed then metric_regressed = true end
        if m.regressed or math.abs(m.pct) >= command.METRIC_SHOWN_PCT then shown = true end
      end
      if differs(ja, jb) or shown then
        local change = "changed"
        if ja.verdict == "pass" and jb.verdict == "fail" then change = "regressed"
        elseif ja.verdict == "fail" and jb.verdict == "pass" then change = "fixed"
        elseif metric_regressed then change = "regressed" end
        rows[#rows + 1] = { name = ja.name, change = change, a = ja, b = jb, metrics = mc }
      end
    end
  end
  for _, jb in ipairs(data_b.jobs) do
    if not seen[jb.name] then rows[#rows + 1] = { name = jb.name, change = "only in B", b = jb } end
  end
  return rows
end

-- side(job, by_attempt) -> one side's cell; its attempt shown where sides are attempts.
local function side(job, by_attempt)
  if not job then return "-" end
  local parts = { job.status or "?" }
  local commit = type(job.git) == "table" and type(job.git.commit) == "string" and job.git.commit or nil
  if value(job.exit_code) ~= nil then parts[#parts + 1] = "exit " .. tostring(job.exit_code) end
  if value(job.termination_reason) ~= nil then parts[#parts + 1] = tostring(job.termination_reason) end
  parts[#parts + 1] = job.verdict or "pending"
  local text = table.concat(parts, " · ")
  if by_attempt and job.try then text = "@" .. job.try .. " " .. text end
  if commit then text = text .. " · " .. commit:sub(1, 8) end
  return text
end

local BRIEF = { "verdict", "status", "termination_reason", "exit_code", "attempt", "commit" }

local function brief(job)
  if not job then return json.null end
  local out = {}
  for _, k in ipairs(COMPARED) do out[k] = value(job[k]) == nil and json.null or job[k] end
  out.attempt = job.try or json.null
  out.commit = type(job.git) == "table" and job.git.commit or json.null
  return json.object(out, BRIEF)
end

-- tries(data, job) -> the job's attempts, oldest first (the latest is the job itself), each
-- with its commit: an attempt recorded before attempts kept theirs ran the run's first commit.
local function tries(data, job)
  local list = {}
  for _, a in ipairs(job.attempts or {}) do list[#list + 1] = a end
  list[#list + 1] = job
  local out = {}
  for i, a in ipairs(list) do
    out[i] = { name = job.name, verdict = a.verdict, status = a.status, termination_reason = a.termination_reason,
      exit_code = a.exit_code, try = i, git = type(a.git) == "table" and a.git or (i == 1 and data.git or nil),
      metrics = a.metrics, expect = job.spec and job.spec.expect }
  end
  return out
end

-- side_of(state_dir, arg) -> data, label: a run (its jobs' latest attempts), or RUN@N (each
-- job's N-th attempt, or its last one before N).
local function side_of(state_dir, arg)
  local run, n = arg:match("^(.*)@(%d+)$")
  if not run then run = arg end
  local data = state.read(state.resolve(state_dir, run))
  if not n then
    local jobs = {}
    for i, job in ipairs(data.jobs) do
      local t = tries(data, job)
      jobs[i] = t[#t]
    end
    return { run_id = data.run_id, jobs = jobs, suite = data.suite }, data.run_id
  end
  n = math.tointeger(tonumber(n))
  if n < 1 then errors.raise("diff: %s: attempts are numbered from 1", arg) end
  local jobs, most = {}, 0
  for _, job in ipairs(data.jobs) do
    local t = tries(data, job)
    most = math.max(most, #t)
    jobs[#jobs + 1] = t[math.min(n, #t)]
  end
  if n > most then
    errors.raise("diff: run %s has %d attempt%s, not %d", data.run_id, most, most == 1 and "" or "s", n)
  end
  return { run_id = data.run_id .. "@" .. n, jobs = jobs, suite = data.suite, by_attempt = true },
    data.run_id .. "@" .. n
end

-- previous_run(state_dir, data) -> the run of the same suite started before this one, or nil.
local function previous_run(state_dir, data)
  local best
  for _, entry in ipairs(state.list(state_dir)) do
    if entry.id ~= data.run_id then
      local ok, other = pcall(state.read, state.run_dir(state_dir, entry.id))
      if ok and other.suite == data.suite and (other.started_at or "") <= (data.started_at or "")
          and (not best or (other.started_at or "") > (best.started_at or "")
               or ((other.started_at or "") == (best.started_at or "") and other.run_id > best.run_id)) then
        best = other
      end
    end
  end
  return best
end

-- attempts_of(data) -> A and B: each job's previous attempt against its latest (jobs never
-- rerun left out).
local function attempts_of(data)
  local a, b = { jobs = {} }, { jobs = {} }
  for _, job in ipairs(data.jobs) do
    local t = tries(data, job)
    if #t > 1 then
      a.jobs[#a.jobs + 1] = t[#t - 1]
      b.jobs[#b.jobs + 1] = t[#t]
    end
  end
  a.run_id, b.run_id = data.run_id .. " (previous attempt)", data.run_id .. " (latest attempt)"
  a.by_attempt, b.by_attempt = true, true
  return a, b
end

function command.run(opts, args)
  if #args > 2 then errors.raise("diff: expected at most two runs\nUsage: %s", command.usage) end
  local state_dir = opts["state-dir"]
  local a, b
  if #args == 2 then
    a = side_of(state_dir, args[1])
    b = side_of(state_dir, args[2])
  elseif #args == 1 and not args[1]:match("@%d+$") then
    local data = state.read(state.resolve(state_dir, args[1]))
    a, b = attempts_of(data)
    if #a.jobs == 0 then
      local out = opts.json and io.stderr or io.stdout
      out:write(string.format("No job of run %s has been run again: nothing to compare (jobrun rerun %s).\n",
        data.run_id, data.run_id))
      if opts.json then
        io.stdout:write(json.encode(json.object({ a = a.run_id, b = b.run_id, regressions = 0, jobs = json.array() },
          { "a", "b", "regressions", "jobs" }), true), "\n")
      end
      return 0
    end
  else
    b = side_of(state_dir, args[1] or (state.resolve(state_dir, nil):match("([^/]+)$")))
    local latest = state.read(state.resolve(state_dir, b.run_id:gsub("@%d+$", "")))
    local prev = previous_run(state_dir, latest)
    if not prev then
      errors.raise("diff: run %s is the only run of suite %s: nothing to compare it with", latest.run_id,
        tostring(latest.suite))
    end
    a = side_of(state_dir, prev.run_id)
  end
  local rows = command.compare(a, b)
  local regressions = 0
  for _, r in ipairs(rows) do if r.change == "regressed" then regressions = regressions + 1 end end
  if opts.json then
    local list = json.array()
    for i, r in ipairs(rows) do
      local ms = json.array()
      for k, m in ipairs(r.metrics or {}) do
        ms[k] = json.object({ name = m.name, a = m.a, b = m.b, change_pct = m.pct ~= math.huge and m.pct or json.null,
          regressed = m.regressed }, { "name", "a", "b", "change_pct", "regressed" })
      end
      list[i] = json.object({ name = r.name, change = r.change, a = brief(r.a), b = brief(r.b), metrics = ms },
        { "name", "change", "a", "b", "metrics" })
    end
    io.stdout:write(json.encode(json.object({ a = a.run_id, b = b.run_id, regressions = regressions, jobs = list },
      { "a", "b", "regressions", "jobs" }), true), "\n")
    return regressions > 0 and 1 or 0
  end
  local paint = color.painter(color.enabled(opts.color, 1))
  local out = io.stdout
  out:write(paint(require("jobrun.report.sanitize").format("Diff %s → %s", a.run_id, b.run_id), "bold"), "\n\n")
  if #rows == 0 then
    out:write(string.format("No differences in %s.\n", require("jobrun.report.table").count(#a.jobs, "job")))
    return 0
  end
  local tint = { regressed = "red", fixed = "green", ["only in A"] = "yellow", ["only in B"] = "yellow" }
  local cells, any_metric = {}, false
  for i, r in ipairs(rows) do
    local mtext = {}
    for _, m in ipairs(r.metrics or {}) do
      if m.regressed or math.abs(m.pct) >= command.METRIC_SHOWN_PCT then
        local metrics = require "jobrun.judge.metrics"
        mtext[#mtext + 1] = paint(string.format("%s %s→%s (%s)%s", m.name, metrics.format(m.a), metrics.format(m.b),
          m.pct == math.huge and "new" or string.format("%+.1f%%", m.pct), m.regressed and " ✗" or ""),
          m.regressed and "red" or nil)
      end
    end
    any_metric = any_metric or #mtext > 0
    cells[i] = { r.name, paint(r.change, tint[r.change] or "yellow"), side(r.a, a.by_attempt), side(r.b, b.by_attempt),
                 table.concat(mtext, ", ") }
  end
  local head = { "Job", "Change", "A: " .. a.run_id, "B: " .. b.run_id }
  if any_metric then head[5] = "Metrics" else for _, c in ipairs(cells) do c[5] = nil end end
  out:write(textable.render(head, cells, { paint = paint }))
  out:write(string.format("\n%d job%s differ%s; %d regression%s.\n", #rows, #rows == 1 and "" or "s",
    #rows == 1 and "s" or "", regressions, regressions == 1 and "" or "s"))
  return regressions > 0 and 1 or 0
end

return command
