-- The local backend: a pool of detached slot supervisors (jobrun.backends.local.supervisor), max_parallel of
-- them (one per job without a limit), that work through the jobs handed to them: each claims a
-- job in jobs/<job>.status.json (a link to the slot's record), runs it, records its end in the
-- slot's journal (jobs/<pool>.slot-<pid>.journal; where links cannot be made, in
-- jobs/<job>.result.json), and takes the next. Jobs handed to a pool are queued (PENDING,
-- native_id "pool") until a slot claims them; the pool keeps starting them with no jobrun
-- attached. Polling reads the jobs' files and the slots' journals (from where it last read);
-- waiting is an inotify watch on jobs/ (a claim appearing, a journal growing); a slot's identity
-- is its pid plus its start time, so a reused pid is never taken for a live one. What it reads
-- of a job is an observation (jobrun.run.status), which the run applies; the job's own bookkeeping
-- (its slot, the slot's start time, its pool, how often a pool handed it back) is in its notes.
local process = require "jobrun.c.process"
local fs = require "jobrun.c.fs"
local json = require "jobrun.base.json"
local state = require "jobrun.run.store"
local supervisor = require "jobrun.backends.local.supervisor"
local common = require "jobrun.backends.common"
local secrets = require "jobrun.base.secrets"
local jobfile = require "jobrun.backends.local.jobfile"
local verdict = require "jobrun.judge.verdict"
local status = require "jobrun.run.status"

local NONE = status.NONE

local backend = { name = "local", observes = true }
-- Jobs run in the launching work tree (the git guard says what a dirty tree means then).
backend.work_tree = true

local DEFAULT_GRACE = 10

local function paths(ctx, job)
  return supervisor.paths(ctx.run_dir .. "/jobs", state.job_key(job))
end

-- read_json(path) -> record | nil (no file) | false, why (a file that is not a valid record:
-- damaged, too big, or not a regular file of the runner's — a link, a device, a FIFO).
local function read_json(path)
  return jobfile.read(path)
end

-- store(ctx): the run's cancel intent (jobrun.run.store.store), read only.
local function store(ctx) return ctx.store or state.store(ctx.run_dir) end

-- Reading a job and what this call has observed of it so far (o): the observed value first.
local cur = status.seen
local noted = status.noted
local function note(o, k, v)
  o.notes = o.notes or {}
  if v == nil then v = NONE end
  o.notes[k] = v
end
local none = status.or_none

-- damaged(o, why): the job's own file cannot be read: it ends LOST, saying which and why.
local function damaged(o, why)
  o.status, o.native_status = "LOST", "DAMAGED_RECORD"
  o.termination = "damaged_record"
  o.record_error = none(why)
end

-- The slot that runs a job: its slot note (its pid; the native id is the job's own process
-- id), or the native id of a record written before there was a slot field.
local function slot_of(job, o) return noted(job, o, "slot") or cur(job, o, "native_id") end

-- alive(job, o): the supervisor recorded for the job is still that same process.
local function supervisor_alive(job, o)
  local pid = tonumber(slot_of(job, o))
  local start = noted(job, o, "local_start_time")
  if not pid or not start then return false end
  return process.start_time(pid) == start
end

backend.pool = true

-- The work of one job for a slot: its spec and its files. The environment's secrets are taken
-- out (`secret`: an index into the pool's table of distinct secret sets), so that the work list
-- can be a file (a big run's does not fit a pipe) and no secret ever touches the disk.
local function work_item(ctx, job, secret_sets, secret_index)
  local spec = job.spec
  local opts = spec.options or {}
  local p = paths(ctx, job)
  local env, hidden = {}, {}
  for k, v in pairs(ctx.secret_env[job.name] or spec.env or {}) do
    if secrets.is_secret(k, v) then
      hidden[k] = secrets.reveal(tostring(v))
    else
      env[k] = v
    end
  end
  -- The job's own metrics, as JSON lines (README "Metrics"); every rank appends to the same file.
  env.JOBRUN_METRICS = require("jobrun.judge.metrics").file_of(ctx.run_dir .. "/" .. job.log_path_rel)
  local ref
  if next(hidden) then
    local sig = json.encode(json.object(hidden))
    ref = secret_index[sig]
    if not ref then
      secret_sets[#secret_sets + 1] = hidden
      ref = #secret_sets
      secret_index[sig] = ref
    end
  end
  return {
    spec = {
      name = job.name, run_id = ctx.run_id, commands = spec.commands, setup = spec.setup, env = env,
      nodes = spec.nodes, timeout = spec.timeout, max_restarts = spec.max_restarts,
      grace = opts.grace and tonumber(opts.grace) or DEFAULT_GRACE, cwd = ctx.cwd,
      log = ctx.run_dir .. "/" .. job.log_path_rel,
    },
    secret = ref,
    status = p.status, result = p.result, cancel = store(ctx).marker_path(job),
  }
end

-- submit_many(ctx, jobs) -> { [job] = observation }: hand the jobs to a new pool of
-- min(#jobs, max_parallel) slots, each a new jobrun process (vfork + exec of /proc/self/exe,
-- straight to jobrun.backends.local.supervisor) in its own session. The work list (no secrets) is
-- jobs/pool-*.work.json; the secrets reach the slots through a pipe on their stdin. The pool is
-- recorded in jobs/pool-*.json (its slots' identities and its jobs' keys) for later processes.
-- (A job withdrawn from an earlier pool is free to run again: the run has removed its marker.)
function backend.submit_many(ctx, jobs)
  local list, secret_sets, secret_index = {}, {}, {}
  local out = {}
  local function fail(why)
    for _, job in ipairs(jobs) do out[job] = { launch_error = why } end
    return out
  end
  for i, job in ipairs(jobs) do
    list[i] = work_item(ctx, job, secret_sets, secret_index)
  end
  local slots = math.min(#jobs, ctx.max_parallel or #jobs)
  ctx.pool_seq = (ctx.pool_seq or 0) + 1
  local name = string.format("pool-%d-%d", process.getpid(), ctx.pool_seq)
  local work_path = ctx.run_dir .. "/jobs/" .. name .. ".work.json"
  local wok, werr0 = fs.write_atomic(work_path, json.encode({ jobs = list }), false)
  if not wok then return fail("cannot write the work list: " .. tostring(werr0)) end
  local input = json.encode({ work = work_path, secrets = json.array(secret_sets),
                              run_cancel = store(ctx).marker_path() })
  local record = { slots = {}, jobs = {} }
  for i, job in ipairs(jobs) do record.jobs[i] = state.job_key(job) end
  local err
  for i = 1, slots do
    local proc, why = process.spawn({
      argv = { "/proc/self/exe", "__supervise" }, input = input,
      stdout = ctx.run_dir .. "/jobs/" .. name .. ".log", stderr = "stdout", setsid = true,
    })
    if not proc then err = why; break end
    record.slots[i] = { pid = proc:pid(), start = process.start_time(proc:pid()) }
    ctx.slot_procs = ctx.slot_procs or {}
    ctx.slot_procs[#ctx.slot_procs + 1] = proc
  end
  if #record.slots == 0 then return fail("cannot start a supervisor: " .. tostring(err)) end
  local ok, werr = fs.write_atomic(ctx.run_dir .. "/jobs/" .. name .. ".json", json.encode(record), false)
  if not ok then io.stderr:write("jobrun: cannot record the pool: ", tostring(werr), "\n") end
  ctx.pools = ctx.pools or {}
  ctx.pools[name] = record
  -- A local job runs on this machine.
  local here = require("jobrun.run.provenance").hostname()
  for _, job in ipairs(jobs) do
    out[job] = { native_id = "pool", status = "PENDING", native_status = "QUEUED", notes = { pool = name },
                 nodes = job.nodes == nil and { here } or nil }
  end
  return out
end

-- pool_alive(ctx, name) -> true while any slot of the pool runs.
local function pool_alive(ctx, name)
  ctx.pools = ctx.pools or {}
  local record = ctx.pools[name]
  if not record then
    record = json.decode(jobfile.text(ctx.run_dir .. "/jobs/" .. tostring(name) .. ".json") or "")
    if type(record) ~= "table" then record = { slots = {} } end
    ctx.pools[name] = record
  end
  for _, slot in ipairs(type(record.slots) == "table" and record.slots or {}) do
    if math.type(slot.pid) == "integer" and process.start_time(slot.pid) == slot.start then return true end
  end
  return false
end

-- slots_unwritable(ctx) -> the cause, when a slot we started exited saying that it could
-- write neither a job's result nor its claim.
local function slots_unwritable(ctx, pid)
  for _, proc in ipairs(ctx.slot_procs or {}) do
    local ended = (not pid or tostring(proc:pid()) == pid) and proc:wait(false)
    local errno = ended and ended.exit_code and ended.exit_code - supervisor.UNWRITABLE_BASE
    if errno and errno > 0 and errno < 128 then return fs.strerror(errno) end
  end
  return nil
end

-- observe(job, o, st): what a slot's record (a claim, a journal line, a result) says of the job.
local function observe(job, o, st)
  o.restart_count = none(st.restart_count)
  o.attempt = none(st.attempt)
  o.started_at = none(cur(job, o, "started_at") or state.iso(st.started_at))
  if st.state ~= "EXITED" then
    o.status, o.native_status = "RUNNING", "RUNNING"
    return
  end
  o.ended_at = none(state.iso(st.ended_at))
  o.duration_s = none(st.started_at and st.ended_at and
    math.floor((st.ended_at - st.started_at) * 10 + 0.5) / 10)
  o.exit_code = none(st.exit_code)
  o.signal = none(st.signal)
  if st.cancelled then
    o.status, o.native_status = "CANCELLED", "CANCELLED"
  elseif st.timed_out then
    o.status, o.native_status = "TIMEOUT", "TIMEOUT"
  elseif st.setup_failed then
    o.status, o.native_status, o.termination = "FAILED", "SETUP_FAILED", "setup_failed"
  elseif st.exit_code == 0 then
    o.status, o.native_status = "SUCCEEDED", "EXITED"
  else
    o.status, o.native_status = "FAILED", st.signal and ("SIG" .. st.signal) or "EXITED"
  end
  -- The disk let the record out only over the claim: the outcome is real, and so is the fault.
  o.log_error, o.result_error = none(st.log_error), none(st.result_error)
  if st.result_error then o.termination = "result_unwritable: " .. (st.result_cause or st.result_error) end
end

-- journal(ctx, path) -> what a slot's journal says so far { by_key = { [key] = record | false },
-- why = { [key] = what is wrong }, bad = a line that names no job }, and the keys of the lines
-- read now. Read on from where the last look ended; a line is taken once it is whole.
local function journal(ctx, path)
  ctx.journals = ctx.journals or {}
  local j = ctx.journals[path]
  if not j then
    j = { offset = 0, by_key = {}, why = {} }
    ctx.journals[path] = j
  end
  local fresh = {}
  local text, more = jobfile.text(path, j.offset)
  if text == false then
    -- Not the slot's own regular file (a link, a device…): nothing in it is taken.
    j.bad = j.bad or more
    return j, fresh
  end
  if text and more and not text:find("\n", 1, true) then
    j.bad = j.bad or string.format("%s: a line longer than %d bytes", path, fs.RECORD_MAX)
    return j, fresh
  end
  if text and text ~= "" then
    local consumed = 0
    for line, stop in text:gmatch("([^\n]*)\n()") do
      consumed = stop - 1
      local value = json.decode(line)
      local key = type(value) == "table" and value.key
      if type(key) == "string" then
        local rec, why = jobfile.check(value)
        j.by_key[key], j.why[key] = rec or false, not rec and (path .. ": " .. why) or nil
        fresh[#fresh + 1] = key
      elseif line:find("%S") then
        j.bad = j.bad or (path .. ": a line that is not a job's record")
      end
    end
    j.offset = j.offset + consumed
  end
  return j, fresh
end

-- journal_line(ctx, key, pool) -> the job's latest line in a slot's journal (of its pool, when
-- known), or false, why (a damaged line), and that journal's path: for a claim that cannot be
-- read, whose job's own lines may still say how it ended.
local function journal_line(ctx, key, pool)
  local dir = ctx.run_dir .. "/jobs"
  for _, f in ipairs(fs.list(dir) or {}) do
    local prefix = f:match("^(.-)%.slot%-%d+%.journal$")
    if prefix and (not pool or pool == prefix) then
      local path = dir .. "/" .. f
      local j = journal(ctx, path)
      local rec = j.by_key[key]
      if rec ~= nil then return rec, rec == false and j.why[key] or path end
    end
  end
  return nil
end

-- read_end(ctx, p, key [, pool]) -> the record of the job's end, or nil and the claim (and what
-- is wrong with the claim, or with the slot's journal). The record is a line of the slot's
-- journal, or the result file, or written in place over the claim when neither could be. A claim
-- that cannot be read (written over through its link, replaced by a link…) gives way to the
-- job's lines in its slot's journal; with none, it is false and what is wrong with it.
local function read_end(ctx, p, key, pool)
  -- The common case, with no file read: the job's end is a line of its slot's journal, which
  -- the wait has just read on (an end line is final for the attempt that the key names).
  local known = ctx.journal_of and ctx.journal_of[key]
  local line = known and ctx.journals[known].by_key[key]
  if line and line.state == "EXITED" then return line end
  local result, why = read_json(p.result)
  if result then return result end
  if result == false then return false, why end
  local claim, cwhy = read_json(p.status)
  if claim and claim.journal then
    -- A link to the slot's record: the job's own records are in the slot's journal.
    if claim.key == key and claim.state == "EXITED" then return claim end
    if claim.journal:find("/", 1, true) or claim.journal:sub(1, 1) == "." then
      return false, p.status .. ": journal is not a file name beside it"
    end
    local path = p.status:match("^(.*)/") .. "/" .. claim.journal
    local j = journal(ctx, path)
    ctx.journal_of = ctx.journal_of or {}
    ctx.journal_of[key] = path
    local rec = j.by_key[key]
    if rec == false then return false, j.why[key] end
    if rec and rec.state == "EXITED" then return rec end
    -- Claimed, its first line not (yet) written: attempt 1 of the slot's.
    return nil, rec or { state = "RUNNING", attempt = 1, restart_count = 0,
      supervisor_pid = claim.supervisor_pid, supervisor_start = claim.supervisor_start }, nil, j.bad
  end
  if claim and claim.state == "EXITED" then return claim end
  if claim == false then
    local own, where = journal_line(ctx, key, pool ~= "pool" and pool or nil)
    if own == false then return false, where end
    if own then
      ctx.journal_of = ctx.journal_of or {}
      ctx.journal_of[key] = where
      if own.state == "EXITED" then return own end
      return nil, own, cwhy
    end
  end
  return nil, claim, cwhy
end

-- The supervisor that claimed the job is the job's slot, whoever launched it; the native id is
-- the job's own process id once a record says it (until then, its slot's).
local function take_claim(job, o, claim)
  local slot = tostring(claim.supervisor_pid)
  if slot_of(job, o) ~= slot or cur(job, o, "native_id") == "pool" then o.native_id = slot end
  note(o, "slot", slot)
  note(o, "local_start_time", claim.supervisor_start)
  if claim.pid then o.native_id = tostring(claim.pid) end
  if cur(job, o, "submitted_at") == nil then o.submitted_at = state.iso(claim.started_at) end
end

-- How many times a job may be handed back by a pool that ended before starting it, before it is
-- taken for lost (slots that die at once, every time, must not be started without end).
local MAX_POOL_RETURNS = 3

-- requeue(ctx, job): a job that no slot of its pool ever claimed, the pool gone (its slots killed):
-- it never started, so it is pending again, and the next driver (`wait`, or the one `check`
-- starts) hands it to a new pool.
local function requeue(ctx, job, o)
  local returns = (job.pool_returns or 0) + 1
  note(o, "pool_returns", returns)
  if returns > MAX_POOL_RETURNS then
    o.status, o.native_status = "LOST", "POOL_GONE"
    o.record_error = string.format("its pool of slots ended %d times before starting it", returns)
    return
  end
  -- Handed back (a withdraw: jobrun.run.status).
  o.native_id, o.status, o.native_status = NONE, "PENDING", NONE
  note(o, "pool", NONE)
  ctx.pool_returned = (ctx.pool_returned or 0) + 1
end

-- adopt(ctx, jobs) -> { [job] = observation }: pending jobs that a runner launched but died
-- before saving: their supervisor's claim says who runs them, so they are never launched twice.
function backend.adopt(ctx, jobs)
  local out = {}
  local pool_of -- job key -> the live pool it was handed to (made at the first job that needs it)
  for _, job in ipairs(jobs) do
    if not job.native_id then
      local claim = read_json(paths(ctx, job).status)
      if claim then -- a damaged claim leaves the job pending: its launch is tried (and refused) again
        local o = {}
        take_claim(job, o, claim)
        o.status = "RUNNING"
        out[job] = o
      else
        -- Handed to a pool that is still at work: queued, not to be launched again.
        if not pool_of then
          pool_of = {}
          for _, f in ipairs(fs.list(ctx.run_dir .. "/jobs") or {}) do
            local name = f:match("^(pool%-[%d%-]+)%.json$")
            if name and pool_alive(ctx, name) then
              for _, k in ipairs(ctx.pools[name].jobs or {}) do pool_of[k] = name end
            end
          end
        end
        local name = pool_of[state.job_key(job)]
        if name then out[job] = { native_id = "pool", native_status = "QUEUED", notes = { pool = name } } end
      end
    end
  end
  return out
end

-- poll(ctx, jobs) -> { [job] = observation }: every given job read from its files — one pass,
-- no process spawned.
function backend.poll(ctx, jobs)
  local out = {}
  for _, job in ipairs(jobs) do
    -- Not launched: nothing to read.
    if not job.native_id then goto next_job end
    local o = {}
    local p = paths(ctx, job)
    local key = state.job_key(job)
    local result, claim, cwhy = read_end(ctx, p, key, job.pool)
    if result then
      -- Claimed and ended between two looks: the end names the slot that ran it and the job's pid.
      take_claim(job, o, result)
      observe(job, o, result)
    elseif result == false then
      damaged(o, claim)
    elseif claim == false and job.native_id == "pool" then
      -- Claimed (its claim is there) but the claim cannot be read, and no journal of its pool
      -- has a line of it: damaged, once no slot of the pool can still write its end.
      if not pool_alive(ctx, job.pool) then
        local again, _, why = read_end(ctx, p, key, job.pool)
        if again then take_claim(job, o, again); observe(job, o, again) else damaged(o, why or cwhy) end
      end
    elseif not claim and job.native_id == "pool" then
      -- Queued: a slot has not claimed it (yet).
      local why = store(ctx).cancel_reason(job)
      if why then
        o.status, o.native_status = "CANCELLED", "NOT_STARTED"
        o.termination = why:match("^(%S+)") or "cancelled"
      elseif not pool_alive(ctx, job.pool) then
        local bad
        result, claim, bad = read_end(ctx, p, key, job.pool) -- it may have been claimed as the pool ended
        if result then
          take_claim(job, o, result)
          observe(job, o, result)
        elseif claim == false then
          damaged(o, bad)
          claim = nil
        elseif not claim then
          local cause = slots_unwritable(ctx)
          if cause then
            o.status, o.native_status = "LOST", "RESULT_UNWRITABLE"
            o.termination = "result_unwritable: " .. cause
            o.result_error = "the supervisor could write neither the result nor the claim: " .. cause
          else
            requeue(ctx, job, o)
          end
        end
      end
      if claim then take_claim(job, o, claim); observe(job, o, claim) end
    else
      if claim then take_claim(job, o, claim); observe(job, o, claim) end
      if not supervisor_alive(job, o) then
        -- The slot writes the result before it moves on; gone without one, the job is lost.
        local again, claim_why, journal_why
        result, again, claim_why, journal_why = read_end(ctx, p, key, job.pool)
        claim = claim or again
        local cause = not result and slots_unwritable(ctx, slot_of(job, o))
        if result then
          take_claim(job, o, result)
          observe(job, o, result)
        elseif result == false then
          damaged(o, again)
        elseif claim_why or journal_why then
          -- (a journal line that names no job: this one's end, likely, as its slot is gone)
          damaged(o, claim_why or journal_why)
        elseif cause then
          o.status, o.native_status = "LOST", "RESULT_UNWRITABLE"
          o.termination = "result_unwritable: " .. cause
          o.result_error = "the supervisor could write neither the result nor the claim: " .. cause
        elseif not claim or tostring(claim.supervisor_pid) == slot_of(job, o) then
          o.status, o.native_status = "LOST", "SUPERVISOR_GONE"
        end
      end
    end
    if next(o) then out[job] = o end
    ::next_job::
  end
  for _, proc in ipairs(ctx.slot_procs or {}) do proc:wait(false) end -- reap our slots that ended
  return out
end

-- waitables(ctx, jobs) -> { { handle, covers, changed, ready } }: one inotify watch on jobs/,
-- ready when a claim or a result appears or a slot's journal grows; changed() names the jobs
-- whose files (or journal lines) did. A new watch
-- is ready at once (what happened before it existed is looked at).
function backend.waitables(ctx, jobs)
  if #jobs == 0 then return {} end
  local fresh = false
  ctx.watch_keys = ctx.watch_keys or {}
  if not ctx.watch then
    ctx.watch = fs.watch(ctx.run_dir .. "/jobs")
    if not ctx.watch then return {} end
    fresh = true
  end
  local out = {}
  -- A slot that ends (its work done, or killed) is a change too: every job is looked at.
  ctx.slot_fds = ctx.slot_fds or {}
  for name in pairs(ctx.pools or {}) do
    for _, slot in ipairs(ctx.pools[name].slots or {}) do
      local key = tostring(slot.pid) .. ":" .. tostring(slot.start)
      if ctx.slot_fds[key] == nil then
        local h = math.type(slot.pid) == "integer" and process.start_time(slot.pid) == slot.start
          and process.open(slot.pid) or nil
        if h and process.start_time(slot.pid) ~= slot.start then h:close(); h = nil end
        ctx.slot_fds[key] = h or false
      end
      local h = ctx.slot_fds[key]
      if h then
        out[#out + 1] = { handle = h, covers = 0, changed = function()
          h:close(); ctx.slot_fds[key] = false
          return jobs
        end }
      end
    end
  end
  out[#out + 1] = {
    handle = ctx.watch:fd(), covers = #jobs, ready = fresh or nil,
    changed = function()
      local names = ctx.watch:read()
      if fresh or names.overflow then return jobs end
      -- The jobs by file key: made from the list when a key is not in it yet, not at every
      -- wait (a pool's runner waits once per event: a map of every job each time was O(n²)).
      -- It may hold jobs that have ended since: only those still waited for are named.
      local touched, seen = {}, {}
      local keys = {}
      for _, n in ipairs(names) do
        local key = n:match("^(.*)%.result%.json$") or n:match("^(.*)%.status%.json$")
        if key then
          keys[#keys + 1] = key
        elseif n:find("%.slot%-%d+%.journal$") then
          -- A slot's journal grew: the jobs of its new lines.
          local _, grew = journal(ctx, ctx.run_dir .. "/jobs/" .. n)
          for _, k in ipairs(grew) do keys[#keys + 1] = k end
        end
      end
      for _, key in ipairs(keys) do
        -- A new attempt ("job@2", a retry started by this driver) is a new key of a job the
        -- list may already hold: looked up afresh too.
        if key and not ctx.watch_keys[key] and (ctx.watch_list ~= jobs or ctx.watch_n ~= #jobs
            or key:find("@%d+$")) then
          ctx.watch_keys, ctx.watch_list, ctx.watch_n = {}, jobs, #jobs
          for _, job in ipairs(jobs) do ctx.watch_keys[state.job_key(job)] = job end
        end
        local job = key and ctx.watch_keys[key]
        if job and not seen[job] and job.native_id and not verdict.TERMINAL[job.status] then
          seen[job] = true; touched[#touched + 1] = job
        end
      end
      return touched
    end,
  }
  return out
end

-- withdraw(ctx, jobs, why) -> { [job] = observation }: queued jobs taken back from their pool
-- before a slot claims them (the run has marked them: no slot starts them now): pending again
-- (why nil: `jobrun wait` starts them later) or, with why, left for the next poll to close
-- (fail_fast…). One a slot claimed meanwhile stays launched.
function backend.withdraw(ctx, jobs, why)
  local out = {}
  for _, job in ipairs(jobs) do
    if job.native_id == "pool" then
      local claim = read_json(paths(ctx, job).status)
      if claim then
        local o = {}
        take_claim(job, o, claim)
        o.status = "RUNNING"
        out[job] = o
      elseif claim == nil and not why then -- (a claim that cannot be read: claimed all the same)
        out[job] = { status = "PENDING", native_id = NONE, native_status = NONE, notes = { pool = NONE } }
      end
    end
  end
  return out
end

-- cancel(ctx, jobs) -> { [name] = "killed" | "already completed" | "not found" | "failed: …" },
-- { [job] = observation }: each job is marked cancelled (the run has written jobs/<job>.cancel)
-- so that no slot starts it; the slot running it is sent TERM (it ends the job's ranks: TERM,
-- grace, KILL, and records CANCELLED) and followed until the job's record says so.
function backend.cancel(ctx, jobs)
  local results, waiting = {}, {}
  -- Followed on copies of the jobs, which take what each poll sees (jobrun.run.status.scratch).
  local copies, observed = status.scratch(jobs)
  for _, job in ipairs(copies) do
    if not job.native_id then
      results[job.name] = "not found"
    else
      local claim = job.native_id == "pool" and read_json(paths(ctx, job).status)
      if claim then
        local o = {}
        take_claim(job, o, claim)
        status.fold(job, o)
      end
      if job.native_id == "pool" then
        results[job.name] = "killed" -- queued: no slot will start it now
      elseif not supervisor_alive(job, {}) then
        results[job.name] = "already completed"
      else
        local handle, err = process.open(tonumber(slot_of(job, {})))
        if handle and supervisor_alive(job, {}) then
          local sent, why = handle:kill("TERM")
          if sent then results[job.name] = "killed"
          elseif why:find("not running") then results[job.name] = "already completed"
          else results[job.name] = "failed: " .. why end
          if sent then waiting[#waiting + 1] = job end
        else
          results[job.name] = handle and "already completed" or ("failed: " .. tostring(err))
        end
        if handle then handle:close() end
      end
    end
  end
  -- Followed to their recorded end (a job that ended on its own meanwhile: already completed).
  local grace = 0
  for _, job in ipairs(waiting) do
    local g = job.spec and job.spec.options and tonumber(job.spec.options.grace) or DEFAULT_GRACE
    grace = math.max(grace, g)
  end
  -- Woken by the jobs/ directory (a slot records the end there), not by a clock; the interval
  -- only bounds a wait that no event ends.
  local follow = {}
  local watch = #waiting > 0 and fs.watch(ctx.run_dir .. "/jobs") or nil
  local function wait(seconds)
    if not watch then return process.sleep(0.05) end
    if #process.poll({ watch:fd() }, seconds) > 0 then watch:read() end
  end
  common.follow_cancel(function(list) return backend.poll(ctx, list) end, waiting, follow, grace + 5, 0.5, wait)
  if watch then watch:close() end
  for name, r in pairs(follow) do
    if r:find("^failed") then results[name] = "failed: the supervisor did not stop in time"
    elseif r == "already completed" then results[name] = "already completed" end
  end
  return results, observed()
end

return backend
