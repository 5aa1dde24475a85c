-- Matrix expansion with GitHub Actions semantics: the product of the axes in order, then
-- exclude (partial match), then include (merged into every original row that agrees on the
-- axes it names, else appended as a row of its own). Keys (axis names, and the keys of
-- exclude and include entries) match without regard to case, as GitHub's do; a table in an
-- exclude or include entry matches a value when every key it gives matches, recursively.
local suggest = require "jobrun.cli.suggest"

local matrix = {}

local function is_list(t)
  local n = 0
  for _ in pairs(t) do n = n + 1 end
  return n == #t
end

-- key_in(t, k): the key of t that k names: k itself, else a string key equal to it but for case.
local function key_in(t, k)
  if t[k] ~= nil then return k end
  if type(k) ~= "string" then return nil end
  local lower = k:lower()
  for tk in pairs(t) do
    if type(tk) == "string" and tk:lower() == lower then return tk end
  end
  return nil
end
matrix.key_in = key_in

-- matches(value, pattern): does a value of the matrix answer to a value given in exclude or
-- include? Scalars compare by value, and a scalar names a table value by its `name`. A table
-- pattern matches a table value when every key it gives matches (partially, recursively); a
-- list pattern matches a list of the same length whose items match one by one.
local function matches(v, p)
  if v == p then return true end
  if type(p) == "table" then
    if type(v) ~= "table" then return false end
    if #p > 0 and is_list(p) then
      if #v ~= #p or not is_list(v) then return false end
      for i = 1, #p do if not matches(v[i], p[i]) then return false end end
      return true
    end
    for k, pv in pairs(p) do
      local vk = key_in(v, k)
      if vk == nil or not matches(v[vk], pv) then return false end
    end
    return true
  end
  if type(v) == "table" then return v.name ~= nil and v.name == p end
  return false
end
matrix.matches = matches
matrix.same = matches

local function sorted_keys(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys, function(x, y) return tostring(x) < tostring(y) end)
  return keys
end

-- row_maker(axes) -> function(v1, v2, …) returning { [axes[1]] = v1, … } made at its size at
-- once (a table constructor), or nil when an axis name is not a plain string.
local function row_maker(axes)
  if #axes == 0 or #axes > 100 then return nil end
  local args, fields = {}, {}
  for i, a in ipairs(axes) do
    if type(a) ~= "string" then return nil end
    args[i] = "v" .. i
    fields[i] = string.format("[%q] = v%d", a, i)
  end
  local code = string.format("return function(%s) return { %s } end", table.concat(args, ", "),
    table.concat(fields, ", "))
  local chunk = load(code, "=matrix row", "t", {})
  return chunk and chunk()
end

local unpack = table.unpack

