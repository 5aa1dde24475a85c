/* Metrics (README "Metrics"): number series read from a job's log in one streaming pass, and
 * their aggregates kept in bounded memory. Which metrics, and what a match means beyond the
 * formats below, is decided in Lua (lua/jobrun/judge/metrics.lua).
 *
 *   metrics.acc([tail_fraction [, keep_all]]) -> an accumulator: acc:push(v) takes a number, or
 *     a string read as a metric value ("5,123", "40.1%", "1e-3"; anything else is counted as
 *     skipped); acc:skip() counts one skipped value; acc:stats() -> { n, n_skipped, first, last,
 *     min, max, mean, tail_mean, median, p95, series, series_step } (median and p95 only with
 *     keep_all: they need every point, the rest do not).
 *   metrics.scan(path, specs [, on_line]) -> { size } | nil, err: one pass over the whole log.
 *     specs[i] = { key = NAME, acc = acc }: NAME found as a whole key followed by `=` or `:`
 *     (bare, or quoted as in Python dicts and JSON), the number after it pushed, one point
 *     per line; or { needle = TEXT }: on_line(i, line) is called for each line holding TEXT.
 *     Lines end at '\n' or '\r' (every progress-bar redraw is a line); ANSI colour codes are stepped over.
 *   metrics.number(s) -> the value a string holds, or nil. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include <lauxlib.h>
#include <lua.h>

#include "host.h"

/* Reads small enough that a chunk stays in the L2 cache while every key is searched in it. */
#ifndef CHUNK
#define CHUNK (256u << 10)
#endif
#ifndef MAX_LINE
#define MAX_LINE 65536u
#endif
#define MAX_SPECS 64
#define SERIES 200 /* points kept for charts */
#define ACC_META "jobrun.judge.metrics.acc"
#define BLOCK 8192u /* points per block of the tail (a power of two) */

/* ---- values ---- */

static int is_digit(char c) { return c >= '0' && c <= '9'; }

static const double POW10[] = { 1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
                                1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22 };

/* slow_value(s, len): strtod over the number's text without its thousands separators. */
static double slow_value(const char *s, size_t len) {
    char local[64];
    char *copy = len < sizeof local ? local : malloc(len + 1);
    if (!copy) return NAN;
    size_t n = 0;
    for (size_t i = 0; i < len; i++) if (s[i] != ',') copy[n++] = s[i];
    copy[n] = '\0';
    double v = strtod(copy, NULL);
    if (copy != local) free(copy);
    return v;
}

/* parse_value(s, len, out) -> 1: a number (in *out); 0: a token that is not a number (nan,
 * None, "inf", a word); -1: nothing there. Accepts a sign, digits with thousands separators
 * ("5,123,456": groups of exactly three), a fraction, an exponent, a trailing '%' or unit. */
static inline int parse_value(const char *s, size_t len, double *out) {
    const char *p = s, *end = s + len;
    if (p < end && (*p == '"' || *p == '\'')) p++; /* "2.5" in JSON, '2.5' in a dict */
    if (p >= end || *p == '\n' || *p == '\r' || *p == ',' || *p == '}' || *p == ']') return -1;
    int neg = 0;
    if (*p == '-' || *p == '+') { neg = *p == '-'; p++; }
    const char *num = p;
    unsigned long long mant = 0;
    int sig = 0, exp10 = 0, lossy = 0;
#define DIGIT(c)                                                               \
    do {                                                                       \
        if (sig < 19) { mant = mant * 10 + (unsigned)((c) - '0'); sig += mant != 0; } \
        else { lossy = 1; exp10++; }                                           \
    } while (0)
    while (p < end && is_digit(*p)) { DIGIT(*p); p++; }
    int any = p > num;
    /* Thousands separators: only after 1–3 leading digits, each group exactly three digits. */
    if (p - num >= 1 && p - num <= 3) {
        while (p + 3 < end && p[0] == ',' && is_digit(p[1]) && is_digit(p[2]) && is_digit(p[3])
               && (p + 4 >= end || !is_digit(p[4]))) {
            DIGIT(p[1]); DIGIT(p[2]); DIGIT(p[3]);
            p += 4;
        }
    }
#undef DIGIT
    if (p < end && *p == '.') {
        const char *f = ++p;
        while (p < end && is_digit(*p)) {
            if (sig < 19) { mant = mant * 10 + (unsigned)(*p - '0'); sig += mant != 0; exp10--; }
            else lossy = 1;
            p++;
        }
        any |= p > f;
    }
    if (!any) return 0;
    int e = 0;
    if (p < end && (*p == 'e' || *p == 'E')) {
        const char *q = p + 1;
        int eneg = 0;
        if (q < end && (*q == '-' || *q == '+')) { eneg = *q == '-'; q++; }
        if (q < end && is_digit(*q)) {
            while (q < end && is_digit(*q)) { if (e < 100000) e = e * 10 + (*q - '0'); q++; }
            if (eneg) e = -e;
            p = q;
        }
    }
    int total = exp10 + e;
    double v;
    /* Clinger's fast path: exact when the digits fit in 2^53 and the power of ten is exact. */
    if (!lossy && mant < (1ull << 53) && total >= -22 && total <= 22) {
        v = total < 0 ? (double)mant / POW10[-total] : (double)mant * POW10[total];
    } else {
        v = slow_value(num, (size_t)(p - num));
    }
    *out = neg ? -v : v;
    return isfinite(*out) ? 1 : 0;
}

