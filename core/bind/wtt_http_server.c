/*
 * wtt_http_server.c: the HTTP server (see wtt_http_server.h).
 *
 * Life of a request, all on the libmicrohttpd thread that owns the
 * connection:
 *
 *   first callback   framing checks (Content-Length/Transfer-Encoding, URL
 *                    length, NUL in the URL), then the Lua dispatcher of this
 *                    thread's current state: it answers at once (most GETs)
 *                    or asks for the body with the route's limits;
 *   body callbacks   raw bodies are buffered up to the limit, multipart bodies
 *                    go through MHD's post processor and file parts are
 *                    streamed to temp files;
 *   last callback    the route's continuation runs and its response is
 *                    queued (string, file descriptor or Lua-fed stream);
 *   completed        temp files not kept are removed, Lua references dropped.
 *
 * A watchdog (the timer thread) interrupts Lua code that runs past
 * WTT_ROUTE_TIMEOUT: it signals the thread, whose handler installs a count
 * hook. Hooks only fire in interpreted code, so route and plugin chunks are
 * compiled with jit.off (lua/wtt/app.lua); docs/http.md explains the trade.
 */
#include "wtt_http_server.h"
#include "wtt_reload.h"
#include "wtt_log.h"
#include "wtt_util.h"
#include "wtt_vm.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <lauxlib.h>
#include <microhttpd.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#define WATCHDOG_SIGNAL  SIGURG
#define PP_BUFFER        (64 * 1024)
#define MAX_PARTS        256
#define MAX_FIELD_BYTES  (64 * 1024)
#define STREAM_BLOCK     (32 * 1024)
#define FILE_MT          "wtt.core.http_server.file"

enum body_mode { BODY_NONE, BODY_RAW, BODY_FORM };

/* One Lua state built from one generation, owned by one thread. */
typedef struct slot {
    lua_State   *L;
    uint64_t     gen_id;
    int          dispatch_ref;
    int          inflight;
    int          retired;
    struct slot *next;
} slot_t;

/* Per libmicrohttpd thread; lives until the process exits. */
typedef struct tctx {
    pthread_t           tid;
    int                 index;
    slot_t             *cur;
    slot_t             *retired;
    uint64_t            failed_gen;
    uint64_t            counter;
    _Atomic uint64_t    deadline_ms;
    atomic_int          fired;
    lua_State *volatile running_L;
    struct req         *free_reqs;
    struct tctx        *next_all;
} tctx_t;

typedef struct upfile {
    char           *field;
    char           *filename;
    char           *ctype;
    char            path[PATH_MAX];
    int             fd;
    size_t          size;
    int             kept;
    struct upfile  *next;
} upfile_t;

typedef struct field {
    char         *name;
    char         *value;
    size_t        len;
    struct field *next;
} field_t;

typedef struct req {
    tctx_t                   *t;
    slot_t                   *slot;
    struct MHD_Connection    *conn;
    int                       refs;       /* request + stream response */
    char                      id[48];
    char                      method[16];
    char                      path[256];  /* for the access log */
    uint64_t                  start_ns;
    int                       status;
    int                       defer;      /* hold the response (see queue) */
    struct MHD_Response      *pending;
    int                       cont_ref;
    enum body_mode            mode;
    size_t                    max_body;
    size_t                    max_file;
    size_t                    received;
    char                     *body;
    size_t                    body_len;
    size_t                    body_cap;
    struct MHD_PostProcessor *pp;
    upfile_t                 *files;
    upfile_t                 *cur_file;
    field_t                  *fields;
    field_t                  *cur_field;
    int                       nparts;
    char                      closing[80];  /* "--boundary--" */
    size_t                    closing_len;
    char                      tail[80];     /* last bytes of the previous
                                               chunk, for a split delimiter */
    size_t                    tail_len;
    int                       closed_seen;
    int                       err_status;
    const char               *err_code;
    char                      err_detail[160];
    /* streaming responses */
    int                       stream_ref;
    int                       on_close_ref;
    int                       poll_ms;
    char                     *pend;
    size_t                    pend_len;
    size_t                    pend_off;
    int                       stream_done;
    uint64_t                  resume_at;
    struct req               *timer_next;
    struct req               *next_free;
} req_t;

/* A file descriptor handed from Lua to a file response. */
typedef struct {
    int   fd;
    off_t size;
} file_ud;

static struct wtt_http_config  cfg;
static atomic_int              configured;     /* cfg is set */
static struct MHD_Daemon      *daemon_;
static atomic_int              stopping;
static atomic_int              inflight;
static atomic_ullong           total_requests;
static char                    id_prefix[12];

static pthread_mutex_t         threads_lock = PTHREAD_MUTEX_INITIALIZER;
static tctx_t                 *all_threads;
static int                     nthreads;
static __thread tctx_t        *tls_t;
static __thread req_t         *tls_req;
static __thread struct MHD_Connection *tls_bad_url;

static pthread_mutex_t         timer_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t          timer_cond = PTHREAD_COND_INITIALIZER;
static req_t                  *timer_list;
static int                     timer_quit;
static pthread_t               timer_tid;


/* ---------------------------------------------------------------------------
 * Configuration
 * ------------------------------------------------------------------------- */

static size_t
env_size(const char *name, size_t def)
{
    long long v = wtt_env_int(name, (long long) def);
    return v > 0 ? (size_t) v : def;
}


