/*
 * convlibs.c: Basic Pitch's convolution stack (one window, fp32) through the
 * engine's own CPU kernel, oneDNN and XNNPACK, side by side (issue 16: "first,
 * measure the libraries made for this"). Run by bench/infer/convlibs.sh.
 *
 * The layers are bench/infer/flops.lua's BASIC_PITCH with the geometry of
 * models/basic-pitch: the eight 1x256 low-pass filters (stride 2, VALID),
 * the 18 constant-Q filter banks (1x256, 36 filters, VALID, one real and one
 * imaginary per octave at strides 256, 128, ..., 1, so every octave gives
 * 172 frames), and the six heads (SAME, bias, Relu where the graph fuses
 * one). Padding comes from the engine's own shape rules
 * (kernels/wtt_shape.c), so every implementation computes the same conv.
 *
 * Modes: "threads" is what each implementation does with the cores:
 *   engine  xN windows: N threads, each running the whole stack on its own
 *           window, which is how the engine uses cores (one window per
 *           worker thread, docs/engine.md);
 *   lib     N threads inside each convolution (oneDNN's OpenMP team,
 *           XNNPACK's pthreadpool), one window at a time;
 *   lib     xN windows: as the engine, N threads, one library instance
 *           with one thread each.
 * The weights (and the inputs, should oneDNN want another layout) are
 * reordered into the library's chosen formats once, before timing, as a
 * backend would at model load. A reorder of activations between layers
 * would not be timed: convlibs.sh prints the formats oneDNN chose
 * (ONEDNN_VERBOSE) so that a reader can tell whether there is one.
 *
 * Output: one "layer" line per layer and mode (median of --reps runs), one
 * "total" line per mode (median of whole-stack runs), "diff" lines (max
 * abs difference of each library's output against the engine's, per
 * layer), "onednn_impl" lines (the implementation oneDNN chose per layer)
 * and "xnnpack_pc" lines (the hottest code addresses inside libXNNPACK, from
 * a SIGPROF sampler, which convlibs.sh disassembles to tell the ISA).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <ucontext.h>

#include <oneapi/dnnl/dnnl.h>
#include <pthreadpool.h>
#include <xnnpack.h>

#include "wtt_backend_cpu.h"
#include "wtt_shape.h"

void omp_set_num_threads(int n);

/* ------------------------------------------------------------------ */
/* Layers                                                              */

struct layer {
    char name[32];
    int  count;                 /* times per window (same shape) */
    int  H, W, C, KH, KW, O, sh, sw;
    enum wtt_padding pad;
    int  bias, relu;
    /* geometry from the engine's rules */
    int  OH, OW, pt, pb, pl, pr;
    double flops;               /* per window, count included */
    /* data, shared read-only by every implementation and thread */
    float *x, *w_hwio, *w_ohwi, *b;
    float *ref;                 /* the engine's output */
    size_t nout;
};

#define MAX_LAYERS 32
static struct layer L[MAX_LAYERS];
static int nl;

static uint64_t rng = 0x2545F4914F6CDD1DULL;

