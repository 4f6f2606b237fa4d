/*
 * test_backend.c: the backend registry, the CPU backend's op table, and the
 * planner reaching kernels only through the table it was given: a wrapping
 * backend (not the host's, so constants are staged into its memory and every
 * window goes in and out through buffer_set/get) sees every node and one
 * sync per item and gives the CPU's bits; a backend that lacks an op is
 * refused at load, naming backend, op and node.
 */
#include "test.h"
#include "wtt_backend_cpu.h"
#include "wtt_backend_reg.h"
#include "wtt_pipeline.h"

#include <stdlib.h>

#define MODEL_DIR WTT_SOURCE_DIR "/models/basic-pitch"


int
test_backend_registry(void)
{
    ASSERT(wtt_backend_count() >= 1);
    ASSERT(wtt_backend_get(0) == &wtt_backend_cpu);
    ASSERT(wtt_backend_get(wtt_backend_count()) == NULL);
    ASSERT(wtt_backend_find("cpu") == &wtt_backend_cpu);
    ASSERT(wtt_backend_find("nope") == NULL);
    ASSERT(wtt_backend_host() == &wtt_backend_cpu);
    for (size_t i = 0; i < wtt_backend_count(); i++) {
        const struct wtt_backend *b = wtt_backend_get(i);
        ASSERT(b->name != NULL && b->supports_op != NULL
               && b->buffer_alloc != NULL && b->buffer_free != NULL
               && b->buffer_set != NULL && b->buffer_get != NULL
               && b->compute != NULL && b->sync != NULL);
        ASSERT(wtt_backend_find(b->name) == b);
    }
    return 0;
}


/* Every op has a home on the CPU but the planner's own (Const, the fed
 * Placeholder); computing one without a home is an error, not a default. */
int
test_backend_cpu_ops(void)
{
    struct wtt_node n;
    const char     *err = NULL;

    memset(&n, 0, sizeof(n));
    for (int op = 0; op < WTT_OP_COUNT; op++) {
        n.op = (enum wtt_op) op;
        ASSERT(wtt_backend_cpu.supports_op(&n)
               == (op != WTT_OP_CONST && op != WTT_OP_PLACEHOLDER));
    }
    n.op = WTT_OP_PLACEHOLDER;
    ASSERT(wtt_backend_cpu.compute(&n, &err) == -1 && err != NULL);
    err = NULL;
    n.op = WTT_OP_COUNT;
    ASSERT(!wtt_backend_cpu.supports_op(&n));
    ASSERT(wtt_backend_cpu.compute(&n, &err) == -1 && err != NULL);
    return 0;
}


/* A backend that hands every node to the CPU and counts what it is given. */
static int n_compute, n_sync, n_set, n_get;

static int
count_compute(struct wtt_node *n, const char **err)
{
    n_compute++;
    return wtt_backend_cpu.compute(n, err);
}


static int
count_set(void *dst, const void *src, size_t bytes, const char **err)
{
    n_set++;
    return wtt_backend_cpu.buffer_set(dst, src, bytes, err);
}


static int
count_get(void *dst, const void *src, size_t bytes, const char **err)
{
    n_get++;
    return wtt_backend_cpu.buffer_get(dst, src, bytes, err);
}


static int
count_sync(const char **err)
{
    n_sync++;
    return 0;
}


static int
no_sigmoid(const struct wtt_node *n)
{
    return n->op != WTT_OP_SIGMOID && wtt_backend_cpu.supports_op(n);
}


static struct wtt_model *
load_on(const struct wtt_backend *b, char *err, size_t errlen)
{
    struct wtt_model_params p = wtt_pipeline_model_params();
    struct wtt_model       *m;

    p.dir = MODEL_DIR;
    p.threads = 1;
    p.backend = b;
    if (wtt_model_load(&p, &m, err, errlen) != 0) {
        return NULL;
    }
    return m;
}


int
test_backend_planner(void)
{
    struct wtt_backend counting = wtt_backend_cpu;
    struct wtt_backend partial = wtt_backend_cpu;
    struct wtt_model  *cpu, *wrapped;
    char               err[512];
    size_t             in, out[3];
    float             *x, *y[2][3];
    int                rc = 1;

    counting.name = "counting";
    counting.compute = count_compute;
    counting.sync = count_sync;
    counting.buffer_set = count_set;
    counting.buffer_get = count_get;
    partial.name = "partial";
    partial.supports_op = no_sigmoid;

    ASSERT(load_on(&partial, err, sizeof(err)) == NULL);
    ASSERT(strstr(err, "backend 'partial' does not support op 'Sigmoid' "
                  "at node '") != NULL);

    cpu = load_on(NULL, err, sizeof(err));
    if (cpu == NULL) {
        fprintf(stderr, "load: %s\n", err);
        return 1;
    }
    ASSERT_STR_EQ(wtt_model_backend(cpu), "cpu");
    n_compute = n_sync = n_set = n_get = 0;
    wrapped = load_on(&counting, err, sizeof(err));
    ASSERT(wrapped != NULL);
    ASSERT_STR_EQ(wtt_model_backend(wrapped), "counting");
    ASSERT(n_sync == 1);             /* the warm-up item */
    ASSERT(n_compute > 0);
    ASSERT(n_set > 1);               /* staged constants, then the item */

    in = wtt_model_input_size(cpu);
    ASSERT(in == WTT_WINDOW_SAMPLES);
    x = calloc(2 * in, sizeof(float));
    for (size_t i = 0; i < 2 * in; i++) {
        x[i] = (float) ((i * 7919) % 2000) / 1000.0f - 1.0f;
    }
    for (int k = 0; k < 3; k++) {
        out[k] = wtt_model_output_size(cpu, k);
        y[0][k] = calloc(2 * out[k], sizeof(float));
        y[1][k] = calloc(2 * out[k], sizeof(float));
    }
    n_compute = n_sync = n_set = n_get = 0;
    if (wtt_model_run(cpu, x, 2, y[0], err, sizeof(err)) != 0
        || wtt_model_run(wrapped, x, 2, y[1], err, sizeof(err)) != 0)
    {
        fprintf(stderr, "run: %s\n", err);
        goto done;
    }
    if (n_sync != 2 || n_compute == 0 || n_compute % 2 != 0
        || n_set != 2 || n_get != 6)
    {
        fprintf(stderr, "sync %d, compute %d, set %d, get %d\n", n_sync,
                n_compute, n_set, n_get);
        goto done;
    }
    for (int k = 0; k < 3; k++) {
        if (memcmp(y[0][k], y[1][k], 2 * out[k] * sizeof(float)) != 0) {
            fprintf(stderr, "output %d differs\n", k);
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
    wtt_model_free(wrapped);
    wtt_model_free(cpu);
    return rc;
}
