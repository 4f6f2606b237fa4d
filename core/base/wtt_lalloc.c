/*
 * wtt_lalloc.c: the Lua states' allocator for large blocks (see
 * wtt_lalloc.h).
 */
#include "wtt_lalloc.h"
#include "wtt_heap.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define HUGE_PAGE   ((size_t) 2 << 20)
#define KEPT_SLOTS  8

struct lalloc {
    lua_Alloc inner;
    void     *inner_ud;
    struct {
        void  *p;
        size_t len;
    }         kept[KEPT_SLOTS];
    size_t    kept_bytes;
    int       closing;     /* lua_close is freeing everything: keep none */
    /* Bytes the state holds. Written by the state's thread alone (a plain
     * load and store, no read-modify-write on a shared line), read by the
     * metrics collector through the list below. */
    _Atomic long long bytes;
    struct lalloc    *prev, *next;
};

/* Every wrapper, so the process's Lua memory is their sum. */
static pthread_mutex_t all_lock = PTHREAD_MUTEX_INITIALIZER;
static struct lalloc  *all;


static void
account(struct lalloc *a, long long delta)
{
    long long v = atomic_load_explicit(&a->bytes, memory_order_relaxed);
    atomic_store_explicit(&a->bytes, v + delta, memory_order_relaxed);
}


static size_t
map_len(size_t size)
{
    return (size + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1);
}


/* A fresh mapping of `len` bytes (a multiple of HUGE_PAGE) aligned to
 * HUGE_PAGE, so the kernel can back it with huge pages, or NULL. */
static void *
map_new(size_t len)
{
    size_t   over = len + HUGE_PAGE;
    uint8_t *p = mmap(NULL, over, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    size_t   head;

    if (p == MAP_FAILED) {
        return NULL;
    }
    head = (HUGE_PAGE - ((uintptr_t) p & (HUGE_PAGE - 1))) & (HUGE_PAGE - 1);
    if (head > 0) {
        munmap(p, head);
    }
    if (over - head > len) {
        munmap(p + head + len, over - head - len);
    }
    /* Advice only: without THP the mapping still works, page by page. */
    (void) madvise(p + head, len, MADV_HUGEPAGE);
    return p + head;
}


/* The smallest kept mapping of at least `len` bytes (and at most twice
 * that, so a small block does not pin a large one), taken out of the
 * cache; else a fresh one. */
static void *
map_get(struct lalloc *a, size_t len)
{
    int best = -1;

    for (int i = 0; i < KEPT_SLOTS; i++) {
        size_t l = a->kept[i].len;
        if (a->kept[i].p != NULL && l >= len && l <= 2 * len
            && (best < 0 || l < a->kept[best].len))
        {
            best = i;
        }
    }
    if (best >= 0) {
        void *p = a->kept[best].p;
        a->kept_bytes -= a->kept[best].len;
        a->kept[best].p = NULL;
        a->kept[best].len = 0;
        return p;
    }
    return map_new(len);
}


/* Keeps a freed mapping for reuse while there is room, giving back the
 * smallest kept ones to make it; else unmaps it. */
static void
map_put(struct lalloc *a, void *p, size_t len)
{
    if (a->closing || len > WTT_LALLOC_KEEP) {
        munmap(p, len);
        return;
    }
    for (;;) {
        int slot = -1, small = -1;
        for (int i = 0; i < KEPT_SLOTS; i++) {
            if (a->kept[i].p == NULL) {
                slot = i;
            } else if (small < 0 || a->kept[i].len < a->kept[small].len) {
                small = i;
            }
        }
        if (slot >= 0 && a->kept_bytes + len <= WTT_LALLOC_KEEP) {
            a->kept[slot].p = p;
            a->kept[slot].len = len;
            a->kept_bytes += len;
            return;
        }
        /* Every slot full, or no room: some mapping is kept (len fits
         * WTT_LALLOC_KEEP alone), so `small` names one. */
        munmap(a->kept[small].p, a->kept[small].len);
        a->kept_bytes -= a->kept[small].len;
        a->kept[small].p = NULL;
        a->kept[small].len = 0;
    }
}


/* lua_Alloc. LuaJIT always passes a block's true old size, which says
 * which allocator owns it. */
static void *
alloc_block(struct lalloc *a, void *ptr, size_t osize, size_t nsize)
{
    int            was_big = ptr != NULL && osize >= WTT_LALLOC_BIG;
    int            big = nsize >= WTT_LALLOC_BIG;
    void          *p;

    if (!was_big && !big) {
        return a->inner(a->inner_ud, ptr, osize, nsize);
    }
    if (nsize == 0) {
        map_put(a, ptr, map_len(osize));
        return NULL;
    }
    if (was_big && big && map_len(osize) == map_len(nsize)) {
        return ptr;
    }
    p = big ? map_get(a, map_len(nsize))
            : a->inner(a->inner_ud, NULL, 0, nsize);
    if (p == NULL) {
        return NULL;     /* LuaJIT keeps the old block on failure */
    }
    if (ptr != NULL) {
        memcpy(p, ptr, osize < nsize ? osize : nsize);
        if (was_big) {
            map_put(a, ptr, map_len(osize));
        } else {
            a->inner(a->inner_ud, ptr, osize, 0);
        }
    }
    return p;
}


static void *
lalloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    struct lalloc *a = ud;
    size_t         old = ptr != NULL ? osize : 0;
    void          *p = alloc_block(a, ptr, osize, nsize);

    if (p != NULL || nsize == 0) {
        account(a, (long long) nsize - (long long) old);
    }
    return p;
}


