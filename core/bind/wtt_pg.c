/*
 * wtt_pg.c: the C half of `wtt.pg` (Lua module `wtt.core.pg`, see
 * wtt_pg.h); lua/wtt/pg.lua is the public API built on it.
 *
 * A connection is a "wtt.pg.conn" userdata around one PGconn. Statements go
 * through PQexecParams with text parameters only: no function here, nor in
 * the Lua wrapper, splices a value into SQL text. Results come back in text
 * format and are converted by column type OID (see push_value). Binary data
 * goes in as a bytea parameter in binary format (bytea()), and comes back
 * through PQunescapeBytea.
 *
 * Failures never raise: every runtime failure returns
 * `nil, "<op> failed: <primary message>", sqlstate`. Only misuse (wrong
 * argument types, a nil parameter, SQL text with a NUL byte) raises.
 *
 * A connection the server dropped is marked lost; wtt never reconnects on
 * its own here. The Lua wrapper decides when a reset is safe (outside a
 * transaction, before a statement was sent, or for statements the caller
 * marked idempotent).
 *
 * Raise safety: every libpq object that can be alive while Lua may raise
 * (out of memory in lua_push*, an error from the JSON decoder) is owned by a
 * userdata with a __gc, so a Lua error never leaks a PGresult.
 */
#include "wtt_pg.h"
#include "wtt_luax.h"
#include "wtt_log.h"
#include "wtt_util.h"

#include <lauxlib.h>
#include <libpq-fe.h>

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


#define PG_CONN_MT          "wtt.pg.conn"
#define PG_RESULT_MT        "wtt.pg.result"
#define PG_BYTEA_MT         "wtt.pg.bytea"
#define PG_JSON_DECODE_KEY  "wtt.pg.json_decode"

#define PG_MAX_PARAMS       65535     /* the protocol's limit */
#define PG_CONNECT_TIMEOUT  "10"      /* seconds, unless the URL says */
#define PG_APPLICATION_NAME "wtt"     /* unless the URL or opts say */
#define PG_INT53            9007199254740992LL   /* 2^53 */

/* Type OIDs, from the server's catalog/pg_type_d.h (not a client header). */
#define OID_BOOL            16
#define OID_BYTEA           17
#define OID_INT8            20
#define OID_INT2            21
#define OID_INT4            23
#define OID_OID             26
#define OID_JSON            114
#define OID_FLOAT4          700
#define OID_FLOAT8          701
#define OID_TIMESTAMP       1114
#define OID_TIMESTAMPTZ     1184
#define OID_JSONB           3802

/* SQLSTATEs wtt reports when libpq gives none. */
#define SQLSTATE_CONNECTION_FAILURE   "08006"
#define SQLSTATE_CANNOT_CONNECT       "08001"
#define SQLSTATE_BAD_ENCODING         "22021"
#define SQLSTATE_NOT_SUPPORTED        "0A000"


/* A connection. Zero-filled on creation: conn NULL means closed. */
typedef struct {
    PGconn      *conn;                 /* owned; PQfinish'd in conn_close */
    int          lost;                 /* the server went away */
    lua_Integer  statement_timeout_ms; /* -1: leave the server default */
} pg_conn_t;


/* A result while it is being converted, so that a Lua error in between
 * still frees it (its __gc). */
typedef struct {
    PGresult      *res;                /* owned; PQclear'd in result_clear */
    unsigned char *scratch;            /* owned; PQfreemem'd likewise */
} pg_result_t;


/* ------------------------------------------------------------------------
 * Errors
 * ------------------------------------------------------------------------ */


/*
 * Copies the first line of a libpq message into `buf`, without the
 * "ERROR:  " / "FATAL:  " severity prefix and trailing white space.
 */
static void
first_line(const char *msg, char *buf, size_t len)
{
    size_t n;

    if (msg == NULL || msg[0] == '\0') {
        msg = "unknown error";
    }
    if (strncmp(msg, "ERROR:  ", 8) == 0 || strncmp(msg, "FATAL:  ", 8) == 0)
    {
        msg += 8;
    }
    n = strcspn(msg, "\n");
    while (n > 0 && isspace((unsigned char) msg[n - 1])) {
        n--;
    }
    if (n >= len) {
        n = len - 1;
    }
    memcpy(buf, msg, n);
    buf[n] = '\0';
}


/*
 * Pushes nil, "<op> failed: <primary message>" and the SQLSTATE taken from
 * `res` (may be NULL) or, when it has none, "08006" for a lost connection
 * and nothing otherwise. Returns the number of values pushed (2 or 3).
 */
