/* Process primitives for the local backend: spawn children and wait on them through pidfds,
 * read their pipes, block signals into a signalfd, and poll all of those at once.
 * Linux only. Thin on purpose: syscalls and I/O here, every decision in Lua.
 *
 * Three handle types, after liolib's files (metatable with __index, __gc, __close, __tostring):
 *   Process   - a pidfd, plus the child's stdout/stderr Streams and its cached wait result;
 *   Stream    - the non-blocking read end of a child's pipe, with a line prefixer;
 *   SignalSet - signals blocked by sigprocmask and delivered through a signalfd.
 * Every fd is O_CLOEXEC so that no child inherits another child's pipes or our pidfds. */
#include <errno.h>
#include <sched.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>

#include "host.h"

#define PROCESS_HANDLE "jobrun.process"
#define STREAM_HANDLE "jobrun.process.stream"
#define SIGNALS_HANDLE "jobrun.process.signals"

#define READ_CHUNK 65536
/* pump_lines returns after this many chunks even if more is readable, so that one chatty
 * child cannot starve the others in the runner's poll loop: poll reports it again. */
#define PUMP_MAX_CHUNKS 16
/* pump_lines emits a line this long even without its newline, so memory stays bounded
 * when a child writes megabytes without one (progress bars, binary data). */
#define MAX_PARTIAL_LINE 65536

/* nil, "what: strerror", errno (luaL_fileresult's shape) for an error saved earlier: whatever
 * ran since (a message built with lua_pushfstring, a cleanup's close) may have changed errno. */
static int errno_result(lua_State *L, int err, const char *what) {
    errno = err;
    return luaL_fileresult(L, 0, what);
}

static void close_fd(int *fd) {
    if (*fd >= 0) close(*fd);
    *fd = -1;
}

/* ---- Signal names: the one table used by kill, killpg, signals and wait. ---- */

static const struct { const char *name; int num; } signal_names[] = {
    {"HUP", SIGHUP},     {"INT", SIGINT},       {"QUIT", SIGQUIT},   {"ILL", SIGILL},
    {"TRAP", SIGTRAP},   {"ABRT", SIGABRT},     {"BUS", SIGBUS},     {"FPE", SIGFPE},
    {"KILL", SIGKILL},   {"USR1", SIGUSR1},     {"SEGV", SIGSEGV},   {"USR2", SIGUSR2},
    {"PIPE", SIGPIPE},   {"ALRM", SIGALRM},     {"TERM", SIGTERM},   {"CHLD", SIGCHLD},
    {"CONT", SIGCONT},   {"STOP", SIGSTOP},     {"TSTP", SIGTSTP},   {"TTIN", SIGTTIN},
    {"TTOU", SIGTTOU},   {"URG", SIGURG},       {"XCPU", SIGXCPU},   {"XFSZ", SIGXFSZ},
    {"VTALRM", SIGVTALRM}, {"PROF", SIGPROF},   {"WINCH", SIGWINCH}, {"IO", SIGIO},
    {"PWR", SIGPWR},     {"SYS", SIGSYS},
};
#define N_SIGNAL_NAMES (sizeof signal_names / sizeof signal_names[0])

/* "TERM" for SIGTERM; a signal without a name (real-time ones) as its number, "34". */
static void push_signal_name(lua_State *L, int sig) {
    for (size_t i = 0; i < N_SIGNAL_NAMES; i++) {
        if (signal_names[i].num == sig) { lua_pushstring(L, signal_names[i].name); return; }
    }
    lua_pushfstring(L, "%d", sig);
}

/* A signal argument: a name ("TERM", "SIGTERM" also accepted) or a number 0..NSIG-1. */
static int check_signal(lua_State *L, int arg) {
    if (lua_type(L, arg) == LUA_TNUMBER) {
        lua_Integer sig = luaL_checkinteger(L, arg);
        luaL_argcheck(L, sig >= 0 && sig < NSIG, arg, "signal number out of range");
        return (int)sig;
    }
    const char *name = luaL_checkstring(L, arg);
    if (strncmp(name, "SIG", 3) == 0) name += 3;
    for (size_t i = 0; i < N_SIGNAL_NAMES; i++) {
        if (strcmp(signal_names[i].name, name) == 0) return signal_names[i].num;
    }
    return luaL_argerror(L, arg, lua_pushfstring(L, "unknown signal '%s'", name));
}

/* ---- Stream: the read end of a child's stdout or stderr pipe. ---- */

typedef struct {
    int fd;     /* non-blocking pipe read end; -1 once closed */
    int out_fd; /* pump_lines' output file, opened on first use; -1 when none */
    int eof;    /* the writer side has gone and everything was read */
} Stream;

enum { STREAM_UV_OUT_PATH = 1, STREAM_UV_PARTIAL = 2, STREAM_N_UV = 2 };

static Stream *new_stream(lua_State *L) {
    Stream *s = (Stream *)lua_newuserdatauv(L, sizeof *s, STREAM_N_UV);
    s->fd = s->out_fd = -1;
    s->eof = 0;
    luaL_setmetatable(L, STREAM_HANDLE);
    return s;
}

static Stream *check_stream(lua_State *L) {
    Stream *s = (Stream *)luaL_checkudata(L, 1, STREAM_HANDLE);
    if (s->fd < 0) luaL_error(L, "attempt to use a closed stream");
    return s;
}

static int stream_fd(lua_State *L) {
    lua_pushinteger(L, check_stream(L)->fd);
    return 1;
}

/* read() -> what is available now (up to 64 KiB), "" if nothing yet, nil at EOF. */
static int stream_read(lua_State *L) {
    Stream *s = check_stream(L);
    if (s->eof) { lua_pushnil(L); return 1; }
    luaL_Buffer b;
    char *p = luaL_buffinitsize(L, &b, READ_CHUNK);
    ssize_t n;
    do n = read(s->fd, p, READ_CHUNK); while (n < 0 && errno == EINTR);
    if (n < 0 && errno != EAGAIN) return luaL_fileresult(L, 0, "read");
    if (n == 0) { s->eof = 1; lua_pushnil(L); return 1; }
    luaL_pushresultsize(&b, n < 0 ? 0 : (size_t)n);
    return 1;
}

