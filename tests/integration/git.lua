-- The git guard and provenance, in real repositories made with the git CLI, with a local bare
-- repository as the remote that commits are pushed to.
local tap = require "tap"
local h = require "helpers"
local json = require "jobrun.base.json"

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

-- The one root finder (state.discover and the guard both ask libgit2, as git itself would look).
local PLAIN = 'suite "c" { run = "echo hi", name = git and "in_git" or "no_git" }\n'

tap.test("GIT_DIR from outside the work tree: the state directory and the guard use its root", function()
  local dir = repo()
  local other = h.scratch()
  local code, out, err = h.sh(other, "GIT_DIR=" .. h.q(dir .. "/.git") .. " jobrun run "
    .. h.q(dir .. "/s.lua") .. " --json")
  tap.is(code, 0, "the guard sees the clean, pushed tree GIT_DIR names: " .. err)
  local doc = json.decode(out) or {}
  tap.is(doc.git and doc.git.commit, commit_of(dir), "the commit of GIT_DIR's repository")
  tap.ok(require("jobrun.c.fs").stat(dir .. "/.jobrun/latest"), "the run lands at that work tree's root")
  tap.ok(not require("jobrun.c.fs").stat(other .. "/.jobrun"), "not in the current directory")
  -- GIT_WORK_TREE as well (which libgit2's own reading of the environment refuses).
  local c2, out2, e2 = h.sh(other, "GIT_DIR=" .. h.q(dir .. "/.git") .. " GIT_WORK_TREE=" .. h.q(dir)
    .. " jobrun run " .. h.q(dir .. "/s.lua") .. " --json")
  tap.is(c2, 0, "GIT_DIR with GIT_WORK_TREE: " .. e2)
  tap.is((json.decode(out2) or {}).git, (json.decode(out) or {}).git, "the same repository")
end)

tap.test("GIT_CEILING_DIRECTORIES: no repository above the ceiling, for the state directory and the suite", function()
  local dir = repo()
  h.write(dir .. "/sub/c.lua", PLAIN)
  local code, out = h.sh(dir .. "/sub", "GIT_CEILING_DIRECTORIES=" .. h.q(dir) .. " jobrun run c.lua --json")
  tap.is(code, 0, "runs")
  local doc = json.decode(out) or {}
  tap.is(doc.jobs and doc.jobs[1].name, "no_git", "the suite sees no repository, as git would not")
  local fs = require "jobrun.c.fs"
  tap.ok(fs.stat(dir .. "/sub/.jobrun/latest"), "the state directory is the current directory's")
  tap.ok(not fs.stat(dir .. "/.jobrun"), "not the work tree's the ceiling hides")
  local c2, out2 = h.sh(dir .. "/sub", "rm -rf .jobrun && jobrun run c.lua --json")
  tap.is(c2, 0, "without the ceiling")
  local d2 = json.decode(out2) or {}
  tap.is(d2.jobs and d2.jobs[1].name, "in_git", "the suite sees the repository")
  tap.ok(fs.stat(dir .. "/.jobrun/latest"), "and the run lands at the work tree's root")
end)

tap.test("a .git file: from inside a linked worktree and a submodule, the root is theirs", function()
  local fs = require "jobrun.c.fs"
  local dir = repo()
  h.sh(dir, GIT .. " worktree add -q -b side ../wt2")
  local wt = fs.realpath(dir .. "/../wt2")
  assert(fs.mkdir_p(wt .. "/deep/er"))
  local code, out, err = h.sh(wt .. "/deep/er", "jobrun run ../../s.lua --json")
  tap.is(code, 0, "runs from inside the worktree: " .. err)
  local doc = json.decode(out) or {}
  tap.is(doc.git and doc.git.branch, "side", "the worktree's branch")
  tap.ok(fs.stat(wt .. "/.jobrun/latest"), "the run lands at the worktree's root")
  tap.ok(not fs.stat(dir .. "/.jobrun"), "not the main work tree's")

  -- A submodule: its `.git` is a file pointing into the superproject's .git/modules.
  local lib = repo() -- a second repository, pushed, as the submodule's origin
  local sup = h.scratch()
  local c1 = h.sh(sup, GIT .. " init -q top && cd top && " .. GIT .. " -c protocol.file.allow=always submodule add -q "
    .. h.q(lib) .. " mod && " .. GIT .. " commit -qm sub")
  assert(c1 == 0, "submodule setup failed")
  local mod = sup .. "/top/mod"
  tap.is(fs.stat(mod .. "/.git").type, "file", "the submodule's .git is a file")
  assert(fs.mkdir_p(mod .. "/deeper"))
  local c2, out2, e2 = h.sh(mod .. "/deeper", "jobrun run ../s.lua --json")
  tap.is(c2, 0, "runs from inside the submodule: " .. e2)
  local d2 = json.decode(out2) or {}
  tap.is(d2.git and d2.git.commit, commit_of(lib), "the submodule's commit")
  tap.ok(fs.stat(mod .. "/.jobrun/latest"), "the run lands at the submodule's root")
  tap.ok(not fs.stat(sup .. "/top/.jobrun"), "not the superproject's")
end)

tap.test("a symlinked .jobrun is followed (issue 21 #13), and the guard does not count the link", function()
  local fs = require "jobrun.c.fs"
  local proj, elsewhere = h.scratch(), h.scratch()
  h.sh(proj, "ln -s " .. h.q(elsewhere) .. " .jobrun")
  h.write(proj .. "/sub/c.lua", PLAIN)
  local code = h.sh(proj .. "/sub", "jobrun run c.lua")
  tap.is(code, 0, "runs")
  tap.ok(fs.stat(elsewhere .. "/latest"), "from proj/sub, the run lands where proj/.jobrun points")
  tap.ok(not fs.stat(proj .. "/sub/.jobrun"), "not in proj/sub/.jobrun")
  tap.is(select(1, h.sh(proj .. "/sub", "jobrun check >/dev/null")), 0, "check finds it there too")

  local dir = repo()
  local away = h.scratch()
  -- A .gitignore that does not name .jobrun: only the guard's own rule keeps the link out.
  h.sh(dir, "printf '.stdout\\n.stderr\\n' > .gitignore && " .. GIT .. " commit -qam ign && git push -q")
  h.sh(dir, "ln -s " .. h.q(away) .. " .jobrun")
  local c2, _, e2 = h.sh(dir, "jobrun run s.lua")
  tap.is(c2, 0, "the .jobrun link is no uncommitted change: " .. e2)
  tap.ok(fs.stat(away .. "/latest"), "the run lands behind the link")
end)

return tap.done()
