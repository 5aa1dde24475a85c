/* jobrun.c.json: jobrun's one JSON encoder and decoder (README "JSON"). lua-cjson cannot encode
 * for us (an empty array and an empty object look alike to it, and it keeps no key order), and
 * it decodes every number as a double, into tables that grow as they fill. The Lua encoder this
 * replaced is the oracle of tests/unit/json.lua (tests/json_oracle.lua), held to these bytes;
 * lua-cjson's decode, with its whole floats made integers after it, is the decoder's oracle
 * there.
 *
 * decode(text) -> value, or the error "json: <what> at byte N" (see json_decode below).
 * encode(v [, pretty [, depth]]) -> text: v at that depth (pretty: two spaces an indent).
 *   Objects: a json.record's keys exactly, nil as null; a json.object's order keys first, then
 *   the rest; any other table's keys sorted bytewise (tostring of a key that is not a string).
 *   Arrays: json.array, or a table whose keys are exactly 1..#t. Strings escaped as lua-cjson
 *   does, but "/" left as it is. Functions and userdata become "<function>", "<userdata>".
 *   Nesting deeper than 64 tables raises "json: nesting too deep (a cycle?)".
 * not_number(list) -> the index of its first item that is not a number, or nil.
 * number_list(text) -> true when text is a JSON array of numbers, else the first bad item's index.
 * A table marked json.raw ({ text }) encodes as its text, unchanged. */
#include <lauxlib.h>
#include <lua.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host.h"

#define MAX_DEPTH 64 /* deeper is an error: a cycle, most likely */

#define FEW_KEYS 64
#define ORDERS 4 /* key orders whose strings a call keeps (a job's, its metric records') */

/* An order table's keys (its 1..n strings), kept for the rest of one encode call: a big answer
 * has thousands of objects of a few orders, which were read again for each. The table and its
 * strings stay alive during the call: they hang off the value being encoded. */
typedef struct {
    const void *id; /* lua_topointer of the order table; NULL: unused */
    lua_Unsigned n;
    const char *s[FEW_KEYS];
    size_t len[FEW_KEYS];
} OrderKeys;

typedef struct {
    char *p;
    size_t n, cap;
    FILE *sink; /* json.write's file: the text goes to it a chunk at a time */
    int err;    /* the sink's first write error (errno) */
    OrderKeys orders[ORDERS];
    int next_order; /* the entry the next new order takes */
} Buf;

#define SINK_CHUNK 65536

/* sink_write(b, s, len): to the sink, unless it failed before (the rest is then dropped). */
static void sink_write(Buf *b, const char *s, size_t len) {
    if (b->err || len == 0) return;
    if (fwrite(s, 1, len, b->sink) != len) b->err = errno ? errno : EIO;
}

static int buf_gc(lua_State *L) {
    Buf *b = lua_touserdata(L, 1);
    free(b->p);
    b->p = NULL;
    return 0;
}

static void put(lua_State *L, Buf *b, const char *s, size_t len) {
    if (b->cap - b->n < len && b->sink) {
        /* (what is in the buffer goes first; a piece bigger than the buffer then goes as it is) */
        sink_write(b, b->p, b->n);
        b->n = 0;
        if (len > b->cap) { sink_write(b, s, len); return; }
    }
    if (b->cap - b->n < len) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap - b->n < len) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) luaL_error(L, "json: out of memory");
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, len);
    b->n += len;
}

static void put_lit(lua_State *L, Buf *b, const char *s) { put(L, b, s, strlen(s)); }

/* "\n" and two spaces per depth. */
static void newline(lua_State *L, Buf *b, int depth) {
    static const char line[] = "\n                                                                ";
    int want = 2 * depth;
    if (want <= (int)sizeof line - 2) { put(L, b, line, (size_t)want + 1); return; } /* one copy */
    put(L, b, "\n", 1);
    for (; want > 0; want -= (int)sizeof line - 2)
        put(L, b, line + 1, (size_t)(want < (int)sizeof line - 2 ? want : (int)sizeof line - 2));
}

/* Indices of the arguments of encode(). */
enum { ARG_V = 1, ARG_PRETTY, ARG_DEPTH, ARG_BUF };

/* How each byte is written in a JSON string: NULL as it is. lua-cjson's escapes (\b \t \n \f \r,
 * \u00XX for other controls and DEL, \" and \\), but "/" as it is: paths read as paths. */
static const char *escape_of(unsigned char c) {
    static const char *short_form[32] = {
        [8] = "\\b", [9] = "\\t", [10] = "\\n", [12] = "\\f", [13] = "\\r",
    };
    static char hex[33][7];
    if (c == '"') return "\\\"";
    if (c == '\\') return "\\\\";
    if (c >= 32 && c != 127) return NULL;
    if (c < 32 && short_form[c]) return short_form[c];
    int i = c == 127 ? 32 : c;
    if (!hex[i][0]) snprintf(hex[i], sizeof hex[i], "\\u%04x", c);
    return hex[i];
}

/* A string quoted and escaped. */
static void put_quoted(lua_State *L, Buf *b, const char *s, size_t len) {
    put(L, b, "\"", 1);
    size_t from = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 32 && c != '"' && c != '\\' && c != 127) continue; /* most bytes */
        const char *e = escape_of(c);
        put(L, b, s + from, i - from);
        put_lit(L, b, e);
        from = i + 1;
    }
    put(L, b, s + from, len - from);
    put(L, b, "\"", 1);
}

/* The string (or number) at idx, quoted. */
static void put_string(lua_State *L, Buf *b, int idx) {
    size_t len;
    const char *s = lua_tolstring(L, idx, &len);
    put_quoted(L, b, s, len);
}

/* What is not data (a function, a userdata, a thread): its kind, as a string. */
static void put_kind(lua_State *L, Buf *b, int idx) {
    char text[32];
    snprintf(text, sizeof text, "<%s>", luaL_typename(L, idx));
    put_quoted(L, b, text, strlen(text));
}

/* short_decimal(text, v) -> 1 with text as "%.14g" writes v, for the common float of a metric
 * (2.4, 0.4355): the double nearest a decimal D = r / 10^k of at most 6 places, 1e-4 <= |v| <
 * 1e9, r < 1e14; else 0. Then v is within half an ulp (2^-53 relative) of D, and the rounding to
 * 14 significant digits that %.14g does (its boundaries at least 5e-15 relative away from D, which
 * has at most 14 digits) gives D itself: its digits, no exponent (-4 <= exponent < 14), trailing
 * zeros dropped. snprintf's exact binary-to-decimal conversion was most of encoding such floats. */
