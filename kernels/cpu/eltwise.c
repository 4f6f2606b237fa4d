/*
 * eltwise.c: elementwise ops with NumPy broadcasting: Add/AddV2, Sub, Mul,
 * DivNoNan, and the unary Neg, Square, Sqrt, Log, Sigmoid. float32, plus
 * int32 for the binary ops (shape arithmetic the planner folds). The
 * broadcast shape and strides are kernels/wtt_shape.c's.
 */
#include "ops.h"
#include "wtt_elem.h"
#include "wtt_shape.h"


static int
op_binary(struct wtt_node *n, const char **err)
{
    const struct wtt_tensor *a = n->src[0], *b = n->src[1];
    struct wtt_shape_binary  p;
    int64_t                  idx[WTT_MAX_RANK] = { 0 }, o;
    int                      rc;

    if ((rc = wtt_shape_binary(n, &p, err)) != 0) {
        return rc;
    }
    if (wtt_tensor_alloc(&n->out, a->dtype, p.out.rank, p.out.ne) != 0) {
        *err = "out of memory";
        return WTT_ENOMEM;
    }
    if (p.total == 0) {
        return 0;
    }
    /* The common cases first: same shape, or one side a scalar. */
    if (a->dtype == WTT_F32 && p.mode != WTT_BCAST_ANY) {
        const float *x = a->data, *y = b->data;
        float       *z = n->out.data;
        if (p.mode == WTT_BCAST_SAME) {
            for (o = 0; o < p.total; o++) {
                z[o] = wtt_elem_binary_f(n->op, x[o], y[o]);
            }
        } else if (p.mode == WTT_BCAST_B_ONE) {
            for (o = 0; o < p.total; o++) {
                z[o] = wtt_elem_binary_f(n->op, x[o], y[0]);
            }
        } else {
            for (o = 0; o < p.total; o++) {
                z[o] = wtt_elem_binary_f(n->op, x[0], y[o]);
            }
        }
        return 0;
    }
    for (o = 0; o < p.total; o++) {
        int64_t oa = 0, ob = 0;
        for (int i = 0; i < p.out.rank; i++) {
            oa += idx[i] * p.sa[i];
            ob += idx[i] * p.sb[i];
        }
        if (a->dtype == WTT_F32) {
            ((float *) n->out.data)[o] =
                wtt_elem_binary_f(n->op, ((const float *) a->data)[oa],
                       ((const float *) b->data)[ob]);
        } else {
            ((int32_t *) n->out.data)[o] =
                wtt_elem_binary_i(n->op, ((const int32_t *) a->data)[oa],
                         ((const int32_t *) b->data)[ob]);
        }
        for (int i = p.out.rank - 1; i >= 0; i--) {
            if (++idx[i] < p.out.ne[i]) {
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
        ((float *) n->out.data)[i] = wtt_elem_unary(n->op, ((const float *) x->data)[i]);
    }
    return 0;
}
