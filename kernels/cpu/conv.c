/*
 * conv.c: Conv2D and _FusedConv2D (BiasAdd, then optional Relu), NHWC input,
 * HWIO filter, strides, dilations, SAME/VALID padding, as TensorFlow
 * defines them (the geometry is kernels/wtt_shape.c's).
 *
 * Accumulation order is part of the result. The official reference (tfjs'
 * CPU backend) adds the products of each output in the order filter row,
 * filter column, input channel, one rounded float32 addition at a time, and
 * skips taps that fall in the padding; this kernel does the same with one
 * fused multiply-add per tap (exact product, one rounding, which is what
 * tfjs' double-precision product and float32 store amount to). Near silence
 * the constant-Q front end cancels large terms, so any other order (an
 * sgemm, or exact sums) lands measurably further from the reference.
 *
 * Speed comes from doing many outputs at once: the input is rearranged once
 * per call into zero-padded planes per channel and row, split by stride
 * phase, so that for a fixed tap the inputs of consecutive outputs are
 * contiguous; a tile of TB outputs by OB filters is accumulated in
 * registers across all taps. The tile loops have constant bounds, which
 * the compiler turns into vector FMAs (AVX-512 or AVX2 clones, chosen at
 * run time; a plain build computes the same values, more slowly).
 */
#include "ops.h"
#include "wtt_shape.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>


/* Kernel-private state kept on the node between runs. */
typedef struct {
    float  *planes;
    size_t  planes_cap;
    float  *wpack;          /* [KH*KW*C][Opad] */
    size_t  wpack_n;
    const void *wsrc;
} conv_scratch;


/*
 * One output row `oh` for filters [o0, o0+ob) and outputs [t0, t0+tb):
 * acc[j][t] over every tap in (kh, kw, c) order. Two shapes: 4 filters x 32
 * outputs for layers with many filters, 1 x 128 for single-filter heads.
 */
#define DEFINE_TILE(NAME, ob, tb)                                             \
__attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default"))) \
static void                                                                   \
NAME(const float *restrict planes, const float *restrict wpack, int64_t Opad,  \
     int64_t C, int64_t H, int64_t KH, int64_t KW, int sh, int sw, int dh,    \
     int dw, int64_t pt, int64_t jn, int64_t oh, int64_t t0, int64_t o0,      \
     float *restrict acc)                                                     \
{                                                                             \
    /* A local tile the compiler can keep in vector registers. */            \
    float a[ob][tb];                                                          \
                                                                              \
    for (int j = 0; j < ob; j++) {                                            \
        for (int t = 0; t < tb; t++) {                                        \
            a[j][t] = 0.0f;                                                   \
        }                                                                     \
    }                                                                         \
    for (int64_t kh = 0; kh < KH; kh++) {                                     \
        int64_t ih = oh * sh + kh * dh - pt;                                  \
        /* (kw * dw) split into stride phase and offset, stepped without a   \
         * division per tap. */                                               \
        int64_t phase = 0, off = 0;                                           \
        if (ih < 0 || ih >= H) {                                              \
            continue;       /* tfjs skips taps in the vertical padding */     \
        }                                                                     \
        for (int64_t kw = 0; kw < KW; kw++) {                                 \
            const float *wk = wpack + ((kh * KW + kw) * C) * Opad + o0;       \
            if (kw > 0) {                                                     \
                phase += dw;                                                  \
                while (phase >= sw) {                                         \
                    phase -= sw;                                              \
                    off++;                                                    \
                }                                                             \
            }                                                                 \
            for (int64_t c = 0; c < C; c++) {                                 \
                const float *xs = planes + ((c * H + ih) * sw + phase) * jn   \
                                  + off + t0;                                 \
                const float *w = wk + c * Opad;                               \
                for (int j = 0; j < ob; j++) {                                \
                    float wj = w[j];                                          \
                    for (int t = 0; t < tb; t++) {                            \
                        a[j][t] = __builtin_fmaf(xs[t], wj, a[j][t]);         \
                    }                                                         \
                }                                                             \
            }                                                                 \
        }                                                                     \
    }                                                                         \
    memcpy(acc, a, sizeof(a));                                                \
}