static int
push_error(lua_State *L, pg_conn_t *c, const PGresult *res, const char *op)
{
    const char *msg = NULL, *state = NULL;
    char        line[512];

    if (res != NULL) {
        msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
        state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    }
    if (msg == NULL) {
        first_line(c->conn != NULL ? PQerrorMessage(c->conn) : NULL,
                   line, sizeof(line));
        msg = line;
    }
    if (state == NULL && c->lost) {
        state = SQLSTATE_CONNECTION_FAILURE;
    }

    lua_pushnil(L);                                  /* nil */
    lua_pushfstring(L, "%s failed: %s", op, msg);    /* nil err */
    if (state == NULL) {
        return 2;
    }
    lua_pushstring(L, state);                        /* nil err state */
    return 3;
}


/* Pushes nil, "<op> failed: <msg>", state. Returns 3. */
static int
push_error_msg(lua_State *L, const char *op, const char *msg,
    const char *state)
{
    lua_pushnil(L);
    lua_pushfstring(L, "%s failed: %s", op, msg);
    lua_pushstring(L, state);                        /* nil err state */
    return 3;
}


/* Pushes nil, "closed". Returns 2. */
static int
push_closed(lua_State *L)
{
    lua_pushnil(L);
    lua_pushliteral(L, "closed");
    return 2;
}


/* Marks `c` lost when libpq says the connection is broken. */
static void
note_status(pg_conn_t *c)
{
    if (c->conn != NULL && PQstatus(c->conn) == CONNECTION_BAD) {
        c->lost = 1;
    }
}


/*
 * libpq's default notice processor prints to stderr; route notices and
 * warnings to the structured log instead. A FATAL (or an "operator
 * intervention" 57P0x) arrives here only when the server ends an idle
 * session (shutdown, restart, terminated backend) just before it closes the
 * socket: the connection `arg` is marked lost at once.
 */
static void
notice_receiver(void *arg, const PGresult *res)
{
    pg_conn_t  *c = arg;
    const char *sev = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);
    const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
    const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    int         level = WTT_LOG_DEBUG;

    if ((sev != NULL && (strcmp(sev, "FATAL") == 0
                         || strcmp(sev, "PANIC") == 0))
        || (state != NULL && strncmp(state, "57P0", 4) == 0))
    {
        c->lost = 1;
        level = WTT_LOG_INFO;
    } else if (sev != NULL && strcmp(sev, "WARNING") == 0) {
        level = WTT_LOG_WARN;
    }
    if (!wtt_log_enabled(level)) {
        return;
    }
    wtt_log(level, "pg.notice", "severity", sev != NULL ? sev : "",
            "sqlstate", state != NULL ? state : "",
            "message", msg != NULL ? msg : "", NULL);
}


/* ------------------------------------------------------------------------
 * Connections
 * ------------------------------------------------------------------------ */


/*
 * Applies the session settings every connection of wtt runs with: UTC, ISO
 * dates, exact float output and the statement timeout. Runs after connect
 * and after every reset, since a reset starts a new server session. The
 * statement holds only numbers that wtt formats itself. Returns 0, or -1
 * with the failed result in `*res` (caller clears) or NULL.
 */
static int
session_setup(pg_conn_t *c, PGresult **res)
{
    char      sql[256];
    PGresult *r;
    int       n;

    n = snprintf(sql, sizeof(sql),
                 "SET TimeZone TO 'UTC'; SET DateStyle TO 'ISO, YMD'; "
                 "SET IntervalStyle TO 'iso_8601'; "
                 "SET extra_float_digits TO 3; SET bytea_output TO 'hex'");
    if (c->statement_timeout_ms >= 0) {
        snprintf(sql + n, sizeof(sql) - (size_t) n,
                 "; SET statement_timeout TO %lld",
                 (long long) c->statement_timeout_ms);
    }
    r = PQexec(c->conn, sql);
    if (r != NULL && PQresultStatus(r) == PGRES_COMMAND_OK) {
        PQclear(r);
        *res = NULL;
        return 0;
    }
    *res = r;
    return -1;
}


static pg_conn_t *
check_conn(lua_State *L)
{
    return luaL_checkudata(L, 1, PG_CONN_MT);
}


/*
 * pg.connect(conninfo, opts?) -> conn | nil, err, "08001"
 *
 * conninfo: a postgresql:// URL or "key=value" string ("" uses the PG*
 * environment). opts: connect_timeout (seconds, default 10 unless the URL
 * sets one), statement_timeout_ms (0 disables), application_name (default
 * "wtt"). The session runs in UTC with ISO dates (session_setup).
 */
