-- The verdicts as a grid over two matrix axes (--grid; README "Reports"), as GitHub Actions shows a
-- matrix: rows are the values of one axis, columns the values of another; the other axes fold
-- into the cells as counts (`2/3 ✓`). One model, rendered as text here and by html/markdown.
local template = require "jobrun.suite.template"
local textable = require "jobrun.report.table"
local suggest = require "jobrun.cli.suggest"
local sanitize = require "jobrun.report.sanitize"

local grid = {}

-- axes(jobs) -> the run's axis names in declaration order, and for each its values in the order
-- they first appear (plan order: declaration order, include's new values last).
function grid.axes(jobs)
  local names, values, seen = {}, {}, {}
  for _, job in ipairs(jobs) do
    for _, k in ipairs(job.spec and job.spec.param_order or {}) do
      if not values[k] then names[#names + 1] = k; values[k] = {}; seen[k] = {} end
    end
  end
  for _, job in ipairs(jobs) do
    for _, k in ipairs(names) do
      local v = job.params and job.params[k]
      local label = v == nil and "-" or template.text(v)
      if not seen[k][label] then seen[k][label] = true; values[k][#values[k] + 1] = label end
    end
  end
  return names, values
end

-- choose(names, values, want) -> rows, cols, warning: the axes asked for ("ROWS,COLS"), else the
-- two with the most values (declaration order breaks ties, and orders the two).
function grid.choose(names, values, want)
  local warning
  if type(want) == "string" then
    local r, c = want:match("^%s*([^,]-)%s*,%s*([^,]-)%s*$")
    local known = {}
    for _, n in ipairs(names) do known[n] = true end
    local bad
    for _, a in ipairs({ r or want, c }) do
      if a and not known[a] and not bad then bad = a end
    end
    if r and r == c then
      warning = string.format("--grid: '%s' twice; showing the default axes", r)
    elseif bad then
      warning = string.format("--grid: the run has no axis '%s'%s (axes: %s); showing the default axes", bad,
        suggest.hint(bad, names), #names > 0 and table.concat(names, ", ") or "none")
    else
      return r, c
    end
  end
  if #names <= 1 then return names[1], nil, warning end
  local order = {}
  for i, n in ipairs(names) do order[i] = { name = n, i = i, size = #values[n] } end
  table.sort(order, function(a, b)
    if a.size ~= b.size then return a.size > b.size end
    return a.i < b.i
  end)
  local a, b = order[1], order[2]
  if a.i > b.i then a, b = b, a end
  return a.name, b.name, warning
end

-- build(jobs, want) -> model:
--   { rows_axis, cols_axis (nil with one axis), folded = {axis…}, rows = {label…}, cols = {label…},
--     cells[r][c] = { jobs = {…}, passed, failed, pending, total, verdict }, warning }
-- or nil when the jobs have no matrix axis.
function grid.build(jobs, want)
  local names, values = grid.axes(jobs)
  if #names == 0 then return nil end
  local rows_axis, cols_axis, warning = grid.choose(names, values, want)
  local model = { rows_axis = rows_axis, cols_axis = cols_axis, folded = {}, warning = warning,
                  rows = values[rows_axis], cols = cols_axis and values[cols_axis] or { "" }, cells = {} }
  for _, n in ipairs(names) do
    if n ~= rows_axis and n ~= cols_axis then model.folded[#model.folded + 1] = n end
  end
  local row_at, col_at = {}, {}
  for i, v in ipairs(model.rows) do row_at[v] = i; model.cells[i] = {} end
  for i, v in ipairs(model.cols) do col_at[v] = i end
  local function label(job, axis)
    local v = job.params and job.params[axis]
    return v == nil and "-" or template.text(v)
  end
  for _, job in ipairs(jobs) do
    local r = row_at[label(job, rows_axis)]
    local c = cols_axis and col_at[label(job, cols_axis)] or 1
    local cell = model.cells[r][c]
    if not cell then
      cell = { jobs = {}, passed = 0, failed = 0, pending = 0, total = 0 }
      model.cells[r][c] = cell
    end
    cell.jobs[#cell.jobs + 1] = job
    cell.total = cell.total + 1
    if job.verdict == "pass" then cell.passed = cell.passed + 1
    elseif job.verdict == "fail" then cell.failed = cell.failed + 1
    else cell.pending = cell.pending + 1 end
  end
  for r = 1, #model.rows do
    for c = 1, #model.cols do
      local cell = model.cells[r][c]
      if cell then
        cell.verdict = cell.failed > 0 and "fail" or cell.pending > 0 and "pending" or "pass"
      end
    end
  end
  return model
end

-- Words and marks per verdict: ASCII (no colour), or marks and colour.
local WORD = { pass = "pass", fail = "FAIL", pending = "pending" }
local MARK = { pass = "✓", fail = "✗", pending = "…" }
local ASCII_MULTI = { pass = "ok", fail = "FAIL", pending = "wait" }
grid.COLOR = { pass = "green", fail = "red", pending = "cyan" }

-- cell_text(cell, fancy) -> "pass" / "FAIL" / "2/3 ok" / "2/3 FAIL" (ASCII), or
-- "✓ pass" / "✗ fail" / "2/3 ✓" / "2/3 ✗" (fancy); nil cell -> "-" / "·".
function grid.cell_text(cell, fancy)
  if not cell then return fancy and "·" or "-" end
  if cell.total == 1 then
    return fancy and (MARK[cell.verdict] .. " " .. cell.verdict) or WORD[cell.verdict]
  end
  return string.format("%d/%d %s", cell.passed, cell.total, fancy and MARK[cell.verdict] or ASCII_MULTI[cell.verdict])
end

-- title(model, esc, times) -> "rows × cols (folded: a, b)": the grid's axes, each name through
-- esc (the escaping of the format it goes into: text, HTML, Markdown).
function grid.title(model, esc, times)
  local title = model.cols_axis and (esc(model.rows_axis) .. " " .. (times or "×") .. " " .. esc(model.cols_axis))
    or esc(model.rows_axis)
  if #model.folded > 0 then
    local names = {}
    for i, n in ipairs(model.folded) do names[i] = esc(n) end
    title = title .. " (folded: " .. table.concat(names, ", ") .. ")"
  end
  return title
end

-- legend(model, fancy) -> one line (plain ASCII unless fancy).
function grid.legend(model, fancy)
  local text
  if fancy then
    text = "Legend: ✓ passed · ✗ failed · … not finished · · no job"
  else
    text = "Legend: pass/ok = passed, FAIL = failed, pending/wait = not finished, - = no job"
  end
  if model and #model.folded > 0 then
    text = text .. string.format("%s n/m = n of m jobs passed (over %s)", fancy and " ·" or ";",
      table.concat(model.folded, ", "))
  end
  return text
end

-- text(jobs, want, paint, fancy) -> the grid as text (with a title and a legend), and a warning.
function grid.text(jobs, want, paint, fancy)
  local model = grid.build(jobs, want)
  if not model then return "Grid: the run has no matrix axes\n" end
  local corner = model.cols_axis and (model.rows_axis .. (fancy and " ╲ " or " \\ ") .. model.cols_axis)
    or model.rows_axis
  local headers = { corner }
  for _, c in ipairs(model.cols) do headers[#headers + 1] = model.cols_axis and c or "verdict" end
  local rows = {}
  for r, label in ipairs(model.rows) do
    local row = { label }
    for c = 1, #model.cols do
      local cell = model.cells[r][c]
      row[#row + 1] = paint(grid.cell_text(cell, fancy), cell and grid.COLOR[cell.verdict] or "dim")
    end
    rows[#rows + 1] = row
  end
  local title = sanitize.text("Grid: " .. grid.title(model, tostring, fancy and "×" or "x"))
  local max = {}
  for i = 1, #headers do max[i] = 40 end
  local body = textable.render(headers, rows, { paint = paint, max = max }):gsub("\n$", "")
  return table.concat({ paint(title, "bold"), body,
    sanitize.text(grid.legend(model, fancy)), "" }, "\n"), model.warning
end

return grid
