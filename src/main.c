/* jobrun: creates the Lua state and hands argv to lua/jobrun/cli/init.lua. */
#include <stdio.h>
#include <stdlib.h>
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

/* The allocator at exit: lua_close still runs every finalizer (a database closed, a lock let
 * go), but what it frees goes back with the process, not object by object (a 10,000-job run's
 * state is a million objects: freeing them one by one was a seventh of a `check --json`). Not
 * under AddressSanitizer, whose leak check would take them for leaks. */
#if defined(__SANITIZE_ADDRESS__)
#define FREE_AT_EXIT 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FREE_AT_EXIT 1
#endif
#endif
#ifndef FREE_AT_EXIT
static void *exit_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
    (void)ud;
    (void)osize;
    if (nsize == 0) return NULL;
    return realloc(ptr, nsize);
}
#endif

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
#ifndef FREE_AT_EXIT
    lua_setallocf(L, exit_alloc, NULL);
#endif
    lua_close(L);
    return code;
}