DEFINE_TILE(tile_wide, 4, 32)
DEFINE_TILE(tile_single, 1, 128)

/* 8 x 32 needs 16 vector accumulators: AVX-512 has the registers for it
 * (32 zmm), AVX2 would spill, so it is only compiled for AVX-512. */
__attribute__((target("arch=x86-64-v4")))
static void
tile_eight(const float *restrict planes, const float *restrict wpack,
           int64_t Opad, int64_t C, int64_t H, int64_t KH, int64_t KW, int sh,
           int sw, int dh, int dw, int64_t pt, int64_t jn, int64_t oh,
           int64_t t0, int64_t o0, float *restrict acc)
{
    float a[8][32];

    for (int j = 0; j < 8; j++) {
        for (int t = 0; t < 32; t++) {
            a[j][t] = 0.0f;
        }
    }
    for (int64_t kh = 0; kh < KH; kh++) {
        int64_t ih = oh * sh + kh * dh - pt;
        int64_t phase = 0, off = 0;
        if (ih < 0 || ih >= H) {
            continue;
        }
        for (int64_t kw = 0; kw < KW; kw++) {
            const float *wk = wpack + ((kh * KW + kw) * C) * Opad + o0;
            if (kw > 0) {
                phase += dw;
                while (phase >= sw) {
                    phase -= sw;
                    off++;
                }
            }
            for (int64_t c = 0; c < C; c++) {
                const float *xs = planes + ((c * H + ih) * sw + phase) * jn
                                  + off + t0;
                const float *w = wk + c * Opad;
                for (int j = 0; j < 8; j++) {
                    float wj = w[j];
                    for (int t = 0; t < 32; t++) {
                        a[j][t] = __builtin_fmaf(xs[t], wj, a[j][t]);
                    }
                }
            }
        }
    }
    memcpy(acc, a, sizeof(a));
}

#define TB_MAX 128


static void
scratch_free(void *p)
{
    conv_scratch *s = p;

    if (s != NULL) {
        free(s->planes);
        free(s->wpack);
        free(s);
    }
}


