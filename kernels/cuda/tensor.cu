/*
 * tensor.cu: the CUDA backend's tensor memory (see ops.h). Float tensors
 * live on the device; int32 tensors are shape arithmetic that the host
 * reads to shape later nodes (Reshape's target, StridedSlice of a Shape),
 * so they live in page-locked host memory, which the host reads at once
 * and the device can still reach. The context keeps a list of those host
 * buffers, so buffer_free, which is handed both kinds, frees each with its
 * own call.
 */
#include "ops.h"
#include "runtime.h"

#include <stdlib.h>
#include <string.h>


/* Records host buffer p in c's list. Returns 0, or -1 out of memory. */
static int
track_host(struct wtt_cuda_ctx *c, void *p)
{
    if (c->n_host_bufs == c->cap_host_bufs) {
        int    cap = c->cap_host_bufs ? 2 * c->cap_host_bufs : 16;
        void **bufs = (void **) realloc(c->host_bufs,
                                        sizeof(void *) * (size_t) cap);
        if (bufs == NULL) {
            return -1;
        }
        c->host_bufs = bufs;
        c->cap_host_bufs = cap;
    }
    c->host_bufs[c->n_host_bufs++] = p;
    return 0;
}


/* Drops p from c's host list; returns 1 when it was there. */
static int
untrack_host(struct wtt_cuda_ctx *c, void *p)
{
    for (int i = 0; i < c->n_host_bufs; i++) {
        if (c->host_bufs[i] == p) {
            c->host_bufs[i] = c->host_bufs[--c->n_host_bufs];
            return 1;
        }
    }
    return 0;
}


void
wtt_cuda_buffer_free(struct wtt_cuda_ctx *c, void *p)
{
    if (p == NULL) {
        return;
    }
    if (untrack_host(c, p)) {
        wtt_cuda_rt_host_free(p);
    } else {
        wtt_cuda_rt_free(c, p);
    }
}


int
wtt_cuda_tensor_alloc(struct wtt_cuda_ctx *c, struct wtt_tensor *t,
                      int dtype, int rank, const int64_t *ne,
                      const char **err)
{
    int     host = dtype == WTT_I32;
    int64_t n = 1;
    size_t  bytes;

    if (c->faulted) {
        *err = "cuda backend: the device faulted earlier";
        return WTT_EDEVICE;
    }
    for (int i = 0; i < rank; i++) {
        if (ne[i] < 0) {
            *err = "cuda backend: negative dimension";
            return WTT_EFAIL;
        }
        n *= ne[i];
    }
    bytes = (size_t) n * 4;
    /* A buffer of the other kind is no use, whatever its size. */
    if (t->cap != 0 && (t->dtype == WTT_I32) != host) {
        wtt_cuda_buffer_free(c, t->data);
        t->data = NULL;
        t->cap = 0;
    }
    if (t->cap < bytes || t->cap == 0) {
        size_t want = bytes ? bytes : 64;
        void  *p;

        if (t->cap == 0) {
            t->data = NULL;     /* was a view: never free someone's data */
        }
        p = host ? wtt_cuda_rt_host_alloc(want) : wtt_cuda_rt_malloc(c, want);
        if (p == NULL) {
            *err = c->faulted ? "cuda backend: the device faulted"
                 : host ? "cuda backend: out of page-locked host memory"
                 : "cuda backend: out of device memory";
            return c->faulted ? WTT_EDEVICE : WTT_ENOMEM;
        }
        if (host && track_host(c, p) != 0) {
            wtt_cuda_rt_host_free(p);
            *err = "cuda backend: out of host memory";
            return WTT_ENOMEM;
        }
        if (t->cap != 0) {
            wtt_cuda_buffer_free(c, t->data);
        }
        t->data = p;
        t->cap = want;
    }
    t->dtype = dtype;
    t->rank = rank;
    memcpy(t->ne, ne, sizeof(int64_t) * (size_t) rank);
    return 0;
}


void
wtt_cuda_tensor_view(struct wtt_cuda_ctx *c, struct wtt_tensor *t,
                     const struct wtt_tensor *src, int rank,
                     const int64_t *ne)
{
    if (t->cap != 0) {
        wtt_cuda_buffer_free(c, t->data);
    }
    t->cap = 0;
    t->data = src->data;
    t->dtype = src->dtype;
    t->rank = rank;
    memcpy(t->ne, ne, sizeof(int64_t) * (size_t) rank);
}
