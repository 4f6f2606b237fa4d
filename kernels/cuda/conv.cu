/*
 * conv.cu: Conv2D and _FusedConv2D (BiasAdd, then optional Relu) with
 * cuDNN, NHWC input, TF's HWIO filter, strides, dilations, SAME/VALID
 * padding as TensorFlow defines them. Device build only: the host
 * emulation runs the CPU's convolution instead (emu/conv.cpp), with the
 * same geometry, padding and epilogue (conv_body.cuh); what is cuDNN's
 * here is checked only on a GPU (spec/05-engine/07-cuda_parity_spec.lua).
 *
 * Layout: the activations stay NHWC, the graph's own layout, so no node
 * pays a transpose in and out; only the filter is rearranged, once, into
 * cuDNN's NHWC filter layout (KRSC) and kept on the device in n->scratch
 * with the descriptors.
 *
 * Algorithm: chosen once per input shape (the batch size), on the node's
 * first run at that shape (the planner's warm-up run at load time for the
 * default batch), and kept for up to CONV_PLANS shapes (a file's last,
 * smaller batch does not make the full one plan again), with
 * cudnnFindConvolutionForwardAlgorithm, among the
 * algorithms that succeed with a workspace of at most
 * WTT_CUDA_WORKSPACE_MAX and that do not use tensor-op math. The
 * descriptor's math type is CUDNN_FMA_MATH and is never changed, so TF32
 * is never used: the posteriorgrams are float32 sums (in cuDNN's order,
 * not the CPU's, hence the parity spec's tolerance). Find synchronizes and
 * allocates, so a backend that records runs as CUDA graphs must start
 * recording from the second run at a batch size.
 *
 * Padding: cuDNN pads symmetrically. TF's SAME puts the odd row or column
 * after; then the input is padded explicitly (pad_nhwc_body) and the
 * convolution runs VALID on it. (Basic Pitch's layers all split evenly.)
 *
 * The epilogue (bias, Relu) is our own kernel, in place on the output:
 * the CPU's expression, so it adds no difference of its own.
 */
#include "conv_body.cuh"
#include "ops.h"
#include "runtime.h"

#include <stdlib.h>
#include <string.h>


/* Shapes a node keeps an algorithm for at once: the full batch, the tails
 * of files and of runs shared by files; beyond that the oldest is planned
 * again when it comes back. */
#define CONV_PLANS 8

/* The descriptors and algorithm for one input shape. */
typedef struct {
    struct wtt_shape_conv        geom;
    cudnnTensorDescriptor_t      x_desc, y_desc;
    cudnnConvolutionDescriptor_t conv_desc;
    cudnnConvolutionFwdAlgo_t    algo;
    size_t                       ws_need;
    int                          made;          /* descriptors exist */
    int                          ready;         /* geom planned */
} conv_plan;

typedef struct {
    struct wtt_cuda_ctx         *c;
    float                       *filter;        /* KRSC, on the device */
    const void                  *filter_src;    /* the HWIO it came from */
    size_t                       filter_bytes;
    float                       *padded;        /* explicit padding */
    size_t                       padded_cap;
    cudnnFilterDescriptor_t      w_desc;
    int                          have_w_desc;
    conv_plan                    plans[CONV_PLANS];
    int                          next;          /* the slot replaced next */
} conv_scratch;


/* The kind of a cuDNN status, with *err set: allocation failures may pass
 * at a smaller batch; a failed execution means the device is in trouble
 * (it marks the context faulted, as a sticky CUDA error does). */
static int
cudnn_kind(struct wtt_cuda_ctx *c, cudnnStatus_t s, const char **err)
{
    int cat = (int) s / 1000 * 1000;

    if (s == CUDNN_STATUS_SUCCESS) {
        return 0;
    }
    *err = cudnnGetErrorString(s);
    if (s == CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED
        || s == CUDNN_STATUS_INTERNAL_ERROR_DEVICE_ALLOCATION_FAILED)
    {
        return WTT_ENOMEM;
    }
    if (cat == CUDNN_STATUS_EXECUTION_FAILED) {
        c->faulted = 1;
        return WTT_EDEVICE;
    }
    return WTT_EFAIL;
}


/* Frees *p once the stream no longer reads it: queued work (an earlier
 * node of this run, or this node's last run) may still use the buffer
 * being replaced. Only on growth, so not on the hot path. */
static int
release(struct wtt_cuda_ctx *c, void **p, const char **err)
{
    int rc;

    if (*p == NULL) {
        return 0;
    }
    rc = wtt_cuda_rt_sync(c, err);
    if (rc != 0) {
        return rc;
    }
    wtt_cuda_rt_free(c, *p);
    *p = NULL;
    return 0;
}


