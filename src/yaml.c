/* yaml: YAML text as Lua values, through libyaml — the parser PyYAML's CSafeLoader drives,
 * and so what SkyPilot reads a task YAML with.
 *
 *   yaml.load(text, opts) -> { doc, … } | nil, "line L, column C: problem"
 *
 * Every document of the stream, in order ({} for an empty stream). libyaml does the syntax;
 * what a plain scalar means (null, bool, int, float or string: YAML 1.1's implicit types, as
 * PyYAML's SafeLoader resolves them) is Lua's business, through a callback, so that the
 * rules sit beside the rest of jobrun's YAML handling (lua/jobrun/backends/skypilot/yaml.lua).
 *
 * opts.null     the value that stands for null (required: Lua tables cannot hold nil)
 * opts.array    a metatable given to every sequence (so that [] stays a list once encoded)
 * opts.resolve  function(text, tag) -> value, called for plain scalars (tag nil) and for
 *               scalars with an explicit tag other than !!str (tag is the full tag URI)
 *
 * Anchors and aliases share one Lua table (no copy, so no "billion laughs"); an alias of a
 * node still being built is refused, so no value is ever cyclic. Merge keys (<<) follow
 * PyYAML: the mapping's own keys win, then the merged mappings in order. Nesting is limited
 * to MAX_DEPTH. The parser lives in a userdata whose __gc frees it, so a Lua error raised
 * half-way (a callback's, or out of memory) leaks nothing. */
#include <string.h>

#include <lauxlib.h>
#include <lua.h>
#include <yaml.h>

#include "host.h"

#define PARSER "jobrun.yaml.parser"
#define MAX_DEPTH 200

typedef struct Parser {
    yaml_parser_t parser;
    yaml_event_t event;
    int has_event;
    int ready;
} Parser;

/* Stack slots of a load, fixed for its whole length. */
enum { ARG_TEXT = 1, ARG_OPTS = 2, SLOT_PARSER = 3, SLOT_ANCHORS = 4, SLOT_NULL = 5, SLOT_ARRAY = 6,
       SLOT_RESOLVE = 7 };

static int parser_gc(lua_State *L) {
    Parser *p = (Parser *)luaL_checkudata(L, 1, PARSER);
    if (p->has_event) yaml_event_delete(&p->event);
    p->has_event = 0;
    if (p->ready) yaml_parser_delete(&p->parser);
    p->ready = 0;
    return 0;
}

static void next_event(lua_State *L, Parser *p) {
    if (p->has_event) yaml_event_delete(&p->event);
    p->has_event = 0;
    if (!yaml_parser_parse(&p->parser, &p->event)) {
        const char *problem = p->parser.problem ? p->parser.problem : "invalid YAML";
        if (p->parser.context) {
            luaL_error(L, "line %d, column %d: %s %s", (int)p->parser.problem_mark.line + 1,
                       (int)p->parser.problem_mark.column + 1, problem, p->parser.context);
        }
        luaL_error(L, "line %d, column %d: %s", (int)p->parser.problem_mark.line + 1,
                   (int)p->parser.problem_mark.column + 1, problem);
    }
    p->has_event = 1;
}

static int mark_line(const yaml_event_t *e) { return (int)e->start_mark.line + 1; }
static int mark_column(const yaml_event_t *e) { return (int)e->start_mark.column + 1; }

static void build(lua_State *L, Parser *p, int depth);

/* remember(anchor): anchors[anchor] = the value on top of the stack (left there). */
static void remember(lua_State *L, const yaml_char_t *anchor) {
    if (!anchor) return;
    lua_pushvalue(L, -1);
    lua_setfield(L, SLOT_ANCHORS, (const char *)anchor);
}

static void scalar(lua_State *L, Parser *p) {
    yaml_event_t *e = &p->event;
    const char *tag = (const char *)e->data.scalar.tag;
    const char *text = (const char *)e->data.scalar.value;
    size_t len = e->data.scalar.length;
    int plain = e->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
    if (tag && strcmp(tag, "!") == 0) { tag = NULL; plain = 0; } /* "!" forces a string */
    if ((tag && strcmp(tag, YAML_STR_TAG) == 0) || (!tag && !plain)) {
        lua_pushlstring(L, text, len);
        return;
    }
    lua_pushvalue(L, SLOT_RESOLVE);
    lua_pushlstring(L, text, len);
    if (tag) lua_pushstring(L, tag); else lua_pushnil(L);
    lua_call(L, 2, 1);
}

