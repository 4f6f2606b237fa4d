/*
 * wtt_http_response.c: the responses of the HTTP server: JSON errors made
 * in C, the response a route returns (string, file or stream) and streams
 * fed by Lua. See wtt_http_private.h for the other parts.
 */
#include "wtt_http_private.h"
#include "wtt_log.h"
#include "wtt_util.h"

#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define STREAM_BLOCK     (32 * 1024)


/* ---------------------------------------------------------------------------
 * Responses
 * ------------------------------------------------------------------------- */

static const char *
reason_phrase(int status)
{
    const char *p = MHD_get_reason_phrase_for((unsigned) status);
    return (p != NULL && p[0] != '\0') ? p : "Unknown";
}


/* A JSON error body; `detail` must not need escaping beyond quotes. */
static int
error_json(char *buf, size_t len, const char *code, const char *detail,
           const char *id)
{
    char clean[200];
    int  j = 0;

    for (int i = 0; detail[i] != '\0' && j < (int) sizeof(clean) - 1; i++) {
        char c = detail[i];
        clean[j++] = (c == '"' || c == '\\' || (unsigned char) c < ' ')
                     ? '\'' : c;
    }
    clean[j] = '\0';
    return snprintf(buf, len,
                    "{\"error\":\"%s\",\"detail\":\"%s\",\"request_id\":"
                    "\"%s\"}", code, clean, id);
}


/*
 * Queues `resp` (taking ownership). libmicrohttpd 0.9.75 closes the
 * connection after any response queued in the first callback (it assumes a
 * body it must refuse), so responses to body-less requests are held in
 * `pending` and queued at the next callback, which follows at once; that
 * keeps keep-alive working.
 */
static enum MHD_Result
queue(req_t *r, int status, struct MHD_Response *resp)
{
    enum MHD_Result rc;

    MHD_add_response_header(resp, "X-Request-Id", r->id);
    if (atomic_load(&wtt__http_draining)
        && MHD_get_response_header(resp, "Connection") == NULL)
    {
        /* Draining: this connection must not carry another request into
         * the moment accepting stops and idle connections are closed (a
         * request sent on a connection being closed cannot be told from
         * one the server never saw). The client's next request opens a
         * new connection, which a load balancer sends elsewhere. */
        MHD_add_response_header(resp, "Connection", "close");
    }
    r->status = status;
    if (r->defer) {
        r->pending = resp;
        return MHD_YES;
    }
    rc = MHD_queue_response(r->conn, (unsigned) status, resp);
    MHD_destroy_response(resp);
    return rc;
}


/* Queues a JSON error made in C (framing errors, Lua failures). */
enum MHD_Result
wtt__http_respond_error(req_t *r, int status, const char *code,
                        const char *detail)
{
    char                 body[512];
    int                  n = error_json(body, sizeof(body), code, detail,
                                        r->id);
    struct MHD_Response *resp;

    resp = MHD_create_response_from_buffer((size_t) n, body,
                                           MHD_RESPMEM_MUST_COPY);
    if (resp == NULL) {
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", "application/json");
    if (status == 503 || status == 413 || status >= 500) {
        MHD_add_response_header(resp, "Connection", "close");
    }
    return queue(r, status, resp);
}


/*
 * Answers an error while the body is still arriving. libmicrohttpd 0.9.75
 * cannot queue a response in that state, so the response is written to the
 * socket directly and the connection is closed (as nginx does for 413).
 */
enum MHD_Result
wtt__http_abort_upload(req_t *r, int status, const char *code,
                       const char *detail)
{
    const union MHD_ConnectionInfo *ci;
    char                            body[512], head[512];
    int                             n, h;

    n = error_json(body, sizeof(body), code, detail, r->id);
    h = snprintf(head, sizeof(head),
                 "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
                 "Content-Length: %d\r\nConnection: close\r\n"
                 "X-Request-Id: %s\r\n\r\n", status, reason_phrase(status),
                 n, r->id);
    ci = MHD_get_connection_info(r->conn,
                                 MHD_CONNECTION_INFO_CONNECTION_FD);
    if (ci != NULL) {
        ssize_t rc = send(ci->connect_fd, head, (size_t) h,
                          MSG_NOSIGNAL | MSG_DONTWAIT | MSG_MORE);
        if (rc == h) {
            rc = send(ci->connect_fd, body, (size_t) n,
                      MSG_NOSIGNAL | MSG_DONTWAIT);
        }
        shutdown(ci->connect_fd, SHUT_WR);
    }
    r->status = status;
    wtt_log(WTT_LOG_WARN, "http.upload_rejected", "error", code,
            "detail", detail, NULL);
    return MHD_NO;
}


static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max);


