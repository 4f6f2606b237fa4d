/*
 * runtime.cpp: the host emulation of the CUDA backend's device runtime
 * (runtime.h). Device memory is host memory (256-byte aligned, as
 * cudaMalloc's), page-locked memory is plain host memory, a copy is a
 * memcpy done at once and a sync has nothing to wait for. Failures are
 * reported with the CUDA runtime's own status values (WTT_CUDA_RT_*), so
 * wtt_cuda_status maps them to the same kinds as on a device.
 */
#include "../ops.h"
#include "../runtime.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char faulted_msg[] = "cuda backend: the device faulted earlier";


int
wtt_cuda_status(struct wtt_cuda_ctx *c, int status, const char **err)
{
    switch (status) {
    case WTT_CUDA_RT_OK:
        return 0;
    case WTT_CUDA_RT_NOMEM:
        *err = "out of memory (emulated device)";
        return WTT_ENOMEM;
    case WTT_CUDA_RT_FAULT:
        *err = "an illegal memory access was encountered (emulated device)";
        if (c != NULL) {
            c->faulted = 1;
        }
        return WTT_EDEVICE;
    default:
        *err = "emulated device error";
        return WTT_EFAIL;
    }
}


/* One "device": the host. */
int
wtt_cuda_rt_device_count(void)
{
    return 1;
}


int
wtt_cuda_rt_device_info(int i, struct wtt_device_info *out,
                        const char **err)
{
    long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGESIZE);
    long avail = sysconf(_SC_AVPHYS_PAGES);

    (void) i;
    (void) err;
    memset(out, 0, sizeof(*out));
    snprintf(out->name, sizeof(out->name), "host emulation");
    out->mem_total = pages > 0 && size > 0 ? (size_t) pages * (size_t) size
                                           : 0;
    out->mem_free = avail > 0 && size > 0 ? (size_t) avail * (size_t) size
                                          : 0;
    return 0;
}


int
wtt_cuda_rt_ctx_init(struct wtt_cuda_ctx *c, const char **err)
{
    (void) c;
    (void) err;
    return 0;           /* no stream, no cuDNN handle */
}


void
wtt_cuda_rt_ctx_fini(struct wtt_cuda_ctx *c)
{
    wtt_cuda_rt_free(c, c->workspace);
    c->workspace = NULL;
    c->workspace_size = 0;
}


int
wtt_cuda_rt_bind(struct wtt_cuda_ctx *c, const char **err)
{
    if (c->faulted) {
        *err = faulted_msg;
        return WTT_EDEVICE;
    }
    return 0;
}


void *
wtt_cuda_rt_malloc(struct wtt_cuda_ctx *c, size_t bytes)
{
    void *p;

    if (c->faulted || posix_memalign(&p, 256, bytes ? bytes : 64) != 0) {
        return NULL;
    }
    c->epoch++;
    return p;
}


void
wtt_cuda_rt_free(struct wtt_cuda_ctx *c, void *p)
{
    if (p != NULL) {
        c->epoch++;
    }
    free(p);
}


/* A recorded run on the host: the nodes, recomputed in order. (Unlike a
 * CUDA capture, the nodes also ran while they were recorded; running them
 * again gives the same outputs.) */
struct emu_graph {
    int   (*compute)(struct wtt_node *n, const char **err);
    int     n;
    struct wtt_node *nodes[1];
};


int
wtt_cuda_rt_capture_begin(struct wtt_cuda_ctx *c, const char **err)
{
    (void) c;
    (void) err;
    return 0;
}


int
wtt_cuda_rt_capture_end(struct wtt_cuda_ctx *c,
                        int (*compute)(struct wtt_node *n, const char **err),
                        void **exec, const char **err)
{
    struct emu_graph *g = (struct emu_graph *) malloc(
        sizeof(*g) + sizeof(g->nodes[0]) * (size_t) (c->n_rec + 1));

    (void) err;
    *exec = NULL;
    if (g == NULL) {
        return 0;                   /* a failed capture: run eagerly */
    }
    g->compute = compute;
    g->n = c->n_rec;
    for (int i = 0; i < c->n_rec; i++) {
        g->nodes[i] = c->rec[i];
    }
    *exec = g;
    return 0;
}


int
wtt_cuda_rt_graph_launch(struct wtt_cuda_ctx *c, void *exec,
                         const char **err)
{
    struct emu_graph *g = (struct emu_graph *) exec;

    (void) c;
    for (int i = 0; i < g->n; i++) {
        int rc = g->compute(g->nodes[i], err);
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}


void
wtt_cuda_rt_graph_free(void *exec)
{
    free(exec);
}


void *
wtt_cuda_rt_host_alloc(size_t bytes)
{
    void *p;

    if (posix_memalign(&p, 64, bytes ? bytes : 64) != 0) {
        return NULL;
    }
    return p;
}


void
wtt_cuda_rt_host_free(void *p)
{
    free(p);
}


int
wtt_cuda_rt_copy(struct wtt_cuda_ctx *c, void *dst, const void *src,
                 size_t bytes, const char **err)
{
    if (c->faulted) {
        *err = faulted_msg;
        return WTT_EDEVICE;
    }
    memcpy(dst, src, bytes);
    return 0;
}


int
wtt_cuda_rt_sync(struct wtt_cuda_ctx *c, const char **err)
{
    if (c->faulted) {
        *err = faulted_msg;
        return WTT_EDEVICE;
    }
    return 0;           /* every kernel and copy ran when it was queued */
}
