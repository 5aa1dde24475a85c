-- Where an attempt came from (README "History: attempts, flaky jobs, suspect nodes"): its own
-- `git` (commit, branch, dirty), the command line
-- that started it (secrets redacted), and the nodes it ran on. A rerun is a new attempt of the
-- same run, possibly at another commit: each attempt keeps its own.
local secrets = require "jobrun.base.secrets"
local fs = require "jobrun.c.fs"

local provenance = {}

-- The jobrun command line of this process, as the CLI got it (set by cli.main).
provenance.argv = nil

-- redact_argv(argv) -> a copy fit to store: URL credentials dropped, the value of NAME=VALUE and
-- of --NAME VALUE / --NAME=VALUE where NAME looks like a secret replaced by "<redacted>".
function provenance.redact_argv(argv)
  local out, hide_next = {}, false
  for i, a in ipairs(argv or {}) do
    a = tostring(a)
    if hide_next then
      out[i], hide_next = secrets.REDACTED, false
    else
      local name, eq = a:match("^%-*([^=]+)(=)")
      if eq and secrets.is_secret_name((name:gsub("-", "_"))) then
        out[i] = a:sub(1, #a:match("^[^=]*=")) .. secrets.REDACTED
      else
        out[i] = (secrets.strip_urls(a))
        local opt = a:match("^%-%-([%w_-]+)$")
        if opt and secrets.is_secret_name((opt:gsub("-", "_"))) then hide_next = true end
      end
    end
  end
  return out
end

-- command_line() -> { "jobrun", args… } redacted, or nil when no CLI started this process. Made
-- once (the jobs of one launch share it: nothing changes it).
local made_for, made
function provenance.command_line()
  if not provenance.argv then return nil end
  if made_for ~= provenance.argv then
    local argv = { "jobrun" }
    for _, a in ipairs(provenance.argv) do argv[#argv + 1] = a end
    made_for, made = provenance.argv, provenance.redact_argv(argv)
  end
  return made
end

-- git_of(record) -> { commit, branch, dirty } (no remote URL: it may carry credentials).
function provenance.git_of(rec)
  if type(rec) ~= "table" or not rec.commit then return nil end
  return { commit = rec.commit, branch = rec.branch, dirty = rec.dirty and true or false }
end

-- stamp(job, git_record): a new attempt's provenance (the jobs stamped from one record share
-- its table: records are replaced, never changed in place).
local git_for, git_made
function provenance.stamp(job, git_record)
  if git_for ~= git_record then git_for, git_made = git_record, provenance.git_of(git_record) end
  job.git = git_made
  job.command_line = provenance.command_line()
end

local host
-- hostname() -> this machine's name (the nodes of a local job).
function provenance.hostname()
  if not host then
    host = (fs.read("/proc/sys/kernel/hostname") or ""):gsub("%s+$", "")
    if host == "" then host = os.getenv("HOSTNAME") or "localhost" end
  end
  return host
end

-- expand_nodes(v) -> a list of node names from a backend's nodes: a list, or Slurm's NodeList
-- ("gpu[01-03,07],cpu1").
function provenance.expand_nodes(v)
  if type(v) == "table" then
    local out = {}
    for _, n in ipairs(v) do
      for _, m in ipairs(provenance.expand_nodes(n)) do out[#out + 1] = m end
    end
    return out
  end
  if type(v) ~= "string" or v == "" or v == "(null)" or v == "None assigned" then return {} end
  if not v:find("[%[,]") then return { v } end -- one plain name (every local job's)
  local out = {}
  -- Split at commas outside brackets.
  local depth, start = 0, 1
  local parts = {}
  for i = 1, #v do
    local c = v:sub(i, i)
    if c == "[" then depth = depth + 1 elseif c == "]" then depth = depth - 1
    elseif c == "," and depth == 0 then parts[#parts + 1] = v:sub(start, i - 1); start = i + 1 end
  end
  parts[#parts + 1] = v:sub(start)
  for _, p in ipairs(parts) do
    local prefix, ranges, suffix = p:match("^([^%[]*)%[([^%]]*)%](.*)$")
    if prefix then
      for r in ranges:gmatch("[^,]+") do
        local a, b = r:match("^(%d+)%-(%d+)$")
        if a then
          for n = tonumber(a), tonumber(b) do
            out[#out + 1] = prefix .. string.format("%0" .. #a .. "d", n) .. suffix
          end
        else
          out[#out + 1] = prefix .. r .. suffix
        end
      end
    elseif p ~= "" then
      out[#out + 1] = p
    end
  end
  return out
end

local function commit_of(rec)
  local g = type(rec) == "table" and rec.git
  return type(g) == "table" and type(g.commit) == "string" and g.commit or nil
end
provenance.commit_of = commit_of

-- trail(job) -> the short commits of the job's attempts, oldest first, a repeat left out.
function provenance.trail(job)
  local out = {}
  local function add(c)
    if c then
      c = c:sub(1, 8)
      if out[#out] ~= c then out[#out + 1] = c end
    end
  end
  for _, a in ipairs(job.attempts or {}) do add(commit_of(a)) end
  add(commit_of(job))
  return out
end

-- commits(data) -> the distinct short commits of the run's attempts (the run's own first);
-- more than one when a rerun ran another tree.
function provenance.commits(data)
  local out, seen = {}, {}
  local function add(c)
    if c then
      c = c:sub(1, 8)
      if not seen[c] then seen[c] = true; out[#out + 1] = c end
    end
  end
  add(type(data.git) == "table" and type(data.git.commit) == "string" and data.git.commit or nil)
  for _, job in ipairs(data.jobs or {}) do
    for _, c in ipairs(provenance.trail(job)) do add(c) end
  end
  return out
end

return provenance