/*
 * Ends a response that cannot be completed after its headers went out.
 * libmicrohttpd 0.9.75 marks the connection closed on a reader error but
 * may not get back to it until the client gives up; shutting the socket
 * down tells the client at once that the body is incomplete.
 */
static void
drop_connection(req_t *r)
{
    const union MHD_ConnectionInfo *ci;

    ci = MHD_get_connection_info(r->conn,
                                 MHD_CONNECTION_INFO_CONNECTION_FD);
    if (ci != NULL) {
        shutdown(ci->connect_fd, SHUT_RDWR);
    }
}


/* Whether `fd` has `length` bytes from `offset`: a file response sent with
 * a length the file does not have would leave the client waiting for the
 * rest, so it is refused before the headers go out. */
static int
file_covers(int fd, double offset, double length)
{
    struct stat st;

    return fstat(fd, &st) == 0 && offset >= 0 && length >= 0
           && offset + length <= (double) st.st_size;
}


/* The file userdata at `idx`, or NULL when it is something else. */
static file_ud *
test_file(lua_State *L, int idx)
{
    file_ud *f = lua_touserdata(L, idx);

    if (f == NULL || !lua_getmetatable(L, idx)) {
        return NULL;
    }
    luaL_getmetatable(L, FILE_MT);
    if (!lua_rawequal(L, -1, -2)) {
        f = NULL;
    }
    lua_pop(L, 2);
    return f;
}
static void stream_free(void *cls);


/*
 * Caps the kernel's send buffer of a stream's socket. Linux grows it up to
 * tcp_wmem's maximum (megabytes) for a client that does not read, so a
 * stream's own bounded buffer would only fill after that much: the cap
 * keeps what one slow client can hold small, and makes it fall behind
 * (and be dropped, docs/web.md) soon.
 */
static void
limit_sndbuf(req_t *r, lua_Number bytes)
{
    const union MHD_ConnectionInfo *ci;
    int                             v;

    if (!(bytes >= 4096 && bytes <= 64 * 1024 * 1024)) {
        return;
    }
    v = (int) bytes;
    ci = MHD_get_connection_info(r->conn,
                                 MHD_CONNECTION_INFO_CONNECTION_FD);
    if (ci != NULL) {
        setsockopt(ci->connect_fd, SOL_SOCKET, SO_SNDBUF, &v, sizeof(v));
    }
}


/*
 * Builds the response from the Lua values at stack index `idx`:
 * status, body, headers, default content type. `body` is a string, nil, or
 * a table made by wtt.http: { kind = "file", fd = <file>, offset, length }
 * or { kind = "stream", next = fn, on_close = fn, poll_ms = n,
 * sndbuf = bytes | nil }.
 */
