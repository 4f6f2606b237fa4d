/*
 * reduce.cu: Sum, Min and Max over a set of axes, with keep_dims:
 * kernels/cpu/reduce.c on the GPU, one thread per output element.
 *
 * The CPU walks the input once in row-major order and folds each element
 * into its output, so each output sees its inputs in the lexicographic
 * order of the reduced coordinates. A thread here walks the same elements
 * in the same order with the same arithmetic (sums in double, rounded once;
 * Min and Max with the CPU's comparisons, which skip NaN and keep the first
 * of equal values such as -0 and +0), so the bits are the CPU's.
 *
 * One thread per output is slow when few outputs reduce many inputs (the
 * graph's Min and Max over a whole spectrogram: one thread per window
 * walking 53,148 values, a fraction of a millisecond per batch). A split
 * into chunks combined in order would be exact for Min and Max too, and is
 * the next step if profiles ever show it; Sum must stay sequential.
 *
 * The axes, the output shape and the walk over kept and reduced dimensions
 * are kernels/wtt_shape.c's, as on the CPU.
 */
#include "host.h"
#include "wtt_shape.h"

#include <math.h>


struct reduce_body {
    int                     op;
    const float            *in;
    float                  *out;
    struct wtt_shape_reduce p;

    WTT_HD void
    operator()(int64_t o) const
    {
        int64_t ctr[WTT_MAX_RANK];
        int64_t off = 0, r = o;
        double  sum = 0.0;
        float   m = op == WTT_OP_MIN ? INFINITY : -INFINITY;

        /* The output's kept coordinates give the first input. */
        for (int i = p.kept_n - 1; i >= 0; i--) {
            off += (r % p.kept_ne[i]) * p.kept_st[i];
            r /= p.kept_ne[i];
        }
        for (int k = 0; k < p.red_n; k++) {
            ctr[k] = 0;
        }
        /* The reduced coordinates, the last one fastest. */
        for (int64_t j = 0; j < p.red_count; j++) {
            float v = in[off];
            if (op == WTT_OP_SUM) {
                sum += v;
            } else if (op == WTT_OP_MIN) {
                m = v < m ? v : m;
            } else {
                m = v > m ? v : m;
            }
            for (int k = p.red_n - 1; k >= 0; k--) {
                off += p.red_st[k];
                if (++ctr[k] < p.red_ne[k]) {
                    break;
                }
                off -= p.red_st[k] * p.red_ne[k];
                ctr[k] = 0;
            }
        }
        out[o] = op == WTT_OP_SUM ? (float) sum : m;
    }
};


extern "C" int
wtt_cuda_op_reduce(struct wtt_node *n, const char **err)
{
    struct wtt_cuda_ctx     *c = (struct wtt_cuda_ctx *) n->ctx;
    const struct wtt_tensor *x = n->src[0];
    struct wtt_shape_ints    axes;
    int                      rc;
    reduce_body              body;

    if (n->op != WTT_OP_SUM && n->op != WTT_OP_MIN && n->op != WTT_OP_MAX) {
        *err = "reduce: not a reduction";
        return WTT_EFAIL;
    }
    if (x->dtype != WTT_F32) {
        *err = "reduce: float32 only";
        return WTT_EFAIL;
    }
    if ((rc = wtt_cuda_host_ints(c, n->src[1], &axes, err)) != 0
        || (rc = wtt_shape_reduce(n, &axes, &body.p, err)) != 0)
    {
        return rc;
    }
    rc = wtt_cuda_tensor_alloc(c, &n->out, WTT_F32, body.p.out.rank,
                               body.p.out.ne, err);
    if (rc != 0) {
        return rc;
    }
    body.op = n->op;
    body.in = (const float *) x->data;
    body.out = (float *) n->out.data;
    return wtt_cuda_run(c, 0, wtt_tensor_nelem(&n->out), body, err);
}
