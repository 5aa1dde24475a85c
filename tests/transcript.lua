-- Transcript tests (after cram and sysbench's tests/t): a file of cases, each
--   $ command                 run by sh in a scratch directory, `jobrun` being the build under test
--   > expected stdout line    (a line ending in " (glob)" matches with * and ?)
--   ! expected stderr line
--   ? exit code               (0 when absent)
-- and inline files:  "= path" … lines … "=". Lines starting with # are comments.
-- Output must match exactly: every line, in order, nothing more.
local tap = require "tap"
local fs = require "jobrun.c.fs"

local file = arg[1]
local top = os.getenv("JOBRUN_TOP")
local bin = os.getenv("JOBRUN_BIN")

local function sh_quote(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

local function run(cmd)
  local ok, _, code = os.execute(cmd)
  return ok and 0 or code
end

local scratch = require("helpers").scratch()
assert(fs.mkdir_p(scratch .. "/bin"))
assert(fs.mkdir_p(scratch .. "/work"))
run("ln -s " .. sh_quote(bin) .. " " .. sh_quote(scratch .. "/bin/jobrun"))
local work = scratch .. "/work"

local function glob_match(line, want)
  local pattern = "^" .. want:gsub("[%^%$%(%)%%%.%[%]%+%-]", "%%%0"):gsub("%*", ".*"):gsub("%?", ".") .. "$"
  return line:find(pattern) ~= nil
end

local function lines_of(text)
  local out = {}
  for line in text:gmatch("([^\n]*)\n") do out[#out + 1] = line end
  local rest = text:match("([^\n]+)$")
  if rest then out[#out + 1] = rest .. " (no eol)" end
  return out
end

local function compare(got, want)
  if #got ~= #want then return false end
  for i = 1, #want do
    local w = want[i]
    local g = got[i]
    local globbed = w:match("^(.*) %(glob%)$")
    if globbed then
      if not glob_match(g, globbed) then return false end
    elseif g ~= w then
      return false
    end
  end
  return true
end

local function check_case(case)
  local out_path, err_path = scratch .. "/stdout", scratch .. "/stderr"
  local env = string.format("PATH=%s:$PATH JOBRUN_STATE_DIR=%s NO_COLOR= TERM=dumb TOP=%s",
    sh_quote(scratch .. "/bin"), sh_quote(scratch .. "/state"), sh_quote(top))
  local cmd = string.format("cd %s && export %s && (%s) >%s 2>%s </dev/null", sh_quote(work), env,
    case.command, sh_quote(out_path), sh_quote(err_path))
  local code = run(cmd)
  local stdout = lines_of(fs.read(out_path) or "")
  local stderr = lines_of(fs.read(err_path) or "")
  local ok = code == case.code and compare(stdout, case.stdout) and compare(stderr, case.stderr)
  local diag = {}
  if not ok then
    diag[#diag + 1] = "at " .. file .. ":" .. case.line
    diag[#diag + 1] = string.format("exit: got %s, want %d", tostring(code), case.code)
    for _, l in ipairs(stdout) do diag[#diag + 1] = "> " .. l end
    for _, l in ipairs(stderr) do diag[#diag + 1] = "! " .. l end
    diag[#diag + 1] = "--- wanted:"
    for _, l in ipairs(case.stdout) do diag[#diag + 1] = "> " .. l end
    for _, l in ipairs(case.stderr) do diag[#diag + 1] = "! " .. l end
  end
  tap.ok(ok, "$ " .. case.command, table.concat(diag, "\n"))
end

local text = assert(fs.read(file))
local case
local writing, written
local lineno = 0
for line in (text .. (text:sub(-1) == "\n" and "" or "\n")):gmatch("([^\n]*)\n") do
  lineno = lineno + 1
  if writing then
    if line == "=" then
      local path = work .. "/" .. writing
      local dir = path:match("^(.*)/[^/]*$")
      assert(fs.mkdir_p(dir))
      assert(fs.write_atomic(path, table.concat(written, "\n") .. "\n"))
      writing = nil
    else
      written[#written + 1] = line
    end
  elseif line:match("^%$ ") then
    if case then check_case(case) end
    case = { command = line:sub(3), stdout = {}, stderr = {}, code = 0, line = lineno }
  elseif line:match("^> ?") and case then
    case.stdout[#case.stdout + 1] = line:gsub("^> ?", "")
  elseif line:match("^! ?") and case then
    case.stderr[#case.stderr + 1] = line:gsub("^! ?", "")
  elseif line:match("^%? %d+") and case then
    case.code = tonumber(line:match("^%? (%d+)"))
  elseif line:match("^= ") then
    if case then check_case(case); case = nil end
    writing, written = line:sub(3), {}
  elseif line:match("^#") or line:match("^%s*$") then
    if case then check_case(case); case = nil end
  else
    error(string.format("%s:%d: cannot read this line: %s", file, lineno, line))
  end
end
if case then check_case(case) end
run("rm -rf " .. sh_quote(scratch))
return tap.done()