void
wtt_http_config_from_env(struct wtt_http_config *c)
{
    const char *listen = wtt_env("WTT_LISTEN", "127.0.0.1:8008");
    const char *colon = strrchr(listen, ':');
    long        ncpu = sysconf(_SC_NPROCESSORS_ONLN);

    memset(c, 0, sizeof(*c));
    if (colon != NULL) {
        snprintf(c->listen_host, sizeof(c->listen_host), "%.*s",
                 (int) (colon - listen), listen);
        c->listen_port = atoi(colon + 1);
    } else {
        snprintf(c->listen_host, sizeof(c->listen_host), "127.0.0.1");
        c->listen_port = atoi(listen);
    }
    c->threads = (int) wtt_env_int("WTT_THREADS", ncpu > 0 ? ncpu : 1);
    c->conn_limit = (unsigned) env_size("WTT_CONN_LIMIT", 1024);
    c->per_ip_limit = (unsigned) env_size("WTT_PER_IP_LIMIT", 256);
    c->conn_timeout_s = (unsigned) env_size("WTT_CONN_TIMEOUT", 30);
    c->max_header_bytes = env_size("WTT_MAX_HEADER_BYTES", 32 * 1024);
    c->max_url_bytes = env_size("WTT_MAX_URL_BYTES", 8 * 1024);
    c->max_body = env_size("WTT_MAX_BODY", 1 << 20);
    c->max_upload = env_size("WTT_MAX_UPLOAD", 256u << 20);
    c->max_file = env_size("WTT_MAX_FILE", c->max_upload);
    c->route_timeout_s = (double) env_size("WTT_ROUTE_TIMEOUT_MS", 30000)
                         / 1000.0;
    c->shutdown_grace_s = (double) env_size("WTT_SHUTDOWN_GRACE_MS", 10000)
                          / 1000.0;
    c->access_log = strcasecmp(wtt_env("WTT_ACCESS_LOG", "on"), "off") != 0
                    && strcmp(wtt_env("WTT_ACCESS_LOG", "on"), "0") != 0;
    snprintf(c->tmp_dir, sizeof(c->tmp_dir), "%s",
             wtt_env("WTT_TMP_DIR", wtt_env("TMPDIR", "/tmp")));
    if (c->threads < 1) {
        c->threads = 1;
    }
}


/* ---------------------------------------------------------------------------
 * Threads and their Lua states
 * ------------------------------------------------------------------------- */

static tctx_t *
thread_ctx(void)
{
    tctx_t *t = tls_t;

    if (t != NULL) {
        return t;
    }
    t = wtt_calloc(1, sizeof(*t));
    t->tid = pthread_self();
    pthread_mutex_lock(&threads_lock);
    t->index = nthreads++;
    t->next_all = all_threads;
    all_threads = t;
    pthread_mutex_unlock(&threads_lock);
    tls_t = t;
    return t;
}


static void
slot_close(slot_t *s)
{
    lua_close(s->L);
    free(s);
}


/* Drops one request's hold on `s`; closes it when retired and unused. */
static void
slot_unref(tctx_t *t, slot_t *s)
{
    if (--s->inflight > 0 || !s->retired) {
        return;
    }
    for (slot_t **pp = &t->retired; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == s) {
            *pp = s->next;
            break;
        }
    }
    slot_close(s);
}


/*
 * Returns the slot new requests on this thread should use, building a state
 * for a newer generation first. A build that fails keeps the old slot (the
 * validator already built it once, so this is rare) and is not retried
 * until the next generation. NULL only when no state could ever be built.
 */
static slot_t *
current_slot(tctx_t *t)
{
    uint64_t        want = wtt_reload_current_id();
    struct wtt_generation *g;
    lua_State      *L;
    slot_t         *s, *old;
    char            err[512];

    if ((t->cur != NULL && t->cur->gen_id == want) || t->failed_gen == want) {
        return t->cur;
    }
    g = wtt_reload_acquire();
    if (g == NULL) {
        return t->cur;
    }
    L = wtt_vm_new();
    if (L == NULL || wtt_reload_build(L, g, err, sizeof(err)) != 0) {
        if (L == NULL) {
            snprintf(err, sizeof(err), "cannot create a Lua state");
        } else {
            lua_close(L);
        }
        t->failed_gen = wtt_reload_id(g);
        wtt_log(WTT_LOG_ERROR, "http.state_build_failed", "error", err, NULL);
        wtt_reload_release(g);
        return t->cur;
    }
    s = wtt_calloc(1, sizeof(*s));
    s->L = L;
    s->gen_id = wtt_reload_id(g);
    s->dispatch_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    wtt_reload_release(g);

    old = t->cur;
    t->cur = s;
    if (old != NULL) {
        if (old->inflight == 0) {
            slot_close(old);
        } else {
            old->retired = 1;
            old->next = t->retired;
            t->retired = old;
        }
    }
    return s;
}


/* ---------------------------------------------------------------------------
 * Watchdog
 * ------------------------------------------------------------------------- */

static void
timeout_hook(lua_State *L, lua_Debug *ar)
{
    tctx_t  *t = tls_t;
    uint64_t d;

    lua_sethook(L, NULL, 0, 0);
    d = t != NULL ? atomic_load(&t->deadline_ms) : 0;
    if (d == 0 || wtt_now_ms() < d) {
        return;     /* a late signal for a request that already ended */
    }
    lua_createtable(L, 0, 3);
    lua_pushinteger(L, 503);
    lua_setfield(L, -2, "status");
    lua_pushliteral(L, "timeout");
    lua_setfield(L, -2, "error");
    lua_pushliteral(L, "the route ran longer than WTT_ROUTE_TIMEOUT_MS");
    lua_setfield(L, -2, "detail");
    lua_error(L);
}


/* Runs on the stuck thread; only flags the state, like LuaJIT's profiler. */
static void
on_watchdog_signal(int sig)
{
    tctx_t    *t = tls_t;
    lua_State *L;
    int        saved = errno;

    if (t != NULL && (L = t->running_L) != NULL
        && atomic_load(&t->deadline_ms) != 0)
    {
        lua_sethook(L, timeout_hook, LUA_MASKCOUNT, 1);
    }
    errno = saved;
}


