/*
 * layout.c: ops that copy data into a new arrangement without arithmetic:
 * Transpose, Pad, MirrorPad, StridedSlice, Pack, ConcatV2. Semantics follow
 * TensorFlow's definitions. The shapes, masks and checks are
 * kernels/wtt_shape.c's; this file moves the data. (Ops that only relabel a
 * shape are in view.c.)
 */
#include "ops.h"
#include "wtt_shape.h"

#include <string.h>


/* Advances a multi-index over `ne[rank]`; returns 0 after the last one. */
static int
next_index(int64_t *idx, const int64_t *ne, int rank)
{
    for (int i = rank - 1; i >= 0; i--) {
        if (++idx[i] < ne[i]) {
            return 1;
        }
        idx[i] = 0;
    }
    return 0;
}


static int
op_transpose(struct wtt_node *n, const char **err)
{
    const struct wtt_tensor   *x = n->src[0];
    struct wtt_shape_ints      perm;
    struct wtt_shape_transpose p;
    int64_t                    idx[WTT_MAX_RANK] = { 0 };
    int                        rank = x->rank, rc;
    const uint32_t            *in = x->data;
    uint32_t                  *out;
    int64_t                    total, o = 0;

    if ((rc = wtt_shape_ints_read(n->src[1], n->src[1]->data, &perm,
                                  err)) != 0
        || (rc = wtt_shape_transpose(n, &perm, &p, err)) != 0)
    {
        return rc;
    }
    if (wtt_tensor_alloc(&n->out, x->dtype, rank, p.out.ne) != 0) {
        *err = "out of memory";
        return WTT_ENOMEM;
    }
    out = n->out.data;
    total = wtt_tensor_nelem(&n->out);
    if (total == 0) {
        return 0;
    }
    /* Innermost output dimension in a tight loop; the rest by index. */
    do {
        int64_t base = 0;
        for (int i = 0; i < rank - 1; i++) {
            base += idx[i] * p.pst[i];
        }
        for (int64_t k = 0; k < p.out.ne[rank - 1]; k++) {
            out[o++] = in[base + k * p.pst[rank - 1]];
        }
    } while (next_index(idx, p.out.ne, rank - 1));
    return 0;
}


/* Pad and MirrorPad: paddings is [rank, 2]. */
static int
op_pad(struct wtt_node *n, const char **err)
{
    const struct wtt_tensor *x = n->src[0];
    struct wtt_shape_ints    pads;
    struct wtt_shape_pad     p;
    const int64_t           *ne = p.out.ne, *before = p.before, *st = p.st;
    int64_t                  idx[WTT_MAX_RANK] = { 0 };
    int                      rank = x->rank, mirror, rc;
    const uint32_t          *in = x->data;
    uint32_t                *out;
    int64_t                  o = 0;

    if ((rc = wtt_shape_ints_read(n->src[1], n->src[1]->data, &pads,
                                  err)) != 0
        || (rc = wtt_shape_pad(n, &pads, &p, err)) != 0)
    {
        return rc;
    }
    mirror = p.mirror;
    if (wtt_tensor_alloc(&n->out, x->dtype, rank, ne) != 0) {
        *err = "out of memory";
        return WTT_ENOMEM;
    }
    out = n->out.data;
    if (wtt_tensor_nelem(&n->out) == 0) {
        return 0;
    }
    /* Trailing unpadded dimensions of size 1 change nothing: drop them so
     * that rows are as long as possible. */
    while (rank > 1 && x->ne[rank - 1] == 1 && ne[rank - 1] == 1) {
        rank--;
    }
    /* Row by row over the last dimension: the middle is one copy, the
     * edges are zeros or mirrored elements. */
    {
        int64_t last = rank - 1, d = x->ne[last], bl = before[last];
        int64_t rowlen = ne[last];
        do {
            int64_t off = 0;
            int     inside = 1;
            for (int i = 0; i < last; i++) {
                int64_t j = idx[i] - before[i], di = x->ne[i];
                if (j < 0 || j >= di) {
                    if (!mirror) {
                        inside = 0;
                        break;
                    }
                    j = wtt_shape_mirror_index(j, di, p.reflect);
                }
                off += j * st[i];
            }
            if (!inside) {
                memset(out + o, 0, (size_t) rowlen * 4);
            } else {
                const uint32_t *row = in + off;
                for (int64_t k = 0; k < bl; k++) {
                    out[o + k] = mirror ? row[wtt_shape_mirror_index(
                                              k - bl, d, p.reflect)]
                                        : 0;
                }
                memcpy(out + o + bl, row, (size_t) d * 4);
                for (int64_t k = bl + d; k < rowlen; k++) {
                    out[o + k] = mirror ? row[wtt_shape_mirror_index(
                                              k - bl, d, p.reflect)]
                                        : 0;
                }
            }
            o += rowlen;
        } while (rank > 1 && next_index(idx, ne, rank - 1));
    }
    return 0;
}


