/*
 * layout.c: ops that copy data into a new arrangement without arithmetic:
 * Transpose, Pad, MirrorPad, StridedSlice, Pack, ConcatV2. Semantics follow
 * TensorFlow's definitions. The shapes, masks and checks are
 * kernels/wtt_shape.c's; this file moves the data. (Ops that only relabel a
 * shape are in view.c.)
 *
 * Every value is moved as its 32 bits (float32 or int32 alike), so no
 * output bit depends on the path taken. Transpose and StridedSlice are one
 * strided gather each (struct gather): once dimensions of size 1 are
 * dropped and dimensions the source steps over contiguously are merged,
 * the graph's cases become a relabel (given as a view, no copy), one block
 * copy, rows of block copies, or a batch of 2-D transposes done in tiles.
 * Pad copies rows whole between its padding blocks; Pack and ConcatV2
 * copy each input's chunk of every output row, and the channel-wise joins
 * (chunks of one value) are transposes. The 4 x 4 transposes use SSE2
 * where the compiler targets it, plain C elsewhere.
 */
#include "ops.h"
#include "wtt_shape.h"

#include <string.h>

#ifdef __SSE2__
#include <emmintrin.h>
#endif


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


/* ---------------------------------------------------------------------------
 * Strided gather: out (dense, row-major over ne[]) from in at base +
 * sum(idx[i] * st[i]).
 * ------------------------------------------------------------------------- */

struct gather {
    int     rank;
    int64_t ne[WTT_MAX_RANK];   /* output sizes, outermost first */
    int64_t st[WTT_MAX_RANK];   /* source stride of each, in elements */
    int64_t base;               /* source offset of output element 0 */
};

/* Tile side of the 2-D transpose: 16 x 16 x 4 bytes = 1 KiB of output and
 * 16 source lines per tile, well inside L1 on both sides. */
#define TILE 16

/* Below this many elements a plain loop beats the call to memcpy (the
 * graph joins rows of 1 and 2 values, and of 32). */
#define SMALL_RUN 16


/* Drops dimensions of size 1 and merges a dimension into the next where
 * the source steps over the next one exactly (st[i] == ne[i+1] * st[i+1]):
 * the walk visits the same elements in the same order with fewer, longer
 * runs. An empty gather must not come here. */
static void
gather_simplify(struct gather *g)
{
    int r = 0;

    for (int i = 0; i < g->rank; i++) {
        if (g->ne[i] == 1) {
            continue;
        }
        if (r > 0 && g->st[r - 1] == g->ne[i] * g->st[i]) {
            g->ne[r - 1] *= g->ne[i];
            g->st[r - 1] = g->st[i];
            continue;
        }
        g->ne[r] = g->ne[i];
        g->st[r] = g->st[i];
        r++;
    }
    if (r == 0) {
        /* One element. */
        g->ne[0] = 1;
        g->st[0] = 1;
        r = 1;
    }
    g->rank = r;
}


/* 1 when the simplified gather reads in[0 .. n) in order, so that the
 * output can be a view of the input. */
static int
gather_is_identity(const struct gather *g)
{
    return g->rank == 1 && g->st[0] == 1 && g->base == 0;
}


#ifdef __SSE2__
/* Four values from each of r0 .. r3 become four rows of four at w, w + ws,
 * w + 2 ws, w + 3 ws: a 4 x 4 transpose in registers, with integer moves,
 * so every bit passes unchanged. */
static inline void
transpose_4x4(uint32_t *w, int64_t ws, const uint32_t *r0,
              const uint32_t *r1, const uint32_t *r2, const uint32_t *r3)
{
    __m128i x0 = _mm_loadu_si128((const __m128i *) r0);
    __m128i x1 = _mm_loadu_si128((const __m128i *) r1);
    __m128i x2 = _mm_loadu_si128((const __m128i *) r2);
    __m128i x3 = _mm_loadu_si128((const __m128i *) r3);
    __m128i a = _mm_unpacklo_epi32(x0, x1), b = _mm_unpacklo_epi32(x2, x3);
    __m128i c = _mm_unpackhi_epi32(x0, x1), d = _mm_unpackhi_epi32(x2, x3);

    _mm_storeu_si128((__m128i *) w, _mm_unpacklo_epi64(a, b));
    _mm_storeu_si128((__m128i *) (w + ws), _mm_unpackhi_epi64(a, b));
    _mm_storeu_si128((__m128i *) (w + 2 * ws), _mm_unpacklo_epi64(c, d));
    _mm_storeu_si128((__m128i *) (w + 3 * ws), _mm_unpackhi_epi64(c, d));
}
#endif


