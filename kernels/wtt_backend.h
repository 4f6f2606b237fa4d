/*
 * wtt_backend.h: what a compute backend gives the graph engine (house style
 * 32-34, after ggml-backend.h). A backend is a constant table of function
 * pointers with a name; the engine lists the compiled-in ones in its
 * registry (core/engine/wtt_backend_reg.c) and reaches kernels only through
 * the table it picked at load time. This header sits beside wtt_tensor.h so
 * that a backend depends on the tensor types and nothing of the engine.
 *
 * Why "run one node" and not "run a plan": the planner owns what is
 * particular to a graph (topological order, constant folding at load time,
 * the worker threads that each run a whole window) and the backends only
 * know ops. Folding runs the same entry point once at load time as every
 * window runs it later, so a folded constant and a computed tensor go
 * through the same kernel. A backend that queues its work (a CUDA stream)
 * starts each node in `compute` and waits in `sync`, which the planner calls
 * once per window before it reads the outputs; the CPU backend computes in
 * `compute` and has nothing to wait for.
 *
 * Ownership: `compute` writes n->out and may (re)allocate its buffer (with
 * memory `buffer_free` releases) and n->scratch; the planner releases them
 * with `buffer_free` and n->scratch_free when it frees the model. Inputs a
 * node reads are either other nodes' outputs on the same backend, the fed
 * input, or constants the planner staged in the backend's memory: a
 * backend never sees host pointers unless it is the host's, but for int32
 * constants (shape arithmetic: axes, paddings, permutations), which stay
 * in host memory because a device backend reads them on the host.
 *
 * Contexts: the planner makes one context per worker (`ctx_new`, for the
 * device the user picked) and hands it to every call for that worker's
 * nodes (n->ctx for `compute`). A device backend keeps there what belongs
 * to one model instance: its stream, library handles, workspace. A context
 * is used by one thread at a time. The CPU backend has none (NULL).
 *
 * Errors: every entry that can fail returns 0 or one of the negative kinds
 * below with a static reason in *err. The kind tells the caller what to do:
 * WTT_ENOMEM at a batch size may pass at a smaller one; WTT_EDEVICE means the
 * device itself is not usable any more (a lost device, a kernel fault), so a
 * worker should stop taking work rather than fail task after task.
 */
#ifndef WTT_BACKEND_H
#define WTT_BACKEND_H

#include <stddef.h>

#include "wtt_tensor.h"

/* Error kinds (negative return values). */
#define WTT_EFAIL   (-1)        /* this input or node: bad shape, bad data */
#define WTT_ENOMEM  (-2)        /* backend memory ran out */
#define WTT_EDEVICE (-3)        /* the device failed: nothing more will run */

/* What `device_info` reports about one device. */
struct wtt_device_info {
    char   name[128];
    size_t mem_total;           /* bytes */
    size_t mem_free;            /* bytes, when the backend can tell */
    int    cc_major, cc_minor;  /* compute capability (0 on the CPU) */
};

struct wtt_backend {
    const char *name;           /* "cpu", "cuda": what users select */

    /* Usable devices (the CPU backend: 1). 0 when the driver or the device
     * is missing: a build with the backend on a host without a GPU. */
    int   (*device_count)(void);

    /* Fills *out for device i. Returns 0, or a negative kind. */
    int   (*device_info)(int i, struct wtt_device_info *out,
                         const char **err);

    /* A context for one worker on device `device` (*ctx may stay NULL for
     * a backend that needs none), released with ctx_free. */
    int   (*ctx_new)(int device, void **ctx, const char **err);
    void  (*ctx_free)(void *ctx);

    /* 1 when `compute` can run node `n` (its op and parameters), else 0.
     * The planner asks for every node at load time, so an unsupported op
     * is refused before the first window, naming op and node. */
    int   (*supports_op)(const struct wtt_node *n);

    /* Memory for tensor data: on success a buffer of `bytes` bytes aligned
     * for the backend's vector loads, which the caller releases with
     * buffer_free; NULL when memory runs out. */
    void *(*buffer_alloc)(void *ctx, size_t bytes);
    void  (*buffer_free)(void *ctx, void *p);

    /* Copies `bytes` from host memory `src` into this backend's buffer
     * memory at `dst` (set), or from the backend's `src` to host `dst`
     * (get). A device backend may only queue the copy: host memory given
     * to `get` holds the data after `sync`, and host memory given to `set`
     * must not change before `sync`. The planner moves each batch in and
     * its outputs out with these, and stages the constants a run reads into
     * the backend's memory at load time when it is not the host's. */
    int   (*buffer_set)(void *ctx, void *dst, const void *src, size_t bytes,
                        const char **err);
    int   (*buffer_get)(void *ctx, void *dst, const void *src, size_t bytes,
                        const char **err);

    /* Host memory for a batch's inputs and outputs: page-locked on a device
     * backend so that copies run at full speed and asynchronously. NULL
     * when memory runs out. */
    void *(*host_alloc)(size_t bytes);
    void  (*host_free)(void *p);

    /*
     * Optional (NULL: every run computes node by node). The planner calls
     * run_begin before the nodes of a run of `items` items and run_end
     * after them. A backend that can record a run and replay it whole (a
     * CUDA graph: one launch instead of hundreds, which is what keeps short
     * clips off the launch overhead) sets *replay to 1 in run_begin when it
     * holds a recording for `items` that is still valid; the planner then
     * computes no node and run_end replays the recording. The input and
     * the outputs are copied outside the recording, so it does not depend
     * on the caller's buffers.
     */
    int   (*run_begin)(void *ctx, int items, int *replay, const char **err);
    int   (*run_end)(void *ctx, int items, const char **err);

    /* Runs node `n` with context n->ctx: reads n->src[] and the node's
     * parameters, writes n->out (setting its shape, allocating it when
     * needed). Returns 0 or a negative kind. */
    int   (*compute)(struct wtt_node *n, const char **err);

    /* Waits until everything started on `ctx` is done. Returns 0 or a
     * negative kind (a device backend reports the faults of queued work
     * here). */
    int   (*sync)(void *ctx, const char **err);
};

#endif
