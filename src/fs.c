/* File-system primitives: whole-file reads, atomic writes, directories, and flock handles.
 * A failure is nil, "path: strerror", errno (luaL_fileresult), as liolib's. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>

#include "host.h"

#define LOCK_HANDLE "jobrun.fs.lock"
#define WATCH_HANDLE "jobrun.fs.watch"

/* read(path [, offset]) -> the file's content (from byte offset on). */
static int fs_read(lua_State *L) {
    const char *path = luaL_checkstring(L, 1);
    lua_Integer offset = luaL_optinteger(L, 2, 0);
    luaL_argcheck(L, offset >= 0, 2, "negative offset");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return luaL_fileresult(L, 0, path);
    if (offset > 0 && lseek(fd, (off_t)offset, SEEK_SET) < 0) {
        int err = errno;
        close(fd);
        errno = err;
        return luaL_fileresult(L, 0, path);
    }
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (;;) {
        char *p = luaL_prepbuffsize(&b, 65536);
        ssize_t n = read(fd, p, 65536);
        if (n < 0) {
            if (errno == EINTR) continue;
            int err = errno;
            close(fd);
            errno = err;
            return luaL_fileresult(L, 0, path);
        }
        if (n == 0) break;
        luaL_addsize(&b, (size_t)n);
    }
    close(fd);
    luaL_pushresult(&b);
    return 1;
}

/* The most a record of a run directory (a claim, a result, a journal's new lines, state.json)
 * is read at once: a file linked to /dev/zero, or grown without end, cannot exhaust memory. */
#define RECORD_MAX (16 * 1024 * 1024)

/* record_refused(L, fd, path) -> 0 when the open file is a regular file owned by this process's
 * user; else fd is closed, nil, "path: why", errno are pushed and 3 is returned. Files of a run
 * directory are the runner's own: a link, a device, a FIFO or another user's file is damage. */
static int record_refused(lua_State *L, int fd, const char *path) {
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int err = errno;
        close(fd);
        errno = err;
        return luaL_fileresult(L, 0, path);
    }
    const char *kind = NULL;
    if (S_ISDIR(st.st_mode)) kind = "a directory";
    else if (S_ISCHR(st.st_mode)) kind = "a character device";
    else if (S_ISBLK(st.st_mode)) kind = "a block device";
    else if (S_ISFIFO(st.st_mode)) kind = "a FIFO";
    else if (S_ISSOCK(st.st_mode)) kind = "a socket";
    else if (!S_ISREG(st.st_mode)) kind = "not a regular file";
    if (kind) {
        close(fd);
        lua_pushnil(L);
        lua_pushfstring(L, "%s: %s, not a regular file (refused)", path, kind);
        lua_pushinteger(L, EINVAL);
        return 3;
    }
    if (st.st_uid != geteuid()) {
        close(fd);
        lua_pushnil(L);
        lua_pushfstring(L, "%s: owned by uid %d, not by the runner (uid %d) (refused)", path,
                        (int)st.st_uid, (int)geteuid());
        lua_pushinteger(L, EPERM);
        return 3;
    }
    return 0;
}

/* open_record(L, path, flags) -> fd, or -1 with the failure pushed (see record_refused). Never
 * follows a symbolic link (O_NOFOLLOW) nor blocks on a FIFO (O_NONBLOCK). */
static int open_record(lua_State *L, const char *path, int flags, int *pushed) {
    int fd = open(path, flags | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0644);
    if (fd < 0) {
        int err = errno;
        if (err == ELOOP || err == ENXIO) { /* ENXIO: a FIFO with no reader, opened to write */
            lua_pushnil(L);
            lua_pushfstring(L, "%s: %s, not a regular file (refused)", path,
                            err == ELOOP ? "a symbolic link" : "a FIFO or a device");
            lua_pushinteger(L, err);
            *pushed = 3;
        } else {
            *pushed = luaL_fileresult(L, 0, path);
        }
        return -1;
    }
    *pushed = record_refused(L, fd, path);
    return *pushed ? -1 : fd;
}

/* read_record(path [, offset [, max]]) -> text, more | nil, "path: why", errno: at most max
 * (default RECORD_MAX) bytes of a record from byte offset on; more is true when the file holds
 * more than that. A missing file is nil with ENOENT; a link, a device, a FIFO or a file of
 * another user is refused, naming it. */
