/*
 * wtt_shape.c: TensorFlow's shape rules, once for every backend (see
 * wtt_shape.h). No data is read here but integer operands, which the
 * caller has already brought to host memory.
 */
#include "wtt_shape.h"

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


int
wtt_shape_ints_read(const struct wtt_tensor *t, const void *data,
                    struct wtt_shape_ints *out, const char **err)
{
    int64_t k = wtt_tensor_nelem(t);

    if (k > WTT_SHAPE_MAX_INTS) {
        *err = "too many values in an integer parameter";
        return WTT_EFAIL;
    }
    for (int64_t i = 0; i < k; i++) {
        if (t->dtype == WTT_I32) {
            out->v[i] = ((const int32_t *) data)[i];
        } else {
            out->v[i] = (int64_t) ((const float *) data)[i];
        }
    }
    out->n = k;
    return 0;
}


/* ---------------------------------------------------------------------------
 * Views
 * ------------------------------------------------------------------------- */

int
wtt_shape_reshape(const struct wtt_node *n,
                  const struct wtt_shape_ints *target, struct wtt_shape *out,
                  const char **err)
{
    const struct wtt_tensor *x = n->src[0];
    int64_t                  known = 1, total = wtt_tensor_nelem(x), count = 1;
    int                      unknown = -1;

    if (target->n > WTT_MAX_RANK) {
        *err = "Reshape: rank too large";
        return WTT_EFAIL;
    }
    out->rank = (int) target->n;
    for (int i = 0; i < out->rank; i++) {
        out->ne[i] = target->v[i];
        if (out->ne[i] == -1) {
            unknown = i;
        } else {
            known *= out->ne[i];
        }
    }
    if (unknown >= 0) {
        out->ne[unknown] = known ? total / known : 0;
    }
    for (int i = 0; i < out->rank; i++) {
        count *= out->ne[i];
    }
    if (count != total) {
        *err = "Reshape: element count mismatch";
        return WTT_EFAIL;
    }
    return 0;
}


int
wtt_shape_expand_dims(const struct wtt_node *n,
                      const struct wtt_shape_ints *axis,
                      struct wtt_shape *out, const char **err)
{
    const struct wtt_tensor *x = n->src[0];
    int64_t                  a;

    if (x->rank + 1 > WTT_MAX_RANK) {
        *err = "ExpandDims: rank too large";
        return WTT_EFAIL;
    }
    if (axis->n < 1) {
        *err = "ExpandDims: no axis";
        return WTT_EFAIL;
    }
    a = axis->v[0] < 0 ? axis->v[0] + x->rank + 1 : axis->v[0];
    if (a < 0 || a > x->rank) {
        *err = "ExpandDims: axis out of range";
        return WTT_EFAIL;
    }
    out->rank = x->rank + 1;
    for (int i = 0, j = 0; i <= x->rank; i++) {
        out->ne[i] = i == a ? 1 : x->ne[j++];
    }
    return 0;
}


int
wtt_shape_squeeze(const struct wtt_node *n, struct wtt_shape *out,
                  const char **err)
{
    const struct wtt_tensor *x = n->src[0];
    int                      drop[WTT_MAX_RANK] = { 0 };

    for (int k = 0; k < n->n_squeeze; k++) {
        int d = n->squeeze_dims[k] < 0 ? n->squeeze_dims[k] + x->rank
                                       : n->squeeze_dims[k];
        if (d < 0 || d >= x->rank || x->ne[d] != 1) {
            *err = "Squeeze: dimension is not 1";
            return WTT_EFAIL;
        }
        drop[d] = 1;
    }
    out->rank = 0;
    for (int i = 0; i < x->rank; i++) {
        if (n->n_squeeze == 0 ? x->ne[i] != 1 : !drop[i]) {
            out->ne[out->rank++] = x->ne[i];
        }
    }
    return 0;
}


/* ---------------------------------------------------------------------------
 * Binary ops
 * ------------------------------------------------------------------------- */

/* Broadcast strides of `t` against an output of rank `rank`: a dimension
 * of size 1 (or missing, on the left) gets stride 0. */
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


