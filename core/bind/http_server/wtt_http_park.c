/*
 * wtt_http_park.c: parked streams, wakers and the timer thread.
 *
 * A streamed response with nothing to send parks: its connection is
 * suspended (it costs no thread and no CPU) and joins the park list. The
 * timer thread resumes it when one of these comes first:
 *
 *   - its deadline (the route's poll_ms, or what next_chunk asked for);
 *   - a wake: another thread that produces the stream's data holds a
 *     waker (wtt_http_server.h) and wakes it when data arrives;
 *   - the client hanging up: libmicrohttpd does not watch a suspended
 *     socket, so the timer thread does (EPOLLRDHUP), and ends the stream
 *     at once instead of at its next write. The socket is registered at
 *     the stream's first park and stays until the request ends
 *     (edge-triggered: one report when the client hangs up, parked or
 *     not), so parking costs no system call of its own;
 *   - the server stopping.
 *
 * Every list and flag here is under `park_lock`. Lock order: park_lock,
 * then libmicrohttpd's own (MHD_suspend_connection/MHD_resume_connection
 * are called under park_lock); nothing under park_lock waits for anything
 * else.
 *
 * The timer thread also runs the watchdog's scan (wtt_http_watchdog.c)
 * every tick.
 */
#include "wtt_http_private.h"
#include "wtt_log.h"
#include "wtt_util.h"

#include <errno.h>
#include <lauxlib.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

/* The watchdog's resolution: the longest the timer thread sleeps. */
#define TICK_MS 50

static pthread_mutex_t park_lock = PTHREAD_MUTEX_INITIALIZER;
static req_t          *parked;          /* doubly linked by park_prev/next */
static uint64_t        planned_ms;      /* when the timer thread next looks
                                           at the deadlines */
static int             quit;
static int             epfd = -1;       /* parked sockets + kick_fd */
static int             kick_fd = -1;    /* eventfd: look again now */
static pthread_t       timer_tid;
static int             timer_started;


/* Makes the timer thread look at the list now (under park_lock or not). */
static void
kick(void)
{
    uint64_t one = 1;
    ssize_t  n;

    do {
        n = write(kick_fd, &one, sizeof(one));
    } while (n < 0 && errno == EINTR);
}


/* Takes `r` off the park list and resumes its connection. Under
 * park_lock. */
static void
unpark(req_t *r)
{
    if (r->park_prev != NULL) {
        r->park_prev->park_next = r->park_next;
    } else {
        parked = r->park_next;
    }
    if (r->park_next != NULL) {
        r->park_next->park_prev = r->park_prev;
    }
    r->park_prev = r->park_next = NULL;
    r->parked = 0;
    MHD_resume_connection(r->conn);
}


/* Watches the stream's socket for a hang-up, once per request. Under
 * park_lock. */
static void
watch(req_t *r)
{
    const union MHD_ConnectionInfo *ci;
    struct epoll_event              ev;

    if (r->park_fd != 0) {
        return;                 /* watched already (> 0), or cannot (-1) */
    }
    ci = MHD_get_connection_info(r->conn,
                                 MHD_CONNECTION_INFO_CONNECTION_FD);
    r->park_fd = -1;
    if (ci == NULL || ci->connect_fd <= 0) {
        return;
    }
    memset(&ev, 0, sizeof(ev));
    ev.events = EPOLLRDHUP | EPOLLET;
    ev.data.ptr = r;
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, ci->connect_fd, &ev) == 0) {
        r->park_fd = ci->connect_fd;
    }
}


int
wtt__http_park(req_t *r, uint64_t at)
{
    pthread_mutex_lock(&park_lock);
    if ((r->waker != NULL && atomic_load(&r->waker->woken)) || quit
        || atomic_load(&wtt__http_stopping))
    {
        /* Data came in meanwhile, or the server stops: the stream runs
         * again at once (and ends, when stopping). */
        pthread_mutex_unlock(&park_lock);
        return 0;
    }
    MHD_suspend_connection(r->conn);
    r->parked = 1;
    r->resume_at = at;
    r->park_prev = NULL;
    r->park_next = parked;
    if (parked != NULL) {
        parked->park_prev = r;
    }
    parked = r;
    watch(r);
    if (at < planned_ms) {
        kick();
    }
    pthread_mutex_unlock(&park_lock);
    return 1;
}


void
wtt__http_park_forget(req_t *r)
{
    struct wtt_http_waker *w = r->waker;

    if (w == NULL && r->park_fd == 0) {
        return;
    }
    pthread_mutex_lock(&park_lock);
    if (r->park_fd > 0 && epfd >= 0) {
        /* Before the socket closes (after the request), or the next
         * request on this connection registers it again. */
        epoll_ctl(epfd, EPOLL_CTL_DEL, r->park_fd, NULL);
    }
    r->park_fd = 0;
    if (w != NULL) {
        w->r = NULL;
        w->fd = -1;
        r->waker = NULL;
    }
    pthread_mutex_unlock(&park_lock);
    wtt_http_waker_unref(w);
}


/* ---------------------------------------------------------------------------
 * Wakers (wtt_http_server.h)
 * ------------------------------------------------------------------------- */

