/*
 * backend.cu: the CUDA backend's table (wtt_backend_cuda.h). Every op the
 * engine knows has an explicit home here, in the file of its family, as in
 * kernels/cpu/backend.c; an op without one is not supported, and computing
 * it is an error. The device itself is reached only through runtime.h, so
 * this file builds both as the device backend ("cuda", nvcc) and as its
 * host emulation ("cuda-emu", emu/backend.cpp).
 *
 * Faults: once a sticky device error is seen (wtt_cuda_status sets
 * c->faulted), every entry that takes the context fails at once with
 * WTT_EDEVICE instead of queueing more work on a dead device.
 */
#include "ops.h"
#include "runtime.h"
#include "wtt_backend_cuda.h"

#include <stdlib.h>
#include <string.h>

#ifdef WTT_CUDA_DEVICE
#define TABLE      wtt_backend_cuda
#define TABLE_NAME "cuda"
#else
#define TABLE      wtt_backend_cuda_emu
#define TABLE_NAME "cuda-emu"
#endif

typedef int (*kernel_fn)(struct wtt_node *n, const char **err);

static const char faulted_msg[] = "cuda backend: the device faulted earlier";


/* Const and Placeholder have no entry: they are the planner's (weights and
 * the fed input), never computed. (A switch: C++ has no designated array
 * initializers.) */
static kernel_fn
kernel_of(const struct wtt_node *n)
{
    switch (n->op) {
    case WTT_OP_IDENTITY:
    case WTT_OP_SHAPE:
    case WTT_OP_RESHAPE:
    case WTT_OP_EXPAND_DIMS:
    case WTT_OP_SQUEEZE:
        return wtt_cuda_op_view;
    case WTT_OP_STRIDED_SLICE:
    case WTT_OP_PACK:
    case WTT_OP_CONCAT:
    case WTT_OP_TRANSPOSE:
    case WTT_OP_PAD:
    case WTT_OP_MIRROR_PAD:
        return wtt_cuda_op_layout;
    case WTT_OP_CONV2D:
        return wtt_cuda_op_conv2d;
    case WTT_OP_ADD:
    case WTT_OP_SUB:
    case WTT_OP_MUL:
    case WTT_OP_DIV_NO_NAN:
    case WTT_OP_NEG:
    case WTT_OP_SQUARE:
    case WTT_OP_SQRT:
    case WTT_OP_LOG:
    case WTT_OP_SIGMOID:
        return wtt_cuda_op_eltwise;
    case WTT_OP_SUM:
    case WTT_OP_MIN:
    case WTT_OP_MAX:
        return wtt_cuda_op_reduce;
    default:
        return NULL;
    }
}


static int
cuda_supports_op(const struct wtt_node *n)
{
    return kernel_of(n) != NULL;
}


/* Runs one node now (or, while its stream records, into the recording). */
static int
compute_now(struct wtt_node *n, const char **err)
{
    struct wtt_cuda_ctx *c = (struct wtt_cuda_ctx *) n->ctx;
    kernel_fn            k = kernel_of(n);
    int                  rc;

    if (k == NULL) {
        *err = "cuda backend: unsupported op";
        return WTT_EFAIL;
    }
    if (c == NULL) {
        *err = "cuda backend: node has no context";
        return WTT_EFAIL;
    }
    if (c->faulted) {
        *err = faulted_msg;
        return WTT_EDEVICE;
    }
    rc = wtt_cuda_rt_bind(c, err);
    return rc != 0 ? rc : k(n, err);
}


/* ---------------------------------------------------------------------------
 * Recorded runs (CUDA graphs)
 *
 * A run of a few hundred small kernels spends more time in launches than
 * on the device for short clips; replaying a recorded run is one launch.
 * For each batch size: the first run goes eagerly (it allocates buffers and
 * lets cuDNN find its algorithms, neither of which may happen while a
 * stream records), the second is recorded and launched, later ones replay
 * it. Every device allocation or free bumps the context's epoch: a
 * recording made under another epoch may hold stale pointers and is
 * dropped. A capture that fails turns recording off for the context and
 * runs the nodes eagerly, so it costs time, never a result.
 * WTT_CUDA_GRAPHS=0 turns recording off.
 * ------------------------------------------------------------------------- */

enum { MODE_EAGER = 0, MODE_CAPTURE, MODE_REPLAY };

static long graph_replays;      /* process-wide, for tests and metrics */


long
wtt_backend_cuda_graph_replays(void)
{
    return __atomic_load_n(&graph_replays, __ATOMIC_RELAXED);
}


