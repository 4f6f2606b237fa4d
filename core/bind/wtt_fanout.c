/*
 * wtt_fanout.c: the fan-out hub (see wtt_fanout.h).
 *
 * Shared state, all under `hub_lock`:
 *
 *   topic   a Redis channel: how many routes with clients it has, and where
 *           its subscription stands on the current connection (`sent`: a
 *           SUBSCRIBE went out and no UNSUBSCRIBE since; `pending`: its
 *           confirmations still to come; `active`: confirmed, messages
 *           flow). A topic whose `routes` and `sent` disagree is on the
 *           change list, which hub_changes turns into commands.
 *   route   a topic and a key (NULL: every message): the clients that
 *           follow it. Keyed routes share a topic (task:completed carries
 *           every task's completion) and are found by the id the payload
 *           names, so a message costs one lookup, not one test per client.
 *   client  its routes, its buffer (whole records, up to `max` bytes),
 *           how many of its routes are not confirmed yet, and its waker.
 *
 * A record is [u32 size][u32 kind][u64 stamp ns][u32 channel length]
 * [channel][payload]. The buffer is a byte array read from `head` and
 * written at `tail`, compacted or grown (up to `max`) when the tail
 * reaches its end.
 *
 * Wakers are collected under the lock and called after it is released, so
 * a serving thread taking from its buffer never waits behind a fan-out's
 * system calls.
 */
#include "wtt_fanout.h"
#include "wtt_http_server.h"
#include "wtt_luax.h"
#include "wtt_thread.h"
#include "wtt_util.h"

#include <errno.h>
#include <lauxlib.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define CLIENT_MT     "wtt.core.fanout.client"
#define BUCKETS       4096
#define REC_HEAD      20            /* size, kind, stamp, channel length */
#define KIND_MESSAGE  1
#define KIND_SYNC     2
#define MIN_CAPACITY  1024
#define MAX_ROUTES    16            /* per client */
#define MAX_NAME      512           /* channel or key */

typedef struct client client_t;
typedef struct route  route_t;

typedef struct topic {
    char          *name;
    size_t         len;
    int            routes;      /* routes with clients */
    int            keyed;       /* of those, routes with a key */
    int            sent;
    int            pending;
    int            active;
    int            queued;      /* on the change list */
    route_t       *first;       /* its routes, by next_in_topic */
    struct topic  *next;        /* hash chain */
    struct topic  *next_change;
} topic_t;

struct route {
    topic_t       *topic;
    char          *key;
    size_t         key_len;
    client_t     **clients;
    int            n, cap;
    route_t       *next;        /* hash chain */
    route_t       *next_in_topic;
};

struct client {
    route_t               *routes[MAX_ROUTES];
    int                    nroutes;
    char                  *buf;
    size_t                 cap, max, head, tail;
    int                    unconfirmed;
    int                    dropped;
    struct wtt_http_waker *waker;
    /* the owner's copy of the record being taken (no lock needed) */
    char                  *out;
    size_t                 out_cap;
};

/* Wakers to call once the lock is released. */
typedef struct {
    struct wtt_http_waker **w;
    char                   *drop;
    int                     n, cap;
} wakes_t;

static pthread_mutex_t    hub_lock = PTHREAD_MUTEX_INITIALIZER;
static topic_t           *topics[BUCKETS];
static route_t           *routes[BUCKETS];
static topic_t           *changes;
static int                n_clients, n_topics;
static uint64_t           n_delivered, n_dropped;
static struct wtt_thread *hub_thread;
static int                hub_started;
static atomic_int         hub_stopping;
static int                kick_fd = -1;
static pthread_once_t     kick_once = PTHREAD_ONCE_INIT;


/* ---------------------------------------------------------------------------
 * Helpers
 * ------------------------------------------------------------------------- */

static void
kick_init(void)
{
    kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
}


