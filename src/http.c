/* HTTP primitives over libcurl: one client holds a curl multi handle, whose connection cache
 * keeps connections to the API server open between calls, and performs any number of requests
 * concurrently. What the requests mean (SkyPilot's protocol, retries) lives in Lua.
 *
 *   http.client([{ connect_timeout = s, cookie_file = path }]) -> Client
 *   client:perform({ {method, url, headers = {"K: v"…}, body, timeout = s}, … })
 *     -> { {status, headers = {lower-case name = value}, body, connects} | {error = message}, … }
 *     (connects: new connections the request opened, 0 when it reused one)
 *   client:close(); __gc, __close, __tostring */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

/* Plain prototypes: the type-checking macros would hide the functions behind macros. */
#define CURL_DISABLE_TYPECHECK
#include <curl/curl.h>
#include <lauxlib.h>
#include <lua.h>

#include "dl.h"
#include "host.h"

/* libcurl is loaded on first use (src/dl.h). */
#define CURL_FUNCS(X) \
    X(curl_easy_cleanup) \
    X(curl_easy_getinfo) \
    X(curl_easy_init) \
    X(curl_easy_setopt) \
    X(curl_easy_strerror) \
    X(curl_global_init) \
    X(curl_multi_add_handle) \
    X(curl_multi_cleanup) \
    X(curl_multi_info_read) \
    X(curl_multi_init) \
    X(curl_multi_perform) \
    X(curl_multi_poll) \
    X(curl_multi_remove_handle) \
    X(curl_multi_setopt) \
    X(curl_slist_append) \
    X(curl_slist_free_all)
JOBRUN_DL_DECLARE(CURL_FUNCS)
JOBRUN_DL_LIB(CURL_FUNCS, libcurl, JOBRUN_CURL_SONAME)

#define CLIENT_HANDLE "jobrun.http.client"
#define MAX_REQUESTS 1024

typedef struct {
    CURLM *multi; /* NULL once closed */
    long connect_timeout_ms;
    char *cookie_file;
} Client;

typedef struct {
    char *data;
    size_t len, cap;
} Buffer;

typedef struct {
    CURL *easy;
    struct curl_slist *headers;
    Buffer body, head;
    char error[CURL_ERROR_SIZE];
    CURLcode result;
    int done;
} Transfer;

