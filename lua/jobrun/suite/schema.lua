-- The DSL's fields as data: one table says which keys each declaration takes and what their
-- values must be. Validation, "did you mean" and `jobrun help suite` all read it.
local duration = require "jobrun.suite.duration"
local suggest = require "jobrun.cli.suggest"
local errors = require "jobrun.base.errors"

local schema = {}

-- A job's statuses (README "Jobs, statuses and results"), defined here only: the set of them and
-- the terminal ones (a job there has ended for good) are made from this list.
schema.STATUSES = { "PENDING", "RUNNING", "SUCCEEDED", "FAILED", "TIMEOUT", "CANCELLED",
                    "LAUNCH_FAILED", "LOST", "SKIPPED" }
schema.STATUS_SET, schema.TERMINAL = {}, {}
for _, s in ipairs(schema.STATUSES) do
  schema.STATUS_SET[s] = true
  if s ~= "PENDING" and s ~= "RUNNING" then schema.TERMINAL[s] = true end
end

local function is_list(v)
  if type(v) ~= "table" then return false end
  local n = 0
  for _ in pairs(v) do n = n + 1 end
  return n == #v
end

-- Each kind: function(value) -> nil when fine, else why.
local kinds = {}

function kinds.string(v) if type(v) ~= "string" then return "must be a string" end end
function kinds.boolean(v) if type(v) ~= "boolean" then return "must be true or false" end end
function kinds.number(v) if type(v) ~= "number" then return "must be a number" end end
function kinds.table(v) if type(v) ~= "table" then return "must be a table" end end
function kinds.func(v) if type(v) ~= "function" then return "must be a function" end end
function kinds.any() end

function kinds.positive_integer(v)
  if math.type(v) ~= "integer" or v < 1 then return "must be a whole number of at least 1" end
end

function kinds.count(v)
  if math.type(v) ~= "integer" or v < 0 then return "must be a whole number of at least 0" end
end

function kinds.duration(v)
  local _, why = duration.parse(v)
  return why
end

function kinds.list_of_strings(v)
  if not is_list(v) then return "must be a list of strings" end
  for i, s in ipairs(v) do
    if type(s) ~= "string" and type(s) ~= "number" then
      return string.format("item %d must be a string", i)
    end
  end
end

function kinds.list_of_tables(v)
  if not is_list(v) then return "must be a list of tables" end
  for i, t in ipairs(v) do
    if type(t) ~= "table" then return string.format("item %d must be a table", i) end
  end
end

function kinds.command(v)
  if type(v) == "string" or type(v) == "function" then return end
  if is_list(v) and #v > 0 then return kinds.list_of_strings(v) end
  return "must be a shell string, a non-empty argv list, or a function(job)"
end

function kinds.env(v)
  if type(v) ~= "table" then return "must be a table of NAME = value" end
  for k, val in pairs(v) do
    if type(k) ~= "string" or not k:match("^[%a_][%w_]*$") then
      return string.format("'%s' is not an environment variable name", tostring(k))
    end
    if type(val) ~= "string" and type(val) ~= "number" and type(val) ~= "boolean" then
      return string.format("%s must be a string or a number", k)
    end
  end
end

function kinds.matrix(v)
  if type(v) ~= "table" then return "must be a table of axis = { values… }" end
  local lower = {}
  for axis, values in pairs(v) do
    if type(axis) ~= "string" or axis == "" then
      return string.format("axis name %s must be a non-empty string (write [\"node-version\"] = { … } "
        .. "for names that are not identifiers)", type(axis) == "string" and "''" or tostring(axis))
    end
    if axis == "include" or axis == "exclude" then
      return string.format("'%s' belongs beside matrix, not inside it", axis)
    end
    local other = lower[axis:lower()]
    if other then
      if axis < other then other, axis = axis, other end
      return string.format("axes '%s' and '%s' differ only in case (matrix keys match without regard to case)",
        other, axis)
    end
    lower[axis:lower()] = axis
    if not is_list(values) or #values == 0 then
      return string.format("axis '%s' must be a non-empty list of values", axis)
    end
    for i, value in ipairs(values) do
      local t = type(value)
      if t ~= "table" and t ~= "string" and t ~= "number" and t ~= "boolean" then
        return string.format("axis '%s' value %d must be a string, number, boolean or table", axis, i)
      end
    end
  end