static int fs_read_record(lua_State *L) {
    const char *path = luaL_checkstring(L, 1);
    lua_Integer offset = luaL_optinteger(L, 2, 0);
    lua_Integer max = luaL_optinteger(L, 3, RECORD_MAX);
    luaL_argcheck(L, offset >= 0, 2, "negative offset");
    luaL_argcheck(L, max >= 0, 3, "negative size");
    int pushed;
    int fd = open_record(L, path, O_RDONLY, &pushed);
    if (fd < 0) return pushed;
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    size_t want = (size_t)max, got = 0;
    char extra;
    int more = 0;
    for (;;) {
        size_t chunk = want - got < 65536 ? want - got : 65536;
        /* once max is read, one more byte tells whether the file goes on */
        char *p = chunk ? luaL_prepbuffsize(&b, chunk) : &extra;
        ssize_t n = pread(fd, p, chunk ? chunk : 1, (off_t)offset + (off_t)got);
        if (n < 0) {
            if (errno == EINTR) continue;
            int err = errno;
            close(fd);
            errno = err;
            return luaL_fileresult(L, 0, path);
        }
        if (n == 0) break;
        if (!chunk) { more = 1; break; }
        luaL_addsize(&b, (size_t)n);
        got += (size_t)n;
    }
    close(fd);
    luaL_pushresult(&b);
    lua_pushboolean(L, more);
    return 2;
}

/* append_record(path, data [, create]) -> true | nil, "path: why", errno: one O_APPEND write to
 * a journal, made if missing unless create is false (a journal that vanished is not made anew:
 * a reader that knows how far it read would take the new file's lines for garbage), refused
 * (naming it) unless a regular file of the runner's: a journal replaced by a link is never
 * followed to another file. */
static int fs_append_record(lua_State *L) {
    const char *path = luaL_checkstring(L, 1);
    size_t len;
    const char *data = luaL_checklstring(L, 2, &len);
    int create = lua_isnoneornil(L, 3) || lua_toboolean(L, 3);
    int pushed;
    int fd = open_record(L, path, O_WRONLY | O_APPEND | (create ? O_CREAT : 0), &pushed);
    if (fd < 0) return pushed;
    int rc = jobrun_write_all(fd, data, len);
    int err = errno;
    close(fd);
    if (rc != 0) { errno = err; return luaL_fileresult(L, 0, path); }
    lua_pushboolean(L, 1);
    return 1;
}

/* Reads at most the last `max` bytes: logs can be far larger than what a reader needs. */
static int fs_read_tail(lua_State *L) {
    luaL_Buffer b;
    JobrunTail t;
    int failed = jobrun_read_tail(L, &b, &t);
    if (failed) return failed;
    close(t.fd);
    luaL_pushresultsize(&b, t.got);
    lua_pushinteger(L, (lua_Integer)t.start);
    return 2;
}

static void fsync_parent(const char *path) {
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash == dir) slash[1] = '\0';
    else if (slash) *slash = '\0';
    else snprintf(dir, sizeof dir, ".");
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) { fsync(fd); close(fd); }
}

/* write_parts(fd, L, idx) -> 0 | -1 (errno): the strings of the list at idx, in order, through
 * one buffer: a big file in pieces (a run's state.json, a line a job) is never joined into one
 * string first, which cost a big run more than the write. */
static int write_parts(int fd, lua_State *L, int idx) {
    char buf[1 << 16];
    size_t used = 0;
    lua_Integer n = luaL_len(L, idx);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_geti(L, idx, i);
        size_t len;
        const char *piece = lua_tolstring(L, -1, &len);
        if (!piece) { lua_pop(L, 1); errno = EINVAL; return -1; }
        if (used + len > sizeof buf) {
            if (used && jobrun_write_all(fd, buf, used) != 0) { lua_pop(L, 1); return -1; }
            used = 0;
        }
        if (len >= sizeof buf) {
            if (jobrun_write_all(fd, piece, len) != 0) { lua_pop(L, 1); return -1; }
        } else {
            memcpy(buf + used, piece, len);
            used += len;
        }
        lua_pop(L, 1);
    }
    return used ? jobrun_write_all(fd, buf, used) : 0;
}

