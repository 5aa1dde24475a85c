/* libFuzzer target: arbitrary bytes through jobrun's reading of JSON files, in a real jobrun
 * Lua state (jobrun_newstate): json.decode; state.read of a run's state.json (a damaged one
 * must be a user error, "… is damaged"); and the local backend reading a job's result file and
 * its claim (backend.poll). A user error is an answer; any other Lua error is an internal
 * error, and so a crash, like a sanitizer report.
 *
 * Not covered yet: the state validation another branch adds to lua/jobrun/run/store.lua; once it
 * is in, TARGET below should call it on the decoded state. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>

#include "host.h"

static lua_State *L;
static char dir[4096];

static const char TARGET[] =
    "local dir = ...\n"
    "local json = require 'jobrun.base.json'\n"
    "local fs = require 'jobrun.c.fs'\n"
    "local state = require 'jobrun.run.store'\n"
    "local errors = require 'jobrun.base.errors'\n"
    "local backend = require 'jobrun.backends.local'\n"
    "assert(fs.mkdir_p(dir .. '/jobs'))\n"
    "local function answer(fn, ...)\n"
    "  local ok, err = pcall(fn, ...)\n"
    "  if not ok and not errors.is_user(err) then error('internal error: ' .. tostring(err), 0) end\n"
    "end\n"
    "local job_files = { dir .. '/jobs/j.result.json', dir .. '/jobs/j.status.json' }\n"
    "return function(bytes)\n"
    "  local value, why = json.decode(bytes)\n"
    "  if value == nil and type(why) ~= 'string' then error('json.decode: nil without a reason', 0) end\n"
    "  assert(fs.write_atomic(dir .. '/state.json', bytes, false))\n"
    "  answer(state.read, dir)\n"
    "  -- The job's end as its supervisor records it: the result file, else the claim.\n"
    "  for _, path in ipairs(job_files) do\n"
    "    for _, p in ipairs(job_files) do fs.remove(p) end\n"
    "    assert(fs.write_atomic(path, bytes, false))\n"
    "    local job = { name = 'j', key = 'j', native_id = '2147483647', local_start_time = 1,\n"
    "                  status = 'RUNNING', log_path_rel = 'logs/j.log', fields = {} }\n"
    "    answer(backend.poll, { run_dir = dir, handles = {} }, { job })\n"
    "  end\n"
    "end\n";

static void cleanup(void) {
    char command[4200];
    snprintf(command, sizeof command, "rm -rf '%s'", dir);
    if (system(command) != 0) fprintf(stderr, "json_fuzz: could not remove %s\n", dir);
}

/* What mkdtemp(3) requires at the end of its template, and replaces with a unique suffix. */
#define MKDTEMP_SUFFIX "XXXXXX"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    const char *tmp = getenv("TMPDIR"); /* tests/fuzz.sh points it at a directory it removes */
    snprintf(dir, sizeof dir, "%s/jobrun-json-fuzz-%s", tmp && *tmp ? tmp : "/tmp", MKDTEMP_SUFFIX);
    if (!mkdtemp(dir)) abort();
    atexit(cleanup);
    L = jobrun_newstate();
    if (!L || luaL_loadbuffer(L, TARGET, sizeof TARGET - 1, "=json_fuzz") != LUA_OK) abort();
    lua_pushstring(L, dir);
    if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
        fprintf(stderr, "json_fuzz: %s\n", lua_tostring(L, -1));
        abort();
    }
    lua_setglobal(L, "json_fuzz_target");
    return 0;
}

static int traceback(lua_State *T) {
    luaL_traceback(T, T, lua_tostring(T, 1), 1);
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    lua_pushcfunction(L, traceback);
    lua_getglobal(L, "json_fuzz_target");
    lua_pushlstring(L, (const char *)data, size);
    if (lua_pcall(L, 1, 0, -3) != LUA_OK) {
        fprintf(stderr, "json_fuzz: %s\n", lua_tostring(L, -1));
        abort();
    }
    lua_pop(L, 1);
    return 0;
}
