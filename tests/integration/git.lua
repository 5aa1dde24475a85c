-- The git guard and provenance, in real repositories made with the git CLI, with a local bare
-- repository as the remote that commits are pushed to.
local tap = require "tap"
local h = require "helpers"
local json = require "jobrun.json"

local GIT = "git -c user.name=t -c user.email=t@example.com -c init.defaultBranch=main -c advice.detachedHead=false"

local SUITE = [[
suite "g" {
  run = "echo built from {git.commit}",
  name = "g_" .. (git and (git.branch or "detached") or "nogit"),
  git = { require_clean = true, require_pushed = true },
}
]]

-- repo(): a clone of a bare remote, with one pushed commit holding the suite.
local function repo()
  local dir = h.scratch()
  local code = h.sh(dir, table.concat({
    GIT .. " init -q --bare remote.git",
    GIT .. " init -q work",
    "cd work",
    "printf '%s' " .. h.q(SUITE) .. " > s.lua",
    "printf '.jobrun/\\n.stdout\\n.stderr\\n.bg.log\\n' > .gitignore",
    GIT .. " add -A", GIT .. " commit -qm first",
    GIT .. " remote add origin ../remote.git",
    GIT .. " push -q -u origin main",
  }, " && "))
  assert(code == 0, "git setup failed")
  return dir .. "/work"
end

local function commit_of(dir)
  local _, out = h.sh(dir, "git rev-parse HEAD")
  return (out:gsub("%s+$", ""))
end

tap.test("clean and pushed: the run records where it came from", function()
  local dir = repo()
  local code, out = h.sh(dir, "jobrun run s.lua --json")
  tap.is(code, 0, "launches")
  local doc = json.decode(out) or {}
  local sha = commit_of(dir)
  tap.is(doc.git and doc.git.commit, sha, "--json git.commit")
  tap.is(doc.git and doc.git.branch, "main", "git.branch")
  tap.is(doc.git and doc.git.dirty, false, "not dirty")
  tap.like(doc.git and doc.git.remote_url or "", "remote%.git$", "remote_url")
  tap.is(doc.jobs and doc.jobs[1].name, "g_main", "the git global in the suite")
  local data = h.state(dir)
  tap.is(data.git.commit, sha, "state.json keeps it")
  local _, log = h.sh(dir, "jobrun logs g_main")
  tap.is(log, "built from " .. sha .. "\n", "{git.commit} expanded")
  local _, table_out = h.sh(dir, "jobrun check")
  tap.like(table_out, "commit " .. sha:sub(1, 8), "the report header shows the commit")
end)