/* merge_into(t, line): the keys of the mapping on top of the stack (popped) that the
 * mapping at index t lacks. */
static void merge_into(lua_State *L, int t, int line) {
    int src = lua_gettop(L);
    if (!lua_istable(L, src)) luaL_error(L, "line %d: a merge key (<<) takes a mapping or a list of mappings", line);
    lua_pushnil(L);
    while (lua_next(L, src)) {
        lua_pushvalue(L, -2);
        if (lua_rawget(L, t) == LUA_TNIL) {
            lua_pop(L, 1);
            lua_pushvalue(L, -2);
            lua_insert(L, -2);
            lua_rawset(L, t);
        } else {
            lua_pop(L, 2);
        }
    }
    lua_pop(L, 1);
}

static void mapping(lua_State *L, Parser *p, int depth) {
    /* The anchor must outlive the event it came with: a copy stays on the stack. */
    const yaml_char_t *anchor = p->event.data.mapping_start.anchor;
    if (anchor) lua_pushstring(L, (const char *)anchor); else lua_pushnil(L);
    int anchor_slot = lua_gettop(L);
    int start_line = mark_line(&p->event);
    lua_newtable(L);
    int t = lua_gettop(L);
    lua_newtable(L); /* the merge sources, in order: each a mapping, or a list of mappings */
    int merges = t + 1;
    lua_newtable(L); /* merges[i] is a list when lists[i] is true */
    int lists = t + 2;
    int nmerges = 0;
    for (;;) {
        next_event(L, p);
        if (p->event.type == YAML_MAPPING_END_EVENT) break;
        int line = mark_line(&p->event), column = mark_column(&p->event);
        int merge_key = p->event.type == YAML_SCALAR_EVENT && !p->event.data.scalar.tag
            && p->event.data.scalar.style == YAML_PLAIN_SCALAR_STYLE
            && strcmp((const char *)p->event.data.scalar.value, "<<") == 0;
        build(L, p, depth + 1);
        if (lua_istable(L, -1) || lua_rawequal(L, -1, SLOT_NULL)) {
            luaL_error(L, "line %d, column %d: a mapping key must be a scalar (not null, a list or a mapping)",
                       line, column);
        }
        next_event(L, p);
        int is_list = p->event.type == YAML_SEQUENCE_START_EVENT;
        build(L, p, depth + 1);
        if (merge_key) {
            lua_remove(L, -2);
            lua_rawseti(L, merges, ++nmerges);
            lua_pushboolean(L, is_list);
            lua_rawseti(L, lists, nmerges);
        } else {
            lua_rawset(L, t);
        }
    }
    for (int i = 1; i <= nmerges; i++) {
        lua_rawgeti(L, merges, i);
        int src = lua_gettop(L);
        lua_rawgeti(L, lists, i);
        int is_list = lua_toboolean(L, -1);
        lua_pop(L, 1);
        if (is_list) {
            lua_Integer n = (lua_Integer)lua_rawlen(L, src);
            for (lua_Integer k = 1; k <= n; k++) {
                lua_rawgeti(L, src, k);
                merge_into(L, t, start_line);
            }
            lua_pop(L, 1);
        } else {
            merge_into(L, t, start_line);
        }
    }
    lua_pop(L, 2); /* merges, lists */
    if (!lua_isnil(L, anchor_slot)) {
        lua_pushvalue(L, t);
        lua_setfield(L, SLOT_ANCHORS, lua_tostring(L, anchor_slot));
    }
    lua_remove(L, anchor_slot);
}

static void sequence(lua_State *L, Parser *p, int depth) {
    const yaml_char_t *anchor = p->event.data.sequence_start.anchor;
    if (anchor) lua_pushstring(L, (const char *)anchor); else lua_pushnil(L);
    int anchor_slot = lua_gettop(L);
    lua_newtable(L);
    int t = lua_gettop(L);
    if (!lua_isnil(L, SLOT_ARRAY)) {
        lua_pushvalue(L, SLOT_ARRAY);
        lua_setmetatable(L, t);
    }
    lua_Integer n = 0;
    for (;;) {
        next_event(L, p);
        if (p->event.type == YAML_SEQUENCE_END_EVENT) break;
        build(L, p, depth + 1);
        lua_rawseti(L, t, ++n);
    }
    if (!lua_isnil(L, anchor_slot)) {
        lua_pushvalue(L, t);
        lua_setfield(L, SLOT_ANCHORS, lua_tostring(L, anchor_slot));
    }
    lua_remove(L, anchor_slot);
}