int
wtt_cpu_op_conv2d(struct wtt_node *n, const char **err)
{
    const struct wtt_tensor *x = n->src[0], *w = n->src[1];
    const float             *bias = n->fused_bias ? n->src[2]->data : NULL;
    struct wtt_shape_conv    g;
    int64_t                  N, H, W, C, KH, KW, O, OH, OW, pt, pl, K;
    int64_t                  ne[4], Opad, jn, wp;
    int                      sh, sw, dh, dw, rc;
    conv_scratch            *s;
    float                   *out;
    size_t                   need;
    int                      ob, tb;

    if ((rc = wtt_shape_conv2d(n, &g, err)) != 0) {
        return rc;
    }
    N = g.N;
    H = g.H;
    W = g.W;
    C = g.C;
    KH = g.KH;
    KW = g.KW;
    O = g.O;
    OH = g.OH;
    OW = g.OW;
    pt = g.pt;
    pl = g.pl;
    sh = g.sh;
    sw = g.sw;
    dh = g.dh;
    dw = g.dw;
    ne[0] = N;
    ne[1] = OH;
    ne[2] = OW;
    ne[3] = O;
    if (wtt_tensor_alloc(&n->out, WTT_F32, 4, ne) != 0) {
        *err = "out of memory";
        return WTT_ENOMEM;
    }
    out = n->out.data;
    if (N * OH * OW * O == 0) {
        return 0;
    }

    if (n->scratch == NULL) {
        n->scratch = calloc(1, sizeof(conv_scratch));
        n->scratch_free = scratch_free;
        if (n->scratch == NULL) {
            *err = "out of memory";
            return WTT_ENOMEM;
        }
    }
    s = n->scratch;
    K = KH * KW * C;
    if (O == 1) {
        ob = 1;
        tb = 128;
    } else {
        ob = O >= 8 && __builtin_cpu_supports("avx512f") ? 8 : 4;
        tb = 32;
    }
    Opad = (O + ob - 1) / ob * ob;

    /* Filters packed once, padded to whole tiles with zeros. */
    if (s->wsrc != w->data || s->wpack_n != (size_t) (K * Opad)) {
        free(s->wpack);
        s->wpack = calloc((size_t) (K * Opad), sizeof(float));
        if (s->wpack == NULL) {
            *err = "out of memory";
            return WTT_ENOMEM;
        }
        for (int64_t k = 0; k < K; k++) {
            memcpy(s->wpack + k * Opad, (const float *) w->data + k * O,
                   (size_t) O * sizeof(float));
        }
        s->wpack_n = (size_t) (K * Opad);
        s->wsrc = w->data;
    }

    /* Planes: per channel and row, the zero-padded row split by stride
     * phase, with room for a whole last tile. */
    wp = (OW + TB_MAX) * sw + (KW - 1) * dw + 1;
    jn = (wp + sw - 1) / sw;
    need = (size_t) (C * H * sw * jn) * sizeof(float);
    if (s->planes_cap < need) {
        free(s->planes);
        s->planes = malloc(need);
        if (s->planes == NULL) {
            s->planes_cap = 0;
            *err = "out of memory";
            return WTT_ENOMEM;
        }
        s->planes_cap = need;
    }

    for (int64_t b = 0; b < N; b++) {
        const float *img = (const float *) x->data + b * H * W * C;
        float       *planes = s->planes;

        memset(planes, 0, need);
        for (int64_t c = 0; c < C; c++) {
            for (int64_t ih = 0; ih < H; ih++) {
                float *pl0 = planes + (c * H + ih) * sw * jn;
                for (int64_t iw = 0; iw < W; iw++) {
                    int64_t e = iw + pl;      /* padded position */
                    if (e < 0 || e >= jn * sw) {
                        continue;
                    }
                    pl0[(e % sw) * jn + e / sw] = img[(ih * W + iw) * C + c];
                }
            }
        }
        for (int64_t oh = 0; oh < OH; oh++) {
            for (int64_t o0 = 0; o0 < Opad; o0 += ob) {
                for (int64_t t0 = 0; t0 < OW; t0 += tb) {
                    float   acc[8 * 32];
                    int64_t tn = OW - t0 < tb ? OW - t0 : tb;
                    int64_t on = O - o0 < ob ? O - o0 : ob;
                    if (ob == 1) {
                        tile_single(planes, s->wpack, Opad, C, H, KH, KW, sh,
                                    sw, dh, dw, pt, jn, oh, t0, o0, acc);
                    } else if (ob == 8) {
                        tile_eight(planes, s->wpack, Opad, C, H, KH, KW, sh,
                                   sw, dh, dw, pt, jn, oh, t0, o0, acc);
                    } else {
                        tile_wide(planes, s->wpack, Opad, C, H, KH, KW, sh,
                                  sw, dh, dw, pt, jn, oh, t0, o0, acc);
                    }
                    for (int64_t t = 0; t < tn; t++) {
                        float *dst = out + ((b * OH + oh) * OW + t0 + t) * O
                                     + o0;
                        for (int64_t j = 0; j < on; j++) {
                            float v = acc[j * tb + t];
                            if (bias != NULL) {
                                v = v + bias[o0 + j];
                            }
                            if (n->fused_relu && v < 0.0f) {
                                v = 0.0f;
                            }
                            dst[j] = v;
                        }
                    }
                }
            }
        }
    }
    return 0;
}