end

function kinds.axes(v)
  if not is_list(v) or #v == 0 then return "must be a list of the matrix's axis names, in order" end
  for i, s in ipairs(v) do
    if type(s) ~= "string" then return string.format("item %d must be an axis name (a string)", i) end
  end
end

function kinds.notify(v) return require("jobrun.report.notify").check(v) end

function kinds.scope(v)
  if v ~= "tail" and v ~= "all" then return "must be \"tail\" or \"all\"" end
end

-- Declarations and their fields: { kind = …, doc = … }.
schema.fields = {
  suite = {
    backend = { kind = "string", doc = "local (default), slurm, skypilot, or a Lua backend's name" },
    matrix = { kind = "matrix", doc = "axes: name = { values… }; their product makes the jobs" },
    axes = { kind = "axes", doc = "the axes' order, needed when matrix is not a table written here: { \"b\", \"a\" }" },
    exclude = { kind = "list_of_tables", doc = "rows removed when they match every key given" },
    include = { kind = "list_of_tables", doc = "merged into matching rows, else appended" },
    name = { kind = "string", doc = "job name template (default: suite and axis values joined by _)" },
    run = { kind = "command", doc = "shell string, argv list, or function(job) returning one" },
    setup = { kind = "command", doc = "run once before the job on its machine" },
    env = { kind = "env", doc = "environment variables; values are templates" },
    secrets = { kind = "list_of_strings", doc = "more variable names whose values are credentials "
      .. "(shown and stored as <redacted>)" },
    nodes = { kind = "positive_integer", doc = "ranks per job (default 1, or the nodes axis)" },
    timeout = { kind = "duration", doc = "per job: 90, \"30m\", \"2h\"" },
    max_parallel = { kind = "positive_integer", doc = "jobs running at once" },
    fail_fast = { kind = "boolean", doc = "stop launching after the first failed job" },
    max_restarts = { kind = "count", doc = "restarts after a non-zero exit" },
    max_pending = { kind = "duration", doc = "Slurm: a job still pending after this is cancelled, LAUNCH_FAILED "
      .. "(no limit by default)" },
    retry = { kind = "retry", doc = "new attempts on chosen failures: { on = { \"preempted\" } or "
      .. "{ \"infrastructure\" }, max = 2, backoff = \"30s\", exclude_node = true, max_total = N }" },
    classes = { kind = "classes", doc = "re-class termination reasons: { shm_exhausted = \"infrastructure\" }" },
    gpus = { kind = "gpus", doc = "GPUs per node, for GPU-hours where the backend does not say" },
    expect = { kind = "expect", doc = "default expectation of every job (see jobrun help expect)" },
    tags = { kind = "list_of_strings", doc = "tags of every job, for --tag" },
    git = { kind = "git", doc = "{ require_clean, require_pushed, allow_untracked }" },
    description = { kind = "string", doc = "what the suite tests" },
    notify = { kind = "notify", doc = "{ on, webhook, format, github = { repo, token, context }, url }: "
      .. "tell people when the run ends" },
    ["local"] = { kind = "table", doc = "options of the local backend" },
    slurm = { kind = "table", doc = "options of the slurm backend" },
    skypilot = { kind = "table", doc = "options of the skypilot backend" },
    scaling = { kind = "scaling",
      doc = "{ axis = \"nodes\", metric = \"tps\", min_efficiency = 0.9 }: a suite-level check" },
    needs = { kind = "list_of_strings", doc = "{ \"SUITE\", \"SUITE/JOB*\" }: jobs of this file's suites to wait for; "
      .. "a needed job that does not pass makes this suite's jobs SKIPPED" },
    report = { kind = "report", doc = "{ metrics = { \"NAME\", … } }: the metric columns the reports show" },
  },
  metric = {
    pattern = { kind = "string", doc = "Lua pattern; the first capture is the value (default: found by name)" },
    contains = { kind = "string", doc = "plain text a line must contain (fast prefilter in C)" },
    fn = { kind = "func", doc = "function(line, emit, missing, seen) for anything else; emit(value) adds a "
      .. "point, missing(why) says why there is none, seen is the fn's own table for this log" },
    budget = { kind = "number", doc = "seconds of CPU an fn may use per job (default 1)" },
    description = { kind = "string", doc = "what the metric measures" },
  },
  condition = {
    description = { kind = "string", doc = "what the condition makes happen" },
    args = { kind = "list_of_strings", doc = "arguments, reached through {args}" },
    env = { kind = "env", doc = "environment merged over the suite's" },
    expect = { kind = "expect", doc = "how a job under this condition should end (see jobrun help expect)" },
    timeout = { kind = "duration", doc = "overrides the suite's timeout" },
    tags = { kind = "list_of_strings", doc = "tags for --tag" },
    retry = { kind = "retry", doc = "overrides the suite's retry policy (see the suite's retry)" },
  },
  parser = {
    contains = { kind = "string", doc = "plain text a line must contain (fast prefilter in C)" },
    pattern = { kind = "string", doc = "Lua pattern; the first capture is the value" },
    field = { kind = "string", doc = "exit_code, termination_reason, restart_count or a fields key" },
    value = { kind = "any", doc = "value to set when the line is found (instead of a capture)" },
    number = { kind = "boolean", doc = "convert the capture to a number" },
    first = { kind = "boolean", doc = "the first occurrence wins (default: the last)" },
    scope = { kind = "scope", doc = "\"tail\" (default) or \"all\" of the log" },
    priority = { kind = "number", doc = "higher wins when parsers set the same field" },
    fn = { kind = "func", doc = "function(log, result) for anything else" },
    budget = { kind = "number", doc = "seconds of CPU an fn may use per job (default 1); past it the job fails" },
    description = { kind = "string", doc = "what the parser finds" },
  },
  expect = {
    status = { kind = "status", doc = "the job's normalised status, e.g. \"FAILED\" (CANCELLED, LAUNCH_FAILED, SKIPPED "
      .. "and LOST pass only when named here)" },
    exit_code = { kind = "exit_code", doc = "the exit code, or \"nonzero\" for any but 0" },
    termination = { kind = "termination", doc = "the termination reason, or a list of accepted ones" },
    restarts = { kind = "restarts", doc = "restarts: a number, or { min = N, max = N }" },
    log = { kind = "string", doc = "a Lua pattern that must occur in the log" },
    metrics = { kind = "metrics", doc = "NAME = \">= 40000\" | { \"<= 2.5\", agg = \"last\" } "
      .. "| { ref = { AXIS = { [v] = N } }, tol = \"-5%\" }" },
  },
  notify = {
    on = { type = '"always"|"failure"|"change"', doc = "when to notify: always, on a failed run (default), "
      .. "or when the verdict differs from the previous run of the suite" },
    webhook = { type = "string", doc = "a webhook URL (a secret: env(\"JOBRUN_WEBHOOK\"))" },
    format = { type = '"slack"|"discord"|"json"', doc = "the webhook's message format (default json)" },
    github = { type = "{ repo: string, token: string?, context: string? }",
               doc = "a commit status on OWNER/NAME: pending at launch, success or failure at the end" },
    url = { type = "string", doc = "where jobrun serve runs, for links to the run" },
  },
  retry = {
    on = { kind = "retry_on", doc = "termination reasons or cause classes that start a new attempt" },
    max = { kind = "count", doc = "new attempts per job at most (default 1)" },
    backoff = { kind = "duration", doc = "wait before each new attempt: \"30s\"" },
    exclude_node = { kind = "boolean", doc = "Slurm: --exclude the failed attempt's nodes" },
    max_total = { kind = "count", doc = "on the suite: new attempts in the whole run at most" },
  },
  git = {
    require_clean = { kind = "boolean", doc = "run and launch refuse a tree with changes" },
    require_pushed = { kind = "boolean", doc = "run and launch refuse a commit that no remote branch has" },
    allow_untracked = { kind = "boolean", doc = "untracked files do not make the tree dirty" },
  },
}

