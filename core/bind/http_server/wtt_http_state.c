/*
 * wtt_http_state.c: what the HTTP server keeps per serving thread (its
 * context and the Lua states built from route generations) and per request.
 * See wtt_http_private.h for the other parts.
 */
#include "wtt_http_private.h"
#include "wtt_reload.h"
#include "wtt_log.h"
#include "wtt_util.h"
#include "wtt_vm.h"

#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

pthread_mutex_t                wtt__http_threads_lock
                                   = PTHREAD_MUTEX_INITIALIZER;
tctx_t                        *wtt__http_all_threads;
static int                     nthreads;
__thread tctx_t               *wtt__http_tls_t;
__thread req_t                *wtt__http_tls_req;


/* ---------------------------------------------------------------------------
 * Threads and their Lua states
 * ------------------------------------------------------------------------- */

tctx_t *
wtt__http_thread_ctx(void)
{
    tctx_t *t = wtt__http_tls_t;

    if (t != NULL) {
        return t;
    }
    t = wtt_calloc(1, sizeof(*t));
    t->tid = pthread_self();
    pthread_mutex_lock(&wtt__http_threads_lock);
    t->index = nthreads++;
    t->next_all = wtt__http_all_threads;
    wtt__http_all_threads = t;
    pthread_mutex_unlock(&wtt__http_threads_lock);
    wtt__http_tls_t = t;
    return t;
}


void
wtt__http_slot_close(slot_t *s)
{
    wtt_vm_close(s->L);
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
    wtt__http_slot_close(s);
}


/*
 * Returns the slot new requests on this thread should use, building a state
 * for a newer generation first. A build that fails keeps the old slot (the
 * validator already built it once, so this is rare) and is not retried
 * until the next generation. NULL only when no state could ever be built.
 */
slot_t *
wtt__http_current_slot(tctx_t *t)
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
            wtt_vm_close(L);
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
            wtt__http_slot_close(old);
        } else {
            old->retired = 1;
            old->next = t->retired;
            t->retired = old;
        }
    }
    return s;
}


/* ---------------------------------------------------------------------------
 * Requests
 * ------------------------------------------------------------------------- */

req_t *
wtt__http_req_new(tctx_t *t, struct MHD_Connection *conn)
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
    r->park_after = -1;
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
void
wtt__http_req_unref(req_t *r)
{
    tctx_t *t = r->t;

    if (--r->refs > 0) {
        return;
    }
    wtt__http_park_forget(r);
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
    atomic_fetch_sub(&wtt__http_inflight, 1);
}


/* X-Request-Id from the client when it is sane, else a fresh one. */
void
wtt__http_make_id(req_t *r)
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

        memcpy(r->id, wtt__http_id_prefix, 8);
        r->id[8] = hex[(r->t->index >> 4) & 15];
        r->id[9] = hex[r->t->index & 15];
        for (int i = 9; i >= 0; i--, v >>= 4) {
            p[i] = hex[v & 15];
        }
        r->id[20] = '\0';
    }
}