static int
graphs_wanted(void)
{
    const char *v = getenv("WTT_CUDA_GRAPHS");

    return v == NULL || strcmp(v, "0") != 0;
}


static int
record_node(struct wtt_cuda_ctx *c, struct wtt_node *n)
{
    if (c->n_rec == c->cap_rec) {
        int               cap = c->cap_rec ? 2 * c->cap_rec : 256;
        struct wtt_node **r = (struct wtt_node **) realloc(
            c->rec, sizeof(*r) * (size_t) cap);
        if (r == NULL) {
            return -1;
        }
        c->rec = r;
        c->cap_rec = cap;
    }
    c->rec[c->n_rec++] = n;
    return 0;
}


/* Leaves capture mode without a recording and runs what was recorded so
 * far eagerly; recording stays off for this context. */
static int
abandon_capture(struct wtt_cuda_ctx *c, const char **err)
{
    void *exec = NULL;
    int   rc;

    c->mode = MODE_EAGER;
    c->graphs_off = 1;
    rc = wtt_cuda_rt_capture_end(c, compute_now, &exec, err);
    wtt_cuda_rt_graph_free(exec);
    for (int i = 0; rc == 0 && i < c->n_rec; i++) {
        rc = compute_now(c->rec[i], err);
    }
    c->n_rec = 0;
    return rc;
}


static int
cuda_compute(struct wtt_node *n, const char **err)
{
    struct wtt_cuda_ctx *c = (struct wtt_cuda_ctx *) n->ctx;
    int                  rc;

    if (c == NULL || c->mode != MODE_CAPTURE) {
        return compute_now(n, err);
    }
    if (record_node(c, n) != 0) {
        *err = "cuda backend: out of host memory";
        return abandon_capture(c, err) != 0 ? WTT_ENOMEM
                                            : compute_now(n, err);
    }
    rc = compute_now(n, err);
    if (rc != 0 && !c->faulted) {
        /* Not capturable (or failed while recording): go eagerly. */
        return abandon_capture(c, err);
    }
    return rc;
}


static void
drop_graph(struct wtt_cuda_ctx *c, int i)
{
    wtt_cuda_rt_graph_free(c->graphs[i].exec);
    c->graphs[i] = c->graphs[--c->n_graphs];
}


static int
cuda_run_begin(void *ctx, int items, int *replay, const char **err)
{
    struct wtt_cuda_ctx *c = (struct wtt_cuda_ctx *) ctx;

    *replay = 0;
    c->mode = MODE_EAGER;
    if (c->faulted) {
        *err = faulted_msg;
        return WTT_EDEVICE;
    }
    /* The planner synced the run that launched it. */
    wtt_cuda_rt_graph_free(c->retired);
    c->retired = NULL;
    if (c->graphs_off) {
        return 0;
    }
    for (int i = 0; i < c->n_graphs; i++) {
        if (c->graphs[i].items != items) {
            continue;
        }
        if (c->graphs[i].epoch == c->epoch) {
            c->mode = MODE_REPLAY;
            c->cur = i;
            *replay = 1;
            return 0;
        }
        drop_graph(c, i);
        break;
    }
    if (c->eager_items == items && c->eager_epoch == c->epoch
        && c->n_graphs < WTT_CUDA_MAX_GRAPHS)
    {
        if (wtt_cuda_rt_capture_begin(c, err) != 0) {
            if (c->faulted) {
                return WTT_EDEVICE;
            }
            c->graphs_off = 1;
            return 0;
        }
        c->mode = MODE_CAPTURE;
        c->n_rec = 0;
        c->capture_epoch = c->epoch;
    }
    return 0;
}


static int
cuda_run_end(void *ctx, int items, const char **err)
{
    struct wtt_cuda_ctx *c = (struct wtt_cuda_ctx *) ctx;
    void                *exec = NULL;
    int                  rc, mode = c->mode;

    c->mode = MODE_EAGER;
    if (mode == MODE_REPLAY) {
        __atomic_add_fetch(&graph_replays, 1, __ATOMIC_RELAXED);
        return wtt_cuda_rt_graph_launch(c, c->graphs[c->cur].exec, err);
    }
    if (mode == MODE_EAGER) {
        c->eager_items = items;
        c->eager_epoch = c->epoch;
        return 0;
    }
    rc = wtt_cuda_rt_capture_end(c, compute_now, &exec, err);
    if (rc != 0) {
        return rc;                              /* the device faulted */
    }
    if (exec == NULL) {
        c->mode = MODE_CAPTURE;                 /* nothing ran: run it */
        return abandon_capture(c, err);
    }
    /* Recording ran nothing: this run's work is the first launch. */
    rc = wtt_cuda_rt_graph_launch(c, exec, err);
    if (c->epoch == c->capture_epoch) {
        c->graphs[c->n_graphs].items = items;
        c->graphs[c->n_graphs].epoch = c->epoch;
        c->graphs[c->n_graphs].exec = exec;
        c->n_graphs++;
    } else {
        c->retired = exec;          /* buffers moved while it recorded */
    }
    return rc;
}