static float
frand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float) ((double) (rng >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

static void
add_layer(const char *name, int count, int H, int W, int C, int KH, int KW,
          int O, int sh, int sw, enum wtt_padding pad, int bias, int relu)
{
    struct layer *l = &L[nl++];

    snprintf(l->name, sizeof(l->name), "%s", name);
    l->count = count;
    l->H = H; l->W = W; l->C = C; l->KH = KH; l->KW = KW; l->O = O;
    l->sh = sh; l->sw = sw; l->pad = pad; l->bias = bias; l->relu = relu;
}

static int
geometry(struct layer *l)
{
    struct wtt_tensor     x = {0}, w = {0}, b = {0};
    struct wtt_node       n = {0};
    struct wtt_shape_conv g;
    const char           *err = NULL;

    x.dtype = w.dtype = b.dtype = WTT_F32;
    x.rank = w.rank = 4;
    b.rank = 1;
    x.ne[0] = 1; x.ne[1] = l->H; x.ne[2] = l->W; x.ne[3] = l->C;
    w.ne[0] = l->KH; w.ne[1] = l->KW; w.ne[2] = l->C; w.ne[3] = l->O;
    b.ne[0] = l->O;
    n.op = WTT_OP_CONV2D;
    n.nsrc = l->bias ? 3 : 2;
    n.src[0] = &x; n.src[1] = &w; n.src[2] = &b;
    n.strides[0] = n.strides[3] = 1;
    n.strides[1] = l->sh; n.strides[2] = l->sw;
    n.dilations[0] = n.dilations[1] = n.dilations[2] = n.dilations[3] = 1;
    n.padding = l->pad;
    n.fused_bias = l->bias;
    if (wtt_shape_conv2d(&n, &g, &err) != 0) {
        fprintf(stderr, "convlibs: %s: %s\n", l->name, err);
        return -1;
    }
    l->OH = (int) g.OH; l->OW = (int) g.OW;
    l->pt = (int) g.pt; l->pb = (int) g.pb;
    l->pl = (int) g.pl; l->pr = (int) g.pr;
    l->flops = 2.0 * l->count * l->OH * l->OW * l->O * l->KH * l->KW * l->C;
    l->nout = (size_t) l->OH * l->OW * l->O;
    return 0;
}

static float *
fill(size_t n, float scale)
{
    float *p = malloc(n * sizeof(float));

    if (p == NULL) {
        fprintf(stderr, "convlibs: out of memory\n");
        exit(1);
    }
    for (size_t i = 0; i < n; i++) {
        p[i] = frand() * scale;
    }
    return p;
}

static void
build_layers(void)
{
    /* flops.lua's low-pass output widths: VALID, stride 2 */
    static const int lp[] = {21922, 10961, 5480, 2740, 1370, 685, 342, 171};
    char name[32];

    for (int i = 0; i < 8; i++) {
        snprintf(name, sizeof(name), "lowpass%d", i);
        add_layer(name, 1, 1, (lp[i] - 1) * 2 + 256, 1, 1, 256, 1, 1, 2,
                  WTT_PAD_VALID, 0, 0);
    }
    for (int s = 256; s >= 1; s /= 2) {
        snprintf(name, sizeof(name), "cqt_s%d", s);
        add_layer(name, 2, 1, (172 - 1) * s + 256, 1, 1, 256, 36, 1, s,
                  WTT_PAD_VALID, 0, 0);
    }
    add_layer("harm_3x39x8", 1, 172, 264, 8, 3, 39, 8, 1, 1, WTT_PAD_SAME,
              1, 1);
    add_layer("contour_5x5x8", 1, 172, 264, 8, 5, 5, 1, 1, 1, WTT_PAD_SAME,
              1, 0);
    add_layer("note_7x7x1", 1, 172, 264, 1, 7, 7, 32, 1, 3, WTT_PAD_SAME,
              1, 1);
    add_layer("note_7x3x32", 1, 172, 88, 32, 7, 3, 1, 1, 1, WTT_PAD_SAME,
              1, 0);
    add_layer("onset_5x5x8", 1, 172, 264, 8, 5, 5, 32, 1, 3, WTT_PAD_SAME,
              1, 1);
    add_layer("onset_3x3x33", 1, 172, 88, 33, 3, 3, 1, 1, 1, WTT_PAD_SAME,
              1, 0);

    for (int i = 0; i < nl; i++) {
        struct layer *l = &L[i];
        size_t        nw = (size_t) l->KH * l->KW * l->C * l->O;
        if (geometry(l) != 0) {
            exit(1);
        }
        l->x = fill((size_t) l->H * l->W * l->C, 1.0f);
        l->w_hwio = fill(nw, 1.0f / sqrtf((float) (l->KH * l->KW * l->C)));
        l->b = fill((size_t) l->O, 0.1f);
        /* XNNPACK's filter layout: [O][KH][KW][C] */
        l->w_ohwi = malloc(nw * sizeof(float));
        for (int kh = 0; kh < l->KH; kh++)
            for (int kw = 0; kw < l->KW; kw++)
                for (int c = 0; c < l->C; c++)
                    for (int o = 0; o < l->O; o++)
                        l->w_ohwi[((o * l->KH + kh) * l->KW + kw) * l->C + c] =
                            l->w_hwio[((kh * l->KW + kw) * l->C + c) * l->O
                                      + o];
    }
}

/* ------------------------------------------------------------------ */
/* Implementations: prepare once, run timed, read the output           */

enum impl { ENGINE, ONEDNN, XNNPACK };
static const char *impl_name[] = {"engine", "onednn", "xnnpack"};

struct engine_layer {
    struct wtt_tensor x, w, b;
    struct wtt_node   n;
};

struct dnnl_layer {
    dnnl_primitive_t conv;
    dnnl_memory_t    src, wei, bia, dst, dst_user;
    dnnl_primitive_t dst_reorder;      /* NULL when dst is nhwc already */
    const char      *impl;
};

struct inst {
    enum impl impl;
    int       lib_threads;
    struct engine_layer eng[MAX_LAYERS];
    struct dnnl_layer   dn[MAX_LAYERS];
    dnnl_engine_t       deng;
    dnnl_stream_t       dstream;
    xnn_operator_t      xop[MAX_LAYERS];
    float              *xout[MAX_LAYERS];
    pthreadpool_t       pool;
};

#define DN(call)                                                           \
    do {                                                                   \
        dnnl_status_t st_ = (call);                                        \
        if (st_ != dnnl_success) {                                         \
            fprintf(stderr, "convlibs: %s: oneDNN status %d\n", #call,     \
                    (int) st_);                                            \
            return -1;                                                     \
        }                                                                  \
    } while (0)

static int
dnnl_reorder_once(struct inst *in, dnnl_memory_t from, dnnl_memory_t to)
{
    const dnnl_memory_desc_t *fmd, *tmd;
    dnnl_primitive_desc_t     rpd;
    dnnl_primitive_t          r;
    dnnl_exec_arg_t           args[2];

    DN(dnnl_memory_get_memory_desc(from, &fmd));
    DN(dnnl_memory_get_memory_desc(to, &tmd));
    DN(dnnl_reorder_primitive_desc_create(&rpd, fmd, in->deng, tmd, in->deng,
                                          NULL));
    DN(dnnl_primitive_create(&r, rpd));
    dnnl_primitive_desc_destroy(rpd);
    args[0].arg = DNNL_ARG_FROM; args[0].memory = from;
    args[1].arg = DNNL_ARG_TO; args[1].memory = to;
    DN(dnnl_primitive_execute(r, in->dstream, 2, args));
    DN(dnnl_stream_wait(in->dstream));
    dnnl_primitive_destroy(r);
    return 0;
}

/* A memory in the primitive's format `want`, filled from user data of
 * `user_tag` (reordered once, here). */
static int
dnnl_mem_from(struct inst *in, const dnnl_memory_desc_t *want, int ndims,
              const dnnl_dims_t dims, dnnl_format_tag_t user_tag,
              float *data, dnnl_memory_t *out)
{
    dnnl_memory_desc_t umd;
    dnnl_memory_t      um;

    DN(dnnl_memory_desc_init_by_tag(&umd, ndims, dims, dnnl_f32, user_tag));
    DN(dnnl_memory_create(&um, &umd, in->deng, data));
    if (dnnl_memory_desc_equal(&umd, want)) {
        *out = um;
        return 0;
    }
    DN(dnnl_memory_create(out, want, in->deng, DNNL_MEMORY_ALLOCATE));
    if (dnnl_reorder_once(in, um, *out) != 0) {
        return -1;
    }
    dnnl_memory_destroy(um);
    return 0;
}

static int
dnnl_prepare(struct inst *in, int i)
{
    struct layer          *l = &L[i];
    struct dnnl_layer     *d = &in->dn[i];
    dnnl_memory_desc_t     src_any, wei_any, bia_md, dst_any, dst_umd;
    dnnl_convolution_desc_t cd;
    dnnl_primitive_attr_t  attr;
    dnnl_post_ops_t        po;
    dnnl_primitive_desc_t  pd;
    dnnl_dims_t sdims = {1, l->C, l->H, l->W};
    dnnl_dims_t wdims = {l->O, l->C, l->KH, l->KW};
    dnnl_dims_t bdims = {l->O};
    dnnl_dims_t ddims = {1, l->O, l->OH, l->OW};
    dnnl_dims_t strides = {l->sh, l->sw};
    dnnl_dims_t padl = {l->pt, l->pl}, padr = {l->pb, l->pr};
    const char *impl = NULL;

    DN(dnnl_memory_desc_init_by_tag(&src_any, 4, sdims, dnnl_f32,
                                    dnnl_format_tag_any));
    DN(dnnl_memory_desc_init_by_tag(&wei_any, 4, wdims, dnnl_f32,
                                    dnnl_format_tag_any));
    DN(dnnl_memory_desc_init_by_tag(&bia_md, 1, bdims, dnnl_f32, dnnl_a));
    DN(dnnl_memory_desc_init_by_tag(&dst_any, 4, ddims, dnnl_f32,
                                    dnnl_format_tag_any));
    DN(dnnl_convolution_forward_desc_init(&cd, dnnl_forward_inference,
                                          dnnl_convolution_auto, &src_any,
                                          &wei_any, l->bias ? &bia_md : NULL,
                                          &dst_any, strides, padl, padr));
    DN(dnnl_primitive_attr_create(&attr));
    if (l->relu) {
        DN(dnnl_post_ops_create(&po));
        DN(dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_relu, 0.0f,
                                        0.0f));
        DN(dnnl_primitive_attr_set_post_ops(attr, po));
        dnnl_post_ops_destroy(po);
    }
    DN(dnnl_primitive_desc_create(&pd, &cd, attr, in->deng, NULL));
    dnnl_primitive_attr_destroy(attr);
    DN(dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl));
    d->impl = strdup(impl);
    if (dnnl_mem_from(in, dnnl_primitive_desc_query_md(pd, dnnl_query_src_md,
                                                       0),
                      4, sdims, dnnl_nhwc, l->x, &d->src) != 0
        || dnnl_mem_from(in, dnnl_primitive_desc_query_md(
                                 pd, dnnl_query_weights_md, 0),
                         4, wdims, dnnl_hwio, l->w_hwio, &d->wei) != 0)
    {
        return -1;
    }
    DN(dnnl_memory_create(&d->bia, &bia_md, in->deng, l->b));
    DN(dnnl_memory_create(&d->dst, dnnl_primitive_desc_query_md(
                                        pd, dnnl_query_dst_md, 0),
                          in->deng, DNNL_MEMORY_ALLOCATE));
    DN(dnnl_memory_desc_init_by_tag(&dst_umd, 4, ddims, dnnl_f32, dnnl_nhwc));
    DN(dnnl_memory_create(&d->dst_user, &dst_umd, in->deng,
                          DNNL_MEMORY_ALLOCATE));
    DN(dnnl_primitive_create(&d->conv, pd));
    dnnl_primitive_desc_destroy(pd);
    return 0;
}

