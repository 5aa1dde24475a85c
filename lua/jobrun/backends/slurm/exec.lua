-- Running a helper command (sbatch, scontrol, …) and collecting what it says: stdout and
-- stderr through pipes, read as they come, with the process waited on through its pidfd.
local process = require "jobrun.c.process"

local exec = {}

-- run(argv [, opts]) -> { code, signal, stdout, stderr } | nil, why (could not start).
-- opts: env (the whole environment), cwd, timeout (seconds; the command is KILLed after).
function exec.run(argv, opts)
  opts = opts or {}
  local proc, err = process.spawn({ argv = argv, env = opts.env, cwd = opts.cwd,
                                    stdout = "pipe", stderr = "pipe" })
  if not proc then return nil, err end
  local out, errs = {}, {}
  local streams = { proc:stdout(), proc:stderr() }
  local sinks = { out, errs }
  local open = { true, true }
  local deadline = opts.timeout and (process.now() + opts.timeout)
  while open[1] or open[2] do
    local items, which = {}, {}
    for i = 1, 2 do if open[i] then items[#items + 1] = streams[i]; which[#items] = i end end
    local wait = deadline and math.max(0, deadline - process.now()) or nil
    local ready = process.poll(items, wait)
    if deadline and #ready == 0 and process.now() >= deadline then
      proc:kill("KILL")
      break
    end
    for _, k in ipairs(ready) do
      local i = which[k]
      local chunk = streams[i]:read()
      if chunk == nil then open[i] = false elseif chunk ~= "" then sinks[i][#sinks[i] + 1] = chunk end
    end
  end
  local result = proc:wait(true)
  proc:close()
  return { code = result.exit_code, signal = result.signal, stdout = table.concat(out),
           stderr = table.concat(errs) }
end

-- environ(extra) -> this process's environment with extra's entries added (values as strings).
function exec.environ(extra)
  local env = process.environ()
  for k, v in pairs(extra or {}) do env[k] = tostring(v) end
  return env
end

return exec
