-- The SQLite primitive (src/sqlite.c) and the small rules of lua/jobrun/run/provenance.lua and
-- lua/jobrun/run/history.lua: values in and out, errors with their codes, handles closed, argv
-- redaction, Slurm node lists, the suspect-node rule, flaky jobs.
local tap = require "tap"
local h = require "helpers"
local fs = require "jobrun.c.fs"
local sqlite = require "jobrun.c.sqlite"
local provenance = require "jobrun.run.provenance"
local history = require "jobrun.run.history"

local dir = h.scratch()

tap.test("values round-trip; NULL is nil; many rows in one call", function()
  local db = assert(sqlite.open(dir .. "/a.db"))
  tap.is(tostring(db), "sqlite database", "__tostring")
  assert(db:exec("CREATE TABLE t (a, b, c)"))
  tap.is(db:insert("INSERT INTO t VALUES (?, ?, ?)", { { 1, "x", 1.5 }, { 2, nil, true }, { 3, "\0bin", false } }), 3,
    "three rows inserted")
  local rows, names = db:query("SELECT a, b, c FROM t WHERE a >= ? ORDER BY a", { 1 })
  tap.is(names, { "a", "b", "c" }, "column names")
  tap.is(rows, { { 1, "x", 1.5 }, { 2, nil, 1 }, { 3, "\0bin", 0 } }, "integers, text with NUL, floats, NULL, booleans")
  tap.ok(math.type(rows[1][1]) == "integer", "an integer stays an integer")
  assert(db:query("UPDATE t SET b = 'y'"))
  tap.is(db:changes(), 3, "changes()")
  local big = {}
  for i = 1, 5000 do big[i] = { i, "r" .. i } end
  assert(db:exec("CREATE TABLE u (i INTEGER PRIMARY KEY, s)"))
  assert(db:exec("BEGIN"))
  tap.is(db:insert("INSERT INTO u VALUES (?, ?)", big), 5000, "5000 rows in one call")
  assert(db:exec("COMMIT"))
  tap.is(db:query("SELECT count(*), sum(i) FROM u")[1], { 5000, 5000 * 5001 // 2 }, "all of them")
  db:close()
  tap.is(tostring(db), "sqlite database (closed)", "closed")
  tap.raises(function() db:query("SELECT 1") end, "closed database", "a closed handle says so")
  db:close() -- twice is harmless
end)

tap.test("errors: nil, message, code; bad values raise without leaking", function()
  local db <close> = assert(sqlite.open(dir .. "/b.db"))
  local ok, msg, code = db:query("SELEC 1")
  tap.is({ ok, code }, { nil, "error" }, "a syntax error")
  tap.like(msg, "syntax error", "with sqlite's message")
  assert(db:exec("CREATE TABLE t (a UNIQUE)"))
  tap.raises(function() db:insert("INSERT INTO t VALUES (?)", { { {} } }) end, "value 1 cannot be stored",
    "a table is not a value")
  tap.raises(function() db:query("SELECT ?", { print }) end, "value 1 cannot be stored", "nor is a function")
  ok, msg = db:insert("INSERT INTO t VALUES (?)", { { 1 }, { 1 } })
  tap.is(ok, nil, "a constraint stops the insert")
  tap.like(msg, "UNIQUE", "and says which")
  local none, why, c = sqlite.open(dir .. "/no/such/dir/x.db")
  tap.is({ none, c }, { nil, "cantopen" }, "a file that cannot be opened: cantopen")
  tap.like(why, "unable to open", "with the reason")
  fs.write_atomic(dir .. "/junk.db", ("junk"):rep(1000))
  local j = assert(sqlite.open(dir .. "/junk.db"))
  local r, _, jc = j:query("PRAGMA user_version")
  tap.is({ r, jc }, { nil, "notadb" }, "a file that is not a database: notadb")
  j:close()
end)

tap.test("two handles: a write lock makes the other wait, then give up with busy", function()
  local one <close> = assert(sqlite.open(dir .. "/c.db"))
  local two <close> = assert(sqlite.open(dir .. "/c.db", { timeout = 0.2 }))
  assert(one:exec("PRAGMA journal_mode = WAL; CREATE TABLE t (a)"))
  assert(one:exec("BEGIN IMMEDIATE"))
  local t0 = require("jobrun.c.process").now()
  local ok, _, code = two:exec("BEGIN IMMEDIATE")
  local waited = require("jobrun.c.process").now() - t0
  tap.is({ ok, code }, { nil, "busy" }, "busy after the timeout")
  tap.ok(waited >= 0.15, string.format("it waited (%.2f s)", waited))
  assert(one:exec("COMMIT"))
  tap.ok(two:exec("BEGIN IMMEDIATE"), "free again")
  two:exec("ROLLBACK")
end)

tap.test("command lines keep no secret", function()
  tap.is(provenance.redact_argv({ "jobrun", "run", "s.lua", "--token", "abc", "--api-key=xyz", "DB_PASSWORD=p",
    "--set", "url=https://user:pw@host/x", "--only", "a*" }),
    { "jobrun", "run", "s.lua", "--token", "<redacted>", "--api-key=<redacted>", "DB_PASSWORD=<redacted>",
      "--set", "url=https://host/x", "--only", "a*" }, "secret options, variables and URL credentials")
end)

tap.test("Slurm node lists", function()
  tap.is(provenance.expand_nodes("gpu[01-03,07],cpu1"), { "gpu01", "gpu02", "gpu03", "gpu07", "cpu1" }, "ranges")
  tap.is(provenance.expand_nodes({ "a", "b[1-2]" }), { "a", "b1", "b2" }, "a list")
  tap.is(provenance.expand_nodes("None assigned"), {}, "none")
end)

local function row(run, nodes, v, commit)
  return { run_id = run, try = 1, nodes = nodes, verdict = v, commit_id = commit }
end

tap.test("suspect nodes: the stated rule", function()
  local rows = {}
  for i = 1, 6 do rows[#rows + 1] = row("r" .. i, "n1", "pass") end
  for i = 1, 6 do rows[#rows + 1] = row("r" .. i, "n2", i <= 1 and "fail" or "pass") end
  for i = 1, 4 do rows[#rows + 1] = row("r" .. i, "n3", i <= 3 and "fail" or "pass") end
  rows[#rows + 1] = row("r9", "n4", "fail")
  rows[#rows + 1] = row("r9", "n4", "fail")
  local got = {}
  for _, n in ipairs(history.nodes(rows)) do got[n.node] = n end
  tap.ok(got.n3.suspect, "n3: 3 of 4 failed, the others far less: suspect")
  tap.ok(not got.n2.suspect, "n2: 1 of 6: not")
  tap.ok(not got.n4.suspect, "n4: 2 of 2, too few attempts to tell")
  tap.is(history.nodes(rows)[1].node, "n4", "most failing first")
  local alone = { row("a", "solo", "fail"), row("b", "solo", "fail"), row("c", "solo", "fail") }
  tap.ok(not history.nodes(alone)[1].suspect, "a node with none to compare it with is never suspect")
  -- n3's failures again, as bugs (program) and as lost nodes (infrastructure).
  for _, class in ipairs({ "program", "infrastructure" }) do
    for _, r in ipairs(rows) do if r.nodes == "n3" and r.verdict == "fail" then r.cause_class = class end end
    got = {}
    for _, n in ipairs(history.nodes(rows)) do got[n.node] = n end
    tap.is({ got.n3.failed, got.n3.suspect }, class == "program" and { 0, false } or { 3, true },
      "n3's " .. class .. " failures: " .. (class == "program" and "not counted against it" or "counted"))
  end
end)

tap.test("flaky: both verdicts at one commit, or many flips", function()
  local rows = {
    row("r1", nil, "pass", "A"), row("r2", nil, "fail", "A"),            -- mixed at A
    row("r3", nil, "fail", "B"), row("r4", nil, "pass", "C"),            -- fixed: never mixed
  }
  for _, r in ipairs(rows) do r.job = "j" end
  local steady = {}
  for i, v in ipairs({ "pass", "fail", "pass", "fail", "pass" }) do
    steady[i] = row("s" .. i, nil, v, "C" .. i); steady[i].job = "k"
  end
  local fixed = { row("f1", nil, "fail", "A"), row("f2", nil, "pass", "B") }
  for _, r in ipairs(fixed) do r.job = "m" end
  local all = {}
  for _, list in ipairs({ rows, steady, fixed }) do for _, r in ipairs(list) do all[#all + 1] = r end end
  local found = history.flaky(all, 3)
  local names = {}
  for i, f in ipairs(found) do names[i] = f.name end
  tap.is(names, { "j", "k" }, "j (pass and fail at A) and k (4 flips > 3); m was fixed, not flaky")
  tap.is({ found[1].commits[1].passed, found[1].commits[1].failed }, { { "r1@1" }, { "r2@1" } }, "with the runs")
end)

return tap.done()
