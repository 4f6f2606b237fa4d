/*
 * test_conv.c: the CPU backend's convolution against a plain reference
 * written from the rule it must keep (kernels/cpu/conv.c): each output is
 * one chain of FMAs from +0 over its taps in (filter row, filter column,
 * input channel) order, taps in the padding skipped, then the bias added
 * and Relu applied. Bit for bit, on random data, for shapes that reach
 * every tile: filters across lanes (16 to 100 filters, blocks that end
 * mid-vector, rows shorter and longer than a tile), positions across
 * lanes (1 to 8 filters, both single-filter widths), strides up to 64,
 * dilations, SAME split evenly and unevenly, VALID, batches. The golden
 * clips (spec/05-engine) reach only Basic Pitch's own shapes.
 */
#include "test.h"
#include "test_conv_case.h"
#include "wtt_backend_cpu.h"
#include "wtt_shape.h"
#include "cpu/ops.h"   /* wtt_tensor_free, wtt_cpu_conv_allow_avx512, _set_l2 */

#include <math.h>
#include <stdint.h>
#include <stdlib.h>

/* N H W C, KH KW O, stride h w, dilation h w, SAME, bias, relu. */
static const int shapes[][14] = {
    /* filters across lanes */
    { 1, 6, 40, 8,    5, 5, 32,  1, 3,  1, 1,  1, 1, 1 },
    { 2, 5, 30, 3,    3, 3, 16,  1, 1,  1, 1,  1, 1, 0 },
    { 1, 1, 4672, 1,  1, 256, 36, 1, 64, 1, 1, 0, 0, 0 },
    { 1, 4, 33, 2,    2, 4, 48,  2, 2,  1, 1,  1, 0, 1 },
    { 1, 3, 20, 4,    3, 3, 64,  1, 1,  1, 2,  1, 1, 1 },
    { 1, 3, 25, 2,    3, 2, 70,  1, 1,  2, 1,  1, 1, 0 },
    { 1, 2, 18, 3,    1, 3, 100, 1, 1,  1, 1,  0, 1, 1 },
    { 1, 4, 7, 2,     3, 3, 32,  1, 1,  1, 1,  1, 1, 1 },     /* OW < P */
    { 1, 6, 41, 1,    7, 7, 32,  1, 3,  1, 1,  1, 1, 1 },     /* uneven */
    /* positions across lanes */
    { 1, 7, 264, 8,   5, 5, 1,   1, 1,  1, 1,  1, 1, 0 },     /* 96 wide */
    { 1, 5, 88, 32,   7, 3, 1,   1, 1,  1, 1,  1, 1, 0 },
    { 1, 1, 1000, 1,  1, 256, 1, 1, 2,  1, 1,  0, 0, 0 },     /* 128 */
    { 1, 5, 50, 8,    3, 13, 8,  1, 1,  1, 1,  1, 1, 1 },
    { 1, 6, 29, 11,   3, 3, 1,   1, 1,  1, 1,  1, 1, 0 },     /* 8 + 3 ch */
    { 2, 6, 37, 3,    3, 4, 3,   2, 3,  1, 2,  1, 1, 1 },
    { 1, 5, 29, 2,    4, 4, 5,   1, 2,  2, 1,  1, 0, 0 },
    { 1, 4, 150, 6,   3, 5, 12,  1, 1,  1, 1,  1, 1, 1 },     /* blocks */
};


static void
reference(const struct wtt_shape_conv *g, const float *x, const float *w,
          const float *bias, int relu, float *out)
{
    for (int64_t b = 0; b < g->N; b++)
    for (int64_t oh = 0; oh < g->OH; oh++)
    for (int64_t ow = 0; ow < g->OW; ow++)
    for (int64_t o = 0; o < g->O; o++) {
        float acc = 0.0f;
        for (int64_t kh = 0; kh < g->KH; kh++) {
            int64_t ih = oh * g->sh + kh * g->dh - g->pt;
            if (ih < 0 || ih >= g->H) {
                continue;
            }
            for (int64_t kw = 0; kw < g->KW; kw++) {
                int64_t iw = ow * g->sw + kw * g->dw - g->pl;
                if (iw < 0 || iw >= g->W) {
                    continue;
                }
                for (int64_t c = 0; c < g->C; c++) {
                    acc = fmaf(x[((b * g->H + ih) * g->W + iw) * g->C + c],
                               w[((kh * g->KW + kw) * g->C + c) * g->O + o],
                               acc);
                }
            }
        }
        if (bias != NULL) {
            acc = acc + bias[o];
        }
        if (relu && acc < 0.0f) {
            acc = 0.0f;
        }
        out[((b * g->OH + oh) * g->OW + ow) * g->O + o] = acc;
    }
}


