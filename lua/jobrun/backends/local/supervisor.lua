-- The local backend's supervisors: a pool of detached slots, each a new jobrun process
-- (`jobrun __supervise`, vfork + exec of /proc/self/exe, which comes straight here, with its work
-- list on stdin) in its own session, that outlives the jobrun that started it. For each job a
-- slot claims (jobs/<job>.status.json), it starts the job's ranks, writes their output to the log,
-- enforces the timeout (TERM to every rank's process group, grace, KILL), restarts after a
-- non-zero exit up to max_restarts, and records the outcome. It waits on pidfds, pipes and a
-- signalfd; it never polls.
--
-- What a slot writes per job costs no new file (issue 14: on a busy ext4, making an inode was
-- most of a trivial job's cost). A slot has a record of its own, jobs/<pool>.slot-<pid>-<n>.json
-- ({ supervisor_pid, supervisor_start, journal }), and an append-only journal,
-- jobs/<pool>.slot-<pid>.journal. A claim is a hard link to the slot's record, made atomically
-- or not at all (so no two slots ever run one job, whichever pool they are of); the job's
-- records (claimed, restarted, its end) are lines of the journal, { key = <job key>, … }, each one
-- write. Where links cannot be made, a job's claim and result are files of their own, as before:
-- jobs/<job>.status.json (written in full, then linked) and jobs/<job>.result.json.
--
-- A full disk must not pass for a lost job (README "How a job's record moves"). A log write that fails is kept as the
-- result's log_error. A result that cannot be written is tried again (journal, then a result
-- file), then written in place over the slot's record, or the job's own claim (both are padded
-- to RECORD_SIZE for this: rewriting them needs no new block), with result_error saying why; if
-- even that fails, the supervisor exits with UNWRITABLE_BASE + errno, which tells the runner that
-- started it the cause.
local process = require "jobrun.c.process"
local fs = require "jobrun.c.fs"
local json = require "jobrun.base.json"

local supervisor = {}

supervisor.RECORD_SIZE = 2048
supervisor.UNWRITABLE_BASE = 64
local RETRY_DELAYS = { 0.1, 0.5, 1 } -- seconds before each new try of the result file
local EIO, EMLINK = 5, 31

-- This slot's own record and journal (made at its first claim): see the top of the file.
local slot = { seq = 0 }

-- A record padded with blanks to RECORD_SIZE (JSON allows them), so that a later record fits
-- in the blocks this one already has.
local function padded(text)
  if #text >= supervisor.RECORD_SIZE then return text end
  return text:sub(1, -2) .. string.rep(" ", supervisor.RECORD_SIZE - #text) .. "\n"
end

-- slot_record() -> path of the slot's record, made if need be; nil when it cannot be written.
local function slot_record(me)
  if slot.record then return slot.record end
  slot.seq = slot.seq + 1
  local path = string.format("%s/%s.slot-%d-%d.json", slot.dir, slot.prefix, me.supervisor_pid, slot.seq)
  local text = padded(json.encode({ state = "RUNNING", supervisor_pid = me.supervisor_pid,
                                    supervisor_start = me.supervisor_start, journal = slot.journal_name }) .. "\n")
  if not fs.write_atomic(path, text, false) then return nil end
  slot.record = path
  return path
end

-- The first log write that failed, kept for the result: the log itself cannot say so.
local function log_failed(ctx, err)
  ctx.log_error = ctx.log_error or ("log write failed: " .. tostring(err))
end

local function note(ctx, log, text)
  local ok, err = fs.append(log, string.format("[jobrun] %s\n", text))
  if not ok then log_failed(ctx, err) end
end

-- Slurm's variables are never set: Lightning and submitit take SLURM_NTASKS for "running under
-- Slurm", and a local job is not.
local function rank_env(spec, base_env, rank, attempt, restart_count)
  local env = {}
  for k, v in pairs(base_env) do env[k] = v end
  for k, v in pairs(spec.env or {}) do env[k] = tostring(v) end
  local n = tostring(spec.nodes)
  local r = tostring(rank)
  env.JOBRUN_NODE_RANK, env.JOBRUN_NUM_NODES = r, n
  -- SkyPilot's, so that a SkyPilot run script works unchanged here: every node is this host.
  env.SKYPILOT_NODE_RANK, env.SKYPILOT_NUM_NODES = r, n
  env.SKYPILOT_NODE_IPS = string.rep("127.0.0.1\n", spec.nodes):sub(1, -2)
  env.JOBRUN_RESTART_COUNT = tostring(restart_count)
  env.JOBRUN_ATTEMPT = tostring(attempt)
  env.JOBRUN_JOB_NAME = spec.name
  env.JOBRUN_RUN_ID = spec.run_id
  return env
end

local function argv_of(command)
  if type(command) == "table" then return command end
  return { "/bin/sh", "-c", command }
end

-- exec_start(pid) -> when the scheduler last ran the process, in ms of its CPU's clock, or nil
-- (no /proc/PID/sched: a kernel without CONFIG_SCHED_DEBUG).
local function exec_start(pid)
  local text = fs.read_record("/proc/" .. pid .. "/sched", 0, 4096)
  return tonumber(text and text:match("se%.exec_start%s*:%s*([%d.]+)"))
end

-- cpu_of(pid) -> the CPU the process last ran on (/proc/PID/stat field 39), or nil.
local function cpu_of(pid)
  local text = fs.read_record("/proc/" .. pid .. "/stat", 0, 4096)
  local rest = text and text:match(".*%)(.*)$") -- (field 2 may hold spaces and ')')
  if not rest then return nil end
  local i = 2
  for field in rest:gmatch("%S+") do
    i = i + 1
    if i == 39 then return tonumber(field) end
  end
  return nil
end

-- exited_ago(pid) -> seconds since an ended (not yet reaped) child last ran, which is when it
-- exited. A slot that was stopped (SIGSTOP, a frozen cgroup, a loaded machine) sees a rank's end
-- late; the kernel's record of the rank's last run gives its real end, so that neither its
-- duration nor its timeout depends on when the slot got round to it. 0 when it cannot be told.
-- Each CPU has its own task clock, which leaves out interrupt and steal time, so two CPUs'
-- readings drift apart (by seconds, on a virtual machine): the slot reads its own clock on the
-- CPU the rank last ran on, moving there for the reading.
local function exited_ago(pid)
  local them, cpu = exec_start(pid), cpu_of(pid)
  if not (them and cpu) then return 0 end
  local before = process.affinity({ cpu })
  if not before then return 0 end
  local me = exec_start("self")
  process.affinity(before)
  if not me or me < them then return 0 end
  return (me - them) / 1000
end

-- One attempt: every rank started, waited for, and its group cleaned up. on_start(pid), if
-- given, is told the first rank's process id once every rank has started.
-- Returns { exit_code, signal, timed_out, cancelled, pid, ended_at }.
local function run_attempt(spec, ctx, attempt, restart_count, on_start)
  local command = spec.commands[math.min(attempt, #spec.commands)]
  local ranks, items = {}, {}
  local piped = spec.nodes > 1
  for rank = 0, spec.nodes - 1 do
    local proc, err = process.spawn({
      argv = argv_of(command),
      env = rank_env(spec, ctx.base_env, rank, attempt, restart_count),
      cwd = spec.cwd,
      stdout = piped and "pipe" or spec.log,
      stderr = "stdout",
      setpgid = true,
    })
    if not proc then
      note(ctx, spec.log, string.format("rank %d could not start: %s", rank, err))
      ranks[#ranks + 1] = { rank = rank, result = { exit_code = 127 }, ended = process.now(),
                            ended_at = process.time() }
    else
      local r = { rank = rank, proc = proc, pgid = proc:pid(), spawned = process.now() }
      if piped then r.stream = proc:stdout() end
      ranks[#ranks + 1] = r
    end
  end
  local first_pid
  for _, r in ipairs(ranks) do
    if r.proc then items[#items + 1] = { kind = "rank", rank = r, handle = r.proc } end
    if r.stream then items[#items + 1] = { kind = "stream", rank = r, handle = r.stream } end
    first_pid = first_pid or r.pgid
  end
  if on_start and first_pid then on_start(first_pid) end
  items[#items + 1] = { kind = "signals", handle = ctx.signals }

  local outcome = { timed_out = false, cancelled = false }
  local first_failure
  local kill_stage, kill_at -- "TERM" then "KILL", at monotonic times

  local function signal_groups(sig)
    for _, r in ipairs(ranks) do
      if r.pgid then process.killpg(r.pgid, sig) end
    end
  end
  local function stop_all(reason)
    if kill_stage == "KILL" or kill_stage == "DONE" then return end
    note(ctx, spec.log, reason)
    signal_groups("TERM")
    kill_stage, kill_at = "KILL", process.now() + spec.grace
  end

  local function rank_ended(item)
    -- When it ended, read before it is reaped (then its /proc entry is gone).
    local ago = exited_ago(item.rank.pgid)
    -- (never before the rank's own start, whatever the clocks say)
    ago = math.min(ago, math.max(0, process.now() - (item.rank.spawned or process.now())))
    local result = item.handle:wait(true)
    item.done = true
    item.rank.result = result
    item.rank.ended, item.rank.ended_at = process.now() - ago, process.time() - ago
    local failed = result.exit_code ~= 0
    if failed and not first_failure then
      first_failure = item.rank
      if spec.nodes > 1 and not kill_stage then
        -- One failed rank ends the others, after the grace period.
        kill_stage, kill_at = "TERM", process.now() + spec.grace
      end
    end
    -- A rank's leftovers (background children) do not outlive it.
    if kill_stage ~= "DONE" then process.killpg(item.rank.pgid, "KILL") end
  end

  local function running()
    for _, item in ipairs(items) do
      if item.kind ~= "signals" and not item.done then return true end
    end
    return false
  end
  -- A rank still running (not merely its output still draining).
  local function rank_running()
    for _, r in ipairs(ranks) do
      if r.proc and not r.result then return true end
    end
    return false
  end

  while running() do
    local now = process.now()
    local wait
    if ctx.deadline and not outcome.timed_out then wait = ctx.deadline - now end
    if kill_at then wait = math.min(wait or math.huge, kill_at - now) end
    local handles = {}
    local live = {}
    for _, item in ipairs(items) do
      if not item.done then handles[#handles + 1] = item.handle; live[#live + 1] = item end
    end
    local ready = process.poll(handles, wait and math.max(0, wait) or nil)
    for _, index in ipairs(ready) do
      local item = live[index]
      if item.kind == "stream" then
        local open, err = item.handle:pump_lines(spec.log, string.format("(rank=%d) ", item.rank.rank))
        if open == nil then
          -- A log that cannot take more: keep draining the pipe (the rank must not block on
          -- it); only a pipe that cannot be read is given up.
          log_failed(ctx, err)
          if err:find("^read:") then item.done = true end
        elseif not open then
          item.done = true
        end
      elseif item.kind == "rank" then
        rank_ended(item)
      elseif item.kind == "signals" then
        for _, sig in ipairs(item.handle:read()) do
          -- A slot serves many jobs: a TERM is for this job only if it is marked cancelled
          -- (a TERM meant for the job before it must not end this one).
          if (sig == "TERM" or sig == "INT" or sig == "HUP") and (not ctx.cancelled or ctx.cancelled()) then
            outcome.cancelled = true
            stop_all("cancelled (SIG" .. sig .. ")")
          end
        end
      end
    end
    now = process.now()
    -- A timeout needs a rank still running at the deadline: ranks that all ended before it
    -- (seen late by a slot that was stopped) are not timed out.
    if ctx.deadline and not outcome.timed_out and now >= ctx.deadline and rank_running() then
      -- Ranks that ended while nobody looked are taken first (their end may be before it).
      local left, handles_left = {}, {}
      for _, item in ipairs(items) do
        if item.kind == "rank" and not item.done then
          left[#left + 1] = item
          handles_left[#handles_left + 1] = item.handle
        end
      end
      for _, index in ipairs(process.poll(handles_left, 0)) do rank_ended(left[index]) end
    end
    if ctx.deadline and not outcome.timed_out and now >= ctx.deadline and rank_running() then
      outcome.timed_out = true
      stop_all(string.format("timeout after %gs: sending TERM to every rank", spec.timeout))
    end
    if kill_at and now >= kill_at then
      if kill_stage == "TERM" then
        stop_all("a rank failed; ending the others")
      elseif kill_stage == "KILL" then
        note(ctx, spec.log, "grace period over: sending KILL")
        signal_groups("KILL")
        kill_stage, kill_at = "DONE", nil
      end
    end
  end
  signal_groups("KILL") -- nothing of the attempt survives it
  -- A rank that ended after the deadline, seen late: it was running at the deadline.
  if ctx.deadline and not outcome.timed_out then
    for _, r in ipairs(ranks) do
      if r.proc and r.ended and r.ended > ctx.deadline then
        outcome.timed_out = true
        note(ctx, spec.log, string.format("timeout after %gs: the job was still running then", spec.timeout))
        break
      end
    end
  end
  -- The attempt ended when its last rank did.
  for _, r in ipairs(ranks) do
    if r.ended_at and (not outcome.ended_at or r.ended_at > outcome.ended_at) then outcome.ended_at = r.ended_at end
  end
  outcome.pid = first_pid

  local decisive = first_failure
  if not decisive then
    for _, r in ipairs(ranks) do if r.result and r.result.exit_code ~= 0 then decisive = r end end
  end
  local result = decisive and decisive.result or { exit_code = 0 }
  outcome.signal = result.signal
  outcome.exit_code = result.exit_code or (result.signal_number and 128 + result.signal_number) or 1
  outcome.failed_rank = decisive and decisive.rank
  for _, r in ipairs(ranks) do if r.proc then r.proc:close() end end
  return outcome
end

-- Files of one job, beside the others in the run's jobs/ directory (flat: every file a job
-- creates costs an inode, and ext4 slows down as recently freed inodes pile up).
function supervisor.paths(jobs_dir, safe_name)
  local base = jobs_dir .. "/" .. safe_name
  return { status = base .. ".status.json", result = base .. ".result.json" }
end

-- run_job(spec, paths, signals, base_env) -> exit status (0, or UNWRITABLE_BASE + errno): claim
-- the job (false when another supervisor already has), run it to its end, record the outcome.
local function run_job(spec, paths, signals, base_env)
  spec.grace = spec.grace or 10
  slot.me = slot.me or { supervisor_pid = process.getpid(), supervisor_start = process.start_time(process.getpid()) }
  local me = slot.me
  local started = process.time()
  local function status(fields)
    local record = { state = "RUNNING", started_at = started, key = paths.journal and paths.key or nil }
    for k, v in pairs(me) do record[k] = v end
    for k, v in pairs(fields) do record[k] = v end
    return json.encode(record) .. "\n"
  end
  local status_path = paths.status
  -- Claim the job: if another supervisor already did (another slot, or a launch that raced a
  -- recovering runner), leave it to that one. A claim that cannot be written at all: say why.
  -- The claim is a link to the slot's record (a new record once a record has as many links as
  -- the file system allows); where there is no link, a file of the job's own.
  local claimed, claim_err, claim_errno
  if slot.dir and paths.key then
    for _ = 1, 2 do
      local record_path = slot_record(me)
      if not record_path then break end
      claimed, claim_err, claim_errno = fs.link(record_path, status_path)
      if claimed ~= nil then paths.journal, paths.record = slot.journal, record_path; break end
      if claim_errno ~= EMLINK then break end
      slot.record = nil
    end
  end
  if claimed == nil then
    local claim = padded(status({ attempt = 1, restart_count = 0 }))
    claimed, claim_err, claim_errno = fs.write_exclusive(status_path, claim)
  end
  if not claimed then
    if claimed == false then return false end
    io.stderr:write("jobrun supervisor: cannot claim the job: ", claim_err, "\n")
    return supervisor.UNWRITABLE_BASE + (claim_errno or EIO)
  end
  -- A journal line saying so (not written on a full disk: the claim says RUNNING all the same).
  -- Never through a link, nor to a file that is not the slot's own (fs.append_record); made
  -- by the slot's first line only: a journal gone since (a job that hid jobs/ under a mount)
  -- is not made again, where the runner, which reads on from where it stopped, would miss it.
  local function journal(fields)
    return fs.append_record(paths.journal, status(fields), not slot.journal_made)
  end
  -- The slot's first line is written before its first job starts, so that the journal has its
  -- first block before a job can fill the disk (its end line then still fits).
  if paths.journal and not slot.journal_made then
    slot.journal_made = journal({ attempt = 1, restart_count = 0 })
  end
  local ctx = {
    base_env = base_env,
    signals = signals,
    deadline = spec.timeout and (process.now() + spec.timeout) or nil,
    cancelled = paths.cancelled,
  }
  -- Cancelled as it was claimed (a kill that found it queued): recorded, never started.
  if paths.cancelled and paths.cancelled() then
    note(ctx, spec.log, "cancelled before it started")
    return supervisor.record(paths, { state = "EXITED", attempt = 1, restart_count = 0,
      ended_at = process.time(), exit_code = 143, cancelled = true }, status)
  end
  local restart_count, attempt = 0, 1
  local outcome
  -- Each attempt, once started, has a line that says the job's own process id (its first
  -- rank's): the job's native id. Not written (full disk): the claim keeps saying attempt 1
  -- until the result is written.
  local function announce(pid)
    if paths.journal then
      journal({ attempt = attempt, restart_count = restart_count, pid = pid })
    elseif attempt > 1 then
      local text = status({ attempt = attempt, restart_count = restart_count, pid = pid })
      fs.write_atomic(status_path, padded(text), false)
    end
  end
  -- setup runs once, on one rank, before the first attempt; if it fails, so does the job.
  if spec.setup then
    local setup_spec = setmetatable({ commands = { spec.setup }, nodes = 1 }, { __index = spec })
    outcome = run_attempt(setup_spec, ctx, 1, 0, announce)
    if outcome.exit_code ~= 0 or outcome.timed_out or outcome.cancelled then
      note(ctx, spec.log, string.format("setup failed with exit code %d", outcome.exit_code))
      outcome.setup_failed = true
    end
  end
  while not (outcome and outcome.setup_failed) do
    outcome = run_attempt(spec, ctx, attempt, restart_count, announce)
    if outcome.timed_out or outcome.cancelled or outcome.exit_code == 0
        or restart_count >= (spec.max_restarts or 0) then
      break
    end
    restart_count = restart_count + 1
    attempt = attempt + 1
    note(ctx, spec.log, string.format("attempt %d exited with code %d; restarting (restart %d of %d)",
      attempt - 1, outcome.exit_code, restart_count, spec.max_restarts))
  end
  -- The job ended when its last rank did, not when this slot got round to recording it.
  local record = {
    state = "EXITED", attempt = attempt, restart_count = restart_count, ended_at = outcome.ended_at or process.time(),
    pid = outcome.pid,
    exit_code = outcome.exit_code, signal = outcome.signal, timed_out = outcome.timed_out,
    cancelled = outcome.cancelled, failed_rank = outcome.failed_rank, setup_failed = outcome.setup_failed,
    log_error = ctx.log_error,
  }
  -- Signals stay blocked until the record is out: a late TERM must not cut it short.
  return supervisor.record(paths, record, status)
end

-- main(): a slot of the local backend's pool. Its work comes on stdin (never on the command
-- line): { work = path of the work list { jobs = [ { spec, secret, status, result, cancel } … ] },
-- secrets = [ { NAME = value } … ], run_cancel }; each job's secret set is merged into its env.
-- It takes the jobs in order, each one it can claim (the claim is a hard link, so
-- no two slots ever run one job), skips those marked cancelled, and ends when none is left or
-- the whole run is cancelled. A pool of max_parallel slots is the run's parallelism, and it
-- keeps starting jobs with no jobrun attached.
function supervisor.main()
  local doc = json.decode(io.stdin:read("a") or "")
  -- The work list is a file (no secrets in it); the secrets came through the pipe.
  local why = ""
  if type(doc) == "table" and type(doc.work) == "string" then
    -- (a big run's list is large: read as a record, refused through a link, bounded at 1 GiB)
    local text, err = fs.read_record(doc.work, 0, 1 << 30)
    local work = json.decode(text or "")
    doc.jobs = type(work) == "table" and work.jobs or nil
    if not text then why = ": " .. tostring(err) end
  end
  if type(doc) ~= "table" or type(doc.jobs) ~= "table" then
    io.stderr:write("jobrun supervisor: bad work list", why, "\n")
    return 3
  end
  for _, item in ipairs(doc.jobs) do
    local hidden = item.secret and type(doc.secrets) == "table" and doc.secrets[item.secret]
    if type(hidden) == "table" then
      item.spec.env = item.spec.env or {}
      for k, v in pairs(hidden) do item.spec.env[k] = v end
    end
  end
  -- Where this slot's record and journal go: beside the jobs' claims (jobs/ of the run).
  local first = doc.jobs[1]
  slot.dir = type(first) == "table" and type(first.status) == "string" and first.status:match("^(.*)/[^/]*$") or nil
  if slot.dir then
    slot.prefix = type(doc.work) == "string" and doc.work:match("([^/]*)%.work%.json$") or "pool"
    slot.journal_name = string.format("%s.slot-%d.journal", slot.prefix, process.getpid())
    slot.journal = slot.dir .. "/" .. slot.journal_name
  end
  local signals = assert(process.signals({ "TERM", "INT", "HUP" }))
  local base_env = process.environ()
  local function run_cancelled() return doc.run_cancel and fs.stat(doc.run_cancel) ~= nil end
  local code = 0
  for _, item in ipairs(doc.jobs) do
    if run_cancelled() then break end
    local function cancelled()
      return run_cancelled() or (item.cancel and fs.stat(item.cancel) ~= nil) or false
    end
    if not fs.stat(item.status) and not cancelled() then
      local paths = { status = item.status, result = item.result, cancelled = cancelled,
                      key = item.status:match("([^/]*)%.status%.json$") }
      local rc = run_job(item.spec, paths, signals, base_env)
      if rc and rc ~= 0 then code = rc end
      -- Signals that were for a job now over (its cancel arrived as it ended) are spent.
      signals:read()
    end
  end
  signals:close()
  return code
end

-- record(paths, record, status) -> the supervisor's exit status: 0 once the outcome is on
-- disk: a line of the slot's journal (paths.journal: the job was claimed by a link), or the
-- job's result file (tried again after RETRY_DELAYS: space may come back), or else in place
-- over the claim — the slot's record the claim links to (paths.record), which then names the
-- job (key), and later claims are links to a new one; UNWRITABLE_BASE + errno when none of
-- them could be written.
-- Atomic, not durable (no fsync): an fsync per job stalls every other file creation (ext4's
-- journal), and what a crash of the machine loses is what it loses of the jobs' logs.
function supervisor.record(paths, record, status)
  local ok, err, errno
  for try = 0, #RETRY_DELAYS do
    if try > 0 then process.sleep(RETRY_DELAYS[try]) end
    if paths.journal and fs.append_record(paths.journal, status(record), not slot.journal_made) then return 0 end
    ok, err, errno = fs.write_atomic(paths.result, status(record), false)
    if ok then return 0 end
  end
  errno = errno or EIO
  record.result_error = "cannot write " .. tostring(err)
  record.result_cause = fs.strerror(errno)
  local over = paths.status
  if paths.record then over, record.journal = paths.record, slot.journal_name end
  local text = status(record)
  if #text > supervisor.RECORD_SIZE then -- long paths: keep within the claim's blocks
    record.log_error, record.result_error = nil, "cannot write the result file: " .. record.result_cause
    text = status(record)
  end
  if fs.write_in_place(over, padded(text)) then
    if over == slot.record then slot.record = nil end -- it holds this job's end now: later claims get a new one
    return 0
  end
  io.stderr:write("jobrun supervisor: ", record.result_error, "\n")
  return supervisor.UNWRITABLE_BASE + errno
end

return supervisor