int
wtt_shape_binary(const struct wtt_node *n, struct wtt_shape_binary *p,
                 const char **err)
{
    const struct wtt_tensor *a = n->src[0], *b = n->src[1];
    int                      rank = a->rank > b->rank ? a->rank : b->rank;
    int64_t                  na, nb;

    if (a->dtype != b->dtype) {
        *err = "binary op: operand types differ";
        return WTT_EFAIL;
    }
    p->out.rank = rank;
    p->total = 1;
    for (int i = 0; i < rank; i++) {
        int     ia = i - (rank - a->rank), ib = i - (rank - b->rank);
        int64_t da = ia >= 0 ? a->ne[ia] : 1, db = ib >= 0 ? b->ne[ib] : 1;
        if (da != db && da != 1 && db != 1) {
            *err = "binary op: shapes do not broadcast";
            return WTT_EFAIL;
        }
        p->out.ne[i] = da == 1 ? db : da;
        p->total *= p->out.ne[i];
    }
    na = wtt_tensor_nelem(a);
    nb = wtt_tensor_nelem(b);
    p->mode = na == p->total && nb == p->total ? WTT_BCAST_SAME
              : na == p->total && nb == 1      ? WTT_BCAST_B_ONE
              : na == 1 && nb == p->total      ? WTT_BCAST_A_ONE
                                               : WTT_BCAST_ANY;
    bcast_strides(a, rank, p->sa);
    bcast_strides(b, rank, p->sb);
    return 0;
}


/* ---------------------------------------------------------------------------
 * Layout
 * ------------------------------------------------------------------------- */

int
wtt_shape_transpose(const struct wtt_node *n,
                    const struct wtt_shape_ints *perm,
                    struct wtt_shape_transpose *p, const char **err)
{
    const struct wtt_tensor *x = n->src[0];
    int64_t                  st[WTT_MAX_RANK];
    int                      seen[WTT_MAX_RANK] = { 0 };

    if (perm->n != x->rank) {
        *err = "Transpose: permutation does not match the rank";
        return WTT_EFAIL;
    }
    strides_of(x, st);
    p->out.rank = x->rank;
    for (int i = 0; i < x->rank; i++) {
        int64_t d = perm->v[i];
        if (d < 0 || d >= x->rank) {
            *err = "Transpose: permutation out of range";
            return WTT_EFAIL;
        }
        /* An axis taken twice is no permutation: the output would hold
         * more elements than the input and read past it (found by
         * spec/fuzz/fuzz_model.c, perm [0, 0]). */
        if (seen[d]++) {
            *err = "Transpose: permutation repeats an axis";
            return WTT_EFAIL;
        }
        p->out.ne[i] = x->ne[d];
        p->pst[i] = st[d];
    }
    return 0;
}


int
wtt_shape_pad(const struct wtt_node *n, const struct wtt_shape_ints *paddings,
              struct wtt_shape_pad *p, const char **err)
{
    const struct wtt_tensor *x = n->src[0];
    const int64_t           *v = paddings->v;

    if (paddings->n != 2 * x->rank) {
        *err = "Pad: paddings do not match the rank";
        return WTT_EFAIL;
    }
    p->out.rank = x->rank;
    p->mirror = n->op == WTT_OP_MIRROR_PAD;
    p->reflect = n->reflect;
    for (int i = 0; i < x->rank; i++) {
        /* TensorFlow refuses them; a kernel would write before its row. */
        if (v[2 * i] < 0 || v[2 * i + 1] < 0) {
            *err = "Pad: negative padding";
            return WTT_EFAIL;
        }
        p->xne[i] = x->ne[i];
        p->before[i] = v[2 * i];
        p->out.ne[i] = x->ne[i] + v[2 * i] + v[2 * i + 1];
        /* REFLECT leaves out the edge, so it has one value fewer to give. */
        if (p->mirror && (v[2 * i] >= x->ne[i] + !n->reflect
                          || v[2 * i + 1] >= x->ne[i] + !n->reflect))
        {
            *err = "MirrorPad: padding larger than the input";
            return WTT_EFAIL;
        }
    }
    strides_of(x, p->st);
    return 0;
}


/* Dimension d of a slice taken whole (an ellipsis, or none given). */
static void
slice_whole(int64_t *b, int64_t *e, int64_t *s, int *bm, int *em, int d)
{
    b[d] = 0;
    e[d] = 0;
    s[d] = 1;
    *bm |= 1 << d;
    *em |= 1 << d;
}


/* Clamps a begin or end index of a dimension of size dim for a step of
 * sign `up` (TensorFlow's: [0, dim] up, [-1, dim - 1] down). */
static int64_t
slice_clamp(int64_t i, int64_t dim, int up)
{
    i = i < 0 ? i + dim : i;
    if (up) {
        return i < 0 ? 0 : i > dim ? dim : i;
    }
    return i < -1 ? -1 : i > dim - 1 ? dim - 1 : i;
}


