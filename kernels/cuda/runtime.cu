/*
 * runtime.cu: the device runtime of the CUDA backend (runtime.h) over the
 * CUDA runtime API and cuDNN. Nothing here aborts: every CUDA status is
 * mapped to a kind of wtt_backend.h by wtt_cuda_status, and a failed call
 * clears the thread's last-error slot, so a later launch check
 * (cudaGetLastError in launch.h) never reports an error that was already
 * handled.
 */
#include "ops.h"
#include "runtime.h"

#include <stdio.h>
#include <string.h>

static const char faulted_msg[] = "cuda backend: the device faulted earlier";


/* Errors after which the device (its context) is unusable: CUDA reports
 * them to every later call until the process exits. */
static int
is_sticky(cudaError_t e)
{
    switch (e) {
    case cudaErrorIllegalAddress:
    case cudaErrorLaunchFailure:
    case cudaErrorLaunchTimeout:
    case cudaErrorHardwareStackError:
    case cudaErrorIllegalInstruction:
    case cudaErrorMisalignedAddress:
    case cudaErrorInvalidAddressSpace:
    case cudaErrorInvalidPc:
    case cudaErrorAssert:
    case cudaErrorECCUncorrectable:
    case cudaErrorNvlinkUncorrectable:
    case cudaErrorDevicesUnavailable:
    case cudaErrorNoDevice:
    case cudaErrorInsufficientDriver:
    case cudaErrorInitializationError:
    case cudaErrorCudartUnloading:
    case cudaErrorContextIsDestroyed:
    case cudaErrorUnknown:
        return 1;
    default:
        return 0;
    }
}


int
wtt_cuda_status(struct wtt_cuda_ctx *c, int status, const char **err)
{
    cudaError_t e = (cudaError_t) status;

    if (e == cudaSuccess) {
        return 0;
    }
    *err = cudaGetErrorString(e);
    if (e == cudaErrorMemoryAllocation) {
        return WTT_ENOMEM;
    }
    if (is_sticky(e)) {
        if (c != NULL) {
            c->faulted = 1;
        }
        return WTT_EDEVICE;
    }
    return WTT_EFAIL;
}


/* The kind of status `e` of a call that just failed (or 0), with the
 * thread's last error cleared. */
static int
take(struct wtt_cuda_ctx *c, cudaError_t e, const char **err)
{
    if (e != cudaSuccess) {
        (void) cudaGetLastError();
    }
    return wtt_cuda_status(c, (int) e, err);
}


static int
cudnn_kind(cudnnStatus_t s, const char **err)
{
    if (s == CUDNN_STATUS_SUCCESS) {
        return 0;
    }
    *err = cudnnGetErrorString(s);
    return s == CUDNN_STATUS_ALLOC_FAILED ? WTT_ENOMEM : WTT_EFAIL;
}


int
wtt_cuda_rt_device_count(void)
{
    int n = 0;

    /* No driver, no device, a driver older than the runtime: all 0. */
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        (void) cudaGetLastError();
        return 0;
    }
    return n;
}


int
wtt_cuda_rt_device_info(int i, struct wtt_device_info *out,
                        const char **err)
{
    struct cudaDeviceProp prop;
    size_t                free_b = 0, total_b = 0;
    int                   prev = 0, rc;

    memset(out, 0, sizeof(*out));
    rc = take(NULL, cudaGetDeviceProperties(&prop, i), err);
    if (rc != 0) {
        return rc;
    }
    snprintf(out->name, sizeof(out->name), "%.127s", prop.name);
    out->mem_total = prop.totalGlobalMem;
    out->cc_major = prop.major;
    out->cc_minor = prop.minor;
    /* Free memory is per device: ask it, then give the thread back its
     * own device. */
    if (cudaGetDevice(&prev) != cudaSuccess) {
        (void) cudaGetLastError();
        prev = 0;
    }
    rc = take(NULL, cudaSetDevice(i), err);
    if (rc == 0) {
        rc = take(NULL, cudaMemGetInfo(&free_b, &total_b), err);
        (void) cudaSetDevice(prev);
    }
    if (rc != 0) {
        return rc;
    }
    out->mem_free = free_b;
    out->mem_total = total_b;
    return 0;
}


int
wtt_cuda_rt_ctx_init(struct wtt_cuda_ctx *c, const char **err)
{
    int rc;

    c->stream = NULL;
    c->cudnn = NULL;
    rc = take(c, cudaSetDevice(c->device), err);
    if (rc != 0) {
        goto fail;
    }
    rc = take(c, cudaStreamCreateWithFlags(&c->stream,
                                           cudaStreamNonBlocking), err);
    if (rc != 0) {
        c->stream = NULL;
        goto fail;
    }
    rc = cudnn_kind(cudnnCreate(&c->cudnn), err);
    if (rc != 0) {
        c->cudnn = NULL;
        goto fail;
    }
    rc = cudnn_kind(cudnnSetStream(c->cudnn, c->stream), err);
    if (rc != 0) {
        goto fail;
    }
    return 0;

fail:
    if (c->cudnn != NULL) {
        cudnnDestroy(c->cudnn);
        c->cudnn = NULL;
    }
    if (c->stream != NULL) {
        cudaStreamDestroy(c->stream);
        c->stream = NULL;
    }
    (void) cudaGetLastError();
    return rc;
}


