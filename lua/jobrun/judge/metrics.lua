-- Metrics (README "Metrics": metric, expect.metrics, scaling): number series read from a job's log and
-- from the JSON lines it appends to $JOBRUN_METRICS, their aggregates, and the rules that judge
-- them. The log is read once per job for all its metrics, in C (jobrun.c.metrics).
local cmetrics = require "jobrun.c.metrics"
local suggest = require "jobrun.cli.suggest"
local json = require "jobrun.base.json"
local not_number = require("jobrun.c.json").not_number
local number_list = require("jobrun.c.json").number_list

local metrics = {}

metrics.AGGS = { "tail_mean", "last", "first", "min", "max", "mean", "median", "p95", "count" }
local AGG_SET = {}
for _, a in ipairs(metrics.AGGS) do AGG_SET[a] = true end
metrics.DEFAULT_AGG = "tail_mean"
metrics.TAIL = 0.25
-- Seconds of CPU a metric fn may use on one job unless it sets `budget`.
metrics.FN_BUDGET = 1

-- What each result's metrics entry holds, in order (README "Metrics"). Its series is kept in the
-- run's series file (metrics.series_path), not in state.json; --json adds it (with_series).
metrics.ORDER = { "value", "agg", "n", "n_skipped", "last", "first", "min", "max", "error", "missing", "baseline",
                  "series", "series_step" }

-- parse_agg(text) -> name, fraction | nil, why. "tail_mean:0.1" sets tail_mean's fraction.
function metrics.parse_agg(text)
  if type(text) ~= "string" then return nil, "must be a string such as \"last\" or \"tail_mean:0.1\"" end
  local name, frac = text:match("^([%w_]+):(.*)$")
  name = name or text
  if not AGG_SET[name] then
    return nil, string.format("unknown aggregate '%s' (one of %s)%s", text, table.concat(metrics.AGGS, ", "),
      suggest.hint(name, metrics.AGGS))
  end
  if frac then
    if name ~= "tail_mean" then return nil, string.format("only tail_mean takes a fraction, not %s", name) end
    local f = tonumber(frac)
    if not f or f <= 0 or f > 1 then
      return nil, string.format("tail_mean's fraction must be a number in (0, 1], not '%s'", frac)
    end
    return name, f
  end
  return name, name == "tail_mean" and metrics.TAIL or nil
end

local OPS = { [">="] = true, [">"] = true, ["<="] = true, ["<"] = true, ["=="] = true }

-- parse_rule(">= 40000") -> { op, num } | nil, why
function metrics.parse_rule(text)
  if type(text) ~= "string" then return nil, "a rule is a string such as \">= 40000\"" end
  local op, num = text:match("^%s*([<>=]+)%s*(%S+)%s*$")
  local n = num and tonumber((num:gsub("^(%d%d?%d?),", "%1"):gsub(",(%d%d%d)", "%1")))
  if not (op and OPS[op] and n) then
    return nil, string.format("'%s' is not a rule: write an operator (>=, >, <=, <, ==) and a number, "
      .. "e.g. \">= 40000\"", text)
  end
  return { op = op, num = n }
end

-- parse_tol("-5%") -> { lo = 0.05 } ; "+5%" -> { hi = 0.05 } ; "±5%" both; "-5%,+10%" each.
function metrics.parse_tol(text)
  if type(text) ~= "string" then return nil, "tol is a string such as \"-5%\", \"+5%\", \"±5%\" or \"-5%,+10%\"" end
  local tol = {}
  for part in (text .. ","):gmatch("%s*([^,]-)%s*,") do
    local sign, num = part:match("^([%-+]?)(%d+%.?%d*)%%$")
    if not sign then sign, num = part:match("^(\194\177)(%d+%.?%d*)%%$") end
    if not sign or sign == "" then
      return nil, string.format("'%s' is not a tolerance: write \"-5%%\", \"+5%%\", \"±5%%\" or \"-5%%,+10%%\"", text)
    end
    local f = tonumber(num) / 100
    if sign == "-" or sign == "\194\177" then tol.lo = f end
    if sign == "+" or sign == "\194\177" then tol.hi = f end
  end
  if not (tol.lo or tol.hi) then return nil, string.format("'%s' is not a tolerance", text) end
  return tol
end

local ENTRY_KEYS = { "agg", "ref", "tol", "baseline", "require_baseline" }

