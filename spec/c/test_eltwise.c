/*
 * test_eltwise.c: the CPU backend's elementwise and reduction kernels
 * (kernels/cpu/eltwise.c, reduce.c) against straightforward references,
 * bit for bit, on random shapes and data. The kernels take fast paths (one
 * loop per op, broadcasts walked as contiguous blocks, reductions with
 * lanes across outputs); the references walk every output by index with
 * wtt_elem.h's formulas and add in row-major order, as the kernels did
 * before those paths. The data spans 80 binary orders of magnitude, so a
 * sum taken in another order rounds differently (test_reduce_sum checks
 * that it would), and holds +-0, NaN and +-Inf.
 */
#include "test.h"
#include "wtt_backend_cpu.h"
#include "wtt_elem.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#define RUNS 400

/* xorshift64*: the same sequence on every machine. */
static uint64_t
next_u64(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ULL;
}


static int
rnd(uint64_t *s, int n)
{
    return (int) (next_u64(s) % (uint64_t) n);
}


/* Finite values of both signs from 2^-40 to 2^40; with `specials`, now
 * and then a signed zero, NaN or infinity. */
static float
rnd_value(uint64_t *s, int specials)
{
    int k = rnd(s, 64);

    if (specials && k == 0) {
        return rnd(s, 2) ? 0.0f : -0.0f;
    }
    if (specials && k == 1) {
        return NAN;
    }
    if (specials && k == 2) {
        return rnd(s, 2) ? INFINITY : -INFINITY;
    }
    return ldexpf((float) (next_u64(s) >> 40) / 16777216.0f + 0.5f,
                  rnd(s, 81) - 40) * (rnd(s, 2) ? 1.0f : -1.0f);
}


static int
tensor_new(struct wtt_tensor *t, int dtype, int rank, const int64_t *ne)
{
    memset(t, 0, sizeof(*t));
    t->dtype = dtype;
    t->rank = rank;
    memcpy(t->ne, ne, sizeof(int64_t) * (size_t) rank);
    t->cap = (size_t) wtt_tensor_nelem(t) * 4 + 4;
    t->data = malloc(t->cap);
    return t->data != NULL ? 0 : -1;
}


static void
fill(struct wtt_tensor *t, uint64_t *s, int specials)
{
    for (int64_t i = 0; i < wtt_tensor_nelem(t); i++) {
        if (t->dtype == WTT_F32) {
            ((float *) t->data)[i] = rnd_value(s, specials);
        } else {
            ((int32_t *) t->data)[i] = rnd(s, 2001) - 1000;
        }
    }
}


/*
 * Whether n floats at a and b are the same bits, but for NaNs, which only
 * need to be NaN at the same places: which NaN an operation on two NaNs
 * gives depends on the order of the operands in the instruction, which
 * the compiler may swap (a + b as b + a) from one build to the next.
 */
static int
same_floats(const float *a, const float *b, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        if (isnan(a[i]) ? !isnan(b[i])
                        : memcmp(&a[i], &b[i], sizeof(float)) != 0)
        {
            return 0;
        }
    }
    return 1;
}


/* Runs node `n` on the CPU backend; 0 on success. */
static int
run_cpu(struct wtt_node *n)
{
    const char *err = NULL;
    int         rc = wtt_backend_cpu.compute(n, &err);

    if (rc != 0) {
        fprintf(stderr, "compute: %s\n", err ? err : "?");
    }
    return rc;
}


static void
node_done(struct wtt_node *n)
{
    if (n->out.cap != 0) {
        wtt_backend_cpu.buffer_free(NULL, n->out.data);
    }
    memset(&n->out, 0, sizeof(n->out));
}


/* ---------------------------------------------------------------------------
 * Binary ops
 * ------------------------------------------------------------------------- */