/* Opens pump_lines' output once and keeps it; a different path reopens. Returns -1 on error. */
static int stream_output(lua_State *L, Stream *s, int path_arg) {
    lua_getiuservalue(L, 1, STREAM_UV_OUT_PATH);
    int same = s->out_fd >= 0 && lua_rawequal(L, -1, path_arg);
    lua_pop(L, 1);
    if (same) return 0;
    close_fd(&s->out_fd);
    s->out_fd = open(lua_tostring(L, path_arg), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (s->out_fd < 0) return -1;
    lua_pushvalue(L, path_arg);
    lua_setiuservalue(L, 1, STREAM_UV_OUT_PATH);
    return 0;
}

/* Adds every complete line of data to b, each preceded by the prefix; the first one also
 * by the line buffered from earlier chunks (at stack index `partial`, or nil). Returns how
 * many bytes of data were consumed: the rest is an incomplete line. */
static size_t add_lines(luaL_Buffer *b, int partial, const char *data, size_t len,
                        const char *prefix, size_t prefix_len) {
    lua_State *L = b->L;
    size_t start = 0;
    const char *nl;
    while (start < len && (nl = memchr(data + start, '\n', len - start)) != NULL) {
        size_t end = (size_t)(nl - data) + 1;
        luaL_addlstring(b, prefix, prefix_len);
        if (start == 0 && !lua_isnil(L, partial)) {
            lua_pushvalue(L, partial);
            luaL_addvalue(b);
        }
        luaL_addlstring(b, data + start, end - start);
        start = end;
    }
    return start;
}

/* Prefixes one chunk's complete lines and writes them with ONE write: with O_APPEND, lines
 * of ranks sharing one log file then never tear into each other. The incomplete tail is
 * held (user value) for the next chunk. Returns -1 with errno on a write error. */
static int pump_chunk(lua_State *L, Stream *s, const char *data, size_t len,
                      const char *prefix, size_t prefix_len) {
    lua_getiuservalue(L, 1, STREAM_UV_PARTIAL);
    int partial = lua_gettop(L);
    size_t held = lua_isnil(L, partial) ? 0 : lua_rawlen(L, partial);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    size_t used = add_lines(&b, partial, data, len, prefix, prefix_len);
    if (used > 0) held = 0; /* a newline completed the held line */
    size_t tail = held + (len - used);
    if (tail >= MAX_PARTIAL_LINE) { /* too long to hold: it becomes a line of its own */
        luaL_addlstring(&b, prefix, prefix_len);
        if (held) { lua_pushvalue(L, partial); luaL_addvalue(&b); }
        luaL_addlstring(&b, data + used, len - used);
        luaL_addchar(&b, '\n');
    }
    luaL_pushresult(&b);
    size_t out_len;
    const char *out = lua_tolstring(L, -1, &out_len);
    int rc = jobrun_write_all(s->out_fd, out, out_len);
    int err = errno;
    if (tail == 0 || tail >= MAX_PARTIAL_LINE) lua_pushnil(L);
    else if (held == 0) lua_pushlstring(L, data + used, len - used);
    else {
        lua_pushvalue(L, partial);
        lua_pushlstring(L, data + used, len - used);
        lua_concat(L, 2);
    }
    lua_setiuservalue(L, 1, STREAM_UV_PARTIAL);
    lua_settop(L, partial - 1);
    errno = err;
    return rc;
}

/* At EOF a last line without its newline still gets its prefix, and a newline. */
static int pump_flush(lua_State *L, Stream *s, const char *prefix, size_t prefix_len) {
    int rc = 0;
    if (lua_getiuservalue(L, 1, STREAM_UV_PARTIAL) == LUA_TSTRING) {
        lua_pushlstring(L, prefix, prefix_len);
        lua_insert(L, -2);
        lua_pushliteral(L, "\n");
        lua_concat(L, 3);
        size_t len;
        const char *line = lua_tolstring(L, -1, &len);
        rc = jobrun_write_all(s->out_fd, line, len);
        lua_pushnil(L);
        lua_setiuservalue(L, 1, STREAM_UV_PARTIAL);
    }
    lua_pop(L, 1);
    return rc;
}

/* pump_lines(out_path, prefix) -> true while the pipe is open, false at EOF | nil, err.
 * Drains what is readable now (up to 1 MiB) into out_path, every complete line prefixed. */
static int stream_pump_lines(lua_State *L) {
    Stream *s = check_stream(L);
    luaL_checkstring(L, 2);
    size_t prefix_len;
    const char *prefix = luaL_checklstring(L, 3, &prefix_len);
    lua_settop(L, 3);
    if (s->eof) { lua_pushboolean(L, 0); return 1; }
    if (stream_output(L, s, 2) != 0) return luaL_fileresult(L, 0, lua_tostring(L, 2));
    char chunk[READ_CHUNK];
    for (int chunks = 0; chunks < PUMP_MAX_CHUNKS;) {
        ssize_t n = read(s->fd, chunk, sizeof chunk);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) break;
        if (n < 0) return luaL_fileresult(L, 0, "read");
        if (n == 0) { s->eof = 1; break; }
        if (pump_chunk(L, s, chunk, (size_t)n, prefix, prefix_len) != 0) return luaL_fileresult(L, 0, lua_tostring(L, 2));
        chunks++;
    }
    if (s->eof) {
        int rc = pump_flush(L, s, prefix, prefix_len);
        int err = errno;
        close_fd(&s->out_fd); /* nothing more will come */
        if (rc != 0) return errno_result(L, err, lua_tostring(L, 2));
    }
    lua_pushboolean(L, !s->eof);
    return 1;
}

static int stream_close(lua_State *L) {
    Stream *s = (Stream *)luaL_checkudata(L, 1, STREAM_HANDLE);
    close_fd(&s->fd);
    close_fd(&s->out_fd);
    return 0;
}

static int stream_tostring(lua_State *L) {
    Stream *s = (Stream *)luaL_checkudata(L, 1, STREAM_HANDLE);
    if (s->fd < 0) lua_pushliteral(L, "stream (closed)");
    else lua_pushfstring(L, "stream (fd %d%s)", s->fd, s->eof ? ", eof" : "");
    return 1;
}

static const luaL_Reg stream_methods[] = {
    {"fd", stream_fd},
    {"read", stream_read},
    {"pump_lines", stream_pump_lines},
    {"close", stream_close},
    {NULL, NULL},
};

static const luaL_Reg stream_meta[] = {
    {"__gc", stream_close},
    {"__close", stream_close},
    {"__tostring", stream_tostring},
    {NULL, NULL},
};

/* ---- Process: a pidfd, for our children (spawn) and for other processes (open). ---- */

enum { RUNNING, EXITED, SIGNALLED, GONE /* a non-child ended: no status to be had */ };

typedef struct {
    int pidfd; /* -1 once closed */
    pid_t pid;
    int child; /* ours to reap with waitid; open()ed processes are not */
    int state;
    int status; /* exit code when EXITED, signal number when SIGNALLED */
    int core;
} Process;

enum { PROC_UV_STDOUT = 1, PROC_UV_STDERR = 2, PROC_UV_RESULT = 3, PROC_N_UV = 3 };