/* Rows i0 .. i1-1, columns j0 .. j1-1 of transpose_2d's output: whole
 * 4 x 4 blocks in registers where SSE2 is there, the edges one value at a
 * time. */
static void
transpose_tile(uint32_t *out, const uint32_t *in, int64_t c, int64_t sj,
               int64_t i0, int64_t i1, int64_t j0, int64_t j1)
{
    int64_t i4 = i0, j4 = j0;

#ifdef __SSE2__
    i4 = i0 + (i1 - i0) / 4 * 4;
    j4 = j0 + (j1 - j0) / 4 * 4;
    for (int64_t i = i0; i < i4; i += 4) {
        for (int64_t j = j0; j < j4; j += 4) {
            const uint32_t *s = in + i + j * sj;
            transpose_4x4(out + i * c + j, c, s, s + sj, s + 2 * sj,
                          s + 3 * sj);
        }
    }
#endif
    for (int64_t i = i0; i < i1; i++) {
        uint32_t       *o = out + i * c;
        const uint32_t *s = in + i;
        for (int64_t j = i < i4 ? j4 : j0; j < j1; j++) {
            o[j] = s[j * sj];
        }
    }
}


/* out[i][j] = in[i + j * sj], for an r x c output, tile by tile. */
static void
transpose_2d(uint32_t *out, const uint32_t *in, int64_t r, int64_t c,
             int64_t sj)
{
    for (int64_t i0 = 0; i0 < r; i0 += TILE) {
        int64_t i1 = i0 + TILE < r ? i0 + TILE : r;
        for (int64_t j0 = 0; j0 < c; j0 += TILE) {
            int64_t j1 = j0 + TILE < c ? j0 + TILE : c;
            transpose_tile(out, in, c, sj, i0, i1, j0, j1);
        }
    }
}


/* n elements from in, `step` apart (1: one block). */
static void
copy_run(uint32_t *out, const uint32_t *in, int64_t n, int64_t step)
{
    if (step == 1 && n >= SMALL_RUN) {
        memcpy(out, in, (size_t) n * 4);
        return;
    }
    for (int64_t k = 0; k < n; k++) {
        out[k] = in[k * step];
    }
}


/* Runs a simplified, non-empty gather: the last dimension is one run (a
 * block copy when contiguous), or the last two one 2-D transpose when the
 * second-last is the contiguous one; the dimensions outside those are
 * walked with a source offset kept up to date, not recomputed. */
static void
gather_run(const struct gather *g, uint32_t *out, const uint32_t *in)
{
    int      r = g->rank, tr = r >= 2 && g->st[r - 2] == 1
                                  && g->st[r - 1] != 1;
    int      outer = r - 1 - tr, i;
    int64_t  idx[WTT_MAX_RANK] = { 0 };
    int64_t  block = g->ne[r - 1] * (tr ? g->ne[r - 2] : 1);
    int64_t  off = g->base;

    do {
        if (tr) {
            transpose_2d(out, in + off, g->ne[r - 2], g->ne[r - 1],
                         g->st[r - 1]);
        } else {
            copy_run(out, in + off, g->ne[r - 1], g->st[r - 1]);
        }
        out += block;
        /* Next outer index, the last outer dimension fastest. */
        for (i = outer - 1; i >= 0; i--) {
            off += g->st[i];
            if (++idx[i] < g->ne[i]) {
                break;
            }
            off -= g->ne[i] * g->st[i];
            idx[i] = 0;
        }
    } while (i >= 0);
}


/* Gives n the output of gather g over x, shape ne[rank]: a view of x when
 * g reads a prefix of x in order (the same data pointer, so the 64-byte
 * alignment kernels may count on stays), else a buffer of its own. The
 * view is safe because every node owns its buffer until the model is
 * freed and no kernel writes into its inputs: x holds these values for
 * as long as n's readers run. */
