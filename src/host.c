/* One Lua state with jobrun's primitives, and the one way into it: jobrun_call, modelled on
 * lua.c's msghandler/docall. User errors are tables made by jobrun.base.errors; they pass the
 * handler untouched and print as "jobrun: message". Anything else gets a traceback. */
#include <stdio.h>
#include <stdlib.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <lua-cjson.h>

#include "host.h"

#ifndef JOBRUN_VERSION
#define JOBRUN_VERSION "0.0.0-dev"
#endif

static int is_user_error(lua_State *L, int idx) {
    if (!lua_istable(L, idx)) return 0;
    int user = lua_getfield(L, idx, "jobrun_user_error") != LUA_TNIL;
    lua_pop(L, 1);
    return user;
}

static int msghandler(lua_State *L) {
    if (is_user_error(L, 1)) return 1;
    const char *msg = lua_tostring(L, 1);
    if (msg == NULL) {
        if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING) return 1;
        msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    }
    luaL_traceback(L, L, msg, 1);
    return 1;
}

int jobrun_call(lua_State *L, int nargs) {
    int base = lua_gettop(L) - nargs;
    lua_pushcfunction(L, msghandler);
    lua_insert(L, base);
    int status = lua_pcall(L, nargs, 1, base);
    lua_remove(L, base);
    if (status == LUA_OK) {
        int code = lua_isinteger(L, -1) ? (int)lua_tointeger(L, -1) : 0;
        lua_pop(L, 1);
        return code;
    }
    if (is_user_error(L, -1)) {
        lua_getfield(L, -1, "message");
        fprintf(stderr, "jobrun: %s\n", lua_isstring(L, -1) ? lua_tostring(L, -1) : "error");
        lua_getfield(L, -2, "code");
        int code = lua_isinteger(L, -1) ? (int)lua_tointeger(L, -1) : JOBRUN_EXIT_USAGE;
        lua_pop(L, 3);
        return code;
    }
    const char *msg = lua_tostring(L, -1);
    fprintf(stderr, "jobrun: internal error: %s\n", msg ? msg : "(no message)");
    lua_pop(L, 1);
    return JOBRUN_EXIT_INTERNAL;
}

static void preload(lua_State *L, const char *name, lua_CFunction open) {
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
    lua_pushcfunction(L, open);
    lua_setfield(L, -2, name);
    lua_pop(L, 1);
}

static int open_embed_now(lua_State *L) {
    luaL_requiref(L, "jobrun.c.embed", luaopen_jobrun_embed, 0);
    lua_pop(L, 1);
    return 0;
}

/* Out of memory or a panic outside any pcall: say so instead of aborting silently. */
static int panic(lua_State *L) {
    const char *msg = lua_tostring(L, -1);
    fprintf(stderr, "jobrun: internal error: unprotected Lua error: %s\n", msg ? msg : "?");
    return 0;
}

lua_State *jobrun_newstate(void) {
    lua_State *L = luaL_newstate();
    if (!L) return NULL;
    lua_atpanic(L, panic);
    luaL_openlibs(L);
    preload(L, "cjson", luaopen_cjson);
    preload(L, "jobrun.c.fs", luaopen_jobrun_fs);
    preload(L, "jobrun.c.term", luaopen_jobrun_term);
    preload(L, "jobrun.c.process", luaopen_jobrun_process);
    preload(L, "jobrun.c.scan", luaopen_jobrun_scan);
    preload(L, "jobrun.c.git", luaopen_jobrun_git);
    preload(L, "jobrun.c.http", luaopen_jobrun_http);
    preload(L, "jobrun.c.guard", luaopen_jobrun_guard);
    preload(L, "jobrun.c.yaml", luaopen_jobrun_yaml);
    preload(L, "jobrun.c.json", luaopen_jobrun_json);
    preload(L, "jobrun.c.metrics", luaopen_jobrun_metrics);
    preload(L, "jobrun.c.serve", luaopen_jobrun_serve);
    preload(L, "jobrun.c.sqlite", luaopen_jobrun_sqlite);
    preload(L, "jobrun.c.embed", luaopen_jobrun_embed);
    lua_pushstring(L, JOBRUN_VERSION);
    lua_setglobal(L, "JOBRUN_VERSION");
    lua_pushcfunction(L, open_embed_now);
    if (jobrun_call(L, 0) != 0) { lua_close(L); return NULL; }
    return L;
}

static int run_module(lua_State *L) {
    const char *module = (const char *)lua_touserdata(L, 1);
    char **args = (char **)lua_touserdata(L, 2);
    lua_getglobal(L, "require");
    lua_pushstring(L, module);
    lua_call(L, 1, 1);
    lua_getfield(L, -1, "main");
    int n = 0;
    for (; args && args[n]; n++) lua_pushstring(L, args[n]);
    lua_call(L, n, 1);
    return 1;
}

int jobrun_run_module(const char *module, char **args) {
    lua_State *L = jobrun_newstate();
    if (!L) return JOBRUN_EXIT_INTERNAL;
    lua_pushcfunction(L, run_module);
    lua_pushlightuserdata(L, (void *)module);
    lua_pushlightuserdata(L, args);
    int code = jobrun_call(L, 2);
    fflush(NULL);
    lua_close(L);
    return code;
}
