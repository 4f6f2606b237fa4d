/*
 * wtt_http_server.c: the HTTP server (see wtt_http_server.h): its
 * configuration, the access handler and serving. The other parts are listed
 * in wtt_http_private.h.
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
#include "wtt_http_private.h"
#include "wtt_reload.h"
#include "wtt_log.h"
#include "wtt_metrics.h"
#include "wtt_util.h"
#include "wtt_vm.h"

#include <errno.h>
#include <fcntl.h>
#include <lauxlib.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

struct wtt_http_config         wtt__http_cfg;
atomic_int                     wtt__http_configured;     /* cfg is set */
static struct MHD_Daemon      *daemon_;
atomic_int                     wtt__http_draining;
atomic_int                     wtt__http_stopping;
atomic_int                     wtt__http_inflight;
atomic_ullong                  wtt__http_total_requests;
char                           wtt__http_id_prefix[12];
static __thread struct MHD_Connection *tls_bad_url;


/* ---------------------------------------------------------------------------
 * Configuration
 * ------------------------------------------------------------------------- */

static size_t
env_size(const char *name, size_t def)
{
    long long v = wtt_env_int(name, (long long) def);
    return v > 0 ? (size_t) v : def;
}


/* Seconds from `name` (fractions allowed), or `def` when unset or not a
 * number >= 0 (logged). */
