-- The context a backend sees of a run (ctx): what its functions (submit, poll, cancel, …) get
-- as their first argument. Each field is set at one stated point:
--   run_dir, run_id, cwd, backend, store, handles   context.new, from the run's record
--   sbatch_extra   context.exclude: at context.new (the record's exclude_nodes) and by
--                  rerun --exclude-nodes (the Slurm backend's extra sbatch arguments)
--   secret_env     context.new: job name -> the environment to launch the job with, its
--                  secrets restored (Run:launch_env), each made on its first read and kept; the
--                  scheduler replaces a job's with its {needs…} filled in
--   read_suite     context.new: read_suite() makes known to this process what only the suite
--                  knows, URL credentials included (Run:suite_plan: the suite read again once
--                  when this process did not make the run)
--   job_parsers    a script's run (jobrun.script.api): job name -> its own suite's parsers
--   max_parallel   the scheduler, before a pooling backend's launch
-- Any other field is the backend's own (its client, pools, counters).
local backends = require "jobrun.backends"
local store = require "jobrun.run.store"

local context = {}

-- exclude(ctx, nodes): the nodes a rerun keeps its jobs off (rerun --exclude-nodes), as the
-- Slurm backend's extra sbatch arguments; other backends cannot choose nodes.
function context.exclude(ctx, nodes)
  ctx.sbatch_extra = (type(nodes) == "table" and #nodes > 0) and { "--exclude=" .. table.concat(nodes, ",") } or nil
end

-- new(run) -> the context of the run's own backend. Restoring a job's secrets may mean reading
-- the suite again, so secret_env makes a job's environment only when a launch asks for it: a
-- finished run's `check` never re-reads the suite.
function context.new(run)
  local data = run.data
  local ctx = {
    run_dir = run.dir, run_id = data.run_id, cwd = data.cwd, handles = {},
    backend = backends.get(data.backend), store = store.store(run.dir),
    secret_env = setmetatable({}, { __index = function(envs, name)
      local env = run:launch_env(name)
      rawset(envs, name, env)
      return env
    end }),
    read_suite = function() run:suite_plan() end,
  }
  context.exclude(ctx, data.exclude_nodes)
  return ctx
end

-- for_backend(ctx, name) -> the context backend `name` sees in a run of several backends: its own
-- backend and handles, every other field the run's context's.
function context.for_backend(ctx, name)
  return setmetatable({ backend = backends.get(name), handles = {} }, { __index = ctx })
end

return context