/* decimal(p, n) -> p past the digits of n written there (no terminator). */
static char *decimal(char *p, unsigned long long n) {
    char rev[24];
    int len = 0;
    do { rev[len++] = (char)('0' + n % 10); n /= 10; } while (n);
    while (len) *p++ = rev[--len];
    return p;
}

/* integer(text, v): v as "%lld" writes it. */
static void integer(char *text, long long v) {
    char *p = text;
    unsigned long long n = (unsigned long long)v;
    if (v < 0) { *p++ = '-'; n = 0ULL - n; }
    *decimal(p, n) = '\0';
}

static int short_decimal(char *text, double v) {
    static const double p10[] = {1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6};
    double a = fabs(v);
    if (!(a >= 1e-4 && a < 1e9)) return 0;
    for (int k = 1; k <= 6; k++) {
        double r = floor(a * p10[k] + 0.5);
        if (r >= 1e14 || r / p10[k] != a) continue;
        unsigned long long n = (unsigned long long)r, unit = (unsigned long long)p10[k];
        unsigned long long whole = n / unit, frac = n % unit;
        int places = k;
        while (places > 0 && frac % 10 == 0) { frac /= 10; places--; }
        if (places == 0) return 0; /* a whole number: not a case of this (put_number writes it) */
        char *p = text;
        if (v < 0) *p++ = '-';
        p = decimal(p, whole);
        *p++ = '.';
        for (int i = places - 1; i >= 0; i--, frac /= 10) p[i] = (char)('0' + frac % 10);
        p[places] = '\0';
        return 1;
    }
    return 0;
}

static void put_number(lua_State *L, Buf *b, int idx) {
    char text[64];
    if (lua_isinteger(L, idx)) {
        integer(text, (long long)lua_tointeger(L, idx));
    } else {
        lua_Number v = lua_tonumber(L, idx);
        if (v != v || isinf(v)) snprintf(text, sizeof text, "null");
        else if (v == floor(v) && fabs(v) < 9007199254740992.0) integer(text, (long long)v);
        else if (!short_decimal(text, (double)v)) snprintf(text, sizeof text, "%.14g", (double)v);
    }
    put_lit(L, b, text);
}

static void encode_value(lua_State *L, Buf *b, int idx, int pretty, int depth);

/* The item before a value: a comma unless first, then the newline and indentation. */
static void lead(lua_State *L, Buf *b, int first, int pretty, int depth) {
    if (!first) put(L, b, ",", 1);
    if (pretty) newline(L, b, depth + 1);
}

/* A member's key (its text) and the colon after it. */
static void put_key_text(lua_State *L, Buf *b, const char *s, size_t len, int pretty) {
    put_quoted(L, b, s, len);
    put(L, b, pretty ? ": " : ":", pretty ? 2 : 1);
}

static void put_key(lua_State *L, Buf *b, int kidx, int pretty) {
    size_t len;
    const char *s = lua_tolstring(L, kidx, &len);
    put_key_text(L, b, s, len, pretty);
}

/* The names encode() looks up in metatables, its upvalues (not made again for every table). */
enum { UV_NAME = 1, UV_ORDER, UV_EXACT, UV_BUF };
#define BUF_KEEP (1u << 20) /* the largest buffer kept between calls */

/* metatable field `name` (an upvalue of encode: UV_…) of the table at idx pushed (nil without a
 * metatable). */
static int mt_field(lua_State *L, int idx, int name) {
    if (!lua_getmetatable(L, idx)) { lua_pushnil(L); return LUA_TNIL; }
    lua_pushvalue(L, lua_upvalueindex(name));
    int t = lua_rawget(L, -2);
    lua_remove(L, -2);
    return t;
}

static int is_array(lua_State *L, int idx) {
    if (mt_field(L, idx, UV_NAME) == LUA_TSTRING && strcmp(lua_tostring(L, -1), "json.array") == 0) {
        lua_pop(L, 1);
        return 1;
    }
    lua_pop(L, 1);
    if (mt_field(L, idx, UV_ORDER) != LUA_TNIL) { lua_pop(L, 1); return 0; }
    lua_pop(L, 1);
    lua_Unsigned n = lua_rawlen(L, idx);
    if (n == 0) return 0;
    lua_Unsigned count = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) { count++; lua_pop(L, 1); }
    return count == n;
}

typedef struct {
    const char *s;
    size_t len;
    int ref; /* index of the key in the keys table */
} Key;

static int key_cmp(const void *a, const void *b) {
    const Key *x = a, *y = b;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->s, y->s, n);
    if (c) return c;
    return x->len < y->len ? -1 : x->len > y->len;
}

static void close_with(lua_State *L, Buf *b, const char *bracket, int pretty, int depth) {
    if (pretty) newline(L, b, depth);
    put_lit(L, b, bracket);
}

/* Writes the members of the object at idx in the order of the list `keys` (a table at kidx,
 * 1..n); exact: a key whose value is nil is written as null, else skipped. */
static void put_members(lua_State *L, Buf *b, int idx, int kidx, lua_Unsigned n, int exact, int pretty, int depth) {
    int first = 1;
    put(L, b, "{", 1);
    for (lua_Unsigned i = 1; i <= n; i++) {
        lua_rawgeti(L, kidx, (lua_Integer)i);
        int k = lua_gettop(L);
        lua_pushvalue(L, k);
        int t = lua_rawget(L, idx);
        if (t == LUA_TNIL && !exact) { lua_pop(L, 2); continue; }
        lead(L, b, first, pretty, depth);
        first = 0;
        if (lua_type(L, k) == LUA_TSTRING) put_key(L, b, k, pretty);
        else {
            /* json.lua writes tostring(key) */
            luaL_tolstring(L, k, NULL);
            put_key(L, b, lua_gettop(L), pretty);
            lua_pop(L, 1);
        }
        encode_value(L, b, k + 1, pretty, depth + 1);
        lua_pop(L, 2);
    }
    if (first) { b->n -= 1; put(L, b, "{}", 2); return; } /* nothing written: as json.lua, {} */
    close_with(L, b, "}", pretty, depth);
}

/* The member whose key is at the top of the stack (popped), if its value is not nil; returns
 * whether it wrote it. */