static enum MHD_Result
respond_lua(req_t *r, lua_State *L, int idx)
{
    struct MHD_Response *resp = NULL;
    int                  status = (int) lua_tointeger(L, idx);
    const char          *ctype = lua_tostring(L, idx + 3);

    if (status < 100 || status > 999) {
        wtt_log(WTT_LOG_ERROR, "http.bad_status", "error",
                "route returned no valid status", NULL);
        return wtt__http_respond_error(r, 500, "internal",
                                       "internal server error");
    }
    switch (lua_type(L, idx + 1)) {
    case LUA_TSTRING: {
        size_t      len;
        const char *s = lua_tolstring(L, idx + 1, &len);
        resp = MHD_create_response_from_buffer(len, (void *) s,
                                               MHD_RESPMEM_MUST_COPY);
        break;
    }
    case LUA_TNIL:
        resp = MHD_create_response_from_buffer(0, (void *) "",
                                               MHD_RESPMEM_PERSISTENT);
        break;
    case LUA_TTABLE: {
        const char *kind;
        lua_getfield(L, idx + 1, "kind");
        kind = lua_tostring(L, -1);
        lua_pop(L, 1);
        if (kind != NULL && strcmp(kind, "file") == 0) {
            file_ud *f;
            lua_getfield(L, idx + 1, "fd");
            f = test_file(L, -1);
            lua_getfield(L, idx + 1, "offset");
            lua_getfield(L, idx + 1, "length");
            if (f != NULL && f->fd >= 0 && !file_covers(f->fd,
                                                       lua_tonumber(L, -2),
                                                       lua_tonumber(L, -1)))
            {
                wtt_log(WTT_LOG_ERROR, "http.bad_file_range", "error",
                        "file response longer than the file", NULL);
            } else if (f != NULL && f->fd >= 0) {
                resp = MHD_create_response_from_fd_at_offset64(
                    (uint64_t) lua_tonumber(L, -1), f->fd,
                    (uint64_t) lua_tonumber(L, -2));
                if (resp != NULL) {
                    f->fd = -1;   /* the response owns it now */
                }
            }
            lua_pop(L, 3);
        } else if (kind != NULL && strcmp(kind, "stream") == 0) {
            lua_getfield(L, idx + 1, "next");
            r->stream_ref = luaL_ref(L, LUA_REGISTRYINDEX);
            lua_getfield(L, idx + 1, "on_close");
            r->on_close_ref = luaL_ref(L, LUA_REGISTRYINDEX);
            lua_getfield(L, idx + 1, "poll_ms");
            r->poll_ms = (int) luaL_optinteger(L, -1, 100);
            lua_pop(L, 1);
            lua_getfield(L, idx + 1, "sndbuf");
            if (lua_isnumber(L, -1)) {
                limit_sndbuf(r, lua_tonumber(L, -1));
            }
            lua_pop(L, 1);
            r->refs++;
            resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN,
                                                     STREAM_BLOCK,
                                                     stream_read, r,
                                                     stream_free);
            if (resp == NULL) {
                r->refs--;
            }
        }
        break;
    }
    default:
        break;
    }
    if (resp == NULL) {
        wtt_log(WTT_LOG_ERROR, "http.bad_body", "error",
                "route returned a body that cannot be sent", NULL);
        return wtt__http_respond_error(r, 500, "internal",
                                       "internal server error");
    }

    if (lua_istable(L, idx + 2)) {
        lua_pushnil(L);                                /* ... k */
        while (lua_next(L, idx + 2) != 0) {            /* ... k v */
            const char *name = lua_tostring(L, -2);
            if (name != NULL && lua_type(L, -1) == LUA_TTABLE) {
                int n = (int) lua_objlen(L, -1);
                for (int i = 1; i <= n; i++) {
                    lua_rawgeti(L, -1, i);             /* ... k v vi */
                    if (lua_isstring(L, -1)) {
                        MHD_add_response_header(resp, name,
                                                lua_tostring(L, -1));
                    }
                    lua_pop(L, 1);                     /* ... k v */
                }
            } else if (name != NULL && lua_isstring(L, -1)) {
                /* lua_tostring converts numbers in place; this copy keeps
                 * lua_next's key untouched. */
                lua_pushvalue(L, -1);                  /* ... k v v */
                MHD_add_response_header(resp, name, lua_tostring(L, -1));
                lua_pop(L, 1);                         /* ... k v */
            }
            lua_pop(L, 1);                             /* ... k */
        }
    }
    if (ctype != NULL
        && MHD_get_response_header(resp, "Content-Type") == NULL)
    {
        MHD_add_response_header(resp, "Content-Type", ctype);
    }
    return queue(r, status, resp);
}


/*
 * Handles the values left by a Lua call (dispatch or continuation) that
 * returned `rc`; pops them.
 */
enum MHD_Result
wtt__http_finish_lua(req_t *r, lua_State *L, int rc, int base)
{
    enum MHD_Result res;

    if (rc != 0) {
        const char *msg = lua_tostring(L, -1);
        wtt_log(WTT_LOG_ERROR, "http.lua_error", "error",
                msg != NULL ? msg : "(error object)", NULL);
        lua_settop(L, base);
        return wtt__http_respond_error(r, 500, "internal",
                                       "internal server error");
    }
    res = respond_lua(r, L, base + 1);
    lua_settop(L, base);
    return res;
}


/* ---------------------------------------------------------------------------
 * Streaming responses
 * ------------------------------------------------------------------------- */

/* How long next_chunk asked to park (its second value), or `def`. */
static lua_Number
park_ms(lua_State *L, int idx, lua_Number def)
{
    lua_Number ms = lua_type(L, idx) == LUA_TNUMBER ? lua_tonumber(L, idx)
                                                    : def;

    if (!(ms >= 0)) {
        ms = def;
    }
    return ms > 3600e3 ? 3600e3 : ms;
}


