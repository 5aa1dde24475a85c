-- Two copies of one job (this process's and state.json's, written by a `check`, a `kill` or
-- another driver) merge to the one further along, so that no writer ever puts back a status
-- that another has moved on. Which moves a job may make, and which copy is further along, is
-- jobrun.run.status's to say (README "How a job's record moves"); this is the merge.
local status = require "jobrun.run.status"

local record = {}

record.rank = status.rank

-- ahead(a, b) -> true when copy a is further along than copy b (ties: false).
record.ahead = status.ahead

-- replace(into, from): `into` becomes a copy of `from`, keeping its identity (the driver's
-- lists and the backends' handles refer to the table).
function record.replace(into, from)
  for k in pairs(into) do into[k] = nil end
  for k, v in pairs(from) do into[k] = v end
end

return record
