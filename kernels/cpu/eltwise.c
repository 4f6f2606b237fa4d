/*
 * eltwise.c: elementwise ops with NumPy broadcasting: Add/AddV2, Sub, Mul,
 * DivNoNan, and the unary Neg, Square, Sqrt, Log, Sigmoid. float32, plus
 * int32 for the binary ops (shape arithmetic the planner folds).
 */
#include "ops.h"

#include <math.h>


/* In double, then rounded once: the reference computes these with JS
 * (double) math on float32 values. */
static float
unary(enum wtt_op op, float x)
{
    double v = x;

    switch (op) {
    case WTT_OP_NEG:
        return -x;
    case WTT_OP_SQUARE:
        return (float) (v * v);
    case WTT_OP_SQRT:
        return (float) sqrt(v);
    case WTT_OP_LOG:
        return (float) log(v);
    case WTT_OP_SIGMOID:
        return (float) (1.0 / (1.0 + exp(-v)));
    default:
        return x;
    }
}


static float
binary(enum wtt_op op, float a, float b)
{
    switch (op) {
    case WTT_OP_ADD:
        return a + b;
    case WTT_OP_SUB:
        return a - b;
    case WTT_OP_MUL:
        return a * b;
    case WTT_OP_DIV_NO_NAN:
        return b == 0.0f ? 0.0f : a / b;
    default:
        return 0.0f;
    }
}


static int32_t
binary_i(enum wtt_op op, int32_t a, int32_t b)
{
    switch (op) {
    case WTT_OP_ADD:
        return a + b;
    case WTT_OP_SUB:
        return a - b;
    case WTT_OP_MUL:
        return a * b;
    case WTT_OP_DIV_NO_NAN:
        return b == 0 ? 0 : a / b;
    default:
        return 0;
    }
}


/*
 * Broadcast strides of `t` against the output shape `ne[rank]`: a
 * dimension of size 1 (or missing, on the left) gets stride 0.
 */
static void
bcast_strides(const struct wtt_tensor *t, int rank, const int64_t *ne,
              int64_t *st)
{
    int64_t s = 1;
    int     off = rank - t->rank;

    for (int i = rank - 1; i >= 0; i--) {
        int j = i - off;
        if (j < 0 || t->ne[j] == 1) {
            st[i] = 0;
        } else {
            st[i] = s;
        }
        if (j >= 0) {
            s *= t->ne[j];
        }
        (void) ne;
    }
}


static int
op_binary(struct wtt_node *n, const char **err)
{
    const struct wtt_tensor *a = n->src[0], *b = n->src[1];
    int                      rank = a->rank > b->rank ? a->rank : b->rank;
    int64_t                  ne[WTT_MAX_RANK], sa[WTT_MAX_RANK],
                             sb[WTT_MAX_RANK], idx[WTT_MAX_RANK] = { 0 };
    int64_t                  total, o;

    if (a->dtype != b->dtype) {
        *err = "binary op: operand types differ";
        return -1;
    }
    for (int i = 0; i < rank; i++) {
        int     ia = i - (rank - a->rank), ib = i - (rank - b->rank);
        int64_t da = ia >= 0 ? a->ne[ia] : 1, db = ib >= 0 ? b->ne[ib] : 1;
        if (da != db && da != 1 && db != 1) {
            *err = "binary op: shapes do not broadcast";
            return -1;
        }
        ne[i] = da == 1 ? db : da;
    }
    if (wtt_tensor_alloc(&n->out, a->dtype, rank, ne) != 0) {
        *err = "out of memory";
        return WTT_ENOMEM;
    }
    total = wtt_tensor_nelem(&n->out);
    if (total == 0) {
        return 0;
    }
    /* The common cases first: same shape, or one side a scalar. */
    if (a->dtype == WTT_F32) {
        const float *x = a->data, *y = b->data;
        float       *z = n->out.data;
        int64_t      na = wtt_tensor_nelem(a), nb = wtt_tensor_nelem(b);
        if (na == total && nb == total) {
            for (o = 0; o < total; o++) {
                z[o] = binary(n->op, x[o], y[o]);
            }
            return 0;
        }
        if (na == total && nb == 1) {
            for (o = 0; o < total; o++) {
                z[o] = binary(n->op, x[o], y[0]);
            }
            return 0;
        }
        if (na == 1 && nb == total) {
            for (o = 0; o < total; o++) {
                z[o] = binary(n->op, x[0], y[o]);
            }
            return 0;
        }
    }
    bcast_strides(a, rank, ne, sa);
    bcast_strides(b, rank, ne, sb);
    for (o = 0; o < total; o++) {
        int64_t oa = 0, ob = 0;
        for (int i = 0; i < rank; i++) {
            oa += idx[i] * sa[i];
            ob += idx[i] * sb[i];
        }
        if (a->dtype == WTT_F32) {
            ((float *) n->out.data)[o] =
                binary(n->op, ((const float *) a->data)[oa],
                       ((const float *) b->data)[ob]);
        } else {
            ((int32_t *) n->out.data)[o] =
                binary_i(n->op, ((const int32_t *) a->data)[oa],
                         ((const int32_t *) b->data)[ob]);
        }
        for (int i = rank - 1; i >= 0; i--) {
            if (++idx[i] < ne[i]) {
                break;
            }
            idx[i] = 0;
        }
    }
    return 0;
}


int
wtt_cpu_op_eltwise(struct wtt_node *n, const char **err)
{
    const struct wtt_tensor *x = n->src[0];
    int64_t                  total;

    switch (n->op) {
    case WTT_OP_ADD:
    case WTT_OP_SUB:
    case WTT_OP_MUL:
    case WTT_OP_DIV_NO_NAN:
        return op_binary(n, err);
    default:
        break;
    }
    if (x->dtype != WTT_F32) {
        *err = "unary op: float32 only";
        return -1;
    }
    if (wtt_tensor_alloc(&n->out, WTT_F32, x->rank, x->ne) != 0) {
        *err = "out of memory";
        return WTT_ENOMEM;
    }
    total = wtt_tensor_nelem(x);
    for (int64_t i = 0; i < total; i++) {
        ((float *) n->out.data)[i] = unary(n->op, ((const float *) x->data)[i]);
    }
    return 0;
}
