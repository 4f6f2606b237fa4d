/*
 * ops.h: the CUDA backend's op families, one file each (kernels/cuda/
 * <family>.cu), private to kernels/cuda/, mirroring kernels/cpu/ops.h.
 * Each entry queues the ops of its family on the node's context stream
 * (n->ctx, a struct wtt_cuda_ctx) and refuses any other op; backend.cu
 * maps every op to its family. Each returns 0 or a negative kind from
 * wtt_backend.h with a static reason in *err.
 */
#ifndef WTT_CUDA_OPS_H
#define WTT_CUDA_OPS_H

#include "ctx.h"
#include "wtt_backend.h"
#include "wtt_tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Makes `t` a tensor of `dtype` and shape `ne[rank]` in context `c`'s
 * memory, reusing its buffer when large enough (buffers are allocated once
 * per batch size). Float tensors live on the device; int32 tensors (shape
 * arithmetic, read by the host to shape later nodes) live in page-locked
 * host memory. Returns 0, or WTT_ENOMEM / WTT_EDEVICE with *err set
 * (tensor.cu).
 */
int wtt_cuda_tensor_alloc(struct wtt_cuda_ctx *c, struct wtt_tensor *t,
                          int dtype, int rank, const int64_t *ne,
                          const char **err);

/* Releases a buffer of context `c`, device memory or the page-locked host
 * memory of an int32 tensor alike (the backend's buffer_free; tensor.cu). */
void wtt_cuda_buffer_free(struct wtt_cuda_ctx *c, void *p);

/* Makes `t` a view of `src`'s data with another shape (no copy). */
void wtt_cuda_tensor_view(struct wtt_cuda_ctx *c, struct wtt_tensor *t,
                          const struct wtt_tensor *src, int rank,
                          const int64_t *ne);

/*
 * The kind of a CUDA runtime status (a cudaError_t as int): 0 for success,
 * WTT_ENOMEM for an allocation failure, WTT_EDEVICE for a sticky error
 * (lost device, kernel fault: c->faulted is set and every later call fails
 * at once), WTT_EFAIL otherwise; *err gets the runtime's own message
 * (static). The host emulation maps its own failures the same way.
 */
int wtt_cuda_status(struct wtt_cuda_ctx *c, int status, const char **err);

/* Conv2D, _FusedConv2D: cuDNN, algorithm chosen once per shape
 * (conv.cu); the host emulation runs the CPU's convolution (emu/). */
int wtt_cuda_op_conv2d(struct wtt_node *n, const char **err);

/* Add, Sub, Mul, DivNoNan, Neg, Square, Sqrt, Log, Sigmoid (eltwise.cu). */
int wtt_cuda_op_eltwise(struct wtt_node *n, const char **err);

/* Sum, Min, Max (reduce.cu). */
int wtt_cuda_op_reduce(struct wtt_node *n, const char **err);

/* Identity, Shape, Reshape, ExpandDims, Squeeze: no copy (view.cu). */
int wtt_cuda_op_view(struct wtt_node *n, const char **err);

/* Transpose, Pad, MirrorPad, StridedSlice, Pack, ConcatV2 (layout.cu). */
int wtt_cuda_op_layout(struct wtt_node *n, const char **err);

#ifdef __cplusplus
}
#endif

#endif