static int put_member(lua_State *L, Buf *b, int idx, int first, int pretty, int depth) {
    int k = lua_gettop(L);
    lua_pushvalue(L, k);
    if (lua_rawget(L, idx) == LUA_TNIL) { lua_pop(L, 2); return 0; }
    lead(L, b, first, pretty, depth);
    put_key(L, b, k, pretty);
    encode_value(L, b, k + 1, pretty, depth + 1);
    lua_pop(L, 2);
    return 1;
}

/* encode_object's way for the common object (string keys, at most FEW_KEYS of them, an order
 * of at most FEW_KEYS strings): the same text, with the keys gathered in C arrays instead of
 * Lua tables, so that the many small objects of a big answer allocate nothing (a key's text
 * stays alive: it is a key of the table, or an item of the order). Returns 0, having written
 * nothing, for any other object. */
/* Members an object is written with where it has no value of its own for that key of its order:
 * a key and its JSON text, put as it is (a series from the run's series file). */
typedef struct {
    const char *key, *text;
    size_t key_len, text_len;
} Extra;
#define MAX_EXTRA 2

static const OrderKeys NO_KEYS = {NULL, 0, {NULL}, {0}};

/* order_keys(L, b, order) -> the keys of the order table at `order`, read once a call; NULL when
 * it has more than FEW_KEYS or an item that is not a string. */
static const OrderKeys *order_keys(lua_State *L, Buf *b, int order) {
    const void *id = lua_topointer(L, order);
    for (int i = 0; i < ORDERS; i++)
        if (b->orders[i].id == id) return &b->orders[i];
    lua_Unsigned n = lua_rawlen(L, order);
    if (n > FEW_KEYS) return NULL;
    OrderKeys *k = &b->orders[b->next_order];
    k->id = NULL;
    for (lua_Unsigned i = 0; i < n; i++) {
        int t = lua_rawgeti(L, order, (lua_Integer)i + 1);
        if (t != LUA_TSTRING) { lua_pop(L, 1); return NULL; }
        k->s[i] = lua_tolstring(L, -1, &k->len[i]);
        lua_pop(L, 1);
    }
    k->n = n;
    k->id = id;
    b->next_order = (b->next_order + 1) % ORDERS;
    return k;
}

static int encode_few(lua_State *L, Buf *b, int idx, int order, int has_order, int pretty, int depth,
                      const Extra *extra, int n_extra) {
    Key rest[FEW_KEYS];
    const OrderKeys *keys = has_order ? order_keys(L, b, order) : &NO_KEYS;
    if (!keys) return 0;
    const char *const *os = keys->s;
    const size_t *ol = keys->len;
    lua_Unsigned on = keys->n;
    size_t rest_n = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        if (lua_type(L, -1) != LUA_TSTRING) { lua_pop(L, 1); return 0; }
        size_t len;
        const char *s = lua_tolstring(L, -1, &len);
        int in_order = 0;
        for (lua_Unsigned i = 0; i < on && !in_order; i++)
            in_order = ol[i] == len && (os[i] == s || memcmp(os[i], s, len) == 0);
        if (in_order) continue;
        if (rest_n == FEW_KEYS) { lua_pop(L, 1); return 0; }
        rest[rest_n].s = s;
        rest[rest_n].len = len;
        rest_n++;
    }
    if (rest_n > 1) qsort(rest, rest_n, sizeof *rest, key_cmp);
    int first = 1;
    put(L, b, "{", 1);
    for (lua_Unsigned i = 0; i < on; i++) {
        lua_rawgeti(L, order, (lua_Integer)i + 1);
        if (put_member(L, b, idx, first, pretty, depth)) { first = 0; continue; }
        for (int e = 0; e < n_extra; e++) {
            if (extra[e].key_len != ol[i] || memcmp(extra[e].key, os[i], ol[i]) != 0) continue;
            lead(L, b, first, pretty, depth);
            first = 0;
            put_key_text(L, b, os[i], ol[i], pretty);
            put(L, b, extra[e].text, extra[e].text_len);
        }
    }
    for (size_t i = 0; i < rest_n; i++) {
        lua_pushlstring(L, rest[i].s, rest[i].len);
        if (put_member(L, b, idx, first, pretty, depth)) first = 0;
    }
    if (first) { b->n -= 1; put(L, b, "{}", 2); return 1; } /* nothing written: as json.lua, {} */
    close_with(L, b, "}", pretty, depth);
    return 1;
}

