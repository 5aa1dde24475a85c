-- JSON for state files and --json output (README "JSON"). Decoding and encoding are src/json.c's:
-- lua-cjson 2.1 cannot tell an empty array from an empty object, nor keep a key order, and it
-- decodes every number as a float. This module marks tables for the encoder and names its entry
-- points.
local cjson = require "cjson"
local encoder = require "jobrun.c.json"

local json = {}

local ARRAY = { __name = "json.array" }
json.null = cjson.null

-- array(t): marks t as a JSON array, so that an empty one encodes as [].
function json.array(t)
  return setmetatable(t or {}, ARRAY)
end

-- raw(text): JSON text, checked already, that encode puts in as it is (a series read from a
-- file goes into an answer without being decoded and encoded again).
local RAW = { __name = "json.raw" }
function json.raw(text)
  return setmetatable({ text }, RAW)
end

-- with_series(records, line, order [, at]): a job's metric records (name -> record) as a result's
-- `metrics`: names sorted, each record's keys in `order`, with the series and series_step of
-- the record's metric taken as they are from `line` (the job's line in its run's series file)
-- where the record has none of its own and the line has them as write_series writes them (with
-- `at`, `line` is a text of lines and the line is the one starting at its byte `at`)
-- (src/json.c finds them and checks each is an array of numbers; a line with an escape in it is
-- not read: see metrics.json_records).
local WITH_SERIES = { __name = "json.with_series" }
function json.with_series(records, line, order, at)
  return setmetatable({ records, line or false, order, at }, WITH_SERIES)
end

-- record(t, keys): t encodes with exactly these keys, in this order, nil as null — no key
-- gathering or sorting, for the many records of a big run.
function json.record(t, keys)
  return setmetatable(t, { __name = "json.record", order = keys, exact = true })
end

-- object(t, order): t encodes with the keys of `order` first, in that order, then the rest sorted.
function json.object(t, order)
  return setmetatable(t or {}, { __name = "json.object", order = order })
end

local c_encode = encoder.encode

-- encode(v [, pretty]): pretty indents by two spaces.
function json.encode(v, pretty)
  return c_encode(v, pretty or false, 0)
end

-- write(file, v [, pretty]) -> true | nil, why: v's text (as encode makes it) written to an io
-- file a chunk at a time, with no document-sized buffer or string (a big run's --json answer).
local c_write = encoder.write
function json.write(file, v, pretty)
  return c_write(file, v, pretty or false)
end

-- encode_into(v, out, n, pretty, depth) -> n: appends v's text to out[n+1], as if v stood at
-- that depth of a bigger document (for writing one in pieces).
function json.encode_into(v, out, n, pretty, depth)
  out[n + 1] = c_encode(v, pretty or false, depth or 0)
  return n + 1
end

-- encode_string(s) -> s as a JSON string.
function json.encode_string(s)
  return c_encode(s, false, 0)
end

-- indent(depth) -> "\n" and two spaces per depth.
local newlines = setmetatable({}, { __index = function(t, depth)
  local s = "\n" .. string.rep("  ", depth)
  t[depth] = s
  return s
end })
function json.indent(depth) return newlines[depth] end

local c_decode = encoder.decode

-- decode(text) -> value | nil, message ("json: <what> at byte N"): src/json.c's decoder, which
-- gives what lua-cjson's decode gave with its whole floats made integers again (a restart count
-- reads 1, not 1.0), null as json.null; tests/unit/json.lua holds it to lua-cjson. It makes each
-- table at its size and each whole number an integer as it reads: lua-cjson's growing tables
-- and the walk after it were a third of reading a 10,000-job state.json.
function json.decode(text)
  local ok, value = pcall(c_decode, text)
  if not ok then return nil, tostring(value) end
  return value
end

return json
