/*
 * conv_body.cuh: the convolution's geometry and its own kernels, private to
 * kernels/cuda/ and shared by conv.cu (cuDNN, on the device) and
 * emu/conv.cpp (the host emulation, which runs the CPU's convolution), so
 * that the emulation runs the same geometry, the same explicit padding and
 * the same epilogue as the device:
 *
 *   - conv_geom: output size and padding per TensorFlow's SAME/VALID rules
 *     (kernels/cpu/conv.c's out_dim). cuDNN pads symmetrically; when SAME
 *     splits a dimension's padding unevenly (TF puts the extra row or
 *     column after), the input is padded explicitly with zeros and the
 *     convolution runs VALID on it;
 *   - pad_nhwc_body: that explicit padding;
 *   - filter_krsc_body: TF's HWIO filter as cuDNN's KRSC (the NHWC filter
 *     layout: output channel, row, column, input channel);
 *   - bias_act_body: the _FusedConv2D epilogue, bias then Relu, one pass
 *     over the output. The CPU adds the bias to the finished sum and then
 *     clamps at zero (`v = v + bias; if (relu && v < 0) v = 0`): the same
 *     expression here gives the same bits for the same sums.
 */
#ifndef WTT_CUDA_CONV_BODY_CUH
#define WTT_CUDA_CONV_BODY_CUH

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "launch.h"

/* One convolution's shapes, as the node asks for them. */
struct conv_geom {
    int64_t N, H, W, C;         /* input, NHWC */
    int64_t KH, KW, O;          /* filter, HWIO */
    int64_t OH, OW;             /* output */
    int     sh, sw, dh, dw;
    int64_t pt, pb, pl, pr;     /* padding before/after, rows and columns */
    int     explicit_pad;       /* uneven SAME: pad, then run VALID */
};


/* Output size and padding of one dimension (TensorFlow's rule). */
static inline void
conv_dim(int64_t in, int64_t k, int s, int d, enum wtt_padding pad,
         int64_t *out, int64_t *before, int64_t *after)
{
    int64_t ek = (k - 1) * d + 1;

    if (pad == WTT_PAD_SAME) {
        int64_t total;
        *out = (in + s - 1) / s;
        total = (*out - 1) * s + ek - in;
        total = total > 0 ? total : 0;
        *before = total / 2;
        *after = total - *before;
    } else {
        *out = in >= ek ? (in - ek) / s + 1 : 0;
        *before = 0;
        *after = 0;
    }
}


/*
 * Fills *g for node n (Conv2D or _FusedConv2D). Returns 0, or WTT_EFAIL
 * with *err set for what the CPU refuses too.
 */
static inline int
conv_geom_of(const struct wtt_node *n, struct conv_geom *g, const char **err)
{
    const struct wtt_tensor *x = n->src[0], *w = n->src[1];

    /* Zeroed whole, padding bytes too: conv.cu compares geometries with
     * memcmp to keep its plan. */
    memset(g, 0, sizeof(*g));
    if (n->nsrc < 2 || x->rank != 4 || w->rank != 4 || x->dtype != WTT_F32
        || w->dtype != WTT_F32)
    {
        *err = "Conv2D: expects NHWC input and HWIO filter";
        return WTT_EFAIL;
    }
    if (n->fused_bias && (n->nsrc < 3 || n->src[2]->dtype != WTT_F32
                          || wtt_tensor_nelem(n->src[2]) != w->ne[3]))
    {
        *err = "Conv2D: bias does not match the filters";
        return WTT_EFAIL;
    }
    g->N = x->ne[0];
    g->H = x->ne[1];
    g->W = x->ne[2];
    g->C = x->ne[3];
    g->KH = w->ne[0];
    g->KW = w->ne[1];
    g->O = w->ne[3];
    if (w->ne[2] != g->C) {
        *err = "Conv2D: filter channels do not match the input";
        return WTT_EFAIL;
    }
    g->sh = n->strides[1];
    g->sw = n->strides[2];
    g->dh = n->dilations[1];
    g->dw = n->dilations[2];
    if (g->sh < 1 || g->sw < 1 || g->dh < 1 || g->dw < 1) {
        *err = "Conv2D: bad strides or dilations";
        return WTT_EFAIL;
    }
    conv_dim(g->H, g->KH, g->sh, g->dh, n->padding, &g->OH, &g->pt, &g->pb);
    conv_dim(g->W, g->KW, g->sw, g->dw, n->padding, &g->OW, &g->pl, &g->pr);
    g->explicit_pad = g->pt != g->pb || g->pl != g->pr;
    return 0;
}


/* dst[N][H+pt+pb][W+pl+pr][C] = src with zeros around it. */
struct pad_nhwc_body {
    const float *src;
    float       *dst;
    int64_t      H, W, C, PH, PW, pt, pl;   /* PH, PW: padded sizes */

    WTT_HD void
    operator()(int64_t i) const
    {
        int64_t c = i % C, r = i / C;
        int64_t x = r % PW - pl;
        int64_t y = (r / PW) % PH - pt;
        int64_t b = r / PW / PH;

        dst[i] = y < 0 || y >= H || x < 0 || x >= W
                 ? 0.0f
                 : src[((b * H + y) * W + x) * C + c];
    }
};


/* dst[O][KH][KW][C] = src[KH][KW][C][O]. */
struct filter_krsc_body {
    const float *src;
    float       *dst;
    int64_t      KH, KW, C, O;

    WTT_HD void
    operator()(int64_t i) const
    {
        int64_t c = i % C, r = i / C;
        int64_t kw = r % KW, kh = (r / KW) % KH, o = r / KW / KH;

        dst[i] = src[((kh * KW + kw) * C + c) * O + o];
    }
};


/* out[i] = relu?(in[i] + bias[i % O]); in may be out. */
struct bias_act_body {
    const float *in;
    float       *out;
    const float *bias;      /* NULL: no bias */
    int64_t      O;
    int          relu;

    WTT_HD void
    operator()(int64_t i) const
    {
        float v = in[i];

        if (bias != NULL) {
            v = v + bias[i % O];
        }
        if (relu && v < 0.0f) {
            v = 0.0f;
        }
        out[i] = v;
    }
};


/* The epilogue of node n over `total` outputs of `in`, written to `out`. */
static inline int
conv_epilogue(struct wtt_cuda_ctx *c, const struct wtt_node *n,
              const float *in, float *out, int64_t total, const char **err)
{
    bias_act_body body;

    body.in = in;
    body.out = out;
    body.bias = n->fused_bias ? (const float *) n->src[2]->data : NULL;
    body.O = n->src[1]->ne[3];
    body.relu = n->fused_relu;
    return wtt_launch(c, total, body, err);
}

#endif
