/* The two I/O loops every primitive family needs: whole writes and whole positioned reads,
 * through EINTR and short transfers. */
#include <errno.h>
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