/* Wakes the hub loop (hub_wait returns). */
static void
kick(void)
{
    uint64_t one = 1;
    ssize_t  n;

    pthread_once(&kick_once, kick_init);
    if (kick_fd < 0) {
        return;
    }
    do {
        n = write(kick_fd, &one, sizeof(one));
    } while (n < 0 && errno == EINTR);
}


static uint32_t
hash_bytes(uint32_t h, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        h = (h ^ (unsigned char) s[i]) * 16777619u;
    }
    return h;
}


static topic_t *
topic_find(const char *name, size_t len, uint32_t *bucket)
{
    uint32_t b = hash_bytes(2166136261u, name, len) % BUCKETS;

    if (bucket != NULL) {
        *bucket = b;
    }
    for (topic_t *t = topics[b]; t != NULL; t = t->next) {
        if (t->len == len && memcmp(t->name, name, len) == 0) {
            return t;
        }
    }
    return NULL;
}


static uint32_t
route_bucket(const topic_t *t, const char *key, size_t key_len)
{
    uint32_t h = hash_bytes(2166136261u, (const char *) &t, sizeof(t));

    if (key != NULL) {
        h = hash_bytes(h ^ 1u, key, key_len);
    }
    return h % BUCKETS;
}


static route_t *
route_find(const topic_t *t, const char *key, size_t key_len)
{
    uint32_t b = route_bucket(t, key, key_len);

    for (route_t *r = routes[b]; r != NULL; r = r->next) {
        if (r->topic == t && (r->key == NULL) == (key == NULL)
            && (key == NULL || (r->key_len == key_len
                                && memcmp(r->key, key, key_len) == 0)))
        {
            return r;
        }
    }
    return NULL;
}


/* Puts `t` on the change list when its subscription must change. */
static void
topic_touch(topic_t *t)
{
    if (!t->queued && (t->routes > 0) != (t->sent != 0)) {
        t->queued = 1;
        t->next_change = changes;
        changes = t;
    }
}


/* Frees `t` when nothing refers to it any more (not on the change list). */
static void
topic_maybe_free(topic_t *t)
{
    uint32_t b;

    if (t->routes > 0 || t->sent || t->pending > 0 || t->queued) {
        return;
    }
    topic_find(t->name, t->len, &b);
    for (topic_t **pp = &topics[b]; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == t) {
            *pp = t->next;
            break;
        }
    }
    n_topics--;
    free(t->name);
    free(t);
}


static void
wakes_add(wakes_t *wk, struct wtt_http_waker *w, int drop)
{
    if (w == NULL) {
        return;
    }
    if (wk->n == wk->cap) {
        wk->cap = wk->cap ? wk->cap * 2 : 64;
        wk->w = wtt_realloc(wk->w, (size_t) wk->cap * sizeof(*wk->w));
        wk->drop = wtt_realloc(wk->drop, (size_t) wk->cap);
    }
    wtt_http_waker_ref(w);
    wk->w[wk->n] = w;
    wk->drop[wk->n] = (char) drop;
    wk->n++;
}


/* Calls the collected wakers; outside the lock. */
static void
wakes_run(wakes_t *wk)
{
    for (int i = 0; i < wk->n; i++) {
        if (wk->drop[i]) {
            wtt_http_waker_drop(wk->w[i]);
        } else {
            wtt_http_waker_wake(wk->w[i]);
        }
        wtt_http_waker_unref(wk->w[i]);
    }
    free(wk->w);
    free(wk->drop);
}


/*
 * Appends a record to `c` (under the lock). A record that would take the
 * buffer past its capacity drops the client instead. Adds the client's
 * waker to `wk`.
 */
