/* Log scanning: one streaming pass over a log (or its tail) that finds the lines containing
 * given needles, at memchr speed, with ANSI colour codes and carriage returns taken out of
 * what is matched and returned. Which line wins, and what its text means, is decided in Lua.
 *
 *   scan.find(path, needles [, tail_bytes]) -> hits, info | nil, err
 *     needles: list of plain strings. hits[i] = { first = {lines…}, last = {lines…}, count = N }
 *     for needle i: up to KEEP of the first and of the last lines containing it (in log order).
 *     tail_bytes: scan only the last tail_bytes of the file (from the next line start).
 *     info = { size = file size, start = offset scanned from }
 *   scan.tail(path, max_bytes) -> text: the last max_bytes, cut to whole lines, ANSI stripped.
 *   scan.last_lines(path, n [, max_line_bytes]) -> text, info: `tail -n`, read backwards from
 *     the end in bounded blocks and a bounded window, over-long lines cut with a marker, a
 *     lone "\r" a line break (see scan_last_lines).
 *   scan.tail_lines(path, n [, opts]) -> lines, info: the last n lines as a terminal shows them,
 *     for the reports (see scan_tail_lines).
 *   scan.strip(s [, keep_sgr]) -> s without terminal escape sequences.
 *   scan.line_index(text, sep) -> { [head] = at }: where each line holding sep starts, by its
 *     head (see scan_line_index). */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>

#include "host.h"

/* Sizes may be set on the command line: the fuzz targets (tests/fuzz/) make them tiny, so that
 * small inputs cross every chunk and block boundary. */
#ifndef CHUNK
#define CHUNK (4u << 20)
#endif
#define KEEP 8
#define MAX_NEEDLES 64
#ifndef MAX_LINE
#define MAX_LINE 65536
#endif

typedef struct {
    char *text;
    size_t len;
} Line;

typedef struct {
    const char *text;
    size_t len;
    long count;
    Line first[KEEP]; /* the first KEEP lines containing it */
    Line last[KEEP];  /* a ring of the last KEEP */
    int n_first, n_last, last_next;
} Needle;

static void free_needles(Needle *needles, int count) {
    for (int k = 0; k < count; k++) {
        for (int i = 0; i < KEEP; i++) {
            free(needles[k].first[i].text);
            free(needles[k].last[i].text);
        }
    }
}

/* The one escape stripper (scan.find, scan.tail, scan.tail_lines, scan.strip): removes terminal
 * escape sequences in place and returns the new length.
 *   CSI  ESC [ parameters intermediates final   (an SGR, ESC [ digits;… m, kept if keep_sgr)
 *   OSC  ESC ] … ended by BEL or ESC \; DCS, SOS, PM and APC (ESC P, X, ^, _) the same way
 *   nF   ESC intermediates… final                (ESC ( B)
 *   the two-byte forms ESC 0x30-0x7E              (ESC 7, ESC =, ESC c …)
 * A sequence the text ends in the middle of goes to the end; a lone ESC goes. */
size_t jobrun_strip_escapes(char *buf, size_t len, int keep_sgr) {
    size_t out = 0, i = 0;
    while (i < len) {
        if (buf[i] != '\033') { buf[out++] = buf[i++]; continue; }
        unsigned char k = i + 1 < len ? (unsigned char)buf[i + 1] : 0;
        size_t j = i + 2;
        if (k == '[') {
            int sgr = 1;
            while (j < len && (unsigned char)buf[j] >= 0x30 && (unsigned char)buf[j] <= 0x3f) {
                if (buf[j] != ';' && (buf[j] < '0' || buf[j] > '9')) sgr = 0;
                j++;
            }
            while (j < len && (unsigned char)buf[j] >= 0x20 && (unsigned char)buf[j] <= 0x2f) { sgr = 0; j++; }
            if (j < len && (unsigned char)buf[j] >= 0x40 && (unsigned char)buf[j] <= 0x7e) {
                if (keep_sgr && sgr && buf[j] == 'm') {
                    j++;
                    memmove(buf + out, buf + i, j - i);
                    out += j - i;
                    i = j;
                    continue;
                }
                j++;
            } /* else malformed: ESC [ and its parameters go, the byte that broke it stays */
        } else if (k == ']' || k == 'P' || k == 'X' || k == '^' || k == '_') {
            while (j < len && buf[j] != '\007' && buf[j] != '\033') j++;
            if (j < len && buf[j] == '\007') j++;
            else if (j + 1 < len && buf[j + 1] == '\\') j += 2; /* ST; another ESC starts anew */
        } else if (k >= 0x20 && k <= 0x2f) {
            while (j < len && (unsigned char)buf[j] >= 0x20 && (unsigned char)buf[j] <= 0x2f) j++;
            if (j < len && (unsigned char)buf[j] >= 0x30 && (unsigned char)buf[j] <= 0x7e) j++;
        } else if (!(k >= 0x30 && k <= 0x7e)) {
            j = i + 1; /* ESC before a control, a non-ASCII byte or the end: the ESC alone goes */
        }
        i = j < len ? j : len;
    }
    return out;
}

/* Copies are made in C, not as Lua strings: a needle may hit on every line of a big log. */
static int copy_line(Line *slot, const char *line, size_t len) {
    char *copy = malloc(len ? len : 1);
    if (!copy) return -1;
    memcpy(copy, line, len);
    free(slot->text);
    slot->text = copy;
    slot->len = len;
    return 0;
}

