-- Colour only on a TTY (and not TERM=dumb), never with NO_COLOR (no-color.org), always with
-- FORCE_COLOR or --color always.
local term = require "jobrun.c.term"

local color = {}

local CODES = { red = "31", green = "32", yellow = "33", blue = "34", magenta = "35", cyan = "36",
                bold = "1", dim = "2" }

-- enabled(mode, fd): mode is "auto", "always" or "never"; fd the stream it is for.
function color.enabled(mode, fd)
  if mode == "always" then return true end
  if mode == "never" then return false end
  local no_color = os.getenv("NO_COLOR")
  if no_color and no_color ~= "" then return false end
  local force = os.getenv("FORCE_COLOR")
  if force and force ~= "" then return true end
  if os.getenv("TERM") == "dumb" then return false end
  return term.isatty(fd or 1)
end

-- painter(on) -> function(text, name): a no-op when colour is off.
function color.painter(on)
  if not on then return function(text) return text end end
  return function(text, name)
    local code = CODES[name]
    if not code or text == "" then return text end
    return "\27[" .. code .. "m" .. text .. "\27[0m"
  end
end

-- strip(text): text without its colours (and any other escape sequence): the one stripper.
color.strip = require("jobrun.c.scan").strip

return color