static void encode_object(lua_State *L, Buf *b, int idx, int pretty, int depth) {
    int exact = mt_field(L, idx, UV_EXACT) != LUA_TNIL && lua_toboolean(L, -1);
    lua_pop(L, 1);
    mt_field(L, idx, UV_ORDER);
    int order = lua_gettop(L);
    int has_order = lua_type(L, order) == LUA_TTABLE;
    if (exact) {
        lua_Unsigned n = lua_rawlen(L, order);
        if (n == 0) put(L, b, "{}", 2);
        else put_members(L, b, idx, order, n, 1, pretty, depth);
        lua_pop(L, 1);
        return;
    }
    lua_pushnil(L);
    if (!lua_next(L, idx)) { put(L, b, "{}", 2); lua_pop(L, 1); return; }
    lua_pop(L, 2);
    if (encode_few(L, b, idx, order, has_order, pretty, depth, NULL, 0)) { lua_pop(L, 1); return; }
    /* The order's keys as a set. */
    lua_Unsigned on = has_order ? lua_rawlen(L, order) : 0;
    lua_createtable(L, 0, (int)on);
    int set = lua_gettop(L);
    for (lua_Unsigned i = 1; i <= on; i++) {
        lua_rawgeti(L, order, (lua_Integer)i);
        lua_pushboolean(L, 1);
        lua_rawset(L, set);
    }
    /* The keys not in the order (all of them without one), each with its text: tostring of a
     * key that is not a string. rest_keys holds, for the i-th, its text and the key itself. */
    size_t rest_n = 0, rest_cap = 0;
    Key *rest = NULL;
    lua_newtable(L);
    int rest_keys = lua_gettop(L);
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        if (has_order) {
            lua_pushvalue(L, -1);
            int in_order = lua_rawget(L, set) != LUA_TNIL;
            lua_pop(L, 1);
            if (in_order) continue;
        }
        if (rest_n == rest_cap) {
            rest_cap = rest_cap ? rest_cap * 2 : 16;
            Key *grown = realloc(rest, rest_cap * sizeof *rest);
            if (!grown) { free(rest); luaL_error(L, "json: out of memory"); }
            rest = grown;
        }
        if (lua_type(L, -1) == LUA_TSTRING) lua_pushvalue(L, -1);
        else luaL_tolstring(L, -1, NULL);
        rest[rest_n].s = lua_tolstring(L, -1, &rest[rest_n].len);
        rest[rest_n].ref = (int)(2 * rest_n + 2);
        lua_rawseti(L, rest_keys, (lua_Integer)(2 * rest_n + 1)); /* the text, kept alive */
        lua_pushvalue(L, -1);
        lua_rawseti(L, rest_keys, (lua_Integer)(2 * rest_n + 2)); /* the key */
        rest_n++;
    }
    /* The keys in order: the order's (those with a value; twice if named twice, as json.lua),
     * then the rest sorted. */
    lua_createtable(L, (int)(on + rest_n), 0);
    int keys = lua_gettop(L);
    lua_Unsigned n = 0;
    for (lua_Unsigned i = 1; i <= on; i++) {
        lua_rawgeti(L, order, (lua_Integer)i);
        lua_pushvalue(L, -1);
        int t = lua_rawget(L, idx);
        lua_pop(L, 1);
        if (t != LUA_TNIL) lua_rawseti(L, keys, (lua_Integer)++n);
        else lua_pop(L, 1);
    }
    /* (json.lua's two paths, an order that names every key once or not, give this same list) */
    if (rest_n > 1) qsort(rest, rest_n, sizeof *rest, key_cmp);
    for (size_t i = 0; i < rest_n; i++) {
        lua_rawgeti(L, rest_keys, rest[i].ref);
        lua_rawseti(L, keys, (lua_Integer)++n);
    }
    free(rest);
    if (n == 0) put(L, b, "{}", 2);
    else put_members(L, b, idx, keys, n, 0, pretty, depth);
    lua_pop(L, 4); /* keys, rest_keys, set, order */
}

static void encode_table(lua_State *L, Buf *b, int idx, int pretty, int depth);

/* number_array(s, len, &item, &spaced) -> the length of the JSON array of numbers at the start of
 * s ("[1, 2.5e3]"; spaces allowed around items, and then *spaced is 1), or 0 with *item the index
 * of the first item that is not a number (0: no array at all). What number_list checks and
 * with_series copies. */
#define WS(c) ((c) == ' ' || (c) == '\t' || (c) == '\n' || (c) == '\r')
#define SKIP_WS while (i < len && WS(s[i])) { i++; *spaced = 1; }
#define DIGIT (i < len && s[i] >= '0' && s[i] <= '9')
static size_t number_array(const char *s, size_t len, lua_Integer *item, int *spaced) {
    size_t i = 0;
    *item = 0;
    *spaced = 0;
    if (i >= len || s[i] != '[') return 0;
    i++;
    SKIP_WS;
    if (i < len && s[i] == ']') return i + 1;
    for (;;) {
        ++*item;
        if (i < len && s[i] == '-') i++;
        if (i < len && s[i] == '0') i++;
        else if (DIGIT) { while (DIGIT) i++; }
        else return 0;
        if (i < len && s[i] == '.') { i++; if (!DIGIT) return 0; while (DIGIT) i++; }
        if (i < len && (s[i] == 'e' || s[i] == 'E')) {
            i++;
            if (i < len && (s[i] == '+' || s[i] == '-')) i++;
            if (!DIGIT) return 0;
            while (DIGIT) i++;
        }
        SKIP_WS;
        if (i < len && s[i] == ',') { i++; SKIP_WS; continue; }
        if (i < len && s[i] == ']') return i + 1;
        return 0;
    }
}
#undef SKIP_WS
#undef DIGIT

/* skip_ws(s, len, i) -> the index of the first byte at or after i that is not JSON white space. */
static size_t skip_ws(const char *s, size_t len, size_t i) {
    while (i < len && WS(s[i])) i++;
    return i;
}

/* series_of(at, end, name, n, extra) -> how many of series and series_step a series-file line's
 * metrics (from `at` to `end`) hold for metric `name` (0 when none, or not in the shape
 * write_series gives it: "NAME":{"series":[…]} or "NAME":{"series":[…],"series_step":N}), set in
 * extra. */
static int series_of(const char *at, const char *end, const char *name, size_t n, Extra *extra) {
    static const char open[] = "\":{\"series\":";
    if (n > 256) return 0;
    char needle[256 + sizeof open + 1];
    needle[0] = '"';
    memcpy(needle + 1, name, n);
    memcpy(needle + 1 + n, open, sizeof open - 1);
    const char *hit = memmem(at, (size_t)(end - at), needle, 1 + n + sizeof open - 1);
    if (!hit) return 0;
    const char *arr = hit + 1 + n + sizeof open - 1;
    lua_Integer bad;
    int spaced;
    size_t items = number_array(arr, (size_t)(end - arr), &bad, &spaced);
    if (!items || spaced) return 0; /* (write_series writes no spaces: another writer's line) */
    extra[0] = (Extra){"series", arr, 6, items};
    const char *after = arr + items;
    if (after < end && *after == '}') return 1;
    static const char step[] = ",\"series_step\":";
    if ((size_t)(end - after) < sizeof step - 1 || memcmp(after, step, sizeof step - 1) != 0) return 1;
    const char *num = after + sizeof step - 1, *past = num;
    while (past < end && *past && strchr("0123456789.eE+-", *past)) past++; /* (strchr finds a NUL too) */
    if (past == num || past == end || *past != '}') return 1;
    extra[1] = (Extra){"series_step", num, 11, (size_t)(past - num)};
    return 2;
}

/* json.with_series { records, line, order [, at] }: a job's metric records (name -> record) as a
 * result's `metrics`: names sorted, each record's keys in `order`, with its series and
 * series_step taken as they are from `line` (the job's line in the run's series file, checked to
 * be an array of numbers; with `at`, the line starting at that byte of the text `line`, up to its
 * newline) where the record has none of its own. No table or string a series:
 * --json of 10,000 jobs with 3 metrics each made a dozen a job. */
