-- Why a distributed job died (README "Why a distributed job died": culprit, cause_chain,
-- cause_class): which rank, on which node, failed first, and what the other ranks did after
-- it. One rank's CUDA OOM makes every other rank's NCCL watchdog fire minutes later; the log
-- then holds many timeouts and one OOM, and the OOM's rank is the culprit.
--
-- The whole log is scanned in C (jobrun.c.scan.ranks) for the termination parsers' needles,
-- keeping the first line of each rank per needle; the prefixes are read here.
local scan = require "jobrun.c.scan"
local fs = require "jobrun.c.fs"

local forensics = {}

-- Where tracebacks are looked for: the end of the log, where a dying job writes them.
forensics.TAIL_BYTES = 1024 * 1024

-- ---- rank prefixes ---------------------------------------------------------------------------

local function host_of(s) return s:match("^[%w%.%-_]+$") end

-- prefix(line) -> { rank, node_rank, node, text } | nil: the rank prefixes at the line's start,
-- the same grammar as rank_key in src/scan.c:
--   SkyPilot `(worker1, rank=1, pid=3110) `, `(head, rank=0, …)`; jobrun's local `(rank=3) `;
--   torchrun `[rank3]:`, `[default3]:`; srun --label `  3: ` (outermost only);
--   NCCL `host:pid:tid [3] NCCL …` (innermost; its [N] is the device, a rank only without others).
-- A line whose prefixes disagree (two interleaved writers) or that has none gives nil.
function forensics.prefix(line)
  local p = line:match("^ *()") or 1
  if p > 9 then p = 1 end
  local outer, inner, dev, node
  for k = 1, 4 do
    local c = line:sub(p, p)
    if c == "(" then
      local body, after = line:match("^%(([^)]*)%) ?()", p)
      if not body or #body > 94 then break end
      local r = body:match("^rank=(%d+)$") or body:match("^rank=(%d+),") or body:match("[ ,]rank=(%d+)$")
        or body:match("[ ,]rank=(%d+),")
      if not r or #r > 6 then break end
      r = tonumber(r)
      if outer and outer ~= r then return nil end
      outer = r
      local who = body:match("^([%w%-_%.]+),")
      if who and who ~= "" and not who:find("=") then node = who end
      p = after
    elseif c == "[" and (line:find("^%[rank%d", p) or line:find("^%[default%d", p)) then
      local r, after = line:match("^%[%a+(%d+)%]: ?()", p)
      if not r or #r > 6 then break end
      r = tonumber(r)
      if inner and inner ~= r then return nil end
      inner = r
      p = after
    elseif k == 1 and line:find("^%d", p) then
      local r, after = line:match("^(%d+): ()", p)
      if not r or #r > 5 then break end
      outer = tonumber(r)
      p = after
    else
      local host, d, after = line:match("^([%w%.%-_]+):%d+:%d+ %[(%d+)%]() NCCL", p)
      if host and #d <= 4 then
        dev = tonumber(d)
        node = host_of(host)
        p = after + 1
      end
      break
    end
  end
  if not (outer or inner or dev) then return nil end
  -- The launcher's rank is the process's; an outer prefix with an inner one is the node's rank.
  local rank, node_rank = inner, nil
  if inner then node_rank = outer
  elseif outer then rank, node_rank = outer, outer
  else rank = dev end
  return { rank = rank, node_rank = node_rank, node = node, text = line:sub(p) }
end

-- ---- timestamps ------------------------------------------------------------------------------

local function days_from_civil(y, m, d) -- days since 1970-01-01 (proleptic Gregorian)
  y = m <= 2 and y - 1 or y
  local era = (y >= 0 and y or y - 399) // 400
  local yoe = y - era * 400
  local doy = (153 * (m + (m > 2 and -3 or 9)) + 2) // 5 + d - 1
  local doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
  return era * 146097 + doe - 719468
end

