/*
 * ctx.h: what one model instance holds on a GPU (the backend context of
 * kernels/wtt_backend.h), private to kernels/cuda/. The same header serves
 * the real backend (nvcc, WTT_CUDA_DEVICE defined) and its host emulation
 * (kernels/cuda/emu/), where the CUDA handles are absent.
 */
#ifndef WTT_CUDA_CTX_H
#define WTT_CUDA_CTX_H

#include <stddef.h>

#ifdef WTT_CUDA_DEVICE
#include <cuda_runtime.h>
#include <cudnn.h>
#endif

/* cuDNN workspace ceiling per context: algorithms that need more are not
 * chosen (the budget the batch planner sees stays honest). */
#define WTT_CUDA_WORKSPACE_MAX ((size_t) 256 << 20)

/* Recorded runs (CUDA graphs) a context keeps: one per batch size. */
#define WTT_CUDA_MAX_GRAPHS 8

struct wtt_node;

/* A recorded run: valid while no device buffer of the context has moved
 * since (its kernels hold their pointers). */
struct wtt_cuda_graph {
    int       items;
    unsigned  epoch;
    void     *exec;             /* cudaGraphExec_t (emulation: a node list) */
};

struct wtt_cuda_ctx {
    int           device;       /* cuda:N */
#ifdef WTT_CUDA_DEVICE
    cudaStream_t  stream;       /* every node of this instance, in order */
    cudnnHandle_t cudnn;        /* bound to `stream` */
#endif
    void         *workspace;    /* cuDNN scratch, grown up to the max */
    size_t        workspace_size;
    int           faulted;      /* a sticky device error was seen */
    /* The page-locked host buffers of this context's int32 tensors
     * (tensor.cu): buffer_free is handed device and host pointers alike
     * and frees each with its own call. */
    void        **host_bufs;
    int           n_host_bufs;
    int           cap_host_bufs;

    /* Recording and replaying runs (backend.cu, run_begin / run_end). */
    unsigned      epoch;        /* bumped by every device alloc and free */
    int           graphs_off;   /* WTT_CUDA_GRAPHS=0, or a capture failed */
    int           mode;         /* eager, capturing or replaying */
    int           cur;          /* the graph being replayed */
    int           eager_items;  /* the last eager run: its size, and the */
    unsigned      eager_epoch;  /*   epoch its buffers had at its end */
    unsigned      capture_epoch;
    struct wtt_cuda_graph graphs[WTT_CUDA_MAX_GRAPHS];
    int           n_graphs;
    void         *retired;      /* a graph to free once its run is synced */
    struct wtt_node **rec;      /* the nodes of the run being captured */
    int           n_rec, cap_rec;
};

#endif
