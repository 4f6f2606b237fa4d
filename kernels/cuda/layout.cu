/*
 * layout.cu: Transpose, Pad, MirrorPad, StridedSlice, Pack, ConcatV2:
 * kernels/cpu/layout.c on the GPU. Each is one thread per output element
 * computing where its value comes from; values are moved as 32-bit words,
 * so float and int32 share every body (int32 tensors run on the host, see
 * host.h). The shapes, masks and checks are computed on the host exactly
 * as the CPU does, and only the per-element gather runs on the device.
 *
 * Fusion: the graph's harmonic stacking is StridedSlice -> Pad -> ConcatV2
 * -> StridedSlice, and its constant-Q front end Transpose -> Conv2D; each
 * pair could be one gather, exact since nothing is computed. That needs
 * the planner to hand a kernel its consumer, which the node-at-a-time
 * interface does not; they are memory-bound copies of a few MB per batch.
 */
#include "host.h"


/* Row-major element strides of `t`. */
static void
strides_of(const struct wtt_tensor *t, int64_t *st)
{
    int64_t s = 1;

    for (int i = t->rank - 1; i >= 0; i--) {
        st[i] = s;
        s *= t->ne[i];
    }
}


/* ---------------------------------------------------------------------------
 * Transpose
 * ------------------------------------------------------------------------- */

struct transpose_body {
    int             rank;
    int64_t         ne[WTT_MAX_RANK];   /* output shape */
    int64_t         pst[WTT_MAX_RANK];  /* input stride of each output dim */
    const uint32_t *in;
    uint32_t       *out;

    WTT_HD void
    operator()(int64_t o) const
    {
        int64_t r = o, off = 0;

        for (int i = rank - 1; i >= 0; i--) {
            off += (r % ne[i]) * pst[i];
            r /= ne[i];
        }
        out[o] = in[off];
    }
};