static int
cuda_device_count(void)
{
    return wtt_cuda_rt_device_count();
}


static int
cuda_device_info(int i, struct wtt_device_info *out, const char **err)
{
    if (i < 0 || i >= wtt_cuda_rt_device_count()) {
        *err = "cuda backend: no such device";
        return WTT_EFAIL;
    }
    return wtt_cuda_rt_device_info(i, out, err);
}


static int
cuda_ctx_new(int device, void **ctx, const char **err)
{
    struct wtt_cuda_ctx *c;
    int                  rc;

    *ctx = NULL;
    if (device < 0 || device >= wtt_cuda_rt_device_count()) {
        *err = "cuda backend: no such device";
        return WTT_EFAIL;
    }
    c = (struct wtt_cuda_ctx *) calloc(1, sizeof(*c));
    if (c == NULL) {
        *err = "cuda backend: out of host memory";
        return WTT_ENOMEM;
    }
    c->device = device;
    c->graphs_off = !graphs_wanted();
    c->eager_items = -1;
    rc = wtt_cuda_rt_ctx_init(c, err);
    if (rc != 0) {
        free(c);
        return rc;
    }
    *ctx = c;
    return 0;
}


static void
cuda_ctx_free(void *ctx)
{
    struct wtt_cuda_ctx *c = (struct wtt_cuda_ctx *) ctx;

    if (c == NULL) {
        return;
    }
    /* The planner frees every tensor first; whatever is left is freed
     * here so a context never leaks its host buffers. */
    while (c->n_host_bufs > 0) {
        wtt_cuda_buffer_free(c, c->host_bufs[0]);
    }
    wtt_cuda_rt_ctx_fini(c);            /* waits for the stream first */
    while (c->n_graphs > 0) {
        drop_graph(c, 0);
    }
    wtt_cuda_rt_graph_free(c->retired);
    free(c->rec);
    free(c->host_bufs);
    free(c);
}


static void *
cuda_buffer_alloc(void *ctx, size_t bytes)
{
    return wtt_cuda_rt_malloc((struct wtt_cuda_ctx *) ctx,
                              bytes ? bytes : 64);
}


static void
cuda_buffer_free(void *ctx, void *p)
{
    wtt_cuda_buffer_free((struct wtt_cuda_ctx *) ctx, p);
}


/* Copies queue on the context's stream: host memory from host_alloc is
 * page-locked, so they really are asynchronous, and the planner's one sync
 * per batch waits for them with the kernels. */
static int
cuda_buffer_copy(void *ctx, void *dst, const void *src, size_t bytes,
                 const char **err)
{
    struct wtt_cuda_ctx *c = (struct wtt_cuda_ctx *) ctx;

    if (c->faulted) {
        *err = faulted_msg;
        return WTT_EDEVICE;
    }
    return wtt_cuda_rt_copy(c, dst, src, bytes, err);
}


static int
cuda_sync(void *ctx, const char **err)
{
    struct wtt_cuda_ctx *c = (struct wtt_cuda_ctx *) ctx;

    if (c->faulted) {
        *err = faulted_msg;
        return WTT_EDEVICE;
    }
    return wtt_cuda_rt_sync(c, err);
}


/* Declared extern "C" in wtt_backend_cuda.h, so it links under its C name.
 * C++20 designated initializers, in the order of struct wtt_backend. */
const struct wtt_backend TABLE = {
    .name         = TABLE_NAME,
    .device_count = cuda_device_count,
    .device_info  = cuda_device_info,
    .ctx_new      = cuda_ctx_new,
    .ctx_free     = cuda_ctx_free,
    .supports_op  = cuda_supports_op,
    .buffer_alloc = cuda_buffer_alloc,
    .buffer_free  = cuda_buffer_free,
    .buffer_set   = cuda_buffer_copy,
    .buffer_get   = cuda_buffer_copy,
    .host_alloc   = wtt_cuda_rt_host_alloc,
    .host_free    = wtt_cuda_rt_host_free,
    .run_begin    = cuda_run_begin,
    .run_end      = cuda_run_end,
    .compute      = cuda_compute,
    .sync         = cuda_sync,
};