-- compile(entry) -> { rule, agg, frac, ref, tol } | nil, why: one expect.metrics entry.
local compile_entry
local compiled = setmetatable({}, { __mode = "k" })
-- (memoised per entry: a table by identity, a rule by its text; a big run's jobs share a few)
function metrics.compile(entry)
  if entry == nil then return compile_entry(entry) end
  local c = compiled[entry]
  if not c then
    c = table.pack(compile_entry(entry))
    compiled[entry] = c
  end
  return c[1], c[2]
end

function compile_entry(entry)
  if type(entry) == "string" then entry = { entry } end
  if type(entry) ~= "table" then
    return nil, "must be a rule (\">= 40000\") or a table ({ \"<= 2.5\", agg = \"last\" }, { ref = …, tol = … })"
  end
  if entry["1"] ~= nil and entry[1] == nil then -- as state.json gives it back ({ "<= 2.5", agg = … })
    local copy = { entry["1"] }
    for k, v in pairs(entry) do if k ~= "1" then copy[k] = v end end
    entry = copy
  end
  local out = {}
  for k in pairs(entry) do
    if k ~= 1 and not (type(k) == "string" and (k == "agg" or k == "ref" or k == "tol" or k == "baseline"
        or k == "require_baseline")) then
      return nil, string.format("unknown key '%s'%s", tostring(k), suggest.hint(tostring(k), ENTRY_KEYS))
    end
  end
  if entry[1] ~= nil then
    local rule, why = metrics.parse_rule(entry[1])
    if not rule then return nil, why end
    out.rule = rule
  end
  local agg, frac = metrics.parse_agg(entry.agg or metrics.DEFAULT_AGG)
  if not agg then return nil, frac end
  out.agg, out.frac = agg, frac
  out.agg_text = entry.agg or metrics.DEFAULT_AGG
  if entry.ref ~= nil then
    if type(entry.ref) ~= "table" or next(entry.ref) == nil then
      return nil, "ref must be a table of axis = { [value] = reference, … }"
    end
    for axis, refs in pairs(entry.ref) do
      if type(axis) ~= "string" or type(refs) ~= "table" then
        return nil, "ref must be a table of axis = { [value] = reference, … }"
      end
      for v, r in pairs(refs) do
        if type(r) ~= "number" then
          return nil, string.format("ref.%s[%s] must be a number", axis, tostring(v))
        end
      end
    end
    if entry.tol == nil then return nil, "ref needs a tolerance: tol = \"-5%\" (or \"+5%\", \"±5%\", \"-5%,+10%\")" end
    out.ref = entry.ref
  end
  if entry.baseline ~= nil then
    if math.type(entry.baseline) ~= "integer" or entry.baseline < 1 then
      return nil, "baseline must be a whole number of earlier passing runs (baseline = 5)"
    end
    if entry.tol == nil then return nil, "baseline needs a tolerance: tol = \"-5%\" (or \"+5%\", \"±5%\")" end
    out.baseline = entry.baseline
  end
  if entry.require_baseline ~= nil then
    if type(entry.require_baseline) ~= "boolean" then return nil, "require_baseline must be true or false" end
    if entry.baseline == nil then return nil, "require_baseline goes with baseline = N" end
    out.require_baseline = entry.require_baseline
  end
  if entry.tol ~= nil then
    -- With a rule alone, tol is how far `diff` lets the metric move from one run to the next.
    if entry.ref == nil and entry.baseline == nil and entry[1] == nil then
      return nil, "tol applies to a rule, a ref or a baseline: \">= 40000\", ref = { axis = { [value] = reference } }, "
        .. "or baseline = N"
    end
    local tol, why = metrics.parse_tol(entry.tol)
    if not tol then return nil, why end
    out.tol = tol
  end
  if not out.rule and not out.ref and not out.baseline then
    return nil, "says nothing to check: give a rule (\">= 40000\"), a ref with a tol, or a baseline with a tol"
  end
  return out
end

-- check(v) -> nil | why: expect.metrics as a whole (schema kind, at declaration time).
function metrics.check(v)
  if type(v) ~= "table" then return "must be a table of NAME = rule" end
  for name, entry in pairs(v) do
    if type(name) ~= "string" or name == "" then return "keys must be metric names" end
    local _, why = metrics.compile(entry)
    if why then return string.format("%s: %s", name, why) end
  end
end

-- check_axes(v, axes) -> nil | why: every axis a ref names is one of the matrix's (or nodes).
function metrics.check_axes(v, axes)
  if type(v) ~= "table" then return end
  local known = { nodes = true }
  local names = { "nodes" }
  for _, a in ipairs(axes) do known[a] = true; names[#names + 1] = a end
  local keys = {}
  for name in pairs(v) do keys[#keys + 1] = name end
  table.sort(keys)
  for _, name in ipairs(keys) do
    local entry = v[name]
    if type(entry) == "table" and type(entry.ref) == "table" then
      for axis in pairs(entry.ref) do
        if not known[axis] then
          return string.format("expect.metrics.%s: ref names '%s', which is no axis of the matrix%s", name,
            tostring(axis), suggest.hint(tostring(axis), names))
        end
      end
    end
  end
end

-- check_scaling(v, axes) -> nil | why (the suite's scaling = { axis, metric, min_efficiency }).
function metrics.check_scaling(v, axes)
  if type(v) ~= "table" then return "must be a table { axis = \"nodes\", metric = \"tps\", min_efficiency = 0.9 }" end
  for k in pairs(v) do
    if k ~= "axis" and k ~= "metric" and k ~= "min_efficiency" then
      return string.format("unknown key '%s'%s", tostring(k),
        suggest.hint(tostring(k), { "axis", "metric", "min_efficiency" }))
    end
  end
  if type(v.axis) ~= "string" then return "needs axis = \"AXIS\"" end
  if type(v.metric) ~= "string" or v.metric == "" then return "needs metric = \"NAME\"" end
  if type(v.min_efficiency) ~= "number" or v.min_efficiency <= 0 then
    return "needs min_efficiency, a number above 0 (0.9: 90 % of linear scaling)"
  end
  if axes then
    local names = {}
    for _, a in ipairs(axes) do
      if a == v.axis then return end
      names[#names + 1] = a
    end
    return string.format("axis '%s' is no axis of the matrix%s", v.axis, suggest.hint(v.axis, names))
  end
end

-- literal_of(pattern) -> the longest plain text every match of the Lua pattern contains (its
-- prefilter), or nil.
function metrics.literal_of(pattern)
  local best, run = "", {}
  local function close()
    local s = table.concat(run)
    if #s > #best then best = s end
    run = {}
  end
  local i, n = 1, #pattern
  if pattern:sub(1, 1) == "^" then i = 2 end
  while i <= n do
    local c = pattern:sub(i, i)
    local item, next_i
    if c == "%" then
      local d = pattern:sub(i + 1, i + 1)
      if d == "b" then close(); i = i + 4; goto continue end
      if d == "f" then
        close()
        local close_at = pattern:find("]", i + 3, true) or n
        i = close_at + 1
        goto continue
      end
      if d:match("%w") then item = nil else item = d end
      next_i = i + 2
    elseif c == "[" then
      local j = i + 1
      if pattern:sub(j, j) == "^" then j = j + 1 end
      if pattern:sub(j, j) == "]" then j = j + 1 end
      while j <= n and pattern:sub(j, j) ~= "]" do
        if pattern:sub(j, j) == "%" then j = j + 1 end
        j = j + 1
      end
      item, next_i = nil, j + 1
    elseif c == "(" or c == ")" then
      i = i + 1
      goto continue
    elseif c == "." then
      item, next_i = nil, i + 1
    elseif c == "$" and i == n then
      break
    else
      item, next_i = c, i + 1
    end
    do
      local q = pattern:sub(next_i, next_i)
      if q == "*" or q == "?" or q == "-" then
        close()
        next_i = next_i + 1
      elseif q == "+" then
        if item then run[#run + 1] = item end
        close()
        next_i = next_i + 1
      elseif item then
        run[#run + 1] = item
      else
        close()
      end
      i = next_i
    end
    ::continue::
  end
  close()
  return best ~= "" and best or nil
end

-- declared(decls) -> the suite's metrics: { name, pattern, contains, fn, budget, where } in
-- declaration order, then the names the suite's scaling and report name (found by name).
function metrics.declared(decls)
  local list, seen = {}, {}
  if not decls then return list end
  for _, name in ipairs(decls.metric_order or {}) do
    local d = decls.metrics[name]
    local m = { name = name, where = d.where }
    for k, v in pairs(d.fields) do m[k] = v end
    list[#list + 1] = m
    seen[name] = true
  end
  local f = decls.suite and decls.suite.fields or {}
  local extra = {}
  if type(f.scaling) == "table" and type(f.scaling.metric) == "string" then extra[#extra + 1] = f.scaling.metric end
  if type(f.report) == "table" and type(f.report.metrics) == "table" then
    for _, n in ipairs(f.report.metrics) do extra[#extra + 1] = n end
  end
  for _, name in ipairs(extra) do
    if type(name) == "string" and not seen[name] then
      list[#list + 1] = { name = name }
      seen[name] = true
    end
  end
  return list
end

-- validate(m) -> nil | why: a metric declaration's pattern and prefilter.
function metrics.validate(m)
  if m.fn and not m.contains then
    return "fn needs contains = \"TEXT\": the lines holding it are the lines fn sees"
  end
  if m.pattern then
    local ok, err = pcall(string.find, "", m.pattern)
    if not ok then return "bad pattern: " .. tostring(err):gsub("^.-: ", "") end
    if not m.pattern:find("%(") then return "pattern has no capture: put the number in ( )" end
    if not m.contains and not metrics.literal_of(m.pattern) then
      return "the pattern has no plain text to look for: give contains = \"TEXT\""
    end
  end
  if m.pattern and m.fn then return "give pattern or fn, not both" end
end

-- metrics_path(log_path) -> the file $JOBRUN_METRICS names for the job with that log.
function metrics.file_of(log_path)
  return (log_path:gsub("%.log$", "")) .. ".metrics.jsonl"
end

local function entries_of(mexpect)
  local out = {}
  if type(mexpect) ~= "table" then return out end
  for name, entry in pairs(mexpect) do
    local c = metrics.compile(entry)
    if c then out[name] = c end
  end
  return out
end

local function record_of(stats, agg, agg_text)
  local rec = { agg = agg_text, n = stats.n, n_skipped = stats.n_skipped }
  if stats.n > 0 then
    rec.first, rec.last, rec.min, rec.max = stats.first, stats.last, stats.min, stats.max
    if agg == "count" then rec.value = stats.n else rec.value = stats[agg] end
    rec.series = json.array(stats.series)
    rec.series_step = stats.series_step
  end
  return rec
end

-- Reads the JSON lines of $JOBRUN_METRICS: every key with a value is a metric.
local function read_jsonl(path, accs, order, new_acc)
  local f = io.open(path, "r")
  if not f then return end
  local cjson = require "cjson"
  for line in f:lines() do
    local ok, obj = pcall(cjson.decode, line)
    if ok and type(obj) == "table" then
      local keys = {}
      for k in pairs(obj) do if type(k) == "string" then keys[#keys + 1] = k end end
      table.sort(keys)
      for _, k in ipairs(keys) do
        local acc = accs[k]
        if not acc then
          acc = new_acc(k)
          accs[k] = acc
          order[#order + 1] = k
        end
        local v = obj[k]
        if type(v) == "number" or type(v) == "string" then acc:push(v) else acc:skip() end
      end
    end
  end
  f:close()
end

-- collect(log_path, declared, mexpect [, file]) -> { NAME = record }, or nil when there is
-- nothing to look for. declared: metrics.declared(...); mexpect: the job's expect.metrics
-- (their names are looked for by name too, and say each one's aggregate); file: the job's
-- $JOBRUN_METRICS file.
function metrics.collect(log_path, declared, mexpect, file)
  local entries = entries_of(mexpect)
  local list, seen = {}, {}
  for _, m in ipairs(declared or {}) do list[#list + 1] = m; seen[m.name] = true end
  local names = {}
  for name in pairs(entries) do if not seen[name] then names[#names + 1] = name end end
  table.sort(names)
  for _, name in ipairs(names) do list[#list + 1] = { name = name } end
  local has_file = file and io.open(file, "r")
  if has_file then has_file:close() end
  if #list == 0 and not has_file then return nil end

  local function how(name)
    local e = entries[name]
    if e then return e.agg, e.frac, e.agg_text end
    return metrics.DEFAULT_AGG, metrics.TAIL, metrics.DEFAULT_AGG
  end
  local function new_acc(name)
    local agg, frac = how(name)
    return cmetrics.acc(frac or metrics.TAIL, agg == "median" or agg == "p95")
  end

  local specs, by_index, accs = {}, {}, {}
  local errs, missing = {}, {}
  for _, m in ipairs(list) do
    local acc = new_acc(m.name)
    accs[m.name] = acc
    if m.pattern or m.fn then
      specs[#specs + 1] = { needle = m.contains or metrics.literal_of(m.pattern) }
      by_index[#specs] = m
    else
      specs[#specs + 1] = { key = m.name, acc = acc }
    end
  end
  local guard = require "jobrun.c.guard"
  local spent = {}
  -- Each fn's scratch table for this log: what it has already seen in it (one job's log may be
  -- read more than once by one process, so state kept in the fn's own upvalues would leak).
  local scratch = {}
  local function on_line(i, line)
    local m = by_index[i]
    local acc = accs[m.name]
    if errs[m.name] then return end
    if m.pattern then
      local v = line:match(m.pattern)
      if v ~= nil then acc:push(v) end
      return
    end
    -- User code: bounded (its calls share one CPU budget per job) and interruptible.
    local budget = (m.budget or metrics.FN_BUDGET) - (spent[m.name] or 0)
    local t0 = os.clock()
    -- fn(line, emit, missing, seen): missing(why) says why the metric cannot be had (a source
    -- that does not answer), shown as "metric missing (why)"; seen is a table of the fn's own for
    -- this log.
    scratch[m.name] = scratch[m.name] or {}
    local ok, err = guard.call(math.max(budget, 1e-6), m.fn, line, function(v) acc:push(v) end,
      function(why) missing[m.name] = tostring(why) end, scratch[m.name])
    spent[m.name] = (spent[m.name] or 0) + (os.clock() - t0)
    if not ok then
      if type(err) == "table" and err.signal then error(err, 0) end
      errs[m.name] = type(err) == "string" and err or tostring(err)
    end
  end
  if #specs > 0 and log_path then
    local ok, err = cmetrics.scan(log_path, specs, on_line)
    if not ok then return nil, err end
  end
  -- The job's own JSON lines: they hold exactly what the job meant, so they win over the log.
  local from_file, file_order = {}, {}
  if has_file then read_jsonl(file, from_file, file_order, new_acc) end

  local out = {}
  for _, m in ipairs(list) do
    local acc = from_file[m.name] or accs[m.name]
    local agg, _, agg_text = how(m.name)
    out[m.name] = record_of(acc:stats(), agg, agg_text)
    out[m.name].error = errs[m.name]
    out[m.name].missing = missing[m.name]
  end
  for _, name in ipairs(file_order) do
    if not out[name] then
      local agg, _, agg_text = how(name)
      out[name] = record_of(from_file[name]:stats(), agg, agg_text)
    end
  end
  return out
end

-- for_json(t) -> the metrics table as results carry it, each record's keys in order (marked in
-- place, with shared metatables: a big run's answer marks many of them).
local RECORD_MT = getmetatable(json.object({}, metrics.ORDER))
local MAP_MT = getmetatable(json.object({}))
function metrics.for_json(t)
  if type(t) ~= "table" then return t end
  for _, rec in pairs(t) do
    if type(rec) == "table" and getmetatable(rec) == nil then setmetatable(rec, RECORD_MT) end
  end
  if getmetatable(t) == nil then setmetatable(t, MAP_MT) end
  return t
end

-- The series file (README "Metrics"): each judged job attempt's series, for the charts, as one
-- JSON line appended to <run>/metrics/series.jsonl: { key, job, metrics = { NAME = { series,
-- series_step } } } (a later line for the same key replaces an earlier one). --json's records
-- take theirs from it (with_series); state.json keeps only each metric's summary. One file per
-- run: creating a file per job cost a millisecond each on a file system without a journal,
-- appending to one a few microseconds.
metrics.SERIES_MAX = 512 * 1024 * 1024

-- series_path(run_dir) -> the run's series file.
function metrics.series_path(run_dir)
  return run_dir .. "/metrics/series.jsonl"
end

-- take_series(found) -> { NAME = { series, series_step } }: each record's series, taken out of it.
function metrics.take_series(found)
  local out = {}
  for name, rec in pairs(type(found) == "table" and found or {}) do
    if type(rec) == "table" then
      if rec.series ~= nil then
        out[name] = json.object({ series = json.array(rec.series), series_step = rec.series_step },
          { "series", "series_step" })
      end
      rec.series, rec.series_step = nil, nil
    end
  end
  return out
end

local function prefix_of(key) return '{"key":' .. json.encode_string(tostring(key)) .. "," end

local made_dirs = {}

-- write_series(run_dir, key, job_name, series) -> true | nil, why: the job attempt's line,
-- appended to the run's series file in one write.
function metrics.write_series(run_dir, key, job_name, series)
  local fs = require "jobrun.c.fs"
  local dir = run_dir .. "/metrics"
  if not made_dirs[dir] then
    local ok, err = fs.mkdir_p(dir)
    if not ok then return nil, err end
    made_dirs[dir] = true
  end
  local line = json.encode(json.object({ key = key, job = job_name, metrics = json.object(series) },
    { "key", "job", "metrics" }))
  local ok, err = fs.append_record(metrics.series_path(run_dir), line .. "\n")
  if not ok then
    made_dirs[dir] = nil
    return nil, err
  end
  return true
end

-- raw_series(line) -> { NAME = { text = "[…]", series_step } } | nil: a series file's line as
-- write_series makes it, each series left as its text; nil for any other shape (read whole then).
-- (--json of a 10,000-job run decoded 1.2 million numbers to encode them again as they were.)
local function raw_series(line)
  if line:find("\\", 1, true) then return nil end -- an escape: names as JSON spells them, decoded
  local body = line:match(',"metrics":{(.*)}}$')
  if not body then return nil end
  local out, pos = {}, 1
  while pos <= #body do
    local name, text, rest, after = body:match('^"([^"]*)":{"series":(%b[])([^}]*)}()', pos)
    if not name then return nil end
    local step
    if rest ~= "" then
      step = tonumber(rest:match('^,"series_step":([%d%.eE%+%-]+)$'))
      if not step then return nil end
    end
    out[name] = { text = text, series_step = step }
    pos = after
    if body:sub(pos, pos) == "," then pos = pos + 1 elseif pos <= #body then return nil end
  end
  return out
end

-- series_at(job, file) -> where the job's latest line in the series file starts in file.text
-- (file: { text }, as read_series_file read it), negated when the line holds an escape, or nil.
-- The file's lines are indexed by their prefix in one pass in C, kept in `file` for the next job
-- (a page of 10,000 jobs would otherwise scan the whole file once a job). A line's prefix is its
-- encoded key up to `,"job":`, which the encoded key cannot hold (its quotes are escaped).
local function series_at(job, file)
  if not file.text then return nil end
  if not file.line_at then file.line_at = require("jobrun.c.scan").line_index(file.text, ',"job":') end
  return file.line_at[prefix_of(require("jobrun.run.store").job_key(job))]
end

-- series_line(job, file) -> the job's latest line in the series file, or nil.
local function series_line(job, file)
  local at = series_at(job, file)
  if not at then return nil end
  at = math.abs(at)
  local stop = file.text:find("\n", at, true)
  return file.text:sub(at, (stop or 0) - 1)
end

-- read_series(run_dir, job [, file [, raw]]) -> { NAME = { series = { numbers }, series_step } } | nil,
-- why: the series of the job's latest attempt, from the run's series file (file: { text, why },
-- read_series_file's answer, when the caller has read it: a page charts many jobs); a run
-- recorded before series files kept them in its records. why says what is wrong: "no series
-- file", "no series of this job in the series file", "the series file is damaged (…)". raw:
-- each series is json.raw text (checked, not decoded) where the line has write_series' shape.
function metrics.read_series(run_dir, job, file, raw)
  local inline = {}
  for name, rec in pairs(type(job.metrics) == "table" and job.metrics or {}) do
    if type(rec) == "table" and type(rec.series) == "table" then
      inline[name] = { series = rec.series, series_step = rec.series_step }
    end
  end
  if next(inline) then return inline end
  if not file then
    file = {}
    file.text, file.why = metrics.read_series_file(run_dir)
  end
  if not file.text then return nil, file.why end
  local line = series_line(job, file)
  if not line then return nil, "no series of this job in the series file" end
  -- raw: each series as JSON text (json.raw), checked to be an array of numbers, not decoded.
  local texts = raw and raw_series(line)
  if texts then
    local out = {}
    for name, e in pairs(texts) do
      local ok = number_list(e.text)
      if ok ~= true then
        if ok == 0 then return nil, "the series file is damaged (" .. name .. ": no series)" end
        return nil, string.format("the series file is damaged (%s[%d]: not a number)", name, ok)
      end
      out[name] = { series = json.raw(e.text), series_step = e.series_step, raw = true }
    end
    return out
  end
  local doc = json.decode(line)
  if type(doc) ~= "table" or type(doc.metrics) ~= "table" then
    return nil, "the series file is damaged (its line is not a JSON object with metrics)"
  end
  local out = {}
  for name, e in pairs(doc.metrics) do
    if type(name) ~= "string" or type(e) ~= "table" or type(e.series) ~= "table" then
      return nil, "the series file is damaged (" .. tostring(name) .. ": no series)"
    end
    local bad = not_number(e.series)
    if bad then
      return nil, string.format("the series file is damaged (%s[%d]: not a number)", name, bad)
    end
    out[name] = { series = e.series, series_step = e.series_step }
  end
  return out
end

-- with_series(records, series) -> a copy of a job's metric records, each with its series (the
-- result's shape, README "Metrics"); the job's own records are left as they are.
function metrics.with_series(records, series)
  local out = {}
  for name, rec in pairs(records) do
    local copy = {}
    for k, v in pairs(rec) do copy[k] = v end
    local s = series and series[name]
    if s then copy.series, copy.series_step = s.raw and s.series or json.array(s.series), s.series_step end
    out[name] = copy
  end
  return metrics.for_json(out)
end

-- json_records(run_dir, job, file) -> the job's metric records as --json gives them, each with
-- its series (file: { text, why } from read_series_file, shared by the run's jobs). The series
-- go in as the series file's text, found and checked in C (json.with_series): no table or
-- string a series. A line with an escape in it (a name as JSON escapes it) is read whole.
function metrics.json_records(run_dir, job, file)
  local at = series_at(job, file)
  if at and at < 0 then
    return metrics.with_series(job.metrics, (metrics.read_series(run_dir, job, file, true)))
  end
  return json.with_series(job.metrics, at and file.text, metrics.ORDER, at)
end

-- read_series_file(run_dir) -> its text | nil, why ("no series file", …).
function metrics.read_series_file(run_dir)
  if not run_dir then return nil, "no series file" end
  local fs = require "jobrun.c.fs"
  local text, more, errno = fs.read_record(metrics.series_path(run_dir), 0, metrics.SERIES_MAX)
  if not text then
    if errno == 2 then return nil, "no series file" end -- ENOENT
    return nil, "the series file cannot be read (" .. tostring(more):gsub("^.*/", "") .. ")"
  end
  if more then return nil, "the series file is damaged (larger than " .. metrics.SERIES_MAX .. " bytes)" end
  return text
end

-- format(v): a value as the messages show it: 38210, 2.31, 0.000123.
function metrics.format(v)
  if type(v) ~= "number" then return tostring(v) end
  if math.type(v) == "integer" then return tostring(v) end
  if v == math.floor(v) and math.abs(v) < 1e15 then return string.format("%d", v) end
  local s = string.format("%.6g", v)
  if s:find("e") then return s end
  return s
end

-- count(n): 1200 -> "1,200".
function metrics.count(n)
  local s = tostring(math.tointeger(n) or n)
  local out = s:reverse():gsub("(%d%d%d)", "%1,"):reverse()
  return (out:gsub("^,", ""))
end

local function compare(v, op, num)
  if op == ">=" then return v >= num elseif op == ">" then return v > num
  elseif op == "<=" then return v <= num elseif op == "<" then return v < num end
  return v == num
end

local function axis_value(job, axis)
  local v = job.params and job.params[axis]
  if v == nil and axis == "nodes" then v = job.spec and job.spec.nodes or job.nodes end
  return v
end

-- ref_of(refs, v): the reference for an axis value (keys may be numbers or strings).
local function ref_of(refs, v)
  if v == nil then return nil end
  local r = refs[v]
  if r == nil then r = refs[tonumber(v)] end
  if r == nil then r = refs[tostring(v)] end
  return r
end

-- attach_baselines(job, mexpect, run_dir, suite): for each metric expected against a baseline
-- (expect.metrics NAME = { baseline = N, tol = … }), the same job's value over its last N
-- passing runs before this one, from the history index (README "History"), goes into
-- job.metrics[NAME].baseline = { value (their mean), runs, of = N, note }: judge compares
-- against it, and the record keeps what it was compared with.
function metrics.attach_baselines(job, mexpect, run_dir, suite, run_id)
  if type(mexpect) ~= "table" or type(job.metrics) ~= "table" then return end
  for name, entry in pairs(mexpect) do
    local e = metrics.compile(entry)
    local rec = job.metrics[name]
    if e and e.baseline and type(rec) == "table" then
      local values = require("jobrun.run.history").baseline(run_dir, suite, job.name, name, e.baseline, run_id) or {}
      local b = { runs = #values, of = e.baseline }
      if #values > 0 then
        local sum = 0
        for _, x in ipairs(values) do sum = sum + x end
        b.value = sum / #values
      end
      if #values < e.baseline then b.note = string.format("no baseline yet (%d of %d runs)", #values, e.baseline) end
      rec.baseline = json.object(b, { "value", "runs", "of", "note" })
    end
  end
end

-- judge(found, mexpect, job) -> mismatches: each unmet metric expectation in words.
function metrics.judge(found, mexpect, job)
  local out = {}
  if type(mexpect) ~= "table" then return out end
  local names = {}
  for name in pairs(mexpect) do names[#names + 1] = name end
  table.sort(names)
  for _, name in ipairs(names) do
    local e, why = metrics.compile(mexpect[name])
    local rec = found and found[name]
    if not e then
      out[#out + 1] = string.format("%s: %s", name, why)
    elseif rec and rec.error then
      out[#out + 1] = string.format("%s: metric fn failed: %s", name, rec.error)
    elseif not rec or not rec.n or rec.n == 0 or rec.value == nil then
      local skipped = rec and rec.n_skipped and rec.n_skipped > 0
        and string.format(" (%s values were not numbers)", metrics.count(rec.n_skipped)) or ""
      local because = rec and rec.missing and string.format(" (%s)", rec.missing) or ""
      out[#out + 1] = string.format("%s: metric missing%s%s", name, because, skipped)
    else
      local v = rec.value
      local of = string.format("%s of %s point%s", rec.agg or e.agg_text, metrics.count(rec.n),
        rec.n == 1 and "" or "s")
      if e.rule and not compare(v, e.rule.op, e.rule.num) then
        out[#out + 1] = string.format("%s: expected %s %s, saw %s (%s)", name, e.rule.op, metrics.format(e.rule.num),
          metrics.format(v), of)
      end
      if e.baseline then
        local b = rec.baseline
        local had = type(b) == "table" and b.runs or 0
        if had < e.baseline then
          if e.require_baseline then
            out[#out + 1] = string.format("%s: no baseline yet (%d of %d runs)", name, had, e.baseline)
          end
        elseif e.tol then
          local r = b.value
          local lo = e.tol.lo and r * (1 - e.tol.lo)
          local hi = e.tol.hi and r * (1 + e.tol.hi)
          if (lo and v < lo) or (hi and v > hi) then
            local want
            if lo and hi then want = string.format("between %s and %s", metrics.format(lo), metrics.format(hi))
            elseif lo then want = ">= " .. metrics.format(lo) else want = "<= " .. metrics.format(hi) end
            out[#out + 1] = string.format("%s: expected %s (baseline %s over the last %d passing runs, %s), "
              .. "saw %s (%s)", name, want, metrics.format(r), b.runs, mexpect[name].tol, metrics.format(v), of)
          end
        end
      end
      if e.ref then
        local axes = {}
        for axis in pairs(e.ref) do axes[#axes + 1] = axis end
        table.sort(axes)
        for _, axis in ipairs(axes) do
          local av = axis_value(job, axis)
          local r = ref_of(e.ref[axis], av)
          if r then
            local lo = e.tol.lo and r * (1 - e.tol.lo)
            local hi = e.tol.hi and r * (1 + e.tol.hi)
            if (lo and v < lo) or (hi and v > hi) then
              local want
              if lo and hi then want = string.format("between %s and %s", metrics.format(lo), metrics.format(hi))
              elseif lo then want = ">= " .. metrics.format(lo) else want = "<= " .. metrics.format(hi) end
              out[#out + 1] = string.format("%s: expected %s (ref %s %s for %s=%s), saw %s (%s)", name, want,
                metrics.format(r), mexpect[name].tol, axis, tostring(av), metrics.format(v), of)
            end
          end
        end
      end
    end
  end
  return out
end

-- scaling(jobs, spec) -> check | nil: the suite-level scaling check (README "Metrics") over
-- the jobs of one suite. check = { name, ok (true/false, nil while jobs are unfinished),
-- text, groups = { { label, steps = { { from, to, efficiency, ok } } } } }.
function metrics.scaling(jobs, spec, terminal)
  if type(spec) ~= "table" or not spec.axis or not spec.metric then return nil end
  local groups, order = {}, {}
  local pending = false
  for _, job in ipairs(jobs) do
    if terminal and not terminal[job.status] then pending = true end
    local parts = {}
    for _, k in ipairs(job.spec and job.spec.param_order or {}) do
      if k ~= spec.axis then parts[#parts + 1] = k .. "=" .. require("jobrun.suite.template").text(job.params[k]) end
    end
    local key = table.concat(parts, ", ")
    if not groups[key] then groups[key] = {}; order[#order + 1] = key end
    local n = tonumber(axis_value(job, spec.axis))
    if n then table.insert(groups[key], { n = n, job = job }) end
  end
  local check = { name = string.format("scaling of %s over %s", spec.metric, spec.axis), groups = {},
                  min_efficiency = spec.min_efficiency }
  local ok, texts = true, {}
  for _, key in ipairs(order) do
    local members = groups[key]
    table.sort(members, function(a, b) return a.n < b.n end)
    local g = { label = key, steps = {} }
    local base = members[1]
    local function value(m)
      local rec = m.job.metrics and m.job.metrics[spec.metric]
      return type(rec) == "table" and rec.value or nil
    end
    local parts = {}
    for i = 2, #members do
      local m = members[i]
      local step = { from = base.n, to = m.n }
      local vb, vm = value(base), value(m)
      if vb and vm and vb ~= 0 then
        step.efficiency = (vm / m.n) / (vb / base.n)
        step.ok = step.efficiency >= spec.min_efficiency
        parts[#parts + 1] = string.format("%s→%s: %.2f%s", metrics.format(base.n), metrics.format(m.n), step.efficiency,
          step.ok and "" or " ✗")
      else
        step.ok = false
        parts[#parts + 1] = string.format("%s→%s: %s missing ✗", metrics.format(base.n), metrics.format(m.n),
          spec.metric)
      end
      if not step.ok then ok = false end
      g.steps[#g.steps + 1] = step
    end
    g.text = table.concat(parts, ", ")
    if #parts > 0 then texts[#texts + 1] = (key ~= "" and (key .. ": ") or "") .. g.text end
    check.groups[#check.groups + 1] = g
  end
  if pending then check.ok = nil else check.ok = ok end
  check.text = #texts > 0 and table.concat(texts, "; ") or "no group has two values of " .. spec.axis
  return check
end

return metrics