int
wtt_shape_strided_slice(const struct wtt_node *n,
                        const struct wtt_shape_ints *begin,
                        const struct wtt_shape_ints *end,
                        const struct wtt_shape_ints *strides,
                        struct wtt_shape_slice *p, const char **err)
{
    const struct wtt_tensor *x = n->src[0];
    int                      m = (int) begin->n, rank = x->rank;
    int                      full = 0, has_ellipsis = 0;
    int64_t                  e[WTT_MAX_RANK];
    int64_t                 *b = p->b, *s = p->s, *size = p->size;
    int                      bm = 0, em = 0, sm = 0;
    /* Per slice dimension, what the output gets: input dim d >= 0, a new
     * axis (-1) or nothing (-2, shrunk). */
    int                      gather[2 * WTT_MAX_RANK], ng = 0;

    if (end->n < m || strides->n < m) {
        *err = "StridedSlice: begin, end and strides differ in length";
        return WTT_EFAIL;
    }
    if (m > 2 * WTT_MAX_RANK + 1) {
        /* More than every input dimension, every new axis and one
         * ellipsis; also keeps the mask shifts below an int's width. */
        *err = "StridedSlice: too many slice dimensions";
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
            slice_whole(b, e, s, &bm, &em, full);
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
                slice_whole(b, e, s, &bm, &em, full);
                gather[ng++] = full++;
            }
        } else if ((n->new_axis_mask >> i) & 1) {
            gather[ng++] = -1;
        } else {
            if (full >= rank) {
                *err = "StridedSlice: more slice dimensions than the input";
                return WTT_EFAIL;
            }
            b[full] = begin->v[i];
            e[full] = end->v[i];
            s[full] = strides->v[i];
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
        /* An ellipsis after the last explicit dimension, which a
         * well-formed graph never has. */
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
            b[d] = slice_clamp(b[d], dim, s[d] > 0);
        }
        if ((em >> d) & 1) {
            e[d] = s[d] > 0 ? dim : -1;
        } else {
            e[d] = slice_clamp(e[d], dim, s[d] > 0);
        }
        size[d] = s[d] > 0 ? (e[d] - b[d] + s[d] - 1) / s[d]
                           : (b[d] - e[d] - s[d] - 1) / -s[d];
        if (size[d] < 0) {
            size[d] = 0;
        }
    }
    p->out.rank = 0;
    for (int g = 0; g < ng; g++) {
        if (p->out.rank >= WTT_MAX_RANK && gather[g] != -2) {
            *err = "StridedSlice: result rank too large";
            return WTT_EFAIL;
        }
        if (gather[g] == -1) {
            p->out.ne[p->out.rank++] = 1;
        } else if (gather[g] >= 0) {
            p->out.ne[p->out.rank++] = size[gather[g]];
        }
    }
    p->rank = rank;
    strides_of(x, p->st);
    return 0;
}


int
wtt_shape_join(const struct wtt_node *n, const struct wtt_shape_ints *axis,
               struct wtt_shape_join *p, const char **err)
{
    int                      pack = n->op == WTT_OP_PACK;
    int                      k = pack ? n->nsrc : n->nsrc - 1;
    const struct wtt_tensor *x0 = n->src[0];
    int                      rank, a;

    if (k < 1) {
        *err = "Pack/Concat: no inputs";
        return WTT_EFAIL;
    }
    if (!pack && (axis == NULL || axis->n < 1)) {
        *err = "Pack/Concat: bad axis";
        return WTT_EFAIL;
    }
    rank = x0->rank;
    a = pack ? n->axis : (int) axis->v[0];
    if (a < 0) {
        a += rank + pack;
    }
    if (a < 0 || a > rank - !pack || rank + pack > WTT_MAX_RANK) {
        *err = "Pack/Concat: bad axis";
        return WTT_EFAIL;
    }
    p->k = k;
    p->outer = 1;
    for (int i = 0; i < a; i++) {
        p->outer *= x0->ne[i];
    }
    for (int j = 0; j < k; j++) {
        const struct wtt_tensor *x = n->src[j];
        if (x->rank != rank || x->dtype != x0->dtype) {
            *err = "Pack/Concat: inputs differ in rank or type";
            return WTT_EFAIL;
        }
        for (int i = 0; i < rank; i++) {
            int along = !pack && i == a;
            if (!along && x->ne[i] != x0->ne[i]) {
                *err = "Pack/Concat: inputs differ in shape";
                return WTT_EFAIL;
            }
        }
    }
    p->out.rank = rank + pack;
    if (pack) {
        for (int i = 0, j = 0; i <= rank; i++) {
            p->out.ne[i] = i == a ? k : x0->ne[j++];
        }
    } else {
        for (int i = 0; i < rank; i++) {
            p->out.ne[i] = x0->ne[i];
        }
        p->out.ne[a] = 0;
        for (int j = 0; j < k; j++) {
            p->out.ne[a] += n->src[j]->ne[a];
        }
    }
    p->row = 0;
    for (int j = 0; j < k; j++) {
        p->chunk[j] = wtt_tensor_nelem(n->src[j])
                      / (p->outer ? p->outer : 1);
        p->row += p->chunk[j];
    }
    return 0;
}