static int
dnnl_run(struct inst *in, int i)
{
    struct dnnl_layer *d = &in->dn[i];
    dnnl_exec_arg_t    args[4] = {
        {DNNL_ARG_SRC, d->src}, {DNNL_ARG_WEIGHTS, d->wei},
        {DNNL_ARG_DST, d->dst}, {DNNL_ARG_BIAS, d->bia}};

    DN(dnnl_primitive_execute(d->conv, in->dstream, L[i].bias ? 4 : 3, args));
    DN(dnnl_stream_wait(in->dstream));
    return 0;
}

static int
xnn_prepare(struct inst *in, int i)
{
    struct layer     *l = &L[i];
    enum xnn_status   st;

    in->xout[i] = malloc(l->nout * sizeof(float));
    st = xnn_create_convolution2d_nhwc_f32(
        l->pt, l->pr, l->pb, l->pl, l->KH, l->KW, l->sh, l->sw, 1, 1, 1,
        l->C, l->O, l->C, l->O, l->w_ohwi, l->bias ? l->b : NULL,
        l->relu ? 0.0f : -INFINITY, INFINITY, 0, &in->xop[i]);
    if (st != xnn_status_success) {
        fprintf(stderr, "convlibs: xnnpack: %s: create status %d\n", l->name,
                (int) st);
        return -1;
    }
    st = xnn_setup_convolution2d_nhwc_f32(in->xop[i], 1, l->H, l->W, l->x,
                                          in->xout[i], in->pool);
    if (st != xnn_status_success) {
        fprintf(stderr, "convlibs: xnnpack: %s: setup status %d\n", l->name,
                (int) st);
        return -1;
    }
    return 0;
}

