/*
 * test_cuda_emu.c: the CUDA backend in its host emulation ("cuda-emu",
 * kernels/wtt_backend_cuda.h), which runs the backend's own table, tensors,
 * views and kernel bodies (every grid block by block, thread by thread) on
 * host memory, so it runs on every machine, GPU or not.
 *
 *   - cuda_emu_runtime: the table's bookkeeping: int32 tensors in host
 *     memory and float ones in "device" memory, each freed by its own call;
 *     the error kinds, and a faulted context failing every later call at
 *     once.
 *   - cuda_emu_parity: every golden clip through the Basic Pitch pipeline
 *     on a "tee" backend that computes each node the planner runs with the
 *     emulation and with the CPU backend on the same inputs, and requires
 *     the same shape and the same bytes, naming the first node that
 *     differs; then the posteriorgrams of the emulation alone against the
 *     CPU's, bit for bit. The emulated models run batches of two windows,
 *     so a clip of three windows runs a full batch and a partial one.
 */
#include "test.h"
#include "wtt_audio.h"
#include "wtt_backend_cpu.h"
#include "wtt_backend_cuda.h"
#include "wtt_pipeline.h"

/* The emulation's private entry points, under its own names. */
#include "cuda/emu/names.h"
#include "cuda/ops.h"
#include "cuda/runtime.h"

#include <dirent.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>

#define MODEL_DIR  WTT_SOURCE_DIR "/models/basic-pitch"
#define CLIPS_DIR  WTT_SOURCE_DIR "/spec/fixtures/clips"
#define GOLDEN_DIR WTT_SOURCE_DIR "/spec/fixtures/golden"
#define EMU_BATCH  2

static const struct wtt_backend *const emu = &wtt_backend_cuda_emu;


/* ---------------------------------------------------------------------------
 * The table's bookkeeping and its faults
 * ------------------------------------------------------------------------- */