static int remember(Needle *n, const char *line, size_t len) {
    if (len > MAX_LINE) len = MAX_LINE;
    n->count++;
    if (n->n_first < KEEP && copy_line(&n->first[n->n_first++], line, len) != 0) return -1;
    if (copy_line(&n->last[n->last_next], line, len) != 0) return -1;
    n->last_next = (n->last_next + 1) % KEEP;
    if (n->n_last < KEEP) n->n_last++;
    return 0;
}

/* Lines end at '\n' or '\r' (a carriage return redraws the line, as a terminal shows it). */
static const char *line_start(const char *buf, const char *at) {
    while (at > buf && at[-1] != '\n' && at[-1] != '\r') at--;
    return at;
}

static const char *line_end(const char *at, const char *end) {
    while (at < end && *at != '\n' && *at != '\r') at++;
    return at;
}

/* Searches buf[0, len) — whole lines only — for every needle. Needles with the same first
 * byte share one memchr pass. */
static int search(Needle *needles, int count, const char *buf, size_t len) {
    const char *end = buf + len;
    unsigned char done[256] = {0};
    for (int k = 0; k < count; k++) {
        unsigned char c = (unsigned char)needles[k].text[0];
        if (done[c]) continue;
        done[c] = 1;
        const char *last_line_hit[MAX_NEEDLES] = {0};
        const char *p = buf;
        while ((p = memchr(p, c, (size_t)(end - p))) != NULL) {
            for (int m = k; m < count; m++) {
                Needle *n = &needles[m];
                if ((unsigned char)n->text[0] != c || (size_t)(end - p) < n->len) continue;
                if (memcmp(p, n->text, n->len) != 0) continue;
                const char *s = line_start(buf, p);
                if (last_line_hit[m] == s) continue; /* one hit per line */
                last_line_hit[m] = s;
                const char *e = line_end(p, end);
                if (remember(n, s, (size_t)(e - s)) != 0) return -1;
            }
            p++;
        }
    }
    return 0;
}

static void push_lines(lua_State *L, const Line *lines, int n, int oldest) {
    lua_createtable(L, n, 0);
    for (int i = 0; i < n; i++) {
        const Line *line = &lines[(oldest + i) % KEEP];
        lua_pushlstring(L, line->text, line->len);
        lua_rawseti(L, -2, i + 1);
    }
}

static void push_hits(lua_State *L, Needle *needles, int count) {
    lua_createtable(L, count, 0);
    for (int k = 0; k < count; k++) {
        Needle *n = &needles[k];
        lua_createtable(L, 0, 3);
        push_lines(L, n->first, n->n_first, 0);
        lua_setfield(L, -2, "first");
        push_lines(L, n->last, n->n_last, n->n_last == KEEP ? n->last_next : 0);
        lua_setfield(L, -2, "last");
        lua_pushinteger(L, n->count);
        lua_setfield(L, -2, "count");
        lua_rawseti(L, -2, k + 1);
    }
}

/* A region that starts right after a line break starts a line; otherwise its first, partial
 * line is not whole and is skipped. */
static int starts_mid_line(int fd, off_t start) {
    char before;
    return start > 0 && !(pread(fd, &before, 1, start - 1) == 1 && (before == '\n' || before == '\r'));
}

/* open_region(L, path, tail, &fd, &size, &start) -> 0, or the count of the failure's results
 * pushed (nil, message): the file opened, and the region [start, size) of its last tail bytes
 * (all of it when tail < 0). */
static int open_region(lua_State *L, const char *path, lua_Integer tail, int *fd, off_t *size, off_t *start) {
    *fd = open(path, O_RDONLY | O_CLOEXEC);
    if (*fd < 0) return luaL_fileresult(L, 0, path);
    struct stat st;
    if (fstat(*fd, &st) != 0) { int e = errno; close(*fd); errno = e; return luaL_fileresult(L, 0, path); }
    *size = st.st_size;
    *start = (tail >= 0 && *size > tail) ? *size - (off_t)tail : 0;
    return 0;
}

/* each_block(fd, start, size, block, fn, ctx) -> 0, -1 when out of memory, or fn's non-zero:
 * reads [start, size) in blocks of about `block` bytes, each cut after its last line break (the
 * rest carried into the next, so that no line is split; a line longer than MAX_LINE is cut), a
 * partial first line skipped, escape sequences stripped, and gives each to fn with the file
 * offset of its first byte (offsets after a stripped sequence are only in order). */
typedef int (*BlockFn)(void *ctx, const char *data, size_t len, long long at);
static int each_block(int fd, off_t start, off_t size, size_t block, BlockFn fn, void *ctx) {
    char *buf = malloc(block + MAX_LINE);
    if (!buf) return -1;
    size_t carry = 0;
    off_t pos = start, data_at = start; /* data_at: the file offset of buf[0] */
    int failed = 0, first_chunk = starts_mid_line(fd, start);
    while (pos < size && !failed) {
        ssize_t n = pread(fd, buf + carry, block, pos);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        pos += n;
        size_t len = carry + (size_t)n;
        char *data = buf;
        if (first_chunk) {
            char *nl = memchr(data, '\n', len);
            size_t skip = nl ? (size_t)(nl - data) + 1 : len;
            data += skip;
            len -= skip;
            data_at += (off_t)skip;
            first_chunk = 0;
        }
        /* Whole lines now; the unfinished last line waits for the next block (or EOF), unless
         * it is already longer than any line we keep: then it is cut here. */
        size_t whole = len;
        if (pos < size) {
            while (whole > 0 && data[whole - 1] != '\n') whole--;
            if (len - whole > MAX_LINE) whole = len;
        }
        size_t carry_len = len - whole;
        size_t searched = memchr(data, '\033', whole) ? jobrun_strip_escapes(data, whole, 0) : whole;
        failed = fn(ctx, data, searched, (long long)data_at);
        data_at += (off_t)whole;
        memmove(buf, data + whole, carry_len);
        carry = carry_len;
    }
    free(buf);
    return failed;
}

