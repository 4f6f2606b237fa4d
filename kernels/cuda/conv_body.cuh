/*
 * conv_body.cuh: the convolution's own kernels, private to kernels/cuda/
 * and shared by conv.cu (cuDNN, on the device) and emu/conv.cpp (the host
 * emulation, which runs the CPU's convolution), so that the emulation runs
 * the same explicit padding and the same epilogue as the device. The
 * geometry (output size and padding per TensorFlow's SAME/VALID rules) is
 * wtt_shape_conv2d's (kernels/wtt_shape.h), the CPU's own. cuDNN pads
 * symmetrically; when SAME splits a dimension's padding unevenly (TF puts
 * the extra row or column after: explicit_pad), the input is padded
 * explicitly with zeros and the convolution runs VALID on it:
 *
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

#include "launch.h"
#include "wtt_shape.h"


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