static double
env_seconds(const char *name, double def)
{
    const char *v = getenv(name);
    char       *end;
    double      d;

    if (v == NULL || *v == '\0') {
        return def;
    }
    errno = 0;
    d = strtod(v, &end);
    if (errno != 0 || end == v || *end != '\0' || !(d >= 0) || d > 3600) {
        wtt_log(WTT_LOG_WARN, "http.bad_config", "name", name, "value", v,
                "detail", "want seconds from 0 to 3600", NULL);
        return def;
    }
    return d;
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
    /* Covers a load balancer's health checks: interval x fall plus one
     * check's timeout (1 s x 2 + 1 s in docker/haproxy/haproxy.cfg). */
    c->drain_s = env_seconds("WTT_DRAIN_S", 5.0);
    c->access_log = strcasecmp(wtt_env("WTT_ACCESS_LOG", "on"), "off") != 0
                    && strcmp(wtt_env("WTT_ACCESS_LOG", "on"), "0") != 0;
    snprintf(c->tmp_dir, sizeof(c->tmp_dir), "%s",
             wtt_env("WTT_TMP_DIR", wtt_env("TMPDIR", "/tmp")));
    snprintf(c->per_ip_exempt, sizeof(c->per_ip_exempt), "%s",
             wtt_env("WTT_PER_IP_EXEMPT", ""));
    if (c->threads < 1) {
        c->threads = 1;
    }
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
    tctx_t            *t = wtt__http_thread_ctx();
    req_t             *r = wtt__http_req_new(t, conn);
    slot_t            *s;
    lua_State         *L;
    const char        *detail = NULL, *ctype;
    unsigned long long clen;
    int                has_body, status, base, rc;

    *req_cls = r;
    atomic_fetch_add(&wtt__http_inflight, 1);
    atomic_fetch_add(&wtt__http_total_requests, 1);
    wtt__http_make_id(r);
    wtt_log_set_id(r->id);
    snprintf(r->method, sizeof(r->method), "%s", method);
    if (wtt__http_cfg.access_log) {
        snprintf(r->path, sizeof(r->path), "%s", url);
    }

    /* No 503 while draining or stopping: a request that reached this
     * process (on a connection opened before accepting stopped) is served;
     * its response closes the connection (wtt_http_response.c). */
    if (tls_bad_url != NULL) {
        /* The flag is for this request's URL, decoded just before this
         * call; cleared either way so it can never outlive one request. */
        int bad = tls_bad_url == conn;
        tls_bad_url = NULL;
        if (bad) {
            return wtt__http_respond_error(r, 400, "bad_request",
                                           "NUL byte in the URL");
        }
    }
    if (url_length(conn, url) > wtt__http_cfg.max_url_bytes) {
        return wtt__http_respond_error(r, 414, "uri_too_long", "URL too long");
    }
    status = check_framing(conn, &has_body, &clen, &detail);
    if (status != 0) {
        return wtt__http_respond_error(r, status, "bad_request", detail);
    }
    r->defer = !has_body;

    s = wtt__http_current_slot(t);
    if (s == NULL) {
        return wtt__http_respond_error(r, 503, "unavailable",
                                       "routes failed to load");
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
    wtt__http_tls_req = r;
    rc = wtt__http_call_lua(t, L, 6, 5);
    wtt__http_tls_req = NULL;
    if (rc != 0 || lua_tointeger(L, base + 1) != 0) {
        return wtt__http_finish_lua(r, L, rc, base);
    }

    /* The route wants the body: 0, continuation, mode, limit, file limit. */
    {
        const char *mode = lua_tostring(L, base + 3);
        lua_Number  limit = lua_tonumber(L, base + 4);
        lua_Number  flimit = lua_tonumber(L, base + 5);

        r->mode = (mode != NULL && strcmp(mode, "form") == 0) ? BODY_FORM
                                                              : BODY_RAW;
        r->max_body = limit > 0 ? (size_t) limit : wtt__http_cfg.max_body;
        r->max_file = flimit > 0 ? (size_t) flimit : wtt__http_cfg.max_file;
        lua_pushvalue(L, base + 2);
        r->cont_ref = luaL_ref(L, LUA_REGISTRYINDEX);
        lua_settop(L, base);
    }
    if (clen > r->max_body) {
        /* Queued before the body is read: no 100 Continue goes out. */
        char d[96];
        snprintf(d, sizeof(d), "body larger than %zu bytes", r->max_body);
        return wtt__http_respond_error(r, 413, "too_large", d);
    }
    if (r->mode == BODY_FORM) {
        return wtt__http_body_start_form(r, conn, ctype);
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
        return wtt__http_take_body(r, upload_data, upload_data_size);
    }
    return wtt__http_finish_body(r);
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
    wtt_metrics_http_request(r->method, r->route, r->status,
                             (double) (wtt_now_ns() - r->start_ns) / 1e9);
    if (wtt__http_cfg.access_log) {
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
    wtt__http_req_unref(r);
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
 * Serving
 * ------------------------------------------------------------------------- */

/* The signals the main loop waits for; blocked in every thread. */
static sigset_t serve_signals;


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


/*
 * The drain period: everything is still served and new connections are
 * still accepted, but /readyz answers 503 (routes/health.lua), so a load
 * balancer's health check takes this process out of rotation before it
 * stops accepting. Returns early on a second SIGTERM/SIGINT (an operator
 * in a hurry); SIGHUP is not applied any more (the process is leaving).
 */
static void
drain_period(const struct wtt_http_config *c)
{
    uint64_t until = wtt_now_ms() + (uint64_t) (c->drain_s * 1e3);
    uint64_t now;

    while ((now = wtt_now_ms()) < until) {
        siginfo_t       info;
        uint64_t        left = until - now;
        struct timespec ts;
        int             sig;

        if (left > 200) {
            left = 200;
        }
        ts.tv_sec = 0;
        ts.tv_nsec = (long) left * 1000000L;
        sig = sigtimedwait(&serve_signals, &info, &ts);
        if (sig == SIGTERM || sig == SIGINT) {
            wtt_log(WTT_LOG_INFO, "serve.drain_cut", "signal",
                    strsignal(sig), NULL);
            return;
        }
        if (sig == SIGHUP) {
            wtt_log(WTT_LOG_INFO, "serve.reload_skipped", "detail",
                    "draining", NULL);
        }
    }
}


/*
 * Hands the connections still waiting in the listening socket's backlog
 * (the kernel completed them, no serving thread accepted them yet: all
 * were busy) to the daemon, after MHD_quiesce_daemon: shutting the socket
 * down would reset them, with their requests perhaps already sent.
 * Returns how many were handed over.
 */
static int
adopt_backlog(MHD_socket ls)
{
    int n = 0;
    int fl = fcntl(ls, F_GETFL);

    /* A serving thread woken just before the quiesce may still accept
     * too; neither may block. */
    if (fl == -1 || fcntl(ls, F_SETFL, fl | O_NONBLOCK) == -1) {
        wtt_log(WTT_LOG_WARN, "serve.backlog_failed", "error",
                strerror(errno), NULL);
        return 0;
    }
    for (;;) {
        struct sockaddr_storage ss;
        socklen_t               len = sizeof(ss);
        int                     fd = accept4(ls, (struct sockaddr *) &ss,
                                             &len, SOCK_CLOEXEC);

        if (fd == -1) {
            if (errno == EINTR || errno == ECONNABORTED) {
                continue;
            }
            break;          /* EAGAIN: the backlog is empty */
        }
        /* MHD owns (and closes) the socket from here, even on failure. */
        if (MHD_add_connection(daemon_, fd, (struct sockaddr *) &ss, len)
            == MHD_YES)
        {
            n++;
        } else {
            wtt_log(WTT_LOG_WARN, "serve.backlog_refused", "error",
                    strerror(errno), NULL);
        }
    }
    return n;
}


/* Waits up to the shutdown grace for the requests in flight (uploads
 * still arriving included) once accepting has stopped. */
static void
drain(const struct wtt_http_config *c)
{
    uint64_t until = wtt_now_ms() + (uint64_t) (c->shutdown_grace_s * 1e3);
    char     left[16];

    /* Wake parked streams so they see `stopping` and end. */
    wtt__http_timer_wake();
    while (atomic_load(&wtt__http_inflight) > 0 && wtt_now_ms() < until) {
        usleep(10 * 1000);
    }
    snprintf(left, sizeof(left), "%d", atomic_load(&wtt__http_inflight));
    wtt_log(atomic_load(&wtt__http_inflight) > 0 ? WTT_LOG_WARN : WTT_LOG_INFO,
            "http.drained", "unfinished", left, NULL);
}


/* Descriptors the process needs besides its connections: the listening
 * socket, epoll and eventfds, Redis and PostgreSQL connections per thread,
 * files being served or uploaded, log and library descriptors. */
#define FD_RESERVE 256


/*
 * Raises the soft limit on open files to the hard limit: every connection
 * is a descriptor, and the usual soft limit (1024) is below what
 * WTT_CONN_LIMIT allows plus what the process needs besides (a thousand
 * event streams would fail at accept). Warns when even the hard limit is
 * too low for the connection limit.
 */
static void
raise_nofile(const struct wtt_http_config *c)
{
    struct rlimit rl;
    char          soft[24], need[24];

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
        return;
    }
    if (rl.rlim_cur < rl.rlim_max) {
        rlim_t was = rl.rlim_cur;
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
            rl.rlim_cur = was;
        }
    }
    if (rl.rlim_cur != RLIM_INFINITY
        && rl.rlim_cur < (rlim_t) c->conn_limit + FD_RESERVE)
    {
        snprintf(soft, sizeof(soft), "%llu", (unsigned long long) rl.rlim_cur);
        snprintf(need, sizeof(need), "%llu",
                 (unsigned long long) c->conn_limit + FD_RESERVE);
        wtt_log(WTT_LOG_WARN, "serve.nofile_low", "nofile", soft, "needs",
                need, "detail", "raise the hard limit (LimitNOFILE=, "
                "ulimit -Hn) or lower WTT_CONN_LIMIT", NULL);
    }
}


int
wtt_http_start(const struct wtt_http_config *c)
{
    struct sockaddr_storage ss;
    socklen_t               sslen;
    sigset_t                set;
    struct sigaction        sa;
    char                    err[1024], url[128], threads[16];
    const union MHD_DaemonInfo *di;
    unsigned int            flags, per_ip;
    int                     port;

    wtt__http_cfg = *c;
    atomic_store(&wtt__http_configured, 1);
    snprintf(wtt__http_id_prefix, sizeof(wtt__http_id_prefix), "%08x",
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
    sa.sa_handler = wtt__http_on_watchdog_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(WATCHDOG_SIGNAL, &sa, NULL);

    raise_nofile(c);
    if (wtt_reload_init(err, sizeof(err)) != 0) {
        wtt_log(WTT_LOG_ERROR, "serve.failed", "error", err, NULL);
        return -1;
    }
    if (resolve_listen(c, &ss, &sslen) != 0) {
        return -1;
    }
    per_ip = wtt__http_peers_init(c);
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
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, per_ip,
        MHD_OPTION_CONNECTION_TIMEOUT, c->conn_timeout_s,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, c->max_header_bytes,
        MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u,
        MHD_OPTION_LISTENING_ADDRESS_REUSE, 1u,
        MHD_OPTION_STRICT_FOR_CLIENT, 1,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
        MHD_OPTION_UNESCAPE_CALLBACK, on_unescape, NULL,
        MHD_OPTION_EXTERNAL_LOGGER, mhd_logger, NULL,
        /* Last: without exemptions it is left out (MHD counts). */
        wtt__http_peers_counting() ? MHD_OPTION_NOTIFY_CONNECTION
                                   : MHD_OPTION_END,
        wtt__http_on_connection, NULL,
        MHD_OPTION_END);
    if (daemon_ == NULL) {
        wtt_log(WTT_LOG_ERROR, "serve.failed", "error",
                "cannot listen (address in use or not permitted?)", NULL);
        return -1;
    }
    (void) sslen;
    di = MHD_get_daemon_info(daemon_, MHD_DAEMON_INFO_BIND_PORT);
    port = di != NULL ? di->port : c->listen_port;
    if (wtt__http_timer_start() != 0) {
        MHD_stop_daemon(daemon_);
        daemon_ = NULL;
        return -1;
    }

    snprintf(url, sizeof(url), ss.ss_family == AF_INET6 ? "http://[%s]:%d/"
                                                        : "http://%s:%d/",
             c->listen_host, port);
    snprintf(threads, sizeof(threads), "%d", c->threads);
    wtt_log(WTT_LOG_INFO, "serve.listening", "url", url, "threads", threads,
            "routes", wtt_vm_paths()->routes_dir, NULL);
    return 0;
}


struct MHD_Daemon *
wtt__http_daemon(void)
{
    return daemon_;
}


int
wtt_http_run(void)
{
    const struct wtt_http_config *c = &wtt__http_cfg;
    char                          err[1024];
    int                           sig;
    MHD_socket                    ls;

    sd_notify(0, "READY=1");

    for (;;) {
        siginfo_t       info;
        struct timespec ts = { 0, 200 * 1000000L };

        sig = sigtimedwait(&serve_signals, &info, &ts);
        if (sig == SIGHUP) {
            wtt_reload_apply("sighup", err, sizeof(err));
        } else if (sig == SIGTERM || sig == SIGINT) {
            break;
        }
    }

    {
        char drain_s[24];
        snprintf(drain_s, sizeof(drain_s), "%g", c->drain_s);
        wtt_log(WTT_LOG_INFO, "serve.stopping", "signal", strsignal(sig),
                "drain_s", drain_s, NULL);
    }
    sd_notify(0, "STOPPING=1");
    atomic_store(&wtt__http_draining, 1);
    drain_period(c);

    /* Stop accepting; connections already accepted keep being served.
     * libmicrohttpd's threads may still be inside accept() on the
     * listening socket, so it is closed only after MHD_stop_daemon; shut
     * down now, it stops listening at once (Linux): a new connection is
     * refused, which a load balancer retries elsewhere with nothing sent,
     * instead of waiting in the backlog to be reset with its request. */
    atomic_store(&wtt__http_stopping, 1);
    ls = MHD_quiesce_daemon(daemon_);
    if (ls == MHD_INVALID_SOCKET) {
        /* Not expected (MHD_ALLOW_SUSPEND_RESUME brings the ITC quiescing
         * needs): new connections are then accepted until the daemon
         * stops, and answered like any other. */
        wtt_log(WTT_LOG_WARN, "serve.quiesce_failed", NULL);
    } else {
        char adopted[16];
        int  n = adopt_backlog(ls);
        /* What arrives between the last accept and here is reset: the
         * drain period is there so that nothing does. */
        if (shutdown(ls, SHUT_RDWR) != 0) {
            wtt_log(WTT_LOG_WARN, "serve.listen_shutdown_failed", "error",
                    strerror(errno), NULL);
        }
        snprintf(adopted, sizeof(adopted), "%d", n);
        wtt_log(WTT_LOG_INFO, "serve.not_accepting", "backlog", adopted,
                NULL);
    }
    drain(c);

    wtt__http_timer_stop();
    MHD_stop_daemon(daemon_);
    daemon_ = NULL;
    if (ls != MHD_INVALID_SOCKET) {
        close(ls);
    }

    /* The serving threads are gone: their states can be closed here. */
    for (tctx_t *t = wtt__http_all_threads, *tn; t != NULL; t = tn) {
        tn = t->next_all;
        for (slot_t *s = t->retired, *sn; s != NULL; s = sn) {
            sn = s->next;
            wtt__http_slot_close(s);
        }
        if (t->cur != NULL) {
            wtt__http_slot_close(t->cur);
        }
        for (req_t *r = t->free_reqs, *rn; r != NULL; r = rn) {
            rn = r->next_free;
            free(r);
        }
        free(t);
    }
    wtt__http_all_threads = NULL;
    wtt_log(WTT_LOG_INFO, "serve.stopped", NULL);
    return 0;
}