/* lua_pcall under the watchdog. */
static int
call_lua(tctx_t *t, lua_State *L, int nargs, int nresults)
{
    int rc;

    atomic_store(&t->fired, 0);
    t->running_L = L;
    atomic_store(&t->deadline_ms,
                 wtt_now_ms() + (uint64_t) (cfg.route_timeout_s * 1000.0));
    rc = lua_pcall(L, nargs, nresults, 0);
    atomic_store(&t->deadline_ms, 0);
    t->running_L = NULL;
    if (atomic_load(&t->fired)) {
        lua_sethook(L, NULL, 0, 0);
    }
    return rc;
}


static void
watchdog_scan(uint64_t now)
{
    pthread_mutex_lock(&threads_lock);
    for (tctx_t *t = all_threads; t != NULL; t = t->next_all) {
        uint64_t d = atomic_load(&t->deadline_ms);
        if (d != 0 && now >= d && !atomic_exchange(&t->fired, 1)) {
            wtt_log(WTT_LOG_ERROR, "http.watchdog", "action",
                    "interrupting a route past its deadline", NULL);
            pthread_kill(t->tid, WATCHDOG_SIGNAL);
        }
    }
    pthread_mutex_unlock(&threads_lock);
}


/* ---------------------------------------------------------------------------
 * Timer thread: watchdog scans and resuming suspended streams
 * ------------------------------------------------------------------------- */

static void
timer_schedule(req_t *r, uint64_t at)
{
    pthread_mutex_lock(&timer_lock);
    r->resume_at = at;
    r->timer_next = timer_list;
    timer_list = r;
    pthread_cond_signal(&timer_cond);
    pthread_mutex_unlock(&timer_lock);
}


static void *
timer_main(void *arg)
{
    pthread_mutex_lock(&timer_lock);
    while (!timer_quit) {
        uint64_t        now = wtt_now_ms(), next = now + 50;
        struct timespec ts;

        for (req_t **pp = &timer_list; *pp != NULL;) {
            req_t *r = *pp;
            if (r->resume_at <= now || atomic_load(&stopping)) {
                *pp = r->timer_next;
                MHD_resume_connection(r->conn);
            } else {
                if (r->resume_at < next) {
                    next = r->resume_at;
                }
                pp = &r->timer_next;
            }
        }
        pthread_mutex_unlock(&timer_lock);
        watchdog_scan(now);
        pthread_mutex_lock(&timer_lock);
        if (timer_quit) {
            break;
        }
        clock_gettime(CLOCK_REALTIME, &ts);
        {
            uint64_t wait = next > now ? next - now : 1;
            ts.tv_nsec += (long) (wait % 1000) * 1000000L;
            ts.tv_sec += (time_t) (wait / 1000) + ts.tv_nsec / 1000000000L;
            ts.tv_nsec %= 1000000000L;
        }
        pthread_cond_timedwait(&timer_cond, &timer_lock, &ts);
    }
    pthread_mutex_unlock(&timer_lock);
    return NULL;
}


/* ---------------------------------------------------------------------------
 * Requests
 * ------------------------------------------------------------------------- */

static req_t *
req_new(tctx_t *t, struct MHD_Connection *conn)
{
    req_t *r = t->free_reqs;

    if (r != NULL) {
        t->free_reqs = r->next_free;
    } else {
        r = wtt_malloc(sizeof(*r));
    }
    memset(r, 0, sizeof(*r));
    r->t = t;
    r->conn = conn;
    r->refs = 1;
    r->cont_ref = LUA_NOREF;
    r->stream_ref = LUA_NOREF;
    r->on_close_ref = LUA_NOREF;
    r->start_ns = wtt_now_ns();
    return r;
}


static void
uploads_cleanup(req_t *r)
{
    upfile_t *f, *fn;
    field_t  *d, *dn;

    for (f = r->files; f != NULL; f = fn) {
        fn = f->next;
        if (f->fd >= 0) {
            close(f->fd);
        }
        if (!f->kept && f->path[0] != '\0') {
            unlink(f->path);
        }
        free(f->field);
        free(f->filename);
        free(f->ctype);
        free(f);
    }
    for (d = r->fields; d != NULL; d = dn) {
        dn = d->next;
        free(d->name);
        free(d->value);
        free(d);
    }
    r->files = NULL;
    r->fields = NULL;
}


/* Drops one reference; the last one releases everything the request held. */
static void
req_unref(req_t *r)
{
    tctx_t *t = r->t;

    if (--r->refs > 0) {
        return;
    }
    if (r->pp != NULL) {
        MHD_destroy_post_processor(r->pp);
        r->pp = NULL;
    }
    uploads_cleanup(r);
    free(r->body);
    free(r->pend);
    if (r->slot != NULL) {
        lua_State *L = r->slot->L;
        luaL_unref(L, LUA_REGISTRYINDEX, r->cont_ref);
        luaL_unref(L, LUA_REGISTRYINDEX, r->stream_ref);
        luaL_unref(L, LUA_REGISTRYINDEX, r->on_close_ref);
        slot_unref(t, r->slot);
    }
    r->next_free = t->free_reqs;
    t->free_reqs = r;
    atomic_fetch_sub(&inflight, 1);
}


