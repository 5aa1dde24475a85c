/* guard: user Lua (suite files, parser fns) run under a count hook, so that no user code can
 * keep jobrun from answering a signal or run past its CPU budget (README "Using it", "Suite files").
 *
 *   guard.call(budget, fn, ...) -> true, results... | false, err
 *
 * budget: seconds of CPU time (nil: no budget). Every HOOK_COUNT instructions the hook looks
 * at the signals that are blocked and pending (jobrun blocks INT, TERM and HUP into a
 * signalfd while it waits) and at the thread's CPU clock. A pending signal raises the table
 * { signal = "TERM" } (so callers can tell it from the code's own errors); a spent budget
 * raises "CPU budget of Ns exceeded". Once tripped, the hook raises again at every count, so
 * user code that catches the error with pcall cannot keep running.
 *
 *   guard.hold(on) -> the previous setting: while on, a pending signal is not raised (the
 *   budget still is): jobrun's own code, called by a script, is not cut off halfway (a job
 *   submitted but not recorded); the signal is raised once the script's code runs again. */
#include <signal.h>
#include <string.h>
#include <time.h>

#include <lauxlib.h>
#include <lua.h>

#include "host.h"

#define HOOK_COUNT 10000

typedef struct Limit {
    double deadline;     /* thread CPU seconds; < 0: none */
    double budget;
    const char *tripped; /* NULL, or the signal name / "budget" once raised */
} Limit;

static Limit *current;   /* the innermost guard.call in progress (one Lua state per process) */
static int held;         /* guard.hold: signals wait */

static double cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static const char *pending_signal(void) {
    sigset_t set;
    if (sigpending(&set) != 0) return NULL;
    if (sigismember(&set, SIGTERM)) return "TERM";
    if (sigismember(&set, SIGHUP)) return "HUP";
    if (sigismember(&set, SIGINT)) return "INT";
    return NULL;
}

static void raise_limit(lua_State *L, Limit *lim) {
    if (strcmp(lim->tripped, "budget") == 0) {
        luaL_error(L, "CPU budget of %fs exceeded", lim->budget);
    }
    lua_createtable(L, 0, 1);
    lua_pushstring(L, lim->tripped);
    lua_setfield(L, -2, "signal");
    lua_error(L);
}

static void hook(lua_State *L, lua_Debug *ar) {
    (void)ar;
    Limit *lim = current;
    if (!lim) return;
    if (!lim->tripped) {
        const char *sig = held ? NULL : pending_signal();
        if (sig) lim->tripped = sig;
        else if (lim->deadline >= 0 && cpu_now() > lim->deadline) lim->tripped = "budget";
    }
    if (lim->tripped) {
        /* From now on at every instruction: an error caught by the code's own pcall is raised
         * again at the first instruction after it, up to the guard's own pcall. */
        lua_sethook(L, hook, LUA_MASKCOUNT, 1);
        raise_limit(L, lim);
    }
}

static int guard_call(lua_State *L) {
    Limit lim = { -1, 0, NULL };
    if (!lua_isnoneornil(L, 1)) {
        lim.budget = luaL_checknumber(L, 1);
        luaL_argcheck(L, lim.budget > 0, 1, "budget must be positive");
        lim.deadline = cpu_now() + lim.budget;
    }
    luaL_checktype(L, 2, LUA_TFUNCTION);
    Limit *outer = current;
    lua_Hook old_hook = lua_gethook(L);
    int old_mask = lua_gethookmask(L), old_count = lua_gethookcount(L);
    /* A nested guard keeps the tighter of the two deadlines. */
    if (outer && outer->deadline >= 0 && (lim.deadline < 0 || outer->deadline < lim.deadline)) {
        lim.deadline = outer->deadline;
        lim.budget = outer->budget;
    }
    current = &lim;
    lua_sethook(L, hook, LUA_MASKCOUNT, HOOK_COUNT);
    int n = lua_gettop(L) - 2;
    int status = lua_pcall(L, n, LUA_MULTRET, 0);
    current = outer;
    lua_sethook(L, old_hook, old_mask, old_count);
    if (outer && lim.tripped && !outer->tripped && strcmp(lim.tripped, "budget") != 0) {
        outer->tripped = lim.tripped; /* a signal concerns every level */
    }
    if (status != LUA_OK) {
        lua_pushboolean(L, 0);
        lua_insert(L, -2);
        return 2;
    }
    /* The function and its arguments were replaced by its results, from index 2 on. */
    lua_pushboolean(L, 1);
    lua_replace(L, 1); /* the budget's slot -> true */
    return lua_gettop(L);
}

/* pending() -> name of a blocked signal that is waiting ("TERM", "HUP", "INT") or nil. */
static int guard_pending(lua_State *L) {
    const char *sig = pending_signal();
    if (sig) lua_pushstring(L, sig); else lua_pushnil(L);
    return 1;
}

static int guard_hold(lua_State *L) {
    int was = held;
    held = lua_toboolean(L, 1);
    lua_pushboolean(L, was);
    return 1;
}

static const luaL_Reg guard_functions[] = {
    {"call", guard_call},
    {"hold", guard_hold},
    {"pending", guard_pending},
    {NULL, NULL},
};

int luaopen_jobrun_guard(lua_State *L) {
    luaL_newlib(L, guard_functions);
    return 1;
}