int
test_cuda_emu_runtime(void)
{
    struct wtt_device_info info;
    struct wtt_cuda_ctx   *c;
    struct wtt_tensor      t;
    struct wtt_node        n;
    void                  *ctx = NULL, *d;
    const char            *err = NULL;
    int64_t                ne[2] = { 3, 5 };
    float                  in[4] = { 1, 2, 3, 4 }, out[4] = { 0 };

    ASSERT_STR_EQ(emu->name, "cuda-emu");
    ASSERT(emu->device_count() == 1);
    ASSERT(emu->device_info(0, &info, &err) == 0 && info.mem_total > 0);
    ASSERT(emu->device_info(1, &info, &err) == WTT_EFAIL && err != NULL);
    ASSERT(emu->ctx_new(1, &ctx, &err) == WTT_EFAIL && ctx == NULL);

    /* The same ops as the CPU, each with a home; none by default. */
    memset(&n, 0, sizeof(n));
    for (int op = 0; op <= WTT_OP_COUNT; op++) {
        n.op = (enum wtt_op) op;
        ASSERT(emu->supports_op(&n) == wtt_backend_cpu.supports_op(&n));
    }
    n.op = WTT_OP_PLACEHOLDER;
    err = NULL;
    ASSERT(emu->compute(&n, &err) == WTT_EFAIL && err != NULL);

    ASSERT(emu->ctx_new(0, &ctx, &err) == 0 && ctx != NULL);
    c = ctx;

    /* Float tensors in device memory, int32 ones in host memory: only
     * those are on the context's host list, and a tensor that changes
     * kind gives its buffer back. */
    memset(&t, 0, sizeof(t));
    ASSERT(wtt_cuda_tensor_alloc(c, &t, WTT_F32, 2, ne, &err) == 0);
    ASSERT(t.cap >= 15 * 4 && c->n_host_bufs == 0);
    ASSERT(wtt_cuda_tensor_alloc(c, &t, WTT_I32, 2, ne, &err) == 0);
    ASSERT(t.dtype == WTT_I32 && c->n_host_bufs == 1);
    ASSERT(c->host_bufs[0] == t.data);
    ((int32_t *) t.data)[14] = 7;         /* the host reads and writes it */
    ASSERT(wtt_cuda_tensor_alloc(c, &t, WTT_F32, 2, ne, &err) == 0);
    ASSERT(c->n_host_bufs == 0);
    ASSERT(wtt_cuda_tensor_alloc(c, &t, WTT_I32, 1, ne, &err) == 0);
    ASSERT(c->n_host_bufs == 1);
    emu->buffer_free(c, t.data);          /* the planner's release */
    ASSERT(c->n_host_bufs == 0);

    /* A view gives its own buffer back and owns nothing. */
    memset(&t, 0, sizeof(t));
    ASSERT(wtt_cuda_tensor_alloc(c, &t, WTT_I32, 1, ne, &err) == 0);
    {
        struct wtt_tensor src = t;
        struct wtt_tensor v;
        memset(&v, 0, sizeof(v));
        ASSERT(wtt_cuda_tensor_alloc(c, &v, WTT_I32, 1, ne, &err) == 0);
        ASSERT(c->n_host_bufs == 2);
        wtt_cuda_tensor_view(c, &v, &src, 1, ne);
        ASSERT(v.cap == 0 && v.data == src.data && c->n_host_bufs == 1);
    }
    emu->buffer_free(c, t.data);
    ASSERT(c->n_host_bufs == 0);

    /* Copies in and out. */
    d = emu->buffer_alloc(c, sizeof(in));
    ASSERT(d != NULL);
    ASSERT(emu->buffer_set(c, d, in, sizeof(in), &err) == 0);
    ASSERT(emu->buffer_get(c, out, d, sizeof(in), &err) == 0);
    ASSERT(emu->sync(c, &err) == 0);
    ASSERT(memcmp(in, out, sizeof(in)) == 0);

    /* Error kinds: memory may pass at a smaller batch; other errors fail
     * the call; a sticky error marks the context, and every later call
     * fails at once as a device fault. */
    ASSERT(wtt_cuda_status(c, WTT_CUDA_RT_OK, &err) == 0);
    ASSERT(wtt_cuda_status(c, WTT_CUDA_RT_NOMEM, &err) == WTT_ENOMEM);
    ASSERT(wtt_cuda_status(c, 1, &err) == WTT_EFAIL && !c->faulted);
    ASSERT(wtt_cuda_status(c, WTT_CUDA_RT_FAULT, &err) == WTT_EDEVICE);
    ASSERT(c->faulted);
    ASSERT(emu->buffer_set(c, d, in, sizeof(in), &err) == WTT_EDEVICE);
    ASSERT(emu->buffer_get(c, out, d, sizeof(in), &err) == WTT_EDEVICE);
    ASSERT(emu->sync(c, &err) == WTT_EDEVICE);
    ASSERT(emu->buffer_alloc(c, 64) == NULL);
    memset(&t, 0, sizeof(t));
    ASSERT(wtt_cuda_tensor_alloc(c, &t, WTT_F32, 2, ne, &err)
           == WTT_EDEVICE);
    memset(&n, 0, sizeof(n));
    n.op = WTT_OP_NEG;
    n.ctx = c;
    ASSERT(emu->compute(&n, &err) == WTT_EDEVICE);
    ASSERT(strstr(err, "faulted") != NULL);
    emu->buffer_free(c, d);
    emu->ctx_free(c);
    return 0;
}


/* ---------------------------------------------------------------------------
 * The tee backend: every node on the emulation and on the CPU
 * ------------------------------------------------------------------------- */

static const char *const op_names[WTT_OP_COUNT] = {
    "Const", "Placeholder", "Identity", "Shape", "Reshape", "ExpandDims",
    "Squeeze", "StridedSlice", "Pack", "ConcatV2", "Transpose", "Pad",
    "MirrorPad", "Conv2D", "Add", "Sub", "Mul", "DivNoNan", "Neg", "Square",
    "Sqrt", "Log", "Sigmoid", "Sum", "Min", "Max",
};

