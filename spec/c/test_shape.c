/*
 * test_shape.c: the shape rules of kernels/wtt_shape.h on nodes made by
 * hand, against TensorFlow's results. Both backends take their shapes from
 * that module, so the CUDA-against-CPU parity test cannot see a wrong rule;
 * the golden clips cover the graph's own cases, these the rules' corners
 * (negative steps, masks, uneven SAME padding, the refusals).
 */
#include "wtt_shape.h"

#include "test.h"


/* A tensor of shape ne[rank] (no data: the rules read only shapes). */
static struct wtt_tensor
shaped(int rank, const int64_t *ne)
{
    struct wtt_tensor t;

    memset(&t, 0, sizeof(t));
    t.dtype = WTT_F32;
    t.rank = rank;
    for (int i = 0; i < rank; i++) {
        t.ne[i] = ne[i];
    }
    return t;
}


static struct wtt_shape_ints
ints(int n, const int64_t *v)
{
    struct wtt_shape_ints r;

    r.n = n;
    for (int i = 0; i < n; i++) {
        r.v[i] = v[i];
    }
    return r;
}


/* 1 when shape s is ne[rank]. */
static int
shape_is(const struct wtt_shape *s, int rank, const int64_t *ne)
{
    if (s->rank != rank) {
        return 0;
    }
    for (int i = 0; i < rank; i++) {
        if (s->ne[i] != ne[i]) {
            return 0;
        }
    }
    return 1;
}