/* Output element o of a broadcast binary op, by index. */
static void
ref_binary(int op, const struct wtt_tensor *a, const struct wtt_tensor *b,
           int rank, const int64_t *ne, void *out)
{
    int64_t idx[WTT_MAX_RANK] = { 0 }, total = 1;

    for (int i = 0; i < rank; i++) {
        total *= ne[i];
    }
    for (int64_t o = 0; o < total; o++) {
        int64_t oa = 0, ob = 0, sa = 1, sb = 1;
        for (int i = rank - 1; i >= 0; i--) {
            int ia = i - (rank - a->rank), ib = i - (rank - b->rank);
            if (ia >= 0) {
                oa += (a->ne[ia] == 1 ? 0 : idx[i]) * sa;
                sa *= a->ne[ia];
            }
            if (ib >= 0) {
                ob += (b->ne[ib] == 1 ? 0 : idx[i]) * sb;
                sb *= b->ne[ib];
            }
        }
        if (a->dtype == WTT_F32) {
            ((float *) out)[o] = wtt_elem_binary_f(
                op, ((const float *) a->data)[oa],
                ((const float *) b->data)[ob]);
        } else {
            ((int32_t *) out)[o] = wtt_elem_binary_i(
                op, ((const int32_t *) a->data)[oa],
                ((const int32_t *) b->data)[ob]);
        }
        for (int i = rank - 1; i >= 0; i--) {
            if (++idx[i] < ne[i]) {
                break;
            }
            idx[i] = 0;
        }
    }
}


/* A random output shape and two operand shapes that broadcast to it: each
 * operand drops leading dimensions or has size 1 in some. */
static int
random_bcast(uint64_t *s, int *rank, int64_t *ne, int *ra, int64_t *na,
             int *rb, int64_t *nb)
{
    static const int64_t sizes[] = { 1, 1, 2, 3, 5, 8, 17, 31, 64, 130 };
    int64_t total = 1;

    *rank = rnd(s, WTT_MAX_RANK + 1);
    for (int i = 0; i < *rank; i++) {
        ne[i] = sizes[rnd(s, 10)];
        total *= ne[i];
    }
    if (total > 200000) {
        return -1;
    }
    /* One operand has the output's rank, the other may have fewer. */
    *ra = *rank - rnd(s, *rank + 1);
    *rb = *rank;
    if (rnd(s, 2)) {
        *rb = *ra;
        *ra = *rank;
    }
    for (int i = 0; i < *ra; i++) {
        int64_t d = ne[i + *rank - *ra];
        na[i] = rnd(s, 3) == 0 ? 1 : d;
    }
    for (int i = 0; i < *rb; i++) {
        int64_t d = ne[i + *rank - *rb];
        nb[i] = rnd(s, 3) == 0 ? 1 : d;
    }
    /* A dimension both operands broadcast is size 1 in the output. */
    for (int i = 0; i < *rank; i++) {
        int ia = i - (*rank - *ra), ib = i - (*rank - *rb);
        if ((ia < 0 || na[ia] == 1) && (ib < 0 || nb[ib] == 1)) {
            ne[i] = 1;
        }
    }
    return 0;
}