void
wtt_cuda_rt_ctx_fini(struct wtt_cuda_ctx *c)
{
    (void) cudaSetDevice(c->device);
    if (c->stream != NULL) {
        (void) cudaStreamSynchronize(c->stream);
    }
    if (c->workspace != NULL) {
        (void) cudaFree(c->workspace);
        c->workspace = NULL;
        c->workspace_size = 0;
    }
    if (c->cudnn != NULL) {
        cudnnDestroy(c->cudnn);
        c->cudnn = NULL;
    }
    if (c->stream != NULL) {
        (void) cudaStreamDestroy(c->stream);
        c->stream = NULL;
    }
    (void) cudaGetLastError();
}


int
wtt_cuda_rt_bind(struct wtt_cuda_ctx *c, const char **err)
{
    int cur = -1;

    if (c->faulted) {
        *err = faulted_msg;
        return WTT_EDEVICE;
    }
    if (cudaGetDevice(&cur) == cudaSuccess && cur == c->device) {
        return 0;
    }
    return take(c, cudaSetDevice(c->device), err);
}


void *
wtt_cuda_rt_malloc(struct wtt_cuda_ctx *c, size_t bytes)
{
    const char *why = NULL;
    void       *p = NULL;

    if (wtt_cuda_rt_bind(c, &why) != 0) {
        return NULL;
    }
    /* A sticky error here marks the context (take), so the planner's next
     * call reports the device, not memory. */
    if (take(c, cudaMalloc(&p, bytes), &why) != 0) {
        return NULL;
    }
    c->epoch++;                 /* recorded runs may hold stale pointers */
    return p;
}


void
wtt_cuda_rt_free(struct wtt_cuda_ctx *c, void *p)
{
    if (p == NULL) {
        return;
    }
    (void) cudaSetDevice(c->device);
    c->epoch++;
    if (cudaFree(p) != cudaSuccess) {
        (void) cudaGetLastError();
    }
}


void *
wtt_cuda_rt_host_alloc(size_t bytes)
{
    void *p = NULL;

    /* Portable: page-locked for every device's contexts, not only the
     * current one's. */
    if (cudaHostAlloc(&p, bytes ? bytes : 64, cudaHostAllocPortable)
        != cudaSuccess)
    {
        (void) cudaGetLastError();
        return NULL;
    }
    return p;
}


void
wtt_cuda_rt_host_free(void *p)
{
    if (p != NULL && cudaFreeHost(p) != cudaSuccess) {
        (void) cudaGetLastError();
    }
}


int
wtt_cuda_rt_copy(struct wtt_cuda_ctx *c, void *dst, const void *src,
                 size_t bytes, const char **err)
{
    int rc = wtt_cuda_rt_bind(c, err);

    if (rc != 0) {
        return rc;
    }
    /* cudaMemcpyDefault: unified addressing tells host from device. */
    return take(c, cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDefault,
                                   c->stream), err);
}


int
wtt_cuda_rt_capture_begin(struct wtt_cuda_ctx *c, const char **err)
{
    int rc = wtt_cuda_rt_bind(c, err);

    if (rc != 0) {
        return rc;
    }
    /* Relaxed: a kernel family may still call the runtime (an allocation,
     * a device query) while the run is recorded. */
    return take(c, cudaStreamBeginCapture(c->stream,
                                          cudaStreamCaptureModeRelaxed),
                err);
}


int
wtt_cuda_rt_capture_end(struct wtt_cuda_ctx *c,
                        int (*compute)(struct wtt_node *n, const char **err),
                        void **exec, const char **err)
{
    cudaGraph_t     graph = NULL;
    cudaGraphExec_t ge = NULL;
    cudaError_t     e;

    (void) compute;
    *exec = NULL;
    e = cudaStreamEndCapture(c->stream, &graph);
    if (e == cudaSuccess && graph != NULL) {
        e = cudaGraphInstantiateWithFlags(&ge, graph, 0);
    }
    if (graph != NULL) {
        (void) cudaGraphDestroy(graph);
    }
    if (e != cudaSuccess) {
        /* Not a device fault unless the runtime says so: the stream left
         * capture mode and the run can go eagerly. */
        int rc = take(c, e, err);
        return c->faulted ? rc : 0;
    }
    *exec = ge;
    return 0;
}


int
wtt_cuda_rt_graph_launch(struct wtt_cuda_ctx *c, void *exec,
                         const char **err)
{
    int rc = wtt_cuda_rt_bind(c, err);

    if (rc != 0) {
        return rc;
    }
    return take(c, cudaGraphLaunch((cudaGraphExec_t) exec, c->stream), err);
}


void
wtt_cuda_rt_graph_free(void *exec)
{
    if (exec != NULL && cudaGraphExecDestroy((cudaGraphExec_t) exec)
                        != cudaSuccess)
    {
        (void) cudaGetLastError();
    }
}


int
wtt_cuda_rt_sync(struct wtt_cuda_ctx *c, const char **err)
{
    if (c->faulted) {
        *err = faulted_msg;
        return WTT_EDEVICE;
    }
    return take(c, cudaStreamSynchronize(c->stream), err);
}
