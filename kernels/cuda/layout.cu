/*
 * layout.cu: Transpose, Pad, MirrorPad, StridedSlice, Pack, ConcatV2:
 * kernels/cpu/layout.c on the GPU. Each is one thread per output element
 * computing where its value comes from; values are moved as 32-bit words,
 * so float and int32 share every body (int32 tensors run on the host, see
 * host.h). The shapes, masks and checks are kernels/wtt_shape.c's, the
 * CPU's own, computed on the host; only the per-element gather runs on the
 * device, with the plan passed by value.
 *
 * Fusion: the graph's harmonic stacking is StridedSlice -> Pad -> ConcatV2
 * -> StridedSlice, and its constant-Q front end Transpose -> Conv2D; each
 * pair could be one gather, exact since nothing is computed. That needs
 * the planner to hand a kernel its consumer, which the node-at-a-time
 * interface does not; they are memory-bound copies of a few MB per batch.
 */
#include "host.h"
#include "wtt_shape.h"


/*
 * Makes n's output of shape `out` (x's type) and runs body over it, one
 * element per call: on the host for int32 (x's data read there), else on
 * the device. For the ops that gather from one input x = n->src[0].
 */
template <typename Body>
static int
gather(struct wtt_node *n, const struct wtt_shape *out, Body &body,
       const char **err)
{
    struct wtt_cuda_ctx     *c = (struct wtt_cuda_ctx *) n->ctx;
    const struct wtt_tensor *x = n->src[0];
    uint32_t                 buf[WTT_CUDA_HOST_MAX];
    int                      rc;

    rc = wtt_cuda_tensor_alloc(c, &n->out, x->dtype, out->rank, out->ne, err);
    if (rc != 0) {
        return rc;
    }
    body.out = (uint32_t *) n->out.data;
    if (x->dtype == WTT_I32) {
        rc = wtt_cuda_host_data(c, x, buf, &body.in, err);
        if (rc != 0) {
            return rc;
        }
        return wtt_cuda_run(c, 1, wtt_tensor_nelem(&n->out), body, err);
    }
    body.in = (const uint32_t *) x->data;
    return wtt_cuda_run(c, 0, wtt_tensor_nelem(&n->out), body, err);
}


/* ---------------------------------------------------------------------------
 * Transpose
 * ------------------------------------------------------------------------- */

struct transpose_body {
    struct wtt_shape_transpose p;
    const uint32_t            *in;
    uint32_t                  *out;

    WTT_HD void
    operator()(int64_t o) const
    {
        int64_t r = o, off = 0;

        for (int i = p.out.rank - 1; i >= 0; i--) {
            off += (r % p.out.ne[i]) * p.pst[i];
            r /= p.out.ne[i];
        }
        out[o] = in[off];
    }
};


static int
op_transpose(struct wtt_node *n, const char **err)
{
    struct wtt_cuda_ctx     *c = (struct wtt_cuda_ctx *) n->ctx;
    struct wtt_shape_ints    perm;
    int                      rc;
    transpose_body           body;

    if ((rc = wtt_cuda_host_ints(c, n->src[1], &perm, err)) != 0
        || (rc = wtt_shape_transpose(n, &perm, &body.p, err)) != 0)
    {
        return rc;
    }
    return gather(n, &body.p.out, body, err);
}


/* ---------------------------------------------------------------------------
 * Pad, MirrorPad
 * ------------------------------------------------------------------------- */

struct pad_body {
    struct wtt_shape_pad p;
    const uint32_t      *in;
    uint32_t            *out;

    WTT_HD void
    operator()(int64_t o) const
    {
        int64_t r = o, off = 0;

        for (int i = p.out.rank - 1; i >= 0; i--) {
            int64_t j = r % p.out.ne[i] - p.before[i];
            r /= p.out.ne[i];
            if (j < 0 || j >= p.xne[i]) {
                if (!p.mirror) {
                    out[o] = 0;
                    return;
                }
                j = wtt_shape_mirror_index(j, p.xne[i], p.reflect);
            }
            off += j * p.st[i];
        }
        out[o] = in[off];
    }
};


/* Pad and MirrorPad: paddings is [rank, 2]. */
static int
op_pad(struct wtt_node *n, const char **err)
{
    struct wtt_cuda_ctx     *c = (struct wtt_cuda_ctx *) n->ctx;
    struct wtt_shape_ints    pads;
    int                      rc;
    pad_body                 body;

    if ((rc = wtt_cuda_host_ints(c, n->src[1], &pads, err)) != 0
        || (rc = wtt_shape_pad(n, &pads, &body.p, err)) != 0)
    {
        return rc;
    }
    return gather(n, &body.p.out, body, err);
}