static int
engine_prepare(struct inst *in, int i)
{
    struct layer        *l = &L[i];
    struct engine_layer *e = &in->eng[i];

    e->x.dtype = e->w.dtype = e->b.dtype = WTT_F32;
    e->x.rank = e->w.rank = 4;
    e->b.rank = 1;
    e->x.ne[0] = 1; e->x.ne[1] = l->H; e->x.ne[2] = l->W; e->x.ne[3] = l->C;
    e->w.ne[0] = l->KH; e->w.ne[1] = l->KW; e->w.ne[2] = l->C;
    e->w.ne[3] = l->O;
    e->b.ne[0] = l->O;
    e->x.data = l->x; e->w.data = l->w_hwio; e->b.data = l->b;
    e->n.op = WTT_OP_CONV2D;
    e->n.name = l->name;
    e->n.nsrc = l->bias ? 3 : 2;
    e->n.src[0] = &e->x; e->n.src[1] = &e->w; e->n.src[2] = &e->b;
    e->n.strides[0] = e->n.strides[3] = 1;
    e->n.strides[1] = l->sh; e->n.strides[2] = l->sw;
    for (int k = 0; k < 4; k++) {
        e->n.dilations[k] = 1;
    }
    e->n.padding = l->pad;
    e->n.fused_bias = l->bias;
    e->n.fused_relu = l->relu;
    if (!wtt_backend_cpu.supports_op(&e->n)) {
        fprintf(stderr, "convlibs: engine refuses %s\n", l->name);
        return -1;
    }
    return 0;
}