/* write_atomic(path, data [, durable = true]): temp file beside it, rename over the old one.
 * data is a string, or a list of strings written one after the other. Readers see the old or
 * the new content, never a mix. Durable also fsyncs the file and the directory, so that the new
 * content survives a power loss too (it costs milliseconds). */
static int fs_write_atomic(lua_State *L) {
    const char *path = luaL_checkstring(L, 1);
    size_t len = 0;
    const char *data = NULL;
    if (lua_type(L, 2) == LUA_TTABLE) {
        for (lua_Integer i = 1, n = luaL_len(L, 2); i <= n; i++) {
            if (lua_geti(L, 2, i) != LUA_TSTRING && !lua_isnumber(L, -1))
                return luaL_error(L, "write_atomic: item %d of the list is not a string", (int)i);
            lua_pop(L, 1);
        }
    } else {
        data = luaL_checklstring(L, 2, &len);
    }
    int durable = lua_isnoneornil(L, 3) || lua_toboolean(L, 3);
    char tmp[PATH_MAX];
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= sizeof tmp) {
        errno = ENAMETOOLONG;
        return luaL_fileresult(L, 0, path);
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0) return luaL_fileresult(L, 0, tmp);
    int written = data ? jobrun_write_all(fd, data, len) : write_parts(fd, L, 2);
    if (written != 0 || (durable && fsync(fd) != 0)) {
        int err = errno;
        close(fd);
        unlink(tmp);
        errno = err;
        return luaL_fileresult(L, 0, path);
    }
    if (close(fd) != 0 || rename(tmp, path) != 0) {
        int err = errno;
        unlink(tmp);
        errno = err;
        return luaL_fileresult(L, 0, path);
    }
    if (durable) fsync_parent(path);
    lua_pushboolean(L, 1);
    return 1;
}

/* write_exclusive(path, data) -> true | false (path exists) | nil, err. Complete content or
 * nothing: the data goes to a temp file that is then hard-linked to path, which fails if path
 * exists. A claim that two processes can race for, and that readers never see half-written. */
static int fs_write_exclusive(lua_State *L) {
    const char *path = luaL_checkstring(L, 1);
    size_t len;
    const char *data = luaL_checklstring(L, 2, &len);
    char tmp[PATH_MAX];
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= sizeof tmp) {
        errno = ENAMETOOLONG;
        return luaL_fileresult(L, 0, path);
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0) return luaL_fileresult(L, 0, tmp);
    int rc = jobrun_write_all(fd, data, len);
    int err = errno;
    close(fd);
    if (rc != 0) { unlink(tmp); errno = err; return luaL_fileresult(L, 0, path); }
    rc = link(tmp, path);
    err = errno;
    unlink(tmp);
    if (rc == 0) { lua_pushboolean(L, 1); return 1; }
    if (err == EEXIST) { lua_pushboolean(L, 0); return 1; }
    errno = err;
    return luaL_fileresult(L, 0, path);
}

/* link(existing, path) -> true | false (path exists) | nil, err, errno: a new name for an
 * existing file (a hard link), made atomically or not at all, and no new file: the local
 * backend's claim of a job is a link to its slot's record, which costs no inode. */
static int fs_link(lua_State *L) {
    const char *from = luaL_checkstring(L, 1);
    const char *to = luaL_checkstring(L, 2);
    if (link(from, to) == 0) { lua_pushboolean(L, 1); return 1; }
    if (errno == EEXIST) { lua_pushboolean(L, 0); return 1; }
    return luaL_fileresult(L, 0, to);
}

/* append(path, data): one O_APPEND write, for logs written by several processes. */
static int fs_append(lua_State *L) {
    const char *path = luaL_checkstring(L, 1);
    size_t len;
    const char *data = luaL_checklstring(L, 2, &len);
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) return luaL_fileresult(L, 0, path);
    int rc = jobrun_write_all(fd, data, len);
    int err = errno;
    close(fd);
    if (rc != 0) { errno = err; return luaL_fileresult(L, 0, path); }
    lua_pushboolean(L, 1);
    return 1;
}