static int
check_binary(int op, int dtype, int rank, const int64_t *ne, int ra,
             const int64_t *na, int rb, const int64_t *nb, uint64_t *s)
{
    struct wtt_tensor a, b;
    struct wtt_node   n;
    void             *want;
    int64_t           total = 1;
    int               bad;

    for (int i = 0; i < rank; i++) {
        total *= ne[i];
    }
    ASSERT(tensor_new(&a, dtype, ra, na) == 0);
    ASSERT(tensor_new(&b, dtype, rb, nb) == 0);
    fill(&a, s, 1);
    fill(&b, s, 1);
    if (dtype == WTT_F32 && rnd(s, 4) == 0) {
        /* DivNoNan's zero divisors. */
        for (int64_t i = 0; i < wtt_tensor_nelem(&b); i += 3) {
            ((float *) b.data)[i] = 0.0f;
        }
    }
    want = malloc((size_t) total * 4 + 4);
    ASSERT(want != NULL);
    ref_binary(op, &a, &b, rank, ne, want);
    memset(&n, 0, sizeof(n));
    n.op = (enum wtt_op) op;
    n.nsrc = 2;
    n.src[0] = &a;
    n.src[1] = &b;
    ASSERT(run_cpu(&n) == 0);
    ASSERT(n.out.rank == rank);
    ASSERT(memcmp(n.out.ne, ne, sizeof(int64_t) * (size_t) rank) == 0);
    bad = dtype == WTT_F32 ? !same_floats(n.out.data, want, total)
                           : memcmp(n.out.data, want, (size_t) total * 4) != 0;
    if (bad) {
        fprintf(stderr, "op %d: a rank %d, b rank %d, out rank %d\n", op, ra,
                rb, rank);
    }
    node_done(&n);
    free(want);
    free(a.data);
    free(b.data);
    ASSERT(!bad);
    return 0;
}


int
test_eltwise_binary(void)
{
    static const int ops[] = { WTT_OP_ADD, WTT_OP_SUB, WTT_OP_MUL,
                               WTT_OP_DIV_NO_NAN };
    uint64_t s = 0x9e3779b97f4a7c15ULL;
    int64_t  ne[WTT_MAX_RANK], na[WTT_MAX_RANK], nb[WTT_MAX_RANK];
    int      rank, ra, rb, runs = 0;

    while (runs < RUNS) {
        int op = ops[rnd(&s, 4)];
        if (random_bcast(&s, &rank, ne, &ra, na, &rb, nb) != 0) {
            continue;
        }
        ASSERT(check_binary(op, rnd(&s, 8) ? WTT_F32 : WTT_I32, rank, ne,
                            ra, na, rb, nb, &s) == 0);
        runs++;
    }
    return 0;
}


/* The shapes Basic Pitch's graph runs, and the layouts of each fast path:
 * same shape, a scalar on either side, a row, a column, and broadcasts
 * that alternate between the operands. */
int
test_eltwise_binary_shapes(void)
{
    static const struct {
        int     rank, ra, rb;
        int64_t ne[4], na[4], nb[4];
    } c[] = {
        { 4, 4, 3, { 1, 309, 172, 2 }, { 1, 309, 172, 2 }, { 309, 1, 1 } },
        { 4, 4, 1, { 1, 172, 309, 1 }, { 1, 172, 309, 1 }, { 1 } },
        { 3, 3, 0, { 1, 172, 309 }, { 1, 172, 309 }, { 0 } },
        { 3, 0, 3, { 1, 172, 309 }, { 0 }, { 1, 172, 309 } },
        { 3, 3, 3, { 1, 172, 309 }, { 1, 172, 309 }, { 1, 1, 1 } },
        { 3, 3, 3, { 4, 5, 6 }, { 4, 5, 6 }, { 4, 5, 6 } },
        { 2, 2, 1, { 7, 33 }, { 7, 33 }, { 33 } },
        { 2, 2, 2, { 7, 33 }, { 7, 33 }, { 7, 1 } },
        { 2, 2, 2, { 7, 33 }, { 1, 33 }, { 7, 1 } },
        { 3, 3, 3, { 3, 4, 5 }, { 3, 1, 5 }, { 1, 4, 1 } },
        { 4, 4, 4, { 2, 1, 3, 9 }, { 2, 1, 1, 9 }, { 1, 1, 3, 1 } },
    };
    static const int ops[] = { WTT_OP_ADD, WTT_OP_SUB, WTT_OP_MUL,
                               WTT_OP_DIV_NO_NAN };
    uint64_t s = 42;

    for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
        for (int k = 0; k < 4; k++) {
            ASSERT(check_binary(ops[k], WTT_F32, c[i].rank, c[i].ne,
                                c[i].ra, c[i].na, c[i].rb, c[i].nb, &s)
                   == 0);
        }
    }
    return 0;
}