static int
l_connect(lua_State *L)
{
    static const char *const known[] = {
        "connect_timeout", "statement_timeout_ms", "application_name", NULL
    };
    const char  *kw[8], *val[8];
    const char  *conninfo = luaL_checkstring(L, 1);
    const char  *app = NULL;
    char         timeout[32], line[512];
    lua_Number   ct = -1, st = -1;
    pg_conn_t   *c;
    PGresult    *res;
    int          opts = 0, n = 0, nret;

    if (!lua_isnoneornil(L, 2)) {
        luaL_checktype(L, 2, LUA_TTABLE);
        opts = 2;
        wtt_lua_check_opts(L, opts, known);
        ct = wtt_lua_opt_number(L, opts, "connect_timeout", -1, 0, 1e9);
        st = wtt_lua_opt_number(L, opts, "statement_timeout_ms", -1, 0, 1e9);
        app = wtt_lua_opt_string(L, opts, "application_name", NULL, NULL);
    }
    lua_settop(L, 2);

    /* Entries before the expanded dbname are defaults the URL may
     * override; entries after it override the URL. */
    kw[n] = "connect_timeout";   val[n++] = PG_CONNECT_TIMEOUT;
    kw[n] = "application_name";  val[n++] = PG_APPLICATION_NAME;
    kw[n] = "dbname";            val[n++] = conninfo;
    kw[n] = "client_encoding";   val[n++] = "UTF8";
    if (ct >= 0) {
        snprintf(timeout, sizeof(timeout), "%.0f", ceil(ct));
        kw[n] = "connect_timeout";  val[n++] = timeout;
    }
    if (app != NULL) {
        kw[n] = "application_name"; val[n++] = app;
    }
    kw[n] = NULL;
    val[n] = NULL;

    c = lua_newuserdata(L, sizeof(pg_conn_t));       /* url opts c */
    memset(c, 0, sizeof(*c));
    c->statement_timeout_ms = st >= 0 ? (lua_Integer) st : -1;
    luaL_getmetatable(L, PG_CONN_MT);                /* url opts c mt */
    lua_setmetatable(L, -2);                         /* url opts c */

    c->conn = PQconnectdbParams(kw, val, 1);
    if (c->conn == NULL) {
        return push_error_msg(L, "connect", "out of memory",
                              SQLSTATE_CANNOT_CONNECT);
    }
    if (PQstatus(c->conn) != CONNECTION_OK) {
        first_line(PQerrorMessage(c->conn), line, sizeof(line));
        PQfinish(c->conn);
        c->conn = NULL;
        return push_error_msg(L, "connect", line, SQLSTATE_CANNOT_CONNECT);
    }
    PQsetNoticeReceiver(c->conn, notice_receiver, c);

    if (session_setup(c, &res) != 0) {
        note_status(c);
        nret = push_error(L, c, res, "connect");
        PQclear(res);
        PQfinish(c->conn);
        c->conn = NULL;
        return nret;
    }
    return 1;                                        /* ... c */
}


/*
 * conn:reset() -> true | nil, err, sqlstate
 *
 * Closes the server session and opens a new one with the same parameters
 * and session settings. Whatever the old session held (a transaction,
 * advisory locks, SET values) is gone.
 */
static int
l_reset(lua_State *L)
{
    pg_conn_t *c = check_conn(L);
    PGresult  *res;
    char       line[512];
    int        nret;

    if (c->conn == NULL) {
        return push_closed(L);
    }
    PQreset(c->conn);
    if (PQstatus(c->conn) != CONNECTION_OK) {
        c->lost = 1;
        first_line(PQerrorMessage(c->conn), line, sizeof(line));
        return push_error_msg(L, "reset", line, SQLSTATE_CANNOT_CONNECT);
    }
    if (session_setup(c, &res) != 0) {
        c->lost = 1;
        nret = push_error(L, c, res, "reset");
        PQclear(res);
        return nret;
    }
    c->lost = 0;
    lua_pushboolean(L, 1);
    return 1;
}


/*
 * conn:check() -> true | false
 *
 * Without sending anything, reads what the server sent while the
 * connection sat idle: a server that shut down or restarted has closed it
 * (after a FATAL notice). Returns false, and marks the connection lost,
 * when it is unusable; a statement not yet sent can then safely go to a
 * new session.
 */
static int
l_check(lua_State *L)
{
    pg_conn_t     *c = check_conn(L);
    struct pollfd  pfd;
    PGnotify      *nf;
    int            rc, i;

    if (c->conn == NULL) {
        return push_closed(L);
    }
    if (PQstatus(c->conn) != CONNECTION_OK) {
        c->lost = 1;
    }
    /* A few rounds: the FATAL notice and the end of file may be read by
     * two PQconsumeInput calls. */
    for (i = 0; i < 4 && !c->lost; i++) {
        pfd.fd = PQsocket(c->conn);
        pfd.events = POLLIN;
        pfd.revents = 0;
        do {
            rc = poll(&pfd, 1, 0);
        } while (rc < 0 && errno == EINTR);
        if (rc <= 0) {
            break;
        }
        if (!PQconsumeInput(c->conn)) {
            c->lost = 1;
        }
        /* wtt never LISTENs, but a NOTIFY must not pile up. */
        while ((nf = PQnotifies(c->conn)) != NULL) {
            PQfreemem(nf);
        }
        note_status(c);
    }
    lua_pushboolean(L, !c->lost);
    return 1;
}


