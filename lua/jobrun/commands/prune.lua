-- jobrun prune [--keep N] [--older-than DURATION]: delete finished runs, never one with live
-- jobs (a local run's are read from their own files; other backends' runs count as live until
-- a check has seen every job end).
local options = require "jobrun.cli.options"
local state = require "jobrun.run.store"
local duration = require "jobrun.suite.duration"
local list = require "jobrun.commands.list"
local process = require "jobrun.c.process"
local errors = require "jobrun.base.errors"

local command = {
  name = "prune",
  usage = "jobrun prune [--keep N] [--older-than DURATION] [--dry-run] [options]",
  summary = "delete finished runs (never one with live jobs)",
  options = options.concat({
    { "keep", "value", "N", "keep the newest N runs" },
    { "older-than", "value", "DURATION", "delete only runs started longer ago than this, e.g. 7d" },
    { "dry-run", "flag", nil, "say what would be deleted, delete nothing" },
  }, options.COMMON),
  help = [[
With both options, a run is deleted when it is outside the newest N and older than DURATION.
Runs whose jobs have not all ended are kept, whatever their age. Damaged runs are kept.]],
}

function command.run(opts, args)
  if #args > 0 then errors.raise("prune: takes no arguments\nUsage: %s", command.usage) end
  local keep, age
  if opts.keep then
    keep = math.tointeger(tonumber(opts.keep))
    if not keep or keep < 0 then errors.raise("--keep must be a whole number, not '%s'", opts.keep) end
  end
  if opts["older-than"] then
    local why
    age, why = duration.parse(opts["older-than"])
    if not age then errors.raise("--older-than: %s", why) end
  end
  if not keep and not age then
    errors.raise("prune: say which runs to delete: --keep N (the newest N stay) and/or --older-than DURATION")
  end
  local state_dir = opts["state-dir"]
  local now = process.time()
  local removed, live = {}, 0
  for i, r in ipairs(list.runs(state_dir)) do
    local old_enough = not age or ((state.epoch(r.data and r.data.started_at) or now) <= now - age)
    if r.data and (not keep or i > keep) and old_enough then
      if #r.run:open_jobs() > 0 then
        live = live + 1
      else
        removed[#removed + 1] = r.id
        if not opts["dry-run"] then
          local dir = state.run_dir(state_dir, r.id)
          local ok = os.execute("rm -rf -- '" .. dir:gsub("'", "'\\''") .. "'")
          if not ok then errors.infra("prune: could not remove %s", dir) end
        end
      end
    end
  end
  if not opts["dry-run"] then require("jobrun.run.history").forget(state_dir, removed) end
  -- latest names a run that still exists.
  local latest = (require("jobrun.c.fs").read(state_dir .. "/latest") or ""):gsub("%s+$", "")
  if not opts["dry-run"] and latest ~= "" then
    for _, id in ipairs(removed) do
      if id == latest then
        local rest = list.runs(state_dir)
        if rest[1] then state.set_latest(state_dir, rest[1].id) else os.remove(state_dir .. "/latest") end
        break
      end
    end
  end
  io.stdout:write(string.format("%s %d run%s%s.\n", opts["dry-run"] and "Would delete" or "Deleted", #removed,
    #removed == 1 and "" or "s", live > 0 and string.format("; kept %d with live jobs", live) or ""))
  for _, id in ipairs(removed) do io.stdout:write("  ", require("jobrun.report.sanitize").text(id), "\n") end
  return 0
end

return command