typedef struct { Needle *needles; int count; } FindCtx;
static int find_block(void *ctx, const char *data, size_t len, long long at) {
    (void)at;
    FindCtx *f = ctx;
    return search(f->needles, f->count, data, len);
}

/* find(path, needles [, tail]): reads the region in blocks of whole lines (each_block). */
static int scan_find(lua_State *L) {
    const char *path = luaL_checkstring(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_Integer tail = luaL_optinteger(L, 3, -1);
    int count = (int)luaL_len(L, 2);
    luaL_argcheck(L, count <= MAX_NEEDLES, 2, "too many needles");
    Needle needles[MAX_NEEDLES];
    memset(needles, 0, sizeof needles);
    for (int k = 0; k < count; k++) {
        lua_rawgeti(L, 2, k + 1);
        needles[k].text = luaL_checklstring(L, -1, &needles[k].len); /* kept alive by arg 2 */
        luaL_argcheck(L, needles[k].len > 0, 2, "empty needle");
        lua_pop(L, 1);
    }
    int fd;
    off_t size, start;
    int pushed = open_region(L, path, tail, &fd, &size, &start);
    if (pushed) return pushed;
    FindCtx f = { needles, count };
    int failed = each_block(fd, start, size, CHUNK, find_block, &f);
    close(fd);
    if (failed) {
        free_needles(needles, count);
        return luaL_error(L, "scan: out of memory");
    }
    push_hits(L, needles, count);
    free_needles(needles, count);
    lua_createtable(L, 0, 2);
    lua_pushinteger(L, (lua_Integer)size);
    lua_setfield(L, -2, "size");
    lua_pushinteger(L, (lua_Integer)start);
    lua_setfield(L, -2, "start");
    return 2;
}

/* tail(path, max_bytes) -> the end of the log as whole lines, ANSI stripped. */
static int scan_tail(lua_State *L) {
    luaL_Buffer b;
    JobrunTail t;
    int failed = jobrun_read_tail(L, &b, &t);
    if (failed) return failed;
    char *p = t.p;
    size_t got = t.got, skip = 0;
    int fd = t.fd;
    off_t start = t.start;
    if (starts_mid_line(fd, start)) {
        char *nl = memchr(p, '\n', got);
        skip = nl ? (size_t)(nl - p) + 1 : got;
    }
    close(fd);
    memmove(p, p + skip, got - skip);
    size_t len = jobrun_strip_escapes(p, got - skip, 0);
    luaL_pushresultsize(&b, len);
    return 1;
}

/* ---- last_lines: the last n lines, read backwards from the end in bounded blocks. ---- */

#ifndef BACK_BLOCK
#define BACK_BLOCK 65536u
#endif
#ifndef BACK_BLOCK_MAX
#define BACK_BLOCK_MAX (1u << 20)
#endif

#ifndef BACK_WINDOW
#define BACK_WINDOW (16u << 20)
#endif

/* Line breaks, for display: "\n", and a "\r" that no "\n" follows (a progress bar such as
 * tqdm's redraws its line with "\r" alone and may write no "\n" at all); "\r\n" is one. */
static int is_break(char c, int next) { return c == '\n' || (c == '\r' && next != '\n'); }

/* The offset where the last n lines of [0, size) begin: the byte after the n-th line break
 * counted backwards (a break that ends the file ends its last line, it starts none), or 0.
 * Reads only what lies between that offset and the end, backwards, in blocks that grow from
 * 64 KiB to 1 MiB (a long line costs few reads), and at most `window` bytes: past that, the
 * offset where the window begins, with *cut set (a log with no line break at all, such as a
 * 2 GB sparse file, costs the window, not the file). Returns -1 with errno on a read error. */
static off_t tail_start(int fd, off_t size, lua_Integer n, char *buf, off_t window, int *cut) {
    off_t pos = size;
    off_t floor = size > window ? size - window : 0;
    size_t block = BACK_BLOCK;
    int next = -1;  /* the byte after the one looked at; -1: the end of the file */
    int first = 1;
    *cut = 0;
    while (pos > floor) {
        size_t want = (off_t)block < pos - floor ? block : (size_t)(pos - floor);
        off_t at = pos - (off_t)want;
        if (jobrun_pread_all(fd, buf, want, at) != want) {
            if (errno == 0) errno = EIO; /* the file shrank under us */
            return -1;
        }
        size_t len = want;
        if (first) { /* the break that ends the file ("\n", "\r\n" or "\r") */
            if (buf[len - 1] == '\n') {
                len--;
                next = '\n';
                if (len > 0 && buf[len - 1] == '\r') { len--; next = '\r'; }
            } else if (buf[len - 1] == '\r') {
                len--;
                next = '\r';
            }
        }
        first = 0;
        while (len > 0) {
            char c = buf[--len];
            if (is_break(c, next) && --n == 0) return at + (off_t)len + 1;
            next = (unsigned char)c;
        }
        pos = at;
        if (block < BACK_BLOCK_MAX) block *= 2;
    }
    if (floor > 0) *cut = 1;
    return floor;
}

/* "98,304": a byte count as people read it. */
static void add_count(luaL_Buffer *b, unsigned long long v) {
    char digits[32], out[48];
    int n = snprintf(digits, sizeof digits, "%llu", v), o = 0;
    for (int i = 0; i < n; i++) {
        if (i > 0 && (n - i) % 3 == 0) out[o++] = ',';
        out[o++] = digits[i];
    }
    luaL_addlstring(b, out, (size_t)o);
}

static int utf8_continuation(char c) { return ((unsigned char)c & 0xC0) == 0x80; }

static void add_cut(luaL_Buffer *b, unsigned long long cut) {
    luaL_addstring(b, "\xe2\x80\xa6 [cut: ");
    add_count(b, cut);
    luaL_addstring(b, " more bytes]");
}

/* Emits [start, size) line by line: each line's first max bytes, and for a longer one a marker
 * saying how much was left out, the cut never inside a UTF-8 sequence (the first byte left out
 * is not a continuation byte); line breaks as in the file, but that a lone "\r" is shown as
 * "\n" (is_break). Reads forward in blocks; memory stays one block. */
static int emit_lines(int fd, off_t start, off_t size, size_t max, char *buf, luaL_Buffer *b) {
    size_t shown = 0;            /* bytes of the current line in b */
    unsigned long long cut = 0;  /* bytes of the current line left out; once > 0, the rest too */
    off_t pos = start;
    while (pos < size) {
        size_t want = size - pos < (off_t)BACK_BLOCK ? (size_t)(size - pos) : BACK_BLOCK;
        size_t got = jobrun_pread_all(fd, buf, want, pos);
        if (got == 0) { if (errno == 0) errno = EIO; return -1; }
        pos += (off_t)got;
        const char *p = buf, *end = buf + got;
        const char *nl = NULL, *cr = NULL;  /* the next "\n" and "\r" from p, once looked for */
        while (p < end) {
            if (!nl || nl < p) nl = memchr(p, '\n', (size_t)(end - p));
            if (!nl) nl = end;
            if (!cr || cr < p) cr = memchr(p, '\r', (size_t)(end - p));
            if (!cr) cr = end;
            /* A "\r" right before the "\n" is part of that break. */
            const char *brk = cr < nl && !(nl < end && cr + 1 == nl) ? cr : nl;
            int lone_cr = brk == cr && brk < end;
            if (lone_cr && brk + 1 == end && pos < size) {
                char peek; /* the block ends on "\r": is a "\n" next? */
                if (jobrun_pread_all(fd, &peek, 1, pos) == 1 && peek == '\n') { brk = end; lone_cr = 0; }
            }
            size_t len = (size_t)(brk - p);
            size_t take = cut > 0 ? 0 : (len < max - shown ? len : max - shown);
            if (take < len && cut == 0) { /* the line is cut here */
                while (take > 0 && utf8_continuation(p[take])) take--;
                if (take == 0 && utf8_continuation(p[0])) {
                    /* The sequence began in an earlier block: take its first bytes back. */
                    size_t back = 0;
                    while (back < shown && utf8_continuation(luaL_buffaddr(b)[luaL_bufflen(b) - 1 - back++])) {}
                    luaL_buffsub(b, back);
                    shown -= back;
                    cut += back;
                }
            }
            luaL_addlstring(b, p, take);
            shown += take;
            cut += len - take;
            if (brk == end) break;
            if (cut > 0) add_cut(b, cut);
            luaL_addchar(b, '\n');
            shown = 0;
            cut = 0;
            p = brk + 1;
        }
    }
    if (cut > 0) add_cut(b, cut); /* a last line without its break */
    return 0;
}

/* last_lines(path, n [, max_line_bytes = 4096]) -> text, {size, start} | nil, err, errno.
 * The last n lines of the file as `tail -n` prints them, except that a line longer than
 * max_line_bytes shows its first max_line_bytes and "… [cut: N more bytes]". Cost: the bytes
 * of those n lines, whatever the file's size; memory: what is returned, plus one block. */
static int scan_last_lines(lua_State *L) {
    const char *path = luaL_checkstring(L, 1);
    lua_Integer n = luaL_checkinteger(L, 2);
    lua_Integer max = luaL_optinteger(L, 3, 4096);
    luaL_argcheck(L, n >= 0, 2, "negative line count");
    luaL_argcheck(L, max >= 1 && max <= (1 << 30), 3, "line size out of range");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return luaL_fileresult(L, 0, path);
    struct stat st;
    off_t start = 0;
    int rc = fstat(fd, &st);
    off_t size = rc == 0 ? st.st_size : 0;
    /* A userdata, not malloc: collected even if a Lua error (out of memory) cuts this short. */
    char *buf = rc == 0 && n > 0 && size > 0 ? (char *)lua_newuserdatauv(L, BACK_BLOCK_MAX, 0) : NULL;
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    errno = 0;
    int cut = 0;
    if (buf) {
        /* The window: 16 MiB, or what n lines of max bytes take if that is more. */
        off_t window = (off_t)BACK_WINDOW;
        if (n <= (lua_Integer)(((off_t)1 << 40) / max) && (off_t)(n * max) > window) window = (off_t)(n * max);
        start = tail_start(fd, size, n, buf, window, &cut);
        if (start >= 0 && cut) { /* said first, in the text: what comes next begins mid-line */
            luaL_addstring(&b, "\xe2\x80\xa6 [cut: ");
            add_count(&b, (unsigned long long)start);
            luaL_addstring(&b, " earlier bytes not read: too few line breaks in the last ");
            add_count(&b, (unsigned long long)(size - start));
            luaL_addstring(&b, "]\n");
        }
        rc = start < 0 ? -1 : emit_lines(fd, start, size, (size_t)max, buf, &b);
    }
    int err = errno;
    close(fd);
    if (rc != 0) { errno = err; return luaL_fileresult(L, 0, path); }
    luaL_pushresult(&b);
    lua_createtable(L, 0, 3);
    lua_pushinteger(L, (lua_Integer)size);
    lua_setfield(L, -2, "size");
    lua_pushinteger(L, (lua_Integer)(start < 0 ? 0 : start));
    lua_setfield(L, -2, "start");
    if (cut) { /* only when the window was reached */
        lua_pushboolean(L, 1);
        lua_setfield(L, -2, "cut");
    }
    return 2;
}

/* ---- tail_lines: a job's last lines as the reports show them (lua/jobrun/report/facts.lua). ---- */

#ifndef TAIL_WINDOW_MAX
#define TAIL_WINDOW_MAX (64u << 20)
#endif

typedef struct {
    size_t at, len; /* the displayed text, in the window buffer */
    int partial;    /* began before the window: its start was not read */
} Span;

/* The line as a terminal leaves it, in place: what follows its last carriage return (those
 * ending it aside: "50%\r100%\r" shows "100%"), escape sequences stripped. Returns the length;
 * *from is where the text now starts within the line. */
static size_t display_line(char *line, size_t len, int keep_sgr, size_t *from) {
    while (len > 0 && line[len - 1] == '\r') len--;
    const char *cr = memrchr(line, '\r', len);
    *from = cr ? (size_t)(cr - line) + 1 : 0;
    char *text = line + *from;
    len -= *from;
    return memchr(text, '\033', len) ? jobrun_strip_escapes(text, len, keep_sgr) : len;
}

/* Only white space and (kept) SGR sequences. */
static int blank_line(const char *s, size_t len) {
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '\033') { while (i < len && s[i] != 'm') i++; continue; }
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\v' && s[i] != '\f') return 0;
    }
    return 1;
}