static void encode_with_series(lua_State *L, Buf *b, int idx, int pretty, int depth) {
    lua_rawgeti(L, idx, 1);
    int records = lua_gettop(L);
    size_t line_len = 0;
    lua_rawgeti(L, idx, 2);
    const char *line = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &line_len) : NULL;
    lua_rawgeti(L, idx, 3);
    int order = lua_gettop(L);
    lua_rawgeti(L, idx, 4);
    if (line && lua_isinteger(L, -1)) {
        /* the line that starts at byte `at` of a text of lines (up to its "\n") */
        lua_Integer at = lua_tointeger(L, -1);
        if (at < 1 || (size_t)at > line_len + 1) {
            line = NULL;
        } else {
            line += at - 1;
            line_len -= (size_t)(at - 1);
            const char *nl = memchr(line, '\n', line_len);
            if (nl) line_len = (size_t)(nl - line);
        }
    }
    lua_pop(L, 1);
    if (lua_type(L, records) != LUA_TTABLE || lua_type(L, order) != LUA_TTABLE) {
        put(L, b, "null", 4);
        lua_settop(L, records - 1);
        return;
    }
    Key names[FEW_KEYS];
    size_t n = 0;
    lua_pushnil(L);
    while (lua_next(L, records)) {
        int is_record = lua_type(L, -1) == LUA_TTABLE;
        lua_pop(L, 1);
        if (lua_type(L, -1) != LUA_TSTRING || !is_record || n == FEW_KEYS) {
            /* not the usual shape: written as any table is, with no series */
            lua_pop(L, 1);
            encode_table(L, b, records, pretty, depth);
            lua_settop(L, records - 1);
            return;
        }
        names[n].s = lua_tolstring(L, -1, &names[n].len);
        n++;
    }
    if (n == 0) { put(L, b, "{}", 2); lua_settop(L, records - 1); return; }
    if (n > 1) qsort(names, n, sizeof *names, key_cmp);
    /* The line's metrics part, once for all its names (none from a line with an escape: the
     * Lua side reads such a line whole). The key and job name come before it. */
    const char *at = line && memchr(line, '\\', line_len) == NULL ? memmem(line, line_len, ",\"metrics\":{", 12) : NULL;
    put(L, b, "{", 1);
    for (size_t i = 0; i < n; i++) {
        lead(L, b, i == 0, pretty, depth);
        put_key_text(L, b, names[i].s, names[i].len, pretty);
        lua_pushlstring(L, names[i].s, names[i].len);
        lua_rawget(L, records);
        int rec = lua_gettop(L);
        Extra extra[MAX_EXTRA];
        int n_extra = at ? series_of(at, line + line_len, names[i].s, names[i].len, extra) : 0;
        if (!encode_few(L, b, rec, order, 1, pretty, depth + 1, extra, n_extra))
            encode_table(L, b, rec, pretty, depth + 1);
        lua_pop(L, 1);
    }
    close_with(L, b, "}", pretty, depth);
    lua_settop(L, records - 1);
}

static void encode_table(lua_State *L, Buf *b, int idx, int pretty, int depth) {
    if (depth > MAX_DEPTH) luaL_error(L, "json: nesting too deep (a cycle?)");
    luaL_checkstack(L, 16, "json: nesting");
    /* json.raw: JSON text already checked (a series read from a file), put as it is */
    if (mt_field(L, idx, UV_NAME) == LUA_TSTRING && strcmp(lua_tostring(L, -1), "json.with_series") == 0) {
        lua_pop(L, 1);
        encode_with_series(L, b, idx, pretty, depth);
        return;
    }
    if (lua_type(L, -1) == LUA_TSTRING && strcmp(lua_tostring(L, -1), "json.raw") == 0) {
        lua_pop(L, 1);
        size_t n = 0;
        lua_rawgeti(L, idx, 1);
        const char *raw = lua_tolstring(L, -1, &n);
        if (raw) put(L, b, raw, n); else put(L, b, "null", 4);
        lua_pop(L, 1);
        return;
    }
    lua_pop(L, 1);
    if (is_array(L, idx)) {
        lua_Unsigned len = lua_rawlen(L, idx);
        if (len == 0) { put(L, b, "[]", 2); return; }
        put(L, b, "[", 1);
        for (lua_Unsigned i = 1; i <= len; i++) {
            lead(L, b, i == 1, pretty, depth);
            lua_rawgeti(L, idx, (lua_Integer)i);
            encode_value(L, b, lua_gettop(L), pretty, depth + 1);
            lua_pop(L, 1);
        }
        close_with(L, b, "]", pretty, depth);
        return;
    }
    encode_object(L, b, idx, pretty, depth);
}

static void encode_value(lua_State *L, Buf *b, int idx, int pretty, int depth) {
    switch (lua_type(L, idx)) {
    case LUA_TSTRING: put_string(L, b, idx); break;
    case LUA_TNUMBER: put_number(L, b, idx); break;
    case LUA_TBOOLEAN: put_lit(L, b, lua_toboolean(L, idx) ? "true" : "false"); break;
    case LUA_TNIL: put(L, b, "null", 4); break;
    case LUA_TLIGHTUSERDATA:
        if (lua_touserdata(L, idx) == NULL) { put(L, b, "null", 4); break; } /* cjson.null */
        put_kind(L, b, idx);
        break;
    case LUA_TTABLE: encode_table(L, b, lua_absindex(L, idx), pretty, depth); break;
    default: put_kind(L, b, idx); break;
    }
}

/* take_buffer(L) -> the buffer kept between calls (UV_BUF), taken for this one and pushed: a
 * call nested in it (a key's __tostring that encodes) or after an error, which lost it, makes a
 * new one. Its memory is freed by __gc, even on an error. (A fresh 4 KB buffer a call was most
 * of what plan --json's many small values cost: malloc, free and their consolidation.) */
static Buf *take_buffer(lua_State *L) {
    Buf *b = lua_touserdata(L, lua_upvalueindex(UV_BUF));
    if (b) {
        lua_pushvalue(L, lua_upvalueindex(UV_BUF));
        lua_pushnil(L);
        lua_replace(L, lua_upvalueindex(UV_BUF));
    } else {
        b = lua_newuserdatauv(L, sizeof *b, 0);
        memset(b, 0, sizeof *b);
        luaL_setmetatable(L, "jobrun.base.json.buffer");
    }
    b->n = 0;
    b->sink = NULL;
    b->err = 0;
    for (int i = 0; i < ORDERS; i++) b->orders[i].id = NULL; /* (kept for one call only) */
    return b;
}

