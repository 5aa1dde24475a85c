-- From declarations to jobs: matrix expansion, condition merging, placeholders, filters.
-- Everything is validated here, before anything launches.
local errors = require "jobrun.base.errors"
local matrix = require "jobrun.suite.matrix"
local template = require "jobrun.suite.template"
local duration = require "jobrun.suite.duration"
local suggest = require "jobrun.cli.suggest"
local schema = require "jobrun.suite.schema"
local source_order = require "jobrun.suite.source_order"
local sandbox = require "jobrun.suite.sandbox"
local secrets = require "jobrun.base.secrets"

local plan = {}

local sorted_keys = schema.keys_of

-- The axes in the order the suite gives them: its `axes` field, else the order written in its
-- `matrix = { … }` literal. A matrix that is no literal (a variable, a function's result) has
-- no order Lua can tell: with two axes or more it needs `axes`.
local function axis_order(decls)
  local suite = decls.suite
  local f = suite.fields
  local m = f.matrix or {}
  local keys = sorted_keys(m)
  if f.axes then
    local out, seen = {}, {}
    for _, a in ipairs(f.axes) do
      local key = matrix.key_in(m, tostring(a))
      if key == nil then
        errors.at(suite.where, "suite \"%s\": axes names '%s', which is no axis of the matrix%s",
          suite.name, tostring(a), suggest.hint(tostring(a), keys))
      end
      if seen[key] then errors.at(suite.where, "suite \"%s\": axes names '%s' twice", suite.name, key) end
      seen[key] = true
      out[#out + 1] = key
    end
    for _, k in ipairs(keys) do
      if not seen[k] then
        errors.at(suite.where, "suite \"%s\": axes leaves out the matrix's axis '%s' (it must list every axis once)",
          suite.name, k)
      end
    end
    return out
  end
  local written = source_order.matrix_axes(decls.source, suite.where.line)
  if written and #written == #keys then
    local ok = true
    for _, a in ipairs(written) do if m[a] == nil then ok = false end end
    if ok then return written end
  end
  if #keys >= 2 then
    local quoted = {}
    for i, k in ipairs(keys) do quoted[i] = string.format("%q", k) end
    errors.at(suite.where, "suite \"%s\": the matrix is not a table written in the declaration, so the "
      .. "order of its axes is unknown; state it with axes = { %s } (in the order you want)",
      suite.name, table.concat(quoted, ", "))
  end
  return keys
end

-- --set AXIS=V1,V2: the given words, as the axis's own values where they name one.
local function override_values(axis, words, original, decls)
  local out = {}
  for _, word in ipairs(words) do
    local found
    for _, v in ipairs(original or {}) do
      if matrix.same(v, word) or template.text(v) == word then found = v; break end
    end
    if found == nil then
      if axis == "condition" and not decls.conditions[word] then
        errors.raise("--set condition=%s: no condition named '%s'%s", word, word,
          suggest.hint(word, decls.condition_order))
      end
      local n = tonumber(word)
      local numeric = original and type(original[1]) == "number"
      found = (n and numeric) and (math.tointeger(n) or n) or word
    end
    out[#out + 1] = found
  end
  return out
end

function plan.glob_to_pattern(glob)
  local out = { "^" }
  local i = 1
  while i <= #glob do
    local c = glob:sub(i, i)
    if c == "*" then out[#out + 1] = ".*"
    elseif c == "?" then out[#out + 1] = "."
    elseif c == "[" and glob:find("]", i + 1, true) then
      local close = glob:find("]", i + 1, true)
      local class = glob:sub(i + 1, close - 1):gsub("^!", "^"):gsub("%%", "%%%%")
      out[#out + 1] = "[" .. class .. "]"
      i = close
    else out[#out + 1] = c:gsub("%W", "%%%0") end
    i = i + 1
  end
  out[#out + 1] = "$"
  return table.concat(out)
end

-- matches_any(name, globs) -> true when one of the shell globs (--only) matches the name and
-- none of the negated ones ("!GLOB", as pytest's -k "not …") does; negated ones alone select
-- every other name.
function plan.matches_any(name, globs)
  local wanted, hit = false, false
  for _, g in ipairs(globs) do
    local negated = g:match("^!(.*)$")
    if negated then
      if name:find(plan.glob_to_pattern(negated)) then return false end
    else
      wanted = true
      hit = hit or name:find(plan.glob_to_pattern(g)) ~= nil
    end
  end
  return hit or not wanted
end
local matches_any = plan.matches_any

-- param(params, key): an axis or include value, its key matched without regard to case.
local function param(params, key)
  local k = matrix.key_in(params, key)
  if k == nil then return nil end
  return params[k]
end

-- A table value reads as its label ({name} or its scalar fields); a named one stays a table so
-- that its name is what a shell string quotes.
local function shown(v)
  if type(v) == "table" and v.name == nil then return template.label(v) end
  return v
end

-- field(value, path): "a.b" inside a table value (keys matched without regard to case).
local function field(value, path)
  for part in (path .. "."):gmatch("([^.]*)%.") do
    if type(value) ~= "table" then return nil end
    local k = matrix.key_in(value, part)
    if k == nil and part:match("^%d+$") then k = tonumber(part) end
    value = k ~= nil and value[k] or nil
  end
  return value
end

-- The placeholder lookup of one job. Axis names may hold any character ({node-version}, {a.b});
-- {axis.field} reaches a field of a table value.
local function lookup_for(ctx)
  return function(key)
    if key == "args" then
      -- A condition's args may name needed jobs' fields ({needs…}): those become markers too.
      if ctx.needs_lookup then
        local out
        for i, a in ipairs(ctx.args) do
          if type(a) == "string" and a:find("{needs.", 1, true) then
            out = out or table.move(ctx.args, 1, #ctx.args, 1, {})
            out[i] = a:gsub("{(needs%.[^{}]+)}", function(k) return ctx.needs_lookup(k, ctx) end)
          end
        end
        if out then return out end
      end
      return ctx.args
    end
    -- {needs.SUITE.JOB.fields.NAME}: filled at launch (jobrun.plan.needs).
    if key:sub(1, 6) == "needs." then
      if ctx.needs_lookup then return ctx.needs_lookup(key, ctx) end
      errors.at(ctx.where, "placeholder {%s} in job '%s': its suite needs no job (add needs = { \"SUITE\" })",
        key, ctx.fixed.name or "?")
    end
    if key == "git.commit" then return ctx.git and ctx.git.commit end
    local v = ctx.fixed[key]
    if v ~= nil then return v end
    v = param(ctx.params, key)
    if v ~= nil then return shown(v) end
    local from = 1
    while true do
      local dot = key:find(".", from, true)
      if not dot then return nil, ctx.keys[key:lower()] end
      local head, rest = key:sub(1, dot - 1), key:sub(dot + 1)
      if head == "condition" and ctx.condition then
        local cv = ctx.condition.fields[rest]
        if cv ~= nil then return cv end
        if rest == "name" then return ctx.condition.name end
      end
      local value = param(ctx.params, head)
      if type(value) == "table" then return shown(field(value, rest)) end
      if value ~= nil then return nil, true end
      if ctx.keys[head:lower()] then return nil, true end
      from = dot + 1
    end
  end
end

local function known_placeholders(ctx)
  local names = { "suite", "run_id", "nodes", "attempt", "args", "git.commit", "suite_dir" }
  if ctx.fixed.name then names[#names + 1] = "name" end
  for k, v in pairs(ctx.params) do
    names[#names + 1] = k
    if type(v) == "table" then
      for f in pairs(v) do names[#names + 1] = k .. "." .. f end
    end
  end
  table.sort(names)
  return names
end

-- A NUL byte cannot reach a process (argv, environment and file names end at it).
local function refuse_nul(ctx, what, text)
  local at = text:find("\0", 1, true)
  if at then
    errors.at(ctx.where, "%s of job '%s' holds a NUL byte (at byte %d), which no command, "
      .. "environment or file name can carry", what, ctx.fixed.name or "?", at)
  end
  return text
end

local function params_text(params)
  local parts = {}
  for k, v in pairs(params) do parts[#parts + 1] = tostring(k) .. "=" .. template.text(v) end
  table.sort(parts)
  return table.concat(parts, " ")
end

-- expand_or_fail(ctx, what, value [, shell]): shell when value is a shell command string.
local function expand_or_fail(ctx, what, value, shell)
  local lookup = ctx.lookup
  if not lookup then lookup = lookup_for(ctx); ctx.lookup = lookup end
  local out, unknown
  if type(value) == "table" then
    out, unknown = template.expand_argv(value, lookup)
    if out then
      for i, item in ipairs(out) do refuse_nul(ctx, string.format("%s item %d", what, i), item) end
    end
  else
    out, unknown = template.expand(tostring(value), lookup, shell)
    if out then
      if what == "name" and out:find("\0", 1, true) then
        errors.at(ctx.where, "job name '%s' holds a NUL byte, which no file name can carry",
          (out:gsub("%z", "\\0")))
      end
      refuse_nul(ctx, what, out)
    end
  end
  if out then return out end
  local where = ctx.where
  if unknown == "git.commit" then
    errors.at(where, "{git.commit} in %s of job '%s': %s", what, ctx.fixed.name or "?",
      ctx.git and "the repository has no commit yet" or "this directory is not in a git repository")
  end
  local _, named = lookup(unknown)
  if named then
    errors.at(where, "placeholder {%s} in %s of job '%s': this job has no value for it (its row, %s, "
      .. "came from an include entry without it, or its value has no such field)", unknown, what,
      ctx.fixed.name or "?", params_text(ctx.params))
  end
  local known = known_placeholders(ctx)
  errors.at(where, "unknown placeholder {%s} in %s of job '%s'%s", unknown, what,
    ctx.fixed.name or "?", suggest.hint(unknown, known))
end

-- command(ctx, what, spec, job): a string or argv list, after calling a function spec.
local function command(ctx, what, spec, job)
  if spec == nil then return nil end
  if type(spec) == "function" then
    local ok, result = sandbox.call(spec, job)
    if not ok then
      errors.at(ctx.where, "%s function failed for job '%s': %s", what, job.name, result.message)
    end
    if type(result) ~= "string" and not (type(result) == "table" and #result > 0) then
      errors.at(ctx.where, "%s function for job '%s' must return a shell string or an argv list",
        what, job.name)
    end
    spec = result
  end
  return expand_or_fail(ctx, what, spec, true)
end

local function merge(a, b)
  local out = {}
  for k, v in pairs(a or {}) do out[k] = v end
  for k, v in pairs(b or {}) do out[k] = v end
  return out
end

local function union(a, b)
  local out, seen = {}, {}
  for _, list in ipairs({ a or {}, b or {} }) do
    for _, v in ipairs(list) do
      if not seen[v] then seen[v] = true; out[#out + 1] = tostring(v) end
    end
  end
  return out
end

plan.MAX_JOBS = 100000

local function thousands(n)
  local s = string.format("%.0f", n)
  return (s:reverse():gsub("(%d%d%d)", "%1,"):reverse():gsub("^,", ""))
end

-- check_size(spec, limit, suite): a matrix larger than limit is refused before it is built
-- (a million rows take minutes and gigabytes to make).
function plan.check_size(spec, limit, suite)
  local n, exact = matrix.size(spec, limit)
  if n <= limit then return end
  errors.at(suite.where, "suite \"%s\": the matrix makes %s%s jobs, more than the limit of %s "
    .. "(raise it with --max-jobs %.0f, or narrow the matrix with --set or exclude)", suite.name,
    exact and "" or "up to ", thousands(n), thousands(limit), n)
end

plan.BUILTIN_BACKENDS = { "local", "slurm", "skypilot" }

-- check_backend(name, suite, from_option): a built-in backend, or a module
-- jobrun.backends.<name> on package.path (which holds the suite's directory); else a usage
-- error at the suite's file:line (or about --backend), with a "did you mean".
function plan.check_backend(name, suite, from_option)
  for _, b in ipairs(plan.BUILTIN_BACKENDS) do if name == b then return end end
  if type(name) == "string" and name:match("^[%w_]+$") and name ~= "init" and name ~= "common"
      and package.searchpath("jobrun.backends." .. name, package.path) then
    return
  end
  -- Names are short: a swap of two letters ("slrum") is a typo too.
  local hint, best = "", 3
  for _, b in ipairs(plan.BUILTIN_BACKENDS) do
    local d = suggest.distance(tostring(name):lower(), b)
    if d < best then hint, best = string.format(" (did you mean '%s'?)", b), d end
  end
  local msg = string.format("unknown backend '%s'%s; the backends are local, slurm and skypilot, or a Lua "
    .. "module jobrun.backends.%s on package.path (jobrun/backends/%s.lua beside the suite)", tostring(name),
    hint, tostring(name), tostring(name))
  if from_option then errors.raise("--backend: %s", msg) end
  errors.at(suite.where, "suite \"%s\": %s", suite.name, msg)
end

-- Terminations the backends themselves report (besides signal_<NAME>): lua/jobrun/backends/*,
-- the supervisor, and run.lua's launch failures.
plan.BACKEND_TERMINATIONS = { "timeout", "cancelled", "setup_failed", "launch_failed", "oom", "node_fail",
  "preempted", "deadline", "boot_fail", "special_exit", "damaged_record", "result_unwritable",
  "failed", "failed_setup", "failed_prechecks", "failed_no_resource", "failed_controller" }

-- known_terminations(decls) -> list: what a job of this suite can end with, as far as jobrun
-- can tell: the values of termination parsers (built-in, packs', the suite's), the backends'
-- facts, and what the packs' own conditions expect (a pack knows what its parsers capture).
function plan.known_terminations(decls)
  local seen, list = {}, {}
  local function add(v)
    if type(v) == "string" and not seen[v] then seen[v] = true; list[#list + 1] = v end
  end
  for _, p in ipairs(require "jobrun.judge.parsers.builtin") do
    if p.field == "termination_reason" then add(p.value) end
  end
  for _, name in ipairs(decls.parser_order or {}) do
    local f = decls.parsers[name].fields
    if f.field == "termination_reason" then add(f.value) end
  end
  local conditions = {}
  for _, name in ipairs(decls.condition_order or {}) do conditions[#conditions + 1] = decls.conditions[name] end
  for _, c in ipairs(decls.replaced or {}) do conditions[#conditions + 1] = c end -- a pack's, redeclared
  for _, c in ipairs(conditions) do
    if c.fields and c.where.file ~= decls.file and type(c.fields.expect) == "table" then
      local t = c.fields.expect.termination
      if type(t) == "table" then for _, v in ipairs(t) do add(v) end else add(t) end
    end
  end
  for _, v in ipairs(plan.BACKEND_TERMINATIONS) do add(v) end
  table.sort(list)
  return list, seen
end

-- termination_warnings(decls) -> list of "file:line: …": expectations of the suite file that
-- name a termination nothing known produces (a typo, most often).
function plan.termination_warnings(decls)
  local known, is_known = plan.known_terminations(decls)
  local out, said = {}, {}
  local function check(expect, where, what)
    if type(expect) ~= "table" then return end
    local t = expect.termination
    for _, v in ipairs(type(t) == "table" and t or { t }) do
      if type(v) == "string" and not is_known[v] and not v:match("^signal_[%w]+$") then
        local text = string.format("%s:%d: %s expects termination '%s', which no parser, pack or backend "
          .. "declares%s", where.file, where.line, what, v, suggest.hint(v, known))
        if not said[text] then said[text] = true; out[#out + 1] = text end
      end
    end
  end
  check(decls.suite.fields.expect, decls.suite.where, string.format("suite \"%s\"", decls.suite.name))
  for _, name in ipairs(decls.condition_order or {}) do
    local c = decls.conditions[name]
    if c.where.file == decls.file then check(c.fields.expect, c.where, string.format("condition \"%s\"", name)) end
  end
  return out
end

-- The longest job name, in bytes: a job's files are named after it, and file systems allow
-- 255 bytes a name (README "Job names").
plan.MAX_NAME = 255
-- check_metrics(decls, axes): what expect.metrics and scaling name must be axes of the matrix
-- (nodes always is one), said at the declaration's file:line before anything runs.
function plan.check_metrics(decls, axes)
  local metrics = require "jobrun.judge.metrics"
  local suite = decls.suite
  local function check(expect, where, what)
    if type(expect) ~= "table" then return end
    local why = metrics.check_axes(expect.metrics, axes)
    if why then errors.at(where, "%s: %s", what, why) end
  end
  check(suite.fields.expect, suite.where, string.format("suite \"%s\"", suite.name))
  for _, name in ipairs(decls.condition_order or {}) do
    local c = decls.conditions[name]
    check(c.fields.expect, c.where, string.format("condition \"%s\"", name))
  end
  if suite.fields.scaling then
    local all = { "nodes" }
    for _, a in ipairs(axes) do if a ~= "nodes" then all[#all + 1] = a end end
    local why = metrics.check_scaling(suite.fields.scaling, all)
    if why then errors.at(suite.where, "suite \"%s\": scaling: %s", suite.name, why) end
    -- Efficiency divides by the axis's values: they must be numbers.
    local axis = suite.fields.scaling.axis
    for _, v in ipairs(type(suite.fields.matrix) == "table" and suite.fields.matrix[axis] or {}) do
      if not tonumber(v) then
        errors.at(suite.where, "suite \"%s\": scaling: axis '%s' has the value %s, which is not a number",
          suite.name, axis, require("jobrun.suite.template").text(v))
      end
    end
  end
end

-- The keys of an include entry that set that cell's job field instead of being a parameter
-- (README "Suite files", as GitHub's include does with its own job keys).
plan.CELL_FIELDS = { "expect", "timeout", "env", "nodes", "max_restarts", "retry", "local", "slurm", "skypilot" }
local CELL_SET = {}
for _, k in ipairs(plan.CELL_FIELDS) do CELL_SET[k] = true end

plan.SUITE_HELP = [[
Per-cell settings: in an include entry, the keys that are job fields (expect, timeout, env, nodes,
max_restarts, retry, and the backend tables local, slurm, skypilot) set that cell's field; every
other key is a parameter, as in GitHub Actions. A key close to a job field (expct) is warned of.
  include = { { model = "big", expect = { status = "FAILED", termination = "cuda_oom" }, timeout = "5m" } }

Several suites in one file make one run (--suite NAME picks some, with what they need). needs =
{ "train", "train/JOB*" } makes a suite's jobs wait for those jobs; a needed job that does not pass
makes them SKIPPED. {needs.SUITE.JOB.fields.NAME} (or {needs.SUITE.fields.NAME} for a one-job
suite) in run, env and args is the field the needed job's parsers set.]]

-- check_cells(suite, axes) -> the set of cell keys: each include entry's job fields checked as
-- the suite's are (file:line), and a parameter that looks like a misspelt job field warned of.
function plan.check_cells(suite, axes)
  local is_axis = {}
  for _, a in ipairs(axes) do is_axis[tostring(a):lower()] = true end
  for i, inc in ipairs(suite.fields.include or {}) do
    local cell = {}
    for k, v in pairs(inc) do
      local lower = type(k) == "string" and k:lower()
      if lower and not is_axis[lower] then
        if CELL_SET[lower] then
          if schema.fields.suite[lower] then cell[lower] = v end
        else
          local close = suggest.closest(lower, plan.CELL_FIELDS)
          if close and #lower > 2 then
            io.stderr:write(require("jobrun.report.sanitize").format(
              "jobrun: warning: %s:%d: suite \"%s\": include entry %d: '%s' is taken as a parameter; "
              .. "did you mean the job field '%s'?\n", suite.where.file, suite.where.line, suite.name, i, k, close))
          end
        end
      end
    end
    schema.check_table("suite", cell, suite.where, string.format("suite \"%s\" include entry %d", suite.name, i))
  end
  return CELL_SET
end

-- plan.build's steps, in the order build takes them (an error in an earlier step is the one
-- reported). What they share is one build's state, `b` (build_state).

-- axis_values(decls, sets) -> axes, values: the matrix's axes in order and each one's values:
-- the suite's, or what --set gives (sets: { {axis, words} … }).
local function axis_values(decls, sets)
  local f = decls.suite.fields
  local axes = axis_order(decls)
  local values = {}
  for _, a in ipairs(axes) do values[a] = f.matrix[a] end
  for _, set in ipairs(sets or {}) do
    local axis, words = set[1], set[2]
    axis = matrix.key_in(values, axis) or axis
    if values[axis] == nil then
      errors.raise("--set %s: the suite has no axis '%s'%s%s", axis, axis,
        #axes > 0 and (" (axes: " .. table.concat(axes, ", ") .. ")") or " (it has no matrix)",
        suggest.hint(axis, axes))
    end
    values[axis] = override_values(axis, words, f.matrix[axis], decls)
  end
  return axes, values
end

-- retry_policies(decls) -> policy(p [, what]): the suite's and its conditions' retry policies
-- checked now; policy(p) is p checked (what: an include entry's, named so) and made plain data
-- once, however many jobs share it (an include entry's retry is its cell's, README "Suite
-- files", include).
local function retry_policies(decls)
  local retry = require "jobrun.run.retry"
  local retry_check = retry.check(decls)
  local made = {}
  return function(policy, what)
    if not made[policy] then
      if what then retry_check(policy, decls.suite.where, what) end
      made[policy] = retry.spec(policy)
    end
    return made[policy]
  end
end

-- matrix_rows(decls, axes, values, max_jobs) -> the matrix's rows (jobrun.suite.matrix), the
-- include cells checked first; more than max_jobs (nil: no limit) is refused before any is made.
local function matrix_rows(decls, axes, values, max_jobs)
  local suite = decls.suite
  local f = suite.fields
  local spec = { axes = axes, values = values, exclude = f.exclude, include = f.include,
                 cell_keys = plan.check_cells(suite, axes) }
  if max_jobs then plan.check_size(spec, max_jobs, suite) end
  local rows, why = matrix.expand(spec)
  if not rows then errors.at(suite.where, "suite \"%s\": %s", suite.name, why) end
  return rows
end

-- matrix_keys(rows) -> the set of every matrix key of the suite (lower case): a placeholder
-- naming one is never left as text.
local function matrix_keys(rows)
  local all_keys, seen_lists = {}, {}
  for _, row in ipairs(rows) do
    if not seen_lists[row.keys] then
      seen_lists[row.keys] = true
      for _, k in ipairs(row.keys) do if type(k) == "string" then all_keys[k:lower()] = true end end
    end
  end
  return all_keys
end

-- backend_options(f, backend) -> the backend's options as jobs keep them (without URL
-- credentials: stored in state.json; the originals stay in memory), the suite's max_pending
-- among them (the backend's own wins).
local function backend_options(f, backend)
  local options = secrets.options(f[backend])
  if f.max_pending ~= nil and not (type(options) == "table" and options.max_pending ~= nil) then
    local copy = {}
    for k, v in pairs(type(options) == "table" and options or {}) do copy[k] = v end
    copy.max_pending = f.max_pending
    options = copy
  end
  return options
end

-- build_state(decls, opts, rows, retry_policy) -> b: what the job-making steps read (the
-- suite, its fields, the run id, {suite_dir}, --timeout, the backend, checked) and the caches of
-- what jobs share.
local function build_state(decls, opts, rows, retry_policy)
  local suite = decls.suite
  local f = suite.fields
  local fs = require "jobrun.c.fs"
  local b = {
    decls = decls, suite = suite, f = f, where = suite.where, opts = opts, run_id = opts.run_id,
    -- {suite_dir}: the suite file's directory, absolute, so that a suite can name files beside it.
    suite_dir = fs.realpath(decls.file:match("^(.*)/[^/]*$") or ".") or ".",
    timeout_override = opts.timeout and assert(duration.parse(opts.timeout)),
    backend = opts.backend or f.backend or "local",
    retry_policy = retry_policy,
    shared_by = {}, -- condition (or shared_by itself: none) -> shared(b, condition)
    order_mts = {}, -- a row's key list -> the metatable ordering its params
  }
  plan.check_backend(b.backend, suite, opts.backend ~= nil)
  b.all_keys = matrix_keys(rows)
  b.options = backend_options(f, b.backend)
  return b
end

-- shared(b, condition) -> what every job of one condition shares (tags, args, timeout, env),
-- made once and referenced by each job, not copied into it: a 100,000-job plan holds 100,000 jobs.
local function shared(b, condition)
  local key = condition or b.shared_by
  local s = b.shared_by[key]
  if s then return s end
  local f = b.f
  local cf = condition and condition.fields or {}
  s = {
    tags = union(f.tags, cf.tags),
    args = cf.args or {},
    timeout = b.timeout_override or ((cf.timeout or f.timeout) and duration.parse(cf.timeout or f.timeout)),
    env = merge(f.env, cf.env),
    env_keys = {},
    env_what = {},
  }
  for k in pairs(s.env) do
    s.env_keys[#s.env_keys + 1] = k
    s.env_what[k] = "env " .. k
  end
  table.sort(s.env_keys, function(x, y) return tostring(x) < tostring(y) end)
  b.shared_by[key] = s
  return s
end

-- order_mt(b, keys) -> the metatable that orders a row's params: rows with the same keys share
-- one key list (matrix.expand), and so one metatable.
local function order_mt(b, keys)
  local mt = b.order_mts[keys]
  if not mt then mt = { order = keys }; b.order_mts[keys] = mt end
  return mt
end

-- template_context(b, params, condition, nodes, attempt) -> the context a job's templates expand
-- in (made again for each attempt's run command, so that no job keeps one).
local function template_context(b, params, condition, nodes, attempt)
  return {
    where = b.where, params = params, condition = condition, args = shared(b, condition).args, git = b.opts.git,
    keys = b.all_keys, needs_lookup = b.opts.needs_lookup or nil,
    fixed = { suite = b.suite.name, run_id = b.run_id, nodes = nodes, attempt = attempt, suite_dir = b.suite_dir },
  }
end

-- attempt_runner(b, job) -> run_for_attempt(attempt): the job's run command for one attempt;
-- {attempt} differs per restart: backends that restart jobs themselves ask for each run.
local function attempt_runner(b, job)
  return function(attempt)
    local ctx = template_context(b, job.params, job.condition and b.decls.conditions[job.condition], job.nodes, attempt)
    ctx.fixed.name = job.name
    return command(ctx, "run", b.f.run, job)
  end
end

-- row_condition(b, params) -> the condition a row names (params.condition), or nil; an unknown
-- one is an error.
local function row_condition(b, params)
  if params.condition == nil then return nil end
  local condition = b.decls.conditions[params.condition]
  if not condition then
    errors.at(b.where, "suite \"%s\": unknown condition '%s'%s", b.suite.name,
      tostring(params.condition), suggest.hint(tostring(params.condition), b.decls.condition_order))
  end
  return condition
end

-- row_nodes(b, params, cell) -> a row's node count: its own, its include cell's, the suite's or
-- 1, a whole number of at least 1.
local function row_nodes(b, params, cell)
  local nodes = params.nodes or cell.nodes or b.f.nodes or 1
  if math.type(nodes) ~= "integer" then nodes = math.tointeger(tonumber(nodes)) end
  if not nodes or nodes < 1 then
    errors.at(b.where, "suite \"%s\": nodes must be a whole number of at least 1, got '%s'",
      b.suite.name, tostring(params.nodes))
  end
  return nodes
end

-- job_name(b, row, ctx, index, by_name) -> row `index`'s job name, recorded in by_name (name ->
-- row index): the suite's name template filled, else the suite's name and each value's label
-- joined by "_"; an empty, too long or duplicate name is an error.
local function job_name(b, row, ctx, index, by_name)
  local suite, where = b.suite, b.where
  local name
  if b.f.name then
    name = expand_or_fail(ctx, "name", b.f.name)
  else
    local parts = { suite.name }
    for _, k in ipairs(row.keys) do parts[#parts + 1] = template.label(row.params[k]) end
    name = table.concat(parts, "_")
    if name:find("\0", 1, true) then
      errors.at(ctx.where, "job name '%s' holds a NUL byte, which no file name can carry", (name:gsub("%z", "\\0")))
    end
  end
  if name == "" then errors.at(where, "suite \"%s\": row %d has an empty job name", suite.name, index) end
  if #name > plan.MAX_NAME then
    errors.at(where, "suite \"%s\": the job name of row %d is %d bytes long (%s…); job names are at most %d "
      .. "bytes, as file names are", suite.name, index, #name, name:sub(1, 40), plan.MAX_NAME)
  end
  if by_name[name] then
    errors.at(where, "suite \"%s\": duplicate job name '%s' (rows %d and %d); "
      .. "make the name template include what differs", suite.name, name, by_name[name], index)
  end
  by_name[name] = index
  return name
end

-- add_job_extras(b, job, cf, cell): the fields few jobs set (description, retry policy, cause
-- classes, GPUs per node, backend options), each only when set.
local function add_job_extras(b, job, cf, cell)
  local f = b.f
  local description = cf.description or f.description
  if description ~= nil then job.description = description end
  -- Retry policy, cause classes and GPUs per node (issue #28): plain data the record keeps.
  if cell.retry ~= nil then
    job.retry = b.retry_policy(cell.retry, string.format("suite \"%s\": include retry", b.suite.name))
  elseif cf.retry or f.retry then
    job.retry = b.retry_policy(cf.retry or f.retry)
  end
  if f.classes ~= nil then job.classes = f.classes end
  if f.gpus ~= nil then job.gpus = f.gpus end
  if b.options ~= nil then job.options = b.options end
  if cell[b.backend] then job.options = merge(b.options, secrets.options(cell[b.backend])) end
end

-- fill_job_templates(b, job, ctx, common, cell): the job's run and setup commands and its
-- environment (its condition's, then its include cell's), their placeholders filled.
local function fill_job_templates(b, job, ctx, common, cell)
  job.run = command(ctx, "run", b.f.run, job)
  local setup = command(ctx, "setup", b.f.setup, job)
  if setup ~= nil then job.setup = setup end
  local env = {}
  local env_spec = common.env
  for _, k in ipairs(common.env_keys) do
    env[k] = expand_or_fail(ctx, common.env_what[k], tostring(env_spec[k]))
  end
  for k, v in pairs(cell.env or {}) do env[k] = expand_or_fail(ctx, "env " .. k, tostring(v)) end
  job.env = env
  job.run_for_attempt = attempt_runner(b, job)
end

-- row_job(b, row, index, by_name) -> the job of matrix row `index`.
local function row_job(b, row, index, by_name)
  local f = b.f
  local params = row.params
  local condition = row_condition(b, params)
  local cf = condition and condition.fields or {}
  local cell = row.cell or {}
  local nodes = row_nodes(b, params, cell)
  local common = shared(b, condition)
  -- The row's own table becomes the job's params (ordered by a metatable its shape shares).
  local mt = order_mt(b, row.keys)
  setmetatable(params, mt)
  local ctx = template_context(b, params, condition, nodes, 1)
  local name = job_name(b, row, ctx, index, by_name)
  ctx.fixed.name = name
  -- At most 16 fields named here, nil ones too (the constructor sizes the table by them): the
  -- rarely set ones are added after.
  local job = {
    index = index,
    name = name,
    params = params,
    param_order = mt.order,
    backend = b.backend,
    nodes = nodes,
    condition = condition and condition.name,
    timeout = (cell.timeout and not b.timeout_override) and duration.parse(cell.timeout) or common.timeout,
    max_restarts = cell.max_restarts or f.max_restarts or 0,
    expect = cell.expect or cf.expect or f.expect,
    tags = common.tags,
    args = common.args,
    run = nil, env = nil, run_for_attempt = nil,
  }
  add_job_extras(b, job, cf, cell)
  fill_job_templates(b, job, ctx, common, cell)
  return job
end

-- make_jobs(b, rows) -> the jobs, one per row, in row order; each row is dropped once its job is
-- made: the rows and the jobs are not both held whole.
local function make_jobs(b, rows)
  local jobs, by_name = {}, {}
  for index = 1, #rows do
    local row = rows[index]
    rows[index] = false
    jobs[#jobs + 1] = row_job(b, row, index, by_name)
  end
  return jobs
end

-- kept(job, opts) -> whether --only (opts.only) and --tag (opts.tags) keep the job.
local function kept(job, opts)
  if opts.only and #opts.only > 0 and not matches_any(job.name, opts.only) then return false end
  if opts.tags and #opts.tags > 0 then
    local has = false
    for _, t in ipairs(opts.tags) do
      for _, jt in ipairs(job.tags) do if jt == t then has = true end end
    end
    return has
  end
  return true
end

-- select_jobs(decls, jobs, opts) -> the jobs --only and --tag keep; keeping none of some jobs is
-- an error, with a hint when a bare word was meant as part of names.
local function select_jobs(decls, jobs, opts)
  local selected = {}
  for _, job in ipairs(jobs) do
    if kept(job, opts) then selected[#selected + 1] = job end
  end
  if #selected == 0 and #jobs > 0 then
    local what = {}
    for _, g in ipairs(opts.only or {}) do what[#what + 1] = "--only " .. g end
    for _, t in ipairs(opts.tags or {}) do what[#what + 1] = "--tag " .. t end
    -- A glob matches whole names: a bare word that is part of names needs stars around it.
    local hint = ""
    for _, g in ipairs(opts.only or {}) do
      if not g:find("[*?%[]") then
        for _, job in ipairs(jobs) do
          if job.name:find(g, 1, true) then
            hint = string.format("\n  Globs match whole names: try --only '*%s*'", g)
            break
          end
        end
      end
    end
    errors.raise("no job of suite \"%s\" matches %s (%s in all; see jobrun plan %s)%s",
      decls.suite.name, table.concat(what, " "), require("jobrun.report.table").count(#jobs, "job"), decls.file, hint)
  end
  return selected
end

-- build(decls, opts) -> { run_id, suite, backend, jobs = { job… } }
-- opts: run_id, set = { {axis, words} … }, only = {globs}, tags = {tags}, backend, timeout,
--       max_parallel, git (the git table, or nil), max_jobs (refuse larger matrices; nil: no limit)
function plan.build(decls, opts)
  opts = opts or {}
  local suite = decls.suite
  local f = suite.fields
  -- Names the suite says are credentials, beside the rule's (jobrun.base.secrets): before any env is
  -- shown or stored.
  secrets.declare(f.secrets)
  local axes, values = axis_values(decls, opts.set)
  local retry_policy = retry_policies(decls)
  local rows = matrix_rows(decls, axes, values, opts.max_jobs)
  local b = build_state(decls, opts, rows, retry_policy)
  local jobs = make_jobs(b, rows)
  if not f.run then errors.at(suite.where, "suite \"%s\" has no run command", suite.name) end
  plan.check_metrics(decls, axes)
  local selected = select_jobs(decls, jobs, opts)

  return {
    run_id = b.run_id,
    suite = suite.name,
    suite_path = decls.file,
    backend = b.backend,
    max_parallel = opts.max_parallel or f.max_parallel,
    fail_fast = f.fail_fast or false,
    retry_max_total = type(f.retry) == "table" and f.retry.max_total or nil,
    git_policy = f.git,
    git_where = suite.where,
    notify = f.notify,
    jobs = selected,
    total_jobs = #jobs,
    scaling = f.scaling,
    report_metrics = f.report and f.report.metrics,
  }
end


-- build_file(decls, opts) -> the plan of every suite the file declares (opts.suites: the
-- chosen ones, with what they need): one suite that needs nothing is plan.build's plan, as
-- before; several make one run (jobrun.plan.needs).
function plan.build_file(decls, opts)
  opts = opts or {}
  local suites = decls.suites or { decls.suite }
  if #suites == 1 and not suites[1].fields.needs then
    for _, name in ipairs(opts.suites or {}) do
      if name ~= suites[1].name then
        errors.raise("--suite %s: %s declares no suite '%s' (its suite: %s)", name, decls.file, name, suites[1].name)
      end
    end
    return plan.build(decls, opts)
  end
  return require("jobrun.plan.needs").build(decls, opts)
end

-- Run ids name directories: letters, digits, '.', '_', '-', starting with a letter or digit.
function plan.check_run_id(id)
  if type(id) ~= "string" or not id:match("^[%w][%w._-]*$") or #id > 128 then
    errors.raise("run id '%s' must be letters, digits, '.', '_' or '-' (at most 128), "
      .. "starting with a letter or digit", tostring(id))
  end
  return id
end

-- new_run_id(suite_name [, state_dir]): "<suite>-<UTC time>", with "-2", "-3", … when runs
-- started in the same second already took it.
function plan.new_run_id(suite_name, state_dir)
  local base = suite_name:gsub("[^%w._-]", "_"):gsub("^[^%w]+", "")
  if base == "" then base = "run" end
  local id = base .. "-" .. os.date("!%Y%m%d-%H%M%S")
  if not state_dir then return id end
  local fs = require "jobrun.c.fs"
  local candidate, n = id, 1
  while fs.stat(state_dir .. "/runs/" .. candidate) do
    n = n + 1
    candidate = id .. "-" .. n
  end
  return candidate
end

-- from_options(path, opts, extra) -> plan: what plan/run/launch share. opts are parsed CLI
-- options (--set, --only, --tag, --backend, --timeout, --max-parallel, --run-id).
function plan.from_options(path, opts)
  local dsl = require "jobrun.suite.dsl"
  local set = {}
  for _, s in ipairs(opts.set or {}) do
    local axis, list = s:match("^([^=]+)=(.*)$")
    if not axis or list == "" then errors.raise("--set wants AXIS=V1,V2, not '%s'", s) end
    local words = {}
    for w in (list .. ","):gmatch("([^,]*),") do
      if w == "" then errors.raise("--set %s: empty value in '%s'", axis, list) end
      words[#words + 1] = w
    end
    set[#set + 1] = { axis, words }
  end
  if opts.timeout then
    local _, why = duration.parse(opts.timeout)
    if why then errors.raise("--timeout: %s", why) end
  end
  local max_parallel
  if opts["max-parallel"] then
    max_parallel = math.tointeger(tonumber(opts["max-parallel"]))
    if not max_parallel or max_parallel < 1 then
      errors.raise("--max-parallel must be a whole number of at least 1, not '%s'", opts["max-parallel"])
    end
  end
  local max_jobs = plan.MAX_JOBS
  if opts["max-jobs"] then
    max_jobs = math.tointeger(tonumber(opts["max-jobs"]))
    if not max_jobs or max_jobs < 1 then
      errors.raise("--max-jobs must be a whole number of at least 1, not '%s'", opts["max-jobs"])
    end
  end
  local git_info = require("jobrun.base.git").info(".")
  local decls = dsl.load(path, git_info)
  local run_id = opts["run-id"] and plan.check_run_id(opts["run-id"])
    or plan.new_run_id(#decls.suites > 1 and decls.file:match("([^/]*)$"):gsub("%.lua$", "") or decls.suite.name,
      opts["state-dir"])
  local p = plan.build_file(decls, {
    run_id = run_id, set = set, only = opts.only, tags = opts.tag, backend = opts.backend,
    timeout = opts.timeout, max_parallel = max_parallel, git = git_info, max_jobs = max_jobs,
    suites = opts.suite,
  })
  for _, s in ipairs(decls.suites) do
    for _, w in ipairs(plan.termination_warnings(setmetatable({ suite = s }, { __index = decls }))) do
      io.stderr:write("jobrun: warning: ", require("jobrun.report.sanitize").message(w), "\n")
    end
  end
  p.decls = decls
  p.git_info = git_info
  p.git = require("jobrun.base.git").record(git_info)
  p.set_options = set
  return p
end

return plan
