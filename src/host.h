/* The embedding: one Lua state with jobrun's C primitives and Lua library. */
#ifndef JOBRUN_HOST_H
#define JOBRUN_HOST_H

#include <lauxlib.h>
#include <lua.h>
#include <stddef.h>
#include <sys/types.h>

/* Exit codes (README "Using it") that the host itself produces. */
#define JOBRUN_EXIT_USAGE 2
#define JOBRUN_EXIT_INTERNAL 3

lua_State *jobrun_newstate(void);

/* Runs the function on top of the stack with nargs arguments under a traceback handler.
 * Returns the process exit code: the function's integer result (0 when it returns nothing),
 * 2 (or the error's own code) for a user error, 3 after printing a traceback otherwise. */
int jobrun_call(lua_State *L, int nargs);

/* In a fresh state: require(module).main(args[0], args[1], ...); returns the exit code.
 * The entry of helper processes that skip the CLI (the local backend's supervisors). */
int jobrun_run_module(const char *module, char **args);

/* src/io.c: write all of data (0, or -1 with errno); read up to want bytes at offset `at`
 * (fewer only at end of file or on an error), returning how many were read. */
int jobrun_write_all(int fd, const char *data, size_t len);
size_t jobrun_pread_all(int fd, char *buf, size_t want, off_t at);

/* The start of fs.read_tail and scan.tail (path, max_bytes): opens the file at argument 1 and
 * reads its last max bytes into b (initialised here, not pushed: the caller may change them,
 * then luaL_pushresultsize(b, got)). Returns 0 with t->fd open (the caller closes it), or the
 * count of the results (nil, message, errno) it pushed. */
typedef struct {
    int fd;
    off_t start; /* where the bytes begin */
    char *p;
    size_t got;
} JobrunTail;
int jobrun_read_tail(lua_State *L, luaL_Buffer *b, JobrunTail *t);

/* The metatable `name` of a C handle (a userdata): its metamethods (__gc, __close, __tostring…)
 * and, when methods is not NULL, an __index table of them. Made once per state. */
void jobrun_class(lua_State *L, const char *name, const luaL_Reg *meta, const luaL_Reg *methods);

/* src/scan.c: the one terminal-escape stripper (CSI, OSC, DCS/APC strings, nF and two-byte
 * forms), in place; keep_sgr keeps colour (SGR) sequences. Returns the new length. */
size_t jobrun_strip_escapes(char *buf, size_t len, int keep_sgr);

/* Primitive families, one luaL_Reg table each. */
int luaopen_jobrun_fs(lua_State *L);
int luaopen_jobrun_term(lua_State *L);
int luaopen_jobrun_embed(lua_State *L);
int luaopen_jobrun_process(lua_State *L);
int luaopen_jobrun_scan(lua_State *L);
int luaopen_jobrun_git(lua_State *L);
int luaopen_jobrun_http(lua_State *L);
int luaopen_jobrun_guard(lua_State *L);
int luaopen_jobrun_yaml(lua_State *L);
int luaopen_jobrun_json(lua_State *L);
int luaopen_jobrun_metrics(lua_State *L);
int luaopen_jobrun_serve(lua_State *L);
int luaopen_jobrun_sqlite(lua_State *L);

#endif