static int
run_layer(struct inst *in, int i)
{
    const char *err = NULL;

    switch (in->impl) {
    case ENGINE:
        if (wtt_backend_cpu.compute(&in->eng[i].n, &err) != 0) {
            fprintf(stderr, "convlibs: engine: %s: %s\n", L[i].name, err);
            return -1;
        }
        return 0;
    case ONEDNN:
        return dnnl_run(in, i);
    case XNNPACK:
        if (xnn_run_operator(in->xop[i], in->pool) != xnn_status_success) {
            fprintf(stderr, "convlibs: xnnpack: %s: run failed\n", L[i].name);
            return -1;
        }
        return 0;
    }
    return -1;
}

static int
prepare(struct inst *in)
{
    if (in->impl == ONEDNN) {
        omp_set_num_threads(in->lib_threads);
        DN(dnnl_engine_create(&in->deng, dnnl_cpu, 0));
        DN(dnnl_stream_create(&in->dstream, in->deng,
                              dnnl_stream_default_flags));
    }
    if (in->impl == XNNPACK && in->lib_threads > 1) {
        in->pool = pthreadpool_create((size_t) in->lib_threads);
    }
    for (int i = 0; i < nl; i++) {
        int rc = in->impl == ENGINE   ? engine_prepare(in, i)
                 : in->impl == ONEDNN ? dnnl_prepare(in, i)
                                      : xnn_prepare(in, i);
        if (rc != 0) {
            return -1;
        }
    }
    return 0;
}

/* The output of layer i in NHWC (oneDNN's reordered back, untimed). */
static const float *
output(struct inst *in, int i)
{
    struct dnnl_layer *d = &in->dn[i];
    void              *p = NULL;

    switch (in->impl) {
    case ENGINE:
        return in->eng[i].n.out.data;
    case XNNPACK:
        return in->xout[i];
    case ONEDNN:
        if (dnnl_reorder_once(in, d->dst, d->dst_user) != 0
            || dnnl_memory_get_data_handle(d->dst_user, &p) != dnnl_success)
        {
            return NULL;
        }
        return p;
    }
    return NULL;
}