-- stamp(text) -> kind, seconds | nil: a time at the start of a line's text (after its prefixes),
-- as Python's logging, ISO 8601 and glog (PyTorch's C++ `[E1207 06:55:00.123 …]`) print it.
-- Times of different kinds are not compared.
function forensics.stamp(text)
  local head = text:sub(1, 48)
  local y, mo, d, h, mi, s, frac = head:match("^%[?(%d%d%d%d)%-(%d%d)%-(%d%d)[T ](%d%d):(%d%d):(%d%d)[%.,]?(%d*)")
  if y then
    local t = days_from_civil(tonumber(y), tonumber(mo), tonumber(d)) * 86400
      + tonumber(h) * 3600 + tonumber(mi) * 60 + tonumber(s)
    return "iso", t + (frac ~= "" and tonumber("0." .. frac) or 0)
  end
  mo, d, h, mi, s, frac = head:match("^%[?[EWIF](%d%d)(%d%d) (%d%d):(%d%d):(%d%d)%.?(%d*)")
  if mo then
    local t = ((tonumber(mo) * 31 + tonumber(d)) * 24 + tonumber(h)) * 3600 + tonumber(mi) * 60 + tonumber(s)
    return "glog", t + (frac ~= "" and tonumber("0." .. frac) or 0)
  end
  return nil
end

-- ---- what a line says ------------------------------------------------------------------------

-- The termination parsers' value for a line: analysis.lua's own rule (required late: analysis
-- requires this module).
local function value_of(p, line)
  return require("jobrun.judge.analysis").value_of(p, line)
end

-- Reasons that follow another rank's failure rather than start one: a collective that timed
-- out waiting for a dead peer, NCCL's report of a peer that went away, a rank killed by its
-- launcher once another had failed, torchrun's own report of a failed child.
local FOLLOWER = { nccl_timeout = true, killed = true, cancelled = true }
local FOLLOWER_TEXT = { "ncclRemoteError", "remote process exit", "communicator was aborted",
  "Connection closed by remote peer", "ChildFailedError", "SignalException", "DistBackendError" }
-- ... except when the NCCL error is the rank's own system or network error.
local ORIGIN_TEXT = { "ncclSystemError", "NET/IB", "NET/Socket", "NET/OFI", "ncclInternalError",
  "ncclUnhandledCudaError" }

local function follows(reason, text)
  if FOLLOWER[reason] or tostring(reason):find("^signal_") then return true end
  if reason ~= "nccl_error" and reason ~= "exception" then return false end
  for _, t in ipairs(ORIGIN_TEXT) do if text:find(t, 1, true) then return false end end
  for _, t in ipairs(FOLLOWER_TEXT) do if text:find(t, 1, true) then return true end end
  return reason == "nccl_error" and text:find("NCCL WARN", 1, true) ~= nil
end

-- A Python exception with no termination reason of its own ranks between NCCL errors and
-- timeouts: it is the program's own failure, not a collective's.
local EXCEPTION_PRIORITY = 4.5

-- entry a before entry b as a root cause: an origin before a follower, then the more specific
-- reason, then the earlier time (when both lines have one of the same kind), then log order.
local function before(a, b)
  if a.follower ~= b.follower then return not a.follower end
  if a.priority ~= b.priority then return a.priority > b.priority end
  if a.kind and a.kind == b.kind and a.t ~= b.t then return a.t < b.t end
  return a.at < b.at
end
forensics.before = before

-- ---- the scan --------------------------------------------------------------------------------