/* write_in_place(path, data) -> true | nil, err, errno: data over the start of an existing
 * file, which is neither created, truncated nor replaced. Within the file's size it needs no
 * new block, so it works on a full disk: the last resort for a record that must get out. */
static int fs_write_in_place(lua_State *L) {
    const char *path = luaL_checkstring(L, 1);
    size_t len;
    const char *data = luaL_checklstring(L, 2, &len);
    int pushed;
    int fd = open_record(L, path, O_WRONLY, &pushed); /* a record: never through a link */
    if (fd < 0) return pushed;
    size_t done = 0;
    while (done < len) {
        ssize_t n = pwrite(fd, data + done, len - done, (off_t)done);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) break;
        done += (size_t)n;
    }
    int ok = done == len, err = errno;
    if (close(fd) != 0 && ok) ok = 0, err = errno; /* NFS reports a failed write at close */
    errno = err;
    return luaL_fileresult(L, ok, path);
}

/* strerror(errno) -> the system's message for an error number. */
static int fs_strerror(lua_State *L) {
    lua_pushstring(L, strerror((int)luaL_checkinteger(L, 1)));
    return 1;
}

static int fs_mkdir_p(lua_State *L) {
    const char *path = luaL_checkstring(L, 1);
    mode_t mode = (mode_t)luaL_optinteger(L, 2, 0755);
    char buf[PATH_MAX];
    if ((size_t)snprintf(buf, sizeof buf, "%s", path) >= sizeof buf) {
        errno = ENAMETOOLONG;
        return luaL_fileresult(L, 0, path);
    }
    for (char *p = buf + 1; ; p++) {
        if (*p == '/' || *p == '\0') {
            char saved = *p;
            *p = '\0';
            if (mkdir(buf, mode) != 0 && errno != EEXIST) return luaL_fileresult(L, 0, buf);
            *p = saved;
            if (saved == '\0') break;
        }
    }
    struct stat st;
    if (stat(path, &st) != 0) return luaL_fileresult(L, 0, path);
    if (!S_ISDIR(st.st_mode)) { errno = ENOTDIR; return luaL_fileresult(L, 0, path); }
    lua_pushboolean(L, 1);
    return 1;
}

static int fs_stat(lua_State *L) {
    const char *path = luaL_checkstring(L, 1);
    struct stat st;
    if (lstat(path, &st) != 0) return luaL_fileresult(L, 0, path);
    lua_createtable(L, 0, 7);
    const char *type = S_ISREG(st.st_mode) ? "file" : S_ISDIR(st.st_mode) ? "directory"
                     : S_ISLNK(st.st_mode) ? "link" : "other";
    lua_pushstring(L, type);
    lua_setfield(L, -2, "type");
    lua_pushinteger(L, (lua_Integer)st.st_size);
    lua_setfield(L, -2, "size");
    lua_pushnumber(L, (lua_Number)st.st_mtim.tv_sec + st.st_mtim.tv_nsec / 1e9);
    lua_setfield(L, -2, "mtime");
    lua_pushinteger(L, (lua_Integer)(st.st_mode & 07777));
    lua_setfield(L, -2, "mode");
    /* Who owns it, and where it is: enough to tell another user's file, or a mount point. */
    lua_pushinteger(L, (lua_Integer)st.st_uid);
    lua_setfield(L, -2, "uid");
    lua_pushinteger(L, (lua_Integer)st.st_dev);
    lua_setfield(L, -2, "dev");
    lua_pushinteger(L, (lua_Integer)st.st_ino);
    lua_setfield(L, -2, "ino");
    return 1;
}

/* geteuid() -> the user jobrun runs as. */
static int fs_geteuid(lua_State *L) {
    lua_pushinteger(L, (lua_Integer)geteuid());
    return 1;
}

static int fs_list(lua_State *L) {
    const char *path = luaL_checkstring(L, 1);
    DIR *dir = opendir(path);
    if (!dir) return luaL_fileresult(L, 0, path);
    lua_newtable(L);
    int i = 0;
    struct dirent *entry;
    while ((entry = readdir(dir)) != NULL) {
        if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0) continue;
        lua_pushstring(L, entry->d_name);
        lua_rawseti(L, -2, ++i);
    }
    closedir(dir);
    return 1;
}

