/*
 * launch.h: how the CUDA backend's own kernels are written and launched,
 * private to kernels/cuda/.
 *
 * A kernel is a functor: a struct holding its parameters (device pointers,
 * sizes, strides) with `WTT_HD void operator()(int64_t i) const`, the work
 * of thread i of a one-dimensional grid of n threads. It uses neither shared
 * memory nor barriers, so the same body runs unchanged in two places:
 *
 *   - on the GPU (nvcc, WTT_CUDA_DEVICE defined): wtt_launch queues one
 *     grid of WTT_BLOCK-thread blocks on the context's stream;
 *   - on the host (the emulation in kernels/cuda/emu/, compiled as C++):
 *     wtt_launch runs the same grid block by block and thread by thread, in
 *     order, over host memory.
 *
 * The host run is what the specs compare with the CPU backend on the golden
 * clips' real intermediate tensors (no GPU on the development and CI
 * machines); what only a GPU can check (launches, cuDNN, copies) is the GPU
 * parity spec's.
 */
#ifndef WTT_CUDA_LAUNCH_H
#define WTT_CUDA_LAUNCH_H

#include <stdint.h>

#include "ctx.h"
#include "ops.h"

#ifdef __CUDACC__
#define WTT_HD __host__ __device__
#else
#define WTT_HD
#endif

/* Threads per block: every kernel is memory-bound and one-dimensional. */
#define WTT_BLOCK 256

#ifdef WTT_CUDA_DEVICE

template <typename Body>
__global__ void
wtt_grid(Body body, int64_t n)
{
    int64_t i = (int64_t) blockIdx.x * blockDim.x + threadIdx.x;

    if (i < n) {
        body(i);
    }
}

#endif

/*
 * Runs body(i) for every i in [0, n) on context `c`: queued on its stream
 * (GPU) or run now (host emulation). Returns 0 or a negative kind with
 * *err set (a launch error; a fault inside the kernel surfaces at the
 * stream's next sync).
 */
template <typename Body>
static int
wtt_launch(struct wtt_cuda_ctx *c, int64_t n, const Body &body,
           const char **err)
{
    int64_t grid = (n + WTT_BLOCK - 1) / WTT_BLOCK;

    if (n <= 0) {
        return 0;
    }
#ifdef WTT_CUDA_DEVICE
    wtt_grid<Body><<<(unsigned) grid, WTT_BLOCK, 0, c->stream>>>(body, n);
    return wtt_cuda_status(c, (int) cudaGetLastError(), err);
#else
    (void) c;
    (void) err;
    for (int64_t b = 0; b < grid; b++) {
        for (int64_t t = 0; t < WTT_BLOCK; t++) {
            int64_t i = b * WTT_BLOCK + t;
            if (i < n) {
                body(i);
            }
        }
    }
    return 0;
#endif
}

#endif