/* The CPU's twin of each node the planner runs: its own output and
 * scratch (packed filters), the node's parameters and sources. */
typedef struct {
    const struct wtt_node *key;
    struct wtt_node        cpu;
} twin_t;

static twin_t *twins;
static size_t  n_twins, cap_twins;
static long    tee_nodes;
static char    tee_diff[512];       /* the first difference, or "" */


static struct wtt_node *
twin_of(const struct wtt_node *n)
{
    for (size_t i = 0; i < n_twins; i++) {
        if (twins[i].key == n) {
            return &twins[i].cpu;
        }
    }
    if (n_twins == cap_twins) {
        cap_twins = cap_twins ? 2 * cap_twins : 512;
        twins = realloc(twins, cap_twins * sizeof(*twins));
        if (twins == NULL) {
            abort();
        }
    }
    memset(&twins[n_twins], 0, sizeof(twins[n_twins]));
    twins[n_twins].key = n;
    return &twins[n_twins++].cpu;
}


static void
twins_free(void)
{
    for (size_t i = 0; i < n_twins; i++) {
        struct wtt_node *t = &twins[i].cpu;
        if (t->out.cap != 0) {
            wtt_backend_cpu.buffer_free(NULL, t->out.data);
        }
        if (t->scratch_free != NULL) {
            t->scratch_free(t->scratch);
        }
    }
    free(twins);
    twins = NULL;
    n_twins = cap_twins = 0;
}


/* Records the first difference between the CPU's output `a` and the
 * emulation's `b` of node n. */
static void
compare(const struct wtt_node *n, const struct wtt_tensor *a,
        const struct wtt_tensor *b)
{
    const char *op = (int) n->op < WTT_OP_COUNT ? op_names[n->op] : "?";
    int64_t     count;

    if (tee_diff[0] != '\0') {
        return;
    }
    if (a->dtype != b->dtype || a->rank != b->rank
        || memcmp(a->ne, b->ne, sizeof(int64_t) * (size_t) a->rank) != 0)
    {
        snprintf(tee_diff, sizeof(tee_diff), "node '%s' (%s): shape or "
                 "dtype differs (cpu rank %d dtype %d, emu rank %d dtype %d)",
                 n->name, op, a->rank, a->dtype, b->rank, b->dtype);
        return;
    }
    count = wtt_tensor_nelem(a);
    for (int64_t i = 0; i < count; i++) {
        uint32_t x, y;
        memcpy(&x, (const char *) a->data + 4 * i, 4);
        memcpy(&y, (const char *) b->data + 4 * i, 4);
        if (x != y) {
            float fx, fy;
            memcpy(&fx, &x, 4);
            memcpy(&fy, &y, 4);
            snprintf(tee_diff, sizeof(tee_diff), "node '%s' (%s): element "
                     "%lld of %lld differs: cpu %.9g (0x%08x), emu %.9g "
                     "(0x%08x)", n->name, op, (long long) i,
                     (long long) count, fx, x, fy, y);
            return;
        }
    }
}


/* The CPU computes the twin first, from the same sources (the emulation's
 * outputs of the earlier nodes), then the emulation computes the node the
 * planner goes on with; both outputs must be the same bytes. */
static int
tee_compute(struct wtt_node *n, const char **err)
{
    struct wtt_node *t = twin_of(n);
    struct wtt_node  keep = *t;
    int              rc;

    *t = *n;
    t->out = keep.out;
    t->scratch = keep.scratch;
    t->scratch_free = keep.scratch_free;
    t->ctx = NULL;
    rc = wtt_backend_cpu.compute(t, err);
    if (rc != 0) {
        return rc;
    }
    rc = emu->compute(n, err);
    if (rc != 0) {
        return rc;
    }
    compare(n, &t->out, &n->out);
    tee_nodes++;
    return 0;
}


