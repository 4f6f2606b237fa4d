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
count_set(void *ctx, void *dst, const void *src, size_t bytes,
          const char **err)
{
    n_set++;
    return wtt_backend_cpu.buffer_set(ctx, dst, src, bytes, err);
}


static int
count_get(void *ctx, void *dst, const void *src, size_t bytes,
          const char **err)
{
    n_get++;
    return wtt_backend_cpu.buffer_get(ctx, dst, src, bytes, err);
}


static int
count_sync(void *ctx, const char **err)
{
    n_sync++;
    return 0;
}


/* A device whose memory holds at most `small_cap` bytes per buffer: a
 * batch larger than that runs out of memory. */
static size_t small_cap;

static void *
small_alloc(void *ctx, size_t bytes)
{
    return bytes > small_cap ? NULL
                             : wtt_backend_cpu.buffer_alloc(ctx, bytes);
}


/* Kernels allocate outputs with the CPU's allocator; fail the first conv
 * output past the cap the way a device allocation would. */
static int
small_compute(struct wtt_node *n, const char **err)
{
    if (n->src[0] != NULL && n->src[0]->rank > 0
        && (size_t) wtt_tensor_nelem(n->src[0]) * 4 > small_cap)
    {
        *err = "out of memory";
        return WTT_ENOMEM;
    }
    return wtt_backend_cpu.compute(n, err);
}


static int
no_sigmoid(const struct wtt_node *n)
{
    return n->op != WTT_OP_SIGMOID && wtt_backend_cpu.supports_op(n);
}


