/* SQLite primitives: a database handle, statements run whole (prepare, bind, step, finalize)
 * in C, and one statement run over many rows in one call (the history index inserts a run's
 * attempts that way). What the tables mean lives in lua/jobrun/run/history.lua.
 *
 *   sqlite.open(path, [{ readonly = bool, timeout = s, checkpoint_on_close = bool }]) -> Db | nil, message, code
 *       (checkpoint_on_close false: closing the last connection leaves the WAL to the next
 *       automatic checkpoint instead of copying it into the database and syncing there and then)
 *   db:exec(sql) -> true | nil, message, code               (any number of statements, no values)
 *   db:query(sql, [values]) -> rows, names | nil, message, code
 *       rows: { {col1, col2, …}, … } (NULL is nil); values bind ?1, ?2, … (values[i], nil for NULL)
 *   db:insert(sql, rows) -> count | nil, message, code       (the statement once per row of values)
 *   db:changes() -> rows changed by the last INSERT, UPDATE or DELETE
 *   db:close(); __gc, __close, __tostring
 * code names the failure where a caller decides on it: "busy", "locked", "corrupt", "notadb",
 * "readonly", "cantopen", "full", "ioerr", else "error". Values: nil, booleans (0/1), integers,
 * floats and strings (as text). */
#include <string.h>

#include <lauxlib.h>
#include <lua.h>
#include <sqlite3.h>

#include "dl.h"
#include "host.h"

/* libsqlite3 is loaded on first use (src/dl.h): most commands never open the index. */
#define SQLITE_FUNCS(X) \
    X(sqlite3_bind_double) \
    X(sqlite3_bind_int64) \
    X(sqlite3_bind_null) \
    X(sqlite3_bind_parameter_count) \
    X(sqlite3_bind_text) \
    X(sqlite3_busy_timeout) \
    X(sqlite3_changes) \
    X(sqlite3_clear_bindings) \
    X(sqlite3_close_v2) \
    X(sqlite3_column_bytes) \
    X(sqlite3_column_count) \
    X(sqlite3_column_double) \
    X(sqlite3_column_int64) \
    X(sqlite3_column_name) \
    X(sqlite3_column_text) \
    X(sqlite3_column_type) \
    X(sqlite3_db_config) \
    X(sqlite3_errmsg) \
    X(sqlite3_exec) \
    X(sqlite3_extended_errcode) \
    X(sqlite3_finalize) \
    X(sqlite3_free) \
    X(sqlite3_open_v2) \
    X(sqlite3_prepare_v2) \
    X(sqlite3_reset) \
    X(sqlite3_step)
JOBRUN_DL_DECLARE(SQLITE_FUNCS)
JOBRUN_DL_LIB(SQLITE_FUNCS, libsqlite, JOBRUN_SQLITE_SONAME)

#define DB_HANDLE "jobrun.sqlite.db"

typedef struct {
    sqlite3 *db; /* NULL once closed */
} Db;

static const char *code_name(int rc) {
    switch (rc & 0xff) {
    case SQLITE_BUSY: return "busy";
    case SQLITE_LOCKED: return "locked";
    case SQLITE_CORRUPT: return "corrupt";
    case SQLITE_NOTADB: return "notadb";
    case SQLITE_READONLY: return "readonly";
    case SQLITE_CANTOPEN: return "cantopen";
    case SQLITE_FULL: return "full";
    case SQLITE_IOERR: return "ioerr";
    default: return "error";
    }
}

/* nil, message, code: the database's last error. */
static int failure(lua_State *L, sqlite3 *db, int rc) {
    lua_pushnil(L);
    lua_pushstring(L, db ? p_sqlite3_errmsg(db) : "out of memory");
    lua_pushstring(L, code_name(db ? p_sqlite3_extended_errcode(db) : rc));
    return 3;
}

static Db *check_db(lua_State *L) {
    Db *d = (Db *)luaL_checkudata(L, 1, DB_HANDLE);
    if (!d->db) luaL_error(L, "attempt to use a closed database");
    return d;
}