-- Each kind as a Lua language server type (share/jobrun-meta.lua is generated from these).
schema.LUA_TYPES = {
  string = "string", boolean = "boolean", number = "number", table = "table<string, any>",
  func = "(fun(log: string, result: jobrun.ParserResult))", any = "any",
  positive_integer = "integer", count = "integer", duration = "number|string",
  list_of_strings = "string[]", list_of_tables = "table<string, any>[]",
  command = "string|string[]|(fun(job: table): string|string[])",
  env = "table<string, string|number|boolean>", matrix = "table<string, any[]>", axes = "string[]",
  scope = '"tail"|"all"', expect = "jobrun.Expect|(fun(result: jobrun.Result): boolean, string?)",
  git = "jobrun.GitPolicy", status = "jobrun.Status", exit_code = 'integer|"nonzero"',
  termination = "string|string[]", notify = "jobrun.Notify", metrics = "table<string, string|table>",
  scaling = "{ axis: string, metric: string, min_efficiency: number }",
  report = "{ metrics: string[] }", restarts = "integer|{ min: integer?, max: integer? }",
  retry = "jobrun.Retry", retry_on = "string|string[]",
  classes = "table<string, \"infrastructure\"|\"program\"|\"unknown\">",
  gpus = "number",
}

-- The read-only `git` global's fields (jobrun.base.git), for the annotations and the docs.
schema.git_info = {
  commit = { type = "string", doc = "the HEAD commit's full hash" },
  short = { type = "string", doc = "its short hash" },
  branch = { type = "string?", doc = "the branch checked out; nil when detached" },
  dirty = { type = "boolean", doc = "tracked files differ from HEAD" },
  detached = { type = "boolean", doc = "HEAD is detached" },
  changed = { type = "string[]", doc = "the tracked paths that differ from HEAD" },
  untracked = { type = "string[]", doc = "the untracked paths" },
  upstream = { type = "string?", doc = "the branch's upstream, e.g. origin/main" },
  ahead = { type = "integer?", doc = "commits ahead of the upstream" },
  behind = { type = "integer?", doc = "commits behind the upstream" },
  remote_url = { type = "string?", doc = "the remote's URL, without user:password" },
  is_pushed = { type = "fun(commit: string?): boolean", doc = "whether a remote branch has the commit (default HEAD)" },
}

