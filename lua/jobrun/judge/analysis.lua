-- Log analysis (parsers; README "Suite files"): the parsers of a suite, its packs and the built-ins, run over
-- a job's log. `contains` needles are found in C (jobrun.c.scan) in one pass over the tail (or
-- the whole log with scope = "all"); patterns and fn parsers see only what they need.
local scan = require "jobrun.c.scan"
local fs = require "jobrun.c.fs"
local builtin = require "jobrun.judge.parsers.builtin"
local guard = require "jobrun.c.guard"
local embed = require "jobrun.c.embed"
local process = require "jobrun.c.process"
local json = require "jobrun.base.json"
local forensics = require "jobrun.judge.forensics"

local analysis = {}

-- The tail that "tail" scope reads: big enough for any summary block, small enough that a
-- multi-GB log costs the same as a small one.
analysis.TAIL_BYTES = 1024 * 1024

-- Seconds of CPU a parser fn may use on one job unless it sets `budget` (README "Suite files").
analysis.FN_BUDGET = 1

local TOP_LEVEL = { exit_code = true, termination_reason = true, restart_count = true }

-- jobruns_own(where) -> true for a declaration in one of jobrun's own packs (lua/jobrun/packs):
-- its patterns are jobrun's code, run without a sandbox; a user's file of the same name is not.
local function jobruns_own(where)
  local name = where and type(where.file) == "string" and where.file:match("^lua/jobrun/packs/([%w_]+)%.lua$")
  if not name then return false end
  local _, chunk = embed.source("jobrun.packs." .. name)
  return chunk == "@" .. where.file
end