/* build: pushes the node that starts with the current event. */
static void build(lua_State *L, Parser *p, int depth) {
    if (depth > MAX_DEPTH) luaL_error(L, "line %d: nested deeper than %d levels", mark_line(&p->event), MAX_DEPTH);
    luaL_checkstack(L, 8, "YAML nesting");
    switch (p->event.type) {
    case YAML_SCALAR_EVENT: {
        const yaml_char_t *anchor = p->event.data.scalar.anchor;
        scalar(L, p);
        remember(L, anchor);
        break;
    }
    case YAML_ALIAS_EVENT: {
        const char *anchor = (const char *)p->event.data.alias.anchor;
        if (lua_getfield(L, SLOT_ANCHORS, anchor) == LUA_TNIL) {
            luaL_error(L, "line %d, column %d: alias *%s names no anchor defined before it (or one that "
                       "contains the alias)", mark_line(&p->event), mark_column(&p->event), anchor);
        }
        break;
    }
    case YAML_MAPPING_START_EVENT: mapping(L, p, depth); break;
    case YAML_SEQUENCE_START_EVENT: sequence(L, p, depth); break;
    default:
        luaL_error(L, "line %d: unexpected YAML event %d", mark_line(&p->event), (int)p->event.type);
    }
}

static int do_load(lua_State *L) {
    size_t len;
    const char *text = luaL_checklstring(L, ARG_TEXT, &len);
    luaL_checktype(L, ARG_OPTS, LUA_TTABLE);
    lua_settop(L, ARG_OPTS);
    Parser *p = (Parser *)lua_newuserdatauv(L, sizeof(Parser), 0); /* SLOT_PARSER */
    memset(p, 0, sizeof *p);
    luaL_setmetatable(L, PARSER);
    if (!yaml_parser_initialize(&p->parser)) return luaL_error(L, "cannot initialise the YAML parser");
    p->ready = 1;
    yaml_parser_set_input_string(&p->parser, (const unsigned char *)text, len);
    lua_newtable(L);                       /* SLOT_ANCHORS */
    lua_getfield(L, ARG_OPTS, "null");     /* SLOT_NULL */
    if (lua_isnil(L, SLOT_NULL)) return luaL_error(L, "yaml.load: opts.null is required");
    lua_getfield(L, ARG_OPTS, "array");    /* SLOT_ARRAY */
    lua_getfield(L, ARG_OPTS, "resolve");  /* SLOT_RESOLVE */
    luaL_checktype(L, SLOT_RESOLVE, LUA_TFUNCTION);
    lua_newtable(L);
    int docs = lua_gettop(L);
    lua_Integer n = 0;
    for (;;) {
        next_event(L, p);
        yaml_event_type_t type = p->event.type;
        if (type == YAML_STREAM_END_EVENT) break;
        if (type != YAML_DOCUMENT_START_EVENT) continue; /* STREAM_START */
        next_event(L, p);
        build(L, p, 0);
        lua_rawseti(L, docs, ++n);
        next_event(L, p); /* DOCUMENT_END */
        lua_newtable(L);  /* anchors are per document */
        lua_replace(L, SLOT_ANCHORS);
    }
    lua_pushvalue(L, docs);
    return 1;
}

/* load(text, opts) -> docs | nil, message */
static int yaml_load(lua_State *L) {
    lua_settop(L, 2);
    lua_pushcfunction(L, do_load);
    lua_insert(L, 1);
    if (lua_pcall(L, 2, 1, 0) != LUA_OK) {
        lua_pushnil(L);
        lua_insert(L, -2);
        return 2;
    }
    return 1;
}

static const luaL_Reg yaml_functions[] = {
    { "load", yaml_load },
    { NULL, NULL },
};

int luaopen_jobrun_yaml(lua_State *L) {
    static const luaL_Reg parser_meta[] = {{"__gc", parser_gc}, {NULL, NULL}};
    jobrun_class(L, PARSER, parser_meta, NULL);
    luaL_newlib(L, yaml_functions);
    return 1;
}
