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
 * computed on the host by the same bodies. The broadcast shape and strides
 * are kernels/wtt_shape.c's, as on the CPU.
 */
#include "host.h"
#include "wtt_elem.h"
#include "wtt_shape.h"

#include <math.h>


/* The arithmetic is kernels/wtt_elem.h's, the CPU's own; these overloads
 * let one gather template serve float and int32 operands. */
WTT_HD static inline float
elem_binary(int op, float a, float b)
{
    return wtt_elem_binary_f(op, a, b);
}


WTT_HD static inline int32_t
elem_binary(int op, int32_t a, int32_t b)
{
    return wtt_elem_binary_i(op, a, b);
}


/* Output element o of a binary op; T is float or int32_t. */
template <typename T>
struct binary_body {
    int                     op;
    const T                *a, *b;
    T                      *z;
    struct wtt_shape_binary p;

    WTT_HD void
    operator()(int64_t o) const
    {
        int64_t oa = o, ob = o;

        if (p.mode == WTT_BCAST_A_ONE) {
            oa = 0;
        } else if (p.mode == WTT_BCAST_B_ONE) {
            ob = 0;
        } else if (p.mode == WTT_BCAST_ANY) {
            int64_t r = o;
            oa = 0;
            ob = 0;
            for (int i = p.out.rank - 1; i >= 0; i--) {
                int64_t k = r % p.out.ne[i];
                r /= p.out.ne[i];
                oa += k * p.sa[i];
                ob += k * p.sb[i];
            }
        }
        z[o] = elem_binary(op, a[oa], b[ob]);
    }
};


struct unary_body {
    int          op;
    const float *x;
    float       *y;

    WTT_HD void
    operator()(int64_t i) const
    {
        y[i] = wtt_elem_unary(op, x[i]);
    }
};


static int
op_binary(struct wtt_node *n, const char **err)
{
    struct wtt_cuda_ctx     *c = (struct wtt_cuda_ctx *) n->ctx;
    const struct wtt_tensor *a = n->src[0], *b = n->src[1];
    struct wtt_shape_binary  p;
    int                      rc;

    if ((rc = wtt_shape_binary(n, &p, err)) != 0) {
        return rc;
    }
    rc = wtt_cuda_tensor_alloc(c, &n->out, a->dtype, p.out.rank, p.out.ne,
                               err);
    if (rc != 0) {
        return rc;
    }
    if (p.total == 0) {
        return 0;
    }
    if (a->dtype == WTT_F32) {
        binary_body<float> body;
        body.op = n->op;
        body.a = (const float *) a->data;
        body.b = (const float *) b->data;
        body.z = (float *) n->out.data;
        body.p = p;
        return wtt_cuda_run(c, 0, p.total, body, err);
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
        body.a = (const int32_t *) pa;
        body.b = (const int32_t *) pb;
        body.z = (int32_t *) n->out.data;
        body.p = p;
        return wtt_cuda_run(c, 1, p.total, body, err);
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
