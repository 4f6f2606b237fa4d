/*
 * wtt_http_private.h: what the parts of the HTTP server share (not a public
 * header: only core/bind/http_server/ includes it).
 *
 * The server of wtt_http_server.h is one libmicrohttpd daemon, split by job:
 *
 *   wtt_http_server.c    configuration, the access handler (libmicrohttpd's
 *                        callbacks) and serving (start, signals, drain);
 *   wtt_http_state.c     each serving thread's context and Lua states, and
 *                        the request objects;
 *   wtt_http_watchdog.c  the route deadline (the hook that interrupts a
 *                        route past it);
 *   wtt_http_park.c      the timer thread: parked streams (resumed at
 *                        their deadline, by a waker, or when the client
 *                        hangs up), wakers, and the watchdog's scans;
 *   wtt_http_peers.c     the per-address connection limit with its
 *                        exempt addresses (reverse proxies);
 *   wtt_http_response.c  responses: C errors, a route's return values and
 *                        Lua-fed streams;
 *   wtt_http_body.c      request bodies: raw buffers, multipart forms with
 *                        file parts streamed to temp files;
 *   wtt_http_lua.c       the `wtt.core.http_server` Lua module.
 *
 * A request lives on the libmicrohttpd thread that owns its connection, so
 * the request and its thread context pass between these files without
 * locks; what other threads touch too is atomic or under a named lock.
 * Everything declared here crosses at least two of the files; the rest
 * stays static in its own file.
 */
#ifndef WTT_HTTP_PRIVATE_H
#define WTT_HTTP_PRIVATE_H

#include "wtt_http_server.h"

#include <limits.h>
#include <lua.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <microhttpd.h>

/* Sent by the timer thread (wtt_http_watchdog.c), whose handler the server
 * installs when it starts (wtt_http_server.c). */
#define WATCHDOG_SIGNAL  SIGURG
/* The metatable of file userdata: made by httpd.open (wtt_http_lua.c),
 * taken by file responses (wtt_http_response.c). */
#define FILE_MT          "wtt.core.http_server.file"

/* The thread context, its slots and the request pass through every part
 * (see above): the access handler makes the request, the body parts fill
 * its uploads, the Lua module reads them, responses and streams hold it. */
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
    char                      route[96];  /* the matched route's pattern
                                             (metrics label), or "" */
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
    /* parking (wtt_http_park.c): under the park lock */
    struct wtt_http_waker    *waker;      /* made by httpd.waker, or NULL */
    int                       parked;     /* suspended, in the park list */
    atomic_int                gone;       /* end now: the client hung up or
                                             a waker dropped it (set by
                                             other threads) */
    int                       park_fd;    /* the socket, watched for a
                                             hang-up from the first park
                                             (0: not yet, -1: cannot) */
    int                       park_after; /* ms to park once `pend` is
                                             sent (next_chunk's `text, ms`),
                                             or -1 */
    uint64_t                  resume_at;
    struct req               *park_prev;
    struct req               *park_next;
    struct req               *next_free;
} req_t;

/*
 * A waker (wtt_http_server.h) is shared by the request, the Lua userdata
 * httpd.waker made and whatever produces the stream's data; the last
 * reference frees it. `r` and `fd` are read and cleared under the park
 * lock: once the request ends, `r` is NULL and waking does nothing.
 */
struct wtt_http_waker {
    atomic_int   refs;
    atomic_int   woken;      /* set by a wake, cleared by the stream before
                                it asks for data */
    req_t       *r;
    int          fd;
};

/* A file descriptor handed from Lua to a file response. */
typedef struct {
    int   fd;
    off_t size;
} file_ud;

/* The configuration being served (wtt_http_start), and whether it is set:
 * read by every part. */
extern struct wtt_http_config wtt__http_cfg;
extern atomic_int             wtt__http_configured;
/* Set once SIGTERM/SIGINT arrive: /readyz answers 503 and responses
 * carry Connection: close, while every other request is served. */
extern atomic_int             wtt__http_draining;
/* Set once the drain period is over and accepting has stopped: streams
 * end; requests already on open connections are still served. */
extern atomic_int             wtt__http_stopping;
/* Requests begun and not yet released (drain waits for 0), and the total
 * since start (httpd.stats). */
extern atomic_int             wtt__http_inflight;
extern atomic_ullong          wtt__http_total_requests;
/* 8 hex digits unique to this process, the start of generated request
 * ids (made at start, used by wtt__http_make_id). */
extern char                   wtt__http_id_prefix[12];

/* Every serving thread's context, under the lock: the watchdog scans them,
 * the server frees them after the daemon stops. */
extern pthread_mutex_t        wtt__http_threads_lock;
extern tctx_t                *wtt__http_all_threads;
/* This thread's context (the watchdog's signal handler finds it here). */
extern __thread tctx_t       *wtt__http_tls_t;
/* The request whose Lua call runs now on this thread: the accessors of
 * wtt_http_lua.c refuse any other. */
extern __thread req_t        *wtt__http_tls_req;


/* The daemon wtt_http_start made (NULL before), so that spec/fuzz/
 * fuzz_server.c can hand it connections over socketpairs
 * (MHD_add_connection) as adopt_backlog does, and fuzz the server as
 * configured without a port per input. */
struct MHD_Daemon *wtt__http_daemon(void);


/* ---------------------------------------------------------------------------
 * wtt_http_state.c
 * ------------------------------------------------------------------------- */

/* This thread's context, made and registered on first use. Never NULL. */
tctx_t *wtt__http_thread_ctx(void);