static int buffer_add(Buffer *b, const char *p, size_t n) {
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 4096;
        while (cap < b->len + n + 1) cap *= 2;
        char *grown = realloc(b->data, cap);
        if (!grown) return -1;
        b->data = grown;
        b->cap = cap;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

static size_t on_body(char *p, size_t size, size_t n, void *userdata) {
    return buffer_add(&((Transfer *)userdata)->body, p, size * n) == 0 ? size * n : 0;
}

/* Header lines of the final response only: a new status line (after a 100 Continue or a
 * redirect) starts over. */
static size_t on_header(char *p, size_t size, size_t n, void *userdata) {
    Transfer *t = (Transfer *)userdata;
    if (size * n >= 5 && strncmp(p, "HTTP/", 5) == 0) t->head.len = 0;
    return buffer_add(&t->head, p, size * n) == 0 ? size * n : 0;
}

static Client *check_client(lua_State *L) {
    Client *c = (Client *)luaL_checkudata(L, 1, CLIENT_HANDLE);
    if (!c->multi) luaL_error(L, "attempt to use a closed http client");
    return c;
}

static const char *field_string(lua_State *L, int t, const char *key) {
    lua_getfield(L, t, key);
    const char *s = lua_tostring(L, -1);
    lua_pop(L, 1); /* the request table keeps the string alive */
    return s;
}

static int setup(Client *c, Transfer *t, lua_State *L, int req) {
    const char *method = field_string(L, req, "method");
    const char *url = field_string(L, req, "url");
    t->easy = p_curl_easy_init();
    if (!t->easy) return -1;
    p_curl_easy_setopt(t->easy, CURLOPT_URL, url);
    p_curl_easy_setopt(t->easy, CURLOPT_PRIVATE, t);
    p_curl_easy_setopt(t->easy, CURLOPT_ERRORBUFFER, t->error);
    p_curl_easy_setopt(t->easy, CURLOPT_WRITEFUNCTION, on_body);
    p_curl_easy_setopt(t->easy, CURLOPT_WRITEDATA, t);
    p_curl_easy_setopt(t->easy, CURLOPT_HEADERFUNCTION, on_header);
    p_curl_easy_setopt(t->easy, CURLOPT_HEADERDATA, t);
    p_curl_easy_setopt(t->easy, CURLOPT_NOSIGNAL, 1L);
    p_curl_easy_setopt(t->easy, CURLOPT_CONNECTTIMEOUT_MS, c->connect_timeout_ms);
    p_curl_easy_setopt(t->easy, CURLOPT_ACCEPT_ENCODING, "");
    lua_getfield(L, req, "timeout");
    if (lua_isnumber(L, -1)) p_curl_easy_setopt(t->easy, CURLOPT_TIMEOUT_MS, (long)(lua_tonumber(L, -1) * 1000));
    lua_pop(L, 1);
    if (c->cookie_file) {
        p_curl_easy_setopt(t->easy, CURLOPT_COOKIEFILE, c->cookie_file);
        p_curl_easy_setopt(t->easy, CURLOPT_COOKIEJAR, c->cookie_file);
    }
    size_t body_len = 0;
    lua_getfield(L, req, "body");
    const char *body = lua_tolstring(L, -1, &body_len);
    lua_pop(L, 1);
    if (method && strcmp(method, "POST") == 0) {
        p_curl_easy_setopt(t->easy, CURLOPT_POST, 1L);
        p_curl_easy_setopt(t->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(body ? body_len : 0));
        p_curl_easy_setopt(t->easy, CURLOPT_COPYPOSTFIELDS, body ? body : "");
    } else if (method && strcmp(method, "GET") != 0) {
        p_curl_easy_setopt(t->easy, CURLOPT_CUSTOMREQUEST, method);
    }
    if (lua_getfield(L, req, "headers") == LUA_TTABLE) {
        lua_Integer n = luaL_len(L, -1);
        for (lua_Integer i = 1; i <= n; i++) {
            lua_geti(L, -1, i);
            const char *h = lua_tostring(L, -1);
            if (h) {
                struct curl_slist *more = p_curl_slist_append(t->headers, h);
                if (more) t->headers = more;
            }
            lua_pop(L, 1);
        }
    }
    lua_pop(L, 1);
    /* No "Expect: 100-continue" round trip for bodies. */
    struct curl_slist *more = p_curl_slist_append(t->headers, "Expect:");
    if (more) t->headers = more;
    p_curl_easy_setopt(t->easy, CURLOPT_HTTPHEADER, t->headers);
    return 0;
}

static void push_headers(lua_State *L, const Buffer *head) {
    lua_newtable(L);
    const char *p = head->data ? head->data : "";
    while (*p) {
        const char *eol = strstr(p, "\r\n");
        size_t len = eol ? (size_t)(eol - p) : strlen(p);
        const char *colon = memchr(p, ':', len);
        if (colon) {
            luaL_Buffer name;
            luaL_buffinit(L, &name);
            for (const char *q = p; q < colon; q++) luaL_addchar(&name, (char)tolower((unsigned char)*q));
            luaL_pushresult(&name);
            const char *v = colon + 1;
            while (v < p + len && (*v == ' ' || *v == '\t')) v++;
            lua_pushlstring(L, v, (size_t)(p + len - v));
            lua_settable(L, -3);
        }
        p += len;
        if (eol) p += 2;
    }
}

static void cleanup(Client *c, Transfer *ts, int n) {
    for (int i = 0; i < n; i++) {
        if (ts[i].easy) {
            p_curl_multi_remove_handle(c->multi, ts[i].easy);
            p_curl_easy_cleanup(ts[i].easy);
        }
        p_curl_slist_free_all(ts[i].headers);
        free(ts[i].body.data);
        free(ts[i].head.data);
    }
    free(ts);
}

static int client_perform(lua_State *L) {
    Client *c = check_client(L);
    luaL_checktype(L, 2, LUA_TTABLE);
    int n = (int)luaL_len(L, 2);
    luaL_argcheck(L, n <= MAX_REQUESTS, 2, "too many requests at once");
    for (int i = 0; i < n; i++) { /* checked first: an error after allocating would leak */
        if (lua_geti(L, 2, i + 1) != LUA_TTABLE) luaL_argerror(L, 2, "requests must be tables");
        if (lua_getfield(L, -1, "url") != LUA_TSTRING) luaL_argerror(L, 2, "every request needs a url");
        lua_pop(L, 2);
    }
    Transfer *ts = calloc((size_t)(n > 0 ? n : 1), sizeof *ts);
    if (!ts) return luaL_error(L, "out of memory");
    for (int i = 0; i < n; i++) {
        lua_geti(L, 2, i + 1);
        if (setup(c, &ts[i], L, lua_gettop(L)) != 0) { cleanup(c, ts, n); return luaL_error(L, "curl_easy_init failed"); }
        lua_pop(L, 1);
        p_curl_multi_add_handle(c->multi, ts[i].easy);
    }
    int running = n;
    while (running > 0) {
        CURLMcode mc = p_curl_multi_perform(c->multi, &running);
        if (mc != CURLM_OK) break;
        CURLMsg *msg;
        int left;
        while ((msg = p_curl_multi_info_read(c->multi, &left)) != NULL) {
            if (msg->msg != CURLMSG_DONE) continue;
            Transfer *t = NULL;
            p_curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&t);
            if (t) { t->result = msg->data.result; t->done = 1; }
        }
        if (running > 0 && p_curl_multi_poll(c->multi, NULL, 0, 1000, NULL) != CURLM_OK) break;
    }
    lua_createtable(L, n, 0);
    for (int i = 0; i < n; i++) {
        Transfer *t = &ts[i];
        lua_createtable(L, 0, 3);
        if (!t->done || t->result != CURLE_OK) {
            const char *why = t->error[0] ? t->error : p_curl_easy_strerror(t->done ? t->result : CURLE_ABORTED_BY_CALLBACK);
            lua_pushstring(L, why);
            lua_setfield(L, -2, "error");
        } else {
            long status = 0;
            p_curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
            lua_pushinteger(L, status);
            lua_setfield(L, -2, "status");
            long connects = 0; /* new connections this transfer opened: 0 when one was reused */
            p_curl_easy_getinfo(t->easy, CURLINFO_NUM_CONNECTS, &connects);
            lua_pushinteger(L, connects);
            lua_setfield(L, -2, "connects");
            push_headers(L, &t->head);
            lua_setfield(L, -2, "headers");
            lua_pushlstring(L, t->body.data ? t->body.data : "", t->body.len);
            lua_setfield(L, -2, "body");
        }
        lua_rawseti(L, -2, i + 1);
    }
    cleanup(c, ts, n);
    return 1;
}

