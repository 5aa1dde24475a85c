/* An HTTP server over GNU libmicrohttpd, driven by the caller's event loop: the daemon has no
 * thread of its own (MHD_USE_EPOLL), so every request is answered inside server:run(), on the
 * Lua thread, by a Lua handler. What the server serves (routes, pages, security) lives in Lua.
 *
 *   serve.listen({ bind = "127.0.0.1", port = 8765, timeout = s, limit = n }) -> Server | nil, err
 *   server:fd()          the descriptor to poll (MHD's epoll set: sockets, and resumed streams)
 *   server:port()        the port bound (port 0 picks a free one)
 *   server:timeout()     seconds until MHD must run again (idle connections to time out), or nil
 *   server:run(handler)  answer what is ready; handler(request) -> status, headers, body
 *                        request: { method, path, query = {}, headers = {lower-case = v},
 *                                   cookies = {}, body, remote }
 *                        body: a string, or a Stream (an open-ended response: server-sent events)
 *   server:stream()      -> Stream; stream:send(data) -> false once the client is gone (or too slow),
 *                        stream:close(), stream:alive()
 *   server:close(); __gc, __close, __tostring on both
 *
 * A stream's content reader suspends its connection when it has nothing to send (the pattern
 * microhttpd.h prescribes for "no data yet"), and send() resumes it: no connection is polled
 * while it waits. */
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <lauxlib.h>
#include <lua.h>

#include "dl.h"
#include "host.h"

#define MHD_FUNCS(X) \
    X(MHD_start_daemon) \
    X(MHD_stop_daemon) \
    X(MHD_run) \
    X(MHD_get_timeout) \
    X(MHD_get_daemon_info) \
    X(MHD_get_connection_values) \
    X(MHD_get_connection_info) \
    X(MHD_create_response_from_buffer) \
    X(MHD_create_response_from_callback) \
    X(MHD_add_response_header) \
    X(MHD_queue_response) \
    X(MHD_destroy_response) \
    X(MHD_suspend_connection) \
    X(MHD_resume_connection)
JOBRUN_DL_DECLARE(MHD_FUNCS)
JOBRUN_DL_LIB(MHD_FUNCS, libmhd, JOBRUN_MHD_SONAME)

#define SERVER_HANDLE "jobrun.serve.server"
#define STREAM_HANDLE_NAME "jobrun.serve.stream"
/* A request body larger than this is refused (413): the API's POSTs carry a token at most. */
#define MAX_BODY (64 * 1024)
/* A stream whose client reads slower than events come is dropped past this much backlog. */
#define MAX_BACKLOG (1024 * 1024)

typedef struct {
    struct MHD_Daemon *daemon; /* NULL once closed */
    lua_State *L;              /* the state inside run(), for the callbacks */
    int handler;               /* stack index of run()'s handler while it runs */
    int port;
} Server;

/* A stream's state, shared by its Lua userdata and MHD's response: freed when both let go. */
typedef struct {
    char *buf;
    size_t len, cap;
    struct MHD_Connection *conn; /* set once queued; NULL once MHD freed the response */
    int suspended, closed, mhd_gone, refs;
} StreamCore;

typedef struct {
    StreamCore *core; /* NULL once released */
} StreamHandle;

typedef struct {
    char *body;
    size_t len;
    int too_large;
} Request;

static void core_release(StreamCore *c) {
    if (--c->refs == 0) {
        free(c->buf);
        free(c);
    }
}

static void core_wake(StreamCore *c) {
    if (c->suspended && c->conn && !c->mhd_gone) {
        c->suspended = 0;
        p_MHD_resume_connection(c->conn);
    }
}

static ssize_t stream_reader(void *cls, uint64_t pos, char *buf, size_t max) {
    (void)pos;
    StreamCore *c = (StreamCore *)cls;
    if (c->len > 0) {
        size_t n = c->len < max ? c->len : max;
        memcpy(buf, c->buf, n);
        memmove(c->buf, c->buf + n, c->len - n);
        c->len -= n;
        return (ssize_t)n;
    }
    if (c->closed) return MHD_CONTENT_READER_END_OF_STREAM;
    c->suspended = 1;
    p_MHD_suspend_connection(c->conn);
    return 0;
}

static void stream_freed(void *cls) {
    StreamCore *c = (StreamCore *)cls;
    c->mhd_gone = 1;
    c->conn = NULL;
    core_release(c);
}

/* ---- requests ---- */

