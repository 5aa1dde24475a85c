/* The Lua library's loader: modules come from the copy compiled into the binary, or from
 * $JOBRUN_LUA_DIR while developing, so Lua can change without a rebuild. */
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "embed.h"
#include "host.h"

static const struct jobrun_embedded *find_embedded(const char *name) {
    for (const struct jobrun_embedded *e = jobrun_embedded; e->name; e++)
        if (strcmp(e->name, name) == 0) return e;
    return NULL;
}

static const char *lua_dir(void) {
    const char *dir = getenv("JOBRUN_LUA_DIR");
    return dir && *dir ? dir : NULL;
}

/* Pushes the source text and chunk name of a jobrun module; returns 0 when there is none. */
static int push_source(lua_State *L, const char *name) {
    if (strncmp(name, "jobrun.", 7) != 0 && strcmp(name, "jobrun") != 0) return 0;
    const char *dir = lua_dir();
    if (!dir) {
        const struct jobrun_embedded *e = find_embedded(name);
        if (!e) return 0;
        lua_pushlstring(L, (const char *)e->source, e->length);
        lua_pushstring(L, e->chunkname);
        return 1;
    }
    /* From disk: package.searchpath over DIR/?.lua and DIR/?/init.lua. */
    lua_getglobal(L, "package");
    lua_getfield(L, -1, "searchpath");
    lua_pushstring(L, name);
    lua_pushfstring(L, "%s/?.lua;%s/?/init.lua", dir, dir);
    lua_call(L, 2, 1);
    if (lua_isnil(L, -1)) { lua_pop(L, 2); return 0; }
    const char *path = lua_tostring(L, -1);
    luaL_Buffer b;
    FILE *f = fopen(path, "rb");
    if (!f) { lua_pop(L, 2); return 0; }
    luaL_buffinit(L, &b);
    size_t n;
    do {
        char *p = luaL_prepbuffer(&b);
        n = fread(p, 1, LUAL_BUFFERSIZE, f);
        luaL_addsize(&b, n);
    } while (n == LUAL_BUFFERSIZE);
    fclose(f);
    luaL_pushresult(&b);                    /* package, path, source */
    lua_pushfstring(L, "@%s", lua_tostring(L, -2));
    lua_rotate(L, -4, 2);                   /* source, chunkname, package, path */
    lua_pop(L, 2);
    return 1;
}

/* package.searchers entry for jobrun.* modules. */
static int search_jobrun(lua_State *L) {
    const char *name = luaL_checkstring(L, 1);
    if (!push_source(L, name)) {
        lua_pushfstring(L, "no jobrun module '%s' in %s", name,
                        lua_dir() ? lua_dir() : "the binary");
        return 1;
    }
    size_t len;
    const char *src = lua_tolstring(L, -2, &len);
    const char *chunkname = lua_tostring(L, -1);
    /* The binary's own modules are loaded compiled (embedgen); from JOBRUN_LUA_DIR, as text. */
    const struct jobrun_embedded *e = lua_dir() ? NULL : find_embedded(name);
    int status = e ? luaL_loadbufferx(L, (const char *)e->bytecode, e->bytecode_length, chunkname, "b")
                   : luaL_loadbufferx(L, src, len, chunkname, "t");
    if (status != LUA_OK) return lua_error(L);
    lua_pushstring(L, chunkname + 1);
    return 2;
}

/* embed.source(modname) -> source, chunkname | nil: packs are read as text, not required. */
static int embed_source(lua_State *L) {
    const char *name = luaL_checkstring(L, 1);
    if (!push_source(L, name)) { lua_pushnil(L); return 1; }
    return 2;
}

static const luaL_Reg embed_functions[] = {
    {"source", embed_source},
    {NULL, NULL},
};

int luaopen_jobrun_embed(lua_State *L) {
    /* Insert the searcher right after the preload searcher. */
    lua_getglobal(L, "package");
    lua_getfield(L, -1, "searchers");
    lua_Integer n = (lua_Integer)lua_rawlen(L, -1);
    for (lua_Integer i = n; i >= 2; i--) {
        lua_rawgeti(L, -1, i);
        lua_rawseti(L, -2, i + 1);
    }
    lua_pushcfunction(L, search_jobrun);
    lua_rawseti(L, -2, 2);
    lua_pop(L, 2);
    luaL_newlib(L, embed_functions);
    lua_pushstring(L, lua_dir() ? lua_dir() : "");
    lua_setfield(L, -2, "lua_dir");
    return 1;
}