/* ---------------------------------------------------------------------------
 * Reductions
 * ------------------------------------------------------------------------- */

int
wtt_shape_reduce(const struct wtt_node *n, const struct wtt_shape_ints *axes,
                 struct wtt_shape_reduce *p, const char **err)
{
    const struct wtt_tensor *x = n->src[0];
    int                      red[WTT_MAX_RANK] = { 0 }, rank = x->rank;
    int64_t                  st[WTT_MAX_RANK], s = 1;

    for (int64_t i = 0; i < axes->n; i++) {
        int64_t a = axes->v[i] < 0 ? axes->v[i] + rank : axes->v[i];
        if (a < 0 || a >= rank) {
            *err = "reduce: axis out of range";
            return WTT_EFAIL;
        }
        red[a] = 1;
    }
    strides_of(x, st);
    /* Output strides over the kept shape (reduced axes stride 0). */
    for (int i = rank - 1; i >= 0; i--) {
        p->ost[i] = red[i] ? 0 : s;
        s *= red[i] ? 1 : x->ne[i];
    }
    p->out.rank = 0;
    p->kept_n = 0;
    p->red_n = 0;
    p->red_count = 1;
    for (int i = 0; i < rank; i++) {
        if (red[i]) {
            p->red_ne[p->red_n] = x->ne[i];
            p->red_st[p->red_n++] = st[i];
            p->red_count *= x->ne[i];
        } else {
            p->kept_ne[p->kept_n] = x->ne[i];
            p->kept_st[p->kept_n++] = st[i];
        }
        if (!red[i] || n->keep_dims) {
            p->out.ne[p->out.rank++] = red[i] ? 1 : x->ne[i];
        }
    }
    return 0;
}


/* ---------------------------------------------------------------------------
 * Conv2D
 * ------------------------------------------------------------------------- */

/* Output size and padding of one dimension (TensorFlow's SAME / VALID). */
static void
conv_dim(int64_t in, int64_t k, int s, int d, enum wtt_padding pad,
         int64_t *out, int64_t *before, int64_t *after)
{
    int64_t ek = (k - 1) * d + 1;

    if (pad == WTT_PAD_SAME) {
        int64_t total;
        *out = (in + s - 1) / s;
        total = (*out - 1) * s + ek - in;
        total = total > 0 ? total : 0;
        *before = total / 2;
        *after = total - *before;
    } else {
        *out = in >= ek ? (in - ek) / s + 1 : 0;
        *before = 0;
        *after = 0;
    }
}


int
wtt_shape_conv2d(const struct wtt_node *n, struct wtt_shape_conv *g,
                 const char **err)
{
    const struct wtt_tensor *x = n->src[0], *w = n->src[1];

    memset(g, 0, sizeof(*g));
    if (n->nsrc < 2 || x->rank != 4 || w->rank != 4 || x->dtype != WTT_F32
        || w->dtype != WTT_F32)
    {
        *err = "Conv2D: expects NHWC input and HWIO filter";
        return WTT_EFAIL;
    }
    if (n->fused_bias && (n->nsrc < 3 || n->src[2]->dtype != WTT_F32
                          || wtt_tensor_nelem(n->src[2]) != w->ne[3]))
    {
        *err = "Conv2D: bias does not match the filters";
        return WTT_EFAIL;
    }
    g->N = x->ne[0];
    g->H = x->ne[1];
    g->W = x->ne[2];
    g->C = x->ne[3];
    g->KH = w->ne[0];
    g->KW = w->ne[1];
    g->O = w->ne[3];
    if (w->ne[2] != g->C) {
        *err = "Conv2D: filter channels do not match the input";
        return WTT_EFAIL;
    }
    g->sh = n->strides[1];
    g->sw = n->strides[2];
    g->dh = n->dilations[1];
    g->dw = n->dilations[2];
    if (g->sh < 1 || g->sw < 1 || g->dh < 1 || g->dw < 1) {
        *err = "Conv2D: bad strides or dilations";
        return WTT_EFAIL;
    }
    conv_dim(g->H, g->KH, g->sh, g->dh, n->padding, &g->OH, &g->pt, &g->pb);
    conv_dim(g->W, g->KW, g->sw, g->dw, n->padding, &g->OW, &g->pl, &g->pr);
    g->explicit_pad = g->pt != g->pb || g->pl != g->pr;
    return 0;
}
