/*
 * wtt_thread.c: Lua module `wtt.thread`: background threads, each with its
 * own LuaJIT state, and a small process-wide table of strings they share.
 *
 * Used where one Lua state cannot do two things at once: the subscriber
 * inside `wtt serve`, and the worker's heartbeat, which must keep beating
 * while inference blocks the worker's main state in C. States never cross
 * threads (house style 22): a thread gets a path and a string argument,
 * and talks to others through the shared table or through Redis.
 *
 *   local thread = require "wtt.thread"
 *   local t = thread.start("lua/wtt/heartbeat.lua", json_args)
 *   thread.set("worker:current", task_id)      -- visible to every thread
 *   thread.get("worker:current")
 *   t:join(5)                                  -- true | nil, "timeout"
 */
#include "wtt_thread.h"
#include "wtt_luax.h"
#include "wtt_util.h"
#include "wtt_vm.h"

#include <errno.h>
#include <lauxlib.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define THREAD_MT "wtt.thread.thread"

typedef struct wtt_thread {
    pthread_t       tid;
    char           *path;
    char           *arg;
    size_t          arg_len;
    pthread_mutex_t lock;
    pthread_cond_t  done_cond;
    int             done;
    int             status;        /* 0 ok, 1 Lua error */
    char            error[512];
    int             refs;          /* thread + Lua handle */
} job_t;

typedef struct {
    job_t *job;
    int    reaped;      /* pthread_join'ed, or detached */
} handle_t;

typedef struct entry {
    char         *key;
    char         *value;
    size_t        len;
    struct entry *next;
} entry_t;

static pthread_mutex_t shared_lock = PTHREAD_MUTEX_INITIALIZER;
static entry_t        *shared;

/* Set once by wtt_thread_request_stop; read by thread.stopping(). */
static int             stop_requested;


static void
job_unref(job_t *j)
{
    int left;

    pthread_mutex_lock(&j->lock);
    left = --j->refs;
    pthread_mutex_unlock(&j->lock);
    if (left == 0) {
        pthread_mutex_destroy(&j->lock);
        pthread_cond_destroy(&j->done_cond);
        free(j->path);
        free(j->arg);
        free(j);
    }
}


static void *
thread_main(void *p)
{
    job_t     *j = p;
    lua_State *L = wtt_vm_new();
    int        status = 1;
    char       error[512] = "cannot create a Lua state";

    if (L != NULL) {
        /* The argument goes in as `...` and as arg[1]. */
        char *argv[1] = { j->arg };
        status = wtt_vm_run_file(L, j->path, 1, argv) != 0;
        if (status) {
            snprintf(error, sizeof(error), "%s failed (see the log)",
                     j->path);
        }
        wtt_vm_close(L);
    }
    pthread_mutex_lock(&j->lock);
    j->done = 1;
    j->status = status;
    if (status) {
        snprintf(j->error, sizeof(j->error), "%s", error);
    }
    pthread_cond_broadcast(&j->done_cond);
    pthread_mutex_unlock(&j->lock);
    job_unref(j);
    return NULL;
}


struct wtt_thread *
wtt_thread_start_file(const char *path, const char *arg, char *err,
                      size_t errlen)
{
    job_t *j = wtt_calloc(1, sizeof(*j));
    int    rc;

    j->path = wtt_strdup(path);
    j->arg = wtt_strdup(arg != NULL ? arg : "");
    j->arg_len = strlen(j->arg);
    j->refs = 2;                  /* the thread and the caller */
    pthread_mutex_init(&j->lock, NULL);
    pthread_cond_init(&j->done_cond, NULL);
    rc = pthread_create(&j->tid, NULL, thread_main, j);
    if (rc != 0) {
        snprintf(err, errlen, "thread start failed: %s", strerror(rc));
        j->refs = 1;
        job_unref(j);
        return NULL;
    }
    return j;
}


/*
 * Waits for `j`'s Lua code to end, at most `timeout` seconds (negative:
 * no limit). Returns 1 when it has ended, 0 on timeout.
 */
static int
wait_done(job_t *j, double timeout)
{
    struct timespec ts;
    int             done;

    clock_gettime(CLOCK_REALTIME, &ts);
    if (timeout >= 0) {
        long ns = (long) ((timeout - (long) timeout) * 1e9);
        ts.tv_sec += (time_t) timeout + (ts.tv_nsec + ns) / 1000000000L;
        ts.tv_nsec = (ts.tv_nsec + ns) % 1000000000L;
    }
    pthread_mutex_lock(&j->lock);
    while (!j->done) {
        if (timeout < 0) {
            pthread_cond_wait(&j->done_cond, &j->lock);
        } else if (pthread_cond_timedwait(&j->done_cond, &j->lock, &ts)
                   == ETIMEDOUT)
        {
            break;
        }
    }
    done = j->done;
    pthread_mutex_unlock(&j->lock);
    return done;
}


void
wtt_thread_request_stop(void)
{
    __atomic_store_n(&stop_requested, 1, __ATOMIC_SEQ_CST);
}


int
wtt_thread_join(struct wtt_thread *j, double timeout)
{
    int done = wait_done(j, timeout);

    if (done) {
        pthread_join(j->tid, NULL);     /* it is past its Lua code */
    } else {
        pthread_detach(j->tid);
    }
    job_unref(j);
    return done ? 0 : -1;
}


