/*
 * layout.c: ops that copy data into a new arrangement without arithmetic:
 * Transpose, Pad, MirrorPad, StridedSlice, Pack, ConcatV2. Semantics follow
 * TensorFlow's definitions. (Ops that only relabel a shape are in view.c.)
 */
#include "ops.h"

#include <string.h>


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
    const struct wtt_tensor *x = n->src[0];
    int64_t                  ne[WTT_MAX_RANK], st[WTT_MAX_RANK],
                             pst[WTT_MAX_RANK], idx[WTT_MAX_RANK] = { 0 };
    int                      perm[WTT_MAX_RANK], rank = x->rank;
    const uint32_t          *in = x->data;
    uint32_t                *out;
    int64_t                  total, o = 0;

    if (wtt_tensor_nelem(n->src[1]) != rank) {
        *err = "Transpose: permutation does not match the rank";
        return -1;
    }
    strides_of(x, st);
    for (int i = 0; i < rank; i++) {
        perm[i] = (int) wtt_tensor_int(n->src[1], i);
        ne[i] = x->ne[perm[i]];
        pst[i] = st[perm[i]];
    }
    if (wtt_tensor_alloc(&n->out, x->dtype, rank, ne) != 0) {
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
            base += idx[i] * pst[i];
        }
        for (int64_t k = 0; k < ne[rank - 1]; k++) {
            out[o++] = in[base + k * pst[rank - 1]];
        }
    } while (next_index(idx, ne, rank - 1));
    return 0;
}


/* Where a padded position reads from, for MirrorPad. */
static int64_t
mirror_index(int64_t j, int64_t d, int reflect)
{
    if (reflect) {
        return j < 0 ? -j : j >= d ? 2 * (d - 1) - j : j;
    }
    return j < 0 ? -j - 1 : j >= d ? 2 * d - 1 - j : j;
}


/* Pad and MirrorPad: paddings is [rank, 2]. */
static int
op_pad(struct wtt_node *n, const char **err)
{
    const struct wtt_tensor *x = n->src[0], *p = n->src[1];
    int64_t                  ne[WTT_MAX_RANK], before[WTT_MAX_RANK],
                             st[WTT_MAX_RANK], idx[WTT_MAX_RANK] = { 0 };
    int                      rank = x->rank, mirror = n->op == WTT_OP_MIRROR_PAD;
    const uint32_t          *in = x->data;
    uint32_t                *out;
    int64_t                  o = 0;

    if (wtt_tensor_nelem(p) != 2 * rank) {
        *err = "Pad: paddings do not match the rank";
        return -1;
    }
    for (int i = 0; i < rank; i++) {
        before[i] = wtt_tensor_int(p, 2 * i);
        ne[i] = x->ne[i] + before[i] + wtt_tensor_int(p, 2 * i + 1);
        if (mirror && (before[i] >= x->ne[i] + !n->reflect
                       || ne[i] - x->ne[i] - before[i]
                          >= x->ne[i] + !n->reflect))
        {
            *err = "MirrorPad: padding larger than the input";
            return -1;
        }
    }
    if (wtt_tensor_alloc(&n->out, x->dtype, rank, ne) != 0) {
        *err = "out of memory";
        return WTT_ENOMEM;
    }
    out = n->out.data;
    if (wtt_tensor_nelem(&n->out) == 0) {
        return 0;
    }
    strides_of(x, st);
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
                    j = mirror_index(j, di, n->reflect);
                }
                off += j * st[i];
            }
            if (!inside) {
                memset(out + o, 0, (size_t) rowlen * 4);
            } else {
                const uint32_t *row = in + off;
                for (int64_t k = 0; k < bl; k++) {
                    out[o + k] = mirror ? row[mirror_index(k - bl, d,
                                                           n->reflect)]
                                        : 0;
                }
                memcpy(out + o + bl, row, (size_t) d * 4);
                for (int64_t k = bl + d; k < rowlen; k++) {
                    out[o + k] = mirror ? row[mirror_index(k - bl, d,
                                                           n->reflect)]
                                        : 0;
                }
            }
            o += rowlen;
        } while (rank > 1 && next_index(idx, ne, rank - 1));
    }
    return 0;
}