static void
push(client_t *c, int kind, uint64_t stamp, const char *ch, size_t chlen,
     const char *p, size_t plen, wakes_t *wk)
{
    size_t   size = REC_HEAD + chlen + plen;
    uint32_t u;
    char    *at;

    if (c->dropped) {
        return;
    }
    if (c->tail - c->head + size > c->max) {
        c->dropped = 1;
        n_dropped++;
        wakes_add(wk, c->waker, 1);
        return;
    }
    if (c->tail + size > c->cap) {
        if (c->head > 0) {
            memmove(c->buf, c->buf + c->head, c->tail - c->head);
            c->tail -= c->head;
            c->head = 0;
        }
        if (c->tail + size > c->cap) {
            size_t cap = c->cap ? c->cap : MIN_CAPACITY;
            while (cap < c->tail + size) {
                cap *= 2;
            }
            if (cap > c->max) {
                cap = c->max;
            }
            c->buf = wtt_realloc(c->buf, cap);
            c->cap = cap;
        }
    }
    at = c->buf + c->tail;
    u = (uint32_t) size;
    memcpy(at, &u, 4);
    u = (uint32_t) kind;
    memcpy(at + 4, &u, 4);
    memcpy(at + 8, &stamp, 8);
    u = (uint32_t) chlen;
    memcpy(at + 16, &u, 4);
    memcpy(at + REC_HEAD, ch, chlen);
    memcpy(at + REC_HEAD + chlen, p, plen);
    c->tail += size;
    wakes_add(wk, c->waker, 0);
}


static void
push_sync(client_t *c, wakes_t *wk)
{
    push(c, KIND_SYNC, wtt_now_ns(), "", 0, "", 0, wk);
}


/* Whether `c` may appear in an id (what wtt.queue accepts in task ids). */
static int
id_char(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z')
           || (c >= 'A' && c <= 'Z') || c == '_' || c == '.' || c == ':'
           || c == '-';
}


/*
 * The id a payload names: the payload itself when it is a bare id, else
 * the value of its "id" key. A JSON string escapes every quote inside it,
 * so the raw bytes "id":" can only be a key. NULL when there is none.
 */
static const char *
payload_id(const char *p, size_t n, size_t *len)
{
    static const char key[] = "\"id\":\"";
    const char       *at, *end;
    size_t            i;

    if (n > 0 && n <= 128) {
        for (i = 0; i < n && id_char((unsigned char) p[i]); i++) {
        }
        if (i == n) {
            *len = n;
            return p;
        }
    }
    at = memmem(p, n, key, sizeof(key) - 1);
    if (at == NULL) {
        return NULL;
    }
    at += sizeof(key) - 1;
    end = memchr(at, '"', n - (size_t) (at - p));
    if (end == NULL) {
        return NULL;
    }
    *len = (size_t) (end - at);
    return at;
}


/* ---------------------------------------------------------------------------
 * Clients
 * ------------------------------------------------------------------------- */

static client_t **
check_client(lua_State *L)
{
    client_t **ud = luaL_checkudata(L, 1, CLIENT_MT);

    if (*ud == NULL) {
        luaL_error(L, "fan-out client is closed");
    }
    return ud;
}


/* Adds `c` to the route (channel, key), making both as needed. Under the
 * lock. */
static void
attach(client_t *c, const char *ch, size_t chlen, const char *key,
       size_t key_len)
{
    uint32_t b;
    topic_t *t = topic_find(ch, chlen, &b);
    route_t *r;

    if (t == NULL) {
        t = wtt_calloc(1, sizeof(*t));
        t->name = wtt_malloc(chlen + 1);
        memcpy(t->name, ch, chlen);
        t->name[chlen] = '\0';
        t->len = chlen;
        t->next = topics[b];
        topics[b] = t;
        n_topics++;
    }
    r = route_find(t, key, key_len);
    if (r == NULL) {
        r = wtt_calloc(1, sizeof(*r));
        r->topic = t;
        if (key != NULL) {
            r->key = wtt_malloc(key_len + 1);
            memcpy(r->key, key, key_len);
            r->key[key_len] = '\0';
            r->key_len = key_len;
        }
        b = route_bucket(t, key, key_len);
        r->next = routes[b];
        routes[b] = r;
        r->next_in_topic = t->first;
        t->first = r;
        t->routes++;
        t->keyed += key != NULL;
        topic_touch(t);
    }
    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 4;
        r->clients = wtt_realloc(r->clients,
                                 (size_t) r->cap * sizeof(*r->clients));
    }
    r->clients[r->n++] = c;
    c->routes[c->nroutes++] = r;
    if (!t->active) {
        c->unconfirmed++;
    }
}