static enum MHD_Result add_value(void *cls, enum MHD_ValueKind kind, const char *key, const char *value) {
    (void)kind;
    lua_State *L = (lua_State *)cls;
    if (!key) return MHD_YES;
    /* Header names are case-insensitive: lower-case them, as the Lua side expects. */
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (const char *p = key; *p; p++) luaL_addchar(&b, (char)((*p >= 'A' && *p <= 'Z') ? *p + 32 : *p));
    luaL_pushresult(&b);
    lua_pushstring(L, value ? value : "");
    lua_settable(L, -3);
    return MHD_YES;
}

static enum MHD_Result add_value_asis(void *cls, enum MHD_ValueKind kind, const char *key, const char *value) {
    (void)kind;
    lua_State *L = (lua_State *)cls;
    if (!key) return MHD_YES;
    lua_pushstring(L, value ? value : "");
    lua_setfield(L, -2, key);
    return MHD_YES;
}

static void push_values(lua_State *L, struct MHD_Connection *c, enum MHD_ValueKind kind, const char *field,
                        MHD_KeyValueIterator it) {
    lua_newtable(L);
    p_MHD_get_connection_values(c, kind, it, L);
    lua_setfield(L, -2, field);
}

static enum MHD_Result reply_text(struct MHD_Connection *c, unsigned status, const char *text) {
    struct MHD_Response *r = p_MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_MUST_COPY);
    if (!r) return MHD_NO;
    p_MHD_add_response_header(r, "Content-Type", "text/plain; charset=utf-8");
    enum MHD_Result ok = p_MHD_queue_response(c, status, r);
    p_MHD_destroy_response(r);
    return ok;
}

/* handle(L, server, connection, method, path, request) -> the MHD result of answering it. */
static enum MHD_Result handle(Server *s, struct MHD_Connection *c, const char *method, const char *url, Request *req) {
    lua_State *L = s->L;
    if (!L) return MHD_NO;
    int top = lua_gettop(L);
    lua_pushvalue(L, s->handler);
    lua_createtable(L, 0, 8);
    lua_pushstring(L, method);
    lua_setfield(L, -2, "method");
    lua_pushstring(L, url);
    lua_setfield(L, -2, "path");
    push_values(L, c, MHD_GET_ARGUMENT_KIND, "query", add_value_asis);
    push_values(L, c, MHD_HEADER_KIND, "headers", add_value);
    push_values(L, c, MHD_COOKIE_KIND, "cookies", add_value_asis);
    lua_pushlstring(L, req->body ? req->body : "", req->len);
    lua_setfield(L, -2, "body");
    lua_pushboolean(L, req->too_large);
    lua_setfield(L, -2, "too_large");
    const union MHD_ConnectionInfo *ci = p_MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (ci && ci->client_addr) {
        char host[INET6_ADDRSTRLEN] = "";
        const struct sockaddr *sa = ci->client_addr;
        if (sa->sa_family == AF_INET)
            inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, host, sizeof host);
        else if (sa->sa_family == AF_INET6)
            inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, host, sizeof host);
        lua_pushstring(L, host);
        lua_setfield(L, -2, "remote");
    }
    if (lua_pcall(L, 1, 3, 0) != LUA_OK) {
        /* The handler is expected to catch its own errors; this is the last line of defence. */
        fprintf(stderr, "jobrun serve: %s\n", lua_tostring(L, -1));
        lua_settop(L, top);
        return reply_text(c, 500, "internal error\n");
    }
    unsigned status = (unsigned)luaL_optinteger(L, top + 1, 200);
    struct MHD_Response *r = NULL;
    StreamHandle *sh = (StreamHandle *)luaL_testudata(L, top + 3, STREAM_HANDLE_NAME);
    if (sh && sh->core) {
        r = p_MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, stream_reader, sh->core, stream_freed);
        if (r) {
            sh->core->refs++;
            sh->core->conn = c;
        }
    } else {
        size_t len = 0;
        const char *body = lua_tolstring(L, top + 3, &len);
        r = p_MHD_create_response_from_buffer(len, (void *)(body ? body : ""), MHD_RESPMEM_MUST_COPY);
    }
    if (!r) {
        lua_settop(L, top);
        return MHD_NO;
    }
    if (lua_istable(L, top + 2)) {
        lua_pushnil(L);
        while (lua_next(L, top + 2)) {
            const char *k = lua_tostring(L, -2), *v = lua_tostring(L, -1);
            if (k && v) p_MHD_add_response_header(r, k, v);
            lua_pop(L, 1);
        }
    }
    enum MHD_Result ok = p_MHD_queue_response(c, status, r);
    p_MHD_destroy_response(r);
    lua_settop(L, top);
    return ok;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload, size_t *upload_size, void **ctx) {
    (void)version;
    Server *s = (Server *)cls;
    Request *req = (Request *)*ctx;
    if (!req) {
        req = (Request *)calloc(1, sizeof *req);
        if (!req) return MHD_NO;
        *ctx = req;
        return MHD_YES;
    }
    if (*upload_size) {
        if (!req->too_large) {
            if (req->len + *upload_size > MAX_BODY) {
                req->too_large = 1;
            } else {
                char *grown = (char *)realloc(req->body, req->len + *upload_size);
                if (!grown) return MHD_NO;
                req->body = grown;
                memcpy(req->body + req->len, upload, *upload_size);
                req->len += *upload_size;
            }
        }
        *upload_size = 0;
        return MHD_YES;
    }
    return handle(s, c, method, url, req);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **ctx, enum MHD_RequestTerminationCode why) {
    (void)cls, (void)c, (void)why;
    Request *req = (Request *)*ctx;
    if (req) {
        free(req->body);
        free(req);
        *ctx = NULL;
    }
}

