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


static int
cuda_compute(struct wtt_node *n, const char **err)
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
    wtt_cuda_rt_ctx_fini(c);
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
    .run_begin    = NULL,       /* no recorded runs (CUDA graphs) yet */
    .run_end      = NULL,
    .compute      = cuda_compute,
    .sync         = cuda_sync,
};