static int
tee_supports_op(const struct wtt_node *n)
{
    return emu->supports_op(n) && wtt_backend_cpu.supports_op(n);
}


/* ---------------------------------------------------------------------------
 * Golden clips through the pipeline
 * ------------------------------------------------------------------------- */

static int
read_audio(void *ctx, float *out, size_t want, size_t *got, char *err,
           size_t errlen)
{
    return wtt_audio_read(ctx, out, want, got, err, errlen);
}


/* Posteriorgrams of the clip at `path` on model m. Returns 0 or -1 with
 * the reason printed. */
static int
infer(struct wtt_model *m, const char *path, struct wtt_posteriors *post)
{
    struct wtt_audio_params  ap = wtt_audio_default_params();
    struct wtt_infer_opts    o = wtt_infer_default_opts();
    struct wtt_audio_reader *r;
    char                     err[512];
    int                      rc;

    ap.target_rate = WTT_SAMPLE_RATE;
    if (wtt_audio_open(path, &ap, &r, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s: %s\n", path, err);
        return -1;
    }
    rc = wtt_pipeline_infer(m, read_audio, r, &o, post, err, sizeof(err));
    wtt_audio_close(r);
    if (rc != 0) {
        fprintf(stderr, "%s on %s: %s\n", path, wtt_model_backend(m), err);
        return -1;
    }
    return 0;
}


/* 0 when a and b hold the same frames, bit for bit; else names the first
 * difference. */
static int
same_posteriors(const char *clip, const char *what, struct wtt_posteriors *a,
                struct wtt_posteriors *b)
{
    if (a->n_frames != b->n_frames || a->n_frames == 0) {
        fprintf(stderr, "%s: %s: %zu frames, cpu %zu\n", clip, what,
                b->n_frames, a->n_frames);
        return -1;
    }
    for (size_t f = 0; f < a->n_frames; f++) {
        for (size_t k = 0; k < WTT_POST_COLS; k++) {
            float    x = wtt_post_get(a, f, k), y = wtt_post_get(b, f, k);
            uint32_t bx, by;
            memcpy(&bx, &x, 4);
            memcpy(&by, &y, 4);
            if (bx != by) {
                fprintf(stderr, "%s: %s: frame %zu column %zu: cpu %.9g, "
                        "emu %.9g\n", clip, what, f, k, x, y);
                return -1;
            }
        }
    }
    return 0;
}


static struct wtt_model *
load(const struct wtt_backend *b, int batch)
{
    struct wtt_model_params p = wtt_pipeline_model_params();
    struct wtt_model       *m;
    char                    err[512];

    p.dir = MODEL_DIR;
    p.backend = b;
    p.threads = b == NULL ? 0 : 1;
    p.batch = batch;
    if (wtt_model_load(&p, &m, err, sizeof(err)) != 0
        || wtt_pipeline_check(m, err, sizeof(err)) != 0)
    {
        fprintf(stderr, "load on %s: %s\n", b ? b->name : "cpu", err);
        return NULL;
    }
    return m;
}


/* Clips in spec/fixtures/clips that have a folder in golden/. */
static int
golden_clips(char names[][64], int max)
{
    DIR           *d = opendir(CLIPS_DIR);
    struct dirent *e;
    int            n = 0;

    if (d == NULL) {
        return -1;
    }
    while ((e = readdir(d)) != NULL && n < max) {
        size_t      len = strlen(e->d_name);
        char        path[PATH_MAX];
        struct stat st;

        if (len < 5 || len - 4 >= 64
            || strcmp(e->d_name + len - 4, ".wav") != 0)
        {
            continue;
        }
        snprintf(names[n], 64, "%.*s", (int) (len - 4), e->d_name);
        snprintf(path, sizeof(path), "%s/%s", GOLDEN_DIR, names[n]);
        if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
            n++;
        }
    }
    closedir(d);
    return n;
}


