/*
 * test_layout.c: the CPU layout kernels (kernels/cpu/layout.c: Transpose,
 * StridedSlice, Pad, MirrorPad, Pack, ConcatV2) against plain references
 * that compute every output element's source from its full index, on
 * random shapes (rank 1 to 5, empty and size-1 dimensions, negative steps,
 * masks, k = 1 to 10 joined inputs) and on the shapes the Basic Pitch graph
 * gives them. The kernels take shortcuts (merged dimensions, block copies,
 * tiled and SSE2 transposes, views); any element one of them puts in the
 * wrong place, or any bit it changes, fails here. Data is random 32-bit
 * patterns, NaNs included, compared with memcmp.
 *
 * The references take the index plan of StridedSlice from kernels/
 * wtt_shape.h (whose rules test_shape.c checks) and work out everything
 * else from the op's own parameters.
 */
#include "test.h"
#include "wtt_backend_cpu.h"
#include "wtt_shape.h"

#include <stdint.h>
#include <stdlib.h>

/* Random cases per op and kind. */
#define CASES 1500


static uint64_t rng_state = 0x9e3779b97f4a7c15u;

static uint32_t
rng(void)
{
    /* xorshift64*: reproducible everywhere. */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (uint32_t) ((rng_state * 0x2545f4914f6cdd1du) >> 32);
}


/* An integer in [lo, hi]. */
static int
rnd(int lo, int hi)
{
    return lo + (int) (rng() % (uint32_t) (hi - lo + 1));
}


/* A dimension size: mostly small, with ones and zeros, sometimes long
 * enough to need several tiles or vector steps. */
static int64_t
rnd_dim(int allow_zero)
{
    int r = rnd(0, 19);

    if (r == 0 && allow_zero) {
        return 0;
    }
    if (r < 5) {
        return 1;
    }
    if (r < 16) {
        return rnd(2, 6);
    }
    return rnd(7, 37);
}


/* A tensor of shape ne[rank]: float32 data of random bits, or int32
 * values v (one per element) when v is given. */
static struct wtt_tensor *
tensor(int rank, const int64_t *ne, const int64_t *v)
{
    struct wtt_tensor *t = calloc(1, sizeof(*t));
    int64_t            count = 1;

    t->rank = rank;
    for (int i = 0; i < rank; i++) {
        t->ne[i] = ne[i];
        count *= ne[i];
    }
    t->dtype = v != NULL ? WTT_I32 : WTT_F32;
    t->data = malloc((size_t) (count > 0 ? count : 1) * 4);
    for (int64_t i = 0; i < count; i++) {
        ((uint32_t *) t->data)[i] = v != NULL ? (uint32_t) (int32_t) v[i]
                                              : rng();
    }
    return t;
}


/* An int32 list of n values, shape [n] (rank 0 when scalar is set). */
static struct wtt_tensor *
ints_tensor(int64_t n, const int64_t *v, int scalar)
{
    struct wtt_tensor *t = tensor(1, &n, v);

    if (scalar) {
        t->rank = 0;
    }
    return t;
}


static void
tensor_drop(struct wtt_tensor *t)
{
    if (t != NULL) {
        free(t->data);
        free(t);
    }
}


/* Frees a node's sources and its output (a view owns nothing). */
static void
node_drop(struct wtt_node *n)
{
    for (int j = 0; j < n->nsrc; j++) {
        tensor_drop(n->src[j]);
    }
    if (n->out.cap != 0) {
        wtt_backend_cpu.buffer_free(NULL, n->out.data);
    }
    memset(n, 0, sizeof(*n));
}


static int64_t
nelem(int rank, const int64_t *ne)
{
    int64_t c = 1;

    for (int i = 0; i < rank; i++) {
        c *= ne[i];
    }
    return c;
}


static void
strides(int rank, const int64_t *ne, int64_t *st)
{
    int64_t s = 1;

    for (int i = rank - 1; i >= 0; i--) {
        st[i] = s;
        s *= ne[i];
    }
}


/* Multi-index of flat position f over ne[rank]. */
static void
unflatten(int64_t f, int rank, const int64_t *ne, int64_t *idx)
{
    for (int i = rank - 1; i >= 0; i--) {
        idx[i] = ne[i] ? f % ne[i] : 0;
        f = ne[i] ? f / ne[i] : 0;
    }
}


/* 0 when the node's output has shape ne[rank] and data ref; else prints
 * what differs, with `what` naming the case. */
