-- jobrun notify [RUN] [--dry-run]: send the run's notifications again (its suite's notify table),
-- or print what would be sent.
local options = require "jobrun.cli.options"
local Run = require "jobrun.run"
local state = require "jobrun.run.store"
local errors = require "jobrun.base.errors"
local notify = require "jobrun.report.notify"

local command = {
  name = "notify",
  usage = "jobrun notify [RUN] [--dry-run] [options]",
  summary = "send a run's notifications again, or print what would be sent",
  options = options.concat({ { "dry-run", "flag", nil, "print each request (target and body); send nothing" } },
    options.COMMON),
  help = [[
Sends what the suite's notify table asks for as if the run had just ended (the webhook message
and the GitHub commit status), whatever its `on` rule says, and records each delivery in the
run's state (notifications). The webhook URL and tokens are read from the suite file again;
they are never stored. With --dry-run, prints each request's target (a webhook by its host) and
JSON body instead. A run whose jobs have not all ended gets its GitHub status as pending.]],
}

function command.run(opts, args)
  if #args > 1 then errors.raise("notify: expected at most one RUN, got %d", #args) end
  local run = Run.open(state.resolve(opts["state-dir"], args[1]))
  if type(run.data.notify) ~= "table" then
    errors.raise("run %s has no notify table (add notify = { … } to its suite)", run.data.run_id)
  end
  local ended = true
  for _, job in ipairs(run.data.jobs) do
    if not require("jobrun.judge.verdict").TERMINAL[job.status] then ended = false end
  end
  local records = notify.send(run, ended and "end" or "launch", { dry_run = opts["dry-run"] })
  if opts["dry-run"] then return 0 end
  local failed = 0
  for _, rec in ipairs(records) do
    io.stdout:write(string.format("%s: %s\n", rec.target,
      rec.error and ("failed (" .. rec.error .. ")") or ("sent (HTTP " .. tostring(rec.http_status) .. ")")))
    if rec.error then failed = failed + 1 end
  end
  if #records == 0 then io.stdout:write("nothing to send (no webhook, and no GitHub status for this run)\n") end
  return failed > 0 and 3 or 0
end

return command
