/*
 * wtt_http_watchdog.c: the route deadline and the timer thread.
 *
 * Lua code that runs past WTT_ROUTE_TIMEOUT is interrupted: the timer
 * thread signals the stuck thread, whose handler installs a count hook that
 * raises. Hooks only fire in interpreted code, so route and plugin chunks
 * are compiled with jit.off (lua/wtt/app.lua); docs/http.md explains the
 * trade. The same thread resumes streams parked until they have data.
 */
#include "wtt_http_private.h"
#include "wtt_log.h"
#include "wtt_util.h"

#include <errno.h>
#include <signal.h>
#include <time.h>

static pthread_mutex_t         timer_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t          timer_cond = PTHREAD_COND_INITIALIZER;
static req_t                  *timer_list;
static int                     timer_quit;
static pthread_t               timer_tid;


/* ---------------------------------------------------------------------------
 * Watchdog
 * ------------------------------------------------------------------------- */

static void
timeout_hook(lua_State *L, lua_Debug *ar)
{
    tctx_t  *t = wtt__http_tls_t;
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
void
wtt__http_on_watchdog_signal(int sig)
{
    tctx_t    *t = wtt__http_tls_t;
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
int
wtt__http_call_lua(tctx_t *t, lua_State *L, int nargs, int nresults)
{
    int rc;

    atomic_store(&t->fired, 0);
    t->running_L = L;
    atomic_store(&t->deadline_ms,
                 wtt_now_ms()
                 + (uint64_t) (wtt__http_cfg.route_timeout_s * 1000.0));
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
    pthread_mutex_lock(&wtt__http_threads_lock);
    for (tctx_t *t = wtt__http_all_threads; t != NULL; t = t->next_all) {
        uint64_t d = atomic_load(&t->deadline_ms);
        if (d != 0 && now >= d && !atomic_exchange(&t->fired, 1)) {
            wtt_log(WTT_LOG_ERROR, "http.watchdog", "action",
                    "interrupting a route past its deadline", NULL);
            pthread_kill(t->tid, WATCHDOG_SIGNAL);
        }
    }
    pthread_mutex_unlock(&wtt__http_threads_lock);
}


/* ---------------------------------------------------------------------------
 * Timer thread: watchdog scans and resuming suspended streams
 * ------------------------------------------------------------------------- */

void
wtt__http_timer_schedule(req_t *r, uint64_t at)
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
            if (r->resume_at <= now || atomic_load(&wtt__http_stopping)) {
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


void
wtt__http_timer_start(void)
{
    pthread_create(&timer_tid, NULL, timer_main, NULL);
}


void
wtt__http_timer_wake(void)
{
    pthread_mutex_lock(&timer_lock);
    pthread_cond_signal(&timer_cond);
    pthread_mutex_unlock(&timer_lock);
}


void
wtt__http_timer_stop(void)
{
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
}