static int fs_realpath(lua_State *L) {
    const char *path = luaL_checkstring(L, 1);
    char buf[PATH_MAX];
    if (!realpath(path, buf)) return luaL_fileresult(L, 0, path);
    lua_pushstring(L, buf);
    return 1;
}

static int fs_getcwd(lua_State *L) {
    char buf[PATH_MAX];
    if (!getcwd(buf, sizeof buf)) return luaL_fileresult(L, 0, "getcwd");
    lua_pushstring(L, buf);
    return 1;
}

static int fs_remove(lua_State *L) {
    const char *path = luaL_checkstring(L, 1);
    if (unlink(path) != 0 && !(errno == EISDIR && rmdir(path) == 0)) return luaL_fileresult(L, 0, path);
    lua_pushboolean(L, 1);
    return 1;
}

/* symlink(target, path) -> true | nil, err. An existing path is replaced (a symlink made anew
 * beside it, then renamed over it), so that a file written through it always lands in target. */
static int fs_symlink(lua_State *L) {
    const char *target = luaL_checkstring(L, 1);
    const char *path = luaL_checkstring(L, 2);
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof tmp, "%s.%ld.lnk", path, (long)getpid()) >= (int)sizeof tmp) {
        errno = ENAMETOOLONG;
        return luaL_fileresult(L, 0, path);
    }
    unlink(tmp);
    if (symlink(target, tmp) != 0) return luaL_fileresult(L, 0, path);
    if (rename(tmp, path) != 0) {
        int saved = errno;
        unlink(tmp);
        errno = saved;
        return luaL_fileresult(L, 0, path);
    }
    lua_pushboolean(L, 1);
    return 1;
}

/* Lock handles, after liolib's file handles: a metatable with __gc, __close, __tostring. */
typedef struct {
    int fd; /* -1 once released */
    char path[PATH_MAX];
} LockHandle;

static LockHandle *check_lock(lua_State *L) {
    return (LockHandle *)luaL_checkudata(L, 1, LOCK_HANDLE);
}

/* lock(path [, shared [, nowait]]) -> handle | nil, err. Blocks unless nowait. */
static int fs_lock(lua_State *L) {
    const char *path = luaL_checkstring(L, 1);
    int shared = lua_toboolean(L, 2);
    int nowait = lua_toboolean(L, 3);
    LockHandle *h = (LockHandle *)lua_newuserdatauv(L, sizeof *h, 0);
    h->fd = -1;
    snprintf(h->path, sizeof h->path, "%s", path);
    luaL_setmetatable(L, LOCK_HANDLE);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return luaL_fileresult(L, 0, path);
    int op = (shared ? LOCK_SH : LOCK_EX) | (nowait ? LOCK_NB : 0);
    while (flock(fd, op) != 0) {
        if (errno == EINTR) continue;
        int err = errno;
        close(fd);
        errno = err;
        return luaL_fileresult(L, 0, path);
    }
    h->fd = fd;
    return 1;
}

static int lock_release(lua_State *L) {
    LockHandle *h = check_lock(L);
    if (h->fd >= 0) {
        close(h->fd); /* closing drops the flock */
        h->fd = -1;
    }
    return 0;
}

static int lock_tostring(lua_State *L) {
    LockHandle *h = check_lock(L);
    lua_pushfstring(L, "lock (%s%s)", h->path, h->fd < 0 ? ", released" : "");
    return 1;
}

static const luaL_Reg lock_methods[] = {
    {"release", lock_release},
    {NULL, NULL},
};

static const luaL_Reg lock_meta[] = {
    {"__gc", lock_release},
    {"__close", lock_release},
    {"__tostring", lock_tostring},
    {NULL, NULL},
};

/* Watch handles: an inotify descriptor on one directory, told of files created, written or
 * moved into it (an atomic write's rename), so a process can wait for another's results without polling. */
typedef struct {
    int fd; /* -1 once closed */
    char path[PATH_MAX];
} WatchHandle;

static WatchHandle *check_watch(lua_State *L) {
    return (WatchHandle *)luaL_checkudata(L, 1, WATCH_HANDLE);
}