local function product(axes, values)
  -- One pass, the last axis turning fastest (as the axis-by-axis expansion below orders them).
  local make = row_maker(axes)
  if make then
    local lists, at, current = {}, {}, {}
    for i, a in ipairs(axes) do
      local list = {} -- (the values up to the first nil, as ipairs sees them)
      for j, v in ipairs(values[a]) do list[j] = v end
      lists[i] = list
      if #list == 0 then return {} end
      at[i] = 1
      current[i] = lists[i][1]
    end
    local rows, n, count = {}, 0, #axes
    while true do
      n = n + 1
      rows[n] = make(unpack(current, 1, count))
      local i = count
      while i >= 1 do
        local list = lists[i]
        if at[i] < #list then
          at[i] = at[i] + 1
          current[i] = list[at[i]]
          break
        end
        at[i] = 1
        current[i] = list[1]
        i = i - 1
      end
      if i == 0 then return rows end
    end
  end
  local rows = { {} }
  for _, axis in ipairs(axes) do
    local next_rows = {}
    for _, row in ipairs(rows) do
      for _, v in ipairs(values[axis]) do
        local r = {}
        for k, x in pairs(row) do r[k] = x end
        r[axis] = v
        next_rows[#next_rows + 1] = r
      end
    end
    rows = next_rows
  end
  return rows
end

-- count_axis(values, patterns, axis): the values that agree with every pattern naming the axis.
local function count_axis(values, patterns, axis)
  local n = 0
  for _, x in ipairs(values) do
    local ok = true
    for _, p in ipairs(patterns) do
      local v = p[axis]
      if v ~= nil and not matches(x, v) then ok = false; break end
    end
    if ok then n = n + 1 end
  end
  return n
end

-- rows_matching(spec, patterns): how many rows of the product agree with all the patterns
-- (a pattern naming a key that is no axis matches none).
local function rows_matching(spec, patterns, is_axis)
  for _, p in ipairs(patterns) do
    for k in pairs(p) do if not is_axis[k] then return 0 end end
  end
  local n = 1.0
  for _, a in ipairs(spec.axes) do
    n = n * count_axis(spec.values[a], patterns, a)
    if n == 0 then return 0 end
  end
  return n
end

-- outside_excludes(spec, base): rows that match all of base and no exclude entry
-- (inclusion-exclusion over the exclude entries).
local function outside_excludes(spec, base, is_axis)
  local ex = spec.exclude or {}
  local total = 0.0
  for mask = 0, (1 << #ex) - 1 do
    local patterns, bits = { table.unpack(base) }, 0
    for i = 1, #ex do
      if mask & (1 << (i - 1)) ~= 0 then patterns[#patterns + 1] = ex[i]; bits = bits + 1 end
    end
    local n = rows_matching(spec, patterns, is_axis)
    total = total + ((bits % 2 == 0) and n or -n)
  end
  return total
end

-- normalize(spec) -> spec whose exclude and include entries spell each key as the axis (or the
-- first include entry) spelled it, or nil, why when two axes differ only in case.
local function normalize(spec)
  local canon = {}
  for _, a in ipairs(spec.axes) do
    local lower = type(a) == "string" and a:lower() or a
    if canon[lower] ~= nil then
      return nil, string.format("axes '%s' and '%s' differ only in case, and matrix keys match "
        .. "without regard to case", tostring(canon[lower]), tostring(a))
    end
    canon[lower] = a
  end
  local function respell(entries, learn)
    if not entries then return nil end
    local out = {}
    for i, e in ipairs(entries) do
      local r = {}
      for k, v in pairs(e) do
        local lower = type(k) == "string" and k:lower() or k
        local key = canon[lower]
        if key == nil then
          key = k
          if learn then canon[lower] = k end
        end
        r[key] = v
      end
      out[i] = r
    end
    return out
  end
  local exclude = respell(spec.exclude, false)
  return { axes = spec.axes, values = spec.values, exclude = exclude, include = respell(spec.include, true),
           cell_keys = spec.cell_keys }
end
matrix.normalize = normalize

-- size(spec [, limit]) -> n, exact: how many rows expand(spec) makes, without making them.
-- When the product and the includes fit in limit, that bound is the answer; beyond it the
-- exact count is worked out when that is cheap (few exclude entries), else the bound stays.
function matrix.size(spec, limit)
  spec = normalize(spec) or spec
  local axes, values = spec.axes, spec.values
  local include = spec.include or {}
  if #axes == 0 then return math.max(1, #include), true end
  local rows = 1.0
  local work = 0
  for _, a in ipairs(axes) do
    rows = rows * #values[a]
    work = work + #values[a]
  end
  local bound = rows + #include
  local nex = #(spec.exclude or {})
  if (limit and bound <= limit) or nex > 16 then return bound, nex == 0 and #include == 0 end
  if (2.0 ^ nex) * (#include + 1) * work > 1e7 then return bound, false end
  local is_axis = {}
  for _, a in ipairs(axes) do is_axis[a] = true end
  local n = outside_excludes(spec, {}, is_axis)
  for _, inc in ipairs(include) do
    local axis_part = {}
    for k, v in pairs(inc) do if is_axis[k] then axis_part[k] = v end end
    if outside_excludes(spec, { axis_part }, is_axis) == 0 then n = n + 1 end
  end
  return n, true
end

-- expand{ axes = {names in order}, values = {axis = list}, exclude = list, include = list }
-- -> list of rows { params = {k = v}, keys = {ordered names} }, or nil, why
function matrix.expand(spec)
  local why
  spec, why = normalize(spec)
  if not spec then return nil, why end
  local axes, values = spec.axes, spec.values
  local is_axis = {}
  for _, a in ipairs(axes) do is_axis[a] = true end

  local rows = (#axes > 0) and product(axes, values) or {}

  for i, ex in ipairs(spec.exclude or {}) do
    for k in pairs(ex) do
      if not is_axis[k] then
        return nil, string.format("exclude entry %d: '%s' is not an axis of the matrix%s",
          i, tostring(k), suggest.hint(k, axes))
      end
    end
    local kept = {}
    for _, row in ipairs(rows) do
      local match = true
      for k, v in pairs(ex) do
        if not matches(row[k], v) then match = false; break end
      end
      if not match then kept[#kept + 1] = row end
    end
    rows = kept
  end

  local added_keys = {}
  local original = #rows
  local appended = {}
  -- An include entry's keys that are job fields (spec.cell_keys, lower case) set that cell's
  -- field (row_cells[row]) instead of becoming parameters; an axis of that name stays an axis.
  local cell_keys, row_cells = spec.cell_keys, {}
  local function split(inc)
    if not cell_keys then return inc, nil end
    local plain, cell = {}, nil
    for k, v in pairs(inc) do
      if not is_axis[k] and type(k) == "string" and cell_keys[k:lower()] then
        cell = cell or {}
        cell[k:lower()] = v
      else
        plain[k] = v
      end
    end
    return plain, cell
  end
  local function set_cell(row, cell)
    if not cell then return end
    local c = row_cells[row] or {}
    for k, v in pairs(cell) do c[k] = v end
    row_cells[row] = c
  end
  for _, entry in ipairs(spec.include or {}) do
    local inc, cell = split(entry)
    local matched = false
    for r = 1, original do
      local row = rows[r]
      local match = true
      for k, v in pairs(inc) do
        if is_axis[k] and not matches(row[k], v) then match = false; break end
      end
      if match then
        matched = true
        for k, v in pairs(inc) do
          if not is_axis[k] then row[k] = v; added_keys[k] = true end
        end
        set_cell(row, cell)
      end
    end
    if not matched then
      local row = {}
      for k, v in pairs(inc) do row[k] = v; if not is_axis[k] then added_keys[k] = true end end
      set_cell(row, cell)
      appended[#appended + 1] = row
    end
  end
  for _, row in ipairs(appended) do rows[#rows + 1] = row end

  if #axes == 0 and #rows == 0 then rows = { {} } end

  local extra = sorted_keys(added_keys)
  local names = {}
  for _, a in ipairs(axes) do names[#names + 1] = a end
  for _, k in ipairs(extra) do names[#names + 1] = k end
  -- Rows with the same keys share one list of them: a tree by "is names[j] there?".
  local LIST = {}
  local shapes = {}
  local out = {}
  for i, params in ipairs(rows) do
    local node = shapes
    for j = 1, #names do
      local there = params[names[j]] ~= nil
      local child = node[there]
      if not child then child = {}; node[there] = child end
      node = child
    end
    local keys = node[LIST]
    if not keys then
      keys = {}
      for j = 1, #names do if params[names[j]] ~= nil then keys[#keys + 1] = names[j] end end
      node[LIST] = keys
    end
    out[i] = { params = params, keys = keys, cell = row_cells[params] }
  end
  return out
end

return matrix
