/* Process primitives: clocks for now; spawning and waiting come with the local backend. */
#include <time.h>

#include <lauxlib.h>
#include <lua.h>

#include "host.h"

static double clock_seconds(clockid_t id) {
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* now() -> monotonic seconds, for durations; time() -> wall-clock seconds with fraction. */
static int process_now(lua_State *L) { lua_pushnumber(L, clock_seconds(CLOCK_MONOTONIC)); return 1; }
static int process_time(lua_State *L) { lua_pushnumber(L, clock_seconds(CLOCK_REALTIME)); return 1; }

static const luaL_Reg process_functions[] = {
    {"now", process_now},
    {"time", process_time},
    {NULL, NULL},
};

int luaopen_jobrun_process(lua_State *L) {
    luaL_newlib(L, process_functions);
    return 1;
}
