/*
 * tensor.c: host tensor buffers, the CPU backend's memory (see ops.h).
 */
#include "ops.h"

#include <stdlib.h>
#include <string.h>


void *
wtt_cpu_buffer_alloc(size_t bytes)
{
    void *p;

    /* 64-byte alignment keeps vector loads on whole cache lines. */
    if (posix_memalign(&p, 64, bytes ? bytes : 64) != 0) {
        return NULL;
    }
    return p;
}


void
wtt_cpu_buffer_free(void *p)
{
    free(p);
}


int
wtt_tensor_alloc(struct wtt_tensor *t, int dtype, int rank, const int64_t *ne)
{
    int64_t n = 1;
    size_t  bytes;

    for (int i = 0; i < rank; i++) {
        if (ne[i] < 0) {
            return -1;
        }
        n *= ne[i];
    }
    bytes = (size_t) n * 4;
    if (t->cap < bytes || (t->cap == 0 && bytes == 0)) {
        void *p;
        if (t->cap == 0 || t->lent) {
            t->data = NULL;     /* a view or a lent slot: not ours to free */
        }
        p = wtt_cpu_buffer_alloc(bytes);
        if (p == NULL) {
            return -1;
        }
        wtt_cpu_buffer_free(t->cap ? t->data : NULL);
        t->data = p;
        t->cap = bytes ? bytes : 64;
        t->lent = 0;
    }
    t->dtype = dtype;
    t->rank = rank;
    memcpy(t->ne, ne, sizeof(int64_t) * (size_t) rank);
    return 0;
}


void
wtt_tensor_view(struct wtt_tensor *t, const struct wtt_tensor *src, int rank,
                const int64_t *ne)
{
    if (t->cap != 0 && !t->lent) {
        wtt_cpu_buffer_free(t->data);
    }
    t->cap = 0;
    t->lent = 0;
    t->data = src->data;
    t->dtype = src->dtype;
    t->rank = rank;
    memcpy(t->ne, ne, sizeof(int64_t) * (size_t) rank);
}


void
wtt_tensor_free(struct wtt_tensor *t)
{
    if (t->cap != 0 && !t->lent) {
        wtt_cpu_buffer_free(t->data);
    }
    t->data = NULL;
    t->cap = 0;
    t->lent = 0;
}
