/*
 * backend.c: the CPU backend's table (wtt_backend_cpu.h). Every op the
 * engine knows has an explicit home here, in the file of its family; an op
 * without one is not supported, and computing it is an error, never a
 * fall-through into some family's default.
 */
#include "ops.h"
#include "wtt_backend_cpu.h"

#include <stddef.h>
#include <string.h>

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
cpu_buffer_copy(void *dst, const void *src, size_t bytes, const char **err)
{
    memcpy(dst, src, bytes);
    return 0;
}


static int
cpu_sync(const char **err)
{
    return 0;       /* compute ran to the end: nothing is in flight */
}


const struct wtt_backend wtt_backend_cpu = {
    .name         = "cpu",
    .supports_op  = cpu_supports_op,
    .buffer_alloc = wtt_cpu_buffer_alloc,
    .buffer_free  = wtt_cpu_buffer_free,
    .buffer_set   = cpu_buffer_copy,
    .buffer_get   = cpu_buffer_copy,
    .compute      = cpu_compute,
    .sync         = cpu_sync,
};
