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

os.execute("rm -rf '" .. dir .. "'")
return tap.done()