tap.test("dirty, untracked, unpushed: refused, with what and how", function()
  local dir = repo()
  h.sh(dir, "echo '-- a change' >> s.lua && echo new > notes.txt")
  local code, _, err = h.sh(dir, "jobrun run s.lua")
  tap.is(code, 2, "a dirty tree is refused with exit 2")
  tap.like(err, "s.lua:1: you have uncommitted changes %(2 paths%):\n    s.lua\n"
    .. "    notes.txt %(untracked%)\n  The jobs run in this work tree and would use them, but the run would record "
    .. "commit " .. commit_of(dir):sub(1, 8) .. ", which does not hold them%.\n  Commit: git add %-A",
    "lists the paths, says what they mean for local jobs, and how to fix it")
  tap.like(err, "%-%-skip%-git%-check", "mentions the escape hatch")
  local c2, _, e2 = h.sh(dir, "jobrun run s.lua --skip-git-check")
  tap.is(c2, 0, "--skip-git-check launches anyway")
  tap.like(e2, "git check skipped", "and says so")
  local data = h.state(dir)
  tap.is(data.git.dirty, true, "the run records the tree was dirty")

  h.sh(dir, "git checkout -q s.lua")
  h.sh(dir, "sed -i 's/require_clean = true,/require_clean = true, allow_untracked = true,/' s.lua && "
    .. GIT .. " commit -qam allow")
  local c3, _, e3 = h.sh(dir, "jobrun run s.lua")
  tap.is(c3, 2, "untracked allowed, but the new commit is not pushed")
  tap.like(e3, "commit %x+ has not been pushed to origin/main.*Push: git push\n", "says which commit and where")
  h.sh(dir, "git push -q")
  tap.is(select(1, h.sh(dir, "jobrun run s.lua")), 0, "pushed, untracked allowed: launches")
  local many = {}
  for i = 1, 12 do many[#many + 1] = "echo x > f" .. i .. ".txt" end
  h.sh(dir, table.concat(many, " && ") .. " && " .. GIT .. " add f*.txt")
  local _, _, e4 = h.sh(dir, "jobrun run s.lua")
  tap.like(e4, "%(12 paths%)", "counts every path")
  tap.like(e4, "… and 2 more", "shows the first ten")
end)

tap.test("reports jobrun wrote in the tree are its own; the refusal says what dirt means per backend", function()
  local dir = repo()
  local code, _, err = h.sh(dir, "jobrun run s.lua --html report.html --summary s.md --junit j.xml")
  tap.is(code, 0, "the first run writes three reports into the work tree", err)
  local _, st = h.sh(dir, "git status --porcelain")
  tap.is(st, "?? j.xml\n?? report.html\n?? s.md\n", "git sees them as untracked")
  local c2, _, e2 = h.sh(dir, "jobrun run s.lua --html report.html --summary s.md --junit j.xml")
  tap.is(c2, 0, "a second run is not refused for them", e2)
  tap.is(select(1, h.sh(dir, "jobrun run s.lua")), 0, "nor a run that writes no report")
  local rec = json.decode(require("jobrun.c.fs").read(dir .. "/.jobrun/reports.json") or "") or {}
  tap.ok(rec[dir .. "/report.html"] and rec[dir .. "/s.md"] and rec[dir .. "/j.xml"], "recorded in the state directory")
  -- check writes reports too, into a new directory: still jobrun's own.
  tap.is(select(1, h.sh(dir, "mkdir out && jobrun check --html out/r.html >/dev/null")), 0, "check --html")
  tap.is(select(1, h.sh(dir, "jobrun run s.lua")), 0, "a report check wrote is not a change either")
  -- Only exactly those files: another untracked file, and a report since edited, are counted.
  h.sh(dir, "echo mine > notes.html && echo '<!-- edited -->' >> report.html")
  local c3, _, e3 = h.sh(dir, "jobrun run s.lua")
  tap.is(c3, 2, "refused")
  tap.like(e3, "%(2 paths%):\n    notes%.html %(untracked%)\n    report%.html %(untracked%)\n",
    "the user's file and the edited report, not the others")
  -- The same tree, a backend whose jobs get the commit (refused before any server is asked).
  local c4, _, e4 = h.sh(dir, "jobrun run s.lua --backend skypilot")
  tap.is(c4, 2, "skypilot: refused too")
  tap.like(e4, "you have uncommitted changes that the jobs would not see: they get commit "
    .. commit_of(dir):sub(1, 8) .. " %(2 paths%)", "remote jobs get the commit")
  tap.ok(not e4:find("work tree", 1, true), "no word of the work tree for them")
  -- A damaged record is said, never overwritten, and the reports count again.
  h.sh(dir, "rm notes.html && git checkout -q . && echo '{broken' > .jobrun/reports.json")
  local c5, _, e5 = h.sh(dir, "jobrun run s.lua --html report.html")
  tap.is(c5, 2, "with the record damaged, the reports count")
  tap.like(e5, "reports%.json is damaged: reports jobrun wrote count too", "and the refusal says why")
  local _, _, e6 = h.sh(dir, "jobrun check --html r2.html")
  tap.like(e6, "r2%.html was not recorded as jobrun's own report %(.*reports%.json is damaged%); the git guard will "
    .. "count it", "a report written then says it was not recorded")
  tap.is(require("jobrun.c.fs").read(dir .. "/.jobrun/reports.json"), "{broken\n", "the damaged file is left as it was")
end)

tap.test("worktree, detached HEAD, no upstream", function()
  local dir = repo()
  h.sh(dir, GIT .. " worktree add -q -b side ../wt")
  local wt = dir .. "/../wt"
  local code, out = h.sh(wt, "jobrun run s.lua --json")
  tap.is(code, 0, "runs from a linked worktree")
  -- side has no upstream: pushed iff a remote-tracking branch contains the commit (it does).
  local doc = json.decode(out) or {}
  tap.is(doc.git and doc.git.branch, "side", "the worktree's branch")
  h.sh(wt, "echo more > more.txt && " .. GIT .. " add more.txt && " .. GIT .. " commit -qm side")
  local c2, _, e2 = h.sh(wt, "jobrun run s.lua")
  tap.is(c2, 2, "a commit no remote branch contains is unpushed")
  tap.like(e2, "has not been pushed to any remote.*git push %-u origin HEAD", "advice without an upstream")

  h.sh(dir, "git checkout -q --detach HEAD")
  local c3, out3 = h.sh(dir, "jobrun run s.lua --json")
  tap.is(c3, 0, "detached HEAD at a pushed commit")
  local d3 = json.decode(out3) or {}
  tap.is({ d3.git and d3.git.branch, d3.jobs and d3.jobs[1].name }, { nil, "g_detached" }, "no branch")
end)

tap.test("a repository without commits, and no repository at all", function()
  local dir = h.scratch()
  h.sh(dir, GIT .. " init -q fresh")
  h.write(dir .. "/fresh/s.lua", SUITE)
  local code, _, err = h.sh(dir .. "/fresh", "jobrun run s.lua --skip-git-check")
  tap.is(code, 2, "{git.commit} cannot expand without a commit")
  tap.like(err, "{git%.commit} in run of job 'g_main': the repository has no commit yet", "says so")
  h.write(dir .. "/fresh/p.lua", 'suite "p" { run = "echo", git = { require_pushed = true } }\n')
  local c2, _, e2 = h.sh(dir .. "/fresh", "jobrun run p.lua")
  tap.is(c2, 2, "require_pushed with no commit is refused")
  tap.like(e2, "no commit yet", "clearly")

  local plain = h.scratch()
  h.write(plain .. "/s.lua", 'suite "n" { run = "echo hi", git = { require_clean = true } }\n')
  local c3, _, e3 = h.sh(plain, "jobrun run s.lua")
  tap.is(c3, 2, "outside a repository require_clean refuses")
  tap.like(e3, "s.lua:1: the suite requires a clean git tree, but .* is not in a git repository", "with the reason")
  local c4, out4 = h.sh(plain, "jobrun run s.lua --skip-git-check --json")
  tap.is(c4, 0, "skipping the check runs it")
  tap.like(out4, '"git": null', "git info is null")
  local c5, _, e5 = h.sh(plain, "printf 'suite \"x\" { run = \"echo {git.commit}\" }\\n' > x.lua && jobrun plan x.lua")
  tap.is(c5, 2, "{git.commit} outside a repository")
  tap.like(e5, "not in a git repository", "explained")
end)

return tap.done()