static int
same_output(const struct wtt_node *n, int rank, const int64_t *ne,
            const uint32_t *ref, const char *what, int c)
{
    int64_t count = nelem(rank, ne);

    if (n->out.rank != rank || n->out.dtype != n->src[0]->dtype) {
        fprintf(stderr, "%s case %d: rank %d, expected %d\n", what, c,
                n->out.rank, rank);
        return 1;
    }
    for (int i = 0; i < rank; i++) {
        if (n->out.ne[i] != ne[i]) {
            fprintf(stderr, "%s case %d: dimension %d is %lld, expected "
                    "%lld\n", what, c, i, (long long) n->out.ne[i],
                    (long long) ne[i]);
            return 1;
        }
    }
    if (count > 0 && memcmp(n->out.data, ref, (size_t) count * 4) != 0) {
        fprintf(stderr, "%s case %d: data differs\n", what, c);
        return 1;
    }
    return 0;
}


/* ---------------------------------------------------------------------------
 * Transpose
 * ------------------------------------------------------------------------- */

static int
check_transpose(int rank, const int64_t *xne, const int64_t *perm, int c)
{
    struct wtt_node n;
    const char     *err = NULL;
    int64_t         one = rank, one_ne[WTT_MAX_RANK], xst[WTT_MAX_RANK];
    int64_t         idx[WTT_MAX_RANK], count;
    uint32_t       *ref;
    const uint32_t *in;
    int             rc;

    memset(&n, 0, sizeof(n));
    n.op = WTT_OP_TRANSPOSE;
    n.nsrc = 2;
    n.src[0] = tensor(rank, xne, NULL);
    n.src[1] = ints_tensor(one, perm, 0);
    in = n.src[0]->data;
    for (int i = 0; i < rank; i++) {
        one_ne[i] = xne[perm[i]];
    }
    strides(rank, xne, xst);
    count = nelem(rank, one_ne);
    ref = malloc((size_t) (count > 0 ? count : 1) * 4);
    for (int64_t f = 0; f < count; f++) {
        int64_t o = 0;
        unflatten(f, rank, one_ne, idx);
        for (int i = 0; i < rank; i++) {
            o += idx[i] * xst[perm[i]];
        }
        ref[f] = in[o];
    }
    rc = wtt_backend_cpu.compute(&n, &err) != 0
         || same_output(&n, rank, one_ne, ref, "Transpose", c);
    if (rc) {
        fprintf(stderr, "  Transpose rank %d: %s\n", rank,
                err != NULL ? err : "");
    }
    free(ref);
    node_drop(&n);
    return rc;
}