/* Closes the Lua state of `s` and frees it. */
void wtt__http_slot_close(slot_t *s);

/*
 * The slot new requests on thread `t` use, built first for a newer route
 * generation. NULL only when no state could ever be built.
 */
slot_t *wtt__http_current_slot(tctx_t *t);

/* A zeroed request on `conn` (reused from the thread's free list) holding
 * one reference; counted in wtt__http_inflight by the caller. */
req_t *wtt__http_req_new(tctx_t *t, struct MHD_Connection *conn);

/* Drops one reference; the last one releases everything the request held
 * (temp files not kept, Lua references, its slot) and returns it to the
 * thread's free list. */
void wtt__http_req_unref(req_t *r);

/* Sets r->id: the client's X-Request-Id when it is sane, else a fresh one. */
void wtt__http_make_id(req_t *r);


/* ---------------------------------------------------------------------------
 * wtt_http_watchdog.c
 * ------------------------------------------------------------------------- */

/* The handler of WATCHDOG_SIGNAL (async-signal-safe): arms a hook that
 * raises a 503 error table in the route running on this thread. */
void wtt__http_on_watchdog_signal(int sig);

/* lua_pcall(L, nargs, nresults, 0) under the route deadline. */
int wtt__http_call_lua(tctx_t *t, lua_State *L, int nargs, int nresults);

/* Raises a watchdog signal on every thread whose route is past its
 * deadline (the timer thread calls it every tick). */
void wtt__http_watchdog_scan(uint64_t now_ms);


/* ---------------------------------------------------------------------------
 * wtt_http_park.c
 * ------------------------------------------------------------------------- */

/*
 * Parks the stream `r` (on its own thread, inside its content reader):
 * suspends the connection until `at` (ms, wtt_now_ms), a wake of its
 * waker, the client hanging up, or the server stopping. Returns 1 when
 * parked, 0 when a wake came in since the stream last asked for data (then
 * it must ask again instead).
 */
int wtt__http_park(req_t *r, uint64_t at);

/* The request ends: its waker stops reaching it. */
void wtt__http_park_forget(req_t *r);

/* The waker of `r`, made on first use (the request holds one reference;
 * the caller takes its own). */
struct wtt_http_waker *wtt__http_waker_of(req_t *r);

/* Starts the timer thread; once, from wtt_http_start. 0 or -1 (logged). */
int wtt__http_timer_start(void);

/* Wakes the timer thread now, so parked streams see `stopping` at once. */
void wtt__http_timer_wake(void);

/* Resumes every parked connection (they must be, before MHD_stop_daemon),
 * then stops the timer thread and joins it. */
void wtt__http_timer_stop(void);


/* ---------------------------------------------------------------------------
 * wtt_http_peers.c
 * ------------------------------------------------------------------------- */

/*
 * Reads WTT_PER_IP_EXEMPT into the exempt list. Returns the per-address
 * limit libmicrohttpd should enforce itself: the configured one without
 * exemptions, else 0 (wtt__http_on_connection counts instead).
 */
unsigned wtt__http_peers_init(const struct wtt_http_config *c);

/* Whether wtt__http_on_connection must be installed (exemptions set). */
int wtt__http_peers_counting(void);

/* MHD_OPTION_NOTIFY_CONNECTION: counts connections per address, cutting
 * one that is over the limit, except from exempt addresses. */
void wtt__http_on_connection(void *cls, struct MHD_Connection *conn,
                             void **socket_context,
                             enum MHD_ConnectionNotificationCode toe);


/* ---------------------------------------------------------------------------
 * wtt_http_response.c
 * ------------------------------------------------------------------------- */

/* Queues a JSON error made in C (framing errors, Lua failures). Returns
 * what MHD_queue_response returns, MHD_NO when out of memory. */
enum MHD_Result wtt__http_respond_error(req_t *r, int status,
                                        const char *code,
                                        const char *detail);

/* Answers an error while the body is still arriving: written to the
 * socket directly, then the connection closes. Returns MHD_NO. */
enum MHD_Result wtt__http_abort_upload(req_t *r, int status,
                                       const char *code,
                                       const char *detail);

/* Queues the response from a Lua call (dispatch or continuation) that
 * returned `rc` with its values above `base`, or a 500; pops them. */
enum MHD_Result wtt__http_finish_lua(req_t *r, lua_State *L, int rc,
                                     int base);


/* ---------------------------------------------------------------------------
 * wtt_http_body.c
 * ------------------------------------------------------------------------- */

/* Prepares a form body: takes the multipart boundary and creates the post
 * processor. Returns MHD_YES, or queues a 400. */
enum MHD_Result wtt__http_body_start_form(req_t *r,
                                          struct MHD_Connection *conn,
                                          const char *ctype);

/* Takes `*size` bytes of body (sets *size to 0). Returns MHD_YES, or
 * MHD_NO after answering an error (limits, malformed form, disk). */
enum MHD_Result wtt__http_take_body(req_t *r, const char *data,
                                    size_t *size);

/* Closes the form parser of a multipart or urlencoded body (no-op for a
 * raw one) and closes the last file part. Returns 0, or -1 when the body
 * was malformed or never reached its closing delimiter. Separate from
 * wtt__http_finish_body, which also runs Lua, so that spec/fuzz/
 * fuzz_multipart.c drives the whole form path without a Lua state. */
int wtt__http_end_form(req_t *r);

/* The whole body is in: closes the form parser, runs the continuation and
 * queues its response. */
enum MHD_Result wtt__http_finish_body(req_t *r);

#endif
