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
 * backend never sees host pointers unless it is the host's. A backend is used by one thread
 * per node copy at a time: the planner gives each worker its own nodes.
 */
#ifndef WTT_BACKEND_H
#define WTT_BACKEND_H

#include <stddef.h>

#include "wtt_tensor.h"

struct wtt_backend {
    const char *name;           /* "cpu", "cuda": what users select */

    /* 1 when `compute` can run node `n` (its op and parameters), else 0.
     * The planner asks for every node at load time, so an unsupported op
     * is refused before the first window, naming op and node. */
    int   (*supports_op)(const struct wtt_node *n);

    /* Memory for tensor data: on success a buffer of `bytes` bytes aligned
     * for the backend's vector loads, which the caller releases with
     * buffer_free; NULL when memory runs out. */
    void *(*buffer_alloc)(size_t bytes);
    void  (*buffer_free)(void *p);

    /* Copies `bytes` from host memory `src` into this backend's buffer
     * memory at `dst` (set), or from the backend's `src` to host `dst`
     * (get). Returns 0, or -1 with a static reason in *err. The planner
     * moves each window in and its outputs out with these, and stages the
     * constants a run reads into the backend's memory at load time when
     * the backend is not the host's. */
    int   (*buffer_set)(void *dst, const void *src, size_t bytes,
                        const char **err);
    int   (*buffer_get)(void *dst, const void *src, size_t bytes,
                        const char **err);

    /* Runs node `n`: reads n->src[] and the node's parameters, writes
     * n->out (setting its shape, allocating it when needed). Returns 0, or
     * -1 with a static reason in *err. */
    int   (*compute)(struct wtt_node *n, const char **err);

    /* Waits until every node `compute` started is done. Returns 0, or -1
     * with a static reason in *err. */
    int   (*sync)(const char **err);
};

#endif