-- parsers(decls) -> ordered list: built-ins, then packs' and the suite's in declaration order;
-- a declared parser with a built-in's name takes its place.
function analysis.parsers(decls)
  local list, declared = {}, {}
  for _, name in ipairs(decls and decls.parser_order or {}) do declared[name] = true end
  for _, p in ipairs(builtin) do
    if not declared[p.name] then list[#list + 1] = p end
  end
  for _, name in ipairs(decls and decls.parser_order or {}) do
    local p = { name = name, user = not jobruns_own(decls.parsers[name].where) }
    for k, v in pairs(decls.parsers[name].fields) do p[k] = v end
    list[#list + 1] = p
  end
  for i, p in ipairs(list) do p.order = i end
  list.metrics = require("jobrun.judge.metrics").declared(decls) -- read from the same log (jobrun.judge.metrics)
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
analysis.value_of = value_of

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

-- A parser's failure, kept in result for the verdict (README "Suite files": the job fails, naming it).
local function parser_failed(result, p, why)
  result.fields["parser_error." .. p.name] = why
  result.parser_errors = result.parser_errors or {}
  result.parser_errors[#result.parser_errors + 1] = { parser = p.name, error = why }
end

-- guarded(step, k, work) -> nil | why: work() as parser k, through the sandbox's step when there
-- is one (it runs work under the parser's limits and gives a failure found before instead).
local function guarded(step, k, work)
  if step then return step(k, work) end
  work()
end

-- run_fns(parsers, result, hits_of, text, step) -> result: the fn parsers run (those with a
-- needle only when it was found), then result is the analysis.
local function run_fns(parsers, result, hits_of, text, step)
  for k, p in ipairs(parsers) do
    if p.fn and (not p.contains or (hits_of[p] and hits_of[p].count > 0)) then
      local why = guarded(step, k, function()
        -- Under a CPU budget, and interruptible: a signal ends the analysis (the caller decides).
        local ok, err = guard.call(p.budget or analysis.FN_BUDGET, p.fn, text(p.scope), result)
        if not ok then
          if type(err) == "table" and err.signal then error(err, 0) end
          parser_failed(result, p, type(err) == "string" and err or tostring(err))
        end
      end)
      if why then parser_failed(result, p, why) end
    end
  end
  result.job = nil
  return result
end

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

local function analyze_one(path, parsers, job, step)
  -- An empty log (most jobs of a big run of quiet commands) has no line for any parser to
  -- match: only fn parsers without a needle run, on "". Nothing is scanned. (No path: the same.)
  local st = path and fs.stat(path)
  if not path or (st and st.type == "file" and st.size == 0) then
    return run_fns(parsers, { fields = {}, job = job }, {}, function() return "" end, step)
  end
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
  local best, failed = {}, {}
  for k, p in ipairs(parsers) do
    if p.field and not p.fn then
      local v
      local function find()
        local h = hits_of[p]
        if h then
          v = pick(p, p.first and h.first or h.last, not p.first)
        elseif p.pattern then
          v = pick(p, lines(p.scope), not p.first)
        end
      end
      -- A declared parser's pattern is the user's: it may take as long as an fn.
      local why
      if p.user and p.pattern then why = guarded(step, k, find) else find() end
      if why then failed[#failed + 1] = { p, why } end
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
  for _, f in ipairs(failed) do parser_failed(result, f[1], f[2]) end
  return forensics.attach(run_fns(parsers, result, hits_of, text, step), path, parsers, job)
end

-- analyze_empty(parsers, job): analyze's answer for an empty log, without reading it.
function analysis.analyze_empty(parsers, job)
  return analysis.analyze(nil, parsers, job)
end

-- ---- The sandbox: user code runs in a forked child, under limits enforced from outside ----
--
-- A count hook (jobrun.c.guard) cannot stop a parser stuck in one C call: string.find with a
-- catastrophic pattern runs for minutes without one Lua instruction. So user parsers run in a
-- child of fork, one child for a whole batch of logs (a fork per parser per job would cost more
-- than most analyses), which says over a pipe which parser it starts and ends ("B i k", "D")
-- and what each log gave ("R i json"). Before each parser it sets RLIMIT_CPU to the parser's
-- budget, so the kernel ends it with SIGXCPU whatever it is doing; the parent kills it at the
-- wall-clock limit, and at once on a signal of its own. A parser that ended the child is named
-- for its job, and a new child goes on from that job, told to skip that parser.

-- Wall-clock seconds a parser may take: the CPU budget is the rule; this catches one that waits
-- without using CPU (on a pipe, a sleep).
analysis.wall_limit = require("jobrun.judge.isolate").wall_limit

-- User code: what a suite or a user's pack declared (jobrun's own built-ins and packs are not).
local function user_code(p) return p.user and (p.fn or p.pattern) end

local function needs_sandbox(parsers)
  for _, p in ipairs(parsers) do if user_code(p) then return true end end
  return false
end

-- The analysis as it travels over the pipe: JSON, as state.json keeps it. A value JSON cannot
-- hold (a function a parser put in fields) travels as its tostring.
local function encode_found(found)
  local ok, text = pcall(json.encode, found)
  if ok then return text end
  local fields = {}
  for k, v in pairs(found.fields) do
    fields[k] = pcall(json.encode, v) and v or tostring(v)
  end
  found.fields = fields
  return json.encode(found)
end

local function child_main(items, from, skip, fd)
  -- A collection would touch every page of the heap it shares with the parent until written
  -- (copy on write): most of a fork's cost. What one batch leaves is freed when it exits.
  collectgarbage("stop")
  -- ...unless a batch of big logs would pile up: then a collection now and then.
  local heap_limit = collectgarbage("count") + 256 * 1024
  local function send(line)
    if not process.write(fd, line) then process.exit_now(3) end
  end
  for i = from, #items do
    local item = items[i]
    local skips = skip[i] or {}
    local function step(k, work)
      if skips[k] then return skips[k] end
      local p = item.parsers[k]
      send(string.format("B %d %d\n", i, k))
      process.limit_cpu(p.budget or analysis.FN_BUDGET)
      -- An error in the parser's own work (a pattern that raises) is its failure, not the log's.
      local ok, err = pcall(work)
      process.limit_cpu(1e9)
      send("D\n")
      if not ok then return type(err) == "string" and err or tostring(err) end
    end
    local ok, found, err = pcall(analyze_one, item.path, item.parsers, item.job, step)
    if not ok then
      send(string.format("E %d %s\n", i, json.encode(tostring(found))))
    elseif not found then
      send(string.format("E %d %s\n", i, json.encode(tostring(err))))
    else
      send(string.format("R %d %s\n", i, encode_found(found)))
    end
    if collectgarbage("count") > heap_limit then
      collectgarbage("collect")
      heap_limit = collectgarbage("count") + 256 * 1024
    end
  end
  io.stdout:flush()
  io.stderr:flush()
  process.exit_now(0)
end

-- why_ended(r, budget) -> how a child that ran a parser ended, in words.
local function why_ended(r, budget)
  if r.signal == "XCPU" and budget then return string.format("CPU budget of %gs exceeded", budget) end
  if r.signal then return "its process was ended by SIG" .. r.signal end
  return "its process exited " .. tostring(r.exit_code)
end

-- sandboxed(items) -> found | { false, why } per item. A signal (INT, TERM, HUP) ends it at
-- once: the child is killed and { signal = NAME } raised, the signal left pending for the caller
-- (or, when nobody else blocked it, delivered: its default action ends jobrun).
local function sandboxed(items)
  local out, skip = {}, {}
  local sigs = assert(process.signals({ "INT", "TERM", "HUP" }))
  local from = 1
  while from <= #items do
    local child, fd = process.fork()
    if child == nil and fd then child_main(items, from, skip, fd) end
    if not child then
      -- No child, no way to bound user code: its parsers fail, named, rather than run unbounded.
      for i = from, #items do
        local found = { fields = {} }
        for _, p in ipairs(items[i].parsers) do
          if user_code(p) then parser_failed(found, p, "could not be run: " .. tostring(fd)) end
        end
        out[i] = found
      end
      break
    end
    local stream = child:stdout()
    local buf, current, deadline, last_done = {}, nil, nil, from - 1
    local killed -- the parser that ran past the wall-clock limit, and why: { i, k, why }
    local function take(line)
      local kind, i, rest = line:match("^(%u) ?(%d*) ?(.*)$")
      i = tonumber(i)
      if kind == "B" then
        local p = items[i].parsers[tonumber(rest)]
        current = { i = i, k = tonumber(rest), budget = p.budget or analysis.FN_BUDGET }
        deadline = process.now() + analysis.wall_limit(current.budget)
      elseif kind == "D" then
        current, deadline = nil, nil
      elseif kind == "R" or kind == "E" then
        local v = json.decode(rest)
        if kind == "R" and type(v) == "table" then
          v.fields = v.fields or {}
          out[i] = v
        else
          out[i] = { false, type(v) == "string" and v or "the analysis could not be read back" }
        end
        current, deadline, last_done = nil, nil, i
      end
    end
    local eof = false
    while not eof do
      local ready = process.poll({ sigs, stream }, deadline and deadline - process.now() or nil)
      if #ready == 0 and deadline and process.now() >= deadline then
        killed = { i = current.i, k = current.k,
                   why = string.format("wall-clock limit of %gs exceeded", analysis.wall_limit(current.budget)) }
        deadline = nil
        child:kill("KILL")
      end
      for _, r in ipairs(ready) do
        if r == 1 then require("jobrun.judge.isolate").give_up(child, sigs) end
        -- Chunks are joined only once a line is complete: a big result costs one copy.
        repeat
          local data = stream:read()
          if data == nil then
            eof = true
          elseif data:find("\n", 1, true) then
            buf[#buf + 1] = data
            local text, rest = table.concat(buf), 1
            -- Linear: "[^\n]*$" unanchored would rescan a long line from every position.
            for line, after in text:gmatch("([^\n]*)\n()") do take(line); rest = after end
            buf = { text:sub(rest) }
          elseif data ~= "" then
            buf[#buf + 1] = data
          end
        until data == nil or data == ""
      end
    end
    local r = child:wait(true)
    child:close()
    -- The parser that ended the child (the one killed, even if the child raced on meanwhile)
    -- fails for its job; a new child goes on from that job.
    local blame = killed or current
    if blame then
      skip[blame.i] = skip[blame.i] or {}
      skip[blame.i][blame.k] = killed and killed.why or why_ended(r, current.budget)
      from = blame.i
    elseif last_done < #items and r.exit_code ~= 0 then
      -- The child ended between two parsers: that log's analysis is lost, and said to be.
      out[last_done + 1] = { false, "the analysis ended: " .. why_ended(r, nil) }
      from = last_done + 2
    else
      from = last_done + 1
    end
  end
  sigs:close()
  for i = 1, #items do out[i] = out[i] or { false, "no analysis" } end
  return out
end

-- analyze_many(items) -> one found (or { false, why }) per item { path, parsers, job }: what
-- analyze gives for each. User code (fn parsers, declared patterns) runs sandboxed, all the logs
-- in one child; the built-ins alone run here.
function analysis.analyze_many(items)
  for _, item in ipairs(items) do
    if needs_sandbox(item.parsers) then return sandboxed(items) end
  end
  local out = {}
  for i, item in ipairs(items) do
    local found, err = analyze_one(item.path, item.parsers, item.job)
    out[i] = found or { false, err }
  end
  return out
end

-- analyze(path, parsers [, job]) -> found { exit_code, termination_reason, restart_count,
-- fields [, parser_errors] }, or nil, why when the log cannot be read. job gives fn parsers the
-- backend's facts. path nil: as for an empty log.
function analysis.analyze(path, parsers, job)
  local found = analysis.analyze_many({ { path = path, parsers = parsers, job = job } })[1]
  if found[1] == false then return nil, found[2] end
  return found
end

return analysis