/* NULL from the runtime's allocator: the device is gone or full. */
static int
alloc_failed(struct wtt_cuda_ctx *c, const char **err)
{
    if (c->faulted) {
        *err = "cuda backend: the device faulted earlier";
        return WTT_EDEVICE;
    }
    *err = "out of device memory";
    return WTT_ENOMEM;
}


static void
scratch_free(void *p)
{
    conv_scratch *s = (conv_scratch *) p;

    if (s == NULL) {
        return;
    }
    wtt_cuda_rt_free(s->c, s->filter);
    wtt_cuda_rt_free(s->c, s->padded);
    if (s->have_w_desc) {
        cudnnDestroyFilterDescriptor(s->w_desc);
    }
    for (int i = 0; i < CONV_PLANS; i++) {
        if (s->plans[i].made) {
            cudnnDestroyTensorDescriptor(s->plans[i].x_desc);
            cudnnDestroyTensorDescriptor(s->plans[i].y_desc);
            cudnnDestroyConvolutionDescriptor(s->plans[i].conv_desc);
        }
    }
    free(s);
}


/* The node's scratch, made on its first run. */
static int
scratch_of(struct wtt_node *n, struct wtt_cuda_ctx *c, conv_scratch **out,
           const char **err)
{
    conv_scratch *s = (conv_scratch *) n->scratch;
    cudnnStatus_t st;

    if (s != NULL) {
        *out = s;
        return 0;
    }
    s = (conv_scratch *) calloc(1, sizeof(*s));
    if (s == NULL) {
        *err = "out of memory";
        return WTT_ENOMEM;
    }
    s->c = c;
    n->scratch = s;
    n->scratch_free = scratch_free;
    st = cudnnCreateFilterDescriptor(&s->w_desc);
    if (st != CUDNN_STATUS_SUCCESS) {
        return cudnn_kind(c, st, err);
    }
    s->have_w_desc = 1;
    *out = s;
    return 0;
}


/* Makes the descriptors of plan slot `p` (once per slot). */
static int
plan_made(struct wtt_cuda_ctx *c, conv_plan *p, const char **err)
{
    cudnnStatus_t st;

    if (p->made) {
        return 0;
    }
    st = cudnnCreateTensorDescriptor(&p->x_desc);
    if (st == CUDNN_STATUS_SUCCESS) {
        st = cudnnCreateTensorDescriptor(&p->y_desc);
        if (st != CUDNN_STATUS_SUCCESS) {
            cudnnDestroyTensorDescriptor(p->x_desc);
        }
    }
    if (st == CUDNN_STATUS_SUCCESS) {
        st = cudnnCreateConvolutionDescriptor(&p->conv_desc);
        if (st != CUDNN_STATUS_SUCCESS) {
            cudnnDestroyTensorDescriptor(p->x_desc);
            cudnnDestroyTensorDescriptor(p->y_desc);
        }
    }
    if (st != CUDNN_STATUS_SUCCESS) {
        return cudnn_kind(c, st, err);
    }
    p->made = 1;
    return 0;
}


/* The filter in KRSC, made again only when the constant it reads moved. */
static int
filter_of(conv_scratch *s, const struct wtt_tensor *w,
          const struct wtt_shape_conv *g, const char **err)
{
    size_t           bytes = (size_t) (g->KH * g->KW * g->C * g->O) * 4;
    filter_krsc_body body;
    int              rc;

    if (s->filter != NULL && s->filter_src == w->data
        && s->filter_bytes == bytes)
    {
        return 0;
    }
    s->filter_src = NULL;
    if ((rc = release(s->c, (void **) &s->filter, err)) != 0) {
        return rc;
    }
    s->filter = (float *) wtt_cuda_rt_malloc(s->c, bytes);
    if (s->filter == NULL) {
        return alloc_failed(s->c, err);
    }
    s->filter_bytes = bytes;
    s->filter_src = w->data;
    body.src = (const float *) w->data;
    body.dst = s->filter;
    body.KH = g->KH;
    body.KW = g->KW;
    body.C = g->C;
    body.O = g->O;
    return wtt_launch(s->c, (int64_t) (bytes / 4), body, err);
}