static struct wtt_model *
load_on(const struct wtt_backend *b, int batch, char *err, size_t errlen)
{
    struct wtt_model_params p = wtt_pipeline_model_params();
    struct wtt_model       *m;

    p.dir = MODEL_DIR;
    p.threads = 1;
    p.backend = b;
    p.batch = batch;
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

    ASSERT(load_on(&partial, 0, err, sizeof(err)) == NULL);
    ASSERT(strstr(err, "backend 'partial' does not support op 'Sigmoid' "
                  "at node '") != NULL);

    cpu = load_on(NULL, 0, err, sizeof(err));
    if (cpu == NULL) {
        fprintf(stderr, "load: %s\n", err);
        return 1;
    }
    ASSERT_STR_EQ(wtt_model_backend(cpu), "cpu");
    ASSERT(wtt_model_batch(cpu) == 1);   /* the host: one per thread */
    n_compute = n_sync = n_set = n_get = 0;
    wrapped = load_on(&counting, 2, err, sizeof(err));
    ASSERT(wrapped != NULL);
    ASSERT_STR_EQ(wtt_model_backend(wrapped), "counting");
    ASSERT(wtt_model_batch(wrapped) == 2);
    ASSERT(wtt_model_batch_items(wrapped) == 2);
    /* Staging, measuring the outputs (one item), the warm-up batch. */
    ASSERT(n_sync == 3);
    ASSERT(n_compute > 0);
    ASSERT(n_set > 2);

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
    /* Both items in one batch: one input copy, three outputs, one sync;
     * the same bits as the CPU's one item at a time. */
    if (n_sync != 1 || n_compute == 0 || n_set != 1 || n_get != 3) {
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


/* A device that runs out of memory above a batch of two halves to it (and
 * gives the same bits); one that has no memory even for one item fails the
 * load with WTT_ENOMEM. */
int
test_backend_oom_halves(void)
{
    struct wtt_backend small = wtt_backend_cpu;
    struct wtt_model  *m, *ref;
    char               err[512];
    size_t             in;
    float             *x, *y[2][3];
    int                rc = 1;

    small.name = "small";
    small.buffer_alloc = small_alloc;
    small.compute = small_compute;
    /* Room for a batch of four (the largest tensor is 0.5 M floats an
     * item), not eight: the load halves to four. */
    small_cap = 2 * 1024 * 1024 * 4;
    m = load_on(&small, 8, err, sizeof(err));
    if (m == NULL) {
        fprintf(stderr, "load: %s\n", err);
        return 1;
    }
    ASSERT(wtt_model_batch(m) == 4);
    ref = load_on(NULL, 0, err, sizeof(err));
    ASSERT(ref != NULL);
    in = wtt_model_input_size(m);
    x = calloc(5 * in, sizeof(float));
    for (size_t i = 0; i < 5 * in; i++) {
        x[i] = (float) ((i * 104729) % 3000) / 1500.0f - 1.0f;
    }
    for (int k = 0; k < 3; k++) {
        y[0][k] = calloc(5 * wtt_model_output_size(m, k), sizeof(float));
        y[1][k] = calloc(5 * wtt_model_output_size(m, k), sizeof(float));
    }
    if (wtt_model_run(m, x, 5, y[0], err, sizeof(err)) != 0
        || wtt_model_run(ref, x, 5, y[1], err, sizeof(err)) != 0)
    {
        fprintf(stderr, "run: %s\n", err);
        goto done;
    }
    for (int k = 0; k < 3; k++) {
        if (memcmp(y[0][k], y[1][k],
                   5 * wtt_model_output_size(m, k) * sizeof(float)) != 0)
        {
            fprintf(stderr, "output %d differs\n", k);
            goto done;
        }
    }
    small_cap = 1024;
    ASSERT(load_on(&small, 2, err, sizeof(err)) == NULL);
    rc = 0;

done:
    for (int k = 0; k < 3; k++) {
        free(y[0][k]);
        free(y[1][k]);
    }
    free(x);
    wtt_model_free(m);
    wtt_model_free(ref);
    return rc;
}


/* The test hook fails runs past `fault_after` as a device fault; a device
 * index the backend lacks fails the load as one. */
int
test_backend_fault_kinds(void)
{
    struct wtt_model_params p = wtt_pipeline_model_params();
    struct wtt_model       *m;
    char                    err[256];
    float                  *x, *y[3];
    int                     rc;

    p.dir = MODEL_DIR;
    p.threads = 1;
    p.device = 1;
    ASSERT(wtt_model_load(&p, &m, err, sizeof(err)) == WTT_EDEVICE);
    ASSERT(strstr(err, "no device 1") != NULL);
    p.device = 0;
    p.fault_after = 1;
    ASSERT(wtt_model_load(&p, &m, err, sizeof(err)) == 0);
    x = calloc(wtt_model_input_size(m), sizeof(float));
    for (int k = 0; k < 3; k++) {
        y[k] = calloc(wtt_model_output_size(m, k), sizeof(float));
    }
    ASSERT(wtt_model_run(m, x, 1, y, err, sizeof(err)) == 0);
    rc = wtt_model_run(m, x, 1, y, err, sizeof(err));
    for (int k = 0; k < 3; k++) {
        free(y[k]);
    }
    free(x);
    wtt_model_free(m);
    ASSERT(rc == WTT_EDEVICE);
    ASSERT(strstr(err, "injected") != NULL);
    return 0;
}


/* A backend that records a run's nodes and replays them whole, as the CUDA
 * backend replays a graph: the planner computes no node on a replay, and
 * the outputs are the same. */
static struct wtt_node *rec_nodes[4096];
static int              rec_n, rec_items, recording, n_replays;

static int
rec_begin(void *ctx, int items, int *replay, const char **err)
{
    *replay = rec_items == items && rec_n > 0;
    if (!*replay) {
        rec_items = items;
        rec_n = 0;
        recording = 1;
    }
    return 0;
}


static int
rec_compute(struct wtt_node *n, const char **err)
{
    if (recording && rec_n < 4096) {
        rec_nodes[rec_n++] = n;
    }
    return wtt_backend_cpu.compute(n, err);
}


static int
rec_end(void *ctx, int items, const char **err)
{
    if (recording) {
        recording = 0;
        return 0;
    }
    n_replays++;
    for (int i = 0; i < rec_n; i++) {
        int rc = wtt_backend_cpu.compute(rec_nodes[i], err);
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}


int
test_backend_replay(void)
{
    struct wtt_backend rec = wtt_backend_cpu;
    struct wtt_model  *m, *ref;
    char               err[512];
    size_t             in;
    float             *x, *y[3][3];
    int                rc = 1;

    rec.name = "recording";
    rec.run_begin = rec_begin;
    rec.run_end = rec_end;
    rec.compute = rec_compute;
    m = load_on(&rec, 2, err, sizeof(err));
    ref = load_on(NULL, 0, err, sizeof(err));
    ASSERT(m != NULL && ref != NULL);
    in = wtt_model_input_size(m);
    x = calloc(2 * in, sizeof(float));
    for (size_t i = 0; i < 2 * in; i++) {
        x[i] = (float) ((i * 31337) % 4001) / 2000.0f - 1.0f;
    }
    for (int k = 0; k < 3; k++) {
        for (int r = 0; r < 3; r++) {
            y[r][k] = calloc(2 * wtt_model_output_size(m, k), sizeof(float));
        }
    }
    /* The load's warm-up recorded a batch of two: both runs replay. */
    n_replays = 0;
    if (wtt_model_run(ref, x, 2, y[0], err, sizeof(err)) != 0
        || wtt_model_run(m, x, 2, y[1], err, sizeof(err)) != 0
        || wtt_model_run(m, x, 2, y[2], err, sizeof(err)) != 0)
    {
        fprintf(stderr, "run: %s\n", err);
        goto done;
    }
    if (n_replays != 2) {
        fprintf(stderr, "replays: %d\n", n_replays);
        goto done;
    }
    for (int k = 0; k < 3; k++) {
        size_t bytes = 2 * wtt_model_output_size(m, k) * sizeof(float);
        if (memcmp(y[0][k], y[1][k], bytes) != 0
            || memcmp(y[0][k], y[2][k], bytes) != 0)
        {
            fprintf(stderr, "output %d differs\n", k);
            goto done;
        }
    }
    rc = 0;

done:
    for (int k = 0; k < 3; k++) {
        for (int r = 0; r < 3; r++) {
            free(y[r][k]);
        }
    }
    free(x);
    wtt_model_free(m);
    wtt_model_free(ref);
    return rc;
}
