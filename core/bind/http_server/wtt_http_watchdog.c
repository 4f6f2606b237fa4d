/*
 * wtt_http_watchdog.c: the route deadline.
 *
 * Lua code that runs past WTT_ROUTE_TIMEOUT is interrupted: the timer
 * thread (wtt_http_park.c) signals the stuck thread, whose handler installs
 * a count hook that raises. Hooks only fire in interpreted code, so route
 * and plugin chunks are compiled with jit.off (lua/wtt/app.lua);
 * docs/http.md explains the trade.
 */
#include "wtt_http_private.h"
#include "wtt_log.h"
#include "wtt_util.h"

#include <errno.h>
#include <signal.h>
#include <time.h>

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


void
wtt__http_watchdog_scan(uint64_t now)
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