int
test_cuda_emu_parity(void)
{
    struct wtt_backend tee = wtt_backend_cuda_emu;
    struct wtt_model  *cpu = NULL, *alone = NULL, *teed = NULL;
    char               clips[32][64];
    int                n, rc = 1;
    long               replays;

    tee.name = "cuda-emu-tee";
    tee.compute = tee_compute;
    tee.supports_op = tee_supports_op;
    /* The tee must see every node: no recorded runs, which replay without
     * the planner's compute calls. `alone` records and replays them. */
    tee.run_begin = NULL;
    tee.run_end = NULL;
    tee_diff[0] = '\0';
    tee_nodes = 0;

    n = golden_clips(clips, 32);
    ASSERT(n >= 1);
#if defined(__SANITIZE_ADDRESS__)
    /* The sanitized build checks memory, not numbers, and runs these
     * kernels 25 times slower: two clips there, all of them in the plain
     * build (scripts/test runs both). */
    if (n > 2) {
        printf("cuda-emu: under AddressSanitizer, 2 of %d golden clips\n",
               n);
        n = 2;
    }
#endif
    cpu = load(NULL, 0);
    alone = load(emu, EMU_BATCH);
    teed = load(&tee, EMU_BATCH);
    if (cpu == NULL || alone == NULL || teed == NULL) {
        goto done;
    }
    ASSERT(wtt_model_batch(alone) == EMU_BATCH);
    ASSERT(wtt_model_batch(teed) == EMU_BATCH);
    /* Loading ran the nodes already (outputs measured, warm-up batch). */
    if (tee_diff[0] != '\0') {
        fprintf(stderr, "at load: %s\n", tee_diff);
        goto done;
    }
    replays = wtt_backend_cuda_emu_graph_replays();
    for (int i = 0; i < n; i++) {
        struct wtt_posteriors p_cpu, p_emu, p_tee;
        char                  path[PATH_MAX];
        long                  before = tee_nodes;
        int                   bad;

        snprintf(path, sizeof(path), "%s/%s.wav", CLIPS_DIR, clips[i]);
        memset(&p_cpu, 0, sizeof(p_cpu));
        memset(&p_emu, 0, sizeof(p_emu));
        memset(&p_tee, 0, sizeof(p_tee));
        bad = infer(cpu, path, &p_cpu) != 0
              || infer(teed, path, &p_tee) != 0
              || infer(alone, path, &p_emu) != 0;
        if (!bad && tee_diff[0] != '\0') {
            fprintf(stderr, "%s: %s\n", clips[i], tee_diff);
            bad = 1;
        }
        if (!bad && tee_nodes == before) {
            fprintf(stderr, "%s: the tee ran no node\n", clips[i]);
            bad = 1;
        }
        if (!bad) {
            bad = same_posteriors(clips[i], "emu alone", &p_cpu, &p_emu) != 0
                  || same_posteriors(clips[i], "tee", &p_cpu, &p_tee) != 0;
        }
        wtt_posteriors_free(&p_cpu);
        wtt_posteriors_free(&p_emu);
        wtt_posteriors_free(&p_tee);
        if (bad) {
            goto done;
        }
    }
    /* Every batch size ran eagerly, then recorded, then replayed: the
     * posteriorgrams above include replayed runs. */
    replays = wtt_backend_cuda_emu_graph_replays() - replays;
    if (replays < 1) {
        fprintf(stderr, "no recorded run was replayed\n");
        goto done;
    }
    printf("cuda-emu: %d golden clips, %ld nodes compared with the CPU, "
           "bit for bit; %ld recorded runs replayed\n", n, tee_nodes,
           replays);
    rc = 0;

done:
    wtt_model_free(teed);
    wtt_model_free(alone);
    wtt_model_free(cpu);
    twins_free();
    return rc;
}