/* ---------------------------------------------------------------------------
 * Unary ops
 * ------------------------------------------------------------------------- */

int
test_eltwise_unary(void)
{
    static const int ops[] = { WTT_OP_NEG, WTT_OP_SQUARE, WTT_OP_SQRT,
                               WTT_OP_LOG, WTT_OP_SIGMOID };
    static const int64_t lens[] = { 0, 1, 3, 15, 16, 17, 63, 1000, 53148 };
    uint64_t s = 7;

    for (size_t l = 0; l < sizeof(lens) / sizeof(lens[0]); l++) {
        for (int k = 0; k < 5; k++) {
            struct wtt_tensor x;
            struct wtt_node   n;
            int64_t           ne[2] = { 1, lens[l] };
            float            *want = malloc((size_t) lens[l] * 4 + 4);
            int               bad = 0;
            ASSERT(want != NULL && tensor_new(&x, WTT_F32, 2, ne) == 0);
            fill(&x, &s, 1);
            for (int64_t i = 0; i < lens[l]; i++) {
                want[i] = wtt_elem_unary(ops[k], ((float *) x.data)[i]);
            }
            memset(&n, 0, sizeof(n));
            n.op = (enum wtt_op) ops[k];
            n.nsrc = 1;
            n.src[0] = &x;
            ASSERT(run_cpu(&n) == 0);
            bad = !same_floats(n.out.data, want, lens[l]);
            node_done(&n);
            free(want);
            free(x.data);
            if (bad) {
                fprintf(stderr, "op %d over %lld values\n", ops[k],
                        (long long) lens[l]);
            }
            ASSERT(!bad);
        }
    }
    return 0;
}


/* ---------------------------------------------------------------------------
 * Reductions
 * ------------------------------------------------------------------------- */

/* The reduction by index: every input, in row-major order, into its
 * output. With `lanes`, Sum adds each output's inputs in 4 interleaved
 * partial sums, as a vectorised loop would (only to show that the data
 * tells the orders apart). */
static void
ref_reduce(int op, const struct wtt_tensor *x, const int *red, float *out,
           int64_t count, int lanes)
{
    int64_t  ost[WTT_MAX_RANK], st = 1, total = wtt_tensor_nelem(x);
    double  *sums = calloc((size_t) count * 4 + 1, sizeof(double));
    int64_t *seen = calloc((size_t) count + 1, sizeof(int64_t));

    for (int i = x->rank - 1; i >= 0; i--) {
        ost[i] = red[i] ? 0 : st;
        st *= red[i] ? 1 : x->ne[i];
    }
    for (int64_t o = 0; o < count; o++) {
        out[o] = op == WTT_OP_MIN ? INFINITY : -INFINITY;
    }
    for (int64_t k = 0; k < total; k++) {
        int64_t rest = k, o = 0;
        float   v = ((const float *) x->data)[k];
        for (int i = x->rank - 1; i >= 0; i--) {
            o += rest % x->ne[i] * ost[i];
            rest /= x->ne[i];
        }
        if (op == WTT_OP_SUM) {
            sums[o * 4 + (lanes ? seen[o]++ % 4 : 0)] += v;
        } else if (op == WTT_OP_MIN) {
            out[o] = v < out[o] ? v : out[o];
        } else {
            out[o] = v > out[o] ? v : out[o];
        }
    }
    if (op == WTT_OP_SUM) {
        for (int64_t o = 0; o < count; o++) {
            double *l = sums + o * 4;
            out[o] = (float) (((l[0] + l[1]) + l[2]) + l[3]);
        }
    }
    free(sums);
    free(seen);
}


/*
 * Makes the first two inputs of every output (row-major order) 2^100 and
 * -2^100: added first, they cancel and leave the rest's sum; added in any
 * other order, they swallow some of the rest, so the sum tells the orders
 * apart.
 */
