/*
 * wtt_http_lua.c: the `wtt.core.http_server` Lua module: request accessors,
 * files for responses, reload control and introspection. Routes use the
 * friendlier `wtt.http` (lua/). See wtt_http_private.h for the other parts.
 */
#include "wtt_http_private.h"
#include "wtt_reload.h"
#include "wtt_util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <lauxlib.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>


/* ---------------------------------------------------------------------------
 * wtt.core.http_server: request accessors (valid only during the request's
 * own call)
 * ------------------------------------------------------------------------- */

static req_t *
check_req(lua_State *L)
{
    req_t *r = lua_touserdata(L, 1);
    return (r != NULL && r == wtt__http_tls_req) ? r : NULL;
}


#define REQ_OR_NIL(r)                                                     \
    if ((r) == NULL) {                                                    \
        lua_pushnil(L);                                                   \
        lua_pushliteral(L, "request is not active");                      \
        return 2;                                                         \
    }


/* httpd.header(ctx, name) -> value | nil */
static int
l_header(lua_State *L)
{
    req_t      *r = check_req(L);
    const char *v;

    REQ_OR_NIL(r);
    v = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
                                    luaL_checkstring(L, 2));
    if (v == NULL) {
        lua_pushnil(L);
    } else {
        lua_pushstring(L, v);
    }
    return 1;
}


static enum MHD_Result
push_header(void *cls, enum MHD_ValueKind kind, const char *key,
            const char *value)
{
    lua_State *L = cls;
    char       low[256];
    size_t     n = strlen(key);

    if (n >= sizeof(low)) {
        n = sizeof(low) - 1;
    }
    for (size_t i = 0; i < n; i++) {
        low[i] = (char) ((key[i] >= 'A' && key[i] <= 'Z') ? key[i] + 32
                                                          : key[i]);
    }
    lua_pushlstring(L, low, n);                        /* t k */
    lua_pushvalue(L, -1);                              /* t k k */
    lua_rawget(L, -3);                                 /* t k old */
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);                                 /* t k */
        lua_pushstring(L, value != NULL ? value : ""); /* t k v */
    } else {
        lua_pushliteral(L, ", ");
        lua_pushstring(L, value != NULL ? value : "");
        lua_concat(L, 3);                              /* t k old..v */
    }
    lua_rawset(L, -3);                                 /* t */
    return MHD_YES;
}




static enum MHD_Result
push_arg(void *cls, enum MHD_ValueKind kind, const char *key,
         const char *value)
{
    lua_State *L = cls;

    lua_getfield(L, -1, key);                          /* t old */
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);                                 /* t */
        if (value == NULL) {
            lua_pushboolean(L, 1);                     /* "?flag" */
        } else {
            lua_pushstring(L, value);
        }
        lua_setfield(L, -2, key);
        return MHD_YES;
    }
    if (!lua_istable(L, -1)) {                         /* t old */
        lua_createtable(L, 2, 0);                      /* t old arr */
        lua_insert(L, -2);                             /* t arr old */
        lua_rawseti(L, -2, 1);                         /* t arr */
        lua_pushvalue(L, -1);                          /* t arr arr */
        lua_setfield(L, -3, key);                      /* t arr */
    }
    if (value == NULL) {
        lua_pushboolean(L, 1);
    } else {
        lua_pushstring(L, value);
    }
    lua_rawseti(L, -2, (int) lua_objlen(L, -2) + 1);
    lua_pop(L, 1);                                     /* t */
    return MHD_YES;
}


/* Pushes a table filled by `iter` over the request's values of `kind`. */
static int
values_table(lua_State *L, enum MHD_ValueKind kind,
             MHD_KeyValueIterator iter)
{
    req_t *r = check_req(L);

    REQ_OR_NIL(r);
    lua_newtable(L);
    MHD_get_connection_values(r->conn, kind, iter, L);
    return 1;
}


/* httpd.headers(ctx) -> { lowercased name = value } (repeats joined) */
static int
l_headers(lua_State *L)
{
    return values_table(L, MHD_HEADER_KIND, push_header);
}