/* X-Request-Id from the client when it is sane, else a fresh one. */
static void
make_id(req_t *r)
{
    const char *in = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
                                                 "X-Request-Id");
    if (in != NULL) {
        size_t n = strlen(in);
        int    ok = n > 0 && n < sizeof(r->id);
        for (size_t i = 0; ok && i < n; i++) {
            char c = in[i];
            ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z')
                 || (c >= 'A' && c <= 'Z') || c == '-' || c == '_'
                 || c == '.';
        }
        if (ok) {
            memcpy(r->id, in, n + 1);
            return;
        }
    }
    {
        /* prefix (8 hex) + thread (2 hex) + counter (10 hex), no printf */
        static const char hex[] = "0123456789abcdef";
        uint64_t          v = ++r->t->counter;
        char             *p = r->id + 10;

        memcpy(r->id, id_prefix, 8);
        r->id[8] = hex[(r->t->index >> 4) & 15];
        r->id[9] = hex[r->t->index & 15];
        for (int i = 9; i >= 0; i--, v >>= 4) {
            p[i] = hex[v & 15];
        }
        r->id[20] = '\0';
    }
}


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
static enum MHD_Result
respond_error(req_t *r, int status, const char *code, const char *detail)
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
static enum MHD_Result
abort_upload(req_t *r, int status, const char *code, const char *detail)
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
 * Builds the response from the Lua values at stack index `idx`:
 * status, body, headers, default content type. `body` is a string, nil, or
 * a table made by wtt.http: { kind = "file", fd = <file>, offset, length }
 * or { kind = "stream", next = fn, on_close = fn, poll_ms = n }.
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
        return respond_error(r, 500, "internal", "internal server error");
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
        return respond_error(r, 500, "internal", "internal server error");
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
    if (atomic_load(&stopping)) {
        MHD_add_response_header(resp, "Connection", "close");
    }
    return queue(r, status, resp);
}


/*
 * Handles the values left by a Lua call (dispatch or continuation) that
 * returned `rc`; pops them.
 */
static enum MHD_Result
finish_lua(req_t *r, lua_State *L, int rc, int base)
{
    enum MHD_Result res;

    if (rc != 0) {
        const char *msg = lua_tostring(L, -1);
        wtt_log(WTT_LOG_ERROR, "http.lua_error", "error",
                msg != NULL ? msg : "(error object)", NULL);
        lua_settop(L, base);
        return respond_error(r, 500, "internal", "internal server error");
    }
    res = respond_lua(r, L, base + 1);
    lua_settop(L, base);
    return res;
}


/* ---------------------------------------------------------------------------
 * Streaming responses
 * ------------------------------------------------------------------------- */

static ssize_t
stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    req_t     *r = cls;
    lua_State *L = r->slot->L;
    int        base, rc;
    size_t     n;

    for (;;) {
        if (r->pend_off < r->pend_len) {
            n = r->pend_len - r->pend_off;
            if (n > max) {
                n = max;
            }
            memcpy(buf, r->pend + r->pend_off, n);
            r->pend_off += n;
            return (ssize_t) n;
        }
        if (r->stream_done || atomic_load(&stopping)) {
            return MHD_CONTENT_READER_END_OF_STREAM;
        }
        base = lua_gettop(L);
        lua_rawgeti(L, LUA_REGISTRYINDEX, r->stream_ref);
        tls_req = r;
        rc = call_lua(r->t, L, 0, 1);
        tls_req = NULL;
        if (rc != 0) {
            const char *msg = lua_tostring(L, -1);
            wtt_log(WTT_LOG_ERROR, "http.stream_error", "error",
                    msg != NULL ? msg : "(error object)", NULL);
            lua_settop(L, base);
            drop_connection(r);
            return MHD_CONTENT_READER_END_WITH_ERROR;
        }
        if (lua_isnil(L, -1)) {
            lua_settop(L, base);
            r->stream_done = 1;
            return MHD_CONTENT_READER_END_OF_STREAM;
        }
        if (lua_type(L, -1) == LUA_TSTRING && lua_objlen(L, -1) > 0) {
            size_t      len;
            const char *s = lua_tolstring(L, -1, &len);
            free(r->pend);
            r->pend = wtt_malloc(len);
            memcpy(r->pend, s, len);
            r->pend_len = len;
            r->pend_off = 0;
            lua_settop(L, base);
            continue;
        }
        lua_settop(L, base);
        /* Nothing to send yet: park the connection, the timer thread wakes
         * it after poll_ms. */
        MHD_suspend_connection(r->conn);
        timer_schedule(r, wtt_now_ms() + (uint64_t) r->poll_ms);
        return 0;
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
        if (call_lua(r->t, L, 1, 0) != 0) {
            wtt_log(WTT_LOG_ERROR, "http.stream_close_error", "error",
                    lua_isstring(L, -1) ? lua_tostring(L, -1) : "?", NULL);
        }
        lua_settop(L, base);
    }
    req_unref(r);
}


/* ---------------------------------------------------------------------------
 * Request bodies
 * ------------------------------------------------------------------------- */

