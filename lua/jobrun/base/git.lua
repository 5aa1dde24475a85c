-- What a run was launched from, and the guard that refuses to launch from a dirty or unpushed
-- tree (the old tools' gitta rules: untracked files count as dirty unless allowed; a commit is
-- pushed when the branch's upstream contains it, or, without an upstream, when any
-- remote-tracking branch does).
local cgit = require "jobrun.c.git"
local fs = require "jobrun.c.fs"
local json = require "jobrun.base.json"
local errors = require "jobrun.base.errors"

local git = {}

-- The state directory (absolute): jobrun's own records are never a change.
git.state_dir = nil

-- use_state_dir(dir): the run's state directory, made absolute against the working directory.
function git.use_state_dir(dir)
  git.state_dir = dir:sub(1, 1) == "/" and dir or (require("jobrun.c.fs").getcwd() .. "/" .. dir)
end

-- own(workdir, path): path (relative to the work tree, a directory with a trailing "/") is the
-- state directory or inside it, as found or with its symlinks resolved (a `.jobrun` that links
-- elsewhere shows in the status as the link itself).
-- dirs: { git.state_dir, its realpath }.
local function own(dirs, workdir, path)
  if not workdir then return false end
  local full = (workdir:gsub("/$", "")) .. "/" .. path:gsub("/$", "")
  for _, dir in ipairs(dirs) do
    if full == dir or full:sub(1, #dir + 1) == dir .. "/" then return true end
  end
  return false
end

-- open(dir): the repository containing dir; nil or "." means where git itself would look from
-- here (the current directory, or $GIT_DIR).
local function open(dir)
  if dir == "." then dir = nil end
  return cgit.open(dir)
end

-- root([dir]) -> the work tree's root (absolute, no trailing "/"), or nil outside a work tree.
-- The one root finder: the state directory (jobrun.run.store.discover) and the guard (git.info)
-- both take libgit2's answer, so GIT_DIR, GIT_CEILING_DIRECTORIES and `.git` files move both.
function git.root(dir)
  local repo = open(dir)
  local workdir = repo and repo:workdir()
  if repo then repo:close() end
  return workdir and (workdir:gsub("(.)/$", "%1")) or nil
end

-- The report files jobrun wrote (--html, --summary, --junit): <state-dir>/reports.json maps each
-- one's real path to the size and mtime it had once written, and the run it reported. An
-- untracked file listed there and unchanged since is jobrun's own, not a change; a file edited
-- or replaced since is the user's again, and a path never written by jobrun is never skipped.
local function reports_file() return git.state_dir and (git.state_dir .. "/reports.json") end

local function stamp(st) return string.format("%d:%.9f", st.size, st.mtime) end

-- read_reports() -> map | nil, why (nil, nil: none yet)
local function read_reports()
  local file = reports_file()
  local text = file and fs.read(file)
  if not text then return nil end
  local map = json.decode(text)
  if type(map) ~= "table" then return nil, file .. " is damaged" end
  return map
end

-- note_report(path, run_id): path was just written by jobrun as a report of run_id.
function git.note_report(path, run_id)
  local file = reports_file()
  local full = file and fs.realpath(path)
  local st = full and fs.stat(full)
  if not st then return end
  local function unrecorded(why)
    io.stderr:write("jobrun: ", require("jobrun.report.sanitize").text(string.format(
      "%s was not recorded as jobrun's own report (%s); the git guard will count it", full, why)), "\n")
  end
  local lock, lerr = fs.lock(git.state_dir .. "/reports.lock")
  if not lock then return unrecorded(lerr) end
  local map, why = read_reports()
  if why then
    unrecorded(why) -- a damaged record is never overwritten
  else
    local kept = {}
    for p, e in pairs(map or {}) do
      local now = type(e) == "table" and fs.stat(p)
      if now and e.stamp == stamp(now) then kept[p] = e end -- forget what is gone or changed
    end
    kept[full] = { stamp = stamp(st), run_id = run_id }
    local ok, err = fs.write_atomic(file, json.encode(kept, true) .. "\n")
    if not ok then unrecorded(err) end
  end
  lock:release()
end

-- own_report(map, workdir, path): an untracked path that is a report jobrun wrote, unchanged.
local function own_report(map, workdir, path)
  if not workdir then return false end
  local full = fs.realpath((workdir:gsub("/$", "")) .. "/" .. path)
  local e = full and map[full]
  local st = type(e) == "table" and fs.stat(full)
  return st and e.stamp == stamp(st) or false
end

-- info(dir) -> read-only table for suites, or nil when dir is in no repository.
function git.info(dir)
  local repo = open(dir)
  if not repo then return nil end
  local head = assert(repo:head())
  local status = repo:status() or {}
  local workdir = repo:workdir()
  local changed, untracked = {}, {}
  local dirs = { git.state_dir, git.state_dir and require("jobrun.c.fs").realpath(git.state_dir) }
  local reports, reports_problem = read_reports()
  for _, entry in ipairs(status) do
    if own(dirs, workdir, entry.path) then -- luacheck: ignore 542
    elseif entry.untracked and reports and own_report(reports, workdir, entry.path) then -- luacheck: ignore 542
    elseif entry.untracked then untracked[#untracked + 1] = entry.path
    else changed[#changed + 1] = entry.path end
  end
  local upstream = repo:upstream()
  local ahead, behind
  if upstream and upstream.commit and head.commit then
    ahead, behind = repo:ahead_behind(head.commit, upstream.commit)
  end
  local remote = upstream and upstream.remote or "origin"
  local remote_branches = repo:remote_branches() or {}

  -- is_pushed(commit): as gitta's is_commit_pushed.
  local function is_pushed(commit)
    commit = commit or head.commit
    if not commit then return false end
    if upstream and upstream.commit then return repo:contains(upstream.commit, commit) == true end
    for _, b in ipairs(remote_branches) do
      if repo:contains(b.commit, commit) then return true end
    end
    return false
  end

  local info = {
    commit = head.commit,
    short = head.commit and head.commit:sub(1, 8),
    branch = head.branch,
    detached = head.detached,
    dirty = #changed > 0,
    changed = changed,
    untracked = untracked,
    upstream = upstream and upstream.name,
    ahead = ahead,
    behind = behind,
    remote_url = repo:remote_url(remote),
    workdir = workdir,
    is_pushed = is_pushed,
    reports_problem = reports_problem,
  }
  return info
end

-- readonly(info): the `git` global of suites.
function git.readonly(info)
  return setmetatable({}, {
    __index = info,
    __newindex = function() error("the git table is read-only", 2) end,
    __pairs = function() return next, info, nil end,
  })
end

-- lazy(dir): the `git` global for a suite re-read by check, wait or kill, read from the
-- repository only if the suite looks at it (libgit2 takes milliseconds to load).
function git.lazy(dir)
  local info
  return setmetatable({}, {
    __index = function(_, k)
      info = info or git.info(dir) or {}
      return info[k]
    end,
    __newindex = function() error("the git table is read-only", 2) end,
  })
end

-- record(info) -> what state.json and --json keep: { commit, branch, dirty, remote_url }.
function git.record(info)
  if not info then return nil end
  return { commit = info.commit, branch = info.branch, dirty = info.dirty or #info.untracked > 0,
           remote_url = info.remote_url }
end

local function list(paths, max)
  local shown = {}
  for i = 1, math.min(max, #paths) do shown[i] = "    " .. paths[i] end
  if #paths > max then shown[#shown + 1] = string.format("    … and %d more", #paths - max) end
  return table.concat(shown, "\n")
end

-- work_tree(backend_name): the backend's jobs run in this work tree (local, and Slurm on a
-- shared file system) rather than from the commit.
local function work_tree(name)
  local ok, backend = pcall(require("jobrun.backends").get, name or "local")
  return ok and backend.work_tree == true
end

-- guard(info, policy, where, backend_name): refuse (exit 2) when the policy is not met; what
-- a dirty tree costs depends on where the backend's jobs run.
function git.guard(info, policy, where, backend_name)
  if not policy or not (policy.require_clean or policy.require_pushed) then return end
  local prefix = where and string.format("%s:%d: ", where.file, where.line) or ""
  if not info then
    errors.raise("%sthe suite requires a %s git tree, but %s is not in a git repository.\n"
      .. "  Run from inside the repository, or pass --skip-git-check.", prefix,
      policy.require_pushed and "pushed" or "clean", require("jobrun.c.fs").getcwd())
  end
  if policy.require_clean then
    local dirty = {}
    for _, p in ipairs(info.changed) do dirty[#dirty + 1] = p end
    if not policy.allow_untracked then
      for _, p in ipairs(info.untracked) do dirty[#dirty + 1] = p .. " (untracked)" end
    end
    if #dirty > 0 then
      local n = string.format("%d path%s", #dirty, #dirty == 1 and "" or "s")
      local commit = info.short and ("commit " .. info.short) or "no commit"
      local why
      if work_tree(backend_name) then
        why = string.format("you have uncommitted changes (%s):\n%s\n  The jobs run in this work tree and would "
          .. "use them, but the run would record %s, which does not hold them.", n, list(dirty, 10), commit)
      else
        why = string.format("you have uncommitted changes that the jobs would not see: they get %s (%s):\n%s",
          commit, n, list(dirty, 10))
      end
      if info.reports_problem then
        why = why .. "\n  (" .. info.reports_problem .. ": reports jobrun wrote count too)"
      end
      errors.raise("%s%s\n  Commit: git add -A && git commit -m '…'\n  Stash:  git stash -u\n"
        .. "  Or launch anyway: --skip-git-check", prefix, why)
    end
  end
  if policy.require_pushed then
    if not info.commit then
      errors.raise("%sthe repository has no commit yet, so nothing the jobs could check out.\n"
        .. "  Commit and push, or launch anyway: --skip-git-check", prefix)
    end
    if not info.is_pushed(info.commit) then
      errors.raise("%scommit %s has not been pushed%s, so the jobs could not check it out.\n"
        .. "  Push: git push%s\n  Or launch anyway: --skip-git-check", prefix, info.short,
        info.upstream and (" to " .. info.upstream) or " to any remote",
        info.upstream and "" or " -u origin HEAD")
    end
  end
end

return git