/* ---------------------------------------------------------------------------
 * StridedSlice
 * ------------------------------------------------------------------------- */

/* Output element o walks the plan's size[] over every input dimension
 * (wtt_shape.h). */
struct slice_body {
    struct wtt_shape_slice p;
    const uint32_t        *in;
    uint32_t              *out;

    WTT_HD void
    operator()(int64_t o) const
    {
        int64_t r = o, off = 0;

        for (int i = p.rank - 1; i >= 0; i--) {
            off += (p.b[i] + (r % p.size[i]) * p.s[i]) * p.st[i];
            r /= p.size[i];
        }
        out[o] = in[off];
    }
};


static int
op_strided_slice(struct wtt_node *n, const char **err)
{
    struct wtt_cuda_ctx     *c = (struct wtt_cuda_ctx *) n->ctx;
    struct wtt_shape_ints    vb, ve, vs;
    int                      rc;
    slice_body               body;

    if ((rc = wtt_cuda_host_ints(c, n->src[1], &vb, err)) != 0
        || (rc = wtt_cuda_host_ints(c, n->src[2], &ve, err)) != 0
        || (rc = wtt_cuda_host_ints(c, n->src[3], &vs, err)) != 0
        || (rc = wtt_shape_strided_slice(n, &vb, &ve, &vs, &body.p,
                                         err)) != 0)
    {
        return rc;
    }
    return gather(n, &body.p.out, body, err);
}


/* ---------------------------------------------------------------------------
 * Pack, ConcatV2
 * ------------------------------------------------------------------------- */

/* The output as [outer][row]: each row is every input's chunk in turn. */
struct join_body {
    int             k;
    int64_t         row;
    int64_t         chunk[WTT_MAX_SRC];
    const uint32_t *src[WTT_MAX_SRC];
    uint32_t       *out;

    WTT_HD void
    operator()(int64_t i) const
    {
        int64_t o = i / row, r = i % row;
        int     j = 0;

        while (j < k - 1 && r >= chunk[j]) {
            r -= chunk[j];
            j++;
        }
        out[i] = src[j][o * chunk[j] + r];
    }
};


/* Pack (stack along a new axis) and ConcatV2 (along an existing one). */
static int
op_join(struct wtt_node *n, const char **err)
{
    struct wtt_cuda_ctx     *c = (struct wtt_cuda_ctx *) n->ctx;
    const struct wtt_tensor *x0 = n->src[0];
    struct wtt_shape_ints    axis;
    struct wtt_shape_join    p;
    int64_t                  total;
    int                      rc;
    uint32_t                 bufs[WTT_MAX_SRC][WTT_CUDA_HOST_MAX];
    join_body                body;

    if (n->op == WTT_OP_CONCAT && n->nsrc > 1
        && (rc = wtt_cuda_host_ints(c, n->src[n->nsrc - 1], &axis,
                                    err)) != 0)
    {
        return rc;
    }
    if ((rc = wtt_shape_join(n, n->op == WTT_OP_CONCAT ? &axis : NULL, &p,
                             err)) != 0)
    {
        return rc;
    }
    rc = wtt_cuda_tensor_alloc(c, &n->out, x0->dtype, p.out.rank, p.out.ne,
                               err);
    if (rc != 0) {
        return rc;
    }
    total = wtt_tensor_nelem(&n->out);
    if (total == 0) {
        return 0;
    }
    body.k = p.k;
    body.row = p.row;
    body.out = (uint32_t *) n->out.data;
    for (int j = 0; j < p.k; j++) {
        body.chunk[j] = p.chunk[j];
        if (x0->dtype == WTT_I32) {
            rc = wtt_cuda_host_data(c, n->src[j], bufs[j], &body.src[j], err);
            if (rc != 0) {
                return rc;
            }
        } else {
            body.src[j] = (const uint32_t *) n->src[j]->data;
        }
    }
    return wtt_cuda_run(c, x0->dtype == WTT_I32, total, body, err);
}


extern "C" int
wtt_cuda_op_layout(struct wtt_node *n, const char **err)
{
    switch (n->op) {
    case WTT_OP_TRANSPOSE:
        return op_transpose(n, err);
    case WTT_OP_PAD:
    case WTT_OP_MIRROR_PAD:
        return op_pad(n, err);
    case WTT_OP_STRIDED_SLICE:
        return op_strided_slice(n, err);
    case WTT_OP_PACK:
    case WTT_OP_CONCAT:
        return op_join(n, err);
    default:
        *err = "layout: not a layout op";
        return WTT_EFAIL;
    }
}