/* ---- accumulators ---- */

typedef struct {
    lua_Integer n, skipped;
    double first, last, min, max, sum;
    double frac;         /* tail_mean's fraction */
    double **blocks;     /* the last ceil(frac * n) points, all tail_mean needs, in blocks of */
    size_t nblocks, cap_blocks, head, len; /* BLOCK: blocks[0][head] is the oldest */
    int keep_all;
    double *all;         /* every point, for median and p95 */
    size_t all_len, all_cap;
    double bsum[2 * SERIES]; /* the series: buckets of `width` points, halved when full */
    lua_Integer bcount[2 * SERIES];
    int nb;
    lua_Integer width;
    size_t want;         /* ceil(frac * n): the tail's size */
    lua_Integer next_n;  /* the count at which want is worked out again */
} Acc;

static int acc_new(lua_State *L) {
    double frac = luaL_optnumber(L, 1, 0.25);
    luaL_argcheck(L, frac > 0 && frac <= 1, 1, "tail fraction must be in (0, 1]");
    int keep_all = lua_toboolean(L, 2);
    Acc *a = lua_newuserdatauv(L, sizeof *a, 0);
    memset(a, 0, sizeof *a);
    a->frac = frac;
    a->keep_all = keep_all;
    a->width = 1;
    luaL_setmetatable(L, ACC_META);
    return 1;
}

static Acc *check_acc(lua_State *L, int i) { return luaL_checkudata(L, i, ACC_META); }

static int acc_gc(lua_State *L) {
    Acc *a = check_acc(L, 1);
    for (size_t k = 0; k < a->nblocks; k++) free(a->blocks[k]);
    free(a->blocks);
    free(a->all);
    a->blocks = NULL;
    a->all = NULL;
    a->nblocks = a->cap_blocks = a->head = a->len = a->all_cap = a->all_len = 0;
    return 0;
}

/* tail_size(frac, n): ceil(frac * n), at least 1, without a libm call (this runs per point). */
static size_t tail_size(double frac, lua_Integer n) {
    double x = frac * (double)n;
    size_t w = (size_t)x;
    if ((double)w < x - 1e-9) w++;
    return w < 1 ? 1 : w;
}