/* StridedSlice, after TensorFlow's dense-spec construction. */
static int
op_strided_slice(struct wtt_node *n, const char **err)
{
    const struct wtt_tensor *x = n->src[0];
    int                      m = (int) wtt_tensor_nelem(n->src[1]);
    int                      rank = x->rank, full = 0, has_ellipsis = 0;
    int64_t                  b[WTT_MAX_RANK], e[WTT_MAX_RANK], s[WTT_MAX_RANK];
    int                      bm = 0, em = 0, sm = 0;
    int                      gather[2 * WTT_MAX_RANK], ng = 0;
    int64_t                  size[WTT_MAX_RANK], ne[WTT_MAX_RANK],
                             st[WTT_MAX_RANK], idx[WTT_MAX_RANK] = { 0 };
    const uint32_t          *in = x->data;
    uint32_t                *out;
    int64_t                  o = 0;
    int                      nr = 0;

    for (int i = 0; i < m; i++) {
        has_ellipsis |= (n->ellipsis_mask >> i) & 1;
    }
    for (int i = 0; i < m || (!has_ellipsis && full < rank); i++) {
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
            while (full < next) {
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
                return -1;
            }
            b[full] = wtt_tensor_int(n->src[1], i);
            e[full] = wtt_tensor_int(n->src[2], i);
            s[full] = wtt_tensor_int(n->src[3], i);
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
    for (int d = 0; d < rank; d++) {
        int64_t dim = x->ne[d];
        if (s[d] == 0) {
            *err = "StridedSlice: zero stride";
            return -1;
        }
        if ((sm >> d) & 1) {
            int64_t k = b[d] < 0 ? b[d] + dim : b[d];
            if (k < 0 || k >= dim) {
                *err = "StridedSlice: index out of range";
                return -1;
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
        if (gather[g] == -1) {
            ne[nr++] = 1;
        } else if (gather[g] >= 0) {
            ne[nr++] = size[gather[g]];
        }
    }
    if (wtt_tensor_alloc(&n->out, x->dtype, nr, ne) != 0) {
        *err = "out of memory";
        return WTT_ENOMEM;
    }
    out = n->out.data;
    for (int d = 0; d < rank; d++) {
        if (size[d] == 0) {
            return 0;
        }
    }
    strides_of(x, st);
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
    int                      pack = n->op == WTT_OP_PACK;
    int                      k = pack ? n->nsrc : n->nsrc - 1;
    const struct wtt_tensor *x0 = n->src[0];
    int                      rank = x0->rank, axis;
    int64_t                  ne[WTT_MAX_RANK], outer = 1;
    int64_t                  chunks[WTT_MAX_SRC];
    uint32_t                *out;

    axis = pack ? n->axis : (int) wtt_tensor_int(n->src[n->nsrc - 1], 0);
    if (axis < 0) {
        axis += rank + pack;
    }
    if (axis < 0 || axis > rank - !pack || rank + pack > WTT_MAX_RANK) {
        *err = "Pack/Concat: bad axis";
        return -1;
    }
    for (int i = 0; i < axis; i++) {
        outer *= x0->ne[i];
    }
    for (int j = 0; j < k; j++) {
        const struct wtt_tensor *x = n->src[j];
        if (x->rank != rank || x->dtype != x0->dtype) {
            *err = "Pack/Concat: inputs differ in rank or type";
            return -1;
        }
        for (int i = 0; i < rank; i++) {
            int along = !pack && i == axis;
            if (!along && x->ne[i] != x0->ne[i]) {
                *err = "Pack/Concat: inputs differ in shape";
                return -1;
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
    if (wtt_tensor_alloc(&n->out, x0->dtype, rank + pack, ne) != 0) {
        *err = "out of memory";
        return WTT_ENOMEM;
    }
    out = n->out.data;
    for (int j = 0; j < k; j++) {
        chunks[j] = wtt_tensor_nelem(n->src[j]) / (outer ? outer : 1);
    }
    for (int64_t o = 0; o < outer; o++) {
        for (int j = 0; j < k; j++) {
            int64_t         chunk = chunks[j];
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
