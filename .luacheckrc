-- luacheck configuration: the library, suites and examples; the DSL's globals for suite files.
std = "lua54"
max_line_length = 120
read_globals = { "JOBRUN_VERSION" }
-- Names starting with "_" are unused on purpose (to-be-closed locks, interface arguments).
ignore = { "211/_.*", "212/_.*" }

stds.jobrun_suite = {
  read_globals = { "suite", "condition", "parser", "metric", "use", "git", "env" },
}

files["suites/"] = { std = "lua54+jobrun_suite" }
files["examples/"] = { std = "lua54+jobrun_suite" }
files["lua/jobrun/packs/"] = { std = "lua54+jobrun_suite" }
files["tests/"] = { std = "lua54+jobrun_suite" }