/* The input with TF's uneven SAME padding made explicit. */
static int
pad_input(conv_scratch *s, const struct wtt_tensor *x,
          const struct wtt_shape_conv *g, const float **out, const char **err)
{
    int64_t       PH = g->H + g->pt + g->pb, PW = g->W + g->pl + g->pr;
    int64_t       total = g->N * PH * PW * g->C;
    size_t        bytes = (size_t) total * 4;
    pad_nhwc_body body;
    int           rc;

    if (s->padded_cap < bytes) {
        s->padded_cap = 0;
        if ((rc = release(s->c, (void **) &s->padded, err)) != 0) {
            return rc;
        }
        s->padded = (float *) wtt_cuda_rt_malloc(s->c, bytes);
        if (s->padded == NULL) {
            return alloc_failed(s->c, err);
        }
        s->padded_cap = bytes;
    }
    body.src = (const float *) x->data;
    body.dst = s->padded;
    body.H = g->H;
    body.W = g->W;
    body.C = g->C;
    body.PH = PH;
    body.PW = PW;
    body.pt = g->pt;
    body.pl = g->pl;
    *out = s->padded;
    return wtt_launch(s->c, total, body, err);
}


/* Not tensor-op math: what CUDNN_FMA_MATH asks for. */
static int
fma_only(cudnnMathType_t m)
{
    return m != CUDNN_TENSOR_OP_MATH
           && m != CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION;
}


/*
 * Sets plan p's descriptors for geometry g and picks the algorithm: the
 * fastest that Find timed, else the heuristics' first, that fits the
 * workspace ceiling with FMA math.
 */
static int
plan(conv_scratch *s, conv_plan *p, const struct wtt_shape_conv *g,
     const char **err)
{
    struct wtt_cuda_ctx          *c = s->c;
    int                           ih = (int) (g->H + (g->explicit_pad
                                                      ? g->pt + g->pb : 0));
    int                           iw = (int) (g->W + (g->explicit_pad
                                                      ? g->pl + g->pr : 0));
    int                           ph = g->explicit_pad ? 0 : (int) g->pt;
    int                           pw = g->explicit_pad ? 0 : (int) g->pl;
    int                           on, oc, oh, ow, got = 0, found = 0;
    cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
    cudnnStatus_t                 st;
    int                           rc;

    p->ready = 0;
    if ((rc = plan_made(c, p, err)) != 0) {
        return rc;
    }
    st = cudnnSetTensor4dDescriptor(p->x_desc, CUDNN_TENSOR_NHWC,
                                    CUDNN_DATA_FLOAT, (int) g->N, (int) g->C,
                                    ih, iw);
    if (st == CUDNN_STATUS_SUCCESS) {
        st = cudnnSetFilter4dDescriptor(s->w_desc, CUDNN_DATA_FLOAT,
                                        CUDNN_TENSOR_NHWC, (int) g->O,
                                        (int) g->C, (int) g->KH,
                                        (int) g->KW);
    }
    if (st == CUDNN_STATUS_SUCCESS) {
        st = cudnnSetConvolution2dDescriptor(p->conv_desc, ph, pw, g->sh,
                                             g->sw, g->dh, g->dw,
                                             CUDNN_CROSS_CORRELATION,
                                             CUDNN_DATA_FLOAT);
    }
    if (st == CUDNN_STATUS_SUCCESS) {
        st = cudnnSetConvolutionMathType(p->conv_desc, CUDNN_FMA_MATH);
    }
    if (st == CUDNN_STATUS_SUCCESS) {
        st = cudnnGetConvolution2dForwardOutputDim(p->conv_desc, p->x_desc,
                                                   s->w_desc, &on, &oc, &oh,
                                                   &ow);
    }
    if (st != CUDNN_STATUS_SUCCESS) {
        return cudnn_kind(c, st, err);
    }
    if (on != g->N || oc != g->O || oh != g->OH || ow != g->OW) {
        *err = "Conv2D: cuDNN's output shape differs from TensorFlow's";
        return WTT_EFAIL;
    }
    st = cudnnSetTensor4dDescriptor(p->y_desc, CUDNN_TENSOR_NHWC,
                                    CUDNN_DATA_FLOAT, on, oc, oh, ow);
    if (st != CUDNN_STATUS_SUCCESS) {
        return cudnn_kind(c, st, err);
    }

    /* Find times every algorithm, fastest first. */
    st = cudnnFindConvolutionForwardAlgorithm(c->cudnn, p->x_desc, s->w_desc,
                                              p->conv_desc, p->y_desc,
                                              CUDNN_CONVOLUTION_FWD_ALGO_COUNT,
                                              &got, perf);
    if (st != CUDNN_STATUS_SUCCESS) {
        int kind = cudnn_kind(c, st, err);
        if (kind == WTT_EDEVICE) {
            return kind;
        }
        got = 0;        /* the heuristics below decide */
    }
    for (int i = 0; i < got && !found; i++) {
        if (perf[i].status == CUDNN_STATUS_SUCCESS
            && perf[i].memory <= WTT_CUDA_WORKSPACE_MAX
            && fma_only(perf[i].mathType))
        {
            p->algo = perf[i].algo;
            found = 1;
        }
    }
    if (!found) {
        got = 0;
        st = cudnnGetConvolutionForwardAlgorithm_v7(
            c->cudnn, p->x_desc, s->w_desc, p->conv_desc, p->y_desc,
            CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &got, perf);
        if (st != CUDNN_STATUS_SUCCESS) {
            return cudnn_kind(c, st, err);
        }
        for (int i = 0; i < got && !found; i++) {
            if (perf[i].status == CUDNN_STATUS_SUCCESS
                && perf[i].memory <= WTT_CUDA_WORKSPACE_MAX
                && fma_only(perf[i].mathType))
            {
                p->algo = perf[i].algo;
                found = 1;
            }
        }
    }
    if (!found) {
        *err = "Conv2D: no cuDNN algorithm fits the workspace limit";
        return WTT_EFAIL;
    }
    st = cudnnGetConvolutionForwardWorkspaceSize(c->cudnn, p->x_desc,
                                                 s->w_desc, p->conv_desc,
                                                 p->y_desc, p->algo,
                                                 &p->ws_need);
    if (st != CUDNN_STATUS_SUCCESS) {
        return cudnn_kind(c, st, err);
    }
    p->geom = *g;
    p->ready = 1;
    return 0;
}


