/*
 * backend.c: the CPU backend's table (wtt_backend_cpu.h). Every op the
 * engine knows has an explicit home here, in the file of its family; an op
 * without one is not supported, and computing it is an error, never a
 * fall-through into some family's default.
 */
#include "ops.h"
#include "wtt_backend_cpu.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

typedef int (*kernel_fn)(struct wtt_node *n, const char **err);

/* Const and Placeholder have no entry: they are the planner's (weights and
 * the fed input), never computed. */
static const kernel_fn kernels[WTT_OP_COUNT] = {
    [WTT_OP_IDENTITY]      = wtt_cpu_op_view,
    [WTT_OP_SHAPE]         = wtt_cpu_op_view,
    [WTT_OP_RESHAPE]       = wtt_cpu_op_view,
    [WTT_OP_EXPAND_DIMS]   = wtt_cpu_op_view,
    [WTT_OP_SQUEEZE]       = wtt_cpu_op_view,
    [WTT_OP_STRIDED_SLICE] = wtt_cpu_op_layout,
    [WTT_OP_PACK]          = wtt_cpu_op_layout,
    [WTT_OP_CONCAT]        = wtt_cpu_op_layout,
    [WTT_OP_TRANSPOSE]     = wtt_cpu_op_layout,
    [WTT_OP_PAD]           = wtt_cpu_op_layout,
    [WTT_OP_MIRROR_PAD]    = wtt_cpu_op_layout,
    [WTT_OP_CONV2D]        = wtt_cpu_op_conv2d,
    [WTT_OP_ADD]           = wtt_cpu_op_eltwise,
    [WTT_OP_SUB]           = wtt_cpu_op_eltwise,
    [WTT_OP_MUL]           = wtt_cpu_op_eltwise,
    [WTT_OP_DIV_NO_NAN]    = wtt_cpu_op_eltwise,
    [WTT_OP_NEG]           = wtt_cpu_op_eltwise,
    [WTT_OP_SQUARE]        = wtt_cpu_op_eltwise,
    [WTT_OP_SQRT]          = wtt_cpu_op_eltwise,
    [WTT_OP_LOG]           = wtt_cpu_op_eltwise,
    [WTT_OP_SIGMOID]       = wtt_cpu_op_eltwise,
    [WTT_OP_SUM]           = wtt_cpu_op_reduce,
    [WTT_OP_MIN]           = wtt_cpu_op_reduce,
    [WTT_OP_MAX]           = wtt_cpu_op_reduce,
};


static kernel_fn
kernel_of(const struct wtt_node *n)
{
    if ((int) n->op < 0 || n->op >= WTT_OP_COUNT) {
        return NULL;
    }
    return kernels[n->op];
}


static int
cpu_supports_op(const struct wtt_node *n)
{
    return kernel_of(n) != NULL;
}


static int
cpu_compute(struct wtt_node *n, const char **err)
{
    kernel_fn k = kernel_of(n);

    if (k == NULL) {
        *err = "cpu backend: unsupported op";
        return -1;
    }
    return k(n, err);
}


/* Host memory both ways: a copy. */
static int
cpu_buffer_copy(void *ctx, void *dst, const void *src, size_t bytes,
                const char **err)
{
    memcpy(dst, src, bytes);
    return 0;
}


static int
cpu_sync(void *ctx, const char **err)
{
    return 0;       /* compute ran to the end: nothing is in flight */
}


static void *
cpu_buffer_alloc(void *ctx, size_t bytes)
{
    return wtt_cpu_buffer_alloc(bytes);
}


static void
cpu_buffer_free(void *ctx, void *p)
{
    wtt_cpu_buffer_free(p);
}


/* The host is one device; its "name" says what kind of CPU runs it. */
static int
cpu_device_count(void)
{
    return 1;
}


static int
cpu_device_info(int i, struct wtt_device_info *out, const char **err)
{
    long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGESIZE);
    long avail = sysconf(_SC_AVPHYS_PAGES);

    if (i != 0) {
        *err = "cpu backend: no such device";
        return WTT_EFAIL;
    }
    memset(out, 0, sizeof(*out));
    snprintf(out->name, sizeof(out->name), "%ld cores",
             sysconf(_SC_NPROCESSORS_ONLN));
    out->mem_total = pages > 0 && size > 0 ? (size_t) pages * (size_t) size
                                           : 0;
    out->mem_free = avail > 0 && size > 0 ? (size_t) avail * (size_t) size
                                          : 0;
    return 0;
}


static int
cpu_ctx_new(int device, void **ctx, const char **err)
{
    *ctx = NULL;
    if (device != 0) {
        *err = "cpu backend: no such device";
        return WTT_EFAIL;
    }
    return 0;
}


static void
cpu_ctx_free(void *ctx)
{
}


const struct wtt_backend wtt_backend_cpu = {
    .name         = "cpu",
    .device_count = cpu_device_count,
    .device_info  = cpu_device_info,
    .ctx_new      = cpu_ctx_new,
    .ctx_free     = cpu_ctx_free,
    .supports_op  = cpu_supports_op,
    .buffer_alloc = cpu_buffer_alloc,
    .buffer_free  = cpu_buffer_free,
    .buffer_set   = cpu_buffer_copy,
    .buffer_get   = cpu_buffer_copy,
    .host_alloc   = wtt_cpu_buffer_alloc,
    .host_free    = wtt_cpu_buffer_free,
    .compute      = cpu_compute,
    .sync         = cpu_sync,
};
