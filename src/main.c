/* jobrun: creates the Lua state and hands argv to lua/jobrun/cli/init.lua. */
#include <stdio.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "host.h"

static int run_cli(lua_State *L) {
    int argc = (int)lua_tointeger(L, 1);
    char **argv = (char **)lua_touserdata(L, 2);
    lua_getglobal(L, "require");
    lua_pushstring(L, "jobrun.cli");
    lua_call(L, 1, 1);
    lua_getfield(L, -1, "main");
    lua_createtable(L, argc, 0);
    for (int i = 1; i < argc; i++) {
        lua_pushstring(L, argv[i]);
        lua_rawseti(L, -2, i);
    }
    lua_call(L, 1, 1);
    return 1;
}

int main(int argc, char **argv) {
    /* The local backend's supervisors start here: straight to their module, without the CLI. */
    if (argc >= 2 && strcmp(argv[1], "__supervise") == 0) {
        return jobrun_run_module("jobrun.backends.local.supervisor", argv + 2);
    }
    lua_State *L = jobrun_newstate();
    if (!L) { fprintf(stderr, "jobrun: cannot create the Lua state\n"); return JOBRUN_EXIT_INTERNAL; }
    lua_pushcfunction(L, run_cli);
    lua_pushinteger(L, argc);
    lua_pushlightuserdata(L, argv);
    int code = jobrun_call(L, 2);
    lua_close(L);
    return code;
}