/* push: -1 when memory ran out (the point is then not counted). */
static inline int push(Acc *a, double v) {
    lua_Integer n = a->n + 1;
    if (n >= a->next_n) { /* the tail grows by one point every 1/frac points: say when next */
        a->want = tail_size(a->frac, n);
        lua_Integer next = (lua_Integer)((double)a->want / a->frac);
        while (next > n && tail_size(a->frac, next) > a->want) next--;
        while (tail_size(a->frac, next + 1) == a->want) next++;
        a->next_n = next + 1;
    }
    size_t want = a->want;
    size_t at = a->head + a->len;
    if (at == a->nblocks * BLOCK) { /* a new block; points are never copied */
        if (a->nblocks == a->cap_blocks) {
            size_t cap = a->cap_blocks ? a->cap_blocks * 2 : 8;
            double **blocks = realloc(a->blocks, cap * sizeof *blocks);
            if (!blocks) return -1;
            a->blocks = blocks;
            a->cap_blocks = cap;
        }
        if (!(a->blocks[a->nblocks] = malloc(BLOCK * sizeof **a->blocks))) return -1;
        a->nblocks++;
    }
    if (a->keep_all) {
        if (a->all_len == a->all_cap) {
            size_t cap = a->all_cap ? a->all_cap * 2 : 256;
            double *all = realloc(a->all, cap * sizeof *all);
            if (!all) return -1;
            a->all = all;
            a->all_cap = cap;
        }
        a->all[a->all_len++] = v;
    }
    a->blocks[at / BLOCK][at % BLOCK] = v;
    a->len++;
    /* The tail's start only moves forward as n grows: what falls out is never needed again. */
    while (a->len > want) {
        a->len--;
        if (++a->head == BLOCK) { /* the oldest block is spent */
            free(a->blocks[0]);
            memmove(a->blocks, a->blocks + 1, (a->nblocks - 1) * sizeof *a->blocks);
            a->nblocks--;
            a->head = 0;
        }
    }
    if (a->n == 0) a->first = a->min = a->max = v;
    if (v < a->min) a->min = v;
    if (v > a->max) a->max = v;
    a->last = v;
    a->sum += v;
    a->n = n;
    if (a->nb > 0 && a->bcount[a->nb - 1] < a->width) {
        a->bsum[a->nb - 1] += v;
        a->bcount[a->nb - 1]++;
    } else {
        if (a->nb == 2 * SERIES) { /* full: pairs merge, each bucket twice as wide */
            for (int k = 0; k < SERIES; k++) {
                a->bsum[k] = a->bsum[2 * k] + a->bsum[2 * k + 1];
                a->bcount[k] = a->bcount[2 * k] + a->bcount[2 * k + 1];
            }
            a->nb = SERIES;
            a->width *= 2;
        }
        a->bsum[a->nb] = v;
        a->bcount[a->nb] = 1;
        a->nb++;
    }
    return 0;
}

static int acc_push(lua_State *L) {
    Acc *a = check_acc(L, 1);
    double v;
    int ok;
    if (lua_type(L, 2) == LUA_TNUMBER) {
        v = lua_tonumber(L, 2);
        ok = isfinite(v);
    } else if (lua_type(L, 2) == LUA_TSTRING) {
        size_t len;
        const char *s = lua_tolstring(L, 2, &len);
        while (len > 0 && (*s == ' ' || *s == '\t')) { s++; len--; }
        ok = parse_value(s, len, &v) == 1;
    } else {
        ok = 0;
    }
    if (!ok) { a->skipped++; lua_pushboolean(L, 0); return 1; }
    if (push(a, v) != 0) return luaL_error(L, "metrics: out of memory");
    lua_pushboolean(L, 1);
    return 1;
}

static int acc_skip(lua_State *L) {
    check_acc(L, 1)->skipped++;
    return 0;
}

