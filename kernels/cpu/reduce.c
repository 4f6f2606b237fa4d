/*
 * reduce.c: Sum, Min and Max over a set of axes, with keep_dims. The axes
 * and the output shape are kernels/wtt_shape.c's.
 */
#include "ops.h"
#include "wtt_shape.h"

#include <math.h>
#include <stdlib.h>


int
wtt_cpu_op_reduce(struct wtt_node *n, const char **err)
{
    const struct wtt_tensor *x = n->src[0];
    struct wtt_shape_ints    axes;
    struct wtt_shape_reduce  p;
    const int64_t           *ost = p.ost;
    int64_t                  idx[WTT_MAX_RANK] = { 0 };
    int64_t                  total = wtt_tensor_nelem(x), count;
    int                      rank = x->rank, rc;
    const float             *in = x->data;
    float                   *out;
    double                  *sums = NULL;

    if (x->dtype != WTT_F32) {
        *err = "reduce: float32 only";
        return -1;
    }
    if ((rc = wtt_shape_ints_read(n->src[1], n->src[1]->data, &axes,
                                  err)) != 0
        || (rc = wtt_shape_reduce(n, &axes, &p, err)) != 0)
    {
        return rc;
    }
    if (wtt_tensor_alloc(&n->out, WTT_F32, p.out.rank, p.out.ne) != 0) {
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