static Process *new_process(lua_State *L) {
    Process *p = (Process *)lua_newuserdatauv(L, sizeof *p, PROC_N_UV);
    memset(p, 0, sizeof *p);
    p->pidfd = -1;
    luaL_setmetatable(L, PROCESS_HANDLE);
    return p;
}

static Process *check_process(lua_State *L) {
    Process *p = (Process *)luaL_checkudata(L, 1, PROCESS_HANDLE);
    if (p->pidfd < 0) luaL_error(L, "attempt to use a closed process");
    return p;
}

static int process_pid(lua_State *L) {
    lua_pushinteger(L, check_process(L)->pid);
    return 1;
}

static int process_fd(lua_State *L) {
    lua_pushinteger(L, check_process(L)->pidfd);
    return 1;
}

static int push_stream(lua_State *L, int uv) {
    check_process(L);
    lua_getiuservalue(L, 1, uv);
    return 1;
}
static int process_stdout(lua_State *L) { return push_stream(L, PROC_UV_STDOUT); }
static int process_stderr(lua_State *L) { return push_stream(L, PROC_UV_STDERR); }

/* Reaps a child: 1 when it has ended (state recorded), 0 while running, -1 on error. */
static int reap(Process *p, int block) {
    siginfo_t info;
    memset(&info, 0, sizeof info); /* si_pid stays 0 when WNOHANG finds nothing */
    int flags = WEXITED | (block ? 0 : WNOHANG);
    while (waitid(P_PIDFD, (id_t)p->pidfd, &info, flags) != 0) {
        if (errno != EINTR) return -1;
    }
    if (info.si_pid == 0) return 0;
    p->state = info.si_code == CLD_EXITED ? EXITED : SIGNALLED;
    p->status = info.si_status;
    p->core = info.si_code == CLD_DUMPED;
    return 1;
}

/* A process that is not our child: its pidfd polls readable once it has ended. */
static int poll_gone(Process *p, int block) {
    struct pollfd pfd = {.fd = p->pidfd, .events = POLLIN};
    int n;
    while ((n = poll(&pfd, 1, block ? -1 : 0)) < 0) {
        if (errno != EINTR) return -1;
    }
    if (n == 0) return 0;
    p->state = GONE;
    return 1;
}

/* The wait result, built once and kept so every later wait() returns the same table. */
static int push_result(lua_State *L, Process *p) {
    if (lua_getiuservalue(L, 1, PROC_UV_RESULT) == LUA_TTABLE) return 1;
    lua_pop(L, 1);
    lua_createtable(L, 0, 4);
    lua_pushboolean(L, 1);
    lua_setfield(L, -2, "exited");
    if (p->state == EXITED) {
        lua_pushinteger(L, p->status);
        lua_setfield(L, -2, "exit_code");
    } else if (p->state == SIGNALLED) {
        push_signal_name(L, p->status);
        lua_setfield(L, -2, "signal");
        lua_pushinteger(L, p->status);
        lua_setfield(L, -2, "signal_number");
    }
    if (p->state != GONE) {
        lua_pushboolean(L, p->core);
        lua_setfield(L, -2, "core");
    }
    lua_pushvalue(L, -1);
    lua_setiuservalue(L, 1, PROC_UV_RESULT);
    return 1;
}

/* wait([block]) -> nil while running | {exited = true, exit_code = N | signal = "TERM" and
 * signal_number = 15, core = bool}; for an open()ed process just {exited = true}. */
static int process_wait(lua_State *L) {
    Process *p = check_process(L);
    int block = lua_toboolean(L, 2);
    if (p->state == RUNNING) {
        int ended = p->child ? reap(p, block) : poll_gone(p, block);
        if (ended < 0) return luaL_fileresult(L, 0, "wait");
        if (ended == 0) { lua_pushnil(L); return 1; }
    }
    return push_result(L, p);
}

/* kill([sig = "TERM"]) -> true | nil, err. Through the pidfd, so never a recycled pid. */
static int process_kill(lua_State *L) {
    Process *p = check_process(L);
    int sig = lua_isnoneornil(L, 2) ? SIGTERM : check_signal(L, 2);
    if (p->state != RUNNING) return errno_result(L, ESRCH, "not running");
    if (pidfd_send_signal(p->pidfd, sig, NULL, 0) != 0) {
        return luaL_fileresult(L, 0, errno == ESRCH ? "not running" : "kill");
    }
    lua_pushboolean(L, 1);
    return 1;
}

/* Closes the pidfd and the pipes of the Process at idx. Never kills, never reaps. */
static void close_process(lua_State *L, int idx) {
    Process *p = (Process *)luaL_checkudata(L, idx, PROCESS_HANDLE);
    close_fd(&p->pidfd);
    for (int uv = PROC_UV_STDOUT; uv <= PROC_UV_STDERR; uv++) {
        lua_getiuservalue(L, idx, uv);
        Stream *s = (Stream *)luaL_testudata(L, -1, STREAM_HANDLE);
        if (s) {
            close_fd(&s->fd);
            close_fd(&s->out_fd);
        }
        lua_pop(L, 1);
    }
}

/* close(): the pidfd and the pipes. A child not yet reaped stays a zombie: wait() first. */
static int process_close(lua_State *L) {
    close_process(L, 1);
    return 0;
}

/* __gc closes only the pidfd: Streams the program still holds stay usable, and the ones it
 * dropped are collected (and closed) on their own. */
static int process_gc(lua_State *L) {
    Process *p = (Process *)luaL_checkudata(L, 1, PROCESS_HANDLE);
    close_fd(&p->pidfd);
    return 0;
}

static int process_tostring(lua_State *L) {
    Process *p = (Process *)luaL_checkudata(L, 1, PROCESS_HANDLE);
    int pid = (int)p->pid;
    if (p->pidfd < 0) lua_pushfstring(L, "process (pid %d, closed)", pid);
    else if (p->state == EXITED) lua_pushfstring(L, "process (pid %d, exited %d)", pid, p->status);
    else if (p->state == GONE) lua_pushfstring(L, "process (pid %d, exited)", pid);
    else if (p->state == SIGNALLED) {
        push_signal_name(L, p->status);
        lua_pushfstring(L, "process (pid %d, signalled %s)", pid, lua_tostring(L, -1));
    } else lua_pushfstring(L, "process (pid %d, running)", pid);
    return 1;
}

static const luaL_Reg process_methods[] = {
    {"pid", process_pid},
    {"fd", process_fd},
    {"stdout", process_stdout},
    {"stderr", process_stderr},
    {"wait", process_wait},
    {"kill", process_kill},
    {"close", process_close},
    {NULL, NULL},
};

