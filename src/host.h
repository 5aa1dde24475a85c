/* The embedding: one Lua state with jobrun's C primitives and Lua library. */
#ifndef JOBRUN_HOST_H
#define JOBRUN_HOST_H

#include <lua.h>
#include <stddef.h>
#include <sys/types.h>

/* Exit codes of SPEC §2 that the host itself produces. */
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
int luaopen_jobrun_sqlite(lua_State *L);

#endif