static ssize_t
stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    req_t     *r = cls;
    lua_State *L = r->slot->L;
    int        base, rc;
    size_t     n;

    for (;;) {
        if (atomic_load(&r->gone)) {
            /* The client hung up, or a waker dropped it. An error here
             * would leave the connection marked closed but never cleaned
             * up (libmicrohttpd 0.9.75 does not come back to it: its
             * socket stays open). Ending the body instead makes
             * libmicrohttpd write the last chunk on the socket shut down
             * here, and that failed write closes and frees the
             * connection at once. The stream did not finish: on_close
             * hears so (stream_done stays 0). */
            drop_connection(r);
            return MHD_CONTENT_READER_END_OF_STREAM;
        }
        if (r->pend_off < r->pend_len) {
            n = r->pend_len - r->pend_off;
            if (n > max) {
                n = max;
            }
            memcpy(buf, r->pend + r->pend_off, n);
            r->pend_off += n;
            return (ssize_t) n;
        }
        if (r->stream_done || atomic_load(&wtt__http_stopping)) {
            return MHD_CONTENT_READER_END_OF_STREAM;
        }
        if (r->park_after >= 0) {
            /* next_chunk said with its last text that nothing follows
             * for now: park without asking again (a wake since then
             * keeps it from parking, wtt__http_park). */
            uint64_t at = wtt_now_ms() + (uint64_t) r->park_after;
            r->park_after = -1;
            if (wtt__http_park(r, at)) {
                return 0;
            }
        }
        if (r->waker != NULL) {
            /* Cleared before asking: a wake from now on keeps the stream
             * from parking (wtt__http_park). */
            atomic_store(&r->waker->woken, 0);
        }
        base = lua_gettop(L);
        lua_rawgeti(L, LUA_REGISTRYINDEX, r->stream_ref);
        wtt__http_tls_req = r;
        rc = wtt__http_call_lua(r->t, L, 0, 2);
        wtt__http_tls_req = NULL;
        if (rc != 0) {
            const char *msg = lua_tostring(L, -1);
            wtt_log(WTT_LOG_ERROR, "http.stream_error", "error",
                    msg != NULL ? msg : "(error object)", NULL);
            lua_settop(L, base);
            drop_connection(r);
            return MHD_CONTENT_READER_END_WITH_ERROR;
        }
        if (lua_isnil(L, base + 1)) {
            lua_settop(L, base);
            r->stream_done = 1;
            return MHD_CONTENT_READER_END_OF_STREAM;
        }
        if (lua_type(L, base + 1) == LUA_TSTRING
            && lua_objlen(L, base + 1) > 0)
        {
            size_t      len;
            const char *s = lua_tolstring(L, base + 1, &len);
            free(r->pend);
            r->pend = wtt_malloc(len);
            memcpy(r->pend, s, len);
            r->pend_len = len;
            r->pend_off = 0;
            /* `text, ms`: park once it is sent. */
            r->park_after = lua_type(L, base + 2) == LUA_TNUMBER
                            ? (int) park_ms(L, base + 2, 0) : -1;
            lua_settop(L, base);
            continue;
        }
        {
            /* Nothing to send yet: park the connection for poll_ms, or
             * for what next_chunk asked (`false, ms`); a waker or the
             * client hanging up resumes it sooner. */
            lua_Number ms = park_ms(L, base + 2, r->poll_ms);
            lua_settop(L, base);
            if (wtt__http_park(r, wtt_now_ms() + (uint64_t) ms)) {
                return 0;
            }
        }
    }
}


static void
stream_free(void *cls)
{
    req_t     *r = cls;
    lua_State *L = r->slot->L;

    if (r->on_close_ref != LUA_NOREF && r->on_close_ref != LUA_REFNIL) {
        int base = lua_gettop(L);
        lua_rawgeti(L, LUA_REGISTRYINDEX, r->on_close_ref);
        lua_pushboolean(L, r->stream_done);
        if (wtt__http_call_lua(r->t, L, 1, 0) != 0) {
            wtt_log(WTT_LOG_ERROR, "http.stream_close_error", "error",
                    lua_isstring(L, -1) ? lua_tostring(L, -1) : "?", NULL);
        }
        lua_settop(L, base);
    }
    wtt__http_req_unref(r);
}