static const luaL_Reg process_meta[] = {
    {"__gc", process_gc},
    {"__close", process_close},
    {"__tostring", process_tostring},
    {NULL, NULL},
};

/* ---- spawn ---- */

/* Everything the child needs, prepared before fork: after it the child only makes syscalls. */
typedef struct {
    char **argv;
    char **envp;  /* NULL: inherit ours */
    const char *cwd;
    int fds[3];   /* what becomes the child's fd 0, 1, 2; -1 inherits ours */
    int stderr_to_stdout;
    int setsid, setpgid;
    int err_pipe[2]; /* CLOEXEC: closes by itself on a successful exec */
} Plan;

/* What the child reports through err_pipe when it cannot exec. */
enum { STEP_FDS, STEP_SESSION, STEP_CHDIR, STEP_EXEC };
typedef struct { int step, err; } ChildError;

static _Noreturn void child_fail(int fd, int step) {
    ChildError e = {step, errno};
    if (write(fd, &e, sizeof e) < 0) { /* the parent then sees a plain exit 127 */ }
    _exit(127);
}

/* Moves fd off 0..2 so that installing the standard streams cannot clobber it. */
static int above_stdio(int fd) {
    return fd >= 0 && fd <= 2 ? fcntl(fd, F_DUPFD_CLOEXEC, 3) : fd;
}

/* The parent may block signals (for its signalfd) or ignore some: a job must not inherit
 * that. Dispositions first, then the mask, so nothing pending runs a parent's handler. */
static void reset_signals(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_DFL;
    sigemptyset(&sa.sa_mask);
    for (int sig = 1; sig < NSIG; sig++) {
        if (sig != SIGKILL && sig != SIGSTOP) sigaction(sig, &sa, NULL); /* EINVAL for libc's own */
    }
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
}

/* Runs in the child of vfork: it shares the parent's memory until it execs, so it writes only
 * to its own locals. */
static _Noreturn void child_exec(const Plan *c) {
    reset_signals();
    int report = above_stdio(c->err_pipe[1]);
    if (report < 0) _exit(127);
    int fds[3];
    for (int i = 0; i < 3; i++) {
        fds[i] = c->fds[i];
        if (fds[i] >= 0 && (fds[i] = above_stdio(fds[i])) < 0) child_fail(report, STEP_FDS);
    }
    if (c->setsid && setsid() < 0) child_fail(report, STEP_SESSION);
    if (!c->setsid && c->setpgid && setpgid(0, 0) < 0) child_fail(report, STEP_SESSION);
    for (int i = 0; i < 3; i++) { /* dup2 clears CLOEXEC on the copy */
        if (fds[i] >= 0 && dup2(fds[i], i) < 0) child_fail(report, STEP_FDS);
    }
    if (c->stderr_to_stdout && dup2(1, 2) < 0) child_fail(report, STEP_FDS);
    if (c->cwd && chdir(c->cwd) < 0) child_fail(report, STEP_CHDIR);
    if (c->envp) execvpe(c->argv[0], c->argv, c->envp);
    else execvp(c->argv[0], c->argv);
    child_fail(report, STEP_EXEC);
}

/* Keeps the value on top alive for as long as the spawn call: the child's argv and envp point
 * into these strings. */
static void anchor(lua_State *L, int anchors) {
    lua_rawseti(L, anchors, (lua_Integer)lua_rawlen(L, anchors) + 1);
}

/* The string at the top, which must be a string or number without NULs; anchored. */
static const char *anchored_string(lua_State *L, int anchors, const char *what) {
    int t = lua_type(L, -1);
    if (t != LUA_TSTRING && t != LUA_TNUMBER) {
        luaL_argerror(L, 1, lua_pushfstring(L, "%s must be a string", what));
    }
    size_t len;
    const char *s = lua_tolstring(L, -1, &len);
    if (strlen(s) != len) luaL_argerror(L, 1, lua_pushfstring(L, "%s contains a NUL byte", what));
    anchor(L, anchors);
    return s;
}

static char **collect_argv(lua_State *L, int anchors) {
    if (lua_getfield(L, 1, "argv") != LUA_TTABLE) luaL_argerror(L, 1, "argv must be a list of strings");
    lua_Integer n = luaL_len(L, -1);
    if (n < 1) luaL_argerror(L, 1, "argv must not be empty");
    char **argv = (char **)lua_newuserdatauv(L, (size_t)(n + 1) * sizeof *argv, 0);
    anchor(L, anchors);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_geti(L, -1, i);
        argv[i - 1] = (char *)anchored_string(L, anchors, "argv element");
    }
    argv[n] = NULL;
    lua_pop(L, 1);
    return argv;
}

/* opts.env as "NAME=value" strings, or NULL when absent (the child inherits ours). */
static char **collect_env(lua_State *L, int anchors) {
    int t = lua_getfield(L, 1, "env");
    if (t == LUA_TNIL) { lua_pop(L, 1); return NULL; }
    if (t != LUA_TTABLE) luaL_argerror(L, 1, "env must be a table of name = value");
    int env = lua_gettop(L);
    size_t n = 0;
    for (lua_pushnil(L); lua_next(L, env); lua_pop(L, 1)) n++;
    char **envp = (char **)lua_newuserdatauv(L, (n + 1) * sizeof *envp, 0);
    anchor(L, anchors);
    size_t i = 0;
    for (lua_pushnil(L); lua_next(L, env); lua_pop(L, 1)) {
        const char *name = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
        if (!name || !*name || strchr(name, '=')) luaL_argerror(L, 1, "env names must be strings without '='");
        lua_pushvalue(L, -1);
        const char *value = anchored_string(L, anchors, "env value");
        lua_pushfstring(L, "%s=%s", name, value);
        envp[i++] = (char *)anchored_string(L, anchors, "env entry");
    }
    envp[i] = NULL;
    lua_pop(L, 1);
    return envp;
}

/* opts[key] as a string, or NULL when absent. The opts table keeps it alive. */
static const char *opt_string(lua_State *L, const char *key) {
    int t = lua_getfield(L, 1, key);
    const char *s = t == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
    lua_pop(L, 1);
    if (t != LUA_TNIL && !s) luaL_argerror(L, 1, lua_pushfstring(L, "%s must be a string", key));
    return s;
}

static int opt_bool(lua_State *L, const char *key) {
    lua_getfield(L, 1, key);
    int b = lua_toboolean(L, -1);
    lua_pop(L, 1);
    return b;
}

static void close_plan(Plan *c) {
    for (int i = 0; i < 3; i++) close_fd(&c->fds[i]);
    close_fd(&c->err_pipe[0]);
    close_fd(&c->err_pipe[1]);
}

static int open_append(const char *path) {
    return open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
}

