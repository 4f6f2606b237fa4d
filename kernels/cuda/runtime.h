/*
 * runtime.h: the device runtime under the CUDA backend, private to
 * kernels/cuda/. The backend's table (backend.cu), its tensors (tensor.cu)
 * and its views (view.cu) reach the device only through these calls, so the
 * same sources build twice:
 *
 *   - runtime.cu (nvcc, WTT_CUDA_DEVICE): the CUDA runtime and cuDNN;
 *   - emu/runtime.cpp (host C++): host memory for device memory, memcpy for
 *     copies, nothing to wait for; what the CI specs run.
 *
 * Every call that can fail returns 0 or a negative kind of wtt_backend.h
 * with a static reason in *err (mapped by wtt_cuda_status, ops.h). Calls
 * that take a context fail at once with WTT_EDEVICE once it has faulted.
 */
#ifndef WTT_CUDA_RUNTIME_H
#define WTT_CUDA_RUNTIME_H

#include <stddef.h>

#include "ctx.h"
#include "wtt_backend.h"

/* Runtime statuses the backend names itself: the CUDA runtime's own
 * values, which the host emulation reports for the same failures. */
#define WTT_CUDA_RT_OK     0
#define WTT_CUDA_RT_NOMEM  2        /* cudaErrorMemoryAllocation */
#define WTT_CUDA_RT_FAULT  700      /* cudaErrorIllegalAddress (sticky) */

#ifdef __cplusplus
extern "C" {
#endif

/* Usable devices; 0 on any error (no driver, no device). Never fails. */
int wtt_cuda_rt_device_count(void);

/* Name, memory (total and free on that device) and compute capability of
 * device i. Returns 0 or a negative kind. */
int wtt_cuda_rt_device_info(int i, struct wtt_device_info *out,
                            const char **err);

/* Makes `c` (zeroed by the caller, c->device set) ready: on the device, one
 * non-blocking stream and a cuDNN handle bound to it. On failure releases
 * whatever it made. Returns 0 or a negative kind. */
int wtt_cuda_rt_ctx_init(struct wtt_cuda_ctx *c, const char **err);

/* Releases what wtt_cuda_rt_ctx_init made (and the cuDNN workspace). Waits
 * for the stream first, so no queued work reads freed memory. */
void wtt_cuda_rt_ctx_fini(struct wtt_cuda_ctx *c);

/* Makes c->device the calling thread's current device (a no-op when it is
 * already): the planner's worker threads share one context each but start
 * on device 0. Returns 0 or a negative kind. */
int wtt_cuda_rt_bind(struct wtt_cuda_ctx *c, const char **err);

/* Device memory on c's device; NULL when it runs out (or c has faulted).
 * Released with wtt_cuda_rt_free. */
void *wtt_cuda_rt_malloc(struct wtt_cuda_ctx *c, size_t bytes);
void wtt_cuda_rt_free(struct wtt_cuda_ctx *c, void *p);

/* Page-locked host memory (the device can copy from and to it
 * asynchronously); NULL when it runs out. Released with
 * wtt_cuda_rt_host_free. */
void *wtt_cuda_rt_host_alloc(size_t bytes);
void wtt_cuda_rt_host_free(void *p);

/* Queues a copy of `bytes` from `src` to `dst` (either may be device or
 * page-locked host memory) on c's stream. Returns 0 or a negative kind. */
int wtt_cuda_rt_copy(struct wtt_cuda_ctx *c, void *dst, const void *src,
                     size_t bytes, const char **err);

/* Waits for everything queued on c's stream; reports the faults of queued
 * work. Returns 0 or a negative kind. */
int wtt_cuda_rt_sync(struct wtt_cuda_ctx *c, const char **err);

/* Recording a run (CUDA graphs). capture_begin puts c's stream in capture
 * mode: work queued on it is recorded, not run. capture_end ends it and
 * sets *exec to a graph ready to launch, or NULL when the capture failed
 * (nothing of it ran; the stream is usable again). The emulation records
 * c->rec, the nodes the backend computed meanwhile, and replays them with
 * `compute`. graph_launch queues a recorded run on c's stream;
 * graph_free releases one (after the runs that launched it are synced). */
int wtt_cuda_rt_capture_begin(struct wtt_cuda_ctx *c, const char **err);
int wtt_cuda_rt_capture_end(struct wtt_cuda_ctx *c,
                            int (*compute)(struct wtt_node *n,
                                           const char **err),
                            void **exec, const char **err);
int wtt_cuda_rt_graph_launch(struct wtt_cuda_ctx *c, void *exec,
                             const char **err);
void wtt_cuda_rt_graph_free(void *exec);

#ifdef __cplusplus
}
#endif

#endif
