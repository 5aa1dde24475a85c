/* The I/O loops every primitive family needs: whole writes and whole positioned reads, through
 * EINTR and short transfers, and the read of a file's last bytes (fs.read_tail, scan.tail). */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "host.h"

int jobrun_write_all(int fd, const char *data, size_t len) {
    while (len > 0) {
        ssize_t n = write(fd, data, len);
        if (n < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

size_t jobrun_pread_all(int fd, char *buf, size_t want, off_t at) {
    size_t got = 0;
    while (got < want) {
        ssize_t n = pread(fd, buf + got, want - got, at + (off_t)got);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        got += (size_t)n;
    }
    return got;
}

int jobrun_read_tail(lua_State *L, luaL_Buffer *b, JobrunTail *t) {
    const char *path = luaL_checkstring(L, 1);
    lua_Integer max = luaL_checkinteger(L, 2);
    luaL_argcheck(L, max >= 0, 2, "negative size");
    t->fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (t->fd < 0 || fstat(t->fd, &st) != 0) {
        int e = errno;
        if (t->fd >= 0) close(t->fd);
        errno = e;
        return luaL_fileresult(L, 0, path);
    }
    t->start = st.st_size > max ? st.st_size - (off_t)max : 0;
    size_t want = (size_t)(st.st_size - t->start);
    t->p = luaL_buffinitsize(L, b, want);
    t->got = jobrun_pread_all(t->fd, t->p, want, t->start);
    return 0;
}