static enum MHD_Result
on_part(void *cls, enum MHD_ValueKind kind, const char *key,
        const char *filename, const char *ctype, const char *encoding,
        const char *data, uint64_t off, size_t size)
{
    req_t *r = cls;

    if (key == NULL) {
        key = "";
    }
    if (filename != NULL) {
        upfile_t *f = r->cur_file;
        if (off == 0 && (f == NULL || f->size > 0
                         || strcmp(f->field, key) != 0
                         || strcmp(f->filename, filename) != 0))
        {
            if (++r->nparts > MAX_PARTS) {
                r->err_status = 400;
                r->err_code = "bad_request";
                snprintf(r->err_detail, sizeof(r->err_detail),
                         "more than %d multipart parts", MAX_PARTS);
                return MHD_NO;
            }
            if (f != NULL && f->fd >= 0) {
                close(f->fd);
                f->fd = -1;
            }
            f = wtt_calloc(1, sizeof(*f));
            f->field = wtt_strdup(key);
            f->filename = wtt_strdup(filename);
            f->ctype = wtt_strdup(ctype != NULL ? ctype : "");
            snprintf(f->path, sizeof(f->path), "%s/wtt-upload-XXXXXX",
                     cfg.tmp_dir);
            f->fd = mkostemp(f->path, O_CLOEXEC);
            f->next = r->files;
            r->files = f;
            r->cur_file = f;
            if (f->fd < 0) {
                f->path[0] = '\0';
                r->err_status = errno == ENOSPC ? 507 : 500;
                r->err_code = "storage";
                snprintf(r->err_detail, sizeof(r->err_detail),
                         "cannot store upload: %s", strerror(errno));
                return MHD_NO;
            }
        }
        if (f->size + size > r->max_file) {
            r->err_status = 413;
            r->err_code = "too_large";
            snprintf(r->err_detail, sizeof(r->err_detail),
                     "file part larger than %zu bytes", r->max_file);
            return MHD_NO;
        }
        for (size_t done = 0; done < size;) {
            ssize_t n = write(f->fd, data + done, size - done);
            if (n < 0 && errno == EINTR) {
                continue;
            }
            if (n <= 0) {
                r->err_status = errno == ENOSPC ? 507 : 500;
                r->err_code = "storage";
                snprintf(r->err_detail, sizeof(r->err_detail),
                         "cannot store upload: %s", strerror(errno));
                return MHD_NO;
            }
            done += (size_t) n;
        }
        f->size += size;
        return MHD_YES;
    }

    /* A plain field: kept in memory, small. */
    {
        field_t *d = r->cur_field;
        if (off == 0 || d == NULL || strcmp(d->name, key) != 0) {
            if (++r->nparts > MAX_PARTS) {
                r->err_status = 400;
                r->err_code = "bad_request";
                snprintf(r->err_detail, sizeof(r->err_detail),
                         "more than %d multipart parts", MAX_PARTS);
                return MHD_NO;
            }
            d = wtt_calloc(1, sizeof(*d));
            d->name = wtt_strdup(key);
            d->next = r->fields;
            r->fields = d;
            r->cur_field = d;
        }
        if (d->len + size > MAX_FIELD_BYTES) {
            r->err_status = 413;
            r->err_code = "too_large";
            snprintf(r->err_detail, sizeof(r->err_detail),
                     "form field larger than %d bytes", MAX_FIELD_BYTES);
            return MHD_NO;
        }
        d->value = wtt_realloc(d->value, d->len + size + 1);
        memcpy(d->value + d->len, data, size);
        d->len += size;
        d->value[d->len] = '\0';
    }
    return MHD_YES;
}


/*
 * Watches a multipart body for its closing delimiter. libmicrohttpd's post
 * processor treats text without any boundary as preamble and reports
 * success, so a body that never closes is caught here.
 */
static void
scan_closing(req_t *r, const char *data, size_t n)
{
    char   join[160];
    size_t k, take;

    if (r->closed_seen || r->closing_len == 0) {
        return;
    }
    k = r->closing_len;
    take = n < k - 1 ? n : k - 1;
    memcpy(join, r->tail, r->tail_len);
    memcpy(join + r->tail_len, data, take);
    if (memmem(join, r->tail_len + take, r->closing, k) != NULL
        || memmem(data, n, r->closing, k) != NULL)
    {
        r->closed_seen = 1;
        return;
    }
    /* Keep the last k-1 bytes of everything seen so far. */
    if (n >= k - 1) {
        memcpy(r->tail, data + n - (k - 1), k - 1);
        r->tail_len = k - 1;
    } else {
        size_t keep = r->tail_len + n > k - 1 ? k - 1 - n : r->tail_len;
        memmove(r->tail, r->tail + r->tail_len - keep, keep);
        memcpy(r->tail + keep, data, n);
        r->tail_len = keep + n;
    }
}


static enum MHD_Result
take_body(req_t *r, const char *data, size_t *size)
{
    size_t n = *size;

    *size = 0;
    r->received += n;
    if (r->mode == BODY_RAW) {
        if (r->received > r->max_body) {
            char detail[96];
            snprintf(detail, sizeof(detail), "body larger than %zu bytes",
                     r->max_body);
            return abort_upload(r, 413, "too_large", detail);
        }
        if (r->body_len + n > r->body_cap) {
            size_t cap = r->body_cap ? r->body_cap : 4096;
            char  *nb;
            while (cap < r->body_len + n) {
                cap *= 2;
            }
            nb = realloc(r->body, cap);
            if (nb == NULL) {
                return abort_upload(r, 503, "unavailable",
                                    "out of memory for the body");
            }
            r->body = nb;
            r->body_cap = cap;
        }
        memcpy(r->body + r->body_len, data, n);
        r->body_len += n;
        return MHD_YES;
    }
    if (r->received > r->max_body) {
        char detail[96];
        snprintf(detail, sizeof(detail), "upload larger than %zu bytes",
                 r->max_body);
        return abort_upload(r, 413, "too_large", detail);
    }
    scan_closing(r, data, n);
    if (MHD_post_process(r->pp, data, n) != MHD_YES) {
        if (r->err_status != 0) {
            return abort_upload(r, r->err_status, r->err_code,
                                r->err_detail);
        }
        return abort_upload(r, 400, "bad_request", "malformed form body");
    }
    return MHD_YES;
}


/* The whole body is in: close the parser and run the continuation. */
static enum MHD_Result
finish_body(req_t *r)
{
    lua_State *L = r->slot->L;
    int        base, rc;

    if (r->pp != NULL) {
        enum MHD_Result ok = MHD_destroy_post_processor(r->pp);
        r->pp = NULL;
        if (r->cur_file != NULL && r->cur_file->fd >= 0) {
            close(r->cur_file->fd);
            r->cur_file->fd = -1;
        }
        if (ok != MHD_YES || (r->closing_len > 0 && !r->closed_seen)) {
            return respond_error(r, 400, "bad_request",
                                 "malformed or truncated multipart body");
        }
    }
    base = lua_gettop(L);
    lua_rawgeti(L, LUA_REGISTRYINDEX, r->cont_ref);
    tls_req = r;
    wtt_log_set_id(r->id);
    rc = call_lua(r->t, L, 0, 4);
    tls_req = NULL;
    return finish_lua(r, L, rc, base);
}


/*
 * Takes the boundary of a multipart Content-Type into r->closing as the
 * closing delimiter "--<boundary>--". Returns -1 when it is missing or not
 * 1..70 characters (RFC 2046).
 */