/* ---- the server ---- */

static Server *check_server(lua_State *L) {
    Server *s = (Server *)luaL_checkudata(L, 1, SERVER_HANDLE);
    if (!s->daemon) luaL_error(L, "attempt to use a closed server");
    return s;
}

static int serve_listen(lua_State *L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    const char *why = jobrun_dl_load(&libmhd);
    if (why) {
        lua_pushnil(L);
        lua_pushfstring(L, "cannot load libmicrohttpd (%s): install the Debian package libmicrohttpd12", why);
        return 2;
    }
    lua_getfield(L, 1, "bind");
    const char *bind = luaL_optstring(L, -1, "127.0.0.1");
    lua_getfield(L, 1, "port");
    lua_Integer port = luaL_optinteger(L, -1, 8765);
    lua_getfield(L, 1, "timeout");
    lua_Integer timeout = luaL_optinteger(L, -1, 30);
    lua_getfield(L, 1, "limit");
    lua_Integer limit = luaL_optinteger(L, -1, 1000);
    luaL_argcheck(L, port >= 0 && port <= 65535, 1, "port must be 0-65535");
    struct sockaddr_storage addr;
    memset(&addr, 0, sizeof addr);
    unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME;
    struct sockaddr_in *a4 = (struct sockaddr_in *)&addr;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&addr;
    if (inet_pton(AF_INET, bind, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)port);
    } else if (inet_pton(AF_INET6, bind, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
        flags |= MHD_USE_IPv6;
    } else {
        lua_pushnil(L);
        lua_pushfstring(L, "--bind %s is not an IP address", bind);
        return 2;
    }
    Server *s = (Server *)lua_newuserdatauv(L, sizeof *s, 0);
    memset(s, 0, sizeof *s);
    luaL_setmetatable(L, SERVER_HANDLE);
    s->daemon = p_MHD_start_daemon(flags, (uint16_t)port, NULL, NULL, on_request, s,
                                   MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
                                   MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)timeout,
                                   MHD_OPTION_CONNECTION_LIMIT, (unsigned)limit,
                                   MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
                                   MHD_OPTION_END);
    if (!s->daemon) {
        lua_pushnil(L);
        lua_pushfstring(L, "cannot listen on %s:%d (in use, or not an address of this machine)", bind, (int)port);
        return 2;
    }
    const union MHD_DaemonInfo *info = p_MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info ? (int)info->port : (int)port;
    return 1;
}

static int server_fd(lua_State *L) {
    Server *s = check_server(L);
    const union MHD_DaemonInfo *info = p_MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_EPOLL_FD);
    if (!info) return luaL_error(L, "libmicrohttpd gives no epoll descriptor");
    lua_pushinteger(L, info->epoll_fd);
    return 1;
}

static int server_port(lua_State *L) {
    lua_pushinteger(L, check_server(L)->port);
    return 1;
}

static int server_timeout(lua_State *L) {
    Server *s = check_server(L);
    MHD_UNSIGNED_LONG_LONG ms = 0;
    if (p_MHD_get_timeout(s->daemon, &ms) != MHD_YES) return 0;
    lua_pushnumber(L, (lua_Number)ms / 1000.0);
    return 1;
}