static int opt_field(lua_State *L, int t, const char *k, lua_Integer def, lua_Integer lo, lua_Integer hi) {
    if (lua_isnoneornil(L, t)) return (int)def;
    lua_getfield(L, t, k);
    lua_Integer v = lua_isnil(L, -1) ? def : lua_isboolean(L, -1) ? lua_toboolean(L, -1) : luaL_checkinteger(L, -1);
    lua_pop(L, 1);
    if (v < lo || v > hi) return luaL_error(L, "tail_lines: %s out of range", k);
    return (int)v;
}

/* tail_lines(path, n [, {width, window, blank, sgr}]) -> lines, {size, start, cut} | nil, err.
 * The last n lines of the log as a terminal shows them: a line is what follows its last \r,
 * without escape sequences (SGR colours kept when sgr), blank lines left out (unless blank:
 * then only those ending the log), each cut after width bytes (on a UTF-8 boundary) with
 * "… [cut: N more bytes]". Read backwards from the end in growing blocks, never more than
 * window bytes (default 1 MiB): a log whose last line is longer shows that line's end, marked
 * "…" and cut = true. Refuses what is not a regular file (a FIFO, /dev/zero). */
static int scan_tail_lines(lua_State *L) {
    const char *path = luaL_checkstring(L, 1);
    lua_Integer n = luaL_checkinteger(L, 2);
    luaL_argcheck(L, n >= 0 && n <= 1000000, 2, "line count out of range");
    if (!lua_isnoneornil(L, 3)) luaL_checktype(L, 3, LUA_TTABLE);
    size_t width = (size_t)opt_field(L, 3, "width", 4096, 1, 1 << 30);
    size_t window = (size_t)opt_field(L, 3, "window", 1 << 20, 1, TAIL_WINDOW_MAX);
    int keep_blank = opt_field(L, 3, "blank", 0, 0, 1);
    int keep_sgr = opt_field(L, 3, "sgr", 0, 0, 1);
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) return luaL_fileresult(L, 0, path);
    struct stat st;
    if (fstat(fd, &st) != 0) { int e = errno; close(fd); errno = e; return luaL_fileresult(L, 0, path); }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        lua_pushnil(L);
        lua_pushfstring(L, "%s: not a regular file", path);
        return 2;
    }
    off_t size = st.st_size;
    size_t win = n == 0 ? 0 : (off_t)window < size ? window : (size_t)size;
    off_t base = size - (off_t)win; /* the file offset of buf[0] */
    /* Userdata, not malloc: collected even if a Lua error cuts this short. */
    char *buf = (char *)lua_newuserdatauv(L, win ? win : 1, 0);
    Span *spans = (Span *)lua_newuserdatauv(L, sizeof(Span) * (size_t)(n ? n : 1), 0);
    lua_Integer count = 0;
    size_t have = 0, block = BACK_BLOCK;
    size_t line_end = win, clean_from = win; /* no '\n' in [clean_from, line_end) */
    int done = win == 0, cut = 0;
    if (!done) {
        /* the break that ends the file ends its last line; it starts none */
        char last;
        if (pread(fd, &last, 1, size - 1) == 1 && last == '\n') line_end = clean_from = win - 1;
    }
    while (!done) {
        size_t want = block < win - have ? block : win - have;
        size_t lo = win - have - want;
        errno = 0;
        if (jobrun_pread_all(fd, buf + lo, want, base + (off_t)lo) != want) {
            int e = errno ? errno : EIO; /* the file shrank under us */
            close(fd);
            errno = e;
            return luaL_fileresult(L, 0, path);
        }
        have += want;
        if (block < BACK_BLOCK_MAX) block *= 2;
        int all_read = have == win;
        for (;;) {
            const char *nl = clean_from > lo ? memrchr(buf + lo, '\n', clean_from - lo) : NULL;
            size_t start;
            int partial = 0;
            if (nl) start = (size_t)(nl - buf) + 1;
            else if (all_read) { start = lo; partial = base > 0; }
            else { clean_from = lo; break; } /* the line goes on before what was read */
            size_t from, len = display_line(buf + start, line_end - start, keep_sgr, &from);
            int blank = blank_line(buf + start + from, len);
            if (!blank || (keep_blank && count > 0)) {
                spans[count].at = start + from;
                spans[count].len = len;
                spans[count].partial = partial;
                count++;
                cut |= partial;
            }
            if (count == n || !nl) { done = 1; break; }
            line_end = clean_from = start - 1;
        }
    }
    close(fd);
    lua_createtable(L, (int)count, 0);
    int t = lua_gettop(L);
    for (lua_Integer k = count - 1, i = 1; k >= 0; k--, i++) {
        const char *p = buf + spans[k].at;
        size_t len = spans[k].len, take = len <= width ? len : width;
        if (take < len) while (take > 0 && utf8_continuation(p[take])) take--;
        luaL_Buffer b;
        luaL_buffinit(L, &b);
        if (spans[k].partial) luaL_addstring(&b, "\xe2\x80\xa6");
        luaL_addlstring(&b, p, take);
        if (take < len) add_cut(&b, len - take);
        luaL_pushresult(&b);
        lua_rawseti(L, t, i);
    }
    lua_createtable(L, 0, 3);
    lua_pushinteger(L, (lua_Integer)size);
    lua_setfield(L, -2, "size");
    lua_pushinteger(L, (lua_Integer)(count > 0 ? base + (off_t)spans[count - 1].at : size));
    lua_setfield(L, -2, "start");
    lua_pushboolean(L, cut);
    lua_setfield(L, -2, "cut");
    return 2;
}

