-- Notifications when a run ends (README "Notifications"): a webhook message (Slack, Discord or
-- JSON) and GitHub commit statuses. Whoever sees the run end sends them, once per run end: the
-- end is claimed in state.json under its lock, so two observers ending at once send one message.
-- Webhook URLs and tokens are secrets: they stay in memory (from the plan, or the suite read
-- again) and never reach state.json, a command line or the screen; a URL is shown by its host.
local json = require "jobrun.base.json"
local errors = require "jobrun.base.errors"
local suggest = require "jobrun.cli.suggest"
local process = require "jobrun.c.process"

local notify = {}

notify.ON = { "always", "failure", "change" }
notify.FORMATS = { "slack", "discord", "json" }
-- GitHub's commit status description is cut at 140 characters by the API.
notify.GITHUB_DESCRIPTION_MAX = 140
-- How many failures a message lists.
notify.MAX_FAILURES = 10
-- Delivery: tries on 5xx and network errors, the waits between them (seconds), the timeouts.
notify.TRIES = 3
notify.BACKOFF = { 1, 2 }
notify.TIMEOUT = 10
notify.CONNECT_TIMEOUT = 5

local KEYS = { on = true, webhook = true, format = true, github = true, url = true }
local GITHUB_KEYS = { repo = true, token = true, context = true }

local function one_of(v, list)
  for _, x in ipairs(list) do if v == x then return true end end
  return false
end

local function http_url(v) return type(v) == "string" and v:match("^https?://[^/%s]+") ~= nil end