/* watch(dir [, modify]) -> handle | nil, err */
static int fs_watch(lua_State *L) {
    const char *path = luaL_checkstring(L, 1);
    WatchHandle *w = (WatchHandle *)lua_newuserdatauv(L, sizeof *w, 0);
    w->fd = -1;
    snprintf(w->path, sizeof w->path, "%s", path);
    luaL_setmetatable(L, WATCH_HANDLE);
    int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (fd < 0) return luaL_fileresult(L, 0, "inotify");
    /* watch(dir, true): appends too (a log followed as it grows). */
    uint32_t mask = IN_CREATE | IN_MOVED_TO | IN_CLOSE_WRITE | IN_ONLYDIR | (lua_toboolean(L, 2) ? IN_MODIFY : 0);
    if (inotify_add_watch(fd, path, mask) < 0) {
        int err = errno;
        close(fd);
        errno = err;
        return luaL_fileresult(L, 0, path);
    }
    w->fd = fd;
    return 1;
}

/* handle:fd() -> the descriptor, for process.poll. */
static int watch_fd(lua_State *L) {
    WatchHandle *w = check_watch(L);
    luaL_argcheck(L, w->fd >= 0, 1, "watch is closed");
    lua_pushinteger(L, w->fd);
    return 1;
}

/* handle:read() -> list of the names created or moved in since the last read ({} if none);
 * { overflow = true } when the kernel dropped events (look at everything again). */
static int watch_read(lua_State *L) {
    WatchHandle *w = check_watch(L);
    luaL_argcheck(L, w->fd >= 0, 1, "watch is closed");
    lua_newtable(L);
    lua_Integer n = 0;
    char buf[16384] __attribute__((aligned(__alignof__(struct inotify_event))));
    for (;;) {
        ssize_t len = read(w->fd, buf, sizeof buf);
        if (len < 0 && errno == EINTR) continue;
        if (len <= 0) break;
        for (char *p = buf; p < buf + len;) {
            const struct inotify_event *ev = (const struct inotify_event *)p;
            if (ev->mask & IN_Q_OVERFLOW) {
                lua_pushboolean(L, 1);
                lua_setfield(L, -2, "overflow");
            } else if (ev->len > 0) {
                lua_pushstring(L, ev->name);
                lua_rawseti(L, -2, ++n);
            }
            p += sizeof *ev + ev->len;
        }
    }
    return 1;
}

static int watch_close(lua_State *L) {
    WatchHandle *w = check_watch(L);
    if (w->fd >= 0) {
        close(w->fd);
        w->fd = -1;
    }
    return 0;
}

static int watch_tostring(lua_State *L) {
    WatchHandle *w = check_watch(L);
    lua_pushfstring(L, "watch (%s%s)", w->path, w->fd < 0 ? ", closed" : "");
    return 1;
}

static const luaL_Reg watch_methods[] = {
    {"fd", watch_fd},
    {"read", watch_read},
    {"close", watch_close},
    {NULL, NULL},
};

static const luaL_Reg watch_meta[] = {
    {"__gc", watch_close},
    {"__close", watch_close},
    {"__tostring", watch_tostring},
    {NULL, NULL},
};

static const luaL_Reg fs_functions[] = {
    {"watch", fs_watch},
    {"read", fs_read},
    {"read_tail", fs_read_tail},
    {"read_record", fs_read_record},
    {"append_record", fs_append_record},
    {"write_atomic", fs_write_atomic},
    {"append", fs_append},
    {"write_exclusive", fs_write_exclusive},
    {"link", fs_link},
    {"write_in_place", fs_write_in_place},
    {"strerror", fs_strerror},
    {"mkdir_p", fs_mkdir_p},
    {"stat", fs_stat},
    {"geteuid", fs_geteuid},
    {"list", fs_list},
    {"realpath", fs_realpath},
    {"getcwd", fs_getcwd},
    {"remove", fs_remove},
    {"symlink", fs_symlink},
    {"lock", fs_lock},
    {NULL, NULL},
};

int luaopen_jobrun_fs(lua_State *L) {
    jobrun_class(L, LOCK_HANDLE, lock_meta, lock_methods);
    jobrun_class(L, WATCH_HANDLE, watch_meta, watch_methods);
    luaL_newlib(L, fs_functions);
    lua_pushinteger(L, RECORD_MAX);
    lua_setfield(L, -2, "RECORD_MAX");
    return 1;
}