/* The plan for geometry g: kept from an earlier run at that shape, or
 * made now in the slot used longest ago. */
static int
plan_for(conv_scratch *s, const struct wtt_shape_conv *g, conv_plan **out,
         const char **err)
{
    conv_plan *p;
    int        rc;

    for (int i = 0; i < CONV_PLANS; i++) {
        if (s->plans[i].ready
            && memcmp(&s->plans[i].geom, g, sizeof(*g)) == 0)
        {
            *out = &s->plans[i];
            return 0;
        }
    }
    p = &s->plans[s->next];
    s->next = (s->next + 1) % CONV_PLANS;
    if ((rc = plan(s, p, g, err)) != 0) {
        return rc;
    }
    *out = p;
    return 0;
}


/* Grows the context's cuDNN workspace to `need` bytes. */
static int
workspace(struct wtt_cuda_ctx *c, size_t need, const char **err)
{
    int rc;

    if (need <= c->workspace_size) {
        return 0;
    }
    c->workspace_size = 0;
    if ((rc = release(c, &c->workspace, err)) != 0) {
        return rc;
    }
    c->workspace = wtt_cuda_rt_malloc(c, need);
    if (c->workspace == NULL) {
        return alloc_failed(c, err);
    }
    c->workspace_size = need;
    return 0;
}


extern "C" int
wtt_cuda_op_conv2d(struct wtt_node *n, const char **err)
{
    struct wtt_cuda_ctx  *c = (struct wtt_cuda_ctx *) n->ctx;
    struct wtt_shape_conv g;
    conv_scratch         *s;
    conv_plan            *p;
    const float          *x;
    int64_t               ne[4], total;
    const float           one = 1.0f, zero = 0.0f;
    cudnnStatus_t         st;
    int                   rc;

    if (n->op != WTT_OP_CONV2D) {
        *err = "conv: not a convolution";
        return WTT_EFAIL;
    }
    if ((rc = wtt_shape_conv2d(n, &g, err)) != 0) {
        return rc;
    }
    ne[0] = g.N;
    ne[1] = g.OH;
    ne[2] = g.OW;
    ne[3] = g.O;
    rc = wtt_cuda_tensor_alloc(c, &n->out, WTT_F32, 4, ne, err);
    if (rc != 0) {
        return rc;
    }
    total = g.N * g.OH * g.OW * g.O;
    if (total == 0) {
        return 0;
    }
    if ((rc = scratch_of(n, c, &s, err)) != 0
        || (rc = filter_of(s, n->src[1], &g, err)) != 0)
    {
        return rc;
    }
    x = (const float *) n->src[0]->data;
    if (g.explicit_pad && (rc = pad_input(s, n->src[0], &g, &x, err)) != 0) {
        return rc;
    }
    if ((rc = plan_for(s, &g, &p, err)) != 0
        || (rc = workspace(c, p->ws_need, err)) != 0)
    {
        return rc;
    }
    st = cudnnConvolutionForward(c->cudnn, &one, p->x_desc, x, s->w_desc,
                                 s->filter, p->conv_desc, p->algo,
                                 c->workspace, p->ws_need, &zero, p->y_desc,
                                 n->out.data);
    if (st != CUDNN_STATUS_SUCCESS) {
        return cudnn_kind(c, st, err);
    }
    if (!n->fused_bias && !n->fused_relu) {
        return 0;
    }
    return conv_epilogue(c, n, (const float *) n->out.data,
                         (float *) n->out.data, total, err);
}
