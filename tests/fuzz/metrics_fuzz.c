/* libFuzzer target: metric extraction (src/metrics.c) on arbitrary logs — keys found by name,
 * lines handed to a Lua callback, values read as numbers — built with tiny chunk and line sizes
 * (Makefile FUZZ_SIZES), so that small inputs cross every read boundary and every cut line.
 *
 * Input: 1 parameter byte (the key's length, 1–8, taken from the start of the rest), the key,
 * then the log. The key is looked for by name and as a needle; metrics.number reads the whole
 * input too. Checked: no sanitizer report or Lua error; each metric's counts fit the log's
 * lines (and cut pieces); min ≤ every aggregate ≤ max; at most 200 series points. Anything else is a crash. */
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

static lua_State *L;
static int log_fd = -1;
static char log_path[64];

static void fail(const char *what) {
    fprintf(stderr, "metrics_fuzz: %s\n", what);
    abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    L = luaL_newstate();
    log_fd = memfd_create("metrics_fuzz_log", MFD_CLOEXEC);
    if (!L || log_fd < 0) abort();
    luaL_openlibs(L);
    luaL_requiref(L, "metrics", luaopen_jobrun_metrics, 1);
    lua_pop(L, 1);
    snprintf(log_path, sizeof log_path, "/proc/self/fd/%d", log_fd);
    /* run(path, key, text, lines): the scan and the invariants, in Lua; an error is a crash. */
    const char *run =
        "local metrics = require 'metrics'\n"
        "local function check(s, lines)\n"
        "  assert(s.n >= 0 and s.n_skipped >= 0 and s.n + s.n_skipped <= lines, 'counts')\n"
        "  if s.n == 0 then return end\n"
        "  local lo, hi = s.min, s.max\n"
        "  for _, k in ipairs({ 'first', 'last', 'mean', 'tail_mean', 'median', 'p95' }) do\n"
        "    local v = s[k]\n"
        "    if v ~= nil then\n"
        "      local slack = 1e-9 * math.max(math.abs(lo), math.abs(hi))\n"
        "      assert(v >= lo - slack and v <= hi + slack, k)\n"
        "    end\n"
        "  end\n"
        "  assert(#s.series >= 1 and #s.series <= 200, 'series')\n"
        "end\n"
        "function run(path, key, text, lines)\n"
        "  local by_key, by_line = metrics.acc(0.25, true), metrics.acc(0.1)\n"
        "  assert(metrics.scan(path, { { key = key, acc = by_key }, { needle = key } },\n"
        "    function(_, line) by_line:push(line) end))\n"
        "  check(by_key:stats(), lines)\n"
        "  check(by_line:stats(), lines)\n"
        "  metrics.number(text)\n"
        "end\n";
    if (luaL_dostring(L, run) != LUA_OK) fail(lua_tostring(L, -1));
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 2) return 0;
    size_t klen = (size_t)(data[0] % 8) + 1;
    if (size < 1 + klen) return 0;
    const char *key = (const char *)data + 1;
    const char *log = key + klen;
    size_t log_len = size - 1 - klen;
    if (memchr(key, '\0', klen)) return 0;
    if (ftruncate(log_fd, 0) != 0 || pwrite(log_fd, log, log_len, 0) != (ssize_t)log_len) fail("write");
    /* Lines, counting the pieces that lines longer than MAX_LINE are cut into. */
    size_t lines = 1 + log_len / 16;
    for (size_t i = 0; i < log_len; i++) lines += log[i] == '\n' || log[i] == '\r';

    lua_settop(L, 0);
    lua_getglobal(L, "run");
    lua_pushstring(L, log_path);
    lua_pushlstring(L, key, klen);
    lua_pushlstring(L, log, log_len);
    lua_pushinteger(L, (lua_Integer)lines);
    if (lua_pcall(L, 4, 0, 0) != LUA_OK) fail(lua_tostring(L, -1));
    return 0;
}
