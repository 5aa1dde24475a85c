/* libFuzzer target: the C log scanner (src/scan.c) on arbitrary logs — scan.find, scan.tail,
 * scan.last_lines, which is also checked against a plain reference (tail -n, with the same cut
 * rule) written the obvious way, in memory, and scan.tail_lines and scan.strip (the reports'
 * tail and the escape stripper), whose results must keep their promises. Built with tiny chunk and block sizes
 * (tests/fuzz.sh), so that small inputs cross every boundary.
 *
 * Input: 3 parameter bytes (line count, line size limit, needle length), the needle, then the
 * log. Any sanitizer report, Lua error or mismatch is a crash. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "host.h"

#ifndef BACK_WINDOW
#define BACK_WINDOW (16u << 20)
#endif

static lua_State *L;
static int log_fd = -1;
static char log_path[64];

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    L = luaL_newstate();
    log_fd = memfd_create("scan_fuzz_log", MFD_CLOEXEC);
    if (!L || log_fd < 0) abort();
    luaL_requiref(L, "scan", luaopen_jobrun_scan, 1);
    lua_pop(L, 1);
    snprintf(log_path, sizeof log_path, "/proc/self/fd/%d", log_fd);
    return 0;
}

static void fail(const char *what) {
    fprintf(stderr, "scan_fuzz: %s\n", what);
    abort();
}

/* Calls scan.<fn> with the arguments pushed after it; n results stay on the stack. */
static void call(int nargs, int nresults) {
    if (lua_pcall(L, nargs, nresults, 0) != LUA_OK) fail(lua_tostring(L, -1));
}

/* The reference: the last n lines of data, each cut after max bytes (not inside a UTF-8
 * sequence) with "… [cut: N more bytes]", line breaks as they were but that a lone "\r" breaks
 * a line too and shows as "\n"; no break found in the window's last bytes: the window, after
 * a line saying how much was not read. */
static void add_count(luaL_Buffer *b, unsigned long long v) {
    char digits[32];
    int n = snprintf(digits, sizeof digits, "%llu", v);
    for (int i = 0; i < n; i++) {
        if (i > 0 && (n - i) % 3 == 0) luaL_addchar(b, ',');
        luaL_addchar(b, digits[i]);
    }
}

static int is_break_at(const char *data, size_t size, size_t i) {
    return data[i] == '\n' || (data[i] == '\r' && !(i + 1 < size && data[i + 1] == '\n'));
}