/* httpd.query(ctx) -> { name = value | {values...} } (decoded) */
static int
l_query(lua_State *L)
{
    return values_table(L, MHD_GET_ARGUMENT_KIND, push_arg);
}


/* httpd.client(ctx) -> address, port */
static int
l_client(lua_State *L)
{
    req_t                          *r = check_req(L);
    const union MHD_ConnectionInfo *ci;
    char                            buf[INET6_ADDRSTRLEN];
    int                             port = 0;

    REQ_OR_NIL(r);
    ci = MHD_get_connection_info(r->conn,
                                 MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (ci == NULL || ci->client_addr == NULL) {
        lua_pushnil(L);
        return 1;
    }
    if (ci->client_addr->sa_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const void *) ci->client_addr;
        inet_ntop(AF_INET6, &a->sin6_addr, buf, sizeof(buf));
        port = ntohs(a->sin6_port);
    } else {
        const struct sockaddr_in *a = (const void *) ci->client_addr;
        inet_ntop(AF_INET, &a->sin_addr, buf, sizeof(buf));
        port = ntohs(a->sin_port);
    }
    lua_pushstring(L, buf);
    lua_pushinteger(L, port);
    return 2;
}


/* httpd.set_route(ctx, pattern): the route pattern the request matched,
 * the `route` label of its request metrics (wtt_metrics.h). */
static int
l_set_route(lua_State *L)
{
    req_t      *r = check_req(L);
    const char *pattern = luaL_checkstring(L, 2);

    if (r != NULL) {
        snprintf(r->route, sizeof(r->route), "%s", pattern);
    }
    return 0;
}


/* httpd.body(ctx) -> string (raw bodies; "" when there was none) */
static int
l_body(lua_State *L)
{
    req_t *r = check_req(L);

    REQ_OR_NIL(r);
    lua_pushlstring(L, r->body != NULL ? r->body : "", r->body_len);
    return 1;
}


/* httpd.files(ctx) -> { {field, filename, content_type, size, path}... } */
static int
l_files(lua_State *L)
{
    req_t *r = check_req(L);
    int    n = 0;

    REQ_OR_NIL(r);
    lua_newtable(L);
    /* The list is built newest first; count to emit in arrival order. */
    for (upfile_t *f = r->files; f != NULL; f = f->next) {
        n++;
    }
    for (upfile_t *f = r->files; f != NULL; f = f->next) {
        lua_createtable(L, 0, 5);
        lua_pushstring(L, f->field);
        lua_setfield(L, -2, "field");
        lua_pushstring(L, f->filename);
        lua_setfield(L, -2, "filename");
        lua_pushstring(L, f->ctype);
        lua_setfield(L, -2, "content_type");
        lua_pushnumber(L, (lua_Number) f->size);
        lua_setfield(L, -2, "size");
        lua_pushstring(L, f->path);
        lua_setfield(L, -2, "path");
        lua_rawseti(L, -2, n--);
    }
    return 1;
}


/* httpd.form(ctx) -> { name = value } for non-file multipart/urlencoded */
static int
l_form(lua_State *L)
{
    req_t *r = check_req(L);

    REQ_OR_NIL(r);
    lua_newtable(L);
    for (field_t *d = r->fields; d != NULL; d = d->next) {
        lua_pushlstring(L, d->value != NULL ? d->value : "", d->len);
        lua_setfield(L, -2, d->name);
    }
    return 1;
}


/* httpd.keep(ctx, path) -> true | nil, err: the route took the temp file. */
static int
l_keep(lua_State *L)
{
    req_t      *r = check_req(L);
    const char *path = luaL_checkstring(L, 2);

    REQ_OR_NIL(r);
    for (upfile_t *f = r->files; f != NULL; f = f->next) {
        if (strcmp(f->path, path) == 0) {
            f->kept = 1;
            lua_pushboolean(L, 1);
            return 1;
        }
    }
    lua_pushnil(L);
    lua_pushliteral(L, "keep failed: not an upload of this request");
    return 2;
}


