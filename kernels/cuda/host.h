/*
 * host.h: what the CUDA op families do on the host, private to
 * kernels/cuda/ (header-only: every op-family file includes it, in the
 * device build and in the host emulation alike).
 *
 * int32 tensors are shape arithmetic: the host reads them to shape later
 * nodes, so the backend keeps the ones it makes in page-locked host memory
 * (wtt_cuda_tensor_alloc) and computes int32 ops on the host, with the same
 * functor bodies the device runs, one element after another. Integer
 * parameters (axes, permutations, paddings, slice bounds) are read on the
 * host too. One kind of int32 tensor may still sit in device memory: a
 * constant the planner staged there with buffer_alloc, which cannot tell
 * int32 from float. wtt_cuda_host_data copies such a tensor back (a few
 * bytes, but a wait on the stream), so the result is right wherever the
 * constant lives.
 */
#ifndef WTT_CUDA_HOST_H
#define WTT_CUDA_HOST_H

#include <stdint.h>
#include <string.h>

#include "launch.h"
#include "ops.h"
#include "runtime.h"
#include "wtt_shape.h"

/* Elements of one int32 operand the host copies back from the device: a
 * shape or a parameter list, never data. */
#define WTT_CUDA_HOST_MAX 64


/*
 * Sets *out to host memory holding t's 4-byte elements: t->data itself when
 * the host can read it, else a copy in `buf` (room for WTT_CUDA_HOST_MAX
 * elements) made on c's stream and waited for. Returns 0, WTT_EFAIL (an
 * operand too large to be shape arithmetic) or the kind of a failed copy,
 * with *err set. *out stays valid while t and buf do.
 */
static inline int
wtt_cuda_host_data(struct wtt_cuda_ctx *c, const struct wtt_tensor *t,
                   uint32_t *buf, const uint32_t **out, const char **err)
{
#ifdef WTT_CUDA_DEVICE
    cudaPointerAttributes a;
    int64_t               n = wtt_tensor_nelem(t);
    int                   rc;

    if (t->data != NULL && n > 0
        && cudaPointerGetAttributes(&a, t->data) == cudaSuccess
        && a.type == cudaMemoryTypeDevice)
    {
        if (n > WTT_CUDA_HOST_MAX) {
            *err = "int32 operand in device memory is too large for the host";
            return WTT_EFAIL;
        }
        rc = wtt_cuda_rt_copy(c, buf, t->data, (size_t) n * 4, err);
        if (rc == 0) {
            rc = wtt_cuda_rt_sync(c, err);
        }
        if (rc != 0) {
            return rc;
        }
        *out = buf;
        return 0;
    }
    (void) cudaGetLastError();  /* a query on plain host memory may set it */
#else
    (void) c;
    (void) buf;
    (void) err;
#endif
    *out = (const uint32_t *) t->data;
    return 0;
}


/*
 * Reads integer operand t (int32, or float32 truncated, as the CPU reads
 * it: wtt_shape_ints_read) into *v on the host, wherever t lives. Returns 0
 * or a negative kind with *err set.
 */
static inline int
wtt_cuda_host_ints(struct wtt_cuda_ctx *c, const struct wtt_tensor *t,
                   struct wtt_shape_ints *v, const char **err)
{
    uint32_t        buf[WTT_CUDA_HOST_MAX];
    const uint32_t *p;
    int             rc;

    if (wtt_tensor_nelem(t) > WTT_SHAPE_MAX_INTS) {
        *err = "too many values in an integer parameter";
        return WTT_EFAIL;
    }
    rc = wtt_cuda_host_data(c, t, buf, &p, err);
    if (rc != 0) {
        return rc;
    }
    return wtt_shape_ints_read(t, p, v, err);
}


/*
 * Runs body(i) for every i in [0, n): on the host now, in order, when
 * `on_host` (int32 tensors), else through wtt_launch on c's stream. Returns
 * 0 or a negative kind with *err set.
 */
template <typename Body>
static inline int
wtt_cuda_run(struct wtt_cuda_ctx *c, int on_host, int64_t n, const Body &body,
             const char **err)
{
    if (on_host) {
        for (int64_t i = 0; i < n; i++) {
            body(i);
        }
        return 0;
    }
    return wtt_launch(c, n, body, err);
}

#endif