/* strip(s [, keep_sgr]) -> s without terminal escape sequences (the stripper above). */
static int scan_strip(lua_State *L) {
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    if (!memchr(s, '\033', len)) { lua_settop(L, 1); return 1; }
    int keep_sgr = lua_toboolean(L, 2);
    luaL_Buffer b;
    char *p = luaL_buffinitsize(L, &b, len);
    memcpy(p, s, len);
    luaL_pushresultsize(&b, jobrun_strip_escapes(p, len, keep_sgr));
    return 1;
}

/* ---- ranks: per needle, the first line of each rank that contains it (the culprit's scan). ----
 *
 *   scan.ranks(path, needles [, tail_bytes]) -> hits, info | nil, err
 *     hits[i] = { count = N, lines = { {text, at}, … } }: for needle i, the first line containing
 *     it for each distinct rank prefix (up to RANK_KEYS of them), and the first KEEP lines with no
 *     prefix, each with its byte offset `at`, in log order. What a prefix means (rank, node,
 *     time) is read in Lua (lua/jobrun/judge/forensics.lua); here it only tells lines apart.
 *
 * A whole multi-GB log is read, so each needle is looked for by its rarest byte in the text at
 * hand (counted on a sample of each block), one memchr pass per distinct byte over blocks small
 * enough to stay in the CPU's cache: the common letters that start most needles ('o', 'e', 't')
 * would stop memchr every few bytes. */