local function keys_of(t)
  local out = {}
  for k in pairs(t) do out[#out + 1] = k end
  table.sort(out)
  return out
end
schema.keys_of = keys_of

-- check_table(decl, t, where, what): every key known, every value of its kind.
local function check_table(decl, t, where, what)
  local fields = schema.fields[decl]
  for key, value in pairs(t) do
    if type(key) ~= "string" then
      errors.at(where, "%s: unexpected positional value %s (fields are written name = value)",
        what, type(value) == "string" and string.format("%q", value) or tostring(value))
    end
    local field = fields[key]
    if not field then
      errors.at(where, "unknown key '%s' in %s%s", key, what, suggest.hint(key, keys_of(fields)))
    end
    local why = kinds[field.kind](value, where, what .. "." .. key)
    if why then errors.at(where, "%s: %s %s", what, key, why) end
  end
end
schema.check_table = check_table

schema.MAX_DEPTH = 32

local function key_text(k)
  if type(k) == "string" and k:match("^[%a_][%w_]*$") then return "." .. k end
  if type(k) == "string" then return string.format("[%q]", k) end
  return "[" .. tostring(k) .. "]"
end

-- check_tree(t, where, what): values are saved as JSON, so every table a declaration holds must
-- be a tree (shared subtables are fine, a table that contains itself is not) of bounded depth.
function schema.check_tree(t, where, what)
  local open = {}
  local function walk(v, path, depth)
    if type(v) ~= "table" then return end
    if open[v] then
      errors.at(where, "%s: %s refers back to %s (a cyclic table; job data must be a tree)",
        what, path:sub(2), open[v] == "" and "the declaration's own table" or open[v]:sub(2))
    end
    if depth > schema.MAX_DEPTH then
      errors.at(where, "%s: %s is nested more than %d tables deep", what, path:sub(2), schema.MAX_DEPTH)
    end
    open[v] = path
    for k, x in next, v do walk(x, path .. key_text(k), depth + 1) end
    open[v] = nil
  end
  walk(t, "", 0)
end

function kinds.expect(v, where, what)
  if type(v) == "function" then return end
  if type(v) ~= "table" then return "must be a table or a function(result)" end
  check_table("expect", v, where, what)
end

function kinds.metrics(v)
  return require("jobrun.judge.metrics").check(v)
end

function kinds.scaling(v)
  return require("jobrun.judge.metrics").check_scaling(v)
end

function kinds.report(v)
  if type(v) ~= "table" then return "must be a table { metrics = { \"NAME\", … } }" end
  for k, x in pairs(v) do
    if k ~= "metrics" then return string.format("has no key '%s' (only metrics)", tostring(k)) end
    local why = kinds.list_of_strings(x)
    if why then return "metrics " .. why end
  end
end

-- The cause classes (README "Why a distributed job died") that every termination reason belongs to.
schema.CAUSE_CLASSES = { "infrastructure", "program", "unknown" }

function kinds.retry(v, where, what)
  if type(v) ~= "table" then return "must be a table: { on = { \"preempted\", \"node_fail\" }, max = 2 }" end
  check_table("retry", v, where, what)
  if v.on == nil then return "needs on = { reasons or classes… }" end
end

function kinds.retry_on(v)
  if type(v) == "string" then v = { v } end
  if not is_list(v) or #v == 0 then return "must be a reason or class, or a list of them" end
  for i, s in ipairs(v) do
    if type(s) ~= "string" then return string.format("item %d must be a string", i) end
  end
end

function kinds.classes(v)
  if type(v) ~= "table" then return "must be a table: { reason = \"infrastructure\" | \"program\" | \"unknown\" }" end
  for k, c in pairs(v) do
    if type(k) ~= "string" then return "keys must be termination reasons" end
    local ok = false
    for _, name in ipairs(schema.CAUSE_CLASSES) do if c == name then ok = true end end
    if not ok then
      local hint = suggest.hint(tostring(c), schema.CAUSE_CLASSES)
      for _, name in ipairs(schema.CAUSE_CLASSES) do -- "infra" for "infrastructure"
        if hint == "" and #tostring(c) >= 3 and name:sub(1, #tostring(c)) == tostring(c):lower() then
          hint = string.format(" (did you mean '%s'?)", name)
        end
      end
      return string.format("%s = '%s': a class is infrastructure, program or unknown%s", k, tostring(c), hint)
    end
  end
end

function kinds.gpus(v)
  if type(v) ~= "number" or v < 0 or v ~= v or v == math.huge then
    return "must be a number of GPUs per node (0 or more)"
  end
end

function kinds.git(v, where, what)
  if type(v) ~= "table" then return "must be a table" end
  check_table("git", v, where, what)
end

function kinds.status(v)
  for _, s in ipairs(schema.STATUSES) do if v == s then return end end
  return string.format("must be one of %s%s", table.concat(schema.STATUSES, ", "),
    suggest.hint(tostring(v), schema.STATUSES))
end

function kinds.exit_code(v)
  if math.type(v) == "integer" or v == "nonzero" then return end
  return "must be a whole number or \"nonzero\""
end

-- Termination reasons are plain names, compared as they are: "nccl_timeout", "signal_KILL".
schema.TERMINATION_NAME = "^[%w_][%w_.%-]*$"

local function termination_name(v)
  if type(v) ~= "string" then return "must be a string" end
  if v:match(schema.TERMINATION_NAME) then return end
  local hint = ""
  if v:match("^[!~%-]") then
    hint = "; there is no negation: write function(r) return r.termination_reason ~= \"x\" end"
  elseif v:match("[%*%?%[|]") then
    hint = "; there are no patterns: list the names accepted, { \"a\", \"b\" }"
  end
  return string.format("'%s' is not a plain name: a termination is a name of letters, digits, _, - and . "
    .. "(\"nccl_timeout\"), or a list of names, any of which passes%s", v, hint)
end

function kinds.termination(v)
  if type(v) == "string" then
    return termination_name(v)
  end
  if is_list(v) and #v > 0 then
    for i, s in ipairs(v) do
      local why = termination_name(s)
      if why then return string.format("item %d %s", i, why) end
    end
    return
  end
  return "must be a name or a list of names"
end

function kinds.restarts(v)
  if math.type(v) == "integer" and v >= 0 then return end
  if type(v) == "table" then
    for k, n in pairs(v) do
      if (k ~= "min" and k ~= "max") or math.type(n) ~= "integer" then
        return "must be a whole number or { min = N, max = N }"
      end
    end
    return
  end
  return "must be a whole number or { min = N, max = N }"
end

return schema