/* conn:status() -> "ok" | "lost" | "closed" */
static int
l_status(lua_State *L)
{
    pg_conn_t *c = check_conn(L);

    if (c->conn == NULL) {
        lua_pushliteral(L, "closed");
    } else if (c->lost || PQstatus(c->conn) != CONNECTION_OK) {
        lua_pushliteral(L, "lost");
    } else {
        lua_pushliteral(L, "ok");
    }
    return 1;
}


/* conn:tx_status() -> "idle" | "active" | "intrans" | "inerror" | "unknown"
 *                   | nil, "closed" */
static int
l_tx_status(lua_State *L)
{
    pg_conn_t *c = check_conn(L);

    if (c->conn == NULL) {
        return push_closed(L);
    }
    switch (PQtransactionStatus(c->conn)) {
    case PQTRANS_IDLE:
        lua_pushliteral(L, "idle");
        break;
    case PQTRANS_ACTIVE:
        lua_pushliteral(L, "active");
        break;
    case PQTRANS_INTRANS:
        lua_pushliteral(L, "intrans");
        break;
    case PQTRANS_INERROR:
        lua_pushliteral(L, "inerror");
        break;
    default:
        lua_pushliteral(L, "unknown");
        break;
    }
    return 1;
}


/* conn:backend_pid() -> pid of the server process | nil, "closed" */
static int
l_backend_pid(lua_State *L)
{
    pg_conn_t *c = check_conn(L);

    if (c->conn == NULL) {
        return push_closed(L);
    }
    lua_pushinteger(L, PQbackendPID(c->conn));
    return 1;
}


/* conn:server_version() -> e.g. 150018 | nil, "closed" */
static int
l_server_version(lua_State *L)
{
    pg_conn_t *c = check_conn(L);

    if (c->conn == NULL) {
        return push_closed(L);
    }
    lua_pushinteger(L, PQserverVersion(c->conn));
    return 1;
}


/* conn:close() -> true; also __gc. Safe to call any number of times. */
static int
l_close(lua_State *L)
{
    pg_conn_t *c = check_conn(L);

    if (c->conn != NULL) {
        PQfinish(c->conn);
        c->conn = NULL;
    }
    lua_pushboolean(L, 1);
    return 1;
}


static int
l_conn_tostring(lua_State *L)
{
    pg_conn_t *c = check_conn(L);

    if (c->conn == NULL) {
        lua_pushliteral(L, PG_CONN_MT " (closed)");
    } else {
        lua_pushfstring(L, PG_CONN_MT " (%s:%s/%s%s)", PQhost(c->conn),
                        PQport(c->conn), PQdb(c->conn),
                        c->lost ? ", lost" : "");
    }
    return 1;
}


/* ------------------------------------------------------------------------
 * Parameters
 * ------------------------------------------------------------------------ */


/*
 * Formats `v` as PostgreSQL reads it back exactly: integral values as
 * integers (all digits, never an exponent below 1e21), others with the
 * fewest of 15..17 significant digits that round-trip, NaN and infinities
 * as the float input words. Returns `buf` or a static string.
 */
static const char *
format_number(lua_Number v, char *buf, size_t len)
{
    int prec;

    if (isnan(v)) {
        return "NaN";
    }
    if (isinf(v)) {
        return v > 0 ? "Infinity" : "-Infinity";
    }
    if (v == floor(v) && fabs(v) < 1e21) {
        if (fabs(v) < 9e18) {
            snprintf(buf, len, "%lld", (long long) v);
        } else {
            snprintf(buf, len, "%.0f", v);
        }
        return buf;
    }
    for (prec = 15; prec < 17; prec++) {
        snprintf(buf, len, "%.*g", prec, v);
        if (strtod(buf, NULL) == v) {
            return buf;
        }
    }
    snprintf(buf, len, "%.17g", v);
    return buf;
}


/* Returns 1 when the value at `idx` is a table made by bytea(). */
static int
is_bytea(lua_State *L, int idx)
{
    int same;

    if (lua_type(L, idx) != LUA_TTABLE || !lua_getmetatable(L, idx)) {
        return 0;
    }                                                /* mt */
    luaL_getmetatable(L, PG_BYTEA_MT);               /* mt bytea_mt */
    same = lua_rawequal(L, -1, -2);
    lua_pop(L, 2);
    return same;
}


/* The parameter arrays PQexecParams takes, carved from one userdata. */
typedef struct {
    const char **values;
    int         *lengths;
    int         *formats;
    Oid         *types;
} params_t;


/*
 * Converts params[1..n] of the table at `tidx` into `p`. Formatted numbers
 * are pushed into the anchor table at `anchor`; strings stay anchored by the
 * params table, which must stay on the stack, unchanged, for the call.
 * Returns 0, or the 1-based index of a string parameter that holds a NUL
 * byte (text parameters cannot). Raises on values that are not parameters.
 */