static int client_close(lua_State *L) {
    Client *c = (Client *)luaL_checkudata(L, 1, CLIENT_HANDLE);
    if (c->multi) {
        p_curl_multi_cleanup(c->multi);
        c->multi = NULL;
    }
    free(c->cookie_file);
    c->cookie_file = NULL;
    return 0;
}

static int client_tostring(lua_State *L) {
    Client *c = (Client *)luaL_checkudata(L, 1, CLIENT_HANDLE);
    lua_pushstring(L, c->multi ? "http client" : "http client (closed)");
    return 1;
}

static int http_client(lua_State *L) {
    const char *why = jobrun_dl_load(&libcurl);
    if (why) return luaL_error(L, "libcurl is not available (%s)", why);
    static int initialised;
    if (!initialised) { p_curl_global_init(CURL_GLOBAL_DEFAULT); initialised = 1; }
    Client *c = (Client *)lua_newuserdatauv(L, sizeof *c, 0);
    memset(c, 0, sizeof *c);
    luaL_setmetatable(L, CLIENT_HANDLE);
    c->connect_timeout_ms = 5000;
    if (lua_istable(L, 1)) {
        lua_getfield(L, 1, "connect_timeout");
        if (lua_isnumber(L, -1)) c->connect_timeout_ms = (long)(lua_tonumber(L, -1) * 1000);
        lua_pop(L, 1);
        lua_getfield(L, 1, "cookie_file");
        const char *cookies = lua_tostring(L, -1);
        if (cookies) c->cookie_file = strdup(cookies);
        lua_pop(L, 1);
    }
    c->multi = p_curl_multi_init();
    if (!c->multi) return luaL_error(L, "curl_multi_init failed");
    p_curl_multi_setopt(c->multi, CURLMOPT_MAXCONNECTS, 16L);
    return 1;
}

static const luaL_Reg client_methods[] = {
    {"perform", client_perform},
    {"close", client_close},
    {NULL, NULL},
};

static const luaL_Reg client_meta[] = {
    {"__gc", client_close},
    {"__close", client_close},
    {"__tostring", client_tostring},
    {NULL, NULL},
};

static const luaL_Reg http_functions[] = {
    {"client", http_client},
    {NULL, NULL},
};

int luaopen_jobrun_http(lua_State *L) {
    jobrun_class(L, CLIENT_HANDLE, client_meta, client_methods);
    luaL_newlib(L, http_functions);
    return 1;
}