/* Removes `c` from route `r`, freeing the route when it has no clients
 * left. Under the lock. */
static void
detach(client_t *c, route_t *r)
{
    topic_t *t = r->topic;
    uint32_t b;

    for (int i = 0; i < r->n; i++) {
        if (r->clients[i] == c) {
            r->clients[i] = r->clients[--r->n];
            break;
        }
    }
    if (r->n > 0) {
        return;
    }
    b = route_bucket(t, r->key, r->key_len);
    for (route_t **pp = &routes[b]; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == r) {
            *pp = r->next;
            break;
        }
    }
    for (route_t **pp = &t->first; *pp != NULL; pp = &(*pp)->next_in_topic) {
        if (*pp == r) {
            *pp = r->next_in_topic;
            break;
        }
    }
    t->routes--;
    t->keyed -= r->key != NULL;
    free(r->key);
    free(r->clients);
    free(r);
    topic_touch(t);
    topic_maybe_free(t);
}


/*
 * fanout.open(routes, capacity, waker?) -> client
 *
 * routes: array of { channel, key? } (at most 16; names up to 512
 * bytes). capacity: the buffer's limit in bytes (at least 1024). waker:
 * httpd.waker(ctx), resumed on every record and dropped on overflow; nil
 * for a client that polls. Channels not yet subscribed are asked of the
 * hub; a `sync` record follows once all are confirmed (at once when they
 * already are).
 */
static int
l_open(lua_State *L)
{
    int                    n;
    lua_Number             cap = luaL_checknumber(L, 2);
    struct wtt_http_waker *w = NULL;
    client_t             **ud, *c;
    wakes_t                wk = { 0 };
    int                    changed;
    const char            *ch[MAX_ROUTES], *key[MAX_ROUTES];
    size_t                 chlen[MAX_ROUTES], key_len[MAX_ROUTES];

    luaL_checktype(L, 1, LUA_TTABLE);
    n = (int) lua_objlen(L, 1);
    luaL_argcheck(L, n >= 1 && n <= MAX_ROUTES, 1, "1 to 16 routes expected");
    luaL_argcheck(L, cap >= MIN_CAPACITY && cap <= 1e9, 2,
                  "capacity must be 1024 bytes to 1 GB");
    if (!lua_isnoneornil(L, 3)) {
        w = wtt_http_check_waker(L, 3);
    }
    /* Every argument is read (and may raise) before anything is shared. */
    for (int i = 0; i < n; i++) {
        lua_rawgeti(L, 1, i + 1);
        luaL_argcheck(L, lua_istable(L, -1), 1, "each route is { channel, "
                      "key? }");
        lua_rawgeti(L, -1, 1);
        lua_rawgeti(L, -2, 2);
        ch[i] = lua_tolstring(L, -2, &chlen[i]);
        key[i] = lua_isnil(L, -1) ? NULL : lua_tolstring(L, -1, &key_len[i]);
        luaL_argcheck(L, ch[i] != NULL && chlen[i] > 0 && chlen[i] <= MAX_NAME
                      && (lua_isnil(L, -1) || (key[i] != NULL
                                               && key_len[i] > 0
                                               && key_len[i] <= MAX_NAME)),
                      1, "a route's channel and key are non-empty strings "
                      "of at most 512 bytes");
        /* The strings stay referenced by the routes table. */
        lua_pop(L, 3);
        if (key[i] == NULL) {
            key_len[i] = 0;
        }
    }
    ud = lua_newuserdata(L, sizeof(*ud));
    *ud = NULL;
    luaL_getmetatable(L, CLIENT_MT);
    lua_setmetatable(L, -2);

    c = wtt_calloc(1, sizeof(*c));
    c->max = (size_t) cap;
    if (w != NULL) {
        wtt_http_waker_ref(w);
        c->waker = w;
    }
    pthread_mutex_lock(&hub_lock);
    for (int i = 0; i < n; i++) {
        attach(c, ch[i], chlen[i], key[i], key_len[i]);
    }
    n_clients++;
    if (c->unconfirmed == 0) {
        push_sync(c, &wk);
    }
    changed = changes != NULL;
    pthread_mutex_unlock(&hub_lock);
    *ud = c;
    if (changed) {
        kick();
    }
    wakes_run(&wk);
    return 1;
}