static void
plant_cancel(struct wtt_tensor *x, const int *red)
{
    int64_t  ost[WTT_MAX_RANK], st = 1, total = wtt_tensor_nelem(x);
    int64_t *seen = calloc((size_t) total + 1, sizeof(int64_t));

    for (int i = x->rank - 1; i >= 0; i--) {
        ost[i] = red[i] ? 0 : st;
        st *= red[i] ? 1 : x->ne[i];
    }
    for (int64_t k = 0; k < total && seen != NULL; k++) {
        int64_t rest = k, o = 0;
        for (int i = x->rank - 1; i >= 0; i--) {
            o += rest % x->ne[i] * ost[i];
            rest /= x->ne[i];
        }
        if (seen[o] < 2) {
            ((float *) x->data)[k] = seen[o] == 0 ? 0x1p100f : -0x1p100f;
        }
        seen[o]++;
    }
    free(seen);
}


/* Reduces x over the axes marked in red[] (given to the node as `axes`,
 * some negative) with the CPU backend and the reference; 0 when they
 * agree to the bit. *differs: the reference in lanes differs. */
static int
check_reduce(int op, const struct wtt_tensor *x, const int *red,
             int keep_dims, int *differs)
{
    struct wtt_tensor ax;
    struct wtt_node   n;
    int64_t           count = 1, nax = 0, ne1[1];
    float            *want, *back;
    int               bad;

    for (int i = 0; i < x->rank; i++) {
        count *= red[i] ? 1 : x->ne[i];
        nax += red[i];
    }
    ne1[0] = nax;
    ASSERT(tensor_new(&ax, WTT_I32, 1, ne1) == 0);
    for (int i = 0, k = 0; i < x->rank; i++) {
        if (red[i]) {
            ((int32_t *) ax.data)[k] = k % 2 ? i - x->rank : i;
            k++;
        }
    }
    want = malloc((size_t) count * 4);
    back = malloc((size_t) count * 4);
    ASSERT(want != NULL && back != NULL);
    ref_reduce(op, x, red, want, count, 0);
    ref_reduce(op, x, red, back, count, 1);
    *differs = !same_floats(want, back, count);
    memset(&n, 0, sizeof(n));
    n.op = (enum wtt_op) op;
    n.nsrc = 2;
    n.src[0] = (struct wtt_tensor *) x;
    n.src[1] = &ax;
    n.keep_dims = keep_dims;
    ASSERT(run_cpu(&n) == 0);
    ASSERT(wtt_tensor_nelem(&n.out) == count);
    ASSERT(n.out.rank == (keep_dims ? x->rank : x->rank - (int) nax));
    bad = !same_floats(n.out.data, want, count);
    if (bad) {
        fprintf(stderr, "op %d over rank %d:", op, x->rank);
        for (int i = 0; i < x->rank; i++) {
            fprintf(stderr, " %lld%s", (long long) x->ne[i],
                    red[i] ? "r" : "");
        }
        fprintf(stderr, "\n");
    }
    node_done(&n);
    free(want);
    free(back);
    free(ax.data);
    ASSERT(!bad);
    return 0;
}