-- The parsers that name a termination reason from a needle: these mark lines.
local function reason_parsers(parsers)
  local needles, index, by_needle = {}, {}, {}
  for _, p in ipairs(parsers) do
    if p.contains and p.field == "termination_reason" and not p.fn then
      local i = index[p.contains]
      if not i and #needles < 63 then
        needles[#needles + 1] = p.contains
        i = #needles
        index[p.contains] = i
        by_needle[i] = {}
      end
      if i then table.insert(by_needle[i], p) end
    end
  end
  return needles, by_needle
end

-- Exceptions are not needles (their lines have no fixed text): the lines that end a traceback
-- on a rank, read from the log's tail, where a dying job writes them.
-- A traceback's lines carry no time of their own: the rank's last time before them is theirs.
local function exceptions(tail, add)
  if not tail:find("Traceback (most recent call last):", 1, true) then return end
  local open, at, last_time = {}, 0, {}
  for line in tail:gmatch("[^\n]*") do
    local pre = forensics.prefix(line)
    if pre then
      local text = pre.text
      local kind, t = forensics.stamp(text)
      if kind then last_time[pre.rank] = { kind, t } end
      pre.time = last_time[pre.rank]
      if text:find("Traceback (most recent call last):", 1, true) then
        open[pre.rank] = true
      elseif open[pre.rank] and not text:find("^%s") then
        local name = text:match("^([%a_][%w_%.]*):") or text:match("^([%a_][%w_%.]*)$")
        if name and (name:find("Error$") or name:find("Exception$") or name:find("Interrupt$")
            or name:find("Exit$") or name:find("Failure$")) then
          add("exception", EXCEPTION_PRIORITY, line, pre, at)
        end
        open[pre.rank] = nil
      end
    end
    at = at + #line + 1
  end
end

-- torchrun's summary of a failed run ends with its "Root Cause (first observed failure):" block:
-- the rank, host and exit code of the process that ended first. root_cause(tail) -> { rank,
-- host, exitcode, line } of the last such block, or nil.
local SIGNALS = { [6] = "signal_ABRT", [9] = "killed", [11] = "segfault", [15] = "signal_TERM" }
function forensics.root_cause(tail)
  local at = nil
  for pos in tail:gmatch("()Root Cause %(first observed failure%):") do at = pos end
  if not at then return nil end
  local out = {}
  local n = 0
  for line in tail:sub(at):gmatch("[^\n]+") do
    n = n + 1
    if n > 12 then break end
    local pre = forensics.prefix(line)
    local text = pre and pre.text or line
    if n > 2 and text:find("^=====") then break end
    local host = text:match("^%s*host%s*:%s*([%w%.%-_]+)")
    local rank = text:match("^%s*rank%s*:%s*(%d+)")
    local code = text:match("^%s*exitcode%s*:%s*(%-?%d+)")
    if host then out.host = host end
    if rank then out.rank, out.line = tonumber(rank), line end
    if code then out.exitcode = tonumber(code) end
  end
  if not out.rank then return nil end
  return out
end

-- ranges({0,1,2,4}) -> "0–2, 4"
function forensics.ranges(list)
  local out, i = {}, 1
  while i <= #list do
    local j = i
    while j < #list and list[j + 1] == list[j] + 1 do j = j + 1 end
    out[#out + 1] = j > i and (list[i] .. "–" .. list[j]) or tostring(list[i])
    i = j + 1
  end
  return table.concat(out, ", ")
end

-- named_node(line) -> the node a Slurm message names ("… ON node3 CANCELLED AT …", "Node
-- failure on node3"), or nil.
local function named_node(line)
  return line:match(" ON ([%w%.%-_]+) CANCELLED AT ") or line:match("Node failure on ([%w%.%-_]+)")
end

-- find(path, parsers, job) -> culprit, cause_chain (both nil when no line of the log that names
-- a cause carries a rank prefix).
function forensics.find(path, parsers, job, tail_bytes)
  local needles, by_needle = reason_parsers(parsers)
  local best = {} -- per rank: per reason, its first entry
  local nodes_of = {} -- per rank: a node a prefix named
  local function add(reason, priority, line, pre, at)
    local kind, t = forensics.stamp(pre.text)
    if not kind and pre.time then kind, t = pre.time[1], pre.time[2] end
    local e = { rank = pre.rank, node_rank = pre.node_rank, node = named_node(line) or pre.node, reason = reason,
                priority = priority, line = line, at = at, kind = kind, t = t }
    e.follower = follows(reason, line)
    if pre.node and not nodes_of[pre.rank] then nodes_of[pre.rank] = pre.node end
    local per = best[pre.rank] or {}
    best[pre.rank] = per
    if not per[reason] or before(e, per[reason]) then per[reason] = e end
  end
  -- Slurm's word that a node was lost or preempted names the node, not a rank.
  local event
  local function node_event(line, at, ps)
    for _, p in ipairs(ps) do
      local v = value_of(p, line)
      if v == "preempted" or v == "node_fail" then
        local node = named_node(line)
        if node and (not event or (p.priority or 0) > event.priority) then
          event = { node = node, reason = v, line = line, at = at, priority = p.priority or 0 }
        end
      end
    end
  end
  if #needles > 0 then
    local hits = scan.ranks(path, needles)
    if not hits then return nil end
    for i, h in ipairs(hits) do
      for _, hit in ipairs(h.lines) do
        local line, at = hit[1], hit[2]
        local pre = forensics.prefix(line)
        if not pre then
          node_event(line, at, by_needle[i])
        else
          local reason, prio
          for _, p in ipairs(by_needle[i]) do
            local v = value_of(p, line)
            local pp = p.priority or 0
            if v ~= nil and (prio == nil or pp > prio) then reason, prio = v, pp end
          end
          if reason ~= nil then add(tostring(reason), prio, line, pre, at) end
        end
      end
    end
  end
  local tail = scan.tail(path, tail_bytes or forensics.TAIL_BYTES) or ""
  -- The tail's offsets, as the scan's: it ends where the file ends.
  local st = fs.stat(path)
  local base = math.max(0, (st and st.size or #tail) - #tail)
  exceptions(tail, function(reason, prio, line, pre, at) add(reason, prio, line, pre, base + at) end)

  -- Each rank's own first cause, then the root among them.
  local per_rank = {}
  for _, reasons in pairs(best) do
    local top
    for _, e in pairs(reasons) do if not top or before(e, top) then top = e end end
    per_rank[#per_rank + 1] = top
  end
  table.sort(per_rank, before)
  local root = per_rank[1]
  local torchrun = forensics.root_cause(tail)
  -- A lost or preempted node takes its ranks with it: what they said after is what followed.
  if event and (not root or root.follower) then
    local chain = forensics.chain(per_rank, 1)
    return { node = event.node, reason = event.reason, line = event.line }, chain
  end
  if not root and torchrun then
    -- No rank prefixes, but torchrun named the process that ended first.
    local code = torchrun.exitcode
    local reason = code and code < 0 and (SIGNALS[-code] or ("signal_" .. -code)) or nil
    return { rank = torchrun.rank, node = torchrun.host, reason = reason or "exit", line = torchrun.line }, {}
  end
  if not root then return nil end
  local node_names = job and job.nodes and require("jobrun.run.provenance").expand_nodes(job.nodes) or nil
  if node_names and #node_names == 0 then node_names = nil end
  local node = root.node or nodes_of[root.rank]
  if not node and node_names and root.node_rank then node = node_names[root.node_rank + 1] end
  if not node and node_names and #node_names == 1 then node = node_names[1] end
  if not node and torchrun and torchrun.rank == root.rank then node = torchrun.host end
  local culprit = { rank = root.rank, node = node, reason = root.reason, line = root.line }

  return culprit, forensics.chain(per_rank, 2)
end

-- chain(per_rank, from) -> what the ranks per_rank[from…] did, one step per reason, in the
-- order each reason first appeared.
function forensics.chain(per_rank, from)
  local steps, order = {}, {}
  for i = from, #per_rank do
    local e = per_rank[i]
    local s = steps[e.reason]
    if not s then
      s = { reason = e.reason, ranks = {}, first = e }
      steps[e.reason] = s
      order[#order + 1] = s
    elseif e.at < s.first.at then
      s.first = e
    end
    s.ranks[#s.ranks + 1] = e.rank
  end
  table.sort(order, function(a, b) return before(a.first, b.first) end)
  local chain = {}
  for _, s in ipairs(order) do
    table.sort(s.ranks)
    chain[#chain + 1] = { reason = s.reason, ranks = s.ranks }
  end
  return chain
end

-- line(culprit, chain, exit_code) -> "rank 3 (node gpu-07): cuda_oom → nccl_timeout on ranks
-- 0–2, 4–7 → exit 1", or nil without a culprit.
function forensics.line(culprit, chain, exit_code)
  if type(culprit) ~= "table" then return nil end
  local rank, node = math.tointeger(culprit.rank), type(culprit.node) == "string" and culprit.node or nil
  if not rank and not node then return nil end
  local parts = {}
  local head = rank and ("rank " .. rank) or ("node " .. node)
  if rank and node then head = head .. " (node " .. node .. ")" end
  parts[1] = head .. ": " .. tostring(culprit.reason)
  for _, step in ipairs(type(chain) == "table" and chain or {}) do
    local ranks = step.ranks or {}
    parts[#parts + 1] = string.format("%s on rank%s %s", tostring(step.reason), #ranks == 1 and "" or "s",
      forensics.ranges(ranks))
  end
  if math.type(exit_code) == "integer" then parts[#parts + 1] = "exit " .. exit_code end
  return table.concat(parts, " → ")
end

-- attach(result, path, parsers, job): result.culprit and result.cause_chain from the log
-- (analysis.analyze's last step); both stay unset when the log cannot tell.
function forensics.attach(result, path, parsers, job)
  -- A job that succeeded with nothing said against it has no culprit: its log is not read again.
  if job and job.status == "SUCCEEDED" and result.termination_reason == nil
      and (result.exit_code == nil or result.exit_code == 0) then
    return result
  end
  local culprit, chain = forensics.find(path, parsers, job)
  -- torchrun's block gives an exit code only: the log's reason, where it has one, says more.
  if culprit and culprit.reason == "exit" and type(result.termination_reason) == "string" then
    culprit.reason = result.termination_reason
  end
  if culprit then result.culprit, result.cause_chain = culprit, chain end
  return result
end

-- ---- cause classes (README "Why a distributed job died") ----------------------------------

-- Each termination reason's class: the infrastructure failed (retry it elsewhere), the program
-- did (a bug, or a resource it asked too much of), or jobrun cannot tell. Reasons not listed,
-- and a failure with no reason and a zero exit, are unknown; a suite's `classes` re-class.
forensics.CLASSES = {
  preempted = "infrastructure", node_fail = "infrastructure", boot_fail = "infrastructure",
  nccl_error = "infrastructure", launch_failed = "infrastructure", lost = "infrastructure",
  damaged_record = "infrastructure", result_unwritable = "infrastructure",
  failed_no_resource = "infrastructure", failed_controller = "infrastructure", failed_prechecks = "infrastructure",
  cuda_oom = "program", oom = "program", cuda_error = "program", segfault = "program", exception = "program",
  setup_failed = "program", failed_setup = "program", exit = "program",
}

-- reason_of(job) -> the reason a failed job's class is read from: its culprit's where the log
-- named an origin (a segfault that NCCL errors on the other ranks followed), else its
-- termination reason.
function forensics.reason_of(job)
  local c = job.culprit
  if type(c) == "table" and type(c.reason) == "string" and not follows(c.reason, tostring(c.line or "")) then
    return c.reason
  end
  if type(job.termination_reason) == "string" then return job.termination_reason end
  return nil
end

-- class(job, classes) -> "infrastructure" | "program" | "unknown", or nil for a job that passed
-- (or has no verdict yet).
function forensics.class(job, classes)
  if job.verdict ~= "fail" then return nil end
  classes = type(classes) == "table" and classes or {}
  local reason = forensics.reason_of(job)
  if job.status == "LAUNCH_FAILED" then reason = reason or "launch_failed"
  elseif job.status == "LOST" then reason = "lost" end
  if reason then
    if classes[reason] then return classes[reason] end
    local base = reason:match("^([%w_]+):") or reason -- "result_unwritable: …"
    if job.status == "LAUNCH_FAILED" and not classes[base] then return "infrastructure" end
    return classes[base] or forensics.CLASSES[base] or "unknown"
  end
  local code = math.tointeger(job.exit_code)
  if code and code ~= 0 then return classes.exit or "program" end
  return "unknown"
end

-- ---- GPU-hours ------------------------------------------------------------------------------

-- gpus_of(job) -> GPUs per node the attempt held: what the backend allocated (job.tres: Slurm's
-- TRES per node, "gres/gpu:2" or "gres/gpu:a100:2", or an allocation over all nodes,
-- "gres/gpu=8"), the SkyPilot task's accelerators, else the suite's `gpus`.
function forensics.gpus_of(job)
  local spec = job.spec or {}
  local nodes = math.max(1, math.tointeger(spec.nodes) or 1)
  if type(job.tres) == "string" then
    local total = job.tres:match("gres/gpu=(%d+)") or job.tres:match("gres/gpu:[^=,]+=(%d+)")
    if total then return tonumber(total) / nodes end
    local per_node = job.tres:match("gres[/:]gpu:(%d+)") or job.tres:match("gres[/:]gpu:[^:,]+:(%d+)")
    if per_node then return tonumber(per_node) end
  end
  local o = spec.options
  local res = type(o) == "table" and type(o.resources) == "table" and o.resources or nil
  if job.backend == "skypilot" and res then
    if type(res.gpus) == "number" then return res.gpus end
    local acc = res.accelerators
    if type(acc) == "string" then return tonumber(acc:match(":(%d+)$")) or 1 end
    if type(acc) == "table" then
      for _, count in pairs(acc) do if type(count) == "number" then return count end end
    end
  end
  if type(spec.gpus) == "number" then return spec.gpus end
  return nil
end

-- gpu_hours(job) -> GPUs per node × nodes × the attempt's duration, in hours (4 decimals), or nil.
function forensics.gpu_hours(job)
  local gpus, d = forensics.gpus_of(job), tonumber(job.duration_s)
  if not gpus or not d then return nil end
  local nodes = math.max(1, math.tointeger(job.spec and job.spec.nodes) or 1)
  return math.floor(gpus * nodes * d / 3600 * 10000 + 0.5) / 10000
end

-- gpu_total(jobs) -> total, on_retries: the GPU-hours of every attempt of every job, and the
-- part spent on attempts after the first (retries and reruns).
function forensics.gpu_total(jobs)
  local total, retries, any = 0, 0, false
  for _, job in ipairs(jobs) do
    local h = tonumber(job.gpu_hours)
    if h then total, any = total + h, true end
    local earlier = type(job.attempts) == "table" and job.attempts or {}
    if h and #earlier > 0 then retries = retries + h end
    for _, a in ipairs(earlier) do
      local ah = tonumber(a.gpu_hours)
      if ah then
        total, any = total + ah, true
        if a ~= earlier[1] then retries = retries + ah end
      end
    end
  end
  if not any then return nil end
  return total, retries
end

-- gpu_line(jobs) -> "3.2 GPU-hours, 0.4 of them on retries", or nil when no job said.
function forensics.gpu_line(jobs)
  local total, retries = forensics.gpu_total(jobs)
  if not total then return nil end
  -- Two significant digits below 10 (0.0042), one decimal up to 100, whole hours above.
  local function f(x)
    if x >= 100 then return string.format("%.0f", x) end
    if x >= 10 then return string.format("%.1f", x) end
    if x == 0 then return "0" end
    return (string.format("%.2g", x):gsub("e%-0?(%d+)$", "e-%1"))
  end
  if retries > 0 then return string.format("%s GPU-hours, %s of them on retries", f(total), f(retries)) end
  return f(total) .. " GPU-hours"
end

-- ---- JSON shapes ----------------------------------------------------------------------------

forensics.CULPRIT_ORDER = { "rank", "node", "reason", "line" }
forensics.STEP_ORDER = { "reason", "ranks" }

function forensics.json_culprit(c)
  if type(c) ~= "table" then return c end
  local json = require "jobrun.base.json"
  return json.record({ rank = c.rank, node = c.node, reason = c.reason, line = c.line }, forensics.CULPRIT_ORDER)
end

function forensics.json_chain(chain)
  if type(chain) ~= "table" then return chain end
  local json = require "jobrun.base.json"
  local out = json.array()
  for i, s in ipairs(chain) do
    local ranks = json.array()
    for j, r in ipairs(type(s.ranks) == "table" and s.ranks or {}) do ranks[j] = r end
    out[i] = json.record({ reason = s.reason, ranks = ranks }, forensics.STEP_ORDER)
  end
  return out
end

-- facts(job) -> { {label, text}… }: what the reports show of a failed job's forensics — the
-- culprit line and the cause class.
function forensics.facts(job)
  local out = {}
  local line = forensics.line(job.culprit, job.cause_chain, math.tointeger(job.exit_code))
  if line then out[#out + 1] = { "culprit", line } end
  if type(job.cause_class) == "string" then out[#out + 1] = { "cause class", job.cause_class } end
  return out
end

return forensics