static int
take_boundary(req_t *r, const char *ctype)
{
    const char *b = strcasestr(ctype, "boundary=");
    size_t      n;

    if (b == NULL) {
        return -1;
    }
    b += 9;
    if (*b == '"') {
        const char *e = strchr(b + 1, '"');
        b++;
        n = e != NULL ? (size_t) (e - b) : 0;
    } else {
        n = strcspn(b, "; \t");
    }
    if (n == 0 || n > 70 || memchr(b, '\0', n) != NULL) {
        return -1;
    }
    r->closing_len = (size_t) snprintf(r->closing, sizeof(r->closing),
                                       "--%.*s--", (int) n, b);
    return 0;
}


/* ---------------------------------------------------------------------------
 * The access handler
 * ------------------------------------------------------------------------- */

static enum MHD_Result
sum_args(void *cls, enum MHD_ValueKind kind, const char *key,
         const char *value)
{
    size_t *n = cls;

    *n += strlen(key) + (value != NULL ? strlen(value) : 0) + 2;
    return MHD_YES;
}


/* Length of the decoded path plus query: MHD hands the path alone. */
static size_t
url_length(struct MHD_Connection *conn, const char *url)
{
    size_t n = strlen(url);

    MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, sum_args, &n);
    return n;
}


static enum MHD_Result
count_cl(void *cls, enum MHD_ValueKind kind, const char *key,
         const char *value)
{
    const char **first = ((const char **) cls);
    int         *mismatch = (int *) (first + 1);

    if (strcasecmp(key, "Content-Length") == 0) {
        if (*first == NULL) {
            *first = value;
        } else if (strcmp(*first, value) != 0) {
            *mismatch = 1;
        }
    }
    return MHD_YES;
}


/*
 * RFC 9112 framing checks that libmicrohttpd 0.9.75 leaves to the
 * application. Returns 0 or an HTTP status, with `detail`.
 */
static int
check_framing(struct MHD_Connection *conn, int *has_body,
              unsigned long long *clen, const char **detail)
{
    const char *te = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                 "Transfer-Encoding");
    const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                 "Content-Length");
    *has_body = 0;
    *clen = 0;
    if (te != NULL && cl != NULL) {
        *detail = "both Content-Length and Transfer-Encoding";
        return 400;
    }
    if (te != NULL) {
        if (strcasecmp(te, "chunked") != 0) {
            *detail = "unsupported Transfer-Encoding";
            return 501;
        }
        *has_body = 1;
        return 0;
    }
    if (cl != NULL) {
        struct { const char *first; int mismatch; } seen = { NULL, 0 };
        char *end;
        MHD_get_connection_values(conn, MHD_HEADER_KIND, count_cl, &seen);
        if (seen.mismatch) {
            *detail = "conflicting Content-Length headers";
            return 400;
        }
        errno = 0;
        *clen = strtoull(cl, &end, 10);
        if (errno != 0 || end == cl || *end != '\0' || cl[0] == '-') {
            *detail = "invalid Content-Length";
            return 400;
        }
        *has_body = *clen > 0;
    }
    return 0;
}


static enum MHD_Result
first_call(struct MHD_Connection *conn, const char *url, const char *method,
           void **req_cls)
{
    tctx_t            *t = thread_ctx();
    req_t             *r = req_new(t, conn);
    slot_t            *s;
    lua_State         *L;
    const char        *detail = NULL, *ctype;
    unsigned long long clen;
    int                has_body, status, base, rc;

    *req_cls = r;
    atomic_fetch_add(&inflight, 1);
    atomic_fetch_add(&total_requests, 1);
    make_id(r);
    wtt_log_set_id(r->id);
    snprintf(r->method, sizeof(r->method), "%s", method);
    if (cfg.access_log) {
        snprintf(r->path, sizeof(r->path), "%s", url);
    }

    if (atomic_load(&stopping)) {
        return respond_error(r, 503, "unavailable", "server shutting down");
    }
    if (tls_bad_url != NULL) {
        /* The flag is for this request's URL, decoded just before this
         * call; cleared either way so it can never outlive one request. */
        int bad = tls_bad_url == conn;
        tls_bad_url = NULL;
        if (bad) {
            return respond_error(r, 400, "bad_request",
                                 "NUL byte in the URL");
        }
    }
    if (url_length(conn, url) > cfg.max_url_bytes) {
        return respond_error(r, 414, "uri_too_long", "URL too long");
    }
    status = check_framing(conn, &has_body, &clen, &detail);
    if (status != 0) {
        return respond_error(r, status, "bad_request", detail);
    }
    r->defer = !has_body;

    s = current_slot(t);
    if (s == NULL) {
        return respond_error(r, 503, "unavailable", "routes failed to load");
    }
    r->slot = s;
    s->inflight++;
    L = s->L;
    ctype = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                        "Content-Type");

    base = lua_gettop(L);
    lua_rawgeti(L, LUA_REGISTRYINDEX, s->dispatch_ref);
    lua_pushlightuserdata(L, r);
    lua_pushstring(L, method);
    lua_pushstring(L, url);
    lua_pushstring(L, r->id);
    lua_pushboolean(L, has_body);
    if (ctype != NULL) {
        lua_pushstring(L, ctype);
    } else {
        lua_pushnil(L);
    }
    tls_req = r;
    rc = call_lua(t, L, 6, 5);
    tls_req = NULL;
    if (rc != 0 || lua_tointeger(L, base + 1) != 0) {
        return finish_lua(r, L, rc, base);
    }

    /* The route wants the body: 0, continuation, mode, limit, file limit. */
    {
        const char *mode = lua_tostring(L, base + 3);
        lua_Number  limit = lua_tonumber(L, base + 4);
        lua_Number  flimit = lua_tonumber(L, base + 5);

        r->mode = (mode != NULL && strcmp(mode, "form") == 0) ? BODY_FORM
                                                              : BODY_RAW;
        r->max_body = limit > 0 ? (size_t) limit : cfg.max_body;
        r->max_file = flimit > 0 ? (size_t) flimit : cfg.max_file;
        lua_pushvalue(L, base + 2);
        r->cont_ref = luaL_ref(L, LUA_REGISTRYINDEX);
        lua_settop(L, base);
    }
    if (clen > r->max_body) {
        /* Queued before the body is read: no 100 Continue goes out. */
        char d[96];
        snprintf(d, sizeof(d), "body larger than %zu bytes", r->max_body);
        return respond_error(r, 413, "too_large", d);
    }
    if (r->mode == BODY_FORM) {
        if (ctype == NULL
            || (strncasecmp(ctype, "multipart/form-data", 19) == 0
                && take_boundary(r, ctype) != 0))
        {
            return respond_error(r, 400, "bad_request",
                                 "missing or invalid multipart boundary");
        }
        r->pp = MHD_create_post_processor(conn, PP_BUFFER, on_part, r);
        if (r->pp == NULL) {
            return respond_error(r, 400, "bad_request",
                                 "unsupported form encoding");
        }
    }
    return MHD_YES;
}