/* An empty Stream, as the process's user value uv, for one of the child's pipes. */
static Stream *attach_stream(lua_State *L, int proc, int uv) {
    Stream *s = new_stream(L);
    lua_setiuservalue(L, proc, uv);
    return s;
}

/* The pipe: the read end is the Stream's, the write end the child's. Only our end is
 * non-blocking: the child's must block like any ordinary stdout. */
static int open_pipe(Stream *s, int *child_end) {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) return -1;
    s->fd = fds[0];
    *child_end = fds[1];
    return fcntl(s->fd, F_SETFL, O_NONBLOCK);
}

static int is(const char *value, const char *word) { return value && strcmp(value, word) == 0; }

static const char PIPE_FAILED[] = "pipe";
static const char INPUT_FAILED[] = "input";

/* opts.input: the child's stdin is a pipe that already holds all of it, then EOF. The whole
 * text goes in before the fork (the pipe is grown to fit, within the system's pipe-max-size),
 * so the parent never blocks on a child and never meets SIGPIPE; and what passes this way is
 * seen by no one else (unlike argv, which any local user reads in /proc/PID/cmdline).
 * Returns the read end, or -1 with errno (E2BIG: more than a pipe can hold). */
static int input_pipe(const char *data, size_t len) {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0) return -1;
    int err = 0;
    if (len > 65536 && (len > INT_MAX || fcntl(fds[1], F_SETPIPE_SZ, (int)len) < 0)) err = E2BIG;
    else if (jobrun_write_all(fds[1], data, len) != 0) err = errno == EAGAIN ? E2BIG : errno;
    else if (fcntl(fds[0], F_SETFL, 0) != 0) err = errno; /* the reader's is an ordinary stdin */
    close(fds[1]);
    if (err) {
        close(fds[0]);
        errno = err;
        return -1;
    }
    return fds[0];
}

/* Opens the child's standard streams per opts. Returns NULL, PIPE_FAILED or the path that
 * could not be opened, with errno set. */
static const char *open_stdio(lua_State *L, Plan *c, int proc) {
    const char *in = opt_string(L, "stdin"), *out = opt_string(L, "stdout");
    const char *err = opt_string(L, "stderr");
    size_t input_len = 0;
    const char *input = NULL;
    if (lua_getfield(L, 1, "input") != LUA_TNIL) {
        if (!lua_isstring(L, -1)) luaL_argerror(L, 1, "input must be a string");
        if (in) luaL_argerror(L, 1, "stdin and input exclude each other");
        input = lua_tolstring(L, -1, &input_len); /* kept alive by the opts table */
    }
    lua_pop(L, 1);
    /* Allocate first: once fds are open nothing may raise, or they would leak. */
    Stream *out_pipe = is(out, "pipe") ? attach_stream(L, proc, PROC_UV_STDOUT) : NULL;
    Stream *err_pipe = is(err, "pipe") ? attach_stream(L, proc, PROC_UV_STDERR) : NULL;
    c->stderr_to_stdout = is(err, "stdout");
    if (input) {
        if ((c->fds[0] = input_pipe(input, input_len)) < 0) return INPUT_FAILED;
    } else if ((c->fds[0] = open(in ? in : "/dev/null", O_RDONLY | O_CLOEXEC)) < 0) return in ? in : "/dev/null";
    if (out_pipe) {
        if (open_pipe(out_pipe, &c->fds[1]) != 0) return PIPE_FAILED;
    } else if (out && (c->fds[1] = open_append(out)) < 0) return out;
    if (err_pipe) {
        if (open_pipe(err_pipe, &c->fds[2]) != 0) return PIPE_FAILED;
    } else if (err && !c->stderr_to_stdout && (c->fds[2] = open_append(err)) < 0) return err;
    return NULL;
}

/* Waits for the child to exec or to report why it could not. 0, or -1 with *e filled in. */
static int await_exec(Plan *c, ChildError *e) {
    close_fd(&c->err_pipe[1]);
    ssize_t n;
    do n = read(c->err_pipe[0], e, sizeof *e); while (n < 0 && errno == EINTR);
    close_fd(&c->err_pipe[0]);
    return n == (ssize_t)sizeof *e ? -1 : 0;
}

static int spawn_failed(lua_State *L, Plan *c, const ChildError *e) {
    if (e->step == STEP_EXEC) return errno_result(L, e->err, lua_pushfstring(L, "cannot run '%s'", c->argv[0]));
    if (e->step == STEP_CHDIR) return errno_result(L, e->err, lua_pushfstring(L, "cannot change directory to '%s'", c->cwd));
    if (e->step == STEP_SESSION) return errno_result(L, e->err, "cannot start a new session or process group");
    return errno_result(L, e->err, "cannot set up the standard streams");
}

/* spawn(opts) -> Process | nil, err. opts: argv, env, cwd, setsid, setpgid; stdin (a path) or
 * input (text the child reads on stdin, through a pipe); stdout and stderr (a path, "pipe",
 * or "stdout" for stderr). See the file comment and tests/unit/process.lua. */
static int process_spawn(lua_State *L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    lua_newtable(L);
    int anchors = lua_gettop(L);
    Plan c = {.fds = {-1, -1, -1}, .err_pipe = {-1, -1}};
    c.argv = collect_argv(L, anchors);
    c.envp = collect_env(L, anchors);
    c.cwd = opt_string(L, "cwd");
    c.setsid = opt_bool(L, "setsid");
    c.setpgid = opt_bool(L, "setpgid");
    Process *p = new_process(L); /* before fork: no allocation can fail once a child exists */
    p->child = 1;
    int proc = lua_gettop(L);
    const char *what = open_stdio(L, &c, proc);
    if (what || pipe2(c.err_pipe, O_CLOEXEC) != 0) {
        int err = errno;
        close_plan(&c);
        close_process(L, proc);
        if (what == INPUT_FAILED) what = "cannot pass the input through a pipe";
        else if (what && what != PIPE_FAILED) what = lua_pushfstring(L, "cannot open '%s'", what);
        return errno_result(L, err, what ? what : "pipe");
    }
    /* The child needs no copy of our memory: vfork, with every signal blocked until the child
     * has reset its handlers (it runs on our memory until it execs). */
    sigset_t all, saved;
    sigfillset(&all);
    sigprocmask(SIG_SETMASK, &all, &saved);
    pid_t pid = vfork();
    if (pid == 0) child_exec(&c);
    int vfork_err = errno;
    sigprocmask(SIG_SETMASK, &saved, NULL);
    errno = vfork_err;
    int err = errno;
    for (int i = 0; i < 3; i++) close_fd(&c.fds[i]); /* the child's ends */
    if (pid < 0) {
        close_plan(&c);
        close_process(L, proc);
        return errno_result(L, err, "fork");
    }
    p->pid = pid;
    /* Our unreaped child cannot be replaced by another process, so this pidfd is its. */
    p->pidfd = pidfd_open(pid, 0);
    if (p->pidfd < 0) {
        err = errno;
        kill(pid, SIGKILL);
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {}
        close_plan(&c);
        close_process(L, proc);
        return errno_result(L, err, "pidfd_open");
    }
    ChildError e;
    if (await_exec(&c, &e) != 0) {
        reap(p, 1); /* it exits 127 right after reporting */
        close_process(L, proc);
        return spawn_failed(L, &c, &e);
    }
    lua_settop(L, proc);
    return 1;
}