#ifndef RANK_BLOCK
#define RANK_BLOCK (256u << 10)
#endif
#define RANK_SAMPLE 16384
#define RANK_KEYS 4096 /* per needle; more ranks than this share the "unranked" lines' fate */

typedef struct {
    long long key; /* 0: empty slot */
} RankSlot;

typedef struct {
    const char *text;
    size_t len;
    long count;
    size_t rare; /* offset in text of the byte memchr looks for */
    RankSlot *slots; /* open addressing, RANK_KEYS * 2 slots, made at the first ranked hit */
    int n_keys;
    int n_unranked;
    const char *last_line; /* one hit per line */
} RankNeedle;

typedef struct {
    char *text;
    size_t len;
    long long at;
    int needle;
} RankHit;

typedef struct {
    RankHit *items;
    size_t n, cap;
} RankHits;

static int digits(const char **p, const char *end, long *out, int max) {
    long v = 0;
    int n = 0;
    while (*p < end && **p >= '0' && **p <= '9' && n < max) { v = v * 10 + (**p - '0'); (*p)++; n++; }
    if (n == 0 || (*p < end && **p >= '0' && **p <= '9')) return 0;
    *out = v;
    return 1;
}

static int starts(const char *p, const char *end, const char *lit) {
    size_t n = strlen(lit);
    return (size_t)(end - p) >= n && memcmp(p, lit, n) == 0;
}

static int host_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_';
}

/* The rank prefixes at a line's start, as one key: 0 when the line has none, or when two of
 * its prefixes disagree (an interleaved or garbled line). Grammar (forensics.lua reads the same):
 * `(… rank=N …) `, `[rankN]:`, `[defaultN]:`, srun's `  N: ` (first only), and NCCL's
 * `host:pid:tid [N] NCCL` (last). */