/* Random shapes and axis sets (runs of axes and scattered ones). */
int
test_reduce_axes(void)
{
    static const int64_t sizes[] = { 1, 2, 3, 5, 8, 31, 40, 97 };
    static const int ops[] = { WTT_OP_SUM, WTT_OP_MIN, WTT_OP_MAX };
    uint64_t s = 0x1234567ULL;
    int      runs = 0, differs, sum_differs = 0;

    while (runs < RUNS) {
        struct wtt_tensor x;
        int64_t           ne[WTT_MAX_RANK], total = 1;
        int               red[WTT_MAX_RANK], rank = 1 + rnd(&s, 5);
        int               op = ops[runs % 3];
        for (int i = 0; i < rank; i++) {
            ne[i] = sizes[rnd(&s, 8)];
            total *= ne[i];
            red[i] = rnd(&s, 2);
        }
        if (total > 300000) {
            continue;
        }
        ASSERT(tensor_new(&x, WTT_F32, rank, ne) == 0);
        fill(&x, &s, rnd(&s, 2));
        if (rnd(&s, 2)) {
            plant_cancel(&x, red);
        }
        ASSERT(check_reduce(op, &x, red, rnd(&s, 2), &differs) == 0);
        sum_differs += op == WTT_OP_SUM && differs;
        free(x.data);
        runs++;
    }
    /* The data can tell a sum's orders apart. */
    ASSERT(sum_differs >= RUNS / 20);
    return 0;
}


/* Basic Pitch's reductions, and Sum's order over long rows and columns. */
int
test_reduce_sum(void)
{
    static const struct {
        int     rank;
        int64_t ne[4];
        int     red[4];
    } c[] = {
        { 4, { 1, 309, 172, 2 }, { 0, 0, 0, 1 } },
        { 3, { 1, 172, 309 }, { 0, 1, 1 } },
        { 2, { 3, 5000 }, { 0, 1 } },
        { 2, { 5000, 3 }, { 1, 0 } },
        { 3, { 4, 700, 9 }, { 0, 1, 0 } },
        { 3, { 4, 700, 9 }, { 1, 0, 1 } },
    };
    static const int ops[] = { WTT_OP_SUM, WTT_OP_MIN, WTT_OP_MAX };
    uint64_t s = 99;
    int      differs, any = 0;

    for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
        struct wtt_tensor x;
        ASSERT(tensor_new(&x, WTT_F32, c[i].rank, c[i].ne) == 0);
        fill(&x, &s, (int) i % 2);
        plant_cancel(&x, c[i].red);
        for (int k = 0; k < 3; k++) {
            ASSERT(check_reduce(ops[k], &x, c[i].red, 0, &differs) == 0);
            any += ops[k] == WTT_OP_SUM && differs;
        }
        free(x.data);
    }
    ASSERT(any >= 3);
    return 0;
}


/* Min and Max keep the first of equal zeros (-0 or +0, by position), skip
 * NaN, and give +-Inf for a row of NaNs, wherever in a long row they are. */
int
test_reduce_minmax_zeros(void)
{
    int64_t ne[1] = { 1000 };
    int     red[1] = { 1 }, differs;

    for (int first = 0; first < 2; first++) {
        for (int at = 0; at < 70; at += 7) {
            struct wtt_tensor x;
            float            *v;
            ASSERT(tensor_new(&x, WTT_F32, 1, ne) == 0);
            v = x.data;
            for (int64_t i = 0; i < ne[0]; i++) {
                v[i] = i % 5 == 0 ? NAN : 1.0f + (float) i;
            }
            /* Zeros of both signs, the first at `at` with sign `first`;
             * for Max, the same with negative values around. */
            for (int64_t i = at; i < ne[0]; i += 37) {
                v[i] = ((i - at) / 37 % 2 == 0) == first ? -0.0f : 0.0f;
            }
            ASSERT(check_reduce(WTT_OP_MIN, &x, red, 0, &differs) == 0);
            for (int64_t i = 0; i < ne[0]; i++) {
                v[i] = v[i] == 0.0f || isnan(v[i]) ? v[i] : -v[i];
            }
            ASSERT(check_reduce(WTT_OP_MAX, &x, red, 0, &differs) == 0);
            for (int64_t i = 0; i < ne[0]; i++) {
                v[i] = NAN;
            }
            ASSERT(check_reduce(WTT_OP_MIN, &x, red, 0, &differs) == 0);
            ASSERT(check_reduce(WTT_OP_MAX, &x, red, 0, &differs) == 0);
            free(x.data);
        }
    }
    return 0;
}
