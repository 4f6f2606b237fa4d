/*
 * reduce.c: Sum, Min and Max over a set of axes, with keep_dims. The axes
 * and the output shape are kernels/wtt_shape.c's.
 *
 * What each output is, bit for bit: Sum adds its inputs in row-major order
 * into a double that starts at 0 (the reference's JS numbers) and rounds
 * once; Min (Max) is the first input, in row-major order, that no later
 * one is smaller (larger) than, NaNs skipped, +-Inf when there is none.
 *
 * When the reduced axes are one run of adjacent axes (after dropping
 * dimensions of size 1), the input is [outer][red][inner] and a fast path
 * keeps that order: lanes run across the inner outputs, each adding its
 * own inputs in turn. With no inner axis, Min and Max split one output's
 * inputs over lanes; the smallest value is the same whatever the split,
 * and only a zero could differ (in sign) from the first one, so a zero
 * result is taken again from the input. Other axis sets walk the input by
 * index.
 */
#include "ops.h"
#include "wtt_shape.h"

#include <math.h>
#include <stdlib.h>

/* AVX2 where the CPU has it, not AVX-512: see eltwise.c. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define RED_CLONES \
    __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define RED_CLONES
#endif

/* Lanes of one output's Min or Max: a multiple of every vector width. */
#define LANES 32

/* The input as [outer][red][inner]. */
struct block3 {
    int64_t outer, red, inner;
};


/*
 * Whether the reduced axes form one run of adjacent axes, ignoring
 * dimensions of size 1; if so, the sizes around it in *b.
 */
static int
as_block3(const struct wtt_tensor *x, const struct wtt_shape_reduce *p,
          struct block3 *b)
{
    int seg = 0;                /* 0 before the run, 1 in it, 2 after */

    b->outer = b->red = b->inner = 1;
    for (int i = 0; i < x->rank; i++) {
        int red = p->ost[i] == 0;
        if (x->ne[i] == 1) {
            continue;
        }
        if (red && seg == 2) {
            return 0;
        }
        if (red) {
            seg = 1;
            b->red *= x->ne[i];
        } else if (seg == 0) {
            b->outer *= x->ne[i];
        } else {
            seg = 2;
            b->inner *= x->ne[i];
        }
    }
    return 1;
}


/* Sum, one output per row of `red` contiguous inputs. */
RED_CLONES
static void
sum_rows(const float *restrict in, float *restrict out, int64_t outer,
         int64_t red)
{
    if (red == 2) {
        /* Pairs (the CQT's real and imaginary parts): a loop of its own
         * vectorises across outputs. */
        for (int64_t o = 0; o < outer; o++) {
            double s = 0.0;
            s += in[2 * o];
            s += in[2 * o + 1];
            out[o] = (float) s;
        }
        return;
    }
    for (int64_t o = 0; o < outer; o++) {
        const float *row = in + o * red;
        double       s = 0.0;
        for (int64_t r = 0; r < red; r++) {
            s += row[r];
        }
        out[o] = (float) s;
    }
}


/* Sum with inner outputs: acc[inner] in double across the lanes. */
RED_CLONES
static void
sum_inner(const float *restrict in, float *restrict out,
          double *restrict acc, const struct block3 *b)
{
    int64_t I = b->inner;

    for (int64_t o = 0; o < b->outer; o++) {
        const float *base = in + o * b->red * I;
        for (int64_t i = 0; i < I; i++) {
            acc[i] = 0.0;
        }
        for (int64_t r = 0; r < b->red; r++) {
            const float *row = base + r * I;
            for (int64_t i = 0; i < I; i++) {
                acc[i] += row[i];
            }
        }
        for (int64_t i = 0; i < I; i++) {
            out[o * I + i] = (float) acc[i];
        }
    }
}