static int
convert_params(lua_State *L, int tidx, int n, int anchor, params_t *p)
{
    const char *s;
    size_t      len;
    char        num[64];
    int         i;

    for (i = 0; i < n; i++) {
        p->values[i] = NULL;
        p->lengths[i] = 0;
        p->formats[i] = 0;
        p->types[i] = 0;

        lua_rawgeti(L, tidx, i + 1);                 /* v */
        switch (lua_type(L, -1)) {

        case LUA_TNIL:
            luaL_argerror(L, tidx, lua_pushfstring(L,
                "parameter $%d is nil (use pg.null for NULL)", i + 1));
            break;

        case LUA_TLIGHTUSERDATA:
            if (lua_touserdata(L, -1) != NULL) {
                luaL_argerror(L, tidx, lua_pushfstring(L,
                    "parameter $%d is a light userdata other than null",
                    i + 1));
            }
            break;                                   /* NULL */

        case LUA_TBOOLEAN:
            p->values[i] = lua_toboolean(L, -1) ? "t" : "f";
            break;

        case LUA_TNUMBER:
            lua_pushstring(L, format_number(lua_tonumber(L, -1), num,
                                            sizeof(num)));   /* v s */
            p->values[i] = lua_tostring(L, -1);
            lua_rawseti(L, anchor, i + 1);           /* v */
            break;

        case LUA_TSTRING:
            s = lua_tolstring(L, -1, &len);
            if (memchr(s, '\0', len) != NULL) {
                lua_pop(L, 1);
                return i + 1;
            }
            p->values[i] = s;
            break;

        case LUA_TTABLE:
            if (!is_bytea(L, -1)) {
                luaL_argerror(L, tidx, lua_pushfstring(L,
                    "parameter $%d is a table (encode JSON with pg.json, "
                    "binary data with pg.bytea)", i + 1));
            }
            lua_rawgeti(L, -1, 1);                   /* v s */
            s = lua_tolstring(L, -1, &len);
            lua_rawseti(L, anchor, i + 1);           /* v */
            if (len > (size_t) 0x7fffffff) {
                luaL_argerror(L, tidx, "bytea parameter too large");
            }
            p->values[i] = s;
            p->lengths[i] = (int) len;
            p->formats[i] = 1;
            p->types[i] = OID_BYTEA;
            break;

        default:
            luaL_argerror(L, tidx, lua_pushfstring(L,
                "parameter $%d: %s is not a parameter type", i + 1,
                luaL_typename(L, -1)));
        }
        lua_pop(L, 1);                               /* */
    }
    return 0;
}


/*
 * pg.bytea(s) -> a parameter marked binary: sent as bytea in binary
 * format, so any bytes (NUL included) arrive unchanged.
 */
static int
l_bytea(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TSTRING);
    lua_createtable(L, 1, 0);                        /* s t */
    lua_pushvalue(L, 1);                             /* s t s */
    lua_rawseti(L, -2, 1);                           /* s t */
    luaL_getmetatable(L, PG_BYTEA_MT);               /* s t mt */
    lua_setmetatable(L, -2);                         /* s t */
    return 1;
}


/* ------------------------------------------------------------------------
 * Results
 * ------------------------------------------------------------------------ */


/* Frees what `r` owns; safe twice. Also the __gc of "wtt.pg.result". */
static void
result_clear(pg_result_t *r)
{
    if (r->scratch != NULL) {
        PQfreemem(r->scratch);
        r->scratch = NULL;
    }
    if (r->res != NULL) {
        PQclear(r->res);
        r->res = NULL;
    }
}


static int
l_result_gc(lua_State *L)
{
    result_clear(luaL_checkudata(L, 1, PG_RESULT_MT));
    return 0;
}


/* Pushes an empty result holder. Stack: [...] -> [... r]. */
static pg_result_t *
push_result_holder(lua_State *L)
{
    pg_result_t *r = lua_newuserdata(L, sizeof(pg_result_t));

    memset(r, 0, sizeof(*r));
    luaL_getmetatable(L, PG_RESULT_MT);
    lua_setmetatable(L, -2);
    return r;
}


/*
 * Pushes a timestamp as ISO 8601: "2026-11-29 02:12:07.123456+00" becomes
 * "2026-11-29T02:12:07.123456Z", other offsets get their minutes
 * ("+05" -> "+05:00"), a timestamp without zone just the "T". Values that
 * are not plain dates in the common era (infinity, BC) are pushed as the
 * server wrote them.
 */
