-- The W&B pack: metrics read from a job's Weights & Biases run instead of its log. The run is
-- found from its URL in the log (https://wandb.ai/<entity>/<project>/runs/<id>, as wandb prints
-- it and as Metta's TrainingTask read it); its sampled history comes from W&B's GraphQL API
-- (jobrun.judge.wandb), with the key from WANDB_API_KEY. W&B unreachable or unauthorised makes the
-- metric "missing (W&B: <reason>)"; requests time out, so the run never hangs on it.
--
--   local wandb = use "wandb"
--   wandb.metric "overview/sps"                      -- then expect.metrics["overview/sps"] = ">= 40000"
--   wandb.metric("env_agent/heart.gained", { url = "wandb.example.com/" })   -- a W&B server of your own
local client = require "jobrun.judge.wandb"

local pack = {}

function pack.metric(name, opts)
  opts = opts or {}
  -- What W&B answered per run, for this process: a job's log read again (its record settled
  -- twice) asks W&B once.
  local answers = {}
  metric(name) {
    description = "from the job's W&B run (its sampled history)",
    contains = opts.url or "wandb.ai/",
    fn = function(line, emit, missing, seen)
      local entity, project, run = client.run_of(line)
      if not entity then return end
      local id = entity .. "/" .. project .. "/" .. run
      if seen[id] then return end -- the URL printed again in the same log
      seen[id] = true
      local a = answers[id]
      if not a then
        a = table.pack(client.history(entity, project, run, name))
        answers[id] = a
      end
      local points, why = a[1], a[2]
      if not points then missing(why); return end
      for _, v in ipairs(points) do emit(v) end
    end,
    budget = opts.budget or 30,
  }
end

return pack