static int sqlite_open(lua_State *L) {
    const char *path = luaL_checkstring(L, 1);
    const char *why = jobrun_dl_load(&libsqlite);
    if (why) return luaL_error(L, "libsqlite3 is not available (%s)", why);
    int readonly = 0, checkpoint_on_close = 1;
    double timeout = 5;
    if (lua_istable(L, 2)) {
        lua_getfield(L, 2, "readonly");
        readonly = lua_toboolean(L, -1);
        lua_getfield(L, 2, "timeout");
        if (lua_isnumber(L, -1)) timeout = lua_tonumber(L, -1);
        lua_getfield(L, 2, "checkpoint_on_close");
        if (lua_isboolean(L, -1)) checkpoint_on_close = lua_toboolean(L, -1);
        lua_pop(L, 3);
    }
    Db *d = (Db *)lua_newuserdatauv(L, sizeof *d, 0);
    d->db = NULL;
    luaL_setmetatable(L, DB_HANDLE);
    int flags = readonly ? SQLITE_OPEN_READONLY : (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
    int rc = p_sqlite3_open_v2(path, &d->db, flags | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        int n = failure(L, d->db, rc);
        if (d->db) { p_sqlite3_close_v2(d->db); d->db = NULL; }
        return n;
    }
    /* Writers take turns: a locked database is waited for (sqlite sleeps on its own), not failed. */
    p_sqlite3_busy_timeout(d->db, (int)(timeout * 1000));
    if (!checkpoint_on_close) p_sqlite3_db_config(d->db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, (int *)NULL);
    return 1;
}

static int db_exec(lua_State *L) {
    Db *d = check_db(L);
    const char *sql = luaL_checkstring(L, 2);
    char *err = NULL;
    int rc = p_sqlite3_exec(d->db, sql, NULL, NULL, &err);
    if (rc != SQLITE_OK) {
        lua_pushnil(L);
        lua_pushstring(L, err ? err : p_sqlite3_errmsg(d->db));
        lua_pushstring(L, code_name(p_sqlite3_extended_errcode(d->db)));
        p_sqlite3_free(err);
        return 3;
    }
    lua_pushboolean(L, 1);
    return 1;
}

/* bind(stmt, L, t): ?1… from t[1]…, as many as the statement has; a missing value is NULL.
 * Returns an sqlite code, or -i when value i has a type that cannot be bound. */
static int bind(sqlite3_stmt *stmt, lua_State *L, int t) {
    int n = p_sqlite3_bind_parameter_count(stmt);
    for (int i = 1; i <= n; i++) {
        int rc = SQLITE_OK;
        int type = t ? lua_geti(L, t, i) : LUA_TNIL;
        switch (type) {
        case LUA_TNIL: rc = p_sqlite3_bind_null(stmt, i); break;
        case LUA_TBOOLEAN: rc = p_sqlite3_bind_int64(stmt, i, lua_toboolean(L, -1)); break;
        case LUA_TNUMBER:
            if (lua_isinteger(L, -1)) rc = p_sqlite3_bind_int64(stmt, i, lua_tointeger(L, -1));
            else rc = p_sqlite3_bind_double(stmt, i, lua_tonumber(L, -1));
            break;
        case LUA_TSTRING: {
            size_t len;
            const char *s = lua_tolstring(L, -1, &len);
            rc = p_sqlite3_bind_text(stmt, i, s, (int)len, SQLITE_TRANSIENT);
            break;
        }
        default:
            if (t) lua_pop(L, 1);
            return -i; /* the caller finalises the statement, then raises */
        }
        if (t) lua_pop(L, 1);
        if (rc != SQLITE_OK) return rc;
    }
    return SQLITE_OK;
}

static int bind_failure(lua_State *L, sqlite3 *db, int rc) {
    if (rc < 0) return luaL_error(L, "sqlite: value %d cannot be stored (nil, boolean, number or string)", -rc);
    return failure(L, db, rc);
}

static void push_column(lua_State *L, sqlite3_stmt *stmt, int i) {
    switch (p_sqlite3_column_type(stmt, i)) {
    case SQLITE_INTEGER: lua_pushinteger(L, (lua_Integer)p_sqlite3_column_int64(stmt, i)); break;
    case SQLITE_FLOAT: lua_pushnumber(L, p_sqlite3_column_double(stmt, i)); break;
    case SQLITE_NULL: lua_pushnil(L); break;
    default: {
        const unsigned char *s = p_sqlite3_column_text(stmt, i);
        lua_pushlstring(L, (const char *)s, (size_t)p_sqlite3_column_bytes(stmt, i));
    }
    }
}

static int db_query(lua_State *L) {
    Db *d = check_db(L);
    const char *sql = luaL_checkstring(L, 2);
    int values = lua_istable(L, 3) ? 3 : 0;
    sqlite3_stmt *stmt = NULL;
    int rc = p_sqlite3_prepare_v2(d->db, sql, -1, &stmt, NULL);
    if (rc != SQLITE_OK) return failure(L, d->db, rc);
    rc = bind(stmt, L, values);
    if (rc != SQLITE_OK) { p_sqlite3_finalize(stmt); return bind_failure(L, d->db, rc); }
    int cols = p_sqlite3_column_count(stmt);
    lua_newtable(L);
    lua_Integer n = 0;
    while ((rc = p_sqlite3_step(stmt)) == SQLITE_ROW) {
        lua_createtable(L, cols, 0);
        for (int i = 0; i < cols; i++) {
            push_column(L, stmt, i);
            lua_rawseti(L, -2, i + 1);
        }
        lua_rawseti(L, -2, ++n);
    }
    if (rc != SQLITE_DONE) {
        p_sqlite3_finalize(stmt);
        return failure(L, d->db, rc);
    }
    lua_createtable(L, cols, 0);
    for (int i = 0; i < cols; i++) {
        lua_pushstring(L, p_sqlite3_column_name(stmt, i));
        lua_rawseti(L, -2, i + 1);
    }
    p_sqlite3_finalize(stmt);
    return 2;
}

static int db_insert(lua_State *L) {
    Db *d = check_db(L);
    const char *sql = luaL_checkstring(L, 2);
    luaL_checktype(L, 3, LUA_TTABLE);
    lua_Integer rows = luaL_len(L, 3);
    for (lua_Integer r = 1; r <= rows; r++) {
        if (lua_geti(L, 3, r) != LUA_TTABLE) return luaL_error(L, "sqlite: row %d is not a table", (int)r);
        lua_pop(L, 1);
    }
    sqlite3_stmt *stmt = NULL;
    int rc = p_sqlite3_prepare_v2(d->db, sql, -1, &stmt, NULL);
    if (rc != SQLITE_OK) return failure(L, d->db, rc);
    for (lua_Integer r = 1; r <= rows; r++) {
        lua_geti(L, 3, r);
        rc = bind(stmt, L, lua_gettop(L));
        lua_pop(L, 1);
        if (rc != SQLITE_OK) { p_sqlite3_finalize(stmt); return bind_failure(L, d->db, rc); }
        rc = p_sqlite3_step(stmt);
        if (rc != SQLITE_DONE) { p_sqlite3_finalize(stmt); return failure(L, d->db, rc); }
        p_sqlite3_reset(stmt);
        p_sqlite3_clear_bindings(stmt);
    }
    p_sqlite3_finalize(stmt);
    lua_pushinteger(L, rows);
    return 1;
}

static int db_changes(lua_State *L) {
    Db *d = check_db(L);
    lua_pushinteger(L, p_sqlite3_changes(d->db));
    return 1;
}

static int db_close(lua_State *L) {
    Db *d = (Db *)luaL_checkudata(L, 1, DB_HANDLE);
    if (d->db) {
        /* close_v2: statements are always finalised here, so the handle goes at once. */
        p_sqlite3_close_v2(d->db);
        d->db = NULL;
    }
    return 0;
}

static int db_tostring(lua_State *L) {
    Db *d = (Db *)luaL_checkudata(L, 1, DB_HANDLE);
    lua_pushstring(L, d->db ? "sqlite database" : "sqlite database (closed)");
    return 1;
}

static const luaL_Reg db_methods[] = {
    {"exec", db_exec},
    {"query", db_query},
    {"insert", db_insert},
    {"changes", db_changes},
    {"close", db_close},
    {NULL, NULL},
};

static const luaL_Reg db_meta[] = {
    {"__gc", db_close},
    {"__close", db_close},
    {"__tostring", db_tostring},
    {"__index", NULL},
    {NULL, NULL},
};

static const luaL_Reg sqlite_functions[] = {
    {"open", sqlite_open},
    {NULL, NULL},
};

int luaopen_jobrun_sqlite(lua_State *L) {
    jobrun_class(L, DB_HANDLE, db_meta, db_methods);
    luaL_newlib(L, sqlite_functions);
    return 1;
}