/*
 * client:take() -> kind, stamp, channel, payload | nil
 *
 * The oldest record: "message" (stamp: when the hub received it, in
 * sys.now() seconds), "sync" (all channels confirmed at `stamp`: read the
 * current state now; channel and payload are ""), or "dropped" (the buffer
 * overflowed; nothing more will come). nil when the buffer is empty.
 */
static int
l_take(lua_State *L)
{
    client_t *c = *check_client(L);
    uint32_t  size, kind, chlen;
    uint64_t  stamp;

    pthread_mutex_lock(&hub_lock);
    if (c->dropped) {
        pthread_mutex_unlock(&hub_lock);
        lua_pushliteral(L, "dropped");
        return 1;
    }
    if (c->head == c->tail) {
        pthread_mutex_unlock(&hub_lock);
        lua_pushnil(L);
        return 1;
    }
    memcpy(&size, c->buf + c->head, 4);
    if (size > c->out_cap) {
        c->out = wtt_realloc(c->out, size);
        c->out_cap = size;
    }
    memcpy(c->out, c->buf + c->head, size);
    c->head += size;
    if (c->head == c->tail) {
        c->head = c->tail = 0;
    }
    pthread_mutex_unlock(&hub_lock);

    /* Only the owner touches `out`: Lua may allocate (and raise) here. */
    memcpy(&kind, c->out + 4, 4);
    memcpy(&stamp, c->out + 8, 8);
    memcpy(&chlen, c->out + 16, 4);
    if (kind == KIND_SYNC) {
        lua_pushliteral(L, "sync");
    } else {
        lua_pushliteral(L, "message");
    }
    lua_pushnumber(L, (lua_Number) stamp / 1e9);
    lua_pushlstring(L, c->out + REC_HEAD, chlen);
    lua_pushlstring(L, c->out + REC_HEAD + chlen, size - REC_HEAD - chlen);
    return 4;
}


/* client:pending() -> bytes held in the buffer */
static int
l_pending(lua_State *L)
{
    client_t *c = *check_client(L);
    size_t    n;

    pthread_mutex_lock(&hub_lock);
    n = c->tail - c->head;
    pthread_mutex_unlock(&hub_lock);
    lua_pushnumber(L, (lua_Number) n);
    return 1;
}


/* client:close() and __gc: leaves every route; the last client of a
 * channel makes the hub unsubscribe it. Safe twice. */
static int
l_close(lua_State *L)
{
    client_t **ud = luaL_checkudata(L, 1, CLIENT_MT);
    client_t  *c = *ud;
    int        changed;

    if (c == NULL) {
        return 0;
    }
    *ud = NULL;
    pthread_mutex_lock(&hub_lock);
    for (int i = 0; i < c->nroutes; i++) {
        detach(c, c->routes[i]);
    }
    n_clients--;
    changed = changes != NULL;
    pthread_mutex_unlock(&hub_lock);
    if (changed) {
        kick();
    }
    wtt_http_waker_unref(c->waker);
    free(c->buf);
    free(c->out);
    free(c);
    return 0;
}


/* ---------------------------------------------------------------------------
 * The hub side (lua/wtt/fanout/hub.lua, on the hub thread)
 * ------------------------------------------------------------------------- */