/* open(pid) -> Process | nil, err: a process that is not our child. wait() cannot reap it;
 * it only tells that it has ended. */
static int process_open(lua_State *L) {
    lua_Integer pid = luaL_checkinteger(L, 1);
    luaL_argcheck(L, pid > 0 && pid <= INT_MAX, 1, "invalid pid");
    Process *p = new_process(L);
    p->pid = (pid_t)pid;
    p->pidfd = pidfd_open((pid_t)pid, 0);
    if (p->pidfd < 0) {
        int err = errno;
        return errno_result(L, err, lua_pushfstring(L, "pid %d", (int)pid));
    }
    return 1;
}

/* ---- fork: a copy of this process to run user code in, under limits enforced from outside. ---- */

/* fork() -> Process (in the parent; its stdout() reads what the child writes) | nil, fd (in the
 * child: the write end of that pipe, for write()). Unlike spawn, the child runs on: it is for
 * Lua code that must be stoppable whatever it calls (a parser stuck in one C call). The child
 * ignores INT, TERM and HUP (the parent, which gets them too, decides and kills it), dies with
 * its parent, dumps no core, and has the default action for SIGXCPU, so that limit_cpu ends it.
 * It must leave by exit_now: atexit handlers and stdio buffers are the parent's. */
static int process_fork(lua_State *L) {
    Process *p = new_process(L); /* allocations first: no error may be raised once a child exists */
    p->child = 1;
    int proc = lua_gettop(L);
    Stream *s = attach_stream(L, proc, PROC_UV_STDOUT);
    int child_end = -1;
    if (open_pipe(s, &child_end) != 0) {
        int err = errno;
        close_fd(&child_end);
        close_process(L, proc);
        return errno_result(L, err, "pipe");
    }
    fflush(NULL); /* else what we buffered would be written twice */
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        close_fd(&s->fd);
        p->pidfd = -1;
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sigemptyset(&sa.sa_mask);
        sa.sa_handler = SIG_IGN;
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGHUP, &sa, NULL);
        sa.sa_handler = SIG_DFL;
        sigaction(SIGXCPU, &sa, NULL);
        sigaction(SIGPIPE, &sa, NULL);
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, SIGINT);
        sigaddset(&set, SIGTERM);
        sigaddset(&set, SIGHUP);
        sigaddset(&set, SIGXCPU);
        sigprocmask(SIG_UNBLOCK, &set, NULL);
        struct rlimit no_core = {0, 0};
        setrlimit(RLIMIT_CORE, &no_core);
        prctl(PR_SET_DUMPABLE, 0);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) _exit(1); /* the parent died before PDEATHSIG was set */
        int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (null >= 0) { dup2(null, 0); close(null); }
        lua_pushnil(L);
        lua_pushinteger(L, child_end);
        return 2;
    }
    int err = errno;
    close_fd(&child_end);
    if (pid < 0) {
        close_process(L, proc);
        return errno_result(L, err, "fork");
    }
    p->pid = pid;
    p->pidfd = pidfd_open(pid, 0); /* our unreaped child: the pid cannot be reused meanwhile */
    if (p->pidfd < 0) {
        err = errno;
        kill(pid, SIGKILL);
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {}
        close_process(L, proc);
        return errno_result(L, err, "pidfd_open");
    }
    lua_settop(L, proc);
    return 1;
}

/* write(fd, data) -> true | nil, err: all of it, blocking (fork's child writes its pipe). */
static int process_write(lua_State *L) {
    lua_Integer fd = luaL_checkinteger(L, 1);
    size_t len;
    const char *data = luaL_checklstring(L, 2, &len);
    luaL_argcheck(L, fd >= 0 && fd <= INT_MAX, 1, "invalid fd");
    if (jobrun_write_all((int)fd, data, len) != 0) return luaL_fileresult(L, 0, "write");
    lua_pushboolean(L, 1);
    return 1;
}

/* exit_now(code): _exit, for fork's child: no atexit handler, no flush, no Lua close. */
static int process_exit_now(lua_State *L) {
    _exit((int)luaL_optinteger(L, 1, 0));
}

/* limit_cpu(seconds) -> the limit set: the process may use `seconds` more of CPU (rounded up to
 * the whole second RLIMIT_CPU counts in) before the kernel sends SIGXCPU. For fork's child. */
static int process_limit_cpu(lua_State *L) {
    double more = luaL_checknumber(L, 1);
    luaL_argcheck(L, more > 0 && more <= 1e9, 1, "seconds out of range");
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    struct rlimit rl;
    if (getrlimit(RLIMIT_CPU, &rl) != 0) return luaL_fileresult(L, 0, "getrlimit");
    rlim_t soft = (rlim_t)ceil((double)ts.tv_sec + (double)ts.tv_nsec / 1e9 + more);
    if (rl.rlim_max != RLIM_INFINITY && soft > rl.rlim_max) soft = rl.rlim_max;
    rl.rlim_cur = soft;
    if (setrlimit(RLIMIT_CPU, &rl) != 0) return luaL_fileresult(L, 0, "setrlimit");
    lua_pushinteger(L, (lua_Integer)soft);
    return 1;
}

/* cpu_time() -> seconds of CPU this process has used. */
static int process_cpu_time(lua_State *L) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    lua_pushnumber(L, (double)ts.tv_sec + (double)ts.tv_nsec / 1e9);
    return 1;
}

/* ---- SignalSet: signals blocked and read through a signalfd. ---- */

typedef struct {
    int fd;         /* -1 once closed */
    sigset_t set;   /* what the signalfd reports */
    sigset_t added; /* what we blocked that was not blocked before: close unblocks these */
} SignalSet;

static SignalSet *check_signals(lua_State *L) {
    SignalSet *s = (SignalSet *)luaL_checkudata(L, 1, SIGNALS_HANDLE);
    if (s->fd < 0) luaL_error(L, "attempt to use a closed signal set");
    return s;
}