static void reference(const char *data, size_t size, long n, size_t max) {
    size_t start = size;
    int cut = 0;
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    if (n > 0) {
        size_t end = size;
        if (end > 0 && data[end - 1] == '\n') {
            end--;
            if (end > 0 && data[end - 1] == '\r') end--;
        } else if (end > 0 && data[end - 1] == '\r') {
            end--;
        }
        size_t window = BACK_WINDOW;
        if ((size_t)n * max > window) window = (size_t)n * max;
        size_t floor = size > window ? size - window : 0;
        start = floor;
        cut = floor > 0;
        for (size_t i = end; i > floor; i--) {
            if (is_break_at(data, size, i - 1) && --n == 0) { start = i; cut = 0; break; }
        }
        if (cut) {
            luaL_addstring(&b, "\xe2\x80\xa6 [cut: ");
            add_count(&b, start);
            luaL_addstring(&b, " earlier bytes not read: too few line breaks in the last ");
            add_count(&b, size - start);
            luaL_addstring(&b, "]\n");
        }
    }
    for (size_t p = start; p < size;) {
        size_t e = p;
        while (e < size && !is_break_at(data, size, e)) e++;
        size_t len = e - p;
        size_t take = len;
        if (len > max) {
            take = max;
            while (take > 0 && ((unsigned char)data[p + take] & 0xC0) == 0x80) take--;
        }
        luaL_addlstring(&b, data + p, take);
        if (take < len) {
            luaL_addstring(&b, "\xe2\x80\xa6 [cut: ");
            add_count(&b, len - take);
            luaL_addstring(&b, " more bytes]");
        }
        if (e == size) break;
        luaL_addchar(&b, '\n');
        p = e + 1;
    }
    luaL_pushresult(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *input, size_t size) {
    if (size < 3) return 0;
    long n = input[0] % 40;
    size_t max = 1 + input[1] % 64;
    size_t needle_len = 1 + input[2] % 6;
    if (size < 3 + needle_len) return 0;
    const char *needle = (const char *)input + 3;
    const char *data = needle + needle_len;
    size_t len = size - 3 - needle_len;
    if (ftruncate(log_fd, 0) != 0 || pwrite(log_fd, data, len, 0) != (ssize_t)len) fail("cannot write the log");
    int top = lua_gettop(L);

    /* last_lines with a limit no line reaches, and with a small one: both as the reference. */
    size_t limits[2] = {len + 1, max};
    for (int i = 0; i < 2; i++) {
        lua_getglobal(L, "scan");
        lua_getfield(L, -1, "last_lines");
        lua_pushstring(L, log_path);
        lua_pushinteger(L, n);
        lua_pushinteger(L, (lua_Integer)limits[i]);
        call(3, 2);
        if (!lua_isstring(L, -2) || !lua_istable(L, -1)) fail("last_lines returned no text");
        reference(data, len, n, limits[i]);
        if (!lua_rawequal(L, -1, -3)) {
            fprintf(stderr, "n=%ld max=%zu\ngot:  [%s]\nwant: [%s]\n", n, limits[i], lua_tostring(L, -3),
                    lua_tostring(L, -1));
            fail("last_lines differs from the reference");
        }
        lua_settop(L, top);
    }

    /* find over the whole log and over its tail; tail(). No oracle: they must not crash, and
     * what they report must hold together. */
    for (int i = 0; i < 2; i++) {
        lua_getglobal(L, "scan");
        lua_getfield(L, -1, "find");
        lua_pushstring(L, log_path);
        lua_createtable(L, 2, 0);
        lua_pushlstring(L, needle, needle_len);
        lua_rawseti(L, -2, 1);
        lua_pushliteral(L, "\x1b[");
        lua_rawseti(L, -2, 2);
        if (i == 0) lua_pushnil(L);
        else lua_pushinteger(L, (lua_Integer)max);
        call(3, 2);
        for (int k = 1; k <= 2; k++) {
            lua_rawgeti(L, -2, k);
            lua_getfield(L, -1, "count");
            lua_Integer count = lua_tointeger(L, -1);
            lua_getfield(L, -2, "first");
            lua_Integer firsts = (lua_Integer)lua_rawlen(L, -1);
            if (count < firsts || firsts > 8 || (count > 0 && firsts == 0)) fail("find: inconsistent hits");
            lua_pop(L, 3);
        }
        lua_settop(L, top);
    }
    lua_getglobal(L, "scan");
    lua_getfield(L, -1, "tail");
    lua_pushstring(L, log_path);
    lua_pushinteger(L, (lua_Integer)max);
    call(2, 1);
    if (!lua_isstring(L, -1) || lua_rawlen(L, -1) > max) fail("tail: more than asked");
    lua_settop(L, top);

    /* tail_lines, with and without colours, in a window of max bytes: at most n lines, each at
     * most max bytes and its markers, none holding a line break or (without sgr) an ESC. */
    for (int sgr = 0; sgr < 2; sgr++) {
        lua_getglobal(L, "scan");
        lua_getfield(L, -1, "tail_lines");
        lua_pushstring(L, log_path);
        lua_pushinteger(L, n);
        lua_createtable(L, 0, 3);
        lua_pushinteger(L, (lua_Integer)max);
        lua_setfield(L, -2, "width");
        lua_pushinteger(L, (lua_Integer)max);
        lua_setfield(L, -2, "window");
        lua_pushboolean(L, sgr);
        lua_setfield(L, -2, "sgr");
        call(3, 2);
        if (!lua_istable(L, -2)) fail("tail_lines returned no lines");
        lua_Integer count = (lua_Integer)lua_rawlen(L, -2);
        if (count > n) fail("tail_lines: more lines than asked");
        for (lua_Integer i = 1; i <= count; i++) {
            lua_rawgeti(L, -2, i);
            size_t l;
            const char *line = lua_tolstring(L, -1, &l);
            if (!line || l > max + 3 + 40) fail("tail_lines: a line longer than its cut");
            if (memchr(line, '\n', l) || (!sgr && memchr(line, '\033', l))) fail("tail_lines: a break or an escape left");
            lua_pop(L, 1);
        }
        lua_settop(L, top);
    }
    lua_getglobal(L, "scan");
    lua_getfield(L, -1, "strip");
    lua_pushlstring(L, data, len);
    call(1, 1);
    size_t stripped_len;
    const char *stripped = lua_tolstring(L, -1, &stripped_len);
    if (!stripped || stripped_len > len || memchr(stripped, '\033', stripped_len)) fail("strip: an ESC left");
    lua_settop(L, top);
    return 0;
}
