/* Terminal primitives: is this a TTY, and how wide is it. */
#include <sys/ioctl.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>

#include "host.h"

static int term_isatty(lua_State *L) {
    lua_pushboolean(L, isatty((int)luaL_checkinteger(L, 1)));
    return 1;
}

/* size(fd) -> columns, rows | nil when fd is no terminal. */
static int term_size(lua_State *L) {
    struct winsize ws;
    if (ioctl((int)luaL_checkinteger(L, 1), TIOCGWINSZ, &ws) != 0 || ws.ws_col == 0) {
        lua_pushnil(L);
        return 1;
    }
    lua_pushinteger(L, ws.ws_col);
    lua_pushinteger(L, ws.ws_row);
    return 2;
}

static const luaL_Reg term_functions[] = {
    {"isatty", term_isatty},
    {"size", term_size},
    {NULL, NULL},
};

int luaopen_jobrun_term(lua_State *L) {
    luaL_newlib(L, term_functions);
    return 1;
}