/* ---------------------------------------------------------------------------
 * wtt.core.http_server: wakers (wtt_http_server.h)
 * ------------------------------------------------------------------------- */

/*
 * httpd.waker(ctx) -> waker | nil, err: a handle another thread can wake
 * this request's stream with (in the handler or the stream's next_chunk).
 */
static int
l_waker(lua_State *L)
{
    req_t                  *r = check_req(L);
    struct wtt_http_waker **ud;

    REQ_OR_NIL(r);
    ud = lua_newuserdata(L, sizeof(*ud));
    *ud = wtt__http_waker_of(r);
    wtt_http_waker_ref(*ud);
    luaL_getmetatable(L, WTT_HTTP_WAKER_MT);
    lua_setmetatable(L, -2);
    return 1;
}


static int
waker_gc(lua_State *L)
{
    struct wtt_http_waker **ud = luaL_checkudata(L, 1, WTT_HTTP_WAKER_MT);

    wtt_http_waker_unref(*ud);
    *ud = NULL;
    return 0;
}


struct wtt_http_waker *
wtt_http_check_waker(lua_State *L, int idx)
{
    struct wtt_http_waker **ud = luaL_checkudata(L, idx, WTT_HTTP_WAKER_MT);

    if (*ud == NULL) {
        luaL_argerror(L, idx, "waker already released");
    }
    return *ud;
}


/* ---------------------------------------------------------------------------
 * wtt.core.http_server: files for responses
 * ------------------------------------------------------------------------- */

static int
file_close(lua_State *L)
{
    file_ud *f = luaL_checkudata(L, 1, FILE_MT);

    if (f->fd >= 0) {
        close(f->fd);
        f->fd = -1;
    }
    return 0;
}


/*
 * httpd.open(path, nofollow) -> file, size | nil, err. Regular files only;
 * with `nofollow` a symlink as the last component is refused.
 */
static int
l_open(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    int         flags = O_RDONLY | O_CLOEXEC;
    struct stat st;
    file_ud    *f;
    int         fd;

    if (lua_toboolean(L, 2)) {
        flags |= O_NOFOLLOW;
    }
    fd = open(path, flags);
    if (fd < 0) {
        lua_pushnil(L);
        lua_pushfstring(L, "open failed: %s", strerror(errno));
        return 2;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        lua_pushnil(L);
        lua_pushliteral(L, "open failed: not a regular file");
        return 2;
    }
    f = lua_newuserdata(L, sizeof(*f));
    f->fd = fd;
    f->size = st.st_size;
    luaL_getmetatable(L, FILE_MT);
    lua_setmetatable(L, -2);
    lua_pushnumber(L, (lua_Number) st.st_size);
    return 2;
}


/* ---------------------------------------------------------------------------
 * wtt.core.http_server: reload control and introspection
 * ------------------------------------------------------------------------- */

/* httpd.reload(reason) -> generation | nil, err, record */
static int
l_reload(lua_State *L)
{
    char     err[1024];
    uint64_t id = wtt_reload_apply(luaL_optstring(L, 1, "lua"), err,
                                   sizeof(err));
    if (id == 0) {
        lua_pushnil(L);
        lua_pushstring(L, err);
        return 2;
    }
    lua_pushnumber(L, (lua_Number) id);
    return 1;
}


/* httpd.rollback() -> generation | nil, err */
static int
l_rollback(lua_State *L)
{
    char     err[256];
    uint64_t id = wtt_reload_rollback(err, sizeof(err));

    if (id == 0) {
        lua_pushnil(L);
        lua_pushstring(L, err);
        return 2;
    }
    lua_pushnumber(L, (lua_Number) id);
    return 1;
}


static int
l_record(lua_State *L)
{
    wtt_reload_push_record(L);
    return 1;
}


