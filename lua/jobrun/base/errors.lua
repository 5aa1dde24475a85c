-- User errors: tables the host prints as "jobrun: <message>" with an exit code and no traceback.
-- Anything else raised is an internal error and gets a traceback (src/host.c).
local errors = {}

local UserError = {}
UserError.__index = UserError
UserError.__tostring = function(e) return e.message end

errors.USAGE = 2
errors.INFRA = 3

-- new(message, code): the message cleaned of control characters (jobrun.report.sanitize): it often
-- quotes what the user gave (arguments, names, a suite's own error), and it goes to a terminal.
function errors.new(message, code)
  message = require("jobrun.report.sanitize").message(message)
  return setmetatable({ jobrun_user_error = true, message = message, code = code or errors.USAGE }, UserError)
end

function errors.is_user(e)
  return getmetatable(e) == UserError
end

-- raise(fmt, ...): a usage error (exit 2).
function errors.raise(fmt, ...)
  error(errors.new(string.format(fmt, ...)), 0)
end

-- infra(fmt, ...): an infrastructure error that stopped the command (exit 3).
function errors.infra(fmt, ...)
  error(errors.new(string.format(fmt, ...), errors.INFRA), 0)
end

-- at(where, fmt, ...): a usage error about a declaration; where = {file=, line=}.
function errors.at(where, fmt, ...)
  local prefix = where and where.file and string.format("%s:%d: ", where.file, where.line or 0) or ""
  error(errors.new(prefix .. string.format(fmt, ...)), 0)
end

return errors