/* signals({"INT", "TERM", ...}) -> SignalSet | nil, err. */
static int process_signals(lua_State *L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    SignalSet *s = (SignalSet *)lua_newuserdatauv(L, sizeof *s, 0);
    s->fd = -1;
    sigemptyset(&s->set);
    sigemptyset(&s->added);
    luaL_setmetatable(L, SIGNALS_HANDLE);
    lua_Integer n = luaL_len(L, 1);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_geti(L, 1, i);
        int sig = check_signal(L, lua_gettop(L));
        if (sig == 0 || sig == SIGKILL || sig == SIGSTOP) {
            luaL_argerror(L, 1, "KILL and STOP cannot be caught");
        }
        sigaddset(&s->set, sig);
        lua_pop(L, 1);
    }
    sigset_t old;
    if (sigprocmask(SIG_BLOCK, &s->set, &old) != 0) return luaL_fileresult(L, 0, "sigprocmask");
    for (int sig = 1; sig < NSIG; sig++) {
        if (sigismember(&s->set, sig) == 1 && sigismember(&old, sig) == 0) sigaddset(&s->added, sig);
    }
    s->fd = signalfd(-1, &s->set, SFD_CLOEXEC | SFD_NONBLOCK);
    if (s->fd < 0) {
        int err = errno;
        sigprocmask(SIG_UNBLOCK, &s->added, NULL);
        return errno_result(L, err, "signalfd");
    }
    return 1;
}

static int signals_fd(lua_State *L) {
    lua_pushinteger(L, check_signals(L)->fd);
    return 1;
}

/* read() -> list of the names of signals received since the last read, {} if none. */
static int signals_read(lua_State *L) {
    SignalSet *s = check_signals(L);
    lua_newtable(L);
    struct signalfd_siginfo info[16];
    lua_Integer count = 0;
    for (;;) {
        ssize_t n = read(s->fd, info, sizeof info);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) break;
        if (n < 0) return luaL_fileresult(L, 0, "read");
        for (size_t i = 0; i < (size_t)n / sizeof info[0]; i++) {
            push_signal_name(L, (int)info[i].ssi_signo);
            lua_rawseti(L, -2, ++count);
        }
    }
    return 1;
}

/* close(): also unblocks what this set blocked, so a signal still pending (unread) is then
 * delivered with its default action. */
static int signals_close(lua_State *L) {
    SignalSet *s = (SignalSet *)luaL_checkudata(L, 1, SIGNALS_HANDLE);
    if (s->fd >= 0) {
        close_fd(&s->fd);
        sigprocmask(SIG_UNBLOCK, &s->added, NULL);
    }
    return 0;
}

static int signals_tostring(lua_State *L) {
    SignalSet *s = (SignalSet *)luaL_checkudata(L, 1, SIGNALS_HANDLE);
    if (s->fd < 0) { lua_pushliteral(L, "signals (closed)"); return 1; }
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    luaL_addstring(&b, "signals (");
    for (size_t i = 0; i < N_SIGNAL_NAMES; i++) {
        if (sigismember(&s->set, signal_names[i].num) != 1) continue;
        luaL_addstring(&b, signal_names[i].name);
        luaL_addstring(&b, ", ");
    }
    lua_pushfstring(L, "fd %d)", s->fd);
    luaL_addvalue(&b);
    luaL_pushresult(&b);
    return 1;
}

static const luaL_Reg signals_methods[] = {
    {"fd", signals_fd},
    {"read", signals_read},
    {"close", signals_close},
    {NULL, NULL},
};

static const luaL_Reg signals_meta[] = {
    {"__gc", signals_close},
    {"__close", signals_close},
    {"__tostring", signals_tostring},
    {NULL, NULL},
};

/* ---- poll ---- */

/* The fd to poll for items[i]: a Process (ready once ended), Stream, SignalSet or an fd. */
static int item_fd(lua_State *L, lua_Integer i) {
    int fd = -1;
    Process *p;
    Stream *st;
    SignalSet *ss;
    if ((p = (Process *)luaL_testudata(L, -1, PROCESS_HANDLE)) != NULL) fd = p->pidfd;
    else if ((st = (Stream *)luaL_testudata(L, -1, STREAM_HANDLE)) != NULL) fd = st->fd;
    else if ((ss = (SignalSet *)luaL_testudata(L, -1, SIGNALS_HANDLE)) != NULL) fd = ss->fd;
    else if (lua_isinteger(L, -1)) {
        lua_Integer n = lua_tointeger(L, -1);
        fd = n >= 0 && n <= INT_MAX ? (int)n : -1;
    } else {
        return luaL_argerror(L, 1, lua_pushfstring(L, "item %d is not a process, stream, signal set or fd", (int)i));
    }
    if (fd < 0) return luaL_argerror(L, 1, lua_pushfstring(L, "item %d is closed or not an fd", (int)i));
    return fd;
}

/* poll(items [, timeout]) -> list of the indices of ready items; {} on timeout or EINTR.
 * No timeout blocks until something is ready; a negative one is 0. */
static int process_poll(lua_State *L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    struct timespec ts, *tsp = NULL;
    if (!lua_isnoneornil(L, 2)) {
        double t = luaL_checknumber(L, 2);
        luaL_argcheck(L, t == t, 2, "timeout is NaN");
        if (t < 0) t = 0;     /* a deadline just passed: callers compute deadline - now() */
        if (t > 1e9) t = 1e9; /* about 31 years: keeps time_t conversion defined */
        ts.tv_sec = (time_t)t;
        ts.tv_nsec = (long)((t - (double)ts.tv_sec) * 1e9);
        tsp = &ts;
    }
    lua_Integer n = luaL_len(L, 1);
    luaL_argcheck(L, n >= 0 && n <= 65536, 1, "too many items");
    struct pollfd *fds = (struct pollfd *)lua_newuserdatauv(L, (size_t)(n ? n : 1) * sizeof *fds, 0);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_geti(L, 1, i);
        fds[i - 1] = (struct pollfd){.fd = item_fd(L, i), .events = POLLIN};
        lua_pop(L, 1);
    }
    int ready = ppoll(fds, (nfds_t)n, tsp, NULL);
    if (ready < 0 && errno != EINTR) return luaL_fileresult(L, 0, "poll");
    lua_newtable(L);
    lua_Integer count = 0;
    for (lua_Integer i = 1; ready > 0 && i <= n; i++) {
        if (fds[i - 1].revents == 0) continue; /* POLLHUP, POLLERR, POLLNVAL count as ready too */
        lua_pushinteger(L, i);
        lua_rawseti(L, -2, ++count);
    }
    return 1;
}

/* ---- Plain functions ---- */