static int
one_shape(const int *s, uint32_t *seed)
{
    struct test_conv_case t;
    struct wtt_node      *n = &t.n;
    struct wtt_shape_conv g;
    const char           *err = NULL;
    float                *want;
    size_t                nout;
    int                   bad = 0;

    ASSERT(test_conv_case_init(&t, s, seed) == 0);
    ASSERT(wtt_shape_conv2d(n, &g, &err) == 0);
    nout = (size_t) (g.N * g.OH * g.OW * g.O);
    want = malloc(nout * sizeof(float));
    ASSERT(want != NULL);
    reference(&g, t.x.data, t.w.data, s[12] ? t.b.data : NULL, s[13], want);

    /* Twice: the second run reuses the packed filters and buffers. */
    for (int run = 0; run < 2 && bad == 0; run++) {
        ASSERT(wtt_backend_cpu.compute(n, &err) == 0);
        ASSERT(wtt_tensor_nelem(&n->out) == (int64_t) nout);
        for (size_t i = 0; i < nout; i++) {
            float got = ((float *) n->out.data)[i];
            if (memcmp(&got, &want[i], sizeof(float)) != 0) {
                fprintf(stderr, "conv shape %d %d %d %d k %dx%d o %d: "
                        "output %zu is %.9g, the rule gives %.9g\n",
                        s[0], s[1], s[2], s[3], s[4], s[5], s[6], i,
                        (double) got, (double) want[i]);
                bad = 1;
                break;
            }
        }
    }
    if (n->scratch_free != NULL) {
        n->scratch_free(n->scratch);
    }
    wtt_tensor_free(&n->out);
    free(want);
    test_conv_case_free(&t);
    return bad;
}


/* Every shape with the best tiles, then with those a CPU without
 * AVX-512 gets; each with this CPU's L2 size and with a 4 KiB one, which
 * cuts the rows of layers with several filter blocks into column blocks. */
int
test_conv_rule(void)
{
    static const size_t l2[] = { 0, 4096 };

    for (size_t c = 0; c < sizeof(l2) / sizeof(l2[0]); c++) {
        wtt_cpu_conv_set_l2(l2[c]);
        for (int allow = 1; allow >= 0; allow--) {
            uint32_t seed = 12345;
            wtt_cpu_conv_allow_avx512(allow);
            for (size_t k = 0; k < sizeof(shapes) / sizeof(shapes[0]); k++) {
                if (one_shape(shapes[k], &seed) != 0) {
                    wtt_cpu_conv_allow_avx512(1);
                    wtt_cpu_conv_set_l2(0);
                    fprintf(stderr, "conv_rule: shape %zu, AVX-512 tiles %s, "
                            "L2 %zu\n", k, allow ? "allowed" : "not allowed",
                            l2[c]);
                    return 1;
                }
            }
        }
    }
    wtt_cpu_conv_allow_avx512(1);
    wtt_cpu_conv_set_l2(0);
    return 0;
}


/* One node whose input narrows between runs, into the planes buffer it
 * already has: the new layout's padding must read as zeros, not as the
 * old layout's data. */
int
test_conv_layout_change(void)
{
    static const int     wide[14] = { 1, 6, 40, 3, 3, 3, 4, 1, 1, 1, 1,
                                      1, 1, 0 };
    struct test_conv_case t;
    struct wtt_node      *n = &t.n;
    struct wtt_shape_conv g;
    const char           *err = NULL;
    uint32_t              seed = 777;
    float                *want;
    size_t                nout;
    int                   bad = 0;

    ASSERT(test_conv_case_init(&t, wide, &seed) == 0);
    ASSERT(wtt_backend_cpu.compute(n, &err) == 0);
    t.x.ne[2] = 29;         /* the first 6 x 29 x 3 values of the input */
    ASSERT(wtt_shape_conv2d(n, &g, &err) == 0);
    nout = (size_t) (g.N * g.OH * g.OW * g.O);
    want = malloc(nout * sizeof(float));
    ASSERT(want != NULL);
    reference(&g, t.x.data, t.w.data, t.b.data, 0, want);
    ASSERT(wtt_backend_cpu.compute(n, &err) == 0);
    for (size_t i = 0; i < nout && !bad; i++) {
        bad = memcmp(&((float *) n->out.data)[i], &want[i], sizeof(float));
        if (bad) {
            fprintf(stderr, "conv_layout_change: output %zu\n", i);
        }
    }
    n->scratch_free(n->scratch);
    wtt_tensor_free(&n->out);
    free(want);
    test_conv_case_free(&t);
    return bad != 0;
}