-- check(spec) -> nil when the suite's notify table is well formed, else why (schema kind).
function notify.check(v)
  if type(v) ~= "table" then return "must be a table { on, webhook, format, github, url }" end
  local known = {}
  for k in pairs(KEYS) do known[#known + 1] = k end
  table.sort(known)
  for k in pairs(v) do
    if not KEYS[k] then
      return string.format("has an unknown key '%s'%s", tostring(k), suggest.hint(tostring(k), known))
    end
  end
  if v.on ~= nil and not one_of(v.on, notify.ON) then
    return string.format("on must be one of %s%s", table.concat(notify.ON, ", "),
      suggest.hint(tostring(v.on), notify.ON))
  end
  if v.format ~= nil and not one_of(v.format, notify.FORMATS) then
    return string.format("format must be one of %s%s", table.concat(notify.FORMATS, ", "),
      suggest.hint(tostring(v.format), notify.FORMATS))
  end
  -- A webhook from env("X") is nil when X is unset: no webhook, not an error.
  if v.webhook ~= nil and not http_url(v.webhook) then return "webhook must be an http(s):// URL" end
  if v.url ~= nil and not http_url(v.url) then return "url must be an http(s):// URL (where jobrun serve runs)" end
  if v.github ~= nil then
    local g = v.github
    if type(g) ~= "table" then return "github must be a table { repo, token, context }" end
    for k in pairs(g) do
      if not GITHUB_KEYS[k] then
        return string.format("github has an unknown key '%s'%s", tostring(k),
          suggest.hint(tostring(k), { "repo", "token", "context" }))
      end
    end
    if type(g.repo) ~= "string" or not g.repo:match("^[%w_.-]+/[%w_.-]+$") then
      return "github.repo must be \"OWNER/NAME\""
    end
    if g.token ~= nil and type(g.token) ~= "string" then return "github.token must be a string" end
    if g.context ~= nil and type(g.context) ~= "string" then return "github.context must be a string" end
  end
end

-- host(url) -> the URL's host (and port): all that is ever shown or stored of a webhook.
function notify.host(url)
  local authority = tostring(url):match("^%a[%w+.-]*://([^/?#]+)")
  return authority and (authority:match("@([^@]*)$") or authority) or "?"
end

-- public(spec, suite) -> what state.json keeps of the notify table: no URL but its host, no token.
function notify.public(spec, suite)
  if type(spec) ~= "table" then return nil end
  local out = { on = spec.on or "failure", format = spec.format or "json", url = spec.url }
  if spec.webhook then out.webhook_host = notify.host(spec.webhook) end
  if spec.github then
    local context = (spec.github.context or "jobrun/{suite}"):gsub("{suite}", function() return suite or "" end)
    out.github = { repo = spec.github.repo, context = context }
  end
  return out
end

-- ---------------------------------------------------------------------------------------------
-- The message

local function summary(data)
  return require("jobrun.judge.results").summary(data.jobs)
end

local function run_passed(data)
  local s = summary(data)
  return s.failed == 0 and s.pending == 0
end

local function short(commit) return commit and tostring(commit):sub(1, 12) or nil end

-- reason(job) -> the failure in words: the culprit's line where the log named one ("rank 3 (node
-- gpu-07): cuda_oom → nccl_timeout on ranks 0–2, 4–7 → exit 1"), else its termination (or
-- status) and exit code.
local function reason(job)
  local line = require("jobrun.judge.forensics").line(job.culprit, job.cause_chain, math.tointeger(job.exit_code))
  if line then return line end
  local parts = {}
  local why = job.termination_reason
  if why == nil or why == json.null then why = job.status end
  parts[#parts + 1] = tostring(why)
  if job.exit_code ~= nil and job.exit_code ~= json.null then parts[#parts + 1] = "exit " .. tostring(job.exit_code) end
  return table.concat(parts, ", ")
end

local function failures(data)
  local out = {}
  for _, job in ipairs(data.jobs) do
    if job.verdict == "fail" then out[#out + 1] = job end
  end
  return out
end

local function run_link(data, url)
  if not url then return nil end
  return url:gsub("/+$", "") .. "/runs/" .. data.run_id
end

local function counts_text(s)
  return string.format("%d passed, %d failed%s of %d", s.passed, s.failed,
    s.pending > 0 and string.format(", %d pending", s.pending) or "", s.total)
end

-- Text from names and logs goes into code spans, where neither Slack nor Discord makes links
-- or mentions; what would end the span (a backtick) or start Slack's <…> escapes is replaced.
local function slack_escape(s)
  return (tostring(s):gsub("&", "&amp;"):gsub("<", "&lt;"):gsub(">", "&gt;"))
end
local function code(s, max)
  s = tostring(s):gsub("[%c`]", function(c) return c == "`" and "'" or " " end)
  if max and #s > max then s = s:sub(1, max) .. "…" end
  return "`" .. s .. "`"
end
-- Discord's Markdown: inside a code span only a backtick is special (handled by code()).

local function lines(data, escape, url)
  local s = summary(data)
  local passed = run_passed(data)
  local head = string.format("%s jobrun run %s (suite %s%s): %s", passed and "✅" or "❌",
    code(data.run_id, 120), code(data.suite or "?", 120),
    data.git and data.git.commit and (", commit " .. code(short(data.git.commit))) or "", counts_text(s))
  local out = { escape(head) }
  local fails = failures(data)
  for i, job in ipairs(fails) do
    if i > notify.MAX_FAILURES then
      out[#out + 1] = escape(string.format("… and %d more failures", #fails - notify.MAX_FAILURES))
      break
    end
    out[#out + 1] = escape("• " .. code(job.name, 200) .. ": " .. code(reason(job), 200))
  end
  local link = run_link(data, url)
  return out, link, head
end

-- body(data, format, url) -> the JSON text a webhook of that format is sent.
function notify.body(data, format, url)
  if format == "slack" then
    -- Slack's incoming webhooks: `text` (mrkdwn; &, <, > escaped as Slack documents), shown
    -- in notifications, and the same in a section block.
    local out, link, head = lines(data, slack_escape, url)
    if link then out[#out + 1] = "<" .. slack_escape(link) .. "|Open the run>" end
    local text = table.concat(out, "\n")
    return json.encode(json.object({
      text = text,
      blocks = { json.object({ type = "section",
                               text = json.object({ type = "mrkdwn", text = text }, { "type", "text" }) },
                             { "type", "text" }) },
    }, { "text", "blocks" })), head
  elseif format == "discord" then
    -- Discord's execute-webhook: `content` (at most 2,000 characters); allowed_mentions with an
    -- empty parse list, so that no text in it pings anyone.
    local out, link, head = lines(data, function(s) return s end, url)
    if link then out[#out + 1] = "<" .. link .. ">" end
    local text = table.concat(out, "\n")
    if utf8.len(text) and utf8.len(text) > 2000 then text = text:sub(1, utf8.offset(text, 1997) - 1) .. "…" end
    return json.encode(json.object({ content = text, allowed_mentions = json.object({ parse = json.array() }) },
      { "content", "allowed_mentions" })), head
  end
  -- json: the run's --json summary with its failures.
  local s = summary(data)
  local fails = {}
  for i, job in ipairs(failures(data)) do
    if i > notify.MAX_FAILURES then break end
    fails[#fails + 1] = json.object({
      name = job.name, status = job.status, exit_code = job.exit_code,
      termination_reason = job.termination_reason, culprit = job.culprit,
      mismatches = json.array(job.mismatches or {}), log_path = job.log_path,
    }, { "name", "status", "exit_code", "termination_reason", "culprit", "mismatches", "log_path" })
  end
  return json.encode(json.object({
    run_id = data.run_id, suite = data.suite, backend = data.backend, git = data.git,
    started_at = data.started_at, passed = run_passed(data),
    summary = json.object(s, { "total", "passed", "failed", "pending" }),
    failures = json.array(fails), failures_total = #failures(data), url = run_link(data, url),
  }, { "run_id", "suite", "backend", "git", "started_at", "passed", "summary", "failures", "failures_total", "url" }))
end

-- github_status(data, state) -> the body of a commit status: state pending|success|failure.
function notify.github_status(data, state, context, url)
  local s = summary(data)
  local desc
  if state == "pending" then
    desc = string.format("%d jobs running", s.total)
  else
    desc = counts_text(s)
  end
  if #desc > notify.GITHUB_DESCRIPTION_MAX then desc = desc:sub(1, notify.GITHUB_DESCRIPTION_MAX - 3) .. "..." end
  return json.encode(json.object({ state = state, target_url = run_link(data, url), description = desc,
                                   context = context }, { "state", "target_url", "description", "context" }))
end

-- ---------------------------------------------------------------------------------------------
-- Delivery

-- post(request) -> http_status or nil, error: libcurl, TRIES tries with backoff on 5xx and
-- network errors, none on 4xx; every try is passed to record(try).
local function post(client, req, record, sleep)
  local status, err
  for try = 1, notify.TRIES do
    local res = client:perform({ { method = "POST", url = req.url, headers = req.headers, body = req.body,
                                   timeout = notify.TIMEOUT } })[1]
    if res.error then
      -- libcurl's words may carry the URL: only the host is kept.
      status, err = nil, tostring(res.error):gsub("https?://%S+", function(u) return notify.host(u) end)
    else
      status, err = res.status, (res.status >= 400) and ("HTTP " .. res.status) or nil
    end
    record({ try = try, http_status = status, error = err })
    if status and status < 500 then break end
    if try < notify.TRIES then sleep(notify.BACKOFF[try] or notify.BACKOFF[#notify.BACKOFF]) end
  end
  return status, err
end

local function github_api()
  local base = os.getenv("GITHUB_API_URL")
  if base == nil or base == "" then base = "https://api.github.com" end
  return (base:gsub("/+$", ""))
end

-- targets(spec, public, data, what) -> the requests to send: what = "end" or "launch".
local function requests(spec, public, data, what)
  local out = {}
  if what == "end" and spec.webhook then
    local body = notify.body(data, public.format, public.url)
    out[#out + 1] = { target = public.format .. ":" .. notify.host(spec.webhook), url = spec.webhook, body = body,
                      headers = { "Content-Type: application/json" } }
  end
  if spec.github and data.git and data.git.commit then
    local state = what == "launch" and "pending" or (run_passed(data) and "success" or "failure")
    local headers = { "Accept: application/vnd.github+json", "X-GitHub-Api-Version: 2022-11-28",
                      "Content-Type: application/json", "User-Agent: jobrun" }
    if spec.github.token then headers[#headers + 1] = "Authorization: Bearer " .. spec.github.token end
    out[#out + 1] = {
      target = "github:" .. spec.github.repo .. ":" .. state,
      url = github_api() .. "/repos/" .. spec.github.repo .. "/statuses/" .. data.git.commit,
      body = notify.github_status(data, state, public.github.context, public.url), headers = headers,
    }
  end
  return out
end

-- ---------------------------------------------------------------------------------------------
-- When

-- generation(data): grows with every rerun (each new attempt of a job raises its `try`), so a
-- run end is notified once, and again after a rerun ends.
function notify.generation(data)
  local n = 0
  for _, job in ipairs(data.jobs) do n = n + (job.try or 1) end
  return n
end

local function all_ended(data)
  for _, job in ipairs(data.jobs) do
    if require("jobrun.judge.verdict").TERMINAL[job.status] ~= true then return false end
  end
  return #data.jobs > 0
end

-- previous_verdict(state_dir, data) -> true/false (passed) of the latest earlier run of the same
-- suite, or nil when there is none.
local function previous_passed(run_dir, data)
  local state = require "jobrun.run.store"
  local state_dir = run_dir:match("^(.*)/runs/[^/]+$")
  if not state_dir then return nil end
  local runs = state.list(state_dir)
  for i = #runs, 1, -1 do
    local id = runs[i].id
    if id ~= data.run_id then
      local ok, other = pcall(state.read, state_dir .. "/runs/" .. id)
      if ok and other.suite == data.suite and (other.started_at or "") <= (data.started_at or "")
          and all_ended(other) then
        return run_passed(other)
      end
    end
  end
  return nil
end

-- due(data, run_dir) -> whether the run's end is to be notified by its `on` rule.
function notify.due(data, run_dir)
  local on = data.notify.on or "failure"
  if on == "always" then return true end
  if on == "failure" then return not run_passed(data) end
  local before = previous_passed(run_dir, data)
  return before == nil or before ~= run_passed(data)
end

-- secret_spec(run) -> the notify table with its secrets: from this process's plan, else from the
-- suite read again; nil, why when neither has it.
local function secret_spec(run)
  local p = run.plan
  if type(p) ~= "table" or p.notify == nil then
    p = run:replan()
  end
  if type(p) ~= "table" then return nil, "the suite could not be read again for its notify table" end
  if type(p.notify) ~= "table" then return nil, "the suite has no notify table any more" end
  return p.notify
end

-- send(run, what, opts) -> the records of this delivery. what: "end" | "launch".
-- opts.dry_run: print what would be sent instead; opts.out: where (default stdout).
function notify.send(run, what, opts)
  opts = opts or {}
  local data = run.data
  local spec, why = secret_spec(run)
  local records = {}
  if not spec then
    records[1] = { target = "notify", at = require("jobrun.run.store").iso(process.time()), error = why }
  else
    local reqs = requests(spec, data.notify, data, what)
    if opts.dry_run then
      local out = opts.out or io.stdout
      for _, req in ipairs(reqs) do
        out:write("POST ", req.target, "\n", req.body, "\n")
      end
      return {}
    end
    local client = require("jobrun.c.http").client({ connect_timeout = notify.CONNECT_TIMEOUT })
    local sleep = opts.sleep or function(s) process.sleep(s) end
    for _, req in ipairs(reqs) do
      local at = require("jobrun.run.store").iso(process.time())
      local last
      post(client, req, function(t) last = t end, sleep)
      records[#records + 1] = { target = req.target, at = at, http_status = last.http_status, error = last.error,
                                tries = last.try }
    end
    client:close()
  end
  run:update(function(r)
    r.data.notifications = r.data.notifications or {}
    for _, rec in ipairs(records) do
      r.data.notifications[#r.data.notifications + 1] = json.object(rec,
        { "target", "at", "http_status", "error", "tries" })
    end
    return #records > 0
  end)
  for _, rec in ipairs(records) do
    if rec.error then io.stderr:write("jobrun: notification to ", rec.target, " failed: ", rec.error, "\n") end
  end
  return records
end

-- on_end(run): the run has been seen ending by this process; notify if due and not yet done for
-- this end. Never raises: a notification never changes a verdict or an exit code.
function notify.on_end(run)
  local data = run.data
  if type(data.notify) ~= "table" or not all_ended(data) then return end
  local ok, err = pcall(function()
    local gen = notify.generation(data)
    local mine = false
    run:update(function(r)
      if r.data.notified_end == gen then return false end
      r.data.notified_end = gen
      mine = true
    end)
    if mine and notify.due(run.data, run.dir) then notify.send(run, "end") end
  end)
  if not ok then
    io.stderr:write("jobrun: notification failed: ", errors.is_user(err) and err.message or tostring(err), "\n")
  end
end

-- on_launch(run): a GitHub commit status "pending" as the run starts.
function notify.on_launch(run)
  local data = run.data
  if type(data.notify) ~= "table" or not data.notify.github then return end
  local ok, err = pcall(notify.send, run, "launch")
  if not ok then
    io.stderr:write("jobrun: notification failed: ", errors.is_user(err) and err.message or tostring(err), "\n")
  end
end

return notify