static int cmp_double(const void *x, const void *y) {
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

static void set_number(lua_State *L, const char *key, double v) {
    lua_Integer i;
    if (lua_numbertointeger(v, &i) && (double)i == v && fabs(v) < 9e15) lua_pushinteger(L, i);
    else lua_pushnumber(L, v);
    lua_setfield(L, -2, key);
}

static int acc_stats(lua_State *L) {
    Acc *a = check_acc(L, 1);
    lua_createtable(L, 0, 14);
    lua_pushinteger(L, a->n);
    lua_setfield(L, -2, "n");
    lua_pushinteger(L, a->skipped);
    lua_setfield(L, -2, "n_skipped");
    if (a->n == 0) return 1;
    set_number(L, "first", a->first);
    set_number(L, "last", a->last);
    set_number(L, "min", a->min);
    set_number(L, "max", a->max);
    set_number(L, "mean", a->sum / (double)a->n);
    double tail = 0;
    for (size_t k = a->head; k < a->head + a->len; k++) tail += a->blocks[k / BLOCK][k % BLOCK];
    set_number(L, "tail_mean", tail / (double)a->len);
    lua_pushinteger(L, (lua_Integer)a->len);
    lua_setfield(L, -2, "tail_n");
    if (a->keep_all && a->all_len > 0) {
        qsort(a->all, a->all_len, sizeof *a->all, cmp_double);
        size_t n = a->all_len;
        double median = n % 2 ? a->all[n / 2] : (a->all[n / 2 - 1] + a->all[n / 2]) / 2;
        size_t rank = (size_t)ceil(0.95 * (double)n - 1e-9); /* nearest rank */
        set_number(L, "median", median);
        set_number(L, "p95", a->all[(rank < 1 ? 1 : rank) - 1]);
    }
    /* The series: bucket means, pairs merged once more when there are more than SERIES. */
    int merge = a->nb > SERIES;
    int out = merge ? (a->nb + 1) / 2 : a->nb;
    lua_createtable(L, out, 0);
    for (int k = 0; k < out; k++) {
        double s = a->bsum[merge ? 2 * k : k];
        lua_Integer c = a->bcount[merge ? 2 * k : k];
        if (merge && 2 * k + 1 < a->nb) { s += a->bsum[2 * k + 1]; c += a->bcount[2 * k + 1]; }
        double v = s / (double)c;
        lua_Integer i;
        if (lua_numbertointeger(v, &i) && (double)i == v && fabs(v) < 9e15) lua_pushinteger(L, i);
        else lua_pushnumber(L, v);
        lua_rawseti(L, -2, k + 1);
    }
    lua_setfield(L, -2, "series");
    lua_pushinteger(L, merge ? a->width * 2 : a->width);
    lua_setfield(L, -2, "series_step");
    return 1;
}

static int metrics_number(lua_State *L) {
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    while (len > 0 && (*s == ' ' || *s == '\t')) { s++; len--; }
    double v;
    if (parse_value(s, len, &v) == 1) lua_pushnumber(L, v);
    else lua_pushnil(L);
    return 1;
}

/* ---- the scan ---- */

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
/* find_avx2: find's loop, 32 positions at a time, on CPUs that have AVX2. */
__attribute__((target("avx2"))) static const char *find_avx2(const char *h, size_t n, const char *k, size_t m) {
    const __m256i first = _mm256_set1_epi8(k[0]), last = _mm256_set1_epi8(k[m - 1]);
    size_t i = 0;
    for (; i + m - 1 + 32 <= n; i += 32) {
        __m256i a = _mm256_loadu_si256((const __m256i *)(const void *)(h + i));
        __m256i b = _mm256_loadu_si256((const __m256i *)(const void *)(h + i + m - 1));
        unsigned mask = (unsigned)_mm256_movemask_epi8(_mm256_and_si256(_mm256_cmpeq_epi8(a, first),
                                                                         _mm256_cmpeq_epi8(b, last)));
        while (mask) {
            const char *c = h + i + __builtin_ctz(mask);
            size_t j = 1;
            while (j < m - 1 && c[j] == k[j]) j++;
            if (j >= m - 1) return c;
            mask &= mask - 1;
        }
    }
    for (; i + m <= n; i++) {
        if (h[i] == k[0] && memcmp(h + i + 1, k + 1, m - 1) == 0) return h + i;
    }
    return NULL;
}
static int have_avx2 = -1;
#endif

/* find(h, n, k, m): the first occurrence of k in h. With SSE2, 16 positions at a time are
 * tested for the key's first and last bytes; only those candidates are compared whole. */
static const char *find(const char *h, size_t n, const char *k, size_t m) {
    if (n < m) return NULL;
    if (m == 1) return memchr(h, k[0], n);
#if defined(__x86_64__) && defined(__GNUC__)
    if (have_avx2 < 0) have_avx2 = __builtin_cpu_supports("avx2");
    if (have_avx2) return find_avx2(h, n, k, m);
#endif
#ifdef __SSE2__
    const __m128i first = _mm_set1_epi8(k[0]), last = _mm_set1_epi8(k[m - 1]);
    size_t i = 0;
    for (; i + m - 1 + 16 <= n; i += 16) {
        __m128i a = _mm_loadu_si128((const __m128i *)(const void *)(h + i));
        __m128i b = _mm_loadu_si128((const __m128i *)(const void *)(h + i + m - 1));
        unsigned mask = (unsigned)_mm_movemask_epi8(_mm_and_si128(_mm_cmpeq_epi8(a, first), _mm_cmpeq_epi8(b, last)));
        while (mask) {
            int bit = __builtin_ctz(mask);
            const char *c = h + i + bit;
            size_t j = 1;
            while (j < m - 1 && c[j] == k[j]) j++; /* keys are short: no memcmp call */
            if (j >= m - 1) return c;
            mask &= mask - 1;
        }
    }
    for (; i + m <= n; i++) {
        if (h[i] == k[0] && memcmp(h + i + 1, k + 1, m - 1) == 0) return h + i;
    }
    return NULL;
#else
    return memmem(h, n, k, m);
#endif
}

/* The end of the line holding p: the next '\n' or '\r' (when the text has any), or end. */
static const char *line_end(const char *p, const char *end, int has_cr) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    if (!nl) nl = end;
    const char *cr = has_cr ? memchr(p, '\r', (size_t)(nl - p)) : NULL;
    return cr ? cr : nl;
}