static void
push_timestamp(lua_State *L, const char *v, size_t len, int with_zone)
{
    char        buf[80];
    const char *sp, *zone;
    size_t      n;

    sp = memchr(v, ' ', len);
    if (len >= sizeof(buf) - 4 || sp == NULL
        || !isdigit((unsigned char) v[0]) || strstr(v, " BC") != NULL)
    {
        lua_pushlstring(L, v, len);
        return;
    }
    memcpy(buf, v, len);
    buf[len] = '\0';
    buf[sp - v] = 'T';
    n = len;

    if (with_zone) {
        zone = strpbrk(buf + (sp - v), "+-");
        if (zone != NULL) {
            if (strcmp(zone, "+00") == 0 || strcmp(zone, "+00:00") == 0) {
                n = (size_t) (zone - buf);
                buf[n++] = 'Z';
            } else if (strlen(zone) == 3) {
                memcpy(buf + n, ":00", 3);
                n += 3;
            }
        }
    }
    lua_pushlstring(L, buf, n);
}


/*
 * Pushes the value of row `row`, column `col` as a Lua value by the
 * column's type (see the table in docs/pg.md). Returns 0, or -1 with an
 * error message pushed instead (a json value the decoder refused, out of
 * memory in PQunescapeBytea).
 */
static int
push_value(lua_State *L, pg_result_t *r, int row, int col, Oid type)
{
    const char *v;
    size_t      len, blen;
    long long   ll;

    if (PQgetisnull(r->res, row, col)) {
        lua_pushlightuserdata(L, NULL);              /* null */
        return 0;
    }
    v = PQgetvalue(r->res, row, col);
    len = (size_t) PQgetlength(r->res, row, col);

    switch (type) {

    case OID_BOOL:
        lua_pushboolean(L, v[0] == 't');
        break;

    case OID_INT2:
    case OID_INT4:
    case OID_OID:
        lua_pushnumber(L, (lua_Number) strtoll(v, NULL, 10));
        break;

    case OID_INT8:
        errno = 0;
        ll = strtoll(v, NULL, 10);
        if (errno == 0 && ll >= -PG_INT53 && ll <= PG_INT53) {
            lua_pushnumber(L, (lua_Number) ll);
        } else {
            lua_pushlstring(L, v, len);              /* exact, as text */
        }
        break;

    case OID_FLOAT4:
    case OID_FLOAT8:
        /* strtod reads "NaN", "Infinity" and "-Infinity" too. */
        lua_pushnumber(L, strtod(v, NULL));
        break;

    case OID_BYTEA:
        r->scratch = PQunescapeBytea((const unsigned char *) v, &blen);
        if (r->scratch == NULL) {
            lua_pushliteral(L, "out of memory decoding bytea");
            return -1;
        }
        lua_pushlstring(L, (const char *) r->scratch, blen);
        PQfreemem(r->scratch);
        r->scratch = NULL;
        break;

    case OID_JSON:
    case OID_JSONB:
        lua_getfield(L, LUA_REGISTRYINDEX, PG_JSON_DECODE_KEY);
        lua_pushlstring(L, v, len);                  /* decode text */
        lua_call(L, 1, 2);                           /* value|nil [err] */
        if (lua_isnil(L, -2)) {
            lua_pushfstring(L, "cannot decode %s column '%s': %s",
                            type == OID_JSON ? "json" : "jsonb",
                            PQfname(r->res, col),
                            lua_isstring(L, -1) ? lua_tostring(L, -1)
                                                : "?");
            lua_replace(L, -3);
            lua_pop(L, 1);                           /* msg */
            return -1;
        }
        lua_pop(L, 1);                               /* value */
        break;

    case OID_TIMESTAMPTZ:
        push_timestamp(L, v, len, 1);
        break;

    case OID_TIMESTAMP:
        push_timestamp(L, v, len, 0);
        break;

    default:
        /* numeric (exact), text types, uuid, date, time, arrays... */
        lua_pushlstring(L, v, len);
        break;
    }
    return 0;
}


/*
 * Pushes the rows of a PGRES_TUPLES_OK result: an array of tables keyed by
 * column name (a later column wins over an earlier one of the same name).
 * Returns 0, or -1 with an error message pushed instead of the rows.
 */
static int
push_rows(lua_State *L, pg_result_t *r)
{
    int  nrows = PQntuples(r->res);
    int  ncols = PQnfields(r->res);
    int  names, i, j;
    Oid *types;

    types = lua_newuserdata(L, (size_t) (ncols > 0 ? ncols : 1)
                               * sizeof(Oid));       /* types */
    lua_createtable(L, ncols, 0);                    /* types names */
    names = lua_gettop(L);
    for (j = 0; j < ncols; j++) {
        types[j] = PQftype(r->res, j);
        lua_pushstring(L, PQfname(r->res, j));
        lua_rawseti(L, names, j + 1);
    }

    lua_createtable(L, nrows, 0);                    /* types names rows */
    for (i = 0; i < nrows; i++) {
        lua_createtable(L, 0, ncols);                /* ... rows row */
        for (j = 0; j < ncols; j++) {
            lua_rawgeti(L, names, j + 1);            /* ... rows row name */
            if (push_value(L, r, i, j, types[j]) != 0) {
                                                     /* ... row name msg */
                lua_replace(L, names - 1);           /* msg names ... */
                lua_settop(L, names - 1);            /* msg */
                return -1;
            }                                        /* ... row name v */
            lua_rawset(L, -3);                       /* ... rows row */
        }
        lua_rawseti(L, -2, i + 1);                   /* ... rows */
    }
    lua_replace(L, names - 1);                       /* rows names */
    lua_pop(L, 1);                                   /* rows */
    return 0;
}