struct wtt_http_waker *
wtt__http_waker_of(req_t *r)
{
    const union MHD_ConnectionInfo *ci;
    struct wtt_http_waker          *w = r->waker;

    if (w != NULL) {
        return w;
    }
    ci = MHD_get_connection_info(r->conn,
                                 MHD_CONNECTION_INFO_CONNECTION_FD);
    w = wtt_calloc(1, sizeof(*w));
    atomic_init(&w->refs, 1);            /* the request's */
    atomic_init(&w->woken, 0);
    w->fd = ci != NULL ? ci->connect_fd : -1;
    pthread_mutex_lock(&park_lock);
    w->r = r;
    r->waker = w;
    pthread_mutex_unlock(&park_lock);
    return w;
}


void
wtt_http_waker_ref(struct wtt_http_waker *w)
{
    atomic_fetch_add(&w->refs, 1);
}


void
wtt_http_waker_unref(struct wtt_http_waker *w)
{
    if (w != NULL && atomic_fetch_sub(&w->refs, 1) == 1) {
        free(w);
    }
}


void
wtt_http_waker_wake(struct wtt_http_waker *w)
{
    pthread_mutex_lock(&park_lock);
    atomic_store(&w->woken, 1);
    if (w->r != NULL && w->r->parked) {
        unpark(w->r);
    }
    pthread_mutex_unlock(&park_lock);
}


void
wtt_http_waker_drop(struct wtt_http_waker *w)
{
    req_t *r;

    pthread_mutex_lock(&park_lock);
    r = w->r;
    if (r != NULL) {
        atomic_store(&r->gone, 1);
        if (r->parked) {
            unpark(r);
        } else if (w->fd >= 0) {
            /* Blocked on a full socket, libmicrohttpd would not call the
             * stream again until the client reads: cutting the socket
             * makes its next write fail, which ends the request. The
             * descriptor is still open: the request has not ended. */
            shutdown(w->fd, SHUT_RDWR);
        }
    }
    pthread_mutex_unlock(&park_lock);
}


/* ---------------------------------------------------------------------------
 * The timer thread
 * ------------------------------------------------------------------------- */

/* Whether the peer of `fd` has hung up (or the socket failed). */
static int
hung_up(int fd)
{
    struct pollfd p = { .fd = fd, .events = POLLRDHUP };

    return poll(&p, 1, 0) > 0
           && (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0;
}


static void *
timer_main(void *arg)
{
    struct epoll_event evs[64];

    (void) arg;
    for (;;) {
        uint64_t now = wtt_now_ms(), next = now + TICK_MS;
        int      stopping = atomic_load(&wtt__http_stopping), n;

        pthread_mutex_lock(&park_lock);
        if (quit) {
            pthread_mutex_unlock(&park_lock);
            break;
        }
        for (req_t *r = parked, *rn; r != NULL; r = rn) {
            rn = r->park_next;
            if (stopping || r->resume_at <= now) {
                unpark(r);
            } else if (r->resume_at < next) {
                next = r->resume_at;
            }
        }
        planned_ms = next;
        pthread_mutex_unlock(&park_lock);

        wtt__http_watchdog_scan(now);

        n = epoll_wait(epfd, evs, (int) (sizeof(evs) / sizeof(evs[0])),
                       (int) (next - now));
        if (n <= 0) {
            continue;
        }
        pthread_mutex_lock(&park_lock);
        for (int i = 0; i < n; i++) {
            req_t *r = evs[i].data.ptr;
            if (r == NULL) {
                uint64_t v;
                while (read(kick_fd, &v, sizeof(v)) < 0 && errno == EINTR) {
                }
                continue;
            }
            /* Requests are recycled, never freed while the server runs,
             * so a report harvested before its request ended points at
             * valid memory, maybe of a later request: only a request whose
             * own socket really hung up is ended (at once when parked,
             * else at its next call of the stream). */
            if (r->park_fd > 0 && hung_up(r->park_fd)) {
                atomic_store(&r->gone, 1);
                if (r->parked) {
                    unpark(r);
                }
            }
        }
        pthread_mutex_unlock(&park_lock);
    }
    return NULL;
}


int
wtt__http_timer_start(void)
{
    struct epoll_event ev;
    char               ebuf[96];

    epfd = epoll_create1(EPOLL_CLOEXEC);
    kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    memset(&ev, 0, sizeof(ev));
    ev.events = EPOLLIN;
    ev.data.ptr = NULL;
    if (epfd < 0 || kick_fd < 0
        || epoll_ctl(epfd, EPOLL_CTL_ADD, kick_fd, &ev) != 0
        || pthread_create(&timer_tid, NULL, timer_main, NULL) != 0)
    {
        wtt_log(WTT_LOG_ERROR, "serve.failed", "error",
                wtt_strerror(errno, ebuf, sizeof(ebuf)), "where",
                "timer thread", NULL);
        return -1;
    }
    timer_started = 1;
    return 0;
}


void
wtt__http_timer_wake(void)
{
    kick();
}


void
wtt__http_timer_stop(void)
{
    if (!timer_started) {
        return;
    }
    pthread_mutex_lock(&park_lock);
    /* Every parked stream must be resumed before MHD_stop_daemon. */
    while (parked != NULL) {
        unpark(parked);
    }
    quit = 1;
    kick();
    pthread_mutex_unlock(&park_lock);
    pthread_join(timer_tid, NULL);
    timer_started = 0;
    /* Requests that end from now on unregister nothing (the set goes with
     * epfd); under the lock, so none uses a descriptor number reused. */
    pthread_mutex_lock(&park_lock);
    close(epfd);
    close(kick_fd);
    epfd = kick_fd = -1;
    pthread_mutex_unlock(&park_lock);
}
