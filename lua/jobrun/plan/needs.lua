-- Pipelines (README "Pipelines: several suites in one file"): at plan time, the suites of one file built
-- into one plan, their `needs` resolved to job names (cycles and needs that name nothing refused
-- at file:line) and {needs.SUITE.JOB.fields.NAME} left as a marker; at run time, whether a job
-- may start, must be SKIPPED, and its markers filled with the needed jobs' fields.
local errors = require "jobrun.base.errors"
local suggest = require "jobrun.cli.suggest"
local verdict = require "jobrun.judge.verdict"
local template = require "jobrun.suite.template"

local needs = {}

-- A placeholder {needs.…} stays in the plan as this word (shell-safe: pasted verbatim in any
-- quoting), and is replaced just before the job launches.
local function marker(key) return "@@" .. key .. "@@" end
local MARKER = "@@(needs%.[%w_.%-]+)@@"

local function names_of(list, key)
  local out = {}
  for i, x in ipairs(list) do out[i] = x[key] end
  return out
end

-- parse(entry) -> suite name, job glob (nil: the whole suite)
local function parse(entry)
  local s, glob = entry:match("^([^/]+)/(.+)$")
  if s then return s, glob end
  return entry, nil
end

-- order(decls, chosen) -> the suites to build, needed ones first; errors for needs naming no
-- suite of the file and for cycles.
local function order(decls, by_name, chosen)
  for _, s in ipairs(decls.suites) do
    for _, entry in ipairs(s.fields.needs or {}) do
      local name = parse(entry)
      if not by_name[name] then
        errors.at(s.where, "suite \"%s\": needs '%s', but this file declares no suite '%s'%s (needs name suites "
          .. "of the same file: \"SUITE\" or \"SUITE/JOB\")", s.name, entry, name,
          suggest.hint(name, names_of(decls.suites, "name")))
      end
    end
  end
  local out, mark, path = {}, {}, {}
  local function visit(s)
    if mark[s] == "done" then return end
    if mark[s] == "open" then
      local cycle, from = {}, nil
      for i, p in ipairs(path) do if p == s then from = i end end
      for i = from, #path do cycle[#cycle + 1] = path[i].name end
      cycle[#cycle + 1] = s.name
      errors.at(s.where, "suite \"%s\": needs make a cycle: %s", s.name, table.concat(cycle, " → "))
    end
    mark[s] = "open"
    path[#path + 1] = s
    for _, entry in ipairs(s.fields.needs or {}) do visit(by_name[(parse(entry))]) end
    path[#path] = nil
    mark[s] = "done"
    out[#out + 1] = s
  end
  for _, s in ipairs(decls.suites) do
    if s.fields.needs then visit(s) end
  end
  -- The chosen suites and, transitively, what they need.
  local keep = {}
  local function take(s)
    if keep[s] then return end
    keep[s] = true
    for _, entry in ipairs(s.fields.needs or {}) do take(by_name[(parse(entry))]) end
  end
  for _, s in ipairs(chosen) do take(s) end
  local built, seen = {}, {}
  for _, s in ipairs(out) do if keep[s] then built[#built + 1] = s; seen[s] = true end end
  for _, s in ipairs(decls.suites) do if keep[s] and not seen[s] then built[#built + 1] = s end end
  return built, keep
end

-- resolve(suite, built) -> the names of the jobs the suite needs, in order; a need that names
-- no job is an error at the suite's file:line.
local function resolve(s, built)
  local plan = require "jobrun.plan"
  local out, seen = {}, {}
  for _, entry in ipairs(s.fields.needs or {}) do
    local name, glob = parse(entry)
    local jobs = built[name].jobs
    local found = 0
    for _, job in ipairs(jobs) do
      if not glob or job.name:find(plan.glob_to_pattern(glob)) then
        found = found + 1
        if not seen[job.name] then seen[job.name] = true; out[#out + 1] = job.name end
      end
    end
    if found == 0 then
      local shown = names_of(jobs, "name")
      errors.at(s.where, "suite \"%s\": needs '%s', which names no job of suite \"%s\"%s (its jobs: %s)",
        s.name, entry, name, suggest.hint(glob or "", shown), table.concat(shown, ", ", 1, math.min(#shown, 8)))
    end
  end
  return out
end

-- lookup_for(suite, needed, built) -> fn(key, ctx): a {needs.…} placeholder of one of the
-- suite's jobs, checked against what it needs, as its marker (recorded in ctx.outputs).
local function lookup_for(s, needed, built, by_job)
  local is_needed = {}
  for _, n in ipairs(needed) do is_needed[n] = true end
  return function(key, ctx)
    local function fail(fmt, ...)
      errors.at(ctx.where, "placeholder {%s} in job '%s': " .. fmt, key, ctx.fixed.name or "?", ...)
    end
    if not key:match("^needs%.[%w_.%-]+$") then
      fail("a {needs…} placeholder names jobs whose names are letters, digits, '_', '.' and '-'")
    end
    local head, field = key:match("^needs%.(.+)%.fields%.([^.]+)$")
    if not head then fail("write {needs.SUITE.JOB.fields.NAME} or {needs.SUITE.fields.NAME}") end
    local job
    if built[head] then
      local jobs = built[head].jobs
      if #jobs ~= 1 then
        fail("suite \"%s\" has %d jobs; name one: {needs.%s.JOB.fields.%s}", head, #jobs, head, field)
      end
      job = jobs[1].name
    else
      for i = #head, 1, -1 do
        if head:sub(i, i) == "." and built[head:sub(1, i - 1)] then
          local sname, jname = head:sub(1, i - 1), head:sub(i + 1)
          for _, j in ipairs(built[sname].jobs) do if j.name == jname then job = j.name end end
          if not job then
            fail("suite \"%s\" has no job '%s'%s", sname, jname,
              suggest.hint(jname, names_of(built[sname].jobs, "name")))
          end
          break
        end
      end
      if not job then fail("no suite of this file is named in it") end
    end
    if not is_needed[job] then
      fail("job '%s' is not among what suite \"%s\" needs (add it to needs)", job, s.name)
    end
    local used = by_job[ctx.fixed.name]
    if not used then used = { list = {}, seen = {} }; by_job[ctx.fixed.name] = used end
    if not used.seen[key] then
      used.seen[key] = true
      used.list[#used.list + 1] = { key = key, job = job, field = field }
    end
    return marker(key)
  end
end

-- build(decls, opts) -> the plan of several suites (or of one that needs nothing of its own:
-- plan.build's). opts as plan.build's, and suites = { names } (--suite).
function needs.build(decls, opts)
  local plan = require "jobrun.plan"
  local suites = decls.suites
  local by_name = {}
  for _, s in ipairs(suites) do by_name[s.name] = s end
  local chosen = {}
  for _, name in ipairs(opts.suites or {}) do
    if not by_name[name] then
      errors.raise("--suite %s: %s declares no suite '%s'%s (its suites: %s)", name, decls.file, name,
        suggest.hint(name, names_of(suites, "name")), table.concat(names_of(suites, "name"), ", "))
    end
    chosen[#chosen + 1] = by_name[name]
  end
  if #chosen == 0 then chosen = suites end
  local order_built = order(decls, by_name, chosen)

  -- --set applies to the suites that have the axis; an axis no suite has is an error.
  local built, all_jobs, owner = {}, {}, {}
  local used_set = {}
  for _, s in ipairs(order_built) do
    local sub = setmetatable({ suite = s }, { __index = decls })
    local set = {}
    for i, entry in ipairs(opts.set or {}) do
      local m = type(s.fields.matrix) == "table" and s.fields.matrix or {}
      if require("jobrun.suite.matrix").key_in(m, entry[1]) ~= nil then set[#set + 1] = entry; used_set[i] = true end
    end
    local needed = s.fields.needs and resolve(s, built) or nil
    local outputs = {}
    local sub_opts = setmetatable({ set = set, only = false, tags = false,
      needs_lookup = lookup_for(s, needed or {}, built, outputs) }, { __index = opts })
    local p = plan.build(sub, sub_opts)
    for _, job in ipairs(p.jobs) do
      if owner[job.name] then
        errors.at(s.where, "suite \"%s\": job name '%s' is also a job of suite \"%s\"; job names are unique "
          .. "in a run", s.name, job.name, owner[job.name])
      end
      owner[job.name] = s.name
      job.suite = s.name
      job.needs = needed
      job.outputs = outputs[job.name] and outputs[job.name].list
    end
    p.decl = s
    built[s.name] = p
  end
  for i, entry in ipairs(opts.set or {}) do
    if not used_set[i] then
      errors.raise("--set %s: no suite of %s has an axis '%s'", entry[1], decls.file, entry[1])
    end
  end

  -- The jobs in the order the file declares their suites; --only and --tag choose among them,
  -- and what a chosen job needs comes along.
  local run_suites, backends_seen, backends_list = {}, {}, {}
  for _, s in ipairs(suites) do
    local p = built[s.name]
    if p then
      for _, job in ipairs(p.jobs) do all_jobs[#all_jobs + 1] = job end
      run_suites[#run_suites + 1] = { name = s.name, backend = p.backend, max_parallel = p.max_parallel,
        fail_fast = p.fail_fast or nil, needs = s.fields.needs, line = s.where.line,
        -- The jobs its needs name, once for all its jobs (a job's suite says which list is its).
        jobs_needed = p.jobs[1] and p.jobs[1].needs or nil }
      if not backends_seen[p.backend] then
        backends_seen[p.backend] = true
        backends_list[#backends_list + 1] = p.backend
      end
    end
  end
  local selected = all_jobs
  local filtering = (opts.only and #opts.only > 0) or (opts.tags and #opts.tags > 0)
  if filtering then
    local by_job, keep = {}, {}
    for _, job in ipairs(all_jobs) do by_job[job.name] = job end
    local function take(job)
      if keep[job] then return end
      keep[job] = true
      for _, n in ipairs(job.needs or {}) do take(by_job[n]) end
    end
    for _, job in ipairs(all_jobs) do
      local pick = true
      if opts.only and #opts.only > 0 and not plan.matches_any(job.name, opts.only) then pick = false end
      if pick and opts.tags and #opts.tags > 0 then
        local has = false
        for _, t in ipairs(opts.tags) do for _, jt in ipairs(job.tags) do if jt == t then has = true end end end
        pick = has
      end
      if pick then take(job) end
    end
    selected = {}
    for _, job in ipairs(all_jobs) do if keep[job] then selected[#selected + 1] = job end end
    if #selected == 0 then
      local what = {}
      for _, g in ipairs(opts.only or {}) do what[#what + 1] = "--only " .. g end
      for _, t in ipairs(opts.tags or {}) do what[#what + 1] = "--tag " .. t end
      errors.raise("no job of %s matches %s (%d jobs in all; see jobrun plan %s)", decls.file,
        table.concat(what, " "), #all_jobs, decls.file)
    end
  end
  for i, job in ipairs(selected) do job.index = i end

  -- The git policy of the run: the strictest of its suites'.
  local git_policy, git_where
  for _, s in ipairs(suites) do
    local g = built[s.name] and built[s.name].git_policy
    if g then
      git_policy = git_policy or {}
      for k, v in pairs(g) do if v then git_policy[k] = v end end
      git_where = git_where or s.where
    end
  end
  local first = built[run_suites[1].name]
  local stem = decls.file:match("([^/]+)$"):gsub("%.lua$", "")
  return {
    run_id = opts.run_id,
    suite = #run_suites == 1 and run_suites[1].name or stem,
    suite_path = decls.file,
    backend = first.backend,
    backends = #backends_list > 1 and backends_list or nil,
    suites = run_suites,
    max_parallel = opts.max_parallel, -- --max-parallel; else each suite's own (run.suites)
    fail_fast = false,
    git_policy = git_policy, git_where = git_where,
    notify = first.notify,
    jobs = selected,
    total_jobs = #all_jobs,
  }
end

---------------------------------------------------------------------------------------------
-- Run time.

local WHICH = { FAILED = "failed", TIMEOUT = "timed out", CANCELLED = "was cancelled",
  LAUNCH_FAILED = "could not be launched", LOST = "was lost", SKIPPED = "was skipped",
  SUCCEEDED = "did not pass" }

local function shown_name(job)
  local s = job.spec and job.spec.suite
  return s and (s .. "/" .. job.name) or job.name
end
needs.shown_name = shown_name

-- lists(data) -> suite name -> the names of the jobs its jobs need.
function needs.lists(data)
  local out = {}
  for _, s in ipairs(type(data.suites) == "table" and data.suites or {}) do out[s.name] = s.jobs_needed end
  return out
end

-- state(job, by_name, lists) -> nil (free to start) | "wait" | "skip", why
function needs.state(job, by_name, lists)
  local list = lists[job.spec and job.spec.suite or ""]
  if not list then return nil end
  local waiting = false
  for _, name in ipairs(list) do
    local nj = by_name[name]
    if nj then
      if not verdict.TERMINAL[nj.status] or nj.verdict == "pending" then
        waiting = true
      elseif nj.verdict ~= "pass" then
        -- (a job that ended well but failed its expectations: the first unmet one)
        local why = nj.status == "SUCCEEDED" and (nj.mismatches or {})[1]
          or nj.status ~= "SKIPPED" and (nj.termination_reason
          or (math.type(nj.exit_code) == "integer" and nj.exit_code ~= 0 and ("exit code " .. nj.exit_code))
          or (nj.mismatches or {})[1]) or nil
        return "skip", string.format("needs %s, which %s%s", shown_name(nj), WHICH[nj.status] or "did not pass",
          why and (" (" .. tostring(why) .. ")") or "")
      end
    end
  end
  if waiting then return "wait" end
  return nil
end

-- The text of a field value in a command or environment.
local function text_of(v)
  if type(v) == "table" then return nil end
  return template.text(v)
end

-- fill(job, by_name, env) -> env | nil, why: the job's {needs…} markers replaced, in its commands
-- (quoted for where they sit in a shell string), setup and environment, by the needed jobs'
-- fields; what the plan wrote is kept in spec.unfilled for a rerun. A field that is missing
-- (or empty) fails the job before it launches.
function needs.fill(job, by_name, env)
  local spec = job.spec
  local outputs = spec and spec.outputs
  if not outputs or #outputs == 0 then return env end
  local values = {}
  for _, o in ipairs(outputs) do
    local nj = by_name[o.job]
    local v = nj and nj.fields and nj.fields[o.field]
    local text = v ~= nil and text_of(v) or nil
    if text == nil or text == "" then
      return nil, string.format("{%s}: job %s set no field '%s'%s", o.key, nj and shown_name(nj) or o.job, o.field,
        v ~= nil and " (it is empty or not a scalar)" or "")
    end
    if text:find("\0", 1, true) then
      return nil, string.format("{%s}: the field '%s' of job %s holds a NUL byte", o.key, o.field, o.job)
    end
    values[o.key] = text
  end
  spec.unfilled = spec.unfilled or { commands = spec.commands, setup = spec.setup, env = spec.env }
  local src = spec.unfilled
  local function plain(s)
    if type(s) ~= "string" then return s end
    return (s:gsub(MARKER, function(k) return values[k] end))
  end
  local function shell(s)
    if type(s) == "table" then
      local out = {}
      for i, w in ipairs(s) do out[i] = plain(w) end
      return out
    end
    if type(s) ~= "string" then return s end
    local out, pos = {}, 1
    while true do
      local a, b, k = s:find(MARKER, pos)
      if not a then break end
      out[#out + 1] = s:sub(pos, a - 1)
      out[#out + 1] = values[k] and template.paste(values[k], template.quote_state_at(s, a)) or s:sub(a, b)
      pos = b + 1
    end
    out[#out + 1] = s:sub(pos)
    return table.concat(out)
  end
  local commands = {}
  for i, c in ipairs(src.commands or {}) do commands[i] = shell(c) end
  spec.commands = commands
  spec.setup = shell(src.setup)
  local recorded = {}
  for k, v in pairs(src.env or {}) do recorded[k] = plain(v) end
  -- What state.json keeps is redacted as the plan's env was (a field may be a credential).
  spec.env = require("jobrun.run.store").redact_env(recorded)
  if env then
    local out = {}
    for k, v in pairs(env) do out[k] = plain(v) end
    env = out
  end
  return env or recorded
end

-- unfill(job): the plan's commands and environment back (before a rerun's new attempt).
function needs.unfill(job)
  local spec = job.spec
  local src = spec and spec.unfilled
  if not src then return end
  spec.commands, spec.setup, spec.env, spec.unfilled = src.commands, src.setup, src.env, nil
end

-- dependents(data, chosen) -> chosen and every job that needs one of them, transitively, in
-- the run's order.
function needs.dependents(data, chosen)
  local jobs, lists = data.jobs, needs.lists(data)
  local pick = {}
  for _, job in ipairs(chosen) do pick[job.name] = true end
  local changed = true
  while changed do
    changed = false
    -- Which suites need a picked job (each suite's list looked at once per round).
    local hit = {}
    for sname, list in pairs(lists) do
      for _, n in ipairs(list) do if pick[n] then hit[sname] = true; break end end
    end
    for _, job in ipairs(jobs) do
      if not pick[job.name] and hit[job.spec and job.spec.suite or ""] then
        pick[job.name] = true
        changed = true
      end
    end
  end
  local out = {}
  for _, job in ipairs(jobs) do if pick[job.name] then out[#out + 1] = job end end
  return out
end

-- graph_svg(data, esc) -> the run's suites as boxes (name, backend, counts), arrows for needs,
-- in inline SVG ("" for a run of one suite): layers left to right by what each needs.
-- counts(data) -> { [suite] = { total, passed, failed, pending, skipped } }: each suite's jobs by
-- verdict (skipped ones among the failed), in a run of several suites.
function needs.counts(data)
  local counts = {}
  for _, s in ipairs(type(data.suites) == "table" and data.suites or {}) do
    counts[s.name] = { total = 0, passed = 0, failed = 0, pending = 0, skipped = 0 }
  end
  for _, job in ipairs(data.jobs) do
    local c = counts[job.spec and job.spec.suite or ""]
    if c then
      c.total = c.total + 1
      if job.status == "SKIPPED" then c.skipped = c.skipped + 1 end
      if job.verdict == "pass" then c.passed = c.passed + 1
      elseif job.verdict == "fail" then c.failed = c.failed + 1
      else c.pending = c.pending + 1 end
    end
  end
  return counts
end

function needs.graph_svg(data, esc)
  local suites = type(data.suites) == "table" and data.suites or {}
  if #suites < 2 then return "" end
  local by, layer = {}, {}
  for _, s in ipairs(suites) do by[s.name] = s end
  local function layer_of(s, depth)
    if layer[s] then return layer[s] end
    local l = 0
    for _, entry in ipairs(type(s.needs) == "table" and s.needs or {}) do
      local need = by[(parse(entry))]
      if need and need ~= s and depth < #suites then l = math.max(l, layer_of(need, depth + 1) + 1) end
    end
    layer[s] = l
    return l
  end
  local rows, pos = {}, {}
  local W, H, GX, GY, PAD = 250, 58, 70, 22, 10
  for _, s in ipairs(suites) do
    local l = layer_of(s, 0)
    rows[l] = (rows[l] or 0) + 1
    pos[s] = { x = PAD + l * (W + GX), y = PAD + (rows[l] - 1) * (H + GY) }
  end
  local width, height = 0, 0
  for _, p in pairs(pos) do width = math.max(width, p.x + W + PAD); height = math.max(height, p.y + H + PAD) end
  local counts = needs.counts(data)
  local out = { string.format('<svg class="needs" role="img" aria-label="suites and what they need" '
    .. 'xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" '
    .. 'font-size="12"><defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8" '
    .. 'markerHeight="8" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#555"/></marker></defs>',
    width, height, width, height) }
  for _, s in ipairs(suites) do
    for _, entry in ipairs(type(s.needs) == "table" and s.needs or {}) do
      local need = by[(parse(entry))]
      if need and pos[need] then
        local a, b = pos[need], pos[s]
        out[#out + 1] = string.format('<path class="edge" d="M%d,%d C%d,%d %d,%d %d,%d" fill="none" stroke="#555" '
          .. 'marker-end="url(#arrow)"><title>%s needs %s</title></path>', a.x + W, a.y + H // 2,
          a.x + W + GX // 2, a.y + H // 2, b.x - GX // 2, b.y + H // 2, b.x, b.y + H // 2, esc(s.name), esc(entry))
      end
    end
  end
  for _, s in ipairs(suites) do
    local p, c = pos[s], counts[s.name]
    local stroke = c.failed > 0 and "#c62828" or c.pending > 0 and "#888" or "#2e7d32"
    out[#out + 1] = string.format('<g class="suite" data-suite="%s"><rect x="%d" y="%d" width="%d" height="%d" rx="6" '
      .. 'fill="#fff" stroke="%s" stroke-width="2"/><text x="%d" y="%d" font-weight="bold">%s</text>'
      .. '<text x="%d" y="%d">%s · %d/%d passed%s%s%s</text></g>', esc(s.name), p.x, p.y, W, H, stroke,
      p.x + 10, p.y + 22, esc(s.name), p.x + 10, p.y + 42, esc(s.backend or "?"), c.passed, c.total,
      c.failed > c.skipped and string.format(" · %d failed", c.failed - c.skipped) or "",
      c.skipped > 0 and string.format(" · %d skipped", c.skipped) or "",
      c.pending > 0 and string.format(" · %d pending", c.pending) or "")
  end
  out[#out + 1] = "</svg>"
  return table.concat(out, "\n")
end

-- suite_names(data) -> the names of a run's suites.
function needs.suite_names(data)
  return names_of(data.suites or {}, "name")
end

-- suite_of(job) -> the job's suite name in a run of several suites (nil otherwise).
function needs.suite_of(job) return job.spec and job.spec.suite end

return needs