/* give_buffer(L, b, idx): the buffer (at idx) kept for the next call, unless it grew big. */
static void give_buffer(lua_State *L, Buf *b, int idx) {
    if (b->cap > BUF_KEEP) { /* a big document's buffer is not kept */
        free(b->p);
        b->p = NULL;
        b->cap = 0;
    }
    b->sink = NULL;
    lua_pushvalue(L, idx);
    lua_replace(L, lua_upvalueindex(UV_BUF));
}

/* encode(v, pretty, depth) -> v's JSON text, as if it stood at that depth of a bigger document. */
static int json_encode(lua_State *L) {
    luaL_checkany(L, ARG_V);
    int pretty = lua_toboolean(L, ARG_PRETTY);
    int depth = (int)luaL_optinteger(L, ARG_DEPTH, 0);
    lua_settop(L, ARG_DEPTH);
    Buf *b = take_buffer(L);
    encode_value(L, b, ARG_V, pretty, depth);
    lua_pushlstring(L, b->p ? b->p : "", b->n);
    give_buffer(L, b, ARG_BUF);
    return 1;
}

/* write(file, v, pretty) -> true | nil, "json: write: why", errno: what encode(v, pretty, 0)
 * makes, written to an io file a chunk at a time (a 10,000-job --json answer of 25 MB was a
 * buffer grown to 32 MB, then a string copied from it, then written), and flushed. A write error
 * drops the rest and is returned at the end; an encoding error leaves what was written. */
static int json_write(lua_State *L) {
    luaL_Stream *stream = luaL_checkudata(L, 1, LUA_FILEHANDLE);
    if (stream->closef == NULL) return luaL_error(L, "json: write: the file is closed");
    luaL_checkany(L, 2);
    lua_remove(L, 1); /* (v, pretty, as encode has them) */
    int pretty = lua_toboolean(L, ARG_PRETTY);
    lua_settop(L, ARG_DEPTH);
    Buf *b = take_buffer(L);
    if (b->cap < SINK_CHUNK) {
        char *p = realloc(b->p, SINK_CHUNK);
        if (!p) return luaL_error(L, "json: out of memory");
        b->p = p;
        b->cap = SINK_CHUNK;
    }
    b->sink = stream->f;
    encode_value(L, b, ARG_V, pretty, 0);
    sink_write(b, b->p, b->n);
    b->n = 0;
    if (!b->err && fflush(b->sink) != 0) b->err = errno ? errno : EIO; /* (its error is the write's) */
    int err = b->err;
    give_buffer(L, b, ARG_BUF);
    if (err) {
        lua_pushnil(L);
        lua_pushfstring(L, "json: write: %s", strerror(err));
        lua_pushinteger(L, err);
        return 3;
    }
    lua_pushboolean(L, 1);
    return 1;
}

/* not_number(list) -> the index of the first item of list that is not a number, or nil: a
 * series of 200 points checked in C (in Lua this check was most of --json's cost on a run of
 * 10,000 jobs with series). */
static int json_not_number(lua_State *L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_Integer n = luaL_len(L, 1);
    for (lua_Integer i = 1; i <= n; i++) {
        int type = lua_rawgeti(L, 1, i);
        lua_pop(L, 1);
        if (type != LUA_TNUMBER) { lua_pushinteger(L, i); return 1; }
    }
    lua_pushnil(L);
    return 1;
}

/* number_list(text) -> true when text is a JSON array of numbers only ("[]", "[1,-2.5e3]"),
 * else the index of the first item that is not a number (0: not an array at all). What a
 * series read from a file must be before it goes into an answer as it is (json.raw). */
static int json_number_list(lua_State *L) {
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    size_t i = skip_ws(s, len, 0);
    lua_Integer item;
    int spaced;
    size_t n = number_array(s + i, len - i, &item, &spaced);
    if (n) {
        item = 0; /* an array, then something else: not an array of numbers at all */
        if (skip_ws(s, len, i + n) == len) { lua_pushboolean(L, 1); return 1; }
    }
    lua_pushinteger(L, item);
    return 1;
}


/* ---- decode ------------------------------------------------------------------------------ */

/* decode(text) -> value: JSON text as Lua values, as lua-cjson's decode and the walk after it
 * made them (objects and arrays as tables, null as cjson.null, a light userdata NULL; whole
 * numbers in the 64-bit range as integers), or an error "json: <what> at byte N". Tables are
 * made at their size (each object's members are gathered on the stack first): reading a
 * 10,000-job state.json was a third lua-cjson's growing tables and the walk after it. */
#define DEC_MAX_DEPTH 1000 /* as lua-cjson */
#define DEC_GATHER 64      /* members gathered before a table is made */

typedef struct {
    const char *start, *p, *end;
} Dec;

static int dec_fail(lua_State *L, const Dec *d, const char *what) {
    return luaL_error(L, "json: %s at byte %d", what, (int)(d->p - d->start) + 1);
}

static void dec_ws(Dec *d) {
    while (d->p < d->end && (*d->p == ' ' || *d->p == '\n' || *d->p == '\r' || *d->p == '\t')) d->p++;
}

static int hex4(const char *p) {
    int v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= c - '0';
        else if (c >= 'a' && c <= 'f') v |= c - 'a' + 10;
        else if (c >= 'A' && c <= 'F') v |= c - 'A' + 10;
        else return -1;
    }
    return v;
}

static void put_utf8(luaL_Buffer *b, unsigned long cp) {
    char u[4];
    int n;
    if (cp < 0x80) { u[0] = (char)cp; n = 1; }
    else if (cp < 0x800) { u[0] = (char)(0xC0 | (cp >> 6)); u[1] = (char)(0x80 | (cp & 0x3F)); n = 2; }
    else if (cp < 0x10000) {
        u[0] = (char)(0xE0 | (cp >> 12)); u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        u[2] = (char)(0x80 | (cp & 0x3F)); n = 3;
    } else {
        u[0] = (char)(0xF0 | (cp >> 18)); u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        u[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); u[3] = (char)(0x80 | (cp & 0x3F)); n = 4;
    }
    luaL_addlstring(b, u, (size_t)n);
}