/* killpg(pgid [, sig = "TERM"]) -> true | nil, err. */
static int process_killpg(lua_State *L) {
    lua_Integer pgid = luaL_checkinteger(L, 1);
    luaL_argcheck(L, pgid > 0 && pgid <= INT_MAX, 1, "invalid process group");
    int sig = lua_isnoneornil(L, 2) ? SIGTERM : check_signal(L, 2);
    if (killpg((pid_t)pgid, sig) != 0) {
        int err = errno;
        return errno_result(L, err, lua_pushfstring(L, "process group %d", (int)pgid));
    }
    lua_pushboolean(L, 1);
    return 1;
}

/* Skips n space-separated fields of /proc/PID/stat; NULL if the line is shorter. */
static const char *skip_fields(const char *p, int n) {
    while (n-- > 0) {
        while (*p == ' ') p++;
        if (*p == '\0') return NULL;
        while (*p && *p != ' ') p++;
    }
    while (*p == ' ') p++;
    return *p ? p : NULL;
}

/* start_time(pid) -> clock ticks after boot at which pid started (stat field 22), or nil if
 * there is no such process. A zombie counts as gone: it has ended, only its entry is left.
 * The same pid with another start time is another process. */
static int process_start_time(lua_State *L) {
    lua_Integer pid = luaL_checkinteger(L, 1);
    luaL_argcheck(L, pid > 0 && pid <= INT_MAX, 1, "invalid pid");
    char path[64], buf[4096];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 && (errno == ENOENT || errno == ESRCH)) { lua_pushnil(L); return 1; }
    if (fd < 0) return luaL_fileresult(L, 0, path);
    ssize_t n;
    do n = read(fd, buf, sizeof buf - 1); while (n < 0 && errno == EINTR);
    int err = errno;
    close(fd);
    if (n < 0 && err == ESRCH) { lua_pushnil(L); return 1; }
    if (n < 0) return errno_result(L, err, path);
    buf[n] = '\0';
    /* comm (field 2) may hold spaces and ')': the fields resume after the LAST ')'. */
    const char *p = strrchr(buf, ')');
    const char *state = p ? skip_fields(p + 1, 0) : NULL; /* field 3 */
    const char *start = state ? skip_fields(state, 19) : NULL; /* field 22 */
    if (!start) return errno_result(L, EINVAL, path);
    if (*state == 'Z' || *state == 'X') { lua_pushnil(L); return 1; }
    lua_pushinteger(L, (lua_Integer)strtoull(start, NULL, 10));
    return 1;
}

/* affinity([cpus]) -> the CPUs this process may run on ({0, 1, ...}), before any change; with a
 * list, the process is then bound to those CPUs (the kernel moves it there before the call
 * returns). nil, err on failure. For comparing two readings of one CPU's scheduler clock. */
static int process_affinity(lua_State *L) {
    cpu_set_t old, set;
    CPU_ZERO(&old);
    if (sched_getaffinity(0, sizeof old, &old) != 0) return luaL_fileresult(L, 0, "sched_getaffinity");
    if (!lua_isnoneornil(L, 1)) {
        luaL_checktype(L, 1, LUA_TTABLE);
        CPU_ZERO(&set);
        lua_Integer n = luaL_len(L, 1);
        for (lua_Integer i = 1; i <= n; i++) {
            lua_rawgeti(L, 1, i);
            lua_Integer cpu = luaL_checkinteger(L, -1);
            lua_pop(L, 1);
            luaL_argcheck(L, cpu >= 0 && cpu < CPU_SETSIZE, 1, "invalid CPU number");
            CPU_SET((int)cpu, &set);
        }
        if (sched_setaffinity(0, sizeof set, &set) != 0) return luaL_fileresult(L, 0, "sched_setaffinity");
    }
    lua_createtable(L, CPU_COUNT(&old), 0);
    lua_Integer k = 0;
    for (int cpu = 0; cpu < CPU_SETSIZE; cpu++) {
        if (CPU_ISSET(cpu, &old)) { lua_pushinteger(L, cpu); lua_rawseti(L, -2, ++k); }
    }
    return 1;
}

/* environ() -> {NAME = value, ...} of this process. */
static int process_environ(lua_State *L) {
    lua_newtable(L);
    for (char **e = environ; e && *e; e++) {
        const char *eq = strchr(*e, '=');
        if (!eq) continue;
        lua_pushlstring(L, *e, (size_t)(eq - *e));
        lua_pushstring(L, eq + 1);
        lua_rawset(L, -3);
    }
    return 1;
}

static int process_getpid(lua_State *L) {
    lua_pushinteger(L, getpid());
    return 1;
}

static int process_self_exe(lua_State *L) {
    char buf[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", buf, sizeof buf);
    if (n < 0) return luaL_fileresult(L, 0, "/proc/self/exe");
    if ((size_t)n == sizeof buf) return errno_result(L, ENAMETOOLONG, "/proc/self/exe");
    lua_pushlstring(L, buf, (size_t)n);
    return 1;
}

/* sleep(seconds): for tests and rare backoff only; the runner waits in poll(). */
static int process_sleep(lua_State *L) {
    double t = luaL_checknumber(L, 1);
    luaL_argcheck(L, t <= 1e9, 1, "seconds out of range"); /* also refuses NaN */
    if (!(t > 0)) return 0;
    struct timespec ts = {.tv_sec = (time_t)t};
    ts.tv_nsec = (long)((t - (double)ts.tv_sec) * 1e9);
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
    return 0;
}

static double clock_seconds(clockid_t id) {
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* now() -> monotonic seconds, for durations; time() -> wall-clock seconds with fraction. */
static int process_now(lua_State *L) { lua_pushnumber(L, clock_seconds(CLOCK_MONOTONIC)); return 1; }
static int process_time(lua_State *L) { lua_pushnumber(L, clock_seconds(CLOCK_REALTIME)); return 1; }

static const luaL_Reg process_functions[] = {
    {"spawn", process_spawn},
    {"fork", process_fork},
    {"write", process_write},
    {"exit_now", process_exit_now},
    {"limit_cpu", process_limit_cpu},
    {"cpu_time", process_cpu_time},
    {"open", process_open},
    {"killpg", process_killpg},
    {"poll", process_poll},
    {"start_time", process_start_time},
    {"affinity", process_affinity},
    {"signals", process_signals},
    {"environ", process_environ},
    {"getpid", process_getpid},
    {"self_exe", process_self_exe},
    {"sleep", process_sleep},
    {"now", process_now},
    {"time", process_time},
    {NULL, NULL},
};

int luaopen_jobrun_process(lua_State *L) {
    jobrun_class(L, PROCESS_HANDLE, process_meta, process_methods);
    jobrun_class(L, STREAM_HANDLE, stream_meta, stream_methods);
    jobrun_class(L, SIGNALS_HANDLE, signals_meta, signals_methods);
    luaL_newlib(L, process_functions);
    return 1;
}