/*
 * fanout.hub_changes() -> subscribe, unsubscribe: the channels to
 * SUBSCRIBE and to UNSUBSCRIBE now (arrays, maybe empty); the hub must
 * send both before it reads again.
 */
static int
l_hub_changes(lua_State *L)
{
    char  **sub = NULL, **unsub = NULL;
    size_t *sublen = NULL, *unsublen = NULL;
    int     ns = 0, nu = 0, cap = 0;

    pthread_mutex_lock(&hub_lock);
    for (topic_t *t = changes; t != NULL; t = t->next_change) {
        cap++;
    }
    if (cap > 0) {
        sub = wtt_malloc((size_t) cap * sizeof(*sub));
        unsub = wtt_malloc((size_t) cap * sizeof(*unsub));
        sublen = wtt_malloc((size_t) cap * sizeof(*sublen));
        unsublen = wtt_malloc((size_t) cap * sizeof(*unsublen));
    }
    while (changes != NULL) {
        topic_t *t = changes;
        changes = t->next_change;
        t->queued = 0;
        if (t->routes > 0 && !t->sent) {
            t->sent = 1;
            t->pending++;
            sub[ns] = wtt_malloc(t->len);
            memcpy(sub[ns], t->name, t->len);
            sublen[ns++] = t->len;
        } else if (t->routes == 0 && t->sent) {
            t->sent = 0;
            t->active = 0;
            unsub[nu] = wtt_malloc(t->len);
            memcpy(unsub[nu], t->name, t->len);
            unsublen[nu++] = t->len;
        }
        topic_maybe_free(t);
    }
    pthread_mutex_unlock(&hub_lock);

    lua_createtable(L, ns, 0);
    for (int i = 0; i < ns; i++) {
        lua_pushlstring(L, sub[i], sublen[i]);
        lua_rawseti(L, -2, i + 1);
    }
    lua_createtable(L, nu, 0);
    for (int i = 0; i < nu; i++) {
        lua_pushlstring(L, unsub[i], unsublen[i]);
        lua_rawseti(L, -2, i + 1);
    }
    for (int i = 0; i < ns; i++) {
        free(sub[i]);
    }
    for (int i = 0; i < nu; i++) {
        free(unsub[i]);
    }
    free(sub);
    free(unsub);
    free(sublen);
    free(unsublen);
    return 2;
}


/*
 * fanout.hub_confirmed(channel): Redis confirmed a SUBSCRIBE. Once the
 * last confirmation due is in and the channel is still wanted, it is
 * active, and each of its clients whose channels are now all confirmed
 * gets a `sync` record.
 */
static int
l_hub_confirmed(lua_State *L)
{
    size_t   len;
    const char *ch = luaL_checklstring(L, 1, &len);
    topic_t *t;
    wakes_t  wk = { 0 };

    pthread_mutex_lock(&hub_lock);
    t = topic_find(ch, len, NULL);
    if (t != NULL) {
        if (t->pending > 0) {
            t->pending--;
        }
        if (t->pending == 0 && t->sent && !t->active) {
            t->active = 1;
            for (route_t *r = t->first; r != NULL; r = r->next_in_topic) {
                for (int i = 0; i < r->n; i++) {
                    client_t *c = r->clients[i];
                    if (--c->unconfirmed == 0) {
                        push_sync(c, &wk);
                    }
                }
            }
        }
        topic_maybe_free(t);
    }
    pthread_mutex_unlock(&hub_lock);
    wakes_run(&wk);
    return 0;
}


/*
 * fanout.hub_deliver(channel, payload) -> clients reached: appends the
 * message to the buffer of every client of the channel's unkeyed route
 * and of its route keyed by the id the payload names.
 */