/* A string (d->p at its opening quote), pushed. Without escapes it is pushed from the text. */
static void dec_string(lua_State *L, Dec *d) {
    const char *s = ++d->p;
    while (d->p < d->end && *d->p != '"' && *d->p != '\\') d->p++;
    if (d->p >= d->end) dec_fail(L, d, "unterminated string");
    if (*d->p == '"') {
        lua_pushlstring(L, s, (size_t)(d->p - s));
        d->p++;
        return;
    }
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    luaL_addlstring(&b, s, (size_t)(d->p - s));
    while (d->p < d->end && *d->p != '"') {
        if (*d->p != '\\') { luaL_addchar(&b, *d->p++); continue; }
        if (d->p + 1 >= d->end) break;
        char e = d->p[1];
        d->p += 2;
        switch (e) {
        case '"': luaL_addchar(&b, '"'); break;
        case '\\': luaL_addchar(&b, '\\'); break;
        case '/': luaL_addchar(&b, '/'); break;
        case 'b': luaL_addchar(&b, '\b'); break;
        case 'f': luaL_addchar(&b, '\f'); break;
        case 'n': luaL_addchar(&b, '\n'); break;
        case 'r': luaL_addchar(&b, '\r'); break;
        case 't': luaL_addchar(&b, '\t'); break;
        case 'u': {
            int hi = d->end - d->p >= 4 ? hex4(d->p) : -1;
            if (hi < 0) dec_fail(L, d, "invalid \\u escape");
            d->p += 4;
            unsigned long cp = (unsigned long)hi;
            if (hi >= 0xD800 && hi <= 0xDBFF) {
                /* a high surrogate: its low one must follow */
                int lo = d->end - d->p >= 6 && d->p[0] == '\\' && d->p[1] == 'u' ? hex4(d->p + 2) : -1;
                if (lo < 0xDC00 || lo > 0xDFFF) dec_fail(L, d, "invalid \\u escape (a lone surrogate)");
                d->p += 6;
                cp = 0x10000 + (((unsigned long)hi - 0xD800) << 10) + ((unsigned long)lo - 0xDC00);
            } else if (hi >= 0xDC00 && hi <= 0xDFFF) {
                dec_fail(L, d, "invalid \\u escape (a lone surrogate)");
            }
            put_utf8(&b, cp);
            break;
        }
        default: d->p--; dec_fail(L, d, "invalid escape");
        }
    }
    if (d->p >= d->end) dec_fail(L, d, "unterminated string");
    d->p++;
    luaL_pushresult(&b);
}

#define DEC_DIGIT (d->p < d->end && *d->p >= '0' && *d->p <= '9')

/* short_number(s, len, &v) -> 1 with v the double nearest the JSON number s (valid, as
 * dec_number has scanned it), when it has at most 2^53 as its digits without the point (M) and
 * a power of ten 10^k with |k| <= 22 (M x 10^k, or M / 10^-k): both are exact doubles, and one
 * IEEE multiplication or division rounds once, to the nearest, as strtod does (Clinger's fast
 * path). Else 0. A metric record's 2.4 or 0.4355 took strtod on a copy, a tenth of decoding a
 * run's state. */
static int short_number(const char *s, size_t len, double *v) {
    static const double p10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
                                 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
    const unsigned long long limit = 9007199254740992ULL; /* 2^53 */
    size_t i = 0;
    int neg = 0, frac = 0;
    unsigned long long m = 0;
    if (i < len && s[i] == '-') { neg = 1; i++; }
    for (; i < len && s[i] >= '0' && s[i] <= '9'; i++) {
        m = m * 10 + (unsigned)(s[i] - '0');
        if (m > limit) return 0;
    }
    if (i < len && s[i] == '.') {
        for (i++; i < len && s[i] >= '0' && s[i] <= '9'; i++, frac++) {
            m = m * 10 + (unsigned)(s[i] - '0');
            if (m > limit || frac > 22) return 0;
        }
    }
    int e = 0;
    if (i < len && (s[i] == 'e' || s[i] == 'E')) {
        int eneg = 0;
        i++;
        if (i < len && (s[i] == '+' || s[i] == '-')) eneg = s[i++] == '-';
        for (; i < len && s[i] >= '0' && s[i] <= '9'; i++) {
            e = e * 10 + (s[i] - '0');
            if (e > 400) return 0;
        }
        if (eneg) e = -e;
    }
    if (i != len) return 0;
    int k = e - frac;
    if (k < -22 || k > 22) return 0;
    double x = (double)m;
    x = k >= 0 ? x * p10[k] : x / p10[-k];
    *v = neg ? -x : x;
    return 1;
}

static void dec_number(lua_State *L, Dec *d) {
    const char *s = d->p;
    int neg = 0, whole = 1;
    if (*d->p == '-') { neg = 1; d->p++; }
    if (!DEC_DIGIT) dec_fail(L, d, "invalid number");
    unsigned long long n = 0;
    int overflow = 0;
    if (*d->p == '0') d->p++;
    else {
        while (DEC_DIGIT) {
            unsigned digit = (unsigned)(*d->p++ - '0');
            if (n > (18446744073709551615ULL - digit) / 10) overflow = 1;
            else n = n * 10 + digit;
        }
    }
    if (d->p < d->end && *d->p == '.') {
        whole = 0;
        d->p++;
        if (!DEC_DIGIT) dec_fail(L, d, "invalid number");
        while (DEC_DIGIT) d->p++;
    }
    if (d->p < d->end && (*d->p == 'e' || *d->p == 'E')) {
        whole = 0;
        d->p++;
        if (d->p < d->end && (*d->p == '+' || *d->p == '-')) d->p++;
        if (!DEC_DIGIT) dec_fail(L, d, "invalid number");
        while (DEC_DIGIT) d->p++;
    }
    if (whole && !overflow && n <= (neg ? 9223372036854775808ULL : 9223372036854775807ULL)) {
        lua_pushinteger(L, neg ? (lua_Integer)(0ULL - n) : (lua_Integer)n);
        return;
    }
    /* a fraction, an exponent or a whole number past 64 bits: the short decimal at once, else
     * strtod, on a copy (the text may go on with digits strtod would take, such as a following key) */
    char text[128];
    size_t len = (size_t)(d->p - s);
    double v;
    if (short_number(s, len, &v)) {
        /* (v as strtod reads it) */
    } else if (len < sizeof text) {
        memcpy(text, s, len);
        text[len] = '\0';
        v = strtod(text, NULL);
    } else {
        char *big = malloc(len + 1);
        if (!big) luaL_error(L, "json: out of memory");
        memcpy(big, s, len);
        big[len] = '\0';
        v = strtod(big, NULL);
        free(big);
    }
    lua_Integer i;
    if (lua_numbertointeger(v, &i) && (lua_Number)i == v) lua_pushinteger(L, i);
    else lua_pushnumber(L, v);
}