/* The small blocks' allocator: the C library's. Not LuaJIT's own: LuaJIT
 * destroys its allocator's arena at lua_close only while that allocator is
 * the state's, so behind a wrapper every segment it still held would stay
 * mapped after the state closed (2-3 MB a state; a server building a state
 * per thread on every reload grew by that each time). */
static void *
system_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    (void) ud;
    (void) osize;
    if (nsize == 0) {
        free(ptr);
        return NULL;
    }
    return realloc(ptr, nsize);
}


lua_State *
wtt_lalloc_newstate(void)
{
    struct lalloc *a = calloc(1, sizeof(*a));
    lua_State     *L;

    if (a == NULL) {
        return NULL;
    }
    a->inner = system_alloc;
    L = lua_newstate(lalloc, a);
    if (L == NULL) {
        free(a);
        return NULL;
    }
    pthread_mutex_lock(&all_lock);
    a->next = all;
    if (all != NULL) {
        all->prev = a;
    }
    all = a;
    pthread_mutex_unlock(&all_lock);
    return L;
}


long long
wtt_lalloc_total_bytes(void)
{
    long long sum = 0;

    pthread_mutex_lock(&all_lock);
    for (struct lalloc *a = all; a != NULL; a = a->next) {
        sum += atomic_load_explicit(&a->bytes, memory_order_relaxed);
    }
    pthread_mutex_unlock(&all_lock);
    return sum;
}


void
wtt_lalloc_close(lua_State *L)
{
    void          *ud;
    struct lalloc *a = NULL;

    if (lua_getallocf(L, &ud) == lalloc) {
        a = ud;
        a->closing = 1;
    }
    lua_close(L);
    if (a == NULL) {
        return;
    }
    pthread_mutex_lock(&all_lock);
    if (a->prev != NULL) {
        a->prev->next = a->next;
    } else {
        all = a->next;
    }
    if (a->next != NULL) {
        a->next->prev = a->prev;
    }
    pthread_mutex_unlock(&all_lock);
    for (int i = 0; i < KEPT_SLOTS; i++) {
        if (a->kept[i].p != NULL) {
            munmap(a->kept[i].p, a->kept[i].len);
        }
    }
    free(a);
    /* The state's small blocks went back to malloc's arenas, where they
     * lie between blocks that live on, and a freed page in the middle of an
     * arena stays resident: a server that replaces its states on every
     * reload grew by their high-water marks (the soak, docs/reliability.md
     * section 10). States close rarely (a reload, a thread's end), so the
     * walk over the arenas is cheap where it happens. wtt_heap_trim does
     * nothing under ASan, whose allocator replaces malloc's. */
    (void) wtt_heap_trim();
}


size_t
wtt_lalloc_kept(lua_State *L)
{
    void *ud;

    if (lua_getallocf(L, &ud) != lalloc) {
        return 0;
    }
    return ((struct lalloc *) ud)->kept_bytes;
}
