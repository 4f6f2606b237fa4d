/*
 * wtt_http_server.h: the HTTP server of `wtt serve`, on libmicrohttpd.
 *
 * libmicrohttpd runs a pool of epoll threads; each thread lazily builds its
 * own Lua state from the active route generation (wtt_reload.h) and handles
 * every callback of the connections it owns, so no state is touched by two
 * threads. Requests in flight keep the state they started on; a thread drops
 * an old state once its last request ends.
 *
 * Lua sees the server through the `wtt.core.http_server` module (request accessors,
 * reload control, stats); routes use the friendlier `wtt.http` (lua/).
 */
#ifndef WTT_HTTP_H
#define WTT_HTTP_H

#include <lua.h>
#include <stddef.h>

struct wtt_http_config {
    char     listen_host[64];
    int      listen_port;
    int      threads;
    unsigned conn_limit;          /* whole server */
    unsigned per_ip_limit;        /* connections from one address */
    unsigned conn_timeout_s;      /* idle seconds before a connection closes */
    size_t   max_header_bytes;    /* request line + headers (memory pool) */
    size_t   max_url_bytes;
    size_t   max_body;            /* raw and JSON bodies */
    size_t   max_upload;          /* multipart total */
    size_t   max_file;            /* multipart, one file */
    double   route_timeout_s;     /* watchdog: Lua time per request */
    double   drain_s;             /* after SIGTERM: not ready, still
                                     accepting (load balancers look away) */
    double   shutdown_grace_s;    /* then: requests in flight may finish */
    int      access_log;
    char     tmp_dir[256];
    char     per_ip_exempt[1024];  /* addresses and CIDR ranges exempt from
                                      per_ip_limit (reverse proxies) */
};

/*
 * Fills `cfg` with defaults overridden by the WTT_* environment (documented
 * in docs/http.md). Never fails; bad values are logged and ignored.
 */
void wtt_http_config_from_env(struct wtt_http_config *cfg);

/*
 * Starts serving `cfg` (copied): blocks SIGHUP/SIGTERM/SIGINT in the
 * calling thread (threads started afterwards inherit the mask), loads the
 * first route generation, binds and starts the serving threads. Returns 0,
 * or -1 after logging why (routes fail to load, the address is taken).
 * Call once per process, from the main thread.
 *
 *     wtt_http_config_from_env(&cfg);
 *     if (wtt_http_start(&cfg) != 0) return 1;
 *     ... start what runs beside the server (the subscriber) ...
 *     return wtt_http_run();
 */
int wtt_http_start(const struct wtt_http_config *cfg);

/*
 * Serves until SIGTERM/SIGINT, after a successful wtt_http_start: notifies
 * systemd READY=1, reloads on SIGHUP. On the signal it drains in two steps
 * (docs/operations.md, "Rolling restart"): for cfg.drain_s it still
 * accepts and serves everything, but /readyz answers 503 and every
 * response carries Connection: close, so a load balancer's health check
 * takes the process out of rotation; then it stops accepting, ends event
 * streams, waits up to cfg.shutdown_grace_s for requests in flight
 * (uploads included), stops the serving threads and closes their states.
 * A second SIGTERM/SIGINT during the drain period cuts it short. Returns
 * the process exit status (0).
 */
int wtt_http_run(void);

/*
 * Wakers: how another thread tells a streamed response that it has data.
 *
 * A stream with nothing to send parks (no thread is held) until its
 * poll_ms run out. A route whose data comes from another thread (the
 * fan-out hub, wtt_fanout.h) takes a waker with httpd.waker(ctx) from the
 * stream's own next_chunk or handler: a userdata (metatable
 * WTT_HTTP_WAKER_MT) holding a reference. The producer takes the pointer
 * with wtt_http_check_waker and its own reference, and calls
 * wtt_http_waker_wake after queueing data: the stream is resumed at once
 * (or, when it is running, asks for data again before it parks, so no
 * wake is lost). wtt_http_waker_drop ends the stream (a client that fell
 * too far behind): it is cut even while blocked on a full socket.
 *
 * All four are thread-safe and may outlive the request: once it ended,
 * waking and dropping do nothing. Waking and dropping take the server's
 * park lock and libmicrohttpd's own, which never wait for anything else;
 * a producer is best to call them after releasing its own lock, so that
 * streams reading their data do not wait behind the system calls.
 */
#define WTT_HTTP_WAKER_MT "wtt.core.http_server.waker"

struct wtt_http_waker;

/* The waker in the userdata at `idx` (raises a Lua error otherwise). */
struct wtt_http_waker *wtt_http_check_waker(lua_State *L, int idx);
void wtt_http_waker_ref(struct wtt_http_waker *w);
void wtt_http_waker_unref(struct wtt_http_waker *w);
void wtt_http_waker_wake(struct wtt_http_waker *w);
void wtt_http_waker_drop(struct wtt_http_waker *w);

/* Lua module `wtt.core.http_server`. */
int luaopen_wtt_http_server(lua_State *L);

#endif
