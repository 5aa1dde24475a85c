-- jobrun serve: the live dashboard of the state directory's runs (jobrun.serve).
local options = require "jobrun.cli.options"
local errors = require "jobrun.base.errors"
local process = require "jobrun.c.process"

local command = {
  name = "serve",
  usage = "jobrun serve [--port 8765] [--bind 127.0.0.1] [--token T] [--allow-actions] [options]",
  summary = "serve a live dashboard of the runs over HTTP",
  options = options.concat({
    { "port", "value", "N", "the port (default 8765; 0 picks a free one)" },
    { "bind", "value", "ADDR", "the address to listen on (default 127.0.0.1: this machine only)" },
    { "token", "value", "T", "require this token (env JOBRUN_SERVE_TOKEN); needed for any --bind but loopback" },
    { "allow-actions", "flag", nil, "offer kill and rerun on run pages (POST with the page's CSRF token)" },
    { "idle-timeout", "value", "SECONDS", "close a connection idle this long (default 30)" },
  }, options.COMMON),
  help = [[
Serves the state directory's runs: a runs page, a page per run (grid, table, timeline, failures,
attempts) that updates by itself within 2 s of a change, a page per job with its log followed
live, diff, history and flaky views, and the JSON API under /api/ (the --json shapes). Every
asset is in the binary; pages load nothing from elsewhere. A run with unfinished jobs and no
jobrun process driving it is refreshed at its backend's poll interval while someone watches it.
With a token, requests carry it as "Authorization: Bearer T", or log in once through the URL
printed at start (it sets a session cookie). Ctrl-C stops the server.]],
}

function command.run(opts, args)
  if #args > 0 then errors.raise("serve: unexpected argument '%s'\nUsage: %s", args[1], command.usage) end
  local port = 8765
  if opts.port then
    port = math.tointeger(tonumber(opts.port))
    if not port or port < 0 or port > 65535 then errors.raise("serve: --port must be 0-65535, got '%s'", opts.port) end
  end
  local timeout
  if opts["idle-timeout"] then
    timeout = math.tointeger(tonumber(opts["idle-timeout"]))
    if not timeout or timeout < 1 then errors.raise("serve: --idle-timeout must be a whole number of seconds") end
  end
  local token = opts.token or os.getenv("JOBRUN_SERVE_TOKEN")
  if token == "" then token = nil end
  local serve = require "jobrun.serve"
  local server = serve.new({ state_dir = opts["state-dir"], port = port, bind = opts.bind, token = token,
                             allow_actions = opts["allow-actions"], timeout = timeout })
  local signals <close> = assert(process.signals({ "INT", "TERM", "HUP" }))
  local url = server:base_url()
  io.stderr:write(string.format("jobrun serve: %s/ (runs of %s)%s\n", url, server.state_dir,
    server.allow_actions and "; actions on" or ""))
  if server.login_code then
    io.stderr:write(string.format("  log in once: %s/login?code=%s\n", url, server.login_code))
  end
  io.stderr:flush()
  local sig = server:loop(signals)
  server:close()
  return sig == "INT" and 130 or sig == "TERM" and 143 or 0
end

return command