static int
l_hub_deliver(lua_State *L)
{
    size_t      chlen, plen, idlen = 0;
    const char *ch = luaL_checklstring(L, 1, &chlen);
    const char *p = luaL_checklstring(L, 2, &plen);
    const char *id;
    uint64_t    stamp = wtt_now_ns();
    topic_t    *t;
    route_t    *r;
    wakes_t     wk = { 0 };
    int         reached = 0;

    pthread_mutex_lock(&hub_lock);
    t = topic_find(ch, chlen, NULL);
    if (t != NULL && t->routes > 0) {
        if ((r = route_find(t, NULL, 0)) != NULL) {
            for (int i = 0; i < r->n; i++) {
                push(r->clients[i], KIND_MESSAGE, stamp, ch, chlen, p, plen,
                     &wk);
            }
            reached += r->n;
        }
        if (t->keyed > 0 && (id = payload_id(p, plen, &idlen)) != NULL
            && (r = route_find(t, id, idlen)) != NULL)
        {
            for (int i = 0; i < r->n; i++) {
                push(r->clients[i], KIND_MESSAGE, stamp, ch, chlen, p, plen,
                     &wk);
            }
            reached += r->n;
        }
        n_delivered += (uint64_t) reached;
    }
    pthread_mutex_unlock(&hub_lock);
    wakes_run(&wk);
    lua_pushinteger(L, reached);
    return 1;
}


/*
 * fanout.hub_reset(): the connection was lost (or is new). Nothing is
 * subscribed any more: every wanted channel goes back on the change list
 * and every client waits for a new `sync`, since what was published in
 * between is gone.
 */
static int
l_hub_reset(lua_State *L)
{
    (void) L;
    pthread_mutex_lock(&hub_lock);
    for (int b = 0; b < BUCKETS; b++) {
        for (topic_t *t = topics[b], *tn; t != NULL; t = tn) {
            tn = t->next;
            if (t->active) {
                for (route_t *r = t->first; r != NULL; r = r->next_in_topic) {
                    for (int i = 0; i < r->n; i++) {
                        r->clients[i]->unconfirmed++;
                    }
                }
            }
            t->sent = 0;
            t->pending = 0;
            t->active = 0;
            topic_touch(t);
            topic_maybe_free(t);
        }
    }
    pthread_mutex_unlock(&hub_lock);
    return 0;
}


/*
 * fanout.hub_wait(fd, timeout) -> "stop" | "changes" | "readable" |
 * "timeout": waits at most `timeout` seconds for the Redis socket `fd`
 * (nil: none) to become readable or for clients to need a subscription
 * changed (or the hub to stop).
 */
static int
l_hub_wait(lua_State *L)
{
    int           fd = (int) luaL_optinteger(L, 1, -1);
    double        t = luaL_checknumber(L, 2);
    struct pollfd p[2];
    int           n = 1, rc, ms;

    pthread_once(&kick_once, kick_init);
    if (atomic_load(&hub_stopping)) {
        lua_pushliteral(L, "stop");
        return 1;
    }
    ms = t <= 0 ? 0 : t > 3600 ? 3600000 : (int) (t * 1000.0 + 0.5);
    p[0].fd = kick_fd;
    p[0].events = POLLIN;
    p[0].revents = 0;
    if (fd >= 0) {
        p[1].fd = fd;
        p[1].events = POLLIN;
        p[1].revents = 0;
        n = 2;
    }
    do {
        rc = poll(p, (nfds_t) n, ms);
    } while (rc < 0 && errno == EINTR);
    if (atomic_load(&hub_stopping)) {
        lua_pushliteral(L, "stop");
    } else if (rc > 0 && n == 2 && p[1].revents != 0) {
        lua_pushliteral(L, "readable");
    } else if (rc > 0 && p[0].revents != 0) {
        uint64_t v;
        while (read(kick_fd, &v, sizeof(v)) < 0 && errno == EINTR) {
        }
        lua_pushliteral(L, "changes");
    } else {
        lua_pushliteral(L, "timeout");
    }
    return 1;
}


/* fanout.hub_stopping() -> true once wtt_fanout_stop was called */
static int
l_hub_stopping(lua_State *L)
{
    lua_pushboolean(L, atomic_load(&hub_stopping));
    return 1;
}


