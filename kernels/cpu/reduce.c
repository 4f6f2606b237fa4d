/*
 * reduce.c: Sum, Min and Max over a set of axes, with keep_dims.
 */
#include "ops.h"

#include <math.h>
#include <stdlib.h>


int
wtt_cpu_op_reduce(struct wtt_node *n, const char **err)
{
    const struct wtt_tensor *x = n->src[0], *axes = n->src[1];
    int                      red[WTT_MAX_RANK] = { 0 }, rank = x->rank, nr = 0;
    int64_t                  ne[WTT_MAX_RANK], one[WTT_MAX_RANK],
                             ost[WTT_MAX_RANK], idx[WTT_MAX_RANK] = { 0 };
    int64_t                  total = wtt_tensor_nelem(x), count, s;
    const float             *in = x->data;
    float                   *out;
    double                  *sums = NULL;

    if (x->dtype != WTT_F32) {
        *err = "reduce: float32 only";
        return -1;
    }
    for (int64_t i = 0; i < wtt_tensor_nelem(axes); i++) {
        int64_t a = wtt_tensor_int(axes, i);
        if (a < 0) {
            a += rank;
        }
        if (a < 0 || a >= rank) {
            *err = "reduce: axis out of range";
            return -1;
        }
        red[a] = 1;
    }
    for (int i = 0; i < rank; i++) {
        one[i] = red[i] ? 1 : x->ne[i];
        if (!red[i] || n->keep_dims) {
            ne[nr++] = one[i];
        }
    }
    if (wtt_tensor_alloc(&n->out, WTT_F32, nr, ne) != 0) {
        *err = "out of memory";
        return WTT_ENOMEM;
    }
    out = n->out.data;
    count = wtt_tensor_nelem(&n->out);
    if (n->op == WTT_OP_SUM) {
        /* Sums accumulate in double like the reference's JS numbers. */
        sums = calloc((size_t) (count ? count : 1), sizeof(double));
        if (sums == NULL) {
            *err = "out of memory";
            return WTT_ENOMEM;
        }
    }
    for (int64_t i = 0; i < count; i++) {
        out[i] = n->op == WTT_OP_MIN ? INFINITY : -INFINITY;
    }
    /* Output strides over the kept shape (reduced axes stride 0). */
    s = 1;
    for (int i = rank - 1; i >= 0; i--) {
        ost[i] = red[i] ? 0 : s;
        s *= one[i];
    }
    for (int64_t k = 0; k < total; k++) {
        int64_t o = 0;
        float   v = in[k];
        for (int i = 0; i < rank; i++) {
            o += idx[i] * ost[i];
        }
        if (n->op == WTT_OP_SUM) {
            sums[o] += v;
        } else if (n->op == WTT_OP_MIN) {
            /* NaN never compares smaller: like tfjs, it is skipped. */
            out[o] = v < out[o] ? v : out[o];
        } else {
            out[o] = v > out[o] ? v : out[o];
        }
        for (int i = rank - 1; i >= 0; i--) {
            if (++idx[i] < x->ne[i]) {
                break;
            }
            idx[i] = 0;
        }
    }
    if (sums != NULL) {
        for (int64_t i = 0; i < count; i++) {
            out[i] = (float) sums[i];
        }
        free(sums);
    }
    return 0;
}