int
test_shape_rules(void)
{
    struct wtt_node   n;
    struct wtt_tensor x, y;
    const char       *err = NULL;

    /* Reshape: one -1 inferred; a count that does not add up refused. */
    {
        int64_t               xe[] = { 2, 3, 4 }, te[] = { -1, 4 };
        int64_t               oe[] = { 6, 4 }, bad[] = { 5, -1 };
        struct wtt_shape_ints t = ints(2, te), tb = ints(2, bad);
        struct wtt_shape      out;
        memset(&n, 0, sizeof(n));
        x = shaped(3, xe);
        n.op = WTT_OP_RESHAPE;
        n.src[0] = &x;
        ASSERT(wtt_shape_reshape(&n, &t, &out, &err) == 0);
        ASSERT(shape_is(&out, 2, oe));
        ASSERT(wtt_shape_reshape(&n, &tb, &out, &err) == WTT_EFAIL);
        ASSERT_STR_EQ(err, "Reshape: element count mismatch");
    }

    /* Squeeze of a dimension that is not 1 is refused. */
    {
        int64_t          xe[] = { 1, 3, 1 }, oe[] = { 3 };
        struct wtt_shape out;
        memset(&n, 0, sizeof(n));
        x = shaped(3, xe);
        n.op = WTT_OP_SQUEEZE;
        n.src[0] = &x;
        ASSERT(wtt_shape_squeeze(&n, &out, &err) == 0);
        ASSERT(shape_is(&out, 1, oe));
        n.n_squeeze = 1;
        n.squeeze_dims[0] = -2;
        ASSERT(wtt_shape_squeeze(&n, &out, &err) == WTT_EFAIL);
        ASSERT_STR_EQ(err, "Squeeze: dimension is not 1");
    }

    /* Broadcasting [3, 1] with [4]: [3, 4], strides 0 where broadcast. */
    {
        int64_t                 ae[] = { 3, 1 }, be[] = { 4 }, oe[] = { 3, 4 };
        int64_t                 ce[] = { 2, 4 };
        struct wtt_shape_binary p;
        memset(&n, 0, sizeof(n));
        x = shaped(2, ae);
        y = shaped(1, be);
        n.op = WTT_OP_ADD;
        n.src[0] = &x;
        n.src[1] = &y;
        ASSERT(wtt_shape_binary(&n, &p, &err) == 0);
        ASSERT(shape_is(&p.out, 2, oe));
        ASSERT(p.total == 12 && p.mode == WTT_BCAST_ANY);
        ASSERT(p.sa[0] == 1 && p.sa[1] == 0);
        ASSERT(p.sb[0] == 0 && p.sb[1] == 1);
        y = shaped(2, ce);
        ASSERT(wtt_shape_binary(&n, &p, &err) == WTT_EFAIL);
        ASSERT_STR_EQ(err, "binary op: shapes do not broadcast");
    }

    /*
     * StridedSlice x[..., ::-2, tf.newaxis, 1] on [2, 5, 3] (begin and end
     * masked on the middle dimension): [2, 3, 1], reading 4, 2, 0 of the
     * middle dimension and index 1 of the last.
     */
    {
        int64_t                xe[] = { 2, 5, 3 }, oe[] = { 2, 3, 1 };
        int64_t                bv[] = { 0, 0, 0, 1 }, ev[] = { 0, 0, 0, 2 };
        int64_t                sv[] = { 1, -2, 1, 1 };
        struct wtt_shape_ints  b = ints(4, bv), e = ints(4, ev);
        struct wtt_shape_ints  s = ints(4, sv);
        struct wtt_shape_slice p;
        memset(&n, 0, sizeof(n));
        x = shaped(3, xe);
        n.op = WTT_OP_STRIDED_SLICE;
        n.src[0] = &x;
        n.ellipsis_mask = 1 << 0;
        n.begin_mask = 1 << 1;
        n.end_mask = 1 << 1;
        n.new_axis_mask = 1 << 2;
        n.shrink_axis_mask = 1 << 3;
        ASSERT(wtt_shape_strided_slice(&n, &b, &e, &s, &p, &err) == 0);
        ASSERT(shape_is(&p.out, 3, oe));
        ASSERT(p.rank == 3);
        ASSERT(p.b[0] == 0 && p.s[0] == 1 && p.size[0] == 2);
        ASSERT(p.b[1] == 4 && p.s[1] == -2 && p.size[1] == 3);
        ASSERT(p.b[2] == 1 && p.s[2] == 1 && p.size[2] == 1);
        ASSERT(p.st[0] == 15 && p.st[1] == 3 && p.st[2] == 1);
        sv[1] = 0;
        s = ints(4, sv);
        ASSERT(wtt_shape_strided_slice(&n, &b, &e, &s, &p, &err)
               == WTT_EFAIL);
        ASSERT_STR_EQ(err, "StridedSlice: zero stride");
    }

    /* MirrorPad REFLECT cannot pad more than the input minus its edge. */
    {
        int64_t              xe[] = { 3 }, ok[] = { 2, 2 }, big[] = { 3, 0 };
        int64_t              oe[] = { 7 };
        struct wtt_shape_ints po = ints(2, ok), pb = ints(2, big);
        struct wtt_shape_pad p;
        memset(&n, 0, sizeof(n));
        x = shaped(1, xe);
        n.op = WTT_OP_MIRROR_PAD;
        n.reflect = 1;
        n.src[0] = &x;
        ASSERT(wtt_shape_pad(&n, &po, &p, &err) == 0);
        ASSERT(shape_is(&p.out, 1, oe) && p.before[0] == 2 && p.mirror);
        ASSERT(wtt_shape_mirror_index(-2, 3, 1) == 2);
        ASSERT(wtt_shape_mirror_index(4, 3, 1) == 0);
        ASSERT(wtt_shape_pad(&n, &pb, &p, &err) == WTT_EFAIL);
        ASSERT_STR_EQ(err, "MirrorPad: padding larger than the input");
    }

    /* Transpose of [2, 3] by [1, 0] is [3, 2]; a permutation that takes
     * an axis twice is refused: its output can hold more elements than
     * the input (found by spec/fuzz/fuzz_model.c). */
    {
        int64_t                    xe[] = { 2, 3 }, sw[] = { 1, 0 };
        int64_t                    twice[] = { 0, 0 }, oe[] = { 3, 2 };
        struct wtt_shape_ints      ps = ints(2, sw), pt = ints(2, twice);
        struct wtt_shape_transpose p;
        memset(&n, 0, sizeof(n));
        x = shaped(2, xe);
        n.op = WTT_OP_TRANSPOSE;
        n.src[0] = &x;
        ASSERT(wtt_shape_transpose(&n, &ps, &p, &err) == 0);
        ASSERT(shape_is(&p.out, 2, oe));
        ASSERT(wtt_shape_transpose(&n, &pt, &p, &err) == WTT_EFAIL);
        ASSERT_STR_EQ(err, "Transpose: permutation repeats an axis");
    }

    /* ConcatV2 along axis -1 of [2, 3] and [2, 5]: [2, 8], rows of 3 + 5. */
    {
        int64_t               ae[] = { 2, 3 }, be[] = { 2, 5 };
        int64_t               oe[] = { 2, 8 }, av[] = { -1 };
        struct wtt_shape_ints axis = ints(1, av);
        struct wtt_shape_join p;
        struct wtt_tensor     a;
        memset(&n, 0, sizeof(n));
        x = shaped(2, ae);
        y = shaped(2, be);
        a = shaped(0, NULL);
        n.op = WTT_OP_CONCAT;
        n.nsrc = 3;
        n.src[0] = &x;
        n.src[1] = &y;
        n.src[2] = &a;
        ASSERT(wtt_shape_join(&n, &axis, &p, &err) == 0);
        ASSERT(shape_is(&p.out, 2, oe));
        ASSERT(p.k == 2 && p.outer == 2 && p.row == 8);
        ASSERT(p.chunk[0] == 3 && p.chunk[1] == 5);
    }

    /* Sum over axis -2 of [2, 3, 4] with keep_dims: [2, 1, 4]. */
    {
        int64_t                 xe[] = { 2, 3, 4 }, oe[] = { 2, 1, 4 };
        int64_t                 av[] = { -2 };
        struct wtt_shape_ints   axes = ints(1, av);
        struct wtt_shape_reduce p;
        memset(&n, 0, sizeof(n));
        x = shaped(3, xe);
        n.op = WTT_OP_SUM;
        n.keep_dims = 1;
        n.src[0] = &x;
        ASSERT(wtt_shape_reduce(&n, &axes, &p, &err) == 0);
        ASSERT(shape_is(&p.out, 3, oe));
        ASSERT(p.ost[0] == 4 && p.ost[1] == 0 && p.ost[2] == 1);
        ASSERT(p.red_n == 1 && p.red_count == 3 && p.red_st[0] == 4);
        ASSERT(p.kept_n == 2 && p.kept_st[0] == 12 && p.kept_st[1] == 1);
    }

    /* Conv2D SAME, stride 2, 4 x 4 filter: on 7 rows TF pads 3, 1 before
     * and 2 after (uneven: the extra goes after); on 8 columns 2, 1 and 1. */
    {
        int64_t               xe[] = { 1, 7, 8, 1 }, we[] = { 4, 4, 1, 2 };
        struct wtt_shape_conv g;
        memset(&n, 0, sizeof(n));
        x = shaped(4, xe);
        y = shaped(4, we);
        n.op = WTT_OP_CONV2D;
        n.nsrc = 2;
        n.src[0] = &x;
        n.src[1] = &y;
        n.padding = WTT_PAD_SAME;
        n.strides[1] = n.strides[2] = 2;
        n.dilations[1] = n.dilations[2] = 1;
        ASSERT(wtt_shape_conv2d(&n, &g, &err) == 0);
        ASSERT(g.OH == 4 && g.pt == 1 && g.pb == 2);
        ASSERT(g.OW == 4 && g.pl == 1 && g.pr == 1);
        ASSERT(g.explicit_pad);
        n.padding = WTT_PAD_VALID;
        ASSERT(wtt_shape_conv2d(&n, &g, &err) == 0);
        ASSERT(g.OH == 2 && g.OW == 3 && g.pt == 0 && !g.explicit_pad);
        n.strides[1] = 0;
        ASSERT(wtt_shape_conv2d(&n, &g, &err) == WTT_EFAIL);
        ASSERT_STR_EQ(err, "Conv2D: bad strides or dilations");
    }
    return 0;
}
