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
 */
#include "host.h"

#include <math.h>


struct reduce_body {
    int          op;
    const float *in;
    float       *out;
    int          rank;
    int          kept_n, red_n;                 /* kept / reduced dims */
    int64_t      kept_ne[WTT_MAX_RANK], kept_st[WTT_MAX_RANK];
    int64_t      red_ne[WTT_MAX_RANK], red_st[WTT_MAX_RANK];
    int64_t      red_count;                     /* inputs per output */

    WTT_HD void
    operator()(int64_t o) const
    {
        int64_t ctr[WTT_MAX_RANK];
        int64_t off = 0, r = o;
        double  sum = 0.0;
        float   m = op == WTT_OP_MIN ? INFINITY : -INFINITY;

        /* The output's kept coordinates give the first input. */
        for (int i = kept_n - 1; i >= 0; i--) {
            off += (r % kept_ne[i]) * kept_st[i];
            r /= kept_ne[i];
        }
        for (int k = 0; k < red_n; k++) {
            ctr[k] = 0;
        }
        /* The reduced coordinates, the last one fastest. */
        for (int64_t j = 0; j < red_count; j++) {
            float v = in[off];
            if (op == WTT_OP_SUM) {
                sum += v;
            } else if (op == WTT_OP_MIN) {
                m = v < m ? v : m;
            } else {
                m = v > m ? v : m;
            }
            for (int k = red_n - 1; k >= 0; k--) {
                off += red_st[k];
                if (++ctr[k] < red_ne[k]) {
                    break;
                }
                off -= red_st[k] * red_ne[k];
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
    int                      red[WTT_MAX_RANK] = { 0 }, rank = x->rank;
    int                      nr = 0, rc;
    int64_t                  axes[WTT_CUDA_HOST_MAX], naxes = 0;
    int64_t                  ne[WTT_MAX_RANK], st[WTT_MAX_RANK], s = 1;
    reduce_body              body;

    if (n->op != WTT_OP_SUM && n->op != WTT_OP_MIN && n->op != WTT_OP_MAX) {
        *err = "reduce: not a reduction";
        return WTT_EFAIL;
    }
    if (x->dtype != WTT_F32) {
        *err = "reduce: float32 only";
        return WTT_EFAIL;
    }
    rc = wtt_cuda_host_ints(c, n->src[1], axes, WTT_CUDA_HOST_MAX, &naxes,
                            err);
    if (rc != 0) {
        return rc;
    }
    for (int64_t i = 0; i < naxes; i++) {
        int64_t a = axes[i] < 0 ? axes[i] + rank : axes[i];
        if (a < 0 || a >= rank) {
            *err = "reduce: axis out of range";
            return WTT_EFAIL;
        }
        red[a] = 1;
    }
    for (int i = rank - 1; i >= 0; i--) {
        st[i] = s;
        s *= x->ne[i];
    }
    body.op = n->op;
    body.rank = rank;
    body.kept_n = 0;
    body.red_n = 0;
    body.red_count = 1;
    for (int i = 0; i < rank; i++) {
        if (red[i]) {
            body.red_ne[body.red_n] = x->ne[i];
            body.red_st[body.red_n++] = st[i];
            body.red_count *= x->ne[i];
        } else {
            body.kept_ne[body.kept_n] = x->ne[i];
            body.kept_st[body.kept_n++] = st[i];
        }
        if (!red[i] || n->keep_dims) {
            ne[nr++] = red[i] ? 1 : x->ne[i];
        }
    }
    rc = wtt_cuda_tensor_alloc(c, &n->out, WTT_F32, nr, ne, err);
    if (rc != 0) {
        return rc;
    }
    body.in = (const float *) x->data;
    body.out = (float *) n->out.data;
    return wtt_cuda_run(c, 0, wtt_tensor_nelem(&n->out), body, err);
}