/* ---------------------------------------------------------------------------
 * Starting and stopping the hub
 * ------------------------------------------------------------------------- */

/*
 * fanout.start(script, arg) -> true | nil, err: runs the Lua file `script`
 * (the hub loop) with `arg` (a string: its `...`) on its own thread with
 * its own state, once per process; later calls answer true at once.
 */
static int
l_start(lua_State *L)
{
    const char *script = luaL_checkstring(L, 1);
    const char *arg = luaL_optstring(L, 2, "");
    char        err[256];
    int         ok = 1;

    pthread_mutex_lock(&hub_lock);
    if (!hub_started && !atomic_load(&hub_stopping)) {
        hub_thread = wtt_thread_start_file(script, arg, err, sizeof(err));
        ok = hub_thread != NULL;
        hub_started = ok;
    }
    pthread_mutex_unlock(&hub_lock);
    if (!ok) {
        lua_pushnil(L);
        lua_pushfstring(L, "fan-out hub: %s", err);
        return 2;
    }
    lua_pushboolean(L, 1);
    return 1;
}


int
wtt_fanout_stop(double timeout_s)
{
    struct wtt_thread *t;

    atomic_store(&hub_stopping, 1);
    kick();
    pthread_mutex_lock(&hub_lock);
    t = hub_thread;
    hub_thread = NULL;
    pthread_mutex_unlock(&hub_lock);
    return t != NULL ? wtt_thread_join(t, timeout_s) : 0;
}


/* fanout.stop(timeout) -> true | nil, "timeout" (tests; serve calls
 * wtt_fanout_stop) */
static int
l_stop(lua_State *L)
{
    if (wtt_fanout_stop(luaL_optnumber(L, 1, 10)) != 0) {
        lua_pushnil(L);
        lua_pushliteral(L, "timeout");
        return 2;
    }
    lua_pushboolean(L, 1);
    return 1;
}


/* fanout.stats() -> { clients, channels, subscribed, delivered, dropped,
 * hub } */
static int
l_stats(lua_State *L)
{
    int subscribed = 0;

    lua_createtable(L, 0, 6);
    pthread_mutex_lock(&hub_lock);
    for (int b = 0; b < BUCKETS; b++) {
        for (topic_t *t = topics[b]; t != NULL; t = t->next) {
            subscribed += t->active;
        }
    }
    lua_pushinteger(L, n_clients);
    lua_setfield(L, -2, "clients");
    lua_pushinteger(L, n_topics);
    lua_setfield(L, -2, "channels");
    lua_pushinteger(L, subscribed);
    lua_setfield(L, -2, "subscribed");
    lua_pushnumber(L, (lua_Number) n_delivered);
    lua_setfield(L, -2, "delivered");
    lua_pushnumber(L, (lua_Number) n_dropped);
    lua_setfield(L, -2, "dropped");
    lua_pushboolean(L, hub_started);
    lua_setfield(L, -2, "hub");
    pthread_mutex_unlock(&hub_lock);
    return 1;
}


int
luaopen_wtt_fanout(lua_State *L)
{
    static const luaL_Reg meta[] = {
        { "__gc", l_close },
        { NULL, NULL },
    };
    static const luaL_Reg methods[] = {
        { "take",    l_take },
        { "pending", l_pending },
        { "close",   l_close },
        { NULL, NULL },
    };
    static const luaL_Reg funcs[] = {
        { "open",          l_open },
        { "start",         l_start },
        { "stop",          l_stop },
        { "stats",         l_stats },
        { "hub_changes",   l_hub_changes },
        { "hub_confirmed", l_hub_confirmed },
        { "hub_deliver",   l_hub_deliver },
        { "hub_reset",     l_hub_reset },
        { "hub_wait",      l_hub_wait },
        { "hub_stopping",  l_hub_stopping },
        { NULL, NULL },
    };

    wtt_lua_class(L, CLIENT_MT, meta, methods);
    lua_newtable(L);
    luaL_register(L, NULL, funcs);
    return 1;
}