/* Leaves COPY mode after a statement started a COPY, which wtt.pg does not
 * support, and drops what follows. */
static void
abandon_copy(PGconn *conn, ExecStatusType st)
{
    PGresult *res;
    char     *buf;

    if (st == PGRES_COPY_IN || st == PGRES_COPY_BOTH) {
        (void) PQputCopyEnd(conn, "COPY is not supported by wtt.pg");
    }
    if (st == PGRES_COPY_OUT || st == PGRES_COPY_BOTH) {
        while (PQgetCopyData(conn, &buf, 0) > 0) {
            PQfreemem(buf);
        }
    }
    while ((res = PQgetResult(conn)) != NULL) {
        PQclear(res);
    }
}


/*
 * Turns the finished result in `r` into the return values of query and
 * script: rows, count | nil, err, sqlstate. Clears `r`. Returns the number
 * of values pushed.
 */
static int
push_outcome(lua_State *L, pg_conn_t *c, pg_result_t *r)
{
    ExecStatusType  st;
    const char     *tuples;
    int             nret;

    note_status(c);
    if (r->res == NULL) {
        nret = push_error(L, c, NULL, "query");
        return nret;
    }

    st = PQresultStatus(r->res);
    switch (st) {

    case PGRES_TUPLES_OK:
    case PGRES_COMMAND_OK:
    case PGRES_EMPTY_QUERY:
        if (st == PGRES_TUPLES_OK) {
            if (push_rows(L, r) != 0) {              /* msg */
                lua_pushnil(L);                      /* msg nil */
                lua_insert(L, -2);                   /* nil msg */
                lua_pushfstring(L, "query failed: %s", lua_tostring(L, -1));
                lua_replace(L, -2);                  /* nil err */
                result_clear(r);
                return 2;
            }                                        /* rows */
        } else {
            lua_newtable(L);                         /* rows */
        }
        tuples = PQcmdTuples(r->res);
        if (tuples[0] != '\0') {
            lua_pushnumber(L, (lua_Number) strtoll(tuples, NULL, 10));
        } else {
            lua_pushnumber(L, (lua_Number) PQntuples(r->res));
        }                                            /* rows count */
        result_clear(r);
        return 2;

    case PGRES_COPY_IN:
    case PGRES_COPY_OUT:
    case PGRES_COPY_BOTH:
        result_clear(r);
        abandon_copy(c->conn, st);
        note_status(c);
        return push_error_msg(L, "query", "COPY is not supported",
                              SQLSTATE_NOT_SUPPORTED);

    default:
        nret = push_error(L, c, r->res, "query");
        result_clear(r);
        return nret;
    }
}


/*
 * conn:query(sql, params?, n?) -> rows, count | nil, err, sqlstate
 *
 * One statement, with params[1..n] as $1..$n (n defaults to #params).
 * Parameters: pg.null (NULL), booleans, numbers, strings (text; a NUL byte
 * is an error, 22021), pg.bytea(s) (binary). rows is an array of tables
 * keyed by column name, empty for commands; count is the affected or
 * returned row count.
 */
static int
l_query(lua_State *L)
{
    pg_conn_t   *c = check_conn(L);
    size_t       sql_len;
    const char  *sql = luaL_checklstring(L, 2, &sql_len);
    lua_Integer  n;
    params_t     p;
    pg_result_t *r;
    char        *block;
    int          bad;

    luaL_argcheck(L, strlen(sql) == sql_len, 2, "sql contains a NUL byte");
    if (lua_isnoneornil(L, 3)) {
        n = 0;
    } else {
        luaL_checktype(L, 3, LUA_TTABLE);
        n = luaL_optinteger(L, 4, (lua_Integer) lua_objlen(L, 3));
    }
    luaL_argcheck(L, n >= 0 && n <= PG_MAX_PARAMS, 4,
                  "parameter count must be 0..65535");
    if (c->conn == NULL) {
        return push_closed(L);
    }
    lua_settop(L, 4);

    lua_createtable(L, (int) n, 0);                  /* ... anchor */
    block = lua_newuserdata(L, (size_t) (n > 0 ? n : 1)
                               * (sizeof(char *) + 2 * sizeof(int)
                                  + sizeof(Oid)));   /* ... anchor block */
    p.values = (const char **) (void *) block;
    p.lengths = (int *) (void *) (block + n * sizeof(char *));
    p.formats = p.lengths + n;
    p.types = (Oid *) (void *) (p.formats + n);
    bad = n > 0 ? convert_params(L, 3, (int) n, 5, &p) : 0;
    if (bad != 0) {
        lua_pushnil(L);
        lua_pushfstring(L, "query failed: parameter $%d contains a NUL byte "
                        "(use pg.bytea for binary data)", bad);
        lua_pushliteral(L, SQLSTATE_BAD_ENCODING);
        return 3;
    }
    if (c->lost) {
        return push_error_msg(L, "query", "connection lost",
                              SQLSTATE_CONNECTION_FAILURE);
    }

    r = push_result_holder(L);                       /* ... anchor block r */
    r->res = PQexecParams(c->conn, sql, (int) n, p.types, p.values,
                          p.lengths, p.formats, 0);
    return push_outcome(L, c, r);
}