static const char *line_start(const char *lo, const char *p) {
    while (p > lo && p[-1] != '\n' && p[-1] != '\r') p--;
    return p;
}

/* Key characters: a name only matches where none of these touches it (`loss` is not in
 * `train_loss` or `loss_scale`; `sps` is not in `overview/sps`). */
static int key_char(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '/'
        || c == '.' || c == '-';
}

typedef struct {
    const char *key;  /* a named metric, or */
    const char *needle; /* lines for Lua */
    size_t len;
    Acc *acc;
} Spec;

/* skip_ansi(q, end): past any ANSI CSI sequences ("ESC [ … final") that start at q. Colour
 * codes are stepped over where they touch a key or its value, not removed from the text. */
static const char *skip_ansi(const char *q, const char *end) {
    while (q + 1 < end && q[0] == '\033' && q[1] == '[') {
        q += 2;
        while (q < end && (unsigned char)*q >= 0x20 && (unsigned char)*q <= 0x3f) q++;
        if (q < end) q++; /* the final byte */
    }
    return q;
}

/* after_ansi(lo, p): whether a CSI sequence ends right before p ("\033[32mloss"). */
static int after_ansi(const char *lo, const char *p) {
    const char *c = p - 1;
    if (c < lo || (unsigned char)*c < 0x40 || (unsigned char)*c > 0x7e) return 0;
    c--;
    for (int k = 0; k < 16 && c >= lo && (unsigned char)*c >= 0x20 && (unsigned char)*c <= 0x3f; k++) c--;
    return c > lo && *c == '[' && c[-1] == '\033';
}

static const char *skip_blank(const char *q, const char *end) {
    for (;;) {
        while (q < end && (*q == ' ' || *q == '\t')) q++;
        if (q < end && *q == '\033') { const char *r = skip_ansi(q, end); if (r != q) { q = r; continue; } }
        return q;
    }
}

/* value_at(p, q, end): after a key that ends at q (p: its first byte), where its value starts,
 * or NULL when this is not a key followed by `=` or `:`. */
static const char *value_at(const char *lo, const char *p, const char *q, const char *end) {
    unsigned char before = p > lo ? (unsigned char)p[-1] : '\n';
    if (before == '"' || before == '\'') {
        if (q >= end || *q != (char)before) return NULL;
        q++;
    } else if ((key_char(before) && !after_ansi(lo, p)) || (q < end && key_char((unsigned char)*q))) {
        return NULL;
    }
    q = skip_blank(q, end);
    if (q >= end || (*q != '=' && *q != ':')) return NULL;
    return skip_blank(q + 1, end);
}

static int scan_keys(Spec *s, const char *buf, size_t len, int has_cr) {
    const char *end = buf + len, *p = buf;
    while (p < end && (p = find(p, (size_t)(end - p), s->key, s->len)) != NULL) {
        const char *v = value_at(buf, p, p + s->len, end);
        if (!v) { p++; continue; }
        double x;
        int r = parse_value(v, (size_t)(end - v), &x);
        if (r < 0) { p++; continue; }
        if (r == 0) s->acc->skipped++;
        else if (push(s->acc, x) != 0) return -1;
        p = line_end(v, end, has_cr); /* one point per line */
    }
    return 0;
}

/* Lines holding the needle go to Lua: on_line(index, line), protected, so that an error there
 * still lets the caller free its buffer. */
static int scan_needle(lua_State *L, int index, Spec *s, const char *buf, size_t len, int has_cr) {
    const char *end = buf + len, *p = buf;
    while (p < end && (p = find(p, (size_t)(end - p), s->needle, s->len)) != NULL) {
        const char *a = line_start(buf, p), *b = line_end(p, end, has_cr);
        lua_pushvalue(L, 3);
        lua_pushinteger(L, index);
        size_t len_line = (size_t)(b - a);
        if (memchr(a, '\033', len_line)) {
            char *copy = lua_newuserdatauv(L, len_line ? len_line : 1, 0);
            memcpy(copy, a, len_line);
            lua_pushlstring(L, copy, jobrun_strip_escapes(copy, len_line, 0));
            lua_remove(L, -2);
        } else {
            lua_pushlstring(L, a, len_line);
        }
        if (lua_pcall(L, 2, 0, 0) != LUA_OK) return -2;
        p = b > p ? b : p + 1; /* a needle that starts with a line break is on no line */
    }
    return 0;
}