/* Min (is_min) or Max with inner outputs, each updated in input order. */
RED_CLONES
static void
minmax_inner(const float *restrict in, float *restrict out, int is_min,
             const struct block3 *b)
{
    int64_t I = b->inner;

    for (int64_t o = 0; o < b->outer; o++) {
        const float *base = in + o * b->red * I;
        float       *z = out + o * I;
        for (int64_t i = 0; i < I; i++) {
            z[i] = is_min ? INFINITY : -INFINITY;
        }
        for (int64_t r = 0; r < b->red; r++) {
            const float *row = base + r * I;
            if (is_min) {
                for (int64_t i = 0; i < I; i++) {
                    z[i] = row[i] < z[i] ? row[i] : z[i];
                }
            } else {
                for (int64_t i = 0; i < I; i++) {
                    z[i] = row[i] > z[i] ? row[i] : z[i];
                }
            }
        }
    }
}


/* Min (is_min) or Max of n contiguous values, split over LANES lanes. */
RED_CLONES
static float
minmax_row(const float *restrict v, int64_t n, int is_min)
{
    float   lane[LANES], m = is_min ? INFINITY : -INFINITY;
    int64_t k = 0;

    for (int j = 0; j < LANES; j++) {
        lane[j] = m;
    }
    if (is_min) {
        for (; k + LANES <= n; k += LANES) {
            for (int j = 0; j < LANES; j++) {
                lane[j] = v[k + j] < lane[j] ? v[k + j] : lane[j];
            }
        }
    } else {
        for (; k + LANES <= n; k += LANES) {
            for (int j = 0; j < LANES; j++) {
                lane[j] = v[k + j] > lane[j] ? v[k + j] : lane[j];
            }
        }
    }
    for (; k < n; k++) {
        lane[0] = is_min ? (v[k] < lane[0] ? v[k] : lane[0])
                         : (v[k] > lane[0] ? v[k] : lane[0]);
    }
    for (int j = 0; j < LANES; j++) {
        m = is_min ? (lane[j] < m ? lane[j] : m) : (lane[j] > m ? lane[j] : m);
    }
    if (m == 0.0f) {
        /* +0 or -0: in input order, the first zero is the one kept. */
        for (k = 0; k < n; k++) {
            if (v[k] == 0.0f) {
                return v[k];
            }
        }
    }
    return m;
}


/* The fast paths; 0 when the node is theirs and done. */
static int
reduce_block3(struct wtt_node *n, const struct block3 *b, const char **err)
{
    const float *in = n->src[0]->data;
    float       *out = n->out.data;

    if (n->op == WTT_OP_SUM && b->inner == 1) {
        sum_rows(in, out, b->outer, b->red);
    } else if (n->op == WTT_OP_SUM) {
        double *acc = malloc((size_t) b->inner * sizeof(double));
        if (acc == NULL) {
            *err = "out of memory";
            return WTT_ENOMEM;
        }
        sum_inner(in, out, acc, b);
        free(acc);
    } else if (b->inner == 1) {
        for (int64_t o = 0; o < b->outer; o++) {
            out[o] = minmax_row(in + o * b->red, b->red,
                                n->op == WTT_OP_MIN);
        }
    } else {
        minmax_inner(in, out, n->op == WTT_OP_MIN, b);
    }
    return 0;
}


/* Any axis set: the input by index, each value into its output. */
static int
reduce_strided(struct wtt_node *n, const struct wtt_shape_reduce *p,
               const char **err)
{
    const struct wtt_tensor *x = n->src[0];
    const int64_t           *ost = p->ost;
    int64_t                  idx[WTT_MAX_RANK] = { 0 };
    int64_t                  total = wtt_tensor_nelem(x);
    int64_t                  count = wtt_tensor_nelem(&n->out);
    int                      rank = x->rank;
    const float             *in = x->data;
    float                   *out = n->out.data;
    double                  *sums = NULL;

    if (n->op == WTT_OP_SUM) {
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


int
wtt_cpu_op_reduce(struct wtt_node *n, const char **err)
{
    const struct wtt_tensor *x = n->src[0];
    struct wtt_shape_ints    axes;
    struct wtt_shape_reduce  p;
    struct block3            b;
    int                      rc;

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
    if (wtt_tensor_nelem(x) > 0 && as_block3(x, &p, &b)) {
        return reduce_block3(n, &b, err);
    }
    return reduce_strided(n, &p, err);
}
