-- Log analysis (SPEC §3 parser): the parsers of a suite, its packs and the built-ins, run over
-- a job's log. `contains` needles are found in C (jobrun.c.scan) in one pass over the tail (or
-- the whole log with scope = "all"); patterns and fn parsers see only what they need.
local scan = require "jobrun.c.scan"
local fs = require "jobrun.c.fs"
local builtin = require "jobrun.parsers.builtin"
local guard = require "jobrun.c.guard"
local forensics = require "jobrun.forensics"

local analysis = {}

-- The tail that "tail" scope reads: big enough for any summary block, small enough that a
-- multi-GB log costs the same as a small one.
analysis.TAIL_BYTES = 1024 * 1024

-- Seconds of CPU a parser fn may use on one job unless it sets `budget` (SPEC §3).
analysis.FN_BUDGET = 1

local TOP_LEVEL = { exit_code = true, termination_reason = true, restart_count = true }

-- parsers(decls) -> ordered list: built-ins, then packs' and the suite's in declaration order;
-- a declared parser with a built-in's name takes its place.
function analysis.parsers(decls)
  local list, declared = {}, {}
  for _, name in ipairs(decls and decls.parser_order or {}) do declared[name] = true end
  for _, p in ipairs(builtin) do
    if not declared[p.name] then list[#list + 1] = p end
  end
  for _, name in ipairs(decls and decls.parser_order or {}) do
    local p = { name = name }
    for k, v in pairs(decls.parsers[name].fields) do p[k] = v end
    list[#list + 1] = p
  end
  for i, p in ipairs(list) do p.order = i end
  return list
end

local function trim(s) return (s:gsub("^%s+", ""):gsub("%s+$", "")) end

-- value_of(parser, line) -> the parser's value for one line, or nil when it does not match.
local function value_of(p, line)
  local v
  if p.pattern then
    v = line:match(p.pattern)
    if v == nil then return nil end
    if p.value ~= nil then v = p.value end
  else
    v = p.value ~= nil and p.value or trim(line)
  end
  if type(v) == "string" then
    v = trim(v)
    if p.number then v = math.tointeger(tonumber(v)) or tonumber(v) end
  end
  return v
end

-- pick(p, lines, from_end): the first line (or last, from_end) for which the parser has a value.
local function pick(p, lines, from_end)
  local a, b, step = 1, #lines, 1
  if from_end then a, b, step = #lines, 1, -1 end
  for i = a, b, step do
    local v = value_of(p, lines[i])
    if v ~= nil then return v end
  end
  return nil
end

local function split_lines(text)
  local lines = {}
  for line in text:gmatch("[^\r\n]+") do lines[#lines + 1] = line end
  return lines
end

-- run_fns(parsers, result, hits_of, text) -> result: the fn parsers run (those with a needle
-- only when it was found), then result is the analysis.
local function run_fns(parsers, result, hits_of, text)
  for _, p in ipairs(parsers) do
    if p.fn and (not p.contains or (hits_of[p] and hits_of[p].count > 0)) then
      -- Under a CPU budget, and interruptible: a signal ends the analysis (the caller decides).
      local ok, err = guard.call(p.budget or analysis.FN_BUDGET, p.fn, text(p.scope), result)
      if not ok then
        if type(err) == "table" and err.signal then error(err, 0) end
        local why = type(err) == "string" and err or tostring(err)
        result.fields["parser_error." .. p.name] = why
        result.parser_errors = result.parser_errors or {}
        result.parser_errors[#result.parser_errors + 1] = { parser = p.name, error = why }
      end
    end
  end
  result.job = nil
  return result
end

-- analyze(path, parsers [, job]) -> found { exit_code, termination_reason, restart_count,
-- fields }, or nil, why when the log cannot be read. job gives fn parsers the backend's facts.
-- groups_of(parsers) -> the needles to look for per scope, and which parser reads which: made
-- once per list of parsers (a run analyses every job's log with the same list).
local group_cache = setmetatable({}, { __mode = "k" })
local function groups_of(parsers)
  local cached = group_cache[parsers]
  if cached and cached.n == #parsers then return cached.groups end
  local groups = { tail = { needles = {}, parsers = {} }, all = { needles = {}, parsers = {} } }
  -- One needle per distinct text and scope: parsers that share a needle share its hits.
  local index = { tail = {}, all = {} }
  for _, p in ipairs(parsers) do
    if p.contains then
      local scope = p.scope == "all" and "all" or "tail"
      local g = groups[scope]
      local i = index[scope][p.contains]
      if not i then
        g.needles[#g.needles + 1] = p.contains
        i = #g.needles
        index[scope][p.contains] = i
      end
      g.parsers[#g.parsers + 1] = { parser = p, needle = i }
    end
  end
  group_cache[parsers] = { n = #parsers, groups = groups }
  return groups
end

function analysis.analyze(path, parsers, job)
  -- An empty log (most jobs of a big run of quiet commands) has no line for any parser to
  -- match: only fn parsers without a needle run, on "". Nothing is scanned.
  local st = fs.stat(path)
  if st and st.type == "file" and st.size == 0 then return analysis.analyze_empty(parsers, job) end
  local groups = groups_of(parsers)
  local hits_of = {}
  for scope, g in pairs(groups) do
    if #g.needles > 0 then
      local hits, err = scan.find(path, g.needles, scope == "tail" and analysis.TAIL_BYTES or nil)
      if not hits then return nil, err end
      for _, entry in ipairs(g.parsers) do hits_of[entry.parser] = hits[entry.needle] end
    end
  end
  local texts = {}
  local function text(scope)
    scope = scope == "all" and "all" or "tail"
    if not texts[scope] then
      texts[scope] = scan.tail(path, scope == "all" and math.maxinteger or analysis.TAIL_BYTES) or ""
    end
    return texts[scope]
  end
  local line_lists = {}
  local function lines(scope)
    scope = scope == "all" and "all" or "tail"
    line_lists[scope] = line_lists[scope] or split_lines(text(scope))
    return line_lists[scope]
  end

  -- Every value found, then per field the highest priority (a later declaration on a tie).
  local best = {}
  for _, p in ipairs(parsers) do
    if p.field and not p.fn then
      local v
      local h = hits_of[p]
      if h then
        v = pick(p, p.first and h.first or h.last, not p.first)
      elseif p.pattern then
        v = pick(p, lines(p.scope), not p.first)
      end
      if v ~= nil then
        local cur = best[p.field]
        local prio = p.priority or 0
        if not cur or prio > cur.priority or (prio == cur.priority and p.order > cur.order) then
          best[p.field] = { value = v, priority = prio, order = p.order }
        end
      end
    end
  end

  local result = { fields = {}, job = job }
  for field, b in pairs(best) do
    if TOP_LEVEL[field] then result[field] = b.value else result.fields[field] = b.value end
  end
  return forensics.attach(run_fns(parsers, result, hits_of, text), path, parsers, job)
end

-- analyze_empty(parsers, job): analyze's answer for an empty log, without reading it.
function analysis.analyze_empty(parsers, job)
  return run_fns(parsers, { fields = {}, job = job }, {}, function() return "" end)
end

return analysis
