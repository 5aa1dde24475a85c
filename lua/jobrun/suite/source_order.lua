-- Lua tables forget the order of their keys, but a matrix's axes are ordered (job order and
-- default names follow it). We recover it from the suite's source text: the keys of the
-- `matrix = { … }` literal inside the declaration that starts at a given line.
local source_order = {}

-- tokens(src, from): a minimal Lua tokenizer yielding (kind, text); strings and comments skipped
-- as whole tokens so that braces inside them do not count.
local function tokens(src, pos)
  return coroutine.wrap(function()
    local n = #src
    while pos <= n do
      local c = src:sub(pos, pos)
      if c:match("%s") then
        pos = pos + 1
      elseif src:sub(pos, pos + 1) == "--" then
        local eqs = src:match("^%-%-%[(=*)%[", pos)
        if eqs then
          local close = src:find("]" .. eqs .. "]", pos, true)
          pos = close and close + #eqs + 2 or n + 1
        else
          local nl = src:find("\n", pos, true)
          pos = nl and nl + 1 or n + 1
        end
      elseif c == '"' or c == "'" then
        local i = pos + 1
        while i <= n do
          local d = src:sub(i, i)
          if d == "\\" then i = i + 2
          elseif d == c or d == "\n" then break
          else i = i + 1 end
        end
        coroutine.yield("string", src:sub(pos + 1, i - 1))
        pos = i + 1
      elseif src:match("^%[=*%[", pos) then
        local eqs = src:match("^%[(=*)%[", pos)
        local close = src:find("]" .. eqs .. "]", pos, true)
        coroutine.yield("string", src:sub(pos + #eqs + 2, (close or n + 1) - 1))
        pos = close and close + #eqs + 2 or n + 1
      elseif c:match("[%a_]") then
        local word = src:match("^[%w_]+", pos)
        coroutine.yield("name", word)
        pos = pos + #word
      elseif src:sub(pos, pos + 1) == "==" then
        coroutine.yield("op", "==")
        pos = pos + 2
      else
        coroutine.yield("op", c)
        pos = pos + 1
      end
    end
  end)
end

local function line_offset(src, line)
  local pos = 1
  for _ = 2, line do
    local nl = src:find("\n", pos, true)
    if not nl then return nil end
    pos = nl + 1
  end
  return pos
end

local OPEN = { ["{"] = true, ["("] = true, ["["] = true }
local CLOSE = { ["}"] = true, [")"] = true, ["]"] = true }

-- matrix_axes(src, line) -> list of axis names in written order, or nil when the declaration
-- at `line` has no literal matrix table.
function source_order.matrix_axes(src, line)
  local start = line_offset(src, line)
  if not start then return nil end
  local depth, in_decl = 0, false
  local matrix_depth, axes = nil, {}
  local prev, prev2 -- the two previous tokens, for `name =` and `[ "x" ] =`
  local expect_matrix_table = false
  for kind, text in tokens(src, start) do
    if kind == "op" and OPEN[text] then
      if text == "{" and not in_decl then in_decl = true; depth = 0 end
      depth = depth + 1
      if expect_matrix_table and text == "{" then matrix_depth = depth end
      expect_matrix_table = false
    elseif kind == "op" and CLOSE[text] then
      if matrix_depth and depth == matrix_depth then return axes end
      depth = depth - 1
      if in_decl and depth == 0 then return nil end
    elseif kind == "op" and text == "=" then
      if matrix_depth and depth == matrix_depth then
        if prev and prev.kind == "name" then
          axes[#axes + 1] = prev.text
        elseif prev and prev.text == "]" and prev2 and prev2.kind == "string" then
          axes[#axes + 1] = prev2.text
        end
      elseif in_decl and depth == 1 and prev and prev.kind == "name" and prev.text == "matrix" then
        expect_matrix_table = true
      end
    elseif expect_matrix_table then
      return nil -- matrix = <expression>: not a literal, order unknown
    end
    prev2, prev = prev, { kind = kind, text = text }
  end
  return nil
end

return source_order
