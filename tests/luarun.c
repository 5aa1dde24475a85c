/* Test harness: runs a Lua file in a jobrun state (same primitives, same library), with the
 * remaining arguments in `arg`. Exit code as jobrun's: the chunk's integer result, 2, or 3. */
#include <stdio.h>

#include <lauxlib.h>
#include <lua.h>

#include "host.h"

static int run_file(lua_State *L) {
    int argc = (int)lua_tointeger(L, 1);
    char **argv = (char **)lua_touserdata(L, 2);
    lua_createtable(L, argc, 1);
    for (int i = 0; i < argc; i++) {
        lua_pushstring(L, argv[i]);
        lua_rawseti(L, -2, i - 1);
    }
    lua_setglobal(L, "arg");
    if (luaL_loadfile(L, argv[1]) != LUA_OK) return lua_error(L);
    lua_call(L, 0, 1);
    return 1;
}

int main(int argc, char **argv) {
    if (argc < 2) { fprintf(stderr, "usage: luarun FILE.lua [ARG...]\n"); return 2; }
    lua_State *L = jobrun_newstate();
    if (!L) return 3;
    lua_pushcfunction(L, run_file);
    lua_pushinteger(L, argc);
    lua_pushlightuserdata(L, argv);
    int code = jobrun_call(L, 2);
    lua_close(L);
    return code;
}