static int server_run(lua_State *L) {
    Server *s = check_server(L);
    luaL_checktype(L, 2, LUA_TFUNCTION);
    s->L = L;
    s->handler = 2;
    enum MHD_Result ok = p_MHD_run(s->daemon);
    s->L = NULL;
    lua_pushboolean(L, ok == MHD_YES);
    return 1;
}

static int server_stream(lua_State *L) {
    check_server(L);
    StreamHandle *h = (StreamHandle *)lua_newuserdatauv(L, sizeof *h, 0);
    h->core = NULL;
    luaL_setmetatable(L, STREAM_HANDLE_NAME);
    StreamCore *c = (StreamCore *)calloc(1, sizeof *c);
    if (!c) return luaL_error(L, "out of memory");
    c->refs = 1;
    h->core = c;
    return 1;
}

static int server_close(lua_State *L) {
    Server *s = (Server *)luaL_checkudata(L, 1, SERVER_HANDLE);
    if (s->daemon) {
        p_MHD_stop_daemon(s->daemon);
        s->daemon = NULL;
    }
    return 0;
}

static int server_tostring(lua_State *L) {
    Server *s = (Server *)luaL_checkudata(L, 1, SERVER_HANDLE);
    if (s->daemon) lua_pushfstring(L, "server (port %d)", s->port);
    else lua_pushliteral(L, "server (closed)");
    return 1;
}

/* ---- streams ---- */

static StreamCore *check_stream(lua_State *L) {
    StreamHandle *h = (StreamHandle *)luaL_checkudata(L, 1, STREAM_HANDLE_NAME);
    return h->core;
}

static int stream_send(lua_State *L) {
    StreamCore *c = check_stream(L);
    size_t n;
    const char *data = luaL_checklstring(L, 2, &n);
    if (!c || c->closed || c->mhd_gone) {
        lua_pushboolean(L, 0);
        return 1;
    }
    if (c->len + n > MAX_BACKLOG) {
        /* A client that does not read: end its stream rather than hold its backlog. */
        c->closed = 1;
        core_wake(c);
        lua_pushboolean(L, 0);
        return 1;
    }
    if (c->len + n > c->cap) {
        size_t cap = c->cap ? c->cap : 4096;
        while (cap < c->len + n) cap *= 2;
        char *grown = (char *)realloc(c->buf, cap);
        if (!grown) return luaL_error(L, "out of memory");
        c->buf = grown;
        c->cap = cap;
    }
    memcpy(c->buf + c->len, data, n);
    c->len += n;
    core_wake(c);
    lua_pushboolean(L, 1);
    return 1;
}

static int stream_alive(lua_State *L) {
    StreamCore *c = check_stream(L);
    lua_pushboolean(L, c && !c->closed && !c->mhd_gone);
    return 1;
}

static int stream_close(lua_State *L) {
    StreamHandle *h = (StreamHandle *)luaL_checkudata(L, 1, STREAM_HANDLE_NAME);
    if (h->core) {
        h->core->closed = 1;
        core_wake(h->core);
        core_release(h->core);
        h->core = NULL;
    }
    return 0;
}

static int stream_tostring(lua_State *L) {
    StreamCore *c = check_stream(L);
    lua_pushstring(L, !c ? "stream (closed)" : c->mhd_gone ? "stream (client gone)" : "stream");
    return 1;
}

static const luaL_Reg server_methods[] = {
    {"fd", server_fd},           {"port", server_port},   {"timeout", server_timeout},
    {"run", server_run},         {"stream", server_stream}, {"close", server_close},
    {NULL, NULL},
};

static const luaL_Reg server_meta[] = {
    {"__gc", server_close}, {"__close", server_close}, {"__tostring", server_tostring}, {"__index", NULL},
    {NULL, NULL},
};

static const luaL_Reg stream_methods[] = {
    {"send", stream_send}, {"alive", stream_alive}, {"close", stream_close}, {NULL, NULL},
};

static const luaL_Reg stream_meta[] = {
    {"__gc", stream_close}, {"__close", stream_close}, {"__tostring", stream_tostring}, {"__index", NULL},
    {NULL, NULL},
};

static const luaL_Reg serve_functions[] = {
    {"listen", serve_listen},
    {NULL, NULL},
};

int luaopen_jobrun_serve(lua_State *L) {
    jobrun_class(L, SERVER_HANDLE, server_meta, server_methods);
    jobrun_class(L, STREAM_HANDLE_NAME, stream_meta, stream_methods);
    luaL_newlib(L, serve_functions);
    return 1;
}