/*
 * conn:script(sql) -> rows, count | nil, err, sqlstate
 *
 * Runs trusted SQL text that may hold several statements (the simple query
 * protocol; migrations use it) and returns the outcome of the last one. It
 * takes no parameters: values never go into SQL text.
 */
static int
l_script(lua_State *L)
{
    pg_conn_t   *c = check_conn(L);
    size_t       sql_len;
    const char  *sql = luaL_checklstring(L, 2, &sql_len);
    pg_result_t *r;

    luaL_argcheck(L, strlen(sql) == sql_len, 2, "sql contains a NUL byte");
    luaL_argcheck(L, lua_isnoneornil(L, 3), 3,
                  "script takes no parameters (use query)");
    if (c->conn == NULL) {
        return push_closed(L);
    }
    if (c->lost) {
        return push_error_msg(L, "query", "connection lost",
                              SQLSTATE_CONNECTION_FAILURE);
    }
    lua_settop(L, 2);
    r = push_result_holder(L);                       /* c sql r */
    r->res = PQexec(c->conn, sql);
    return push_outcome(L, c, r);
}


/* ------------------------------------------------------------------------
 * Module
 * ------------------------------------------------------------------------ */


/* pg.sha256hex(s) -> lowercase hex SHA-256 of s (migration checksums) */
static int
l_sha256hex(lua_State *L)
{
    size_t      len;
    const char *s = luaL_checklstring(L, 1, &len);
    char        hex[65];

    wtt_sha256_hex(s, len, hex);
    lua_pushlstring(L, hex, 64);
    return 1;
}


static const luaL_Reg conn_methods[] = {
    { "query",          l_query },
    { "script",         l_script },
    { "reset",          l_reset },
    { "check",          l_check },
    { "status",         l_status },
    { "tx_status",      l_tx_status },
    { "backend_pid",    l_backend_pid },
    { "server_version", l_server_version },
    { "close",          l_close },
    { NULL, NULL },
};


static const luaL_Reg pg_funcs[] = {
    { "connect",   l_connect },
    { "bytea",     l_bytea },
    { "sha256hex", l_sha256hex },
    { NULL, NULL },
};


/*
 * Opens `wtt.core.pg`. Stack: before [], after [module]. Registers the
 * metatables "wtt.pg.conn", "wtt.pg.result" and "wtt.pg.bytea", and keeps
 * cjson.safe's decode in the registry for json/jsonb columns. The module
 * table holds connect, bytea, sha256hex, null (the light userdata NULL,
 * equal to cjson.null) and libpq_version. Raises when cjson cannot be
 * loaded. Everything it creates belongs to the Lua state.
 */
int
luaopen_wtt_pg(lua_State *L)
{
    static const luaL_Reg conn_meta[] = {
        { "__gc", l_close }, { "__tostring", l_conn_tostring },
        { NULL, NULL },
    };
    static const luaL_Reg result_meta[] = {
        { "__gc", l_result_gc }, { NULL, NULL },
    };

    wtt_lua_class(L, PG_CONN_MT, conn_meta, conn_methods);
    wtt_lua_class(L, PG_RESULT_MT, result_meta, NULL);

    if (luaL_newmetatable(L, PG_BYTEA_MT)) {         /* mt */
        lua_pushliteral(L, "bytea");                 /* mt name */
        lua_setfield(L, -2, "__name");               /* mt */
    }
    lua_pop(L, 1);                                   /* */

    lua_getglobal(L, "require");                     /* require */
    lua_pushliteral(L, "cjson.safe");                /* require name */
    lua_call(L, 1, 1);                               /* cjson */
    lua_getfield(L, -1, "decode");                   /* cjson decode */
    lua_setfield(L, LUA_REGISTRYINDEX, PG_JSON_DECODE_KEY);   /* cjson */
    lua_pop(L, 1);                                   /* */

    lua_newtable(L);                                 /* pg */
    luaL_register(L, NULL, pg_funcs);
    lua_pushlightuserdata(L, NULL);                  /* pg null */
    lua_setfield(L, -2, "null");                     /* pg */
    lua_pushinteger(L, PQlibVersion());              /* pg v */
    lua_setfield(L, -2, "libpq_version");            /* pg */
    return 1;
}