/* StridedSlice: the plan walks every input dimension (wtt_shape.h). */
static int
op_strided_slice(struct wtt_node *n, const char **err)
{
    const struct wtt_tensor *x = n->src[0];
    struct wtt_shape_ints    vb, ve, vs;
    struct wtt_shape_slice   p;
    const int64_t           *b = p.b, *s = p.s, *size = p.size, *st = p.st;
    int64_t                  idx[WTT_MAX_RANK] = { 0 };
    const uint32_t          *in = x->data;
    uint32_t                *out;
    int64_t                  o = 0;
    int                      rank = x->rank, rc;

    if ((rc = wtt_shape_ints_read(n->src[1], n->src[1]->data, &vb, err)) != 0
        || (rc = wtt_shape_ints_read(n->src[2], n->src[2]->data, &ve,
                                     err)) != 0
        || (rc = wtt_shape_ints_read(n->src[3], n->src[3]->data, &vs,
                                     err)) != 0
        || (rc = wtt_shape_strided_slice(n, &vb, &ve, &vs, &p, err)) != 0)
    {
        return rc;
    }
    if (wtt_tensor_alloc(&n->out, x->dtype, p.out.rank, p.out.ne) != 0) {
        *err = "out of memory";
        return WTT_ENOMEM;
    }
    out = n->out.data;
    for (int d = 0; d < rank; d++) {
        if (size[d] == 0) {
            return 0;
        }
    }
    /* Trailing dimensions of size 1 only shorten the rows: drop them. */
    while (rank > 1 && x->ne[rank - 1] == 1) {
        rank--;
    }
    /* The last dimension in a tight loop (one copy when contiguous). */
    do {
        int64_t off = 0, last = rank - 1;
        for (int d = 0; d < last; d++) {
            off += (b[d] + idx[d] * s[d]) * st[d];
        }
        off += b[last] * st[last];
        if (s[last] == 1) {
            memcpy(out + o, in + off, (size_t) size[last] * 4);
            o += size[last];
        } else {
            for (int64_t k = 0; k < size[last]; k++) {
                out[o++] = in[off + k * s[last] * st[last]];
            }
        }
    } while (rank > 1 && next_index(idx, size, rank - 1));
    return 0;
}


/* Pack (stack along a new axis) and ConcatV2 (along an existing one). */
static int
op_join(struct wtt_node *n, const char **err)
{
    struct wtt_shape_ints    axis;
    struct wtt_shape_join    p;
    uint32_t                *out;
    int                      rc;

    if (n->op == WTT_OP_CONCAT && n->nsrc > 1
        && (rc = wtt_shape_ints_read(n->src[n->nsrc - 1],
                                     n->src[n->nsrc - 1]->data, &axis,
                                     err)) != 0)
    {
        return rc;
    }
    if ((rc = wtt_shape_join(n, n->op == WTT_OP_CONCAT ? &axis : NULL, &p,
                             err)) != 0)
    {
        return rc;
    }
    if (wtt_tensor_alloc(&n->out, n->src[0]->dtype, p.out.rank,
                         p.out.ne) != 0)
    {
        *err = "out of memory";
        return WTT_ENOMEM;
    }
    out = n->out.data;
    for (int64_t o = 0; o < p.outer; o++) {
        for (int j = 0; j < p.k; j++) {
            int64_t         chunk = p.chunk[j];
            const uint32_t *src = (const uint32_t *) n->src[j]->data
                                  + o * chunk;
            if (chunk < 16) {
                /* Channel-wise joins move one value at a time. */
                for (int64_t q = 0; q < chunk; q++) {
                    out[q] = src[q];
                }
            } else {
                memcpy(out, src, (size_t) chunk * 4);
            }
            out += chunk;
        }
    }
    return 0;
}


int
wtt_cpu_op_layout(struct wtt_node *n, const char **err)
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
        return -1;
    }
}
