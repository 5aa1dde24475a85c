-- "did you mean": the closest candidate by edit distance, if it is close enough to be a typo.
local suggest = {}

local function distance(a, b)
  local prev, cur = {}, {}
  for j = 0, #b do prev[j] = j end
  for i = 1, #a do
    cur[0] = i
    local ca = a:byte(i)
    for j = 1, #b do
      local cost = (ca == b:byte(j)) and 0 or 1
      cur[j] = math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
    end
    prev, cur = cur, prev
  end
  return prev[#b]
end
suggest.distance = distance

-- closest(word, candidates) -> candidate | nil
function suggest.closest(word, candidates)
  word = tostring(word)
  local best, best_d
  for _, c in ipairs(candidates) do
    local d = distance(word:lower(), tostring(c):lower())
    if not best_d or d < best_d or (d == best_d and tostring(c) < tostring(best)) then
      best, best_d = c, d
    end
  end
  if best and best_d <= math.max(1, math.min(3, #word // 3)) then return best end
  return nil
end

-- hint(word, candidates) -> " (did you mean 'x'?)" or ""
function suggest.hint(word, candidates)
  local c = suggest.closest(word, candidates)
  return c and string.format(" (did you mean '%s'?)", c) or ""
end

return suggest
