/*
 * conv.c: Conv2D and _FusedConv2D (BiasAdd, then optional Relu), NHWC input,
 * HWIO filter, strides, dilations, SAME/VALID padding, as TensorFlow
 * defines them.
 *
 * The work is im2col + sgemm (OpenBLAS): output rows are gathered in blocks
 * into a column buffer of at most COL_BYTES, so memory stays bounded however
 * wide the layer is, and each block is one matrix product
 *     out[rows*OW, O] = col[rows*OW, KH*KW*C] x filter[KH*KW*C, O].
 */
#include "wtt_tensor.h"

#include <cblas.h>
#include <stdlib.h>
#include <string.h>

#define COL_BYTES (4u << 20)


/* Output size and the padding before, per TensorFlow's SAME/VALID rules. */
static void
out_dim(int64_t in, int64_t k, int s, int d, enum wtt_padding pad,
        int64_t *out, int64_t *before)
{
    int64_t ek = (k - 1) * d + 1;

    if (pad == WTT_PAD_SAME) {
        int64_t total;
        *out = (in + s - 1) / s;
        total = (*out - 1) * s + ek - in;
        total = total > 0 ? total : 0;
        *before = total / 2;
    } else {
        *out = in >= ek ? (in - ek) / s + 1 : 0;
        *before = 0;
    }
}


int
wtt_cpu_op_conv2d(struct wtt_node *n, int nthreads, const char **err)
{
    const struct wtt_tensor *x = n->src[0], *w = n->src[1];
    const float             *bias = n->fused_bias ? n->src[2]->data : NULL;
    int64_t                  N, H, W, C, KH, KW, O, OH, OW, pt, pl, K;
    int64_t                  ne[4];
    int                      sh = n->strides[1], sw = n->strides[2];
    int                      dh = n->dilations[1], dw = n->dilations[2];
    float                   *col, *out;
    int64_t                  rows_per_block;

    (void) nthreads;
    if (x->rank != 4 || w->rank != 4 || x->dtype != WTT_F32) {
        *err = "Conv2D: expects NHWC input and HWIO filter";
        return -1;
    }
    N = x->ne[0];
    H = x->ne[1];
    W = x->ne[2];
    C = x->ne[3];
    KH = w->ne[0];
    KW = w->ne[1];
    O = w->ne[3];
    if (w->ne[2] != C) {
        *err = "Conv2D: filter channels do not match the input";
        return -1;
    }
    if (sh < 1 || sw < 1 || dh < 1 || dw < 1) {
        *err = "Conv2D: bad strides or dilations";
        return -1;
    }
    out_dim(H, KH, sh, dh, n->padding, &OH, &pt);
    out_dim(W, KW, sw, dw, n->padding, &OW, &pl);
    ne[0] = N;
    ne[1] = OH;
    ne[2] = OW;
    ne[3] = O;
    if (wtt_tensor_alloc(&n->out, WTT_F32, 4, ne) != 0) {
        *err = "out of memory";
        return -1;
    }
    out = n->out.data;
    if (N * OH * OW * O == 0) {
        return 0;
    }
    K = KH * KW * C;
    rows_per_block = (int64_t) (COL_BYTES / 4) / (OW * K);
    if (rows_per_block < 1) {
        rows_per_block = 1;
    }
    if (rows_per_block > OH) {
        rows_per_block = OH;
    }
    col = malloc((size_t) (rows_per_block * OW * K) * sizeof(float));
    if (col == NULL) {
        *err = "out of memory";
        return -1;
    }

    for (int64_t b = 0; b < N; b++) {
        const float *img = (const float *) x->data + b * H * W * C;
        for (int64_t oh0 = 0; oh0 < OH; oh0 += rows_per_block) {
            int64_t rows = OH - oh0 < rows_per_block ? OH - oh0
                                                     : rows_per_block;
            float  *c = col;
            for (int64_t oh = oh0; oh < oh0 + rows; oh++) {
                for (int64_t ow = 0; ow < OW; ow++) {
                    int64_t iw0 = ow * sw - pl;
                    for (int64_t kh = 0; kh < KH; kh++) {
                        int64_t ih = oh * sh + kh * dh - pt;
                        if (ih < 0 || ih >= H) {
                            memset(c, 0, (size_t) (KW * C) * sizeof(float));
                        } else if (dw == 1 && iw0 >= 0 && iw0 + KW <= W) {
                            /* The common case: the KW*C values of this
                             * filter row are contiguous in the input. */
                            memcpy(c, img + (ih * W + iw0) * C,
                                   (size_t) (KW * C) * sizeof(float));
                        } else {
                            for (int64_t kw = 0; kw < KW; kw++) {
                                int64_t iw = iw0 + kw * dw;
                                const float *src = img + (ih * W + iw) * C;
                                for (int64_t ci = 0; ci < C; ci++) {
                                    c[kw * C + ci] =
                                        (iw < 0 || iw >= W) ? 0.0f : src[ci];
                                }
                            }
                        }
                        c += KW * C;
                    }
                }
            }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans,
                        (int) (rows * OW), (int) O, (int) K, 1.0f, col,
                        (int) K, w->data, (int) O, 0.0f,
                        out + ((b * OH + oh0) * OW) * O, (int) O);
        }
    }
    free(col);

    if (bias != NULL || n->fused_relu) {
        int64_t total = N * OH * OW;
        for (int64_t i = 0; i < total; i++) {
            float *row = out + i * O;
            for (int64_t o = 0; o < O; o++) {
                float v = row[o] + (bias != NULL ? bias[o] : 0.0f);
                row[o] = n->fused_relu && v < 0.0f ? 0.0f : v;
            }
        }
    }
    return 0;
}
