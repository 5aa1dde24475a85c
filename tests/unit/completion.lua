-- jobrun completion zsh and fish: valid scripts for those shells (zsh -n, fish -n, and fish's own
-- completion engine answering), where the shells are installed; skipped where they are not.
-- bash is tested for what it completes in tests/cli/completion.t.
local tap = require "tap"
local fs = require "jobrun.c.fs"
local completion = require "jobrun.commands.completion"

local dir = require("helpers").scratch()
local function sh(cmd)
  local ok, _, code = os.execute(cmd)
  return ok and 0 or code
end
local function have(shell) return sh("command -v " .. shell .. " >/dev/null 2>&1") == 0 end

tap.test("the scripts are the same each time", function()
  for _, shell in ipairs({ "bash", "zsh", "fish" }) do
    tap.is(completion.script(shell), completion.script(shell), shell)
  end
end)

tap.test("bash and zsh: syntax", function()
  assert(fs.write_atomic(dir .. "/c.bash", completion.script("bash")))
  tap.is(sh("bash -n " .. dir .. "/c.bash"), 0, "bash -n")
  if have("zsh") then
    assert(fs.write_atomic(dir .. "/c.zsh", completion.script("zsh")))
    tap.is(sh("zsh -n " .. dir .. "/c.zsh"), 0, "zsh -n")
    tap.is(sh("zsh -f -c 'autoload -U compinit && compinit -u -D && source " .. dir .. "/c.zsh' >/dev/null 2>&1"), 0,
      "zsh sources it after compinit")
  else
    tap.ok(true, "zsh -n # SKIP zsh is not installed")
  end
end)

tap.test("fish", function()
  if not have("fish") then
    tap.ok(true, "fish -n # SKIP fish is not installed")
    return
  end
  local path = dir .. "/c.fish"
  assert(fs.write_atomic(path, completion.script("fish")))
  tap.is(sh("fish -n " .. path), 0, "fish -n")
  local out = dir .. "/out"
  local function offers(line)
    local bin_dir = os.getenv("JOBRUN_BIN"):match("^(.*)/[^/]*$")
    sh(string.format("PATH=%s:$PATH JOBRUN_STATE_DIR=%s/st HOME=%s "
      .. "fish --no-config -c 'source %s; complete -C \"%s\"' >%s 2>&1", bin_dir, dir, dir, path, line, out))
    local words = {}
    for l in (fs.read(out) or ""):gmatch("[^\n]+") do words[#words + 1] = l:match("^([^\t]*)") end
    return words
  end
  tap.is(offers("jobrun ch"), { "check" }, "commands")
  tap.is(offers("jobrun plan --color "), { "always", "auto", "never" }, "option values")
  tap.is(offers("jobrun logs --fo"), { "--follow" }, "options of the command")
  tap.is(offers("jobrun completion z"), { "zsh" }, "operands")
  fs.mkdir_p(dir .. "/st/runs/r7")
  fs.write_atomic(dir .. "/st/runs/r7/state.json", '{"run_id":"r7","jobs":[]}')
  tap.is(offers("jobrun script --resume r7"), { "r7" }, "script --resume: run ids")
end)

-- Issue 24 item 6 in fish and zsh (bash: tests/cli/completion.t): the suite's axes after --grid
-- and --set, its jobs after run SUITE --only, packs and .lua files after --use, and only .lua
-- files and directories for a suite operand.
tap.test("fish and zsh: axes, a suite's jobs, packs, .lua files", function()
  local work = dir .. "/work"
  fs.mkdir_p(work .. "/sub")
  fs.mkdir_p(work .. "/.git")
  fs.write_atomic(work .. "/g.lua", 'suite "g" { matrix = { nodes = { 1, 2 }, lr = { "a", "b" } }, run = "true" }\n')
  fs.write_atomic(work .. "/report.html", "")
  local bin_dir = os.getenv("JOBRUN_BIN"):match("^(.*)/[^/]*$")
  local env = string.format("cd %s && PATH=%s:$PATH JOBRUN_STATE_DIR=%s/st HOME=%s ", work, bin_dir, dir, dir)
  local function lines(path)
    local out = {}
    for l in (fs.read(path) or ""):gmatch("[^\n]+") do out[#out + 1] = l:match("^([^\t]*)") end
    table.sort(out)
    return out
  end
  if have("fish") then
    local script = dir .. "/c.fish"
    assert(fs.write_atomic(script, completion.script("fish")))
    local function offers(line)
      sh(string.format("%s fish --no-config -c 'source %s; complete -C \"%s\"' >%s/out 2>&1 </dev/null",
        env, script, line, dir))
      return lines(dir .. "/out")
    end
    tap.is(offers("jobrun run "), { "g.lua", "sub/" }, "fish: run <Tab>: .lua files and directories only")
    tap.is(offers("jobrun run g.lua --grid "), { "lr", "nodes" }, "fish: --grid: the suite's axes")
    tap.is(offers("jobrun run g.lua --grid nodes,"), { "nodes,lr" }, "fish: --grid ROWS,: the other axes")
    tap.is(offers("jobrun plan g.lua --set "), { "lr=", "nodes=" }, "fish: --set: AXIS=")
    tap.is(offers("jobrun run g.lua --only g_1"), { "g_1_a", "g_1_b" }, "fish: run SUITE --only: its jobs")
    tap.is(offers("jobrun analyze x.log --use "), { "g.lua", "metta", "sub/" }, "fish: --use: packs and .lua files")
  else
    tap.ok(true, "fish # SKIP fish is not installed")
  end
  if have("zsh") then
    local script = dir .. "/c.zsh"
    assert(fs.write_atomic(script, completion.script("zsh")))
    -- As zsh's bashcompinit calls it: 0-based arrays (ksharrays), COMP_WORDS and COMP_CWORD.
    local function offers(...)
      local words = {}
      for i, w in ipairs({ ... }) do words[i] = "'" .. w .. "'" end
      sh(string.format("%s zsh -f -c 'autoload -U compinit && compinit -u -D; source %s; setopt ksharrays; "
        .. "COMP_WORDS=(%s); COMP_CWORD=%d; _jobrun; print -l \"${COMPREPLY[@]}\"' >%s/out 2>&1 </dev/null",
        env, script, table.concat(words, " "):gsub("'", "'\\''"), select("#", ...) - 1, dir))
      return lines(dir .. "/out")
    end
    tap.is(offers("jobrun", "run", ""), { "g.lua", "sub" }, "zsh: run <Tab>: .lua files and directories only")
    tap.is(offers("jobrun", "run", "g.lua", "--grid", ""), { "lr", "nodes" }, "zsh: --grid: the suite's axes")
    tap.is(offers("jobrun", "plan", "g.lua", "--set", ""), { "lr=", "nodes=" }, "zsh: --set: AXIS=")
    tap.is(offers("jobrun", "run", "g.lua", "--only", ""), { "g_1_a", "g_1_b", "g_2_a", "g_2_b" },
      "zsh: run SUITE --only: its jobs")
    tap.is(offers("jobrun", "analyze", "x.log", "--use", ""), { "g.lua", "metta", "sub" }, "zsh: --use")
  else
    tap.ok(true, "zsh # SKIP zsh is not installed")
  end
end)

os.execute("rm -rf '" .. dir .. "'")
return tap.done()