static int metrics_scan(lua_State *L) {
    const char *path = luaL_checkstring(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    int count = (int)luaL_len(L, 2);
    luaL_argcheck(L, count <= MAX_SPECS, 2, "too many metrics");
    Spec specs[MAX_SPECS];
    int needles = 0;
    for (int k = 0; k < count; k++) {
        lua_rawgeti(L, 2, k + 1);
        luaL_checktype(L, -1, LUA_TTABLE);
        memset(&specs[k], 0, sizeof specs[k]);
        if (lua_getfield(L, -1, "key") == LUA_TSTRING) {
            specs[k].key = lua_tolstring(L, -1, &specs[k].len); /* kept alive by arg 2 */
            lua_getfield(L, -2, "acc");
            specs[k].acc = check_acc(L, -1);
            lua_pop(L, 1);
        } else if (lua_getfield(L, -2, "needle") == LUA_TSTRING) {
            specs[k].needle = lua_tolstring(L, -1, &specs[k].len);
            needles++;
            lua_pop(L, 1);
        } else {
            return luaL_argerror(L, 2, "each spec needs a key or a needle");
        }
        luaL_argcheck(L, specs[k].len > 0, 2, "empty key");
        lua_pop(L, 2);
    }
    if (needles > 0) luaL_checktype(L, 3, LUA_TFUNCTION);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return luaL_fileresult(L, 0, path);
    struct stat st;
    if (fstat(fd, &st) != 0) { int e = errno; close(fd); errno = e; return luaL_fileresult(L, 0, path); }
    char *buf = malloc(CHUNK + MAX_LINE);
    if (!buf) { close(fd); errno = ENOMEM; return luaL_fileresult(L, 0, path); }
    size_t carry = 0;
    off_t pos = 0;
    int rc = 0, err = 0;
    for (;;) {
        ssize_t n = pread(fd, buf + carry, CHUNK, pos);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) { rc = -3; err = errno; break; }
        pos += n;
        int eof = n == 0;
        size_t len = carry + (size_t)n;
        if (len == 0) break;
        /* Whole lines; the unfinished last one waits for the next read unless it is already
         * longer than any line kept (then it is cut here) or the file has ended. */
        size_t whole = len;
        if (!eof) {
            while (whole > 0 && buf[whole - 1] != '\n' && buf[whole - 1] != '\r') whole--;
            if (len - whole > MAX_LINE) whole = len;
        }
        size_t carry_len = len - whole;
        size_t searched = whole;
        int has_cr = memchr(buf, '\r', searched) != NULL;
        for (int k = 0; k < count && rc == 0; k++) {
            rc = specs[k].key ? scan_keys(&specs[k], buf, searched, has_cr)
                              : scan_needle(L, k + 1, &specs[k], buf, searched, has_cr);
        }
        if (rc != 0) break;
        memmove(buf, buf + whole, carry_len);
        carry = carry_len;
        if (eof) break;
    }
    free(buf);
    close(fd);
    if (rc == -2) return lua_error(L); /* the callback's error, on the stack */
    if (rc == -1) return luaL_error(L, "metrics: out of memory");
    if (rc == -3) { errno = err; return luaL_fileresult(L, 0, path); }
    lua_createtable(L, 0, 1);
    lua_pushinteger(L, (lua_Integer)pos);
    lua_setfield(L, -2, "size");
    return 1;
}

static const luaL_Reg acc_methods[] = {
    {"push", acc_push},
    {"skip", acc_skip},
    {"stats", acc_stats},
    {NULL, NULL},
};

static const luaL_Reg metrics_functions[] = {
    {"acc", acc_new},
    {"scan", metrics_scan},
    {"number", metrics_number},
    {NULL, NULL},
};

static int acc_tostring(lua_State *L) {
    Acc *a = check_acc(L, 1);
    lua_pushfstring(L, "metric accumulator (%d points)", (int)a->n);
    return 1;
}

static const luaL_Reg acc_meta[] = {
    {"__gc", acc_gc}, {"__close", acc_gc}, {"__tostring", acc_tostring}, {"__index", NULL}, {NULL, NULL},
};

int luaopen_jobrun_metrics(lua_State *L) {
    jobrun_class(L, ACC_META, acc_meta, acc_methods);
    luaL_newlib(L, metrics_functions);
    return 1;
}