static int
gather_out(struct wtt_node *n, const struct wtt_tensor *x, int rank,
           const int64_t *ne, struct gather *g, const char **err)
{
    int64_t count = 1;

    for (int i = 0; i < g->rank; i++) {
        count *= g->ne[i];
    }
    if (count != 0) {
        gather_simplify(g);
        if (gather_is_identity(g)) {
            wtt_tensor_view(&n->out, x, rank, ne);
            return 0;
        }
    }
    if (wtt_tensor_alloc(&n->out, x->dtype, rank, ne) != 0) {
        *err = "out of memory";
        return WTT_ENOMEM;
    }
    if (count != 0) {
        gather_run(g, n->out.data, x->data);
    }
    return 0;
}


static int
op_transpose(struct wtt_node *n, const char **err)
{
    const struct wtt_tensor   *x = n->src[0];
    struct wtt_shape_ints      perm;
    struct wtt_shape_transpose p;
    struct gather              g;
    int                        rc;

    if ((rc = wtt_shape_ints_read(n->src[1], n->src[1]->data, &perm,
                                  err)) != 0
        || (rc = wtt_shape_transpose(n, &perm, &p, err)) != 0)
    {
        return rc;
    }
    g.rank = x->rank;
    g.base = 0;
    for (int i = 0; i < x->rank; i++) {
        g.ne[i] = p.out.ne[i];
        g.st[i] = p.pst[i];
    }
    return gather_out(n, x, p.out.rank, p.out.ne, &g, err);
}


/* StridedSlice: the plan walks every input dimension (wtt_shape.h), which
 * is a gather with steps s[d] * st[d] from the first element taken. */
static int
op_strided_slice(struct wtt_node *n, const char **err)
{
    const struct wtt_tensor *x = n->src[0];
    struct wtt_shape_ints    vb, ve, vs;
    struct wtt_shape_slice   p;
    struct gather            g;
    int                      rc;

    if ((rc = wtt_shape_ints_read(n->src[1], n->src[1]->data, &vb, err)) != 0
        || (rc = wtt_shape_ints_read(n->src[2], n->src[2]->data, &ve,
                                     err)) != 0
        || (rc = wtt_shape_ints_read(n->src[3], n->src[3]->data, &vs,
                                     err)) != 0
        || (rc = wtt_shape_strided_slice(n, &vb, &ve, &vs, &p, err)) != 0)
    {
        return rc;
    }
    g.rank = p.rank;
    g.base = 0;
    for (int d = 0; d < p.rank; d++) {
        g.ne[d] = p.size[d];
        g.st[d] = p.s[d] * p.st[d];
        /* b[d] is only meaningful when the dimension is not empty. */
        g.base += p.size[d] != 0 ? p.b[d] * p.st[d] : 0;
    }
    return gather_out(n, x, p.out.rank, p.out.ne, &g, err);
}


/* ---------------------------------------------------------------------------
 * Pad and MirrorPad
 * ------------------------------------------------------------------------- */

/* `count` blocks of `inner` elements of a padded dimension of size d,
 * starting at padded position `from` (negative: before the data), read
 * from `row` (its first block) or zeros. */
static void
pad_blocks(uint32_t *out, const uint32_t *row, int64_t from, int64_t count,
           int64_t d, int64_t inner, const struct wtt_shape_pad *p)
{
    if (!p->mirror) {
        memset(out, 0, (size_t) (count * inner) * 4);
        return;
    }
    for (int64_t k = 0; k < count; k++) {
        int64_t j = wtt_shape_mirror_index(from + k, d, p->reflect);
        copy_run(out + k * inner, row + j * inner, inner, 1);
    }
}


/* Pad and MirrorPad: paddings is [rank, 2]. The dimensions after the last
 * padded one are copied whole: each output row over the last padded
 * dimension is padding blocks, one copy of the input row, padding blocks. */
