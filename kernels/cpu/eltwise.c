/*
 * eltwise.c: elementwise ops with NumPy broadcasting: Add/AddV2, Sub, Mul,
 * DivNoNan, and the unary Neg, Square, Sqrt, Log, Sigmoid. float32, plus
 * int32 for the binary ops (shape arithmetic the planner folds). The
 * broadcast shape and strides are kernels/wtt_shape.c's.
 *
 * Every element is computed by wtt_elem.h's formula, exactly as written
 * there; what this file chooses is only the loop around it. Each loop is
 * written for one op, so that the formula inlines to a few instructions
 * the compiler can vectorise (float32 lanes, or double lanes for the unary
 * ops that round through double), and a broadcast is walked as blocks of
 * contiguous elements rather than index by index.
 */
#include "ops.h"
#include "wtt_elem.h"
#include "wtt_shape.h"

/* x86-64 builds run the loops below with AVX2 where the CPU has it; the
 * lanes compute what the scalar code would, element by element. Not
 * AVX-512: these loops are short and bound by memory, and with 512-bit
 * vectors the Concat that follows the Add of harmonic stacking measured
 * 10 ms slower per minute of audio (43 against 32 ms, one thread). */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define ELT_CLONES \
    __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define ELT_CLONES
#endif

/* How a block of n output elements reads its operands. */
enum block_kind {
    BLOCK_SAME,             /* z[i] = f(x[i], y[i]) */
    BLOCK_B_ONE,            /* z[i] = f(x[i], y[0]) */
    BLOCK_A_ONE,            /* z[i] = f(x[0], y[i]) */
};


/* One op's block loop; `op` is a constant at every call, so the switch in
 * wtt_elem_binary_f folds away. */
static inline __attribute__((always_inline)) void
block_op(int op, int kind, float *restrict z, const float *restrict x,
         const float *restrict y, int64_t n)
{
    if (kind == BLOCK_SAME) {
        for (int64_t i = 0; i < n; i++) {
            z[i] = wtt_elem_binary_f(op, x[i], y[i]);
        }
    } else if (kind == BLOCK_B_ONE) {
        const float b = y[0];
        for (int64_t i = 0; i < n; i++) {
            z[i] = wtt_elem_binary_f(op, x[i], b);
        }
    } else {
        const float a = x[0];
        for (int64_t i = 0; i < n; i++) {
            z[i] = wtt_elem_binary_f(op, a, y[i]);
        }
    }
}


ELT_CLONES
static void
binary_block(int op, int kind, float *restrict z, const float *restrict x,
             const float *restrict y, int64_t n)
{
    switch (op) {
    case WTT_OP_ADD:
        block_op(WTT_OP_ADD, kind, z, x, y, n);
        break;
    case WTT_OP_SUB:
        block_op(WTT_OP_SUB, kind, z, x, y, n);
        break;
    case WTT_OP_MUL:
        block_op(WTT_OP_MUL, kind, z, x, y, n);
        break;
    default:
        block_op(WTT_OP_DIV_NO_NAN, kind, z, x, y, n);
        break;
    }
}


/*
 * The innermost output dimensions that read both operands the same way
 * (both contiguous, or one fixed and the other contiguous) form a block of
 * *len elements, read as *kind; dimensions of size 1 fit any. Returns the
 * number of outer dimensions left to walk by index.
 */
static int
inner_block(const struct wtt_shape_binary *p, int *kind, int64_t *len)
{
    int cls = 0, d;

    *len = 1;
    for (d = p->out.rank - 1; d >= 0; d--) {
        int c;
        if (p->out.ne[d] == 1) {
            continue;
        }
        c = (p->sa[d] != 0) | (p->sb[d] != 0) << 1;
        if (cls != 0 && c != cls) {
            break;
        }
        cls = c;
        *len *= p->out.ne[d];
    }
    *kind = cls == 1 ? BLOCK_B_ONE : cls == 2 ? BLOCK_A_ONE : BLOCK_SAME;
    return d + 1;
}


/* float32 under any broadcast: blocks of contiguous elements, the outer
 * dimensions by index. */
static void
binary_f32(const struct wtt_node *n, const struct wtt_shape_binary *p)
{
    const float *x = n->src[0]->data, *y = n->src[1]->data;
    float       *z = n->out.data;
    int64_t      idx[WTT_MAX_RANK] = { 0 }, len, oa = 0, ob = 0;
    int          kind, outer = inner_block(p, &kind, &len);

    for (int64_t o = 0; o < p->total; o += len) {
        binary_block(n->op, kind, z + o, x + oa, y + ob, len);
        for (int i = outer - 1; i >= 0; i--) {
            oa += p->sa[i];
            ob += p->sb[i];
            if (++idx[i] < p->out.ne[i]) {
                break;
            }
            oa -= idx[i] * p->sa[i];
            ob -= idx[i] * p->sb[i];
            idx[i] = 0;
        }
    }
}


/* int32: shape arithmetic, folded once at load time; index by index. */
static void
binary_i32(const struct wtt_node *n, const struct wtt_shape_binary *p)
{
    const int32_t *x = n->src[0]->data, *y = n->src[1]->data;
    int32_t       *z = n->out.data;
    int64_t        idx[WTT_MAX_RANK] = { 0 };

    for (int64_t o = 0; o < p->total; o++) {
        int64_t oa = 0, ob = 0;
        for (int i = 0; i < p->out.rank; i++) {
            oa += idx[i] * p->sa[i];
            ob += idx[i] * p->sb[i];
        }
        z[o] = wtt_elem_binary_i(n->op, x[oa], y[ob]);
        for (int i = p->out.rank - 1; i >= 0; i--) {
            if (++idx[i] < p->out.ne[i]) {
                break;
            }
            idx[i] = 0;
        }
    }
}


static int
op_binary(struct wtt_node *n, const char **err)
{
    const struct wtt_tensor *a = n->src[0];
    struct wtt_shape_binary  p;
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
    if (a->dtype == WTT_F32) {
        binary_f32(n, &p);
    } else {
        binary_i32(n, &p);
    }
    return 0;
}


static inline __attribute__((always_inline)) void
unary_op(int op, float *restrict z, const float *restrict x, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        z[i] = wtt_elem_unary(op, x[i]);
    }
}


/* Log and Sigmoid call libm's double functions element by element (the
 * reference's rounding depends on them); the others vectorise. */
ELT_CLONES
static void
unary_f32(int op, float *restrict z, const float *restrict x, int64_t n)
{
    switch (op) {
    case WTT_OP_NEG:
        unary_op(WTT_OP_NEG, z, x, n);
        break;
    case WTT_OP_SQUARE:
        unary_op(WTT_OP_SQUARE, z, x, n);
        break;
    case WTT_OP_SQRT:
        unary_op(WTT_OP_SQRT, z, x, n);
        break;
    case WTT_OP_LOG:
        unary_op(WTT_OP_LOG, z, x, n);
        break;
    case WTT_OP_SIGMOID:
        unary_op(WTT_OP_SIGMOID, z, x, n);
        break;
    default:
        unary_op(-1, z, x, n);
        break;
    }
}


int
wtt_cpu_op_eltwise(struct wtt_node *n, const char **err)
{
    const struct wtt_tensor *x = n->src[0];

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
    unary_f32(n->op, n->out.data, x->data, wtt_tensor_nelem(x));
    return 0;
}