static long long rank_key(const char *s, size_t len) {
    const char *p = s, *end = s + len;
    long outer = -1, inner = -1, dev = -1, v;
    int k = 0;
    while (p < end && *p == ' ' && p - s < 8) p++;
    for (; k < 4 && p < end; k++) {
        const char *q = p;
        if (*p == '(') {
            const char *close = memchr(p, ')', (size_t)(end - p) < 96 ? (size_t)(end - p) : 96);
            if (!close) break;
            const char *r = NULL;
            for (const char *t = p + 1; t + 5 <= close; t++) {
                if (memcmp(t, "rank=", 5) == 0 && (t == p + 1 || t[-1] == ' ' || t[-1] == ',')) { r = t + 5; break; }
            }
            if (!r || !digits(&r, close, &v, 6) || (r != close && *r != ',')) break;
            if (outer >= 0 && outer != v) return 0;
            outer = v;
            p = close + 1;
            if (p < end && *p == ' ') p++;
        } else if (*p == '[' && (starts(p, end, "[rank") || starts(p, end, "[default"))) {
            q = p + (p[1] == 'r' ? 5 : 8);
            if (!digits(&q, end, &v, 6) || !starts(q, end, "]:")) break;
            if (inner >= 0 && inner != v) return 0;
            inner = v;
            p = q + 2;
            if (p < end && *p == ' ') p++;
        } else if (k == 0 && *p >= '0' && *p <= '9' && digits(&q, end, &v, 5) && starts(q, end, ": ")) {
            outer = v;
            p = q + 2;
        } else {
            /* NCCL's host:pid:tid [dev] NCCL */
            while (q < end && host_char(*q)) q++;
            long pid, tid;
            if (q == p || q >= end || *q != ':') break;
            q++;
            if (!digits(&q, end, &pid, 10) || q >= end || *q != ':') break;
            q++;
            if (!digits(&q, end, &tid, 10) || !starts(q, end, " [")) break;
            q += 2;
            if (!digits(&q, end, &dev, 4) || !starts(q, end, "] NCCL")) { dev = -1; break; }
            break;
        }
    }
    if (outer < 0 && inner < 0 && dev < 0) return 0;
    return ((long long)(outer + 1) << 42) | ((long long)(inner + 1) << 21) | (long long)(dev + 1);
}

/* Whether key is new for the needle (and now remembered); -1 when out of memory. */
static int first_of_rank(RankNeedle *n, long long key) {
    if (!n->slots) {
        n->slots = calloc(2 * RANK_KEYS, sizeof *n->slots);
        if (!n->slots) return -1;
    }
    unsigned long long h = (unsigned long long)key * 0x9E3779B97F4A7C15ull;
    for (size_t i = (size_t)(h >> 40) % (2 * RANK_KEYS);; i = (i + 1) % (2 * RANK_KEYS)) {
        if (n->slots[i].key == key) return 0;
        if (n->slots[i].key == 0) {
            if (n->n_keys >= RANK_KEYS) return 0;
            n->slots[i].key = key;
            n->n_keys++;
            return 1;
        }
    }
}

static int keep_hit(RankHits *hits, int needle, const char *line, size_t len, long long at) {
    if (len > MAX_LINE) len = MAX_LINE;
    if (hits->n == hits->cap) {
        size_t cap = hits->cap ? hits->cap * 2 : 64;
        RankHit *items = realloc(hits->items, cap * sizeof *items);
        if (!items) return -1;
        hits->items = items;
        hits->cap = cap;
    }
    char *copy = malloc(len ? len : 1);
    if (!copy) return -1;
    memcpy(copy, line, len);
    hits->items[hits->n++] = (RankHit){ copy, len, at, needle };
    return 0;
}

/* Each needle's rarest byte in a sample of the block at hand. */
static void choose_rare(RankNeedle *needles, int count, const char *buf, size_t len) {
    size_t freq[256] = {0};
    size_t n = len < RANK_SAMPLE ? len : RANK_SAMPLE;
    for (size_t i = 0; i < n; i++) freq[(unsigned char)buf[i]]++;
    for (int k = 0; k < count; k++) {
        RankNeedle *nd = &needles[k];
        size_t best = 0;
        for (size_t i = 1; i < nd->len; i++) {
            if (freq[(unsigned char)nd->text[i]] < freq[(unsigned char)nd->text[best]]) best = i;
        }
        nd->rare = best;
    }
}

static int rank_search(RankNeedle *needles, int count, const char *buf, size_t len, long long base,
                       RankHits *hits) {
    const char *end = buf + len;
    unsigned char done[256] = {0};
    choose_rare(needles, count, buf, len);
    for (int k = 0; k < count; k++) needles[k].last_line = NULL;
    for (int k = 0; k < count; k++) {
        unsigned char c = (unsigned char)needles[k].text[needles[k].rare];
        if (done[c]) continue;
        done[c] = 1;
        const char *p = buf;
        while ((p = memchr(p, c, (size_t)(end - p))) != NULL) {
            for (int m = k; m < count; m++) {
                RankNeedle *n = &needles[m];
                if ((unsigned char)n->text[n->rare] != c) continue;
                const char *at = p - n->rare;
                if (at < buf || (size_t)(end - at) < n->len || memcmp(at, n->text, n->len) != 0) continue;
                const char *s = line_start(buf, at);
                if (n->last_line == s) continue;
                n->last_line = s;
                n->count++;
                const char *e = line_end(at, end);
                long long key = rank_key(s, (size_t)(e - s));
                int keep;
                if (key == 0) keep = n->n_unranked < KEEP ? (n->n_unranked++, 1) : 0;
                else keep = first_of_rank(n, key);
                if (keep < 0 || (keep && keep_hit(hits, m, s, (size_t)(e - s), base + (s - buf)) != 0)) return -1;
            }
            p++;
        }
    }
    return 0;
}

