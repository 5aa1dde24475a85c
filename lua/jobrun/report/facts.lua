-- The failure record (README "Failures"): what every report says about one job — its
-- mismatches, its facts (status, exit code, restarts, termination, the backend's status), its
-- errors (launch, record, result, log, a parsed exception) and its log's last lines — made here
-- and only here; the text summary, --logs, HTML, Markdown and JUnit only render it, so that they
-- cannot disagree about a job.
local scan = require "jobrun.c.scan"
local fs = require "jobrun.c.fs"
local json = require "jobrun.base.json"

local facts = {}

-- A log line is cut after this many bytes ("… [cut: N more bytes]"), and at most this much of a
-- log's end is read, whatever its size (a log with no line break shows the end it has).
facts.LINE_WIDTH = 1000
facts.WINDOW = 1 << 20

-- The errors, in order: their key in a job record (or its fields) and their label.
local ERRORS = { { "launch_error", "launch error" }, { "record_error", "record error" },
                 { "result_error", "result error" }, { "log_error", "log error" }, { "exception", "exception" } }
-- The facts after status, in order: their key in a job record and their label.
local FACTS = { { "exit_code", "exit code" }, { "restart_count", "restarts" },
                { "termination_reason", "termination" }, { "native_status", "backend" } }

local NULL = json.null
local function known(v) return v ~= nil and v ~= NULL end

local TAIL = { width = facts.LINE_WIDTH, window = facts.WINDOW, sgr = true }

-- tail(job, run_dir, n) -> lines, cut, err: the log's last n lines as a terminal shows them (a
-- line is what follows its last \r; blank lines left out; escape sequences but SGR colours
-- removed; see scan.tail_lines), oldest first; cut when the window ended inside the first line;
-- err when a log that is there cannot be read (a FIFO, a device: never read). Each report asks
-- for the lines it shows: the last k of n lines are the same as the k lines asked for alone.
function facts.tail(job, run_dir, n)
  if not (job.log_path_rel and run_dir) or n <= 0 then return {}, false end
  local path = run_dir .. "/" .. job.log_path_rel
  local lines, info = scan.tail_lines(path, n, TAIL)
  if lines then return lines, info.cut end
  if fs.stat(path) then return {}, false, info end -- there, but not to be read
  return {}, false
end

-- plain(lines) -> the lines without their colours.
function facts.plain(lines)
  local out = {}
  for i, l in ipairs(lines) do out[i] = scan.strip(l) end
  return out
end

-- of(job, run_dir, n) -> the record:
--   name, status, mismatches = { text… },
--   facts = { {key, label, value}… }     status, then exit_code, restart_count, termination_reason,
--                                          native_status (when it says more than status), commits, the
--                                          Slurm job id, a scheduler's nodes and pending reason, if known
--   causes = { {key, label, text}… }      the culprit line, the cause class, and the retries (no label)
--   errors = { {key, label, text}… }      launch_error, record_error, result_error, log_error,
--                                          exception, and "log" when the log cannot be read
--   log_path, tail = { line… }            the last n log lines, SGR colours kept
--   plain = { line… }                     the same lines without colours; tail_cut (see facts.tail)
function facts.of(job, run_dir, n)
  local r = { name = job.name, status = job.status, mismatches = job.mismatches or {}, log_path = job.log_path }
  local list = { { key = "status", label = "status", value = job.status } }
  for i = 1, #FACTS do
    local key = FACTS[i][1]
    local v = job[key]
    if known(v) and (key ~= "native_status" or v ~= job.status) then
      list[#list + 1] = { key = key, label = FACTS[i][2], value = v }
    end
  end
  -- Attempts at several commits (a rerun after a fix): the commits, oldest first.
  local trail = require("jobrun.run.provenance").trail(job)
  if #trail > 1 then list[#list + 1] = { key = "commits", label = "commits", value = table.concat(trail, "→") } end
  -- Slurm's job id, for sacct -j / scontrol show job; where a scheduler ran it, or why it waited.
  if job.backend == "slurm" and type(job.native_id) == "string" then
    list[#list + 1] = { key = "native_id", label = "slurm job", value = job.native_id }
  end
  if job.backend ~= "local" and type(job.nodes) == "string" then
    list[#list + 1] = { key = "nodes", label = "nodes", value = job.nodes }
  end
  if type(job.pending_reason) == "string" then
    list[#list + 1] = { key = "pending_reason", label = "pending", value = job.pending_reason }
  end
  r.facts = list
  -- Why it died (the culprit rank and node, the cause class) and what was retried.
  local causes = {}
  for _, f in ipairs(require("jobrun.judge.forensics").facts(job)) do
    causes[#causes + 1] = { key = f[1]:gsub(" ", "_"), label = f[1], text = f[2] }
  end
  local retried = require("jobrun.run.retry").text(job)
  if retried then causes[#causes + 1] = { key = "retries", text = retried } end
  r.causes = causes
  local errors = {}
  local fields = type(job.fields) == "table" and job.fields or {}
  for i = 1, #ERRORS do
    local key = ERRORS[i][1]
    local v = fields[key] or job[key]
    if type(v) == "string" then errors[#errors + 1] = { key = key, label = ERRORS[i][2], text = v } end
  end
  r.errors = errors
  local err
  r.tail, r.tail_cut, err = facts.tail(job, run_dir, n or 0)
  if err then r.errors[#r.errors + 1] = { key = "log_read", label = "log", text = err } end
  r.plain = facts.plain(r.tail)
  return r
end

return facts
