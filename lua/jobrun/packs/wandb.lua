-- The W&B pack: metrics read from a job's Weights & Biases run instead of its log. The run is
-- found from its URL in the log (https://wandb.ai/<entity>/<project>/runs/<id>, as wandb prints
-- it and as Metta's TrainingTask read it); its sampled history comes from W&B's GraphQL API
-- (jobrun.wandb), with the key from WANDB_API_KEY. W&B unreachable or unauthorised makes the
-- metric "missing (W&B: <reason>)"; requests time out, so the run never hangs on it.
--
--   local wandb = use "wandb"
--   wandb.metric "overview/sps"                      -- then expect.metrics["overview/sps"] = ">= 40000"
--   wandb.metric("env_agent/heart.gained", { url = "wandb.example.com/" })   -- a W&B server of your own
local client = require "jobrun.wandb"

local pack = {}

function pack.metric(name, opts)
  opts = opts or {}
  local seen = {}
  metric(name) {
    description = "from the job's W&B run (its sampled history)",
    contains = opts.url or "wandb.ai/",
    fn = function(line, emit, missing)
      local entity, project, run = client.run_of(line)
      if not entity then return end
      local id = entity .. "/" .. project .. "/" .. run
      if seen[id] then return end
      seen[id] = true
      local points, why = client.history(entity, project, run, name)
      if not points then missing(why); return end
      for _, v in ipairs(points) do emit(v) end
    end,
    budget = opts.budget or 30,
  }
end

return pack