static int
op_pad(struct wtt_node *n, const char **err)
{
    const struct wtt_tensor *x = n->src[0];
    struct wtt_shape_ints    pads;
    struct wtt_shape_pad     p;
    const int64_t           *ne = p.out.ne;
    int64_t                  idx[WTT_MAX_RANK] = { 0 };
    int64_t                  inner = 1, d, bl, rowlen;
    int                      rank = x->rank, last, rc;
    const uint32_t          *in = x->data;
    uint32_t                *out;

    if ((rc = wtt_shape_ints_read(n->src[1], n->src[1]->data, &pads,
                                  err)) != 0
        || (rc = wtt_shape_pad(n, &pads, &p, err)) != 0)
    {
        return rc;
    }
    if (wtt_tensor_alloc(&n->out, x->dtype, rank, ne) != 0) {
        *err = "out of memory";
        return WTT_ENOMEM;
    }
    out = n->out.data;
    if (wtt_tensor_nelem(&n->out) == 0) {
        return 0;
    }
    if (wtt_tensor_nelem(x) == 0) {
        /* Only zeros to give (MirrorPad refuses to pad an empty input). */
        memset(out, 0, (size_t) wtt_tensor_nelem(&n->out) * 4);
        return 0;
    }
    if (rank == 0) {
        out[0] = in[0];
        return 0;
    }
    for (last = rank - 1;
         last > 0 && p.before[last] == 0 && ne[last] == x->ne[last]; last--)
    {
        inner *= ne[last];
    }
    d = x->ne[last];
    bl = p.before[last];
    rowlen = ne[last] * inner;
    do {
        int64_t off = 0;
        int     inside = 1;
        for (int i = 0; i < last; i++) {
            int64_t j = idx[i] - p.before[i], di = x->ne[i];
            if (j < 0 || j >= di) {
                if (!p.mirror) {
                    inside = 0;
                    break;
                }
                j = wtt_shape_mirror_index(j, di, p.reflect);
            }
            off += j * p.st[i];
        }
        if (!inside) {
            memset(out, 0, (size_t) rowlen * 4);
        } else {
            const uint32_t *row = in + off;
            pad_blocks(out, row, -bl, bl, d, inner, &p);
            memcpy(out + bl * inner, row, (size_t) (d * inner) * 4);
            pad_blocks(out + (bl + d) * inner, row, d, ne[last] - bl - d, d,
                       inner, &p);
        }
        out += rowlen;
    } while (next_index(idx, ne, last));
    return 0;
}


/* ---------------------------------------------------------------------------
 * Pack (stack along a new axis) and ConcatV2 (along an existing one)
 * ------------------------------------------------------------------------- */

/* Every input gives one value per output row (channel-wise joins: the
 * graph stacks 2 and 8 planes), which is a transpose of the inputs taken
 * as the rows of a k x outer matrix: done four rows by four values at a
 * time where SSE2 is there, one value at a time for the rest. */
static void
join_interleave(uint32_t *out, const uint32_t *const *src, int k,
                int64_t outer)
{
    int64_t o = 0;

#ifdef __SSE2__
    if (k == 2) {
        for (; o + 4 <= outer; o += 4) {
            __m128i x = _mm_loadu_si128((const __m128i *) (src[0] + o));
            __m128i y = _mm_loadu_si128((const __m128i *) (src[1] + o));
            _mm_storeu_si128((__m128i *) (out + 2 * o),
                             _mm_unpacklo_epi32(x, y));
            _mm_storeu_si128((__m128i *) (out + 2 * o + 4),
                             _mm_unpackhi_epi32(x, y));
        }
    } else if (k % 4 == 0) {
        for (; o + 4 <= outer; o += 4) {
            for (int j = 0; j < k; j += 4) {
                transpose_4x4(out + o * k + j, k, src[j] + o,
                              src[j + 1] + o, src[j + 2] + o,
                              src[j + 3] + o);
            }
        }
    }
#endif
    for (; o < outer; o++) {
        for (int j = 0; j < k; j++) {
            out[o * k + j] = src[j][o];
        }
    }
}


static int
op_join(struct wtt_node *n, const char **err)
{
    struct wtt_shape_ints    axis;
    struct wtt_shape_join    p;
    const uint32_t          *src[WTT_MAX_SRC];
    uint32_t                *out;
    int                      rc, ones = 1;

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
    for (int j = 0; j < p.k; j++) {
        src[j] = n->src[j]->data;
        ones &= p.chunk[j] == 1;
    }
    if (ones && p.outer > 1) {
        join_interleave(out, src, p.k, p.outer);
        return 0;
    }
    for (int64_t o = 0; o < p.outer; o++) {
        for (int j = 0; j < p.k; j++) {
            copy_run(out, src[j], p.chunk[j], 1);
            src[j] += p.chunk[j];
            out += p.chunk[j];
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