static enum MHD_Result
on_access(void *cls, struct MHD_Connection *conn, const char *url,
          const char *method, const char *version, const char *upload_data,
          size_t *upload_data_size, void **req_cls)
{
    req_t *r = *req_cls;

    if (r == NULL) {
        return first_call(conn, url, method, req_cls);
    }
    wtt_log_set_id(r->id);
    if (r->pending != NULL) {
        struct MHD_Response *resp = r->pending;
        enum MHD_Result      rc;

        r->pending = NULL;
        rc = MHD_queue_response(conn, (unsigned) r->status, resp);
        MHD_destroy_response(resp);
        return rc;
    }
    if (*upload_data_size != 0) {
        return take_body(r, upload_data, upload_data_size);
    }
    return finish_body(r);
}


static void
on_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
             enum MHD_RequestTerminationCode toe)
{
    req_t *r = *req_cls;

    if (r == NULL) {
        return;
    }
    *req_cls = NULL;
    if (r->pending != NULL) {
        /* Never queued (the connection ended first). Destroying it runs
         * stream_free for a stream response, which drops its reference. */
        struct MHD_Response *resp = r->pending;
        r->pending = NULL;
        MHD_destroy_response(resp);
    }
    if (cfg.access_log) {
        char status[8], ms[24];
        snprintf(status, sizeof(status), "%d", r->status);
        snprintf(ms, sizeof(ms), "%.3f",
                 (double) (wtt_now_ns() - r->start_ns) / 1e6);
        wtt_log_set_id(r->id);
        wtt_log(toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? WTT_LOG_INFO
                                                           : WTT_LOG_WARN,
                "http.request", "method", r->method, "path", r->path,
                "status", status, "ms", ms,
                "end", toe == MHD_REQUEST_TERMINATED_COMPLETED_OK
                       ? "ok" : "aborted", NULL);
    }
    wtt_log_set_id(NULL);
    req_unref(r);
}


/*
 * Percent-decodes in place like libmicrohttpd's default, but remembers a
 * decoded NUL so the request can be refused (a C string would silently end
 * there).
 */
static size_t
on_unescape(void *cls, struct MHD_Connection *conn, char *s)
{
    size_t n = MHD_http_unescape(s);

    if (strlen(s) != n) {
        tls_bad_url = conn;
    }
    return n;
}


static void
mhd_logger(void *cls, const char *fmt, va_list ap)
{
    char   msg[512];
    size_t n;

    vsnprintf(msg, sizeof(msg), fmt, ap);
    n = strlen(msg);
    while (n > 0 && msg[n - 1] == '\n') {
        msg[--n] = '\0';
    }
    wtt_log(WTT_LOG_DEBUG, "http.mhd", "message", msg, NULL);
}


/* ---------------------------------------------------------------------------
 * wtt.core.http_server: request accessors (valid only during the request's own call)
 * ------------------------------------------------------------------------- */

