/*
 * test_cuda.c: the device CUDA backend ("cuda"), where this build has it.
 *
 *   - cuda_status: runs on any machine with the backend compiled in, GPU
 *     or not: CUDA statuses map to the engine's error kinds (memory, a
 *     failed call, a sticky device fault that marks the context), and a
 *     faulted context fails every later call at once, before it reaches
 *     the device; with no GPU the backend reports no devices and refuses
 *     a context without crashing.
 *   - cuda_device: needs a GPU: a context, copies through page-locked host
 *     memory, and one batch of the model beside the CPU's. Skipped, with
 *     the reason, where there is none. The per-op and golden-clip parity
 *     on a GPU is the GPU parity spec's.
 *
 * A build without the backend (WTT_CUDA=OFF, or no nvcc and cuDNN) skips
 * both; WTT_USE_CUDA is defined for this runner when it has it.
 */
#include "test.h"
#include "wtt_backend_cpu.h"
#include "wtt_backend_reg.h"
#include "wtt_pipeline.h"

#include <math.h>
#include <stdlib.h>

#ifdef WTT_USE_CUDA
#define WTT_CUDA_DEVICE         /* the device backend's context layout */
#include "cuda/ops.h"
#include <cuda_runtime_api.h>
#endif

#define MODEL_DIR WTT_SOURCE_DIR "/models/basic-pitch"
#define NO_BACKEND "this build has no CUDA backend (WTT_CUDA=OFF, or nvcc " \
                   "or cuDNN not found)"


int
test_cuda_status(void)
{
#ifndef WTT_USE_CUDA
    SKIP(NO_BACKEND);
#else
    static const int sticky[] = {
        cudaErrorIllegalAddress, cudaErrorLaunchFailure,
        cudaErrorLaunchTimeout, cudaErrorHardwareStackError,
        cudaErrorIllegalInstruction, cudaErrorMisalignedAddress,
        cudaErrorInvalidPc, cudaErrorECCUncorrectable,
        cudaErrorDevicesUnavailable, cudaErrorNoDevice,
    };
    const struct wtt_backend *b = wtt_backend_find("cuda");
    struct wtt_cuda_ctx       c;
    struct wtt_device_info    info;
    struct wtt_node           n;
    const char               *err = NULL;
    void                     *ctx = NULL;
    float                     x = 1.0f, y = 0.0f;

    ASSERT(b != NULL);
    ASSERT(wtt_backend_get(0) == &wtt_backend_cpu);     /* cpu stays first */
    memset(&c, 0, sizeof(c));
    ASSERT(wtt_cuda_status(&c, cudaSuccess, &err) == 0);
    ASSERT(wtt_cuda_status(&c, cudaErrorMemoryAllocation, &err)
           == WTT_ENOMEM);
    ASSERT(err != NULL && !c.faulted);
    ASSERT(wtt_cuda_status(&c, cudaErrorInvalidValue, &err) == WTT_EFAIL);
    ASSERT(!c.faulted);
    for (size_t i = 0; i < sizeof(sticky) / sizeof(sticky[0]); i++) {
        c.faulted = 0;
        err = NULL;
        ASSERT(wtt_cuda_status(&c, sticky[i], &err) == WTT_EDEVICE);
        ASSERT(c.faulted && err != NULL);
    }

    /* Faulted: nothing more is queued on the device. */
    ASSERT(b->buffer_set(&c, &y, &x, sizeof(x), &err) == WTT_EDEVICE);
    ASSERT(b->buffer_get(&c, &y, &x, sizeof(x), &err) == WTT_EDEVICE);
    ASSERT(b->sync(&c, &err) == WTT_EDEVICE);
    ASSERT(b->buffer_alloc(&c, 64) == NULL);
    memset(&n, 0, sizeof(n));
    n.op = WTT_OP_ADD;
    n.ctx = &c;
    ASSERT(b->compute(&n, &err) == WTT_EDEVICE);
    n.op = WTT_OP_PLACEHOLDER;
    ASSERT(b->compute(&n, &err) == WTT_EFAIL);
    ASSERT(b->supports_op(&n) == 0);

    /* No GPU here is not a crash: no devices, no context, no info. */
    if (b->device_count() == 0) {
        err = NULL;
        ASSERT(b->ctx_new(0, &ctx, &err) == WTT_EFAIL && ctx == NULL);
        ASSERT(err != NULL);
        ASSERT(b->device_info(0, &info, &err) == WTT_EFAIL);
    }
    return 0;
#endif
}