static int
op_transpose(struct wtt_node *n, const char **err)
{
    struct wtt_cuda_ctx     *c = (struct wtt_cuda_ctx *) n->ctx;
    const struct wtt_tensor *x = n->src[0];
    int64_t                  st[WTT_MAX_RANK], perm[WTT_CUDA_HOST_MAX], np;
    int                      rank = x->rank, rc;
    uint32_t                 buf[WTT_CUDA_HOST_MAX];
    transpose_body           body;

    rc = wtt_cuda_host_ints(c, n->src[1], perm, WTT_CUDA_HOST_MAX, &np, err);
    if (rc != 0) {
        return rc;
    }
    if (np != rank) {
        *err = "Transpose: permutation does not match the rank";
        return WTT_EFAIL;
    }
    strides_of(x, st);
    body.rank = rank;
    for (int i = 0; i < rank; i++) {
        if (perm[i] < 0 || perm[i] >= rank) {
            *err = "Transpose: permutation out of range";
            return WTT_EFAIL;
        }
        body.ne[i] = x->ne[perm[i]];
        body.pst[i] = st[perm[i]];
    }
    rc = wtt_cuda_tensor_alloc(c, &n->out, x->dtype, rank, body.ne, err);
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
 * Pad, MirrorPad
 * ------------------------------------------------------------------------- */

/* Where a padded position reads from, for MirrorPad (as layout.c). */
WTT_HD static inline int64_t
mirror_index(int64_t j, int64_t d, int reflect)
{
    if (reflect) {
        return j < 0 ? -j : j >= d ? 2 * (d - 1) - j : j;
    }
    return j < 0 ? -j - 1 : j >= d ? 2 * d - 1 - j : j;
}


struct pad_body {
    int             rank, mirror, reflect;
    int64_t         ne[WTT_MAX_RANK];       /* output shape */
    int64_t         xne[WTT_MAX_RANK];      /* input shape */
    int64_t         before[WTT_MAX_RANK];
    int64_t         st[WTT_MAX_RANK];       /* input strides */
    const uint32_t *in;
    uint32_t       *out;

    WTT_HD void
    operator()(int64_t o) const
    {
        int64_t r = o, off = 0;

        for (int i = rank - 1; i >= 0; i--) {
            int64_t j = r % ne[i] - before[i];
            r /= ne[i];
            if (j < 0 || j >= xne[i]) {
                if (!mirror) {
                    out[o] = 0;
                    return;
                }
                j = mirror_index(j, xne[i], reflect);
            }
            off += j * st[i];
        }
        out[o] = in[off];
    }
};


/* Pad and MirrorPad: paddings is [rank, 2]. */
static int
op_pad(struct wtt_node *n, const char **err)
{
    struct wtt_cuda_ctx     *c = (struct wtt_cuda_ctx *) n->ctx;
    const struct wtt_tensor *x = n->src[0];
    int64_t                  p[WTT_CUDA_HOST_MAX], np;
    int                      rank = x->rank, rc;
    uint32_t                 buf[WTT_CUDA_HOST_MAX];
    pad_body                 body;

    rc = wtt_cuda_host_ints(c, n->src[1], p, WTT_CUDA_HOST_MAX, &np, err);
    if (rc != 0) {
        return rc;
    }
    if (np != 2 * rank) {
        *err = "Pad: paddings do not match the rank";
        return WTT_EFAIL;
    }
    body.rank = rank;
    body.mirror = n->op == WTT_OP_MIRROR_PAD;
    body.reflect = n->reflect;
    for (int i = 0; i < rank; i++) {
        body.before[i] = p[2 * i];
        body.xne[i] = x->ne[i];
        body.ne[i] = x->ne[i] + p[2 * i] + p[2 * i + 1];
        if (body.mirror && (p[2 * i] >= x->ne[i] + !n->reflect
                            || p[2 * i + 1] >= x->ne[i] + !n->reflect))
        {
            *err = "MirrorPad: padding larger than the input";
            return WTT_EFAIL;
        }
    }
    strides_of(x, body.st);
    rc = wtt_cuda_tensor_alloc(c, &n->out, x->dtype, rank, body.ne, err);
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
 * StridedSlice
 * ------------------------------------------------------------------------- */

/* Output element o walks size[] over every input dimension (shrunk ones
 * have size 1), which is the output's order whatever the masks add or
 * remove. */
struct slice_body {
    int             rank;
    int64_t         size[WTT_MAX_RANK], b[WTT_MAX_RANK], s[WTT_MAX_RANK];
    int64_t         st[WTT_MAX_RANK];
    const uint32_t *in;
    uint32_t       *out;

    WTT_HD void
    operator()(int64_t o) const
    {
        int64_t r = o, off = 0;

        for (int i = rank - 1; i >= 0; i--) {
            off += (b[i] + (r % size[i]) * s[i]) * st[i];
            r /= size[i];
        }
        out[o] = in[off];
    }
};


/* StridedSlice, after TensorFlow's dense-spec construction (layout.c's,
 * step for step). */
static int
op_strided_slice(struct wtt_node *n, const char **err)
{
    struct wtt_cuda_ctx     *c = (struct wtt_cuda_ctx *) n->ctx;
    const struct wtt_tensor *x = n->src[0];
    int64_t                  vb[WTT_CUDA_HOST_MAX], ve[WTT_CUDA_HOST_MAX],
                             vs[WTT_CUDA_HOST_MAX], nb, nen, nsv;
    int                      m, rank = x->rank, full = 0, has_ellipsis = 0;
    int64_t                  b[WTT_MAX_RANK], e[WTT_MAX_RANK], s[WTT_MAX_RANK];
    int                      bm = 0, em = 0, sm = 0;
    int                      gather[2 * WTT_MAX_RANK], ng = 0;
    int64_t                  size[WTT_MAX_RANK], ne[WTT_MAX_RANK];
    int                      nr = 0, rc;
    uint32_t                 buf[WTT_CUDA_HOST_MAX];
    slice_body               body;

    if ((rc = wtt_cuda_host_ints(c, n->src[1], vb, WTT_CUDA_HOST_MAX, &nb,
                                 err)) != 0
        || (rc = wtt_cuda_host_ints(c, n->src[2], ve, WTT_CUDA_HOST_MAX,
                                    &nen, err)) != 0
        || (rc = wtt_cuda_host_ints(c, n->src[3], vs, WTT_CUDA_HOST_MAX,
                                    &nsv, err)) != 0)
    {
        return rc;
    }
    m = (int) nb;
    if (nen < m || nsv < m) {
        *err = "StridedSlice: begin, end and strides differ in length";
        return WTT_EFAIL;
    }
    for (int i = 0; i < m; i++) {
        has_ellipsis |= (n->ellipsis_mask >> i) & 1;
    }
    for (int i = 0; i < m || (!has_ellipsis && full < rank); i++) {
        if (ng >= 2 * WTT_MAX_RANK) {
            *err = "StridedSlice: too many slice dimensions";
            return WTT_EFAIL;
        }
        if (i >= m) {
            /* No ellipsis: the dimensions left over are taken whole. */
            b[full] = 0;
            e[full] = 0;
            s[full] = 1;
            bm |= 1 << full;
            em |= 1 << full;
            gather[ng++] = full++;
            continue;
        }
        if ((n->ellipsis_mask >> i) & 1) {
            int after = 0, next;
            for (int j = i + 1; j < m; j++) {
                after += !((n->new_axis_mask >> j) & 1);
            }
            next = rank - after;
            while (full < next && ng < 2 * WTT_MAX_RANK) {
                b[full] = 0;
                e[full] = 0;
                s[full] = 1;
                bm |= 1 << full;
                em |= 1 << full;
                gather[ng++] = full++;
            }
        } else if ((n->new_axis_mask >> i) & 1) {
            gather[ng++] = -1;
        } else {
            if (full >= rank) {
                *err = "StridedSlice: more slice dimensions than the input";
                return WTT_EFAIL;
            }
            b[full] = vb[i];
            e[full] = ve[i];
            s[full] = vs[i];
            if ((n->begin_mask >> i) & 1) {
                bm |= 1 << full;
            }
            if ((n->end_mask >> i) & 1) {
                em |= 1 << full;
            }
            if ((n->shrink_axis_mask >> i) & 1) {
                sm |= 1 << full;
                gather[ng++] = -2;
            } else {
                gather[ng++] = full;
            }
            full++;
        }
    }
    if (full < rank) {
        /* An ellipsis after the last explicit dimension; layout.c leaves
         * these unset, which never happens for a well-formed graph. */
        *err = "StridedSlice: slice does not cover the input";
        return WTT_EFAIL;
    }
    for (int d = 0; d < rank; d++) {
        int64_t dim = x->ne[d];
        if (s[d] == 0) {
            *err = "StridedSlice: zero stride";
            return WTT_EFAIL;
        }
        if ((sm >> d) & 1) {
            int64_t k = b[d] < 0 ? b[d] + dim : b[d];
            if (k < 0 || k >= dim) {
                *err = "StridedSlice: index out of range";
                return WTT_EFAIL;
            }
            b[d] = k;
            s[d] = 1;
            size[d] = 1;
            continue;
        }
        if ((bm >> d) & 1) {
            b[d] = s[d] > 0 ? 0 : dim - 1;
        } else {
            b[d] = b[d] < 0 ? b[d] + dim : b[d];
            b[d] = s[d] > 0 ? (b[d] < 0 ? 0 : b[d] > dim ? dim : b[d])
                            : (b[d] < -1 ? -1 : b[d] > dim - 1 ? dim - 1
                                                               : b[d]);
        }
        if ((em >> d) & 1) {
            e[d] = s[d] > 0 ? dim : -1;
        } else {
            e[d] = e[d] < 0 ? e[d] + dim : e[d];
            e[d] = s[d] > 0 ? (e[d] < 0 ? 0 : e[d] > dim ? dim : e[d])
                            : (e[d] < -1 ? -1 : e[d] > dim - 1 ? dim - 1
                                                               : e[d]);
        }
        size[d] = s[d] > 0 ? (e[d] - b[d] + s[d] - 1) / s[d]
                           : (b[d] - e[d] - s[d] - 1) / -s[d];
        if (size[d] < 0) {
            size[d] = 0;
        }
    }
    for (int g = 0; g < ng; g++) {
        if (nr >= WTT_MAX_RANK && gather[g] != -2) {
            *err = "StridedSlice: result rank too large";
            return WTT_EFAIL;
        }
        if (gather[g] == -1) {
            ne[nr++] = 1;
        } else if (gather[g] >= 0) {
            ne[nr++] = size[gather[g]];
        }
    }
    rc = wtt_cuda_tensor_alloc(c, &n->out, x->dtype, nr, ne, err);
    if (rc != 0) {
        return rc;
    }
    body.rank = rank;
    for (int d = 0; d < rank; d++) {
        body.size[d] = size[d];
        body.b[d] = b[d];
        body.s[d] = s[d];
    }
    strides_of(x, body.st);
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
    int                      pack = n->op == WTT_OP_PACK;
    int                      k = pack ? n->nsrc : n->nsrc - 1;
    const struct wtt_tensor *x0 = n->src[0];
    int                      rank = x0->rank, axis, rc;
    int64_t                  ne[WTT_MAX_RANK], outer = 1, total;
    uint32_t                 bufs[WTT_MAX_SRC][WTT_CUDA_HOST_MAX];
    join_body                body;

    if (k < 1) {
        *err = "Pack/Concat: no inputs";
        return WTT_EFAIL;
    }
    if (pack) {
        axis = n->axis;
    } else {
        int64_t a[WTT_CUDA_HOST_MAX], na;
        rc = wtt_cuda_host_ints(c, n->src[n->nsrc - 1], a, WTT_CUDA_HOST_MAX,
                                &na, err);
        if (rc != 0) {
            return rc;
        }
        if (na < 1) {
            *err = "Pack/Concat: bad axis";
            return WTT_EFAIL;
        }
        axis = (int) a[0];
    }
    if (axis < 0) {
        axis += rank + pack;
    }
    if (axis < 0 || axis > rank - !pack || rank + pack > WTT_MAX_RANK) {
        *err = "Pack/Concat: bad axis";
        return WTT_EFAIL;
    }
    for (int i = 0; i < axis; i++) {
        outer *= x0->ne[i];
    }
    for (int j = 0; j < k; j++) {
        const struct wtt_tensor *x = n->src[j];
        if (x->rank != rank || x->dtype != x0->dtype) {
            *err = "Pack/Concat: inputs differ in rank or type";
            return WTT_EFAIL;
        }
        for (int i = 0; i < rank; i++) {
            int along = !pack && i == axis;
            if (!along && x->ne[i] != x0->ne[i]) {
                *err = "Pack/Concat: inputs differ in shape";
                return WTT_EFAIL;
            }
        }
    }
    if (pack) {
        for (int i = 0, j = 0; i <= rank; i++) {
            ne[i] = i == axis ? k : x0->ne[j++];
        }
    } else {
        for (int i = 0; i < rank; i++) {
            ne[i] = x0->ne[i];
        }
        ne[axis] = 0;
        for (int j = 0; j < k; j++) {
            ne[axis] += n->src[j]->ne[axis];
        }
    }
    rc = wtt_cuda_tensor_alloc(c, &n->out, x0->dtype, rank + pack, ne, err);
    if (rc != 0) {
        return rc;
    }
    total = wtt_tensor_nelem(&n->out);
    if (total == 0) {
        return 0;
    }
    body.k = k;
    body.row = total / outer;
    body.out = (uint32_t *) n->out.data;
    for (int j = 0; j < k; j++) {
        body.chunk[j] = wtt_tensor_nelem(n->src[j]) / outer;
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