static int
l_generation(lua_State *L)
{
    lua_pushnumber(L, (lua_Number) wtt_reload_current_id());
    return 1;
}


/* httpd.stats() -> { inflight, requests, threads, draining, stopping }:
 * draining from SIGTERM on (not ready), stopping once accepting stopped. */
static int
l_stats(lua_State *L)
{
    lua_createtable(L, 0, 5);
    lua_pushinteger(L, atomic_load(&wtt__http_inflight));
    lua_setfield(L, -2, "inflight");
    lua_pushnumber(L, (lua_Number) atomic_load(&wtt__http_total_requests));
    lua_setfield(L, -2, "requests");
    lua_pushinteger(L, wtt__http_cfg.threads);
    lua_setfield(L, -2, "threads");
    lua_pushboolean(L, atomic_load(&wtt__http_draining));
    lua_setfield(L, -2, "draining");
    lua_pushboolean(L, atomic_load(&wtt__http_stopping));
    lua_setfield(L, -2, "stopping");
    return 1;
}


/*
 * httpd.limits() -> the effective body limits and temp directory: the
 * server's configuration when this process serves, else what `wtt serve`
 * would use with this environment (wtt_http_config_from_env). The one
 * source of WTT_MAX_BODY, WTT_MAX_UPLOAD and WTT_MAX_FILE and their
 * defaults: the Lua side (wtt.service.config) reads them here.
 */
static int
l_limits(lua_State *L)
{
    struct wtt_http_config env;
    const struct wtt_http_config *c = &wtt__http_cfg;

    if (!atomic_load(&wtt__http_configured)) {
        wtt_http_config_from_env(&env);
        c = &env;
    }
    lua_createtable(L, 0, 8);
    lua_pushnumber(L, (lua_Number) c->max_body);
    lua_setfield(L, -2, "max_body");
    lua_pushnumber(L, (lua_Number) c->max_upload);
    lua_setfield(L, -2, "max_upload");
    lua_pushnumber(L, (lua_Number) c->max_file);
    lua_setfield(L, -2, "max_file");
    lua_pushnumber(L, c->route_timeout_s);
    lua_setfield(L, -2, "route_timeout");
    lua_pushstring(L, c->tmp_dir);
    lua_setfield(L, -2, "tmp_dir");
    return 1;
}


/* httpd.ct_equal(a, b) -> boolean, in time independent of the contents */
static int
l_ct_equal(lua_State *L)
{
    size_t      alen, blen;
    const char *a = luaL_checklstring(L, 1, &alen);
    const char *b = luaL_checklstring(L, 2, &blen);

    lua_pushboolean(L, wtt_ct_equal(a, alen, b, blen));
    return 1;
}


static const luaL_Reg httpd_funcs[] = {
    { "header",     l_header },
    { "headers",    l_headers },
    { "query",      l_query },
    { "client",     l_client },
    { "body",       l_body },
    { "set_route",  l_set_route },
    { "files",      l_files },
    { "form",       l_form },
    { "keep",       l_keep },
    { "waker",      l_waker },
    { "open",       l_open },
    { "reload",     l_reload },
    { "rollback",   l_rollback },
    { "record",     l_record },
    { "generation", l_generation },
    { "stats",      l_stats },
    { "limits",     l_limits },
    { "ct_equal",   l_ct_equal },
    { NULL, NULL },
};


int
luaopen_wtt_http_server(lua_State *L)
{
    if (luaL_newmetatable(L, FILE_MT)) {               /* mt */
        lua_pushcfunction(L, file_close);
        lua_setfield(L, -2, "__gc");
        lua_newtable(L);
        lua_pushcfunction(L, file_close);
        lua_setfield(L, -2, "close");
        lua_setfield(L, -2, "__index");
    }
    lua_pop(L, 1);
    if (luaL_newmetatable(L, WTT_HTTP_WAKER_MT)) {
        lua_pushcfunction(L, waker_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_pop(L, 1);
    lua_newtable(L);
    luaL_register(L, NULL, httpd_funcs);
    return 1;
}
