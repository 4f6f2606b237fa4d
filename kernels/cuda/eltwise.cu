/*
 * eltwise.cu: Add/AddV2, Sub, Mul, DivNoNan with NumPy broadcasting, and
 * the unary Neg, Square, Sqrt, Log, Sigmoid: kernels/cpu/eltwise.c on the
 * GPU, one thread per output element.
 *
 * The bits are the CPU's: each output is the same expression on the same
 * operands (float32 for the binary ops, double then one rounding for the
 * unary ones, as the reference computes with JS numbers). No expression
 * has a product feeding a sum, so nvcc has nothing to contract into a
 * fused multiply-add. On the device, log and exp in double are within one
 * unit in the last place of glibc's, which can move a float32 result only
 * when the double lands on a rounding boundary; the host emulation runs the
 * host's libm and matches the CPU exactly.
 *
 * int32 operands (shape arithmetic in host memory, see host.h) are
 * computed on the host by the same bodies.
 */
#include "host.h"

#include <math.h>


WTT_HD static inline float
unary_f(int op, float x)
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


WTT_HD static inline float
binary_op(int op, float a, float b)
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


WTT_HD static inline int32_t
binary_op(int op, int32_t a, int32_t b)
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


/* How output element o finds its operands. */
enum {
    SAME = 0,       /* both have the output's elements */
    A_ONE,          /* a is one element */
    B_ONE,          /* b is one element */
    BCAST,          /* general broadcasting: strides per dimension */
};


/* Output element o of a binary op; T is float or int32_t. */
template <typename T>
struct binary_body {
    int      op, mode, rank;
    const T *a, *b;
    T       *z;
    int64_t  ne[WTT_MAX_RANK], sa[WTT_MAX_RANK], sb[WTT_MAX_RANK];

    WTT_HD void
    operator()(int64_t o) const
    {
        int64_t oa = o, ob = o;

        if (mode == A_ONE) {
            oa = 0;
        } else if (mode == B_ONE) {
            ob = 0;
        } else if (mode == BCAST) {
            int64_t r = o;
            oa = 0;
            ob = 0;
            for (int i = rank - 1; i >= 0; i--) {
                int64_t k = r % ne[i];
                r /= ne[i];
                oa += k * sa[i];
                ob += k * sb[i];
            }
        }
        z[o] = binary_op(op, a[oa], b[ob]);
    }
};


struct unary_body {
    int          op;
    const float *x;
    float       *y;

    WTT_HD void
    operator()(int64_t i) const
    {
        y[i] = unary_f(op, x[i]);
    }
};


/* Broadcast strides of `t` against an output of rank `rank`: a dimension
 * of size 1 (or missing, on the left) gets stride 0 (as eltwise.c). */
static void
bcast_strides(const struct wtt_tensor *t, int rank, int64_t *st)
{
    int64_t s = 1;
    int     off = rank - t->rank;

    for (int i = rank - 1; i >= 0; i--) {
        int j = i - off;
        st[i] = j < 0 || t->ne[j] == 1 ? 0 : s;
        if (j >= 0) {
            s *= t->ne[j];
        }
    }
}


static int
op_binary(struct wtt_node *n, const char **err)
{
    struct wtt_cuda_ctx     *c = (struct wtt_cuda_ctx *) n->ctx;
    const struct wtt_tensor *a = n->src[0], *b = n->src[1];
    int                      rank = a->rank > b->rank ? a->rank : b->rank;
    int64_t                  ne[WTT_MAX_RANK], total, na, nb;
    int                      mode, rc;

    if (a->dtype != b->dtype) {
        *err = "binary op: operand types differ";
        return WTT_EFAIL;
    }
    for (int i = 0; i < rank; i++) {
        int     ia = i - (rank - a->rank), ib = i - (rank - b->rank);
        int64_t da = ia >= 0 ? a->ne[ia] : 1, db = ib >= 0 ? b->ne[ib] : 1;
        if (da != db && da != 1 && db != 1) {
            *err = "binary op: shapes do not broadcast";
            return WTT_EFAIL;
        }
        ne[i] = da == 1 ? db : da;
    }
    rc = wtt_cuda_tensor_alloc(c, &n->out, a->dtype, rank, ne, err);
    if (rc != 0) {
        return rc;
    }
    total = wtt_tensor_nelem(&n->out);
    if (total == 0) {
        return 0;
    }
    na = wtt_tensor_nelem(a);
    nb = wtt_tensor_nelem(b);
    mode = na == total && nb == total ? SAME
           : na == total && nb == 1   ? B_ONE
           : na == 1 && nb == total   ? A_ONE
                                      : BCAST;
    if (a->dtype == WTT_F32) {
        binary_body<float> body;
        body.op = n->op;
        body.mode = mode;
        body.rank = rank;
        body.a = (const float *) a->data;
        body.b = (const float *) b->data;
        body.z = (float *) n->out.data;
        for (int i = 0; i < rank; i++) {
            body.ne[i] = ne[i];
        }
        bcast_strides(a, rank, body.sa);
        bcast_strides(b, rank, body.sb);
        return wtt_cuda_run(c, 0, total, body, err);
    } else {
        uint32_t                ba[WTT_CUDA_HOST_MAX], bb[WTT_CUDA_HOST_MAX];
        const uint32_t         *pa, *pb;
        binary_body<int32_t>    body;
        if ((rc = wtt_cuda_host_data(c, a, ba, &pa, err)) != 0
            || (rc = wtt_cuda_host_data(c, b, bb, &pb, err)) != 0)
        {
            return rc;
        }
        body.op = n->op;
        body.mode = mode;
        body.rank = rank;
        body.a = (const int32_t *) pa;
        body.b = (const int32_t *) pb;
        body.z = (int32_t *) n->out.data;
        for (int i = 0; i < rank; i++) {
            body.ne[i] = ne[i];
        }
        bcast_strides(a, rank, body.sa);
        bcast_strides(b, rank, body.sb);
        return wtt_cuda_run(c, 1, total, body, err);
    }
}


extern "C" int
wtt_cuda_op_eltwise(struct wtt_node *n, const char **err)
{
    struct wtt_cuda_ctx     *c = (struct wtt_cuda_ctx *) n->ctx;
    const struct wtt_tensor *x = n->src[0];
    unary_body               body;
    int                      rc;

    switch (n->op) {
    case WTT_OP_ADD:
    case WTT_OP_SUB:
    case WTT_OP_MUL:
    case WTT_OP_DIV_NO_NAN:
        return op_binary(n, err);
    case WTT_OP_NEG:
    case WTT_OP_SQUARE:
    case WTT_OP_SQRT:
    case WTT_OP_LOG:
    case WTT_OP_SIGMOID:
        break;
    default:
        *err = "eltwise: not an elementwise op";
        return WTT_EFAIL;
    }
    if (x->dtype != WTT_F32) {
        *err = "unary op: float32 only";
        return WTT_EFAIL;
    }
    rc = wtt_cuda_tensor_alloc(c, &n->out, WTT_F32, x->rank, x->ne, err);
    if (rc != 0) {
        return rc;
    }
    body.op = n->op;
    body.x = (const float *) x->data;
    body.y = (float *) n->out.data;
    return wtt_cuda_run(c, 0, wtt_tensor_nelem(x), body, err);
}