static void
random_perm(int rank, int64_t *perm)
{
    for (int i = 0; i < rank; i++) {
        perm[i] = i;
    }
    for (int i = rank - 1; i > 0; i--) {
        int     j = rnd(0, i);
        int64_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
}


int
test_layout_transpose(void)
{
    /* The graph's: [1, 172, 36] and [1, 309, 172] (tiles), [1, 1, N] and
     * [1, N, 1] (a relabel: the output is a view). */
    static const int64_t graph[][3] = {
        { 1, 172, 36 }, { 1, 309, 172 }, { 1, 1, 44100 }, { 1, 5480, 1 },
        { 1, 36, 172 },
    };
    int64_t p021[] = { 0, 2, 1 };

    for (size_t i = 0; i < sizeof(graph) / sizeof(graph[0]); i++) {
        ASSERT(check_transpose(3, graph[i], p021, (int) i) == 0);
    }
    for (int c = 0; c < CASES; c++) {
        int     rank = rnd(1, 5);
        int64_t ne[WTT_MAX_RANK], perm[WTT_MAX_RANK];
        for (int i = 0; i < rank; i++) {
            ne[i] = rnd_dim(1);
        }
        if (nelem(rank, ne) > 20000) {
            continue;
        }
        random_perm(rank, perm);
        ASSERT(check_transpose(rank, ne, perm, c) == 0);
    }
    /* A relabel gives a view of the input, which keeps its bits. */
    {
        struct wtt_node n;
        const char     *err = NULL;
        int64_t         xe[] = { 1, 1, 9 }, perm[] = { 0, 2, 1 };
        memset(&n, 0, sizeof(n));
        n.op = WTT_OP_TRANSPOSE;
        n.nsrc = 2;
        n.src[0] = tensor(3, xe, NULL);
        n.src[1] = ints_tensor(3, perm, 0);
        ASSERT(wtt_backend_cpu.compute(&n, &err) == 0);
        ASSERT(n.out.cap == 0 && n.out.data == n.src[0]->data);
        ASSERT(n.out.ne[1] == 9 && n.out.ne[2] == 1);
        node_drop(&n);
    }
    return 0;
}


/* ---------------------------------------------------------------------------
 * StridedSlice
 * ------------------------------------------------------------------------- */

/* Runs one slice; 0 when it matches the reference or both refuse it, and
 * *valid says whether it ran. */
static int
check_slice(int rank, const int64_t *xne, int m, const int64_t *b,
            const int64_t *e, const int64_t *s, const int *masks, int c,
            int *valid)
{
    struct wtt_node        n;
    struct wtt_shape_ints  vb, ve, vs;
    struct wtt_shape_slice p;
    const char            *err = NULL, *err2 = NULL;
    int64_t                idx[WTT_MAX_RANK], count, mm = m;
    uint32_t              *ref;
    const uint32_t        *in;
    int                    rc, krc;

    memset(&n, 0, sizeof(n));
    n.op = WTT_OP_STRIDED_SLICE;
    n.nsrc = 4;
    n.src[0] = tensor(rank, xne, NULL);
    n.src[1] = ints_tensor(mm, b, 0);
    n.src[2] = ints_tensor(mm, e, 0);
    n.src[3] = ints_tensor(mm, s, 0);
    n.begin_mask = masks[0];
    n.end_mask = masks[1];
    n.ellipsis_mask = masks[2];
    n.new_axis_mask = masks[3];
    n.shrink_axis_mask = masks[4];
    in = n.src[0]->data;
    vb.n = ve.n = vs.n = mm;
    for (int i = 0; i < m; i++) {
        vb.v[i] = b[i];
        ve.v[i] = e[i];
        vs.v[i] = s[i];
    }
    *valid = wtt_shape_strided_slice(&n, &vb, &ve, &vs, &p, &err2) == 0;
    krc = wtt_backend_cpu.compute(&n, &err);
    if (!*valid) {
        rc = krc == 0;
        if (rc) {
            fprintf(stderr, "StridedSlice case %d: ran a refused slice\n",
                    c);
        }
        node_drop(&n);
        return rc;
    }
    count = nelem(p.rank, p.size);
    ref = malloc((size_t) (count > 0 ? count : 1) * 4);
    for (int64_t f = 0; f < count; f++) {
        int64_t o = 0;
        unflatten(f, p.rank, p.size, idx);
        for (int d = 0; d < p.rank; d++) {
            o += (p.b[d] + idx[d] * p.s[d]) * p.st[d];
        }
        ref[f] = in[o];
    }
    rc = krc != 0 || same_output(&n, p.out.rank, p.out.ne, ref,
                                 "StridedSlice", c);
    if (rc) {
        fprintf(stderr, "  StridedSlice rank %d, m %d, masks %d %d %d %d "
                "%d: %s\n", rank, m, masks[0], masks[1], masks[2],
                masks[3], masks[4], err != NULL ? err : "");
    }
    free(ref);
    node_drop(&n);
    return rc;
}


int
test_layout_strided_slice(void)
{
    int valid, ran = 0;

    /* The graph's. */
    {
        int64_t xe[] = { 1, 172, 309, 8 }, b[] = { 0, 0, 0, 0 };
        int64_t e[] = { 0, 0, 264, 0 }, s[] = { 1, 1, 1, 1 };
        int     masks[] = { 15, 11, 0, 0, 0 };
        ASSERT(check_slice(4, xe, 4, b, e, s, masks, 0, &valid) == 0);
        ASSERT(valid);
    }
    {
        int64_t xe[] = { 1, 172, 309, 1 }, b[] = { 0, 0, 93, 0 };
        int64_t e[] = { 0, 0, 0, 0 }, s[] = { 1, 1, 1, 1 };
        int64_t e2[] = { 0, 0, -36, 0 };
        int     masks[] = { 11, 15, 0, 0, 0 }, masks2[] = { 15, 11, 0, 0,
                                                            0 };
        ASSERT(check_slice(4, xe, 4, b, e, s, masks, 1, &valid) == 0);
        ASSERT(valid);
        ASSERT(check_slice(4, xe, 4, b, e2, s, masks2, 2, &valid) == 0);
        ASSERT(valid);
    }
    {
        int64_t xe[] = { 1, 324, 172, 2 }, b[] = { 0, -309, 0 };
        int64_t e[] = { 0, 0, 0 }, s[] = { 1, 1, 1 };
        int     masks[] = { 5, 7, 0, 0, 0 };
        ASSERT(check_slice(4, xe, 3, b, e, s, masks, 3, &valid) == 0);
        ASSERT(valid);
    }
    {
        int64_t xe[] = { 1, 4384 }, b[] = { 0, 0, 0 }, e[] = { 0, 0, 0 };
        int64_t s[] = { 1, 1, 1 };
        int     masks[] = { 5, 5, 0, 2, 0 };
        ASSERT(check_slice(2, xe, 3, b, e, s, masks, 4, &valid) == 0);
        ASSERT(valid);
    }
    {
        int64_t xe[] = { 4 }, b[] = { 0 }, e[] = { 1 }, s[] = { 1 };
        int     masks[] = { 0, 0, 0, 0, 1 };
        ASSERT(check_slice(1, xe, 1, b, e, s, masks, 5, &valid) == 0);
        ASSERT(valid);
    }
    for (int c = 0; c < 4 * CASES; c++) {
        int     rank = rnd(1, 5), m, masks[5] = { 0 }, ell = -1;
        int64_t ne[WTT_MAX_RANK], b[2 * WTT_MAX_RANK + 1];
        int64_t e[2 * WTT_MAX_RANK + 1], s[2 * WTT_MAX_RANK + 1];
        for (int i = 0; i < rank; i++) {
            ne[i] = rnd_dim(1);
        }
        if (nelem(rank, ne) > 20000) {
            continue;
        }
        m = rnd(1, rank + 2);
        if (rnd(0, 3) == 0) {
            ell = rnd(0, m - 1);
            masks[2] = 1 << ell;
        }
        for (int i = 0; i < m; i++) {
            int64_t dim = i < rank ? ne[i] : 3;
            b[i] = rnd((int) -dim - 2, (int) dim + 2);
            e[i] = rnd((int) -dim - 2, (int) dim + 2);
            s[i] = rnd(0, 3) != 0 ? 1 : rnd(-3, 3);
            if (s[i] == 0) {
                s[i] = -1;
            }
            if (i == ell) {
                continue;
            }
            masks[0] |= rnd(0, 3) == 0 ? 1 << i : 0;
            masks[1] |= rnd(0, 3) == 0 ? 1 << i : 0;
            if (rnd(0, 7) == 0) {
                masks[3] |= 1 << i;
            } else if (rnd(0, 5) == 0) {
                masks[4] |= 1 << i;
            }
        }
        ASSERT(check_slice(rank, ne, m, b, e, s, masks, c, &valid) == 0);
        ran += valid;
    }
    /* Most random slices must be valid ones, or this tests little. */
    ASSERT(ran > 2 * CASES);
    return 0;
}


/* ---------------------------------------------------------------------------
 * Pad, MirrorPad
 * ------------------------------------------------------------------------- */

/* pads[2 * rank]: before, after per dimension. */
static int
check_pad(int rank, const int64_t *xne, const int64_t *pads, int mirror,
          int reflect, int c)
{
    struct wtt_node n;
    const char     *err = NULL;
    int64_t         one_ne[WTT_MAX_RANK], xst[WTT_MAX_RANK];
    int64_t         idx[WTT_MAX_RANK], count, pne[2] = { rank, 2 };
    uint32_t       *ref;
    const uint32_t *in;
    int             rc;

    memset(&n, 0, sizeof(n));
    n.op = mirror ? WTT_OP_MIRROR_PAD : WTT_OP_PAD;
    n.reflect = reflect;
    n.nsrc = 2;
    n.src[0] = tensor(rank, xne, NULL);
    n.src[1] = tensor(2, pne, pads);
    in = n.src[0]->data;
    for (int i = 0; i < rank; i++) {
        one_ne[i] = xne[i] + pads[2 * i] + pads[2 * i + 1];
    }
    strides(rank, xne, xst);
    count = nelem(rank, one_ne);
    ref = malloc((size_t) (count > 0 ? count : 1) * 4);
    for (int64_t f = 0; f < count; f++) {
        int64_t o = 0;
        int     inside = 1;
        unflatten(f, rank, one_ne, idx);
        for (int i = 0; i < rank; i++) {
            int64_t j = idx[i] - pads[2 * i], d = xne[i];
            if (j < 0) {
                inside &= mirror;
                j = reflect ? -j : -j - 1;
            } else if (j >= d) {
                inside &= mirror;
                j = reflect ? 2 * (d - 1) - j : 2 * d - 1 - j;
            }
            o += j * xst[i];
        }
        ref[f] = inside ? in[o] : 0;
    }
    rc = wtt_backend_cpu.compute(&n, &err) != 0
         || same_output(&n, rank, one_ne, ref, mirror ? "MirrorPad" : "Pad",
                        c);
    if (rc) {
        fprintf(stderr, "  Pad rank %d, mirror %d, reflect %d: %s\n", rank,
                mirror, reflect, err != NULL ? err : "");
    }
    free(ref);
    node_drop(&n);
    return rc;
}


int
test_layout_pad(void)
{
    /* The graph's: 36 zeros before (or after) dimension 2 of
     * [1, 172, 273, 1]; 127 zeros and 128 reflected values either side
     * of [1, 1, N]. */
    {
        int64_t xe[] = { 1, 172, 273, 1 };
        int64_t pb[] = { 0, 0, 0, 0, 36, 0, 0, 0 };
        int64_t pa[] = { 0, 0, 0, 0, 0, 36, 0, 0 };
        ASSERT(check_pad(4, xe, pb, 0, 0, 0) == 0);
        ASSERT(check_pad(4, xe, pa, 0, 0, 1) == 0);
    }
    {
        int64_t xe[] = { 1, 1, 685 };
        int64_t pz[] = { 0, 0, 0, 0, 127, 127 };
        int64_t pm[] = { 0, 0, 0, 0, 128, 128 };
        ASSERT(check_pad(3, xe, pz, 0, 0, 2) == 0);
        ASSERT(check_pad(3, xe, pm, 1, 1, 3) == 0);
    }
    for (int c = 0; c < 3 * CASES; c++) {
        int     rank = rnd(1, 5), mirror = rnd(0, 1), reflect = rnd(0, 1);
        int64_t ne[WTT_MAX_RANK], pads[2 * WTT_MAX_RANK], out = 1;
        for (int i = 0; i < rank; i++) {
            /* MirrorPad cannot pad an empty dimension. */
            ne[i] = rnd_dim(!mirror);
            for (int k = 0; k < 2; k++) {
                int64_t most = mirror ? ne[i] - reflect : 4;
                pads[2 * i + k] = rnd(0, 3) == 0 || most <= 0
                                  ? 0 : rnd(0, (int) most);
            }
            out *= ne[i] + pads[2 * i] + pads[2 * i + 1];
        }
        if (out > 20000) {
            continue;
        }
        ASSERT(check_pad(rank, ne, pads, mirror, reflect, c) == 0);
    }
    /* A negative padding is refused, not written before the buffer. */
    {
        struct wtt_node n;
        const char     *err = NULL;
        int64_t         xe[] = { 4 }, pne[] = { 1, 2 }, pads[] = { -2, 2 };
        memset(&n, 0, sizeof(n));
        n.op = WTT_OP_PAD;
        n.nsrc = 2;
        n.src[0] = tensor(1, xe, NULL);
        n.src[1] = tensor(2, pne, pads);
        ASSERT(wtt_backend_cpu.compute(&n, &err) != 0);
        ASSERT_STR_EQ(err, "Pad: negative padding");
        node_drop(&n);
    }
    return 0;
}


/* ---------------------------------------------------------------------------
 * Pack, ConcatV2
 * ------------------------------------------------------------------------- */

/* k inputs of shape ne[rank], but for concat dimension `axis` (0 ..
 * rank - 1) of input j, which is sizes[j]; pack stacks along a new axis
 * `axis` (0 .. rank). `given` is the axis the node is told (may be
 * negative). */
static int
check_join(int pack, int k, int rank, const int64_t *ne,
           const int64_t *sizes, int axis, int given, int c)
{
    struct wtt_node n;
    const char     *err = NULL;
    int64_t         one_ne[WTT_MAX_RANK], xne[WTT_MAX_RANK];
    int64_t         idx[WTT_MAX_RANK], count, ax = given;
    int             orank = rank + pack, rc;
    uint32_t       *ref;

    memset(&n, 0, sizeof(n));
    n.op = pack ? WTT_OP_PACK : WTT_OP_CONCAT;
    n.nsrc = k + !pack;
    n.axis = pack ? given : 0;
    for (int j = 0; j < k; j++) {
        memcpy(xne, ne, sizeof(int64_t) * (size_t) rank);
        if (!pack) {
            xne[axis] = sizes[j];
        }
        n.src[j] = tensor(rank, xne, NULL);
    }
    if (!pack) {
        n.src[k] = ints_tensor(1, &ax, 1);
    }
    for (int i = 0, r = 0; i < orank; i++) {
        if (pack && i == axis) {
            one_ne[i] = k;
            continue;
        }
        one_ne[i] = ne[r++];
    }
    if (!pack) {
        one_ne[axis] = 0;
        for (int j = 0; j < k; j++) {
            one_ne[axis] += sizes[j];
        }
    }
    count = nelem(orank, one_ne);
    ref = malloc((size_t) (count > 0 ? count : 1) * 4);
    for (int64_t f = 0; f < count; f++) {
        int64_t                  a, o = 0, st[WTT_MAX_RANK];
        int                      j = 0;
        const struct wtt_tensor *x;
        unflatten(f, orank, one_ne, idx);
        a = idx[axis];
        if (pack) {
            j = (int) a;
            /* Drop the new axis: the input's index. */
            memmove(idx + axis, idx + axis + 1,
                    sizeof(int64_t) * (size_t) (orank - axis - 1));
        } else {
            while (a >= sizes[j]) {
                a -= sizes[j++];
            }
            idx[axis] = a;
        }
        x = n.src[j];
        strides(rank, x->ne, st);
        for (int i = 0; i < rank; i++) {
            o += idx[i] * st[i];
        }
        ref[f] = ((const uint32_t *) x->data)[o];
    }
    rc = wtt_backend_cpu.compute(&n, &err) != 0
         || same_output(&n, orank, one_ne, ref, pack ? "Pack" : "Concat",
                        c);
    if (rc) {
        fprintf(stderr, "  %s of %d, rank %d, axis %d: %s\n",
                pack ? "Pack" : "Concat", k, rank, given,
                err != NULL ? err : "");
    }
    free(ref);
    node_drop(&n);
    return rc;
}


int
test_layout_join(void)
{
    /* The graph's: 8 planes of [1, 172, 309, 1] and 9 blocks of
     * [1, 36, 172, 2] concatenated, [1, 172, 88, 1] with [..., 32],
     * 2 planes of [1, 36, 172] stacked last. */
    {
        int64_t ne[] = { 1, 172, 309, 1 }, sz[8];
        for (int j = 0; j < 8; j++) {
            sz[j] = 1;
        }
        ASSERT(check_join(0, 8, 4, ne, sz, 3, -1, 0) == 0);
    }
    {
        int64_t ne[] = { 1, 36, 172, 2 }, sz[9];
        for (int j = 0; j < 9; j++) {
            sz[j] = 36;
        }
        ASSERT(check_join(0, 9, 4, ne, sz, 1, 1, 1) == 0);
    }
    {
        int64_t ne[] = { 1, 172, 88, 1 }, sz[] = { 1, 32 };
        ASSERT(check_join(0, 2, 4, ne, sz, 3, 3, 2) == 0);
    }
    {
        int64_t ne[] = { 1, 36, 172 };
        ASSERT(check_join(1, 2, 3, ne, NULL, 3, -1, 3) == 0);
    }
    for (int c = 0; c < 2 * CASES; c++) {
        int     pack = rnd(0, 1), k = rnd(1, 10), rank = rnd(1, 5), axis;
        int     mode;
        int64_t ne[WTT_MAX_RANK], sz[WTT_MAX_SRC], total;
        for (int i = 0; i < rank; i++) {
            ne[i] = rnd_dim(1);
        }
        axis = pack ? rnd(0, rank) : rnd(0, rank - 1);
        /* Channel-wise joins (every input 1 along the axis) often, so
         * that the interleaving paths run too. */
        mode = rnd(0, 2);
        sz[0] = rnd_dim(1);
        for (int j = 0; j < k; j++) {
            sz[j] = mode == 0 ? 1 : mode == 1 ? sz[0] : rnd_dim(1);
        }
        total = nelem(rank, ne) * k * 37;
        if (total > 400000) {
            continue;
        }
        ASSERT(check_join(pack, k, rank, ne, sz, axis,
                          rnd(0, 1) ? axis - (rank + pack) : axis, c) == 0);
    }
    return 0;
}