static void dec_value(lua_State *L, Dec *d, int depth);

static void dec_literal(lua_State *L, Dec *d, const char *word) {
    size_t n = strlen(word);
    if ((size_t)(d->end - d->p) < n || memcmp(d->p, word, n) != 0) dec_fail(L, d, "invalid value");
    d->p += n;
}

/* The members gathered on the stack above `base` (key, value pairs) moved into the table at
 * `t` (made now at its size when t is 0); returns the table's index. */
static int dec_flush(lua_State *L, int base, int t, int pairs, int array) { /* (pairs: or items) */
    if (!t) {
        if (array) lua_createtable(L, pairs, 0);
        else lua_createtable(L, 0, pairs);
        lua_insert(L, base + 1);
        t = base + 1;
    }
    return t;
}

/* dec_more(L, d, close) -> 1 when a ',' follows an item (another comes), 0 at the closing
 * bracket `close` (taken); anything else is an error. */
static int dec_more(lua_State *L, Dec *d, char close) {
    dec_ws(d);
    if (d->p < d->end && *d->p == ',') { d->p++; return 1; }
    if (d->p < d->end && *d->p == close) { d->p++; return 0; }
    return dec_fail(L, d, close == '}' ? "expected ',' or '}'" : "expected ',' or ']'");
}

/* The `gathered` key, value pairs above the table at t set in it in the order they came (a
 * repeated key keeps its last value, as lua-cjson), and taken off the stack. */
static void dec_members(lua_State *L, int t, int gathered) {
    for (int i = 0; i < gathered; i++) {
        lua_pushvalue(L, t + 1 + 2 * i);
        lua_pushvalue(L, t + 2 + 2 * i);
        lua_rawset(L, t);
    }
    lua_settop(L, t);
}

static void dec_object(lua_State *L, Dec *d, int depth) {
    int base = lua_gettop(L), t = 0, gathered = 0;
    d->p++;
    dec_ws(d);
    if (d->p < d->end && *d->p == '}') { d->p++; lua_createtable(L, 0, 0); return; }
    for (;;) {
        luaL_checkstack(L, 4, "json: nesting");
        dec_ws(d);
        if (d->p >= d->end || *d->p != '"') dec_fail(L, d, "expected a string key");
        dec_string(L, d);
        dec_ws(d);
        if (d->p >= d->end || *d->p != ':') dec_fail(L, d, "expected ':'");
        d->p++;
        dec_value(L, d, depth + 1);
        if (++gathered == DEC_GATHER) {
            /* a big object: made now, at this size, and filled as it goes on */
            t = dec_flush(L, base, t, t ? 0 : gathered, 0);
            dec_members(L, t, gathered);
            gathered = 0;
        }
        if (!dec_more(L, d, '}')) break;
    }
    t = dec_flush(L, base, t, gathered, 0);
    dec_members(L, t, gathered);
}

static void dec_array(lua_State *L, Dec *d, int depth) {
    int base = lua_gettop(L), t = 0, gathered = 0;
    lua_Integer n = 0;
    d->p++;
    dec_ws(d);
    if (d->p < d->end && *d->p == ']') { d->p++; lua_createtable(L, 0, 0); return; }
    for (;;) {
        luaL_checkstack(L, 3, "json: nesting");
        dec_value(L, d, depth + 1);
        if (++gathered == DEC_GATHER) {
            t = dec_flush(L, base, t, t ? 0 : gathered, 1);
            for (int i = 0; i < gathered; i++) lua_rawseti(L, t, n + gathered - i);
            n += gathered;
            gathered = 0;
        }
        if (!dec_more(L, d, ']')) break;
    }
    t = dec_flush(L, base, t, gathered, 1);
    for (int i = 0; i < gathered; i++) lua_rawseti(L, t, n + gathered - i);
}

static void dec_value(lua_State *L, Dec *d, int depth) {
    if (depth > DEC_MAX_DEPTH) dec_fail(L, d, "nesting too deep");
    dec_ws(d);
    if (d->p >= d->end) dec_fail(L, d, "expected a value");
    switch (*d->p) {
    case '{': dec_object(L, d, depth); break;
    case '[': dec_array(L, d, depth); break;
    case '"': dec_string(L, d); break;
    case 't': dec_literal(L, d, "true"); lua_pushboolean(L, 1); break;
    case 'f': dec_literal(L, d, "false"); lua_pushboolean(L, 0); break;
    case 'n': dec_literal(L, d, "null"); lua_pushlightuserdata(L, NULL); break;
    default:
        if (*d->p == '-' || (*d->p >= '0' && *d->p <= '9')) dec_number(L, d);
        else dec_fail(L, d, "invalid value");
    }
}

static int json_decode(lua_State *L) {
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    Dec d = {s, s, s + len};
    lua_settop(L, 1);
    dec_value(L, &d, 0);
    dec_ws(&d);
    if (d.p != d.end) dec_fail(L, &d, "text after the value");
    return 1;
}

static const luaL_Reg json_functions[] = {
    {"decode", json_decode},
    {"number_list", json_number_list},
    {"not_number", json_not_number},
    {NULL, NULL},
};

int luaopen_jobrun_json(lua_State *L) {
    static const luaL_Reg buffer_meta[] = {{"__gc", buf_gc}, {NULL, NULL}};
    jobrun_class(L, "jobrun.base.json.buffer", buffer_meta, NULL);
    luaL_newlib(L, json_functions);
    /* encode and write: the same names, a buffer each (one may run inside the other) */
    lua_CFunction entries[] = {json_encode, json_write};
    const char *names[] = {"encode", "write"};
    for (int i = 0; i < 2; i++) {
        lua_pushliteral(L, "__name"); /* UV_NAME */
        lua_pushliteral(L, "order");  /* UV_ORDER */
        lua_pushliteral(L, "exact");  /* UV_EXACT */
        Buf *b = lua_newuserdatauv(L, sizeof *b, 0); /* UV_BUF */
        memset(b, 0, sizeof *b);
        luaL_setmetatable(L, "jobrun.base.json.buffer");
        lua_pushcclosure(L, entries[i], 4);
        lua_setfield(L, -2, names[i]);
    }
    return 1;
}
