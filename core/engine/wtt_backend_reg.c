/*
 * wtt_backend_reg.c: the registry (wtt_backend_reg.h). The only place that
 * knows which backends a build has: the CUDA target, when it exists, defines
 * WTT_USE_CUDA for this file and adds its table below.
 */
#include "wtt_backend_reg.h"
#include "wtt_backend_cpu.h"
#ifdef WTT_USE_CUDA
#include "wtt_backend_cuda.h"
#endif

#include <string.h>

static const struct wtt_backend *const backends[] = {
    &wtt_backend_cpu,
#ifdef WTT_USE_CUDA
    &wtt_backend_cuda,
#endif
};

#define N_BACKENDS (sizeof(backends) / sizeof(backends[0]))


size_t
wtt_backend_count(void)
{
    return N_BACKENDS;
}


const struct wtt_backend *
wtt_backend_get(size_t i)
{
    return i < N_BACKENDS ? backends[i] : NULL;
}


const struct wtt_backend *
wtt_backend_find(const char *name)
{
    for (size_t i = 0; i < N_BACKENDS; i++) {
        if (strcmp(backends[i]->name, name) == 0) {
            return backends[i];
        }
    }
    return NULL;
}


const struct wtt_backend *
wtt_backend_host(void)
{
    return &wtt_backend_cpu;
}