/* thread.start(path, arg) -> handle | nil, err */
static int
l_start(lua_State *L)
{
    size_t      alen = 0;
    const char *path = luaL_checkstring(L, 1);
    const char *arg = luaL_optlstring(L, 2, "", &alen);
    handle_t   *h;
    job_t      *j = wtt_calloc(1, sizeof(*j));
    int         rc;

    j->path = wtt_strdup(path);
    j->arg = wtt_strndup(arg, alen);
    j->arg_len = alen;
    j->refs = 2;
    pthread_mutex_init(&j->lock, NULL);
    pthread_cond_init(&j->done_cond, NULL);
    h = lua_newuserdata(L, sizeof(*h));
    memset(h, 0, sizeof(*h));
    luaL_getmetatable(L, THREAD_MT);
    lua_setmetatable(L, -2);
    rc = pthread_create(&j->tid, NULL, thread_main, j);
    if (rc != 0) {
        j->refs = 1;
        job_unref(j);
        lua_pushnil(L);
        lua_pushfstring(L, "thread start failed: %s", strerror(rc));
        return 2;
    }
    /* Joinable: t:join must return only once the thread is gone, its
     * thread-local destructors (OpenSSL's, libcurl's) included. If it
     * returned when the Lua code did, a process that exits right after
     * would run OpenSSL's atexit cleanup while the thread's own still
     * runs: a double free (seen under ASan). */
    h->job = j;
    return 1;
}


/* t:join(timeout) -> true | nil, "timeout" | nil, "thread failed: ..." */
static int
l_join(lua_State *L)
{
    handle_t       *h = luaL_checkudata(L, 1, THREAD_MT);
    double          timeout = luaL_optnumber(L, 2, -1);
    job_t          *j = h->job;
    int             done, status;

    if (j == NULL) {
        lua_pushnil(L);
        lua_pushliteral(L, "closed");
        return 2;
    }
    done = wait_done(j, timeout);
    pthread_mutex_lock(&j->lock);
    status = j->status;
    pthread_mutex_unlock(&j->lock);
    if (!done) {
        lua_pushnil(L);
        lua_pushliteral(L, "timeout");
        return 2;
    }
    if (!h->reaped) {
        pthread_join(j->tid, NULL);     /* it is past its Lua code */
        h->reaped = 1;
    }
    if (status != 0) {
        lua_pushnil(L);
        lua_pushfstring(L, "thread failed: %s", j->error);
        return 2;
    }
    lua_pushboolean(L, 1);
    return 1;
}


/* t:done() -> boolean */
static int
l_done(lua_State *L)
{
    handle_t *h = luaL_checkudata(L, 1, THREAD_MT);
    int       done = 1;

    if (h->job != NULL) {
        pthread_mutex_lock(&h->job->lock);
        done = h->job->done;
        pthread_mutex_unlock(&h->job->lock);
    }
    lua_pushboolean(L, done);
    return 1;
}


/* __gc: the thread runs on (detached); only the handle goes. */
static int
l_gc(lua_State *L)
{
    handle_t *h = luaL_checkudata(L, 1, THREAD_MT);

    if (h->job != NULL && !h->reaped) {
        pthread_detach(h->job->tid);
        h->reaped = 1;
    }
    if (h->job != NULL) {
        job_unref(h->job);
        h->job = NULL;
    }
    return 0;
}


/* thread.stopping() -> boolean: the process asked its background threads
 * to stop (`wtt serve` on SIGTERM); a thread's loop returns when it sees
 * true, and its state is closed. */
static int
l_stopping(lua_State *L)
{
    lua_pushboolean(L, __atomic_load_n(&stop_requested, __ATOMIC_SEQ_CST));
    return 1;
}


/* ---------------------------------------------------------------------------
 * The shared table
 * ------------------------------------------------------------------------- */

static entry_t **
find(const char *key)
{
    entry_t **pp = &shared;

    while (*pp != NULL && strcmp((*pp)->key, key) != 0) {
        pp = &(*pp)->next;
    }
    return pp;
}


/* thread.set(key, value | nil) */
static int
l_set(lua_State *L)
{
    const char *key = luaL_checkstring(L, 1);
    size_t      len = 0;
    const char *v = lua_isnoneornil(L, 2) ? NULL
                                          : luaL_checklstring(L, 2, &len);
    entry_t   **pp, *e;

    pthread_mutex_lock(&shared_lock);
    pp = find(key);
    e = *pp;
    if (v == NULL) {
        if (e != NULL) {
            *pp = e->next;
            free(e->key);
            free(e->value);
            free(e);
        }
    } else {
        if (e == NULL) {
            e = wtt_calloc(1, sizeof(*e));
            e->key = wtt_strdup(key);
            *pp = e;
        }
        free(e->value);
        e->value = wtt_strndup(v, len);
        e->len = len;
    }
    pthread_mutex_unlock(&shared_lock);
    return 0;
}


/* thread.get(key) -> value | nil */
static int
l_get(lua_State *L)
{
    const char *key = luaL_checkstring(L, 1);
    entry_t    *e;

    pthread_mutex_lock(&shared_lock);
    e = *find(key);
    if (e != NULL) {
        lua_pushlstring(L, e->value, e->len);
    } else {
        lua_pushnil(L);
    }
    pthread_mutex_unlock(&shared_lock);
    return 1;
}


static const luaL_Reg thread_methods[] = {
    { "join", l_join },
    { "done", l_done },
    { NULL, NULL },
};

static const luaL_Reg thread_funcs[] = {
    { "start", l_start },
    { "set",   l_set },
    { "get",   l_get },
    { "stopping", l_stopping },
    { NULL, NULL },
};


int
luaopen_wtt_thread(lua_State *L)
{
    static const luaL_Reg thread_meta[] = {
        { "__gc", l_gc }, { NULL, NULL },
    };

    wtt_lua_class(L, THREAD_MT, thread_meta, thread_methods);
    lua_newtable(L);
    luaL_register(L, NULL, thread_funcs);
    return 1;
}
