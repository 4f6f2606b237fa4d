/*
 * ops.h: the CPU backend's op families, one file each (kernels/cpu/
 * <family>.c), private to kernels/cpu/. Each entry runs the ops of its
 * family and refuses any other op; backend.c maps every op to its family.
 * Each returns 0, or -1 with a static reason in *err.
 */
#ifndef WTT_CPU_OPS_H
#define WTT_CPU_OPS_H

#include "wtt_backend.h"
#include "wtt_tensor.h"

/* Host memory for tensor data, 64-byte aligned so vector loads stay on
 * whole cache lines (tensor.c); the CPU backend's buffer_alloc/free. */
void *wtt_cpu_buffer_alloc(size_t bytes);
void wtt_cpu_buffer_free(void *p);

/*
 * Makes `t` a tensor of `dtype` and shape `ne[rank]`, reusing its buffer
 * when large enough (buffers are allocated once per batch size and reused
 * by every later run). Returns 0, or -1 when memory runs out.
 */
int wtt_tensor_alloc(struct wtt_tensor *t, int dtype, int rank,
                     const int64_t *ne);

/* Makes `t` a view of `src`'s data with another shape (no copy). */
void wtt_tensor_view(struct wtt_tensor *t, const struct wtt_tensor *src,
                     int rank, const int64_t *ne);

void wtt_tensor_free(struct wtt_tensor *t);


/* Conv2D, _FusedConv2D (conv.c). */
int wtt_cpu_op_conv2d(struct wtt_node *n, const char **err);

/* 0: the convolution uses only the tiles a CPU without AVX-512 runs (the
 * generic ones, in their AVX2 or plain clone), so that a test on an
 * AVX-512 machine checks those too; 1 (the default): the best tiles. */
void wtt_cpu_conv_allow_avx512(int on);

/* The level-2 cache size, in bytes, that the convolution's column blocks
 * are sized from; 0 (the default): this CPU's, detected at the first
 * call. Tests set a small one to run the blocked loops. */
void wtt_cpu_conv_set_l2(size_t bytes);

/* Add, Sub, Mul, DivNoNan, Neg, Square, Sqrt, Log, Sigmoid (eltwise.c). */
int wtt_cpu_op_eltwise(struct wtt_node *n, const char **err);

/* Sum, Min, Max (reduce.c). */
int wtt_cpu_op_reduce(struct wtt_node *n, const char **err);

/* Identity, Shape, Reshape, ExpandDims, Squeeze: no copy (view.c). */
int wtt_cpu_op_view(struct wtt_node *n, const char **err);

/* Transpose, Pad, MirrorPad, StridedSlice, Pack, ConcatV2 (layout.c). */
int wtt_cpu_op_layout(struct wtt_node *n, const char **err);

#endif