static int hit_order(const void *a, const void *b) {
    const RankHit *x = a, *y = b;
    return x->at < y->at ? -1 : x->at > y->at ? 1 : x->needle - y->needle;
}

static void free_rank_state(RankNeedle *needles, int count, RankHits *hits) {
    for (int k = 0; k < count; k++) free(needles[k].slots);
    for (size_t i = 0; i < hits->n; i++) free(hits->items[i].text);
    free(hits->items);
}

typedef struct { RankNeedle *needles; int count; RankHits *hits; } RanksCtx;
static int ranks_block(void *ctx, const char *data, size_t len, long long at) {
    RanksCtx *r = ctx;
    return rank_search(r->needles, r->count, data, len, at, r->hits);
}

static int scan_ranks(lua_State *L) {
    const char *path = luaL_checkstring(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_Integer tail = luaL_optinteger(L, 3, -1);
    int count = (int)luaL_len(L, 2);
    luaL_argcheck(L, count <= MAX_NEEDLES, 2, "too many needles");
    RankNeedle needles[MAX_NEEDLES];
    memset(needles, 0, sizeof needles);
    for (int k = 0; k < count; k++) {
        lua_rawgeti(L, 2, k + 1);
        needles[k].text = luaL_checklstring(L, -1, &needles[k].len); /* kept alive by arg 2 */
        luaL_argcheck(L, needles[k].len > 0, 2, "empty needle");
        lua_pop(L, 1);
    }
    int fd;
    off_t size, start;
    int pushed = open_region(L, path, tail, &fd, &size, &start);
    if (pushed) return pushed;
    RankHits hits = {0};
    RanksCtx r = { needles, count, &hits };
    /* Offsets are the file's as long as no colour code was taken out of a block; after one,
     * they stay in order, which is all forensics.lua asks of them. */
    int failed = each_block(fd, start, size, RANK_BLOCK, ranks_block, &r);
    close(fd);
    if (failed) { free_rank_state(needles, count, &hits); return luaL_error(L, "scan: out of memory"); }
    if (hits.n > 1) qsort(hits.items, hits.n, sizeof *hits.items, hit_order);
    /* A Lua error from here (out of memory) would leak the copies: a risk taken for a few
     * hundred short lines at most, where Lua itself has run out. */
    lua_createtable(L, count, 0);
    for (int k = 0; k < count; k++) {
        lua_createtable(L, 0, 2);
        lua_pushinteger(L, needles[k].count);
        lua_setfield(L, -2, "count");
        lua_newtable(L);
        lua_setfield(L, -2, "lines");
        lua_rawseti(L, -2, k + 1);
    }
    for (size_t i = 0; i < hits.n; i++) {
        RankHit *h = &hits.items[i];
        lua_rawgeti(L, -1, h->needle + 1);
        lua_getfield(L, -1, "lines");
        lua_createtable(L, 2, 0);
        lua_pushlstring(L, h->text, h->len);
        lua_rawseti(L, -2, 1);
        lua_pushinteger(L, h->at);
        lua_rawseti(L, -2, 2);
        lua_rawseti(L, -2, (lua_Integer)luaL_len(L, -2) + 1);
        lua_pop(L, 2);
    }
    free_rank_state(needles, count, &hits);
    lua_createtable(L, 0, 2);
    lua_pushinteger(L, (lua_Integer)size);
    lua_setfield(L, -2, "size");
    lua_pushinteger(L, (lua_Integer)start);
    lua_setfield(L, -2, "start");
    return 2;
}

/* line_index(text, sep) -> { [head] = at }: for each line of text holding sep, its head (the
 * line up to sep's first byte, taken in) mapped to where the line starts (1-based), negated
 * when the line holds a backslash (an escape: its reader decodes it whole); a later line with
 * the same head wins. The series file's index: its lines are looked up by their key, and a
 * line is then read where it lies, not copied out (10,000 lines of 800 bytes were 8 MB of
 * strings made to look one up each). */
static int scan_line_index(lua_State *L) {
    size_t len, sep_len;
    const char *text = luaL_checklstring(L, 1, &len);
    const char *sep = luaL_checklstring(L, 2, &sep_len);
    luaL_argcheck(L, sep_len > 0, 2, "empty separator");
    lua_settop(L, 2);
    lua_newtable(L);
    const char *p = text, *end = text + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *stop = nl ? nl : end;
        const char *cut = memmem(p, (size_t)(stop - p), sep, sep_len);
        if (cut) {
            lua_Integer at = (lua_Integer)(p - text) + 1;
            if (memchr(p, '\\', (size_t)(stop - p))) at = -at;
            lua_pushlstring(L, p, (size_t)(cut - p) + 1);
            lua_pushinteger(L, at);
            lua_rawset(L, 3);
        }
        p = stop + 1;
    }
    return 1;
}

static const luaL_Reg scan_functions[] = {
    {"line_index", scan_line_index},
    {"find", scan_find},
    {"tail", scan_tail},
    {"last_lines", scan_last_lines},
    {"tail_lines", scan_tail_lines},
    {"strip", scan_strip},
    {"ranks", scan_ranks},
    {NULL, NULL},
};

int luaopen_jobrun_scan(lua_State *L) {
    luaL_newlib(L, scan_functions);
    return 1;
}
