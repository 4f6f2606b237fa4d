/*
 * wtt_backend_cuda.h: the CUDA backend (kernels/cuda/): cuDNN convolutions
 * and wtt's own kernels on one stream per model instance. Built when
 * WTT_CUDA finds nvcc and cuDNN (target wtt_backend_cuda); the engine's
 * registry lists it after the CPU when WTT_USE_CUDA is defined. A build
 * with it on a host without a GPU reports device_count() == 0.
 *
 * wtt_backend_cuda_emu is the same backend (the same table, tensor and op
 * sources) compiled for the host (target wtt_backend_cuda_emu, always
 * built): device memory is host memory and every kernel's grid runs block
 * by block and thread by thread on the calling thread. It is for tests
 * only and is never in the registry.
 */
#ifndef WTT_BACKEND_CUDA_H
#define WTT_BACKEND_CUDA_H

#include "wtt_backend.h"

#ifdef __cplusplus
extern "C" {
#endif

extern const struct wtt_backend wtt_backend_cuda;      /* "cuda" */
extern const struct wtt_backend wtt_backend_cuda_emu;  /* "cuda-emu" */

/* Recorded runs (CUDA graphs) replayed so far in this process, for tests
 * and metrics; wtt_backend_cuda_emu_graph_replays counts the emulation's. */
long wtt_backend_cuda_graph_replays(void);
long wtt_backend_cuda_emu_graph_replays(void);

#ifdef __cplusplus
}
#endif

#endif
