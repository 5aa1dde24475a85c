/* The C handles' one metatable helper (src/host.h): every primitive family that hands Lua a
 * userdata (a process, a lock, a repository, a server…) makes its class here, so that each gets
 * its metamethods and its methods the same way. Apart from host.c so that the fuzz targets,
 * which link single primitive files, have it too. */
#include <lauxlib.h>
#include <lua.h>

#include "host.h"

void jobrun_class(lua_State *L, const char *name, const luaL_Reg *meta, const luaL_Reg *methods) {
    if (luaL_newmetatable(L, name)) {
        luaL_setfuncs(L, meta, 0);
        if (methods) {
            lua_newtable(L);
            luaL_setfuncs(L, methods, 0);
            lua_setfield(L, -2, "__index");
        }
    }
    lua_pop(L, 1);
}