/* ------------------------------------------------------------------ */
/* XNNPACK's ISA: where its threads spend their time                   */

#define PC_MAX 65536
static volatile uintptr_t pcs[PC_MAX];
static volatile int       npc;

static void
on_prof(int sig, siginfo_t *si, void *uc_)
{
    ucontext_t *uc = uc_;
    int         k = __atomic_fetch_add(&npc, 1, __ATOMIC_RELAXED);

    (void) sig;
    (void) si;
    if (k < PC_MAX) {
        pcs[k] = (uintptr_t) uc->uc_mcontext.gregs[REG_RIP];
    }
}

static void
sampler(int on)
{
    struct itimerval  it = {{0, 0}, {0, 0}};
    struct sigaction  sa;

    if (on) {
        memset(&sa, 0, sizeof(sa));
        sa.sa_sigaction = on_prof;
        sa.sa_flags = SA_SIGINFO | SA_RESTART;
        sigaction(SIGPROF, &sa, NULL);
        it.it_interval.tv_usec = it.it_value.tv_usec = 997;
    }
    setitimer(ITIMER_PROF, &it, NULL);
}

static int
cmp_count(const void *a, const void *b)
{
    const uintptr_t *x = a, *y = b;
    return x[1] < y[1] ? 1 : x[1] > y[1] ? -1 : 0;
}

/* The hottest sampled addresses inside libXNNPACK, as file offsets. */
static void
report_xnn_pcs(void)
{
    static uintptr_t hist[4096][2];
    int              nh = 0, n = npc < PC_MAX ? npc : PC_MAX, inlib = 0;
    const char      *lib = NULL;

    for (int k = 0; k < n; k++) {
        Dl_info info;
        int     j;
        if (dladdr((void *) pcs[k], &info) == 0 || info.dli_fname == NULL
            || strstr(info.dli_fname, "XNNPACK") == NULL)
        {
            continue;
        }
        lib = info.dli_fname;
        inlib++;
        uintptr_t off = pcs[k] - (uintptr_t) info.dli_fbase;
        for (j = 0; j < nh && hist[j][0] != off; j++) {
        }
        if (j == nh && nh < 4096) {
            hist[nh][0] = off;
            hist[nh++][1] = 0;
        }
        if (j < nh) {
            hist[j][1]++;
        }
    }
    qsort(hist, (size_t) nh, sizeof(hist[0]), cmp_count);
    printf("xnnpack_samples total=%d in_lib=%d lib=%s\n", n, inlib,
           lib ? lib : "-");
    for (int j = 0; j < nh && j < 8; j++) {
        printf("xnnpack_pc lib=%s off=0x%lx samples=%lu\n", lib,
               (unsigned long) hist[j][0], (unsigned long) hist[j][1]);
    }
}

/* ------------------------------------------------------------------ */
/* Timing                                                              */

static double
now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *) a, y = *(const double *) b;
    return x < y ? -1 : x > y;
}

