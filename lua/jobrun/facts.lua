-- The failure record (README "Failures"): what every report says about one job — its
-- mismatches, its facts (status, exit code, restarts, termination, the backend's status), its
-- errors (launch, record, result, log, a parsed exception) and its log's last lines — made here,
-- once; the text summary, --logs, HTML, Markdown and JUnit only render it, so that they cannot
-- disagree about a job.
local scan = require "jobrun.c.scan"
local fs = require "jobrun.c.fs"
local json = require "jobrun.json"

local facts = {}

-- A log line is cut after this many bytes ("… [cut: N more bytes]"), and at most this much of a
-- log's end is read, whatever its size (a log with no line break shows the end it has).
facts.LINE_WIDTH = 1000
facts.WINDOW = 1 << 20

local ERRORS = { "launch_error", "record_error", "result_error", "log_error", "exception" }

local function known(v) return v ~= nil and v ~= json.null end

-- Tails read, per job table: read again only for more lines or a log that changed.
local cache = setmetatable({}, { __mode = "k" })

-- tail(job, run_dir, n) -> lines, cut, err: the log's last n lines as a terminal shows them (a
-- line is what follows its last \r; blank lines left out; escape sequences but SGR colours
-- removed; see scan.tail_lines), oldest first; cut when the window ended inside the first line;
-- err when a log that is there cannot be read (a FIFO, a device: never read).
function facts.tail(job, run_dir, n)
  if not (job.log_path_rel and run_dir) or n <= 0 then return {}, false end
  local path = run_dir .. "/" .. job.log_path_rel
  local st = fs.stat(path)
  local c = cache[job]
  if not (c and c.path == path and st and c.size == st.size and c.mtime == st.mtime and (c.all or c.n >= n)) then
    local lines, info = scan.tail_lines(path, n, { width = facts.LINE_WIDTH, window = facts.WINDOW, sgr = true })
    c = { path = path, size = st and st.size, mtime = st and st.mtime, n = n, lines = lines or {},
          all = not lines or #lines < n, cut = lines and info.cut or false }
    if not lines and st then c.err = info end
    cache[job] = c
  end
  local out = {}
  for i = math.max(1, #c.lines - n + 1), #c.lines do out[#out + 1] = c.lines[i] end
  return out, c.cut and #out == #c.lines, c.err
end

-- plain(lines) -> the lines without their colours.
function facts.plain(lines)
  local out = {}
  for i, l in ipairs(lines) do out[i] = scan.strip(l) end
  return out
end

-- of(job, run_dir, n) -> the record:
--   name, status, mismatches = { text… },
--   facts = { {key, label, value}… }     status, then exit_code, restart_count, termination_reason
--                                          and native_status (when it says more than status), if known
--   errors = { {key, label, text}… }      launch_error, record_error, result_error, log_error,
--                                          exception, and "log" when the log cannot be read
--   log_path, tail = { line… }            the last n log lines, SGR colours kept
--   plain = { line… }                     the same lines without colours; tail_cut (see facts.tail)
function facts.of(job, run_dir, n)
  local r = { name = job.name, status = job.status, mismatches = job.mismatches or {}, log_path = job.log_path }
  r.facts = { { key = "status", label = "status", value = job.status } }
  local function add(key, label, v)
    if known(v) then r.facts[#r.facts + 1] = { key = key, label = label, value = v } end
  end
  add("exit_code", "exit code", job.exit_code)
  add("restart_count", "restarts", job.restart_count)
  add("termination_reason", "termination", job.termination_reason)
  if job.native_status ~= job.status then add("native_status", "backend", job.native_status) end
  r.errors = {}
  local fields = type(job.fields) == "table" and job.fields or {}
  for _, k in ipairs(ERRORS) do
    local v = fields[k] or job[k]
    if type(v) == "string" then r.errors[#r.errors + 1] = { key = k, label = (k:gsub("_", " ")), text = v } end
  end
  local err
  r.tail, r.tail_cut, err = facts.tail(job, run_dir, n or 0)
  if err then r.errors[#r.errors + 1] = { key = "log_read", label = "log", text = err } end
  r.plain = facts.plain(r.tail)
  return r
end

-- fact(record, key) -> that fact's value, or nil.
function facts.fact(record, key)
  for _, f in ipairs(record.facts) do if f.key == key then return f.value end end
  return nil
end

return facts