static req_t *
check_req(lua_State *L)
{
    req_t *r = lua_touserdata(L, 1);
    return (r != NULL && r == tls_req) ? r : NULL;
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
    uint64_t id = wtt_reload_reload(luaL_optstring(L, 1, "lua"), err,
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


/* httpd.stats() -> { inflight, requests, threads, stopping } */
static int
l_stats(lua_State *L)
{
    lua_createtable(L, 0, 4);
    lua_pushinteger(L, atomic_load(&inflight));
    lua_setfield(L, -2, "inflight");
    lua_pushnumber(L, (lua_Number) atomic_load(&total_requests));
    lua_setfield(L, -2, "requests");
    lua_pushinteger(L, cfg.threads);
    lua_setfield(L, -2, "threads");
    lua_pushboolean(L, atomic_load(&stopping));
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
    const struct wtt_http_config *c = &cfg;

    if (!atomic_load(&configured)) {
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
    { "files",      l_files },
    { "form",       l_form },
    { "keep",       l_keep },
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
    lua_newtable(L);
    luaL_register(L, NULL, httpd_funcs);
    return 1;
}


/* ---------------------------------------------------------------------------
 * Serving
 * ------------------------------------------------------------------------- */

static int
resolve_listen(const struct wtt_http_config *c, struct sockaddr_storage *ss,
               socklen_t *sslen)
{
    struct addrinfo hints, *res = NULL;
    char            port[8];
    int             rc;

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV | AI_PASSIVE;
    snprintf(port, sizeof(port), "%d", c->listen_port);
    rc = getaddrinfo(c->listen_host, port, &hints, &res);
    if (rc != 0 || res == NULL) {
        wtt_log(WTT_LOG_ERROR, "http.listen_failed", "host", c->listen_host,
                "error", gai_strerror(rc), NULL);
        return -1;
    }
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *sslen = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}


static void
drain(const struct wtt_http_config *c)
{
    uint64_t until = wtt_now_ms() + (uint64_t) (c->shutdown_grace_s * 1e3);
    char     left[16];

    /* Wake parked streams so they see `stopping` and end. */
    pthread_mutex_lock(&timer_lock);
    pthread_cond_signal(&timer_cond);
    pthread_mutex_unlock(&timer_lock);
    while (atomic_load(&inflight) > 0 && wtt_now_ms() < until) {
        usleep(10 * 1000);
    }
    snprintf(left, sizeof(left), "%d", atomic_load(&inflight));
    wtt_log(atomic_load(&inflight) > 0 ? WTT_LOG_WARN : WTT_LOG_INFO,
            "http.drained", "unfinished", left, NULL);
}


/* The signals the main loop waits for; blocked in every thread. */
static sigset_t serve_signals;


int
wtt_http_start(const struct wtt_http_config *c)
{
    struct sockaddr_storage ss;
    socklen_t               sslen;
    sigset_t                set;
    struct sigaction        sa;
    char                    err[1024], url[128], threads[16];
    const union MHD_DaemonInfo *di;
    unsigned int            flags;
    int                     port;

    cfg = *c;
    atomic_store(&configured, 1);
    snprintf(id_prefix, sizeof(id_prefix), "%08x",
             (unsigned) (wtt_now_ns() ^ ((uint64_t) getpid() << 16)));

    /* Signals: the serving threads (and any thread the caller starts
     * afterwards) inherit this mask, so SIGHUP/TERM/INT reach only the
     * loop of wtt_http_run; the watchdog signal stays open. */
    sigemptyset(&set);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    serve_signals = set;
    signal(SIGPIPE, SIG_IGN);
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_watchdog_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(WATCHDOG_SIGNAL, &sa, NULL);

    if (wtt_reload_init(err, sizeof(err)) != 0) {
        wtt_log(WTT_LOG_ERROR, "serve.failed", "error", err, NULL);
        return -1;
    }
    if (resolve_listen(c, &ss, &sslen) != 0) {
        return -1;
    }
    flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_TURBO
            | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
    if (ss.ss_family == AF_INET6) {
        flags |= MHD_USE_IPv6;
    }
    daemon_ = MHD_start_daemon(
        flags, 0, NULL, NULL, on_access, NULL,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *) &ss,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned) c->threads,
        MHD_OPTION_CONNECTION_LIMIT, c->conn_limit,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, c->per_ip_limit,
        MHD_OPTION_CONNECTION_TIMEOUT, c->conn_timeout_s,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, c->max_header_bytes,
        MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u,
        MHD_OPTION_LISTENING_ADDRESS_REUSE, 1u,
        MHD_OPTION_STRICT_FOR_CLIENT, 1,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
        MHD_OPTION_UNESCAPE_CALLBACK, on_unescape, NULL,
        MHD_OPTION_EXTERNAL_LOGGER, mhd_logger, NULL,
        MHD_OPTION_END);
    if (daemon_ == NULL) {
        wtt_log(WTT_LOG_ERROR, "serve.failed", "error",
                "cannot listen (address in use or not permitted?)", NULL);
        return -1;
    }
    (void) sslen;
    di = MHD_get_daemon_info(daemon_, MHD_DAEMON_INFO_BIND_PORT);
    port = di != NULL ? di->port : c->listen_port;
    pthread_create(&timer_tid, NULL, timer_main, NULL);

    snprintf(url, sizeof(url), ss.ss_family == AF_INET6 ? "http://[%s]:%d/"
                                                        : "http://%s:%d/",
             c->listen_host, port);
    snprintf(threads, sizeof(threads), "%d", c->threads);
    wtt_log(WTT_LOG_INFO, "serve.listening", "url", url, "threads", threads,
            "routes", wtt_vm_paths()->routes_dir, NULL);
    return 0;
}


int
wtt_http_run(void)
{
    const struct wtt_http_config *c = &cfg;
    char                          err[1024];
    int                           sig;

    sd_notify(0, "READY=1");

    for (;;) {
        siginfo_t       info;
        struct timespec ts = { 0, 200 * 1000000L };

        sig = sigtimedwait(&serve_signals, &info, &ts);
        if (sig == SIGHUP) {
            wtt_reload_reload("sighup", err, sizeof(err));
        } else if (sig == SIGTERM || sig == SIGINT) {
            break;
        }
    }

    wtt_log(WTT_LOG_INFO, "serve.stopping", "signal", strsignal(sig), NULL);
    sd_notify(0, "STOPPING=1");
    atomic_store(&stopping, 1);
    {
        MHD_socket ls = MHD_quiesce_daemon(daemon_);
        if (ls != MHD_INVALID_SOCKET) {
            close(ls);
        }
    }
    drain(c);

    pthread_mutex_lock(&timer_lock);
    /* Every parked stream must be resumed before MHD_stop_daemon. */
    for (req_t *r = timer_list; r != NULL; r = r->timer_next) {
        MHD_resume_connection(r->conn);
    }
    timer_list = NULL;
    timer_quit = 1;
    pthread_cond_signal(&timer_cond);
    pthread_mutex_unlock(&timer_lock);
    pthread_join(timer_tid, NULL);
    MHD_stop_daemon(daemon_);
    daemon_ = NULL;

    /* The serving threads are gone: their states can be closed here. */
    for (tctx_t *t = all_threads, *tn; t != NULL; t = tn) {
        tn = t->next_all;
        for (slot_t *s = t->retired, *sn; s != NULL; s = sn) {
            sn = s->next;
            slot_close(s);
        }
        if (t->cur != NULL) {
            slot_close(t->cur);
        }
        for (req_t *r = t->free_reqs, *rn; r != NULL; r = rn) {
            rn = r->next_free;
            free(r);
        }
        free(t);
    }
    all_threads = NULL;
    wtt_log(WTT_LOG_INFO, "serve.stopped", NULL);
    return 0;
}