int
test_cuda_device(void)
{
    const struct wtt_backend *b = wtt_backend_find("cuda");
    struct wtt_model_params   p = wtt_pipeline_model_params();
    struct wtt_model         *gpu = NULL, *cpu = NULL;
    struct wtt_device_info    info;
    const char               *why = NULL;
    char                      err[512];
    void                     *ctx = NULL, *d = NULL;
    float                    *h = NULL, *x = NULL, *y[2][3] = { { 0 } };
    size_t                    in;
    int                       rc = 1;

    if (b == NULL) {
        SKIP(NO_BACKEND);
    }
    if (b->device_count() == 0) {
        SKIP("no CUDA device is present (device_count() = 0)");
    }
    ASSERT(b->device_info(0, &info, &why) == 0);
    printf("cuda:0: %s, %zu MiB (%zu free), compute capability %d.%d\n",
           info.name, info.mem_total >> 20, info.mem_free >> 20,
           info.cc_major, info.cc_minor);
    ASSERT(info.name[0] != '\0' && info.mem_total > 0);

    /* A round trip through page-locked host memory on the stream. */
    ASSERT(b->ctx_new(0, &ctx, &why) == 0);
    h = b->host_alloc(1024 * sizeof(float));
    d = b->buffer_alloc(ctx, 1024 * sizeof(float));
    if (h == NULL || d == NULL) {
        fprintf(stderr, "allocation failed\n");
        goto done;
    }
    for (int i = 0; i < 1024; i++) {
        h[i] = (float) i;
    }
    if (b->buffer_set(ctx, d, h, 1024 * sizeof(float), &why) != 0
        || b->sync(ctx, &why) != 0)
    {
        fprintf(stderr, "set: %s\n", why);
        goto done;
    }
    memset(h, 0, 1024 * sizeof(float));
    if (b->buffer_get(ctx, h, d, 1024 * sizeof(float), &why) != 0
        || b->sync(ctx, &why) != 0)
    {
        fprintf(stderr, "get: %s\n", why);
        goto done;
    }
    for (int i = 0; i < 1024; i++) {
        if (h[i] != (float) i) {
            fprintf(stderr, "round trip: element %d is %g\n", i, h[i]);
            goto done;
        }
    }

    /* Three windows in batches of two (a full batch and a partial one),
     * beside the CPU: close, and finite. */
    p.dir = MODEL_DIR;
    p.backend = b;
    p.threads = 1;
    p.batch = 2;
    if (wtt_model_load(&p, &gpu, err, sizeof(err)) != 0) {
        fprintf(stderr, "load on cuda: %s\n", err);
        goto done;
    }
    p.backend = NULL;
    p.threads = 0;
    p.batch = 0;
    if (wtt_model_load(&p, &cpu, err, sizeof(err)) != 0) {
        fprintf(stderr, "load on cpu: %s\n", err);
        goto done;
    }
    in = wtt_model_input_size(cpu);
    x = calloc(3 * in, sizeof(float));
    for (size_t i = 0; x != NULL && i < 3 * in; i++) {
        x[i] = 0.5f * sinf((float) i * 0.0627f) * (float) (i % 7) / 7.0f;
    }
    for (int k = 0; k < 3; k++) {
        y[0][k] = calloc(3 * wtt_model_output_size(cpu, k), sizeof(float));
        y[1][k] = calloc(3 * wtt_model_output_size(cpu, k), sizeof(float));
    }
    if (wtt_model_run(cpu, x, 3, y[0], err, sizeof(err)) != 0
        || wtt_model_run(gpu, x, 3, y[1], err, sizeof(err)) != 0)
    {
        fprintf(stderr, "run: %s\n", err);
        goto done;
    }
    for (int k = 0; k < 3; k++) {
        size_t cnt = 3 * wtt_model_output_size(cpu, k);
        double worst = 0;
        for (size_t i = 0; i < cnt; i++) {
            double dv = fabs((double) y[0][k][i] - (double) y[1][k][i]);
            if (!isfinite(y[1][k][i])) {
                dv = INFINITY;
            }
            worst = dv > worst ? dv : worst;
        }
        printf("output %d: largest difference from the CPU %.3g\n", k,
               worst);
        if (!(worst <= 1e-3)) {
            goto done;
        }
    }
    rc = 0;

done:
    for (int k = 0; k < 3; k++) {
        free(y[0][k]);
        free(y[1][k]);
    }
    free(x);
    wtt_model_free(gpu);
    wtt_model_free(cpu);
    if (d != NULL) {
        b->buffer_free(ctx, d);
    }
    if (h != NULL) {
        b->host_free(h);
    }
    if (ctx != NULL) {
        b->ctx_free(ctx);
    }
    return rc;
}