static double
median(double *v, int n)
{
    qsort(v, (size_t) n, sizeof(double), cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

struct mode {
    enum impl impl;
    int       lib_threads;      /* inside each convolution */
    int       windows;          /* threads, one window each */
    const char *label;
};

struct run {
    const struct mode *m;
    struct inst       *inst;    /* [windows] */
    pthread_barrier_t  bar;
    int                reps, failed;
    double            *total;   /* [reps] */
    double            *layer;   /* [nl][reps] */
};

struct worker {
    struct run *r;
    int         id;
};

static int
run_stack(struct inst *in)
{
    for (int i = 0; i < nl; i++) {
        for (int c = 0; c < L[i].count; c++) {
            if (run_layer(in, i) != 0) {
                return -1;
            }
        }
    }
    return 0;
}

static void *
worker_main(void *arg)
{
    struct worker *wk = arg;
    struct run    *r = wk->r;
    struct inst   *in = &r->inst[wk->id];
    double         t0;
    int            fail = 0;

    /* Made on the thread that runs it: oneDNN sizes its OpenMP team from
     * the thread's setting when the primitive is created. */
    in->impl = r->m->impl;
    in->lib_threads = r->m->lib_threads;
    if (prepare(in) != 0) {
        fail = 1;
    }
    /* warm-up: first touch of buffers, lazy library state */
    for (int k = 0; k < 2 && !fail; k++) {
        fail = run_stack(in) != 0;
    }
    pthread_barrier_wait(&r->bar);
    if (fail) {
        r->failed = 1;
    }
    pthread_barrier_wait(&r->bar);
    if (r->failed) {
        return NULL;
    }
    /* XNNPACK's ISA: sample only the timed runs, not the setup. */
    if (wk->id == 0 && in->impl == XNNPACK) {
        npc = 0;
        sampler(1);
    }
    /* Whole stacks, the windows in parallel; then layer by layer with a
     * barrier between layers, for the per-layer figures. */
    for (int k = 0; k < r->reps; k++) {
        pthread_barrier_wait(&r->bar);
        t0 = now();
        if (run_stack(in) != 0) {
            r->failed = 1;
        }
        pthread_barrier_wait(&r->bar);
        if (wk->id == 0) {
            r->total[k] = now() - t0;
        }
    }
    for (int k = 0; k < r->reps; k++) {
        for (int i = 0; i < nl; i++) {
            pthread_barrier_wait(&r->bar);
            t0 = now();
            for (int c = 0; c < L[i].count; c++) {
                if (run_layer(in, i) != 0) {
                    r->failed = 1;
                }
            }
            pthread_barrier_wait(&r->bar);
            if (wk->id == 0) {
                r->layer[i * r->reps + k] = now() - t0;
            }
        }
    }
    if (wk->id == 0 && in->impl == XNNPACK) {
        sampler(0);
    }
    return NULL;
}

static double total_flops;

static int
measure(const struct mode *m, int reps, int check)
{
    struct run     r = {0};
    struct worker  wk[16];
    pthread_t      th[16];
    double         med, fl;

    r.m = m;
    r.reps = reps;
    r.inst = calloc((size_t) m->windows, sizeof(struct inst));
    r.total = calloc((size_t) reps, sizeof(double));
    r.layer = calloc((size_t) (reps * nl), sizeof(double));
    pthread_barrier_init(&r.bar, NULL, (unsigned) m->windows);
    for (int t = 0; t < m->windows; t++) {
        wk[t].r = &r;
        wk[t].id = t;
        pthread_create(&th[t], NULL, worker_main, &wk[t]);
    }
    for (int t = 0; t < m->windows; t++) {
        pthread_join(th[t], NULL);
    }
    if (r.failed) {
        printf("total impl=%s mode=%s status=failed\n", impl_name[m->impl],
               m->label);
        return -1;
    }
    for (int i = 0; i < nl; i++) {
        med = median(r.layer + i * reps, reps);
        fl = L[i].flops * m->windows;
        printf("layer impl=%s mode=%s name=%s ms=%.4f gflops=%.1f\n",
               impl_name[m->impl], m->label, L[i].name, med * 1e3,
               fl / med / 1e9);
    }
    med = median(r.total, reps);
    printf("total impl=%s mode=%s threads=%d ms=%.3f gflops=%.1f\n",
           impl_name[m->impl], m->label, m->lib_threads * m->windows,
           med * 1e3, total_flops * m->windows / med / 1e9);
    if (m->impl == ONEDNN && check) {
        for (int i = 0; i < nl; i++) {
            printf("onednn_impl name=%s impl=%s\n", L[i].name,
                   r.inst[0].dn[i].impl);
        }
    }
    if (m->impl == XNNPACK && check) {
        report_xnn_pcs();
    }
    /* Every window's output against the engine's: per layer in the
     * one-thread mode, the largest over the stack in the others. */
    double worst = 0;
    int    missing = 0;
    for (int i = 0; i < nl; i++) {
        double d = 0, mag = 0;
        for (int t = 0; t < m->windows; t++) {
            const float *o = output(&r.inst[t], i);
            if (o == NULL) {
                missing = 1;
                continue;
            }
            for (size_t k = 0; k < L[i].nout; k++) {
                double e = fabs((double) o[k] - L[i].ref[k]);
                d = e > d ? e : d;
                mag = fabs(L[i].ref[k]) > mag ? fabs(L[i].ref[k]) : mag;
            }
        }
        worst = d > worst ? d : worst;
        if (check && m->impl != ENGINE) {
            printf("diff impl=%s name=%s max_abs=%.3g max_ref=%.3g\n",
                   impl_name[m->impl], L[i].name, d, mag);
        }
    }
    printf("diff_stack impl=%s mode=%s max_abs=%.3g%s\n", impl_name[m->impl],
           m->label, worst, missing ? " status=output-missing" : "");
    return 0;
}

int
main(int argc, char **argv)
{
    int reps = 21, rc = 0;
    const char *only = NULL;
    struct inst ref = {0};

    for (int a = 1; a < argc; a++) {
        if (strcmp(argv[a], "--reps") == 0 && a + 1 < argc) {
            reps = atoi(argv[++a]);
        } else if (strcmp(argv[a], "--seed") == 0 && a + 1 < argc) {
            rng = strtoull(argv[++a], NULL, 0) | 1;     /* xorshift: not 0 */
        } else if (strcmp(argv[a], "--only") == 0 && a + 1 < argc) {
            only = argv[++a];
        } else {
            fprintf(stderr, "usage: wtt_convlibs [--reps N] [--seed N] "
                            "[--only engine|onednn|xnnpack]\n");
            return 2;
        }
    }
    if (reps < 1) {
        reps = 1;
    }
    if (xnn_initialize(NULL) != xnn_status_success) {
        fprintf(stderr, "convlibs: xnn_initialize failed\n");
        return 1;
    }
    build_layers();
    for (int i = 0; i < nl; i++) {
        total_flops += L[i].flops;
        printf("shape name=%s count=%d in=%dx%dx%d filter=%dx%dx%dx%d "
               "stride=%dx%d pad=%d,%d,%d,%d out=%dx%dx%d gflop=%.4f\n",
               L[i].name, L[i].count, L[i].H, L[i].W, L[i].C, L[i].KH,
               L[i].KW, L[i].C, L[i].O, L[i].sh, L[i].sw, L[i].pt, L[i].pb,
               L[i].pl, L[i].pr, L[i].OH, L[i].OW, L[i].O, L[i].flops / 1e9);
    }
    printf("stack gflop_per_window=%.4f layers=%d\n", total_flops / 1e9, nl);

    /* The reference outputs: the engine's, once. */
    ref.impl = ENGINE;
    ref.lib_threads = 1;
    if (prepare(&ref) != 0) {
        return 1;
    }
    for (int i = 0; i < nl; i++) {
        if (run_layer(&ref, i) != 0) {
            return 1;
        }
        L[i].ref = ref.eng[i].n.out.data;
    }

    static const struct mode modes[] = {
        {ENGINE, 1, 1, "1t"},
        {ENGINE, 1, 2, "2win"},
        {XNNPACK, 1, 1, "1t"},
        {XNNPACK, 2, 1, "2t-intra"},
        {XNNPACK, 1, 2, "2win"},
        /* oneDNN last: its OpenMP threads spin for a while after a
         * parallel region and would steal cycles from what follows. */
        {ONEDNN, 1, 1, "1t"},
        {ONEDNN, 1, 2, "2win"},
        {ONEDNN, 2, 1, "2t-intra"},
    };
    for (size_t k = 0; k < sizeof(modes) / sizeof(modes[0]); k++) {
        if (only != NULL && strcmp(only, impl_name[modes[k].impl]) != 0) {
            continue;
        }
        if (measure(&modes[k], reps, modes[k].windows == 1
                                         && modes[k].lib_threads == 1) != 0) {
            rc = 1;
        }
        fflush(stdout);
    }
    return rc;
}
