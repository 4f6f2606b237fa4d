/*
 * conv.c: Conv2D and _FusedConv2D (BiasAdd, then optional Relu), NHWC input,
 * HWIO filter, strides, dilations, SAME/VALID padding, as TensorFlow
 * defines them (the geometry is kernels/wtt_shape.c's).
 *
 * Accumulation order is part of the result. The official reference (tfjs'
 * CPU backend) adds the products of each output in the order filter row,
 * filter column, input channel, one rounded float32 addition at a time, and
 * skips taps that fall in the padding; this kernel does the same with one
 * fused multiply-add per tap (exact product, one rounding, which is what
 * tfjs' double-precision product and float32 store amount to). Near silence
 * the constant-Q front end cancels large terms, so any other order (an
 * sgemm, or exact sums) lands measurably further from the reference.
 * Horizontal padding taps are computed as products with zero, which leave
 * a sum unchanged (a sum that starts at +0 never becomes -0), so they
 * agree with skipping them.
 *
 * Speed comes from doing many outputs at once, each with its own chain of
 * FMAs, and two ways to lay them across vector lanes:
 *
 * - filters across lanes (layers with 16 filters or more, on AVX-512): a
 *   tile of P output positions by 16*NV filters lives in P*NV registers;
 *   per tap, NV filter vectors are loaded and each position's input value
 *   is broadcast from the NHWC input as it is, so the input needs no
 *   rearrangement (only a zero-padded copy when the layer pads columns)
 *   and the output is stored as whole filter vectors, bias and Relu on the
 *   way out;
 * - positions across lanes (fewer filters, or no AVX-512): the input is
 *   rearranged into zero-padded planes per row and channel (a register
 *   transpose of each row), split by stride phase, so that for a fixed tap
 *   the inputs of consecutive outputs are contiguous; a tile of TB outputs
 *   by OB filters is accumulated in registers across all taps. Each input
 *   row is rearranged just before the first output row that reads it, and
 *   when several blocks of filters read planes larger than the L2 cache
 *   (its size read at run time), rows are cut into column blocks that fit.
 *   Single-filter layers take four output rows at once, so that each input
 *   vector loaded serves every row it is a tap of. On AVX-512 the tiles
 *   are written with intrinsics; elsewhere their loops have constant
 *   bounds, which the compiler turns into vector FMAs (AVX2 clones, chosen
 *   at run time; a plain build computes the same values, more slowly).
 *
 * Filters are packed once per weight tensor (zero-padded to whole tiles)
 * and kept on the node with the scratch buffers, which are reused by every
 * later run.
 */
#include "ops.h"
#include "wtt_shape.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define HAVE_X86_TILES 1
#endif


/* Cleared by tests to run the tiles an AVX2 machine gets (ops.h). */
static int avx512_allowed = 1;

void
wtt_cpu_conv_allow_avx512(int on)
{
    avx512_allowed = on;
}


static int
cpu_avx512(void)
{
#ifdef HAVE_X86_TILES
    return avx512_allowed && __builtin_cpu_supports("avx512f");
#else
    return 0;
#endif
}


/* The L2 size the column blocks are sized from: detected once (0 until
 * then), or set by a test (ops.h). */
static size_t l2_bytes;

void
wtt_cpu_conv_set_l2(size_t bytes)
{
    __atomic_store_n(&l2_bytes, bytes, __ATOMIC_RELAXED);
}


/* The size of this CPU's level-2 data cache (per core on the CPUs this
 * runs on), from the C library or sysfs; 256 KiB, the smallest of recent
 * x86 and Arm server cores, when neither knows. */
static size_t
l2_size(void)
{
    size_t v = __atomic_load_n(&l2_bytes, __ATOMIC_RELAXED);

    if (v == 0) {
        long  sc = sysconf(_SC_LEVEL2_CACHE_SIZE);
        FILE *f;

        v = sc > 0 ? (size_t) sc : 0;
        if (v == 0 && (f = fopen("/sys/devices/system/cpu/cpu0/cache/"
                                 "index2/size", "r")) != NULL)
        {
            unsigned long kb = 0;
            char          unit = 'K';
            if (fscanf(f, "%lu%c", &kb, &unit) >= 1) {
                v = (size_t) kb * (unit == 'M' ? 1024 * 1024 : 1024);
            }
            fclose(f);
        }
        if (v == 0) {
            v = 256 * 1024;
        }
        __atomic_store_n(&l2_bytes, v, __ATOMIC_RELAXED);
    }
    return v;
}


/* Kernel-private state kept on the node between runs. */
typedef struct {
    float  *planes;         /* positions path: rearranged input */
    size_t  planes_cap;
    int64_t planes_key[6];  /* the layout whose padding planes holds */
    float  *xpad;           /* filters path: input with padded columns */
    size_t  xpad_cap;
    float  *wpack;          /* [KH*KW*C][Opad] */
    size_t  wpack_n;
    const void *wsrc;
} conv_scratch;


/* Grows a scratch buffer to `need` bytes (contents not kept). */
static int
reserve(float **buf, size_t *cap, size_t need)
{
    if (*cap >= need) {
        return 0;
    }
    free(*buf);
    *buf = malloc(need);
    *cap = *buf != NULL ? need : 0;
    return *buf != NULL ? 0 : -1;
}


/* The filter rows (kh, kw) whose input row exists for output row `oh`:
 * tfjs skips the others, and so do both paths. */
static void
valid_rows(const struct wtt_shape_conv *g, int64_t oh, int64_t *kh0,
           int64_t *kh1)
{
    int64_t ih0 = oh * g->sh - g->pt;

    *kh0 = 0;
    while (*kh0 < g->KH && ih0 + *kh0 * g->dh < 0) {
        (*kh0)++;
    }
    *kh1 = g->KH;
    while (*kh1 > *kh0 && ih0 + (*kh1 - 1) * g->dh >= g->H) {
        (*kh1)--;
    }
}


/* Bias, then Relu, on one accumulated value (the graph's order). */
static inline float
finish(float v, const float *bias, int64_t o, int relu)
{
    if (bias != NULL) {
        v = v + bias[o];
    }
    if (relu && v < 0.0f) {
        v = 0.0f;
    }
    return v;
}


/* ---------------------------------------------------------------------------
 * Positions across lanes
 * ------------------------------------------------------------------------- */

/*
 * The next filter column's input, (kw * dw) split into stride phase and
 * offset: stepped without a division per tap.
 */
static inline void
next_column(int64_t *phase, int64_t *off, int dw, int sw)
{
    *phase += dw;
    while (*phase >= sw) {
        *phase -= sw;
        (*off)++;
    }
}


/*
 * One output row `oh` for filters [o0, o0+ob) and outputs [t0, t0+tb):
 * acc[j][t] over every tap in (kh, kw, c) order. Three shapes: 4 filters x
 * 32 outputs for layers with several filters, 1 x 128 or 1 x 96 for
 * single-filter heads (six or eight independent vectors: enough chains to
 * hide the FMA latency).
 */
#define DEFINE_TILE(NAME, ob, tb)                                             \
__attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default"))) \
static void                                                                   \
NAME(const float *restrict planes, const float *restrict wpack, int64_t Opad,  \
     int64_t C, int64_t H, int64_t kh0, int64_t kh1, int64_t KW, int sw,      \
     int dw, int64_t ih0, int dh, int64_t jn, int64_t t0, int64_t o0,         \
     float *restrict acc)                                                     \
{                                                                             \
    /* A local tile the compiler can keep in vector registers. */            \
    float a[ob][tb];                                                          \
                                                                              \
    for (int j = 0; j < ob; j++) {                                            \
        for (int t = 0; t < tb; t++) {                                        \
            a[j][t] = 0.0f;                                                   \
        }                                                                     \
    }                                                                         \
    for (int64_t kh = kh0; kh < kh1; kh++) {                                  \
        int64_t ih = ih0 + kh * dh;                                           \
        int64_t phase = 0, off = 0;                                           \
        for (int64_t kw = 0; kw < KW; kw++) {                                 \
            const float *wk = wpack + ((kh * KW + kw) * C) * Opad + o0;       \
            if (kw > 0) {                                                     \
                next_column(&phase, &off, dw, sw);                            \
            }                                                                 \
            for (int64_t c = 0; c < C; c++) {                                 \
                const float *xs = planes + ((ih * C + c) * sw + phase) * jn   \
                                  + off + t0;                                 \
                const float *w = wk + c * Opad;                               \
                for (int j = 0; j < ob; j++) {                                \
                    float wj = w[j];                                          \
                    for (int t = 0; t < tb; t++) {                            \
                        a[j][t] = __builtin_fmaf(xs[t], wj, a[j][t]);         \
                    }                                                         \
                }                                                             \
            }                                                                 \
        }                                                                     \
    }                                                                         \
    memcpy(acc, a, sizeof(a));                                                \
}

DEFINE_TILE(tile_wide, 4, 32)
DEFINE_TILE(tile_single, 1, 128)
DEFINE_TILE(tile_single96, 1, 96)

#ifdef HAVE_X86_TILES
/*
 * The same tiles written for AVX-512 with the accumulators named as
 * registers (the generic tiles leave the compiler free to keep them on the
 * stack, and GCC does): OB filters by PV vectors of 16 outputs. Per tap,
 * PV input vectors are loaded and each filter's weight broadcast.
 */
#define DEFINE_PTILE(NAME, OB, PV)                                            \
__attribute__((target("avx512f")))                                            \
static void                                                                   \
NAME(const float *restrict planes, const float *restrict wpack, int64_t Opad,  \
     int64_t C, int64_t H, int64_t kh0, int64_t kh1, int64_t KW, int sw,      \
     int dw, int64_t ih0, int dh, int64_t jn, int64_t t0, int64_t o0,         \
     float *restrict acc)                                                     \
{                                                                             \
    __m512  a[OB][PV];                                                        \
    int64_t cstep = sw * jn;        /* floats between channels' planes */    \
                                                                              \
    (void) H;                                                                 \
    for (int j = 0; j < OB; j++) {                                            \
        for (int v = 0; v < PV; v++) {                                        \
            a[j][v] = _mm512_setzero_ps();                                    \
        }                                                                     \
    }                                                                         \
    for (int64_t kh = kh0; kh < kh1; kh++) {                                  \
        const float *xrow = planes + (ih0 + kh * dh) * C * cstep + t0;        \
        int64_t      phase = 0, off = 0;                                      \
        for (int64_t kw = 0; kw < KW; kw++) {                                 \
            const float *xk, *wk;                                             \
            if (kw > 0) {                                                     \
                next_column(&phase, &off, dw, sw);                            \
            }                                                                 \
            xk = xrow + phase * jn + off;                                     \
            wk = wpack + ((kh * KW + kw) * C) * Opad + o0;                    \
            for (int64_t c = 0; c < C; c++) {                                 \
                __m512 xv[PV];                                                \
                for (int v = 0; v < PV; v++) {                                \
                    xv[v] = _mm512_loadu_ps(xk + c * cstep + 16 * v);         \
                }                                                             \
                for (int j = 0; j < OB; j++) {                                \
                    __m512 wj = _mm512_set1_ps(wk[c * Opad + j]);             \
                    for (int v = 0; v < PV; v++) {                            \
                        a[j][v] = _mm512_fmadd_ps(xv[v], wj, a[j][v]);        \
                    }                                                         \
                }                                                             \
            }                                                                 \
        }                                                                     \
    }                                                                         \
    for (int j = 0; j < OB; j++) {                                            \
        for (int v = 0; v < PV; v++) {                                        \
            _mm512_storeu_ps(acc + j * 16 * PV + 16 * v, a[j][v]);            \
        }                                                                     \
    }                                                                         \
}

DEFINE_PTILE(ptile_8x32, 8, 2)
DEFINE_PTILE(ptile_1x128, 1, 8)
DEFINE_PTILE(ptile_1x96, 1, 6)

/*
 * Single-filter layers with unit row stride and dilation, RT_ROWS output
 * rows at once: input row r is tap kh = r - ih0 - i of output row i, for
 * every i it reaches, so each input vector loaded serves up to RT_ROWS
 * rows (a single-filter tile otherwise loads one vector per FMA). Each
 * output still sees its taps in (kh, kw, c) order, since r ascends; rows
 * outside the input are never visited, as tfjs skips them.
 */
#define RT_ROWS 4

__attribute__((target("avx512f")))
static void
rtile_4x96(const float *restrict planes, const float *restrict wk,
           int64_t C, int64_t H, int64_t KH, int64_t KW, int sw, int dw,
           int64_t ih0, int64_t jn, int64_t t0, float *restrict acc)
{
    __m512  a[RT_ROWS][6];
    int64_t cstep = sw * jn;
    int64_t r0 = ih0 > 0 ? ih0 : 0;
    int64_t r1 = ih0 + RT_ROWS - 1 + KH < H ? ih0 + RT_ROWS - 1 + KH : H;

    for (int i = 0; i < RT_ROWS; i++) {
        for (int v = 0; v < 6; v++) {
            a[i][v] = _mm512_setzero_ps();
        }
    }
    for (int64_t r = r0; r < r1; r++) {
        const float *xrow = planes + r * C * cstep + t0;
        int64_t      d = r - ih0, phase = 0, off = 0;
        for (int64_t kw = 0; kw < KW; kw++) {
            const float *xk;
            if (kw > 0) {
                next_column(&phase, &off, dw, sw);
            }
            xk = xrow + phase * jn + off;
            for (int64_t c = 0; c < C; c++) {
                __m512 xv[6];
                for (int v = 0; v < 6; v++) {
                    xv[v] = _mm512_loadu_ps(xk + c * cstep + 16 * v);
                }
                for (int i = 0; i < RT_ROWS; i++) {
                    int64_t kh = d - i;
                    if (kh >= 0 && kh < KH) {
                        __m512 w = _mm512_set1_ps(wk[(kh * KW + kw) * C + c]);
                        for (int v = 0; v < 6; v++) {
                            a[i][v] = _mm512_fmadd_ps(xv[v], w, a[i][v]);
                        }
                    }
                }
            }
        }
    }
    for (int i = 0; i < RT_ROWS; i++) {
        for (int v = 0; v < 6; v++) {
            _mm512_storeu_ps(acc + i * 96 + 16 * v, a[i][v]);
        }
    }
}
#endif

/* dst[c * ld + iw] = src[iw * C + c]: one row from position-major to
 * channel-major. */
__attribute__((noinline))    /* inlined, GCC spills its stride */
static void
row_transpose_plain(const float *restrict src, int64_t W, int64_t C,
                    float *restrict dst, int64_t ld, int64_t iw)
{
    for (int64_t c = 0; c < C; c++) {
        for (int64_t i = iw; i < W; i++) {
            dst[c * ld + i] = src[i * C + c];
        }
    }
}

#ifdef HAVE_X86_TILES
/*
 * Blocks of 8 positions by 8 channels transposed in registers (unpack,
 * shuffle, swap halves); leftover channels and positions one by one.
 */
__attribute__((target("avx2")))
static void
row_transpose_avx2(const float *restrict src, int64_t W, int64_t C,
                   float *restrict dst, int64_t ld)
{
    int64_t iw = 0, c8 = C / 8 * 8;

    for (; iw + 8 <= W; iw += 8) {
        for (int64_t c0 = 0; c0 < c8; c0 += 8) {
            const float *s = src + iw * C + c0;
            __m256 r[8], t[8], u[8];

            for (int i = 0; i < 8; i++) {
                r[i] = _mm256_loadu_ps(s + i * C);
            }
            for (int i = 0; i < 8; i += 2) {
                t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
                t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
            }
            for (int i = 0; i < 8; i += 4) {
                u[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
                u[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xee);
                u[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
                u[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xee);
            }
            for (int j = 0; j < 4; j++) {
                _mm256_storeu_ps(dst + (c0 + j) * ld + iw,
                                 _mm256_permute2f128_ps(u[j], u[j + 4], 0x20));
                _mm256_storeu_ps(dst + (c0 + j + 4) * ld + iw,
                                 _mm256_permute2f128_ps(u[j], u[j + 4], 0x31));
            }
        }
        for (int64_t c = c8; c < C; c++) {
            for (int64_t i = iw; i < iw + 8; i++) {
                dst[c * ld + i] = src[i * C + c];
            }
        }
    }
    row_transpose_plain(src, W, C, dst, ld, iw);
}
#endif


static void
row_transpose(const float *restrict src, int64_t W, int64_t C,
              float *restrict dst, int64_t ld)
{
#ifdef HAVE_X86_TILES
    if (__builtin_cpu_supports("avx2")) {
        row_transpose_avx2(src, W, C, dst, ld);
        return;
    }
#endif
    row_transpose_plain(src, W, C, dst, ld, 0);
}


/*
 * Planes for input rows [ih_from, ih_to) of image `img`: per row and
 * channel, the zero-padded row split by stride phase (padded position
 * e = j*sw + p at [p][j]), with room for a whole last tile. Only the
 * positions that hold input are written, with no division per element,
 * the source row read while it sits in cache; the padding is zeroed once
 * per layout (planes_reserve).
 */
static void
planes_fill(float *restrict planes, const float *restrict img,
            const struct wtt_shape_conv *g, int64_t jn, int64_t ih_from,
            int64_t ih_to)
{
    int64_t W = g->W, C = g->C, pl = g->pl;
    int     sw = g->sw;

    if (sw == 1 && pl <= jn - W) {
        /* One phase: a transpose of each row, read in order. */
        for (int64_t ih = ih_from; ih < ih_to; ih++) {
            const float *src = img + ih * W * C;
            float       *row = planes + ih * C * jn;
            if (C == 1) {
                memcpy(row + pl, src, (size_t) W * sizeof(float));
                continue;
            }
            row_transpose(src, W, C, row + pl, jn);
        }
        return;
    }
    for (int64_t ih = ih_from; ih < ih_to; ih++) {
        const float *src = img + ih * W * C;
        for (int64_t c = 0; c < C; c++) {
            float *row = planes + (ih * C + c) * sw * jn;
            for (int p = 0; p < sw; p++) {
                float  *dst = row + p * jn;
                /* j*sw + p - pl in [0, W) */
                int64_t lo = pl > p ? (pl - p + sw - 1) / sw : 0;
                int64_t hi = (W + pl - p + sw - 1) / sw;
                int64_t j;
                if (lo > jn) {
                    lo = jn;
                }
                if (hi > jn) {
                    hi = jn;
                }
                for (j = lo; j < hi; j++) {
                    dst[j] = src[(j * sw + p - pl) * C + c];
                }
            }
        }
    }
}


/* Input rows are rearranged just before the first output row that reads
 * them, not all at once: a row's planes are then still in cache for every
 * output row they serve, however tall the image. */
struct fill {
    float       *planes;
    const float *img;
    int64_t      jn;
    int64_t      done;      /* rows [0, done) are filled */
};


/* Fills the input rows output rows up to `oh_last` read. */
static void
fill_through(struct fill *f, const struct wtt_shape_conv *g, int64_t oh_last)
{
    int64_t need = oh_last * g->sh - g->pt + (g->KH - 1) * g->dh + 1;

    if (need > g->H) {
        need = g->H;
    }
    if (need > f->done) {
        planes_fill(f->planes, f->img, g, f->jn, f->done, need);
        f->done = need;
    }
}


#ifdef HAVE_X86_TILES
static int
rows_usable(const struct wtt_shape_conv *g, int tb, int avx512)
{
    return avx512 && g->O == 1 && tb == 96 && g->sh == 1 && g->dh == 1
           && g->OH >= RT_ROWS;
}


/* Image b of a single-filter layer, RT_ROWS output rows at a time (the
 * last group ends at the last row, recomputing a few rows alike). */
static void
rows_run(struct wtt_node *n, const struct wtt_shape_conv *g,
         struct fill *fl, const float *wpack, int64_t b)
{
    const float *planes = fl->planes;
    int64_t      jn = fl->jn;
    const float *bias = n->fused_bias ? n->src[2]->data : NULL;
    float       *out = n->out.data;
    int64_t      OH = g->OH, OW = g->OW;

    for (int64_t oh0 = 0; oh0 < OH; oh0 += RT_ROWS) {
        int64_t oh = oh0 + RT_ROWS <= OH ? oh0 : OH - RT_ROWS;
        fill_through(fl, g, oh + RT_ROWS - 1);
        for (int64_t t0 = 0; t0 < OW; t0 += 96) {
            float   acc[RT_ROWS * 96];
            int64_t tn = OW - t0 < 96 ? OW - t0 : 96;
            rtile_4x96(planes, wpack, g->C, g->H, g->KH, g->KW, g->sw, g->dw,
                       oh - g->pt, jn, t0, acc);
            for (int i = 0; i < RT_ROWS; i++) {
                float *dst = out + (b * OH + oh + i) * OW + t0;
                for (int64_t t = 0; t < tn; t++) {
                    dst[t] = finish(acc[i * 96 + t], bias, 0, n->fused_relu);
                }
            }
        }
    }
}
#endif


/* The planes buffer for `need` bytes of layout (g, jn). Their padding is
 * never written by planes_fill, so it is zeroed here, once for as long as
 * the layout stays (the same node runs the same shapes window after
 * window). */
static int
planes_reserve(conv_scratch *s, const struct wtt_shape_conv *g, int64_t jn,
               size_t need)
{
    int64_t key[6] = { (int64_t) need, jn, g->pl, g->W, g->C, g->sw };
    size_t  cap = s->planes_cap;

    if (reserve(&s->planes, &s->planes_cap, need) != 0) {
        return -1;
    }
    /* a grown buffer is a new one (reserve does not keep contents) */
    if (s->planes_cap != cap || memcmp(key, s->planes_key, sizeof(key)) != 0) {
        memset(s->planes, 0, need);
        memcpy(s->planes_key, key, sizeof(key));
    }
    return 0;
}


/*
 * How many output columns (a multiple of tb) one pass over the filter
 * blocks covers. Each of the `nblocks` blocks of filters reads the same
 * planes of an output row; when those planes (KH rows of C channels) are
 * larger than half the L2 cache, the row is cut into column blocks whose
 * planes fit, so that the later filter blocks find them in cache. One
 * block of filters, or planes that fit, keep whole rows.
 */
static int64_t
column_block(const struct wtt_shape_conv *g, int tb, int64_t nblocks)
{
    size_t  budget = l2_size() / 2;
    /* bytes of planes per output column, and the halo every block adds */
    size_t  col = (size_t) (g->KH * g->C * g->sw) * sizeof(float);
    size_t  halo = (size_t) ((g->KW - 1) * g->dw) * col;
    int64_t cb;

    if (nblocks <= 1 || col * (size_t) g->OW + halo <= budget) {
        return g->OW;
    }
    cb = budget > halo ? (int64_t) ((budget - halo) / col) / tb * tb : 0;
    return cb < tb ? tb : cb;
}


static int
conv_positions(struct wtt_node *n, const struct wtt_shape_conv *g,
               conv_scratch *s, int ob, int tb, int64_t Opad,
               const char **err)
{
    const float *bias = n->fused_bias ? n->src[2]->data : NULL;
    const float *x = n->src[0]->data;
    float       *out = n->out.data;
    int64_t      OH = g->OH, OW = g->OW, O = g->O;
    int64_t      wp, jn, cb;
    size_t       need;
    int          avx512 = cpu_avx512();

    /* Every position the tiles read, the last tile's tail included. */
    wp = (OW + tb - 1) / tb * tb * g->sw + (g->KW - 1) * g->dw + 1;
    jn = (wp + g->sw - 1) / g->sw;
    need = (size_t) (g->C * g->H * g->sw * jn) * sizeof(float);
    if (planes_reserve(s, g, jn, need) != 0) {
        *err = "out of memory";
        return WTT_ENOMEM;
    }

    cb = column_block(g, tb, Opad / ob);
    for (int64_t b = 0; b < g->N; b++) {
        struct fill fl = { s->planes, x + b * g->H * g->W * g->C, jn, 0 };
#ifdef HAVE_X86_TILES
        if (rows_usable(g, tb, avx512)) {
            rows_run(n, g, &fl, s->wpack, b);
            continue;
        }
#endif
        for (int64_t oh = 0; oh < OH; oh++) {
            int64_t kh0, kh1, ih0 = oh * g->sh - g->pt;
            valid_rows(g, oh, &kh0, &kh1);
            fill_through(&fl, g, oh);
            for (int64_t c0 = 0; c0 < OW; c0 += cb)
            for (int64_t o0 = 0; o0 < Opad; o0 += ob) {
                int64_t c1 = c0 + cb < OW ? c0 + cb : OW;
                for (int64_t t0 = c0; t0 < c1; t0 += tb) {
                    float   acc[8 * 32];   /* ob x tb of any tile */
                    int64_t tn = OW - t0 < tb ? OW - t0 : tb;
                    int64_t on = O - o0 < ob ? O - o0 : ob;
#define TILE_ARGS s->planes, s->wpack, Opad, g->C, g->H, kh0, kh1, g->KW,     \
                  g->sw, g->dw, ih0, g->dh, jn, t0, o0, acc
                    if (0) {
#ifdef HAVE_X86_TILES
                    } else if (avx512 && ob == 8) {
                        ptile_8x32(TILE_ARGS);
                    } else if (avx512 && tb == 96) {
                        ptile_1x96(TILE_ARGS);
                    } else if (avx512 && ob == 1) {
                        ptile_1x128(TILE_ARGS);
#endif
                    } else if (tb == 96) {
                        tile_single96(TILE_ARGS);
                    } else if (ob == 1) {
                        tile_single(TILE_ARGS);
                    } else {
                        tile_wide(TILE_ARGS);
                    }
#undef TILE_ARGS
                    for (int64_t t = 0; t < tn; t++) {
                        float *dst = out + ((b * OH + oh) * OW + t0 + t) * O
                                     + o0;
                        for (int64_t j = 0; j < on; j++) {
                            dst[j] = finish(acc[j * tb + t], bias, o0 + j,
                                            n->fused_relu);
                        }
                    }
                }
            }
        }
    }
    return 0;
}


/* ---------------------------------------------------------------------------
 * Filters across lanes (AVX-512)
 * ------------------------------------------------------------------------- */

#ifdef HAVE_X86_TILES

/* What one tile call needs; the same for every tile of a row. */
struct ftile {
    const float *x;         /* input row of padded column 0, filter row kh0 */
    int64_t      xrow;      /* floats between input rows */
    int64_t      nkh;       /* valid filter rows */
    int64_t      dh;        /* input rows between filter rows */
    const float *w;         /* packed filters of row kh0, block o0 */
    int64_t      wrow;      /* floats between filter rows in wpack */
    int64_t      KW, C, Opad;
    int64_t      xstep;     /* floats between neighbouring positions */
    int64_t      xkw;       /* floats between filter columns */
    const float *bias;      /* NULL, or the block's bias (Opad-padded) */
    int          relu;
    int64_t      ostep;     /* floats between output positions (O) */
    int64_t      on;        /* filters of this block to store */
};

/*
 * P positions by NV*16 filters. a[p][v] accumulates position p's filters
 * [16v, 16v+16) of the block over every tap in (kh, kw, c) order; per tap
 * NV filter vectors are loaded and each position's input broadcast once.
 * The last vector is stored masked when the block ends mid-vector.
 */
#define DEFINE_FTILE(NAME, P, NV)                                             \
__attribute__((target("avx512f")))                                            \
static void                                                                   \
NAME(const struct ftile *restrict f, const float *restrict x,                 \
     float *restrict dst)                                                     \
{                                                                             \
    __m512 a[P][NV];                                                          \
                                                                              \
    for (int p = 0; p < P; p++) {                                             \
        for (int v = 0; v < NV; v++) {                                        \
            a[p][v] = _mm512_setzero_ps();                                    \
        }                                                                     \
    }                                                                         \
    for (int64_t kh = 0; kh < f->nkh; kh++) {                                 \
        const float *xr = x + kh * f->dh * f->xrow;                           \
        const float *wr = f->w + kh * f->wrow;                                \
        for (int64_t kw = 0; kw < f->KW; kw++) {                              \
            const float *xk = xr + kw * f->xkw;                               \
            const float *wk = wr + kw * f->C * f->Opad;                       \
            for (int64_t c = 0; c < f->C; c++) {                              \
                __m512 wv[NV];                                                \
                for (int v = 0; v < NV; v++) {                                \
                    wv[v] = _mm512_loadu_ps(wk + c * f->Opad + 16 * v);       \
                }                                                             \
                for (int p = 0; p < P; p++) {                                 \
                    __m512 xv = _mm512_set1_ps(xk[p * f->xstep + c]);         \
                    for (int v = 0; v < NV; v++) {                            \
                        a[p][v] = _mm512_fmadd_ps(xv, wv[v], a[p][v]);        \
                    }                                                         \
                }                                                             \
            }                                                                 \
        }                                                                     \
    }                                                                         \
    for (int p = 0; p < P; p++) {                                             \
        for (int v = 0; v < NV; v++) {                                        \
            int64_t   left = f->on - 16 * v;                                  \
            __mmask16 m = left >= 16 ? 0xffff                                 \
                          : (__mmask16) ((1u << (left > 0 ? left : 0)) - 1);  \
            __m512    r = a[p][v];                                            \
            if (f->bias != NULL) {                                            \
                r = _mm512_add_ps(r, _mm512_loadu_ps(f->bias + 16 * v));      \
            }                                                                 \
            if (f->relu) {                                                    \
                /* max(0, r): r when r is NaN, as `r < 0 ? 0 : r` */          \
                r = _mm512_max_ps(_mm512_setzero_ps(), r);                    \
            }                                                                 \
            _mm512_mask_storeu_ps(dst + p * f->ostep + 16 * v, m, r);         \
        }                                                                     \
    }                                                                         \
}

/* P*NV = 24 accumulators, leaving registers for the filter vectors. */
DEFINE_FTILE(ftile_16, 16, 1)
DEFINE_FTILE(ftile_32, 12, 2)
DEFINE_FTILE(ftile_48, 8, 3)
DEFINE_FTILE(ftile_64, 6, 4)

typedef void (*ftile_fn)(const struct ftile *, const float *, float *);

static const struct {
    ftile_fn fn;
    int      P;
} ftiles[5] = {
    [1] = { ftile_16, 16 },
    [2] = { ftile_32, 12 },
    [3] = { ftile_48, 8 },
    [4] = { ftile_64, 6 },
};

/* Vectors of the block of filters from o0: four, the last block as few
 * as its filters need (so that no block reads past the packed filters,
 * which are padded to whole vectors only). */
static int
ftile_nv(int64_t O, int64_t o0)
{
    return O - o0 >= 64 ? 4 : (int) ((O - o0 + 15) / 16);
}


/* Every block's tile fits in a row of outputs. */
static int
filters_usable(const struct wtt_shape_conv *g)
{
    return g->O >= 16 && g->OW >= ftiles[ftile_nv(g->O, 0)].P
           && g->OW >= ftiles[ftile_nv(g->O, g->O / 64 * 64)].P
           && cpu_avx512();
}


/*
 * The input with its column padding made real (zeros), so that every tap
 * of every position reads memory; rows are not padded (their taps are
 * skipped). Returns the image to read and its padded width, or NULL when
 * memory runs out.
 */
static const float *
columns_padded(const struct wtt_shape_conv *g, conv_scratch *s,
               const float *img, int64_t *wpad)
{
    int64_t W = g->W, C = g->C, pl = g->pl;
    int64_t need_w = (g->OW - 1) * g->sw + (g->KW - 1) * g->dw + 1;
    size_t  need;

    if (pl == 0 && need_w <= W) {
        *wpad = W;
        return img;
    }
    if (need_w < pl + W) {
        need_w = pl + W;
    }
    need = (size_t) (g->H * need_w * C) * sizeof(float);
    if (reserve(&s->xpad, &s->xpad_cap, need) != 0) {
        return NULL;
    }
    for (int64_t ih = 0; ih < g->H; ih++) {
        float *row = s->xpad + ih * need_w * C;
        memset(row, 0, (size_t) (pl * C) * sizeof(float));
        memcpy(row + pl * C, img + ih * W * C,
               (size_t) (W * C) * sizeof(float));
        memset(row + (pl + W) * C, 0,
               (size_t) ((need_w - pl - W) * C) * sizeof(float));
    }
    *wpad = need_w;
    return s->xpad;
}


static int
conv_filters(struct wtt_node *n, const struct wtt_shape_conv *g,
             conv_scratch *s, int64_t Opad, const char **err)
{
    const float *bias = n->fused_bias ? n->src[2]->data : NULL;
    const float *x = n->src[0]->data;
    float       *out = n->out.data;
    int64_t      OH = g->OH, OW = g->OW, O = g->O, C = g->C;
    float        bpad[64];

    for (int64_t b = 0; b < g->N; b++) {
        int64_t      wpad;
        const float *img = columns_padded(g, s, x + b * g->H * g->W * C,
                                          &wpad);
        if (img == NULL) {
            *err = "out of memory";
            return WTT_ENOMEM;
        }
        for (int64_t o0 = 0; o0 < O; o0 += 64) {
            int          nv = ftile_nv(O, o0), P = ftiles[nv].P;
            ftile_fn     fn = ftiles[nv].fn;
            struct ftile f;
            int64_t      kh0, kh1;

            f.on = O - o0 < 16 * nv ? O - o0 : 16 * nv;
            f.bias = NULL;
            if (bias != NULL) {
                /* the block's bias, zero-padded to whole vectors */
                memset(bpad, 0, sizeof(bpad));
                memcpy(bpad, bias + o0, (size_t) f.on * sizeof(float));
                f.bias = bpad;
            }
            f.xrow = wpad * C;
            f.dh = g->dh;
            f.wrow = g->KW * C * Opad;
            f.KW = g->KW;
            f.C = C;
            f.Opad = Opad;
            f.xstep = g->sw * C;
            f.xkw = g->dw * C;
            f.relu = n->fused_relu;
            f.ostep = O;
            for (int64_t oh = 0; oh < OH; oh++) {
                int64_t ih0 = oh * g->sh - g->pt;
                valid_rows(g, oh, &kh0, &kh1);
                f.nkh = kh1 - kh0;
                f.x = img + (ih0 + kh0 * g->dh) * f.xrow;
                f.w = s->wpack + kh0 * f.wrow + o0;
                for (int64_t t0 = 0; t0 < OW; t0 += P) {
                    /* The last tile ends at the row's end, recomputing a
                     * few outputs with the same values. */
                    int64_t t = t0 + P <= OW ? t0 : OW - P;
                    fn(&f, f.x + t * f.xstep,
                       out + ((b * OH + oh) * OW + t) * O + o0);
                }
            }
        }
    }
    return 0;
}

#endif


/* ---------------------------------------------------------------------------
 * The op
 * ------------------------------------------------------------------------- */

static void
scratch_free(void *p)
{
    conv_scratch *s = p;

    if (s != NULL) {
        free(s->planes);
        free(s->xpad);
        free(s->wpack);
        free(s);
    }
}


/* Filters packed once per weight tensor, padded to whole tiles with
 * zeros (whose products never reach a stored output). */
static int
pack_filters(conv_scratch *s, const struct wtt_tensor *w, int64_t K,
             int64_t O, int64_t Opad)
{
    if (s->wsrc == w->data && s->wpack_n == (size_t) (K * Opad)) {
        return 0;
    }
    free(s->wpack);
    s->wpack = calloc((size_t) (K * Opad), sizeof(float));
    s->wpack_n = 0;
    s->wsrc = NULL;
    if (s->wpack == NULL) {
        return -1;
    }
    for (int64_t k = 0; k < K; k++) {
        memcpy(s->wpack + k * Opad, (const float *) w->data + k * O,
               (size_t) O * sizeof(float));
    }
    s->wpack_n = (size_t) (K * Opad);
    s->wsrc = w->data;
    return 0;
}


int
wtt_cpu_op_conv2d(struct wtt_node *n, const char **err)
{
    struct wtt_shape_conv g;
    int64_t               ne[4], Opad;
    int                   rc, ob = 0, tb = 0;
    conv_scratch         *s;

    if ((rc = wtt_shape_conv2d(n, &g, err)) != 0) {
        return rc;
    }
    ne[0] = g.N;
    ne[1] = g.OH;
    ne[2] = g.OW;
    ne[3] = g.O;
    if (wtt_tensor_alloc(&n->out, WTT_F32, 4, ne) != 0) {
        *err = "out of memory";
        return WTT_ENOMEM;
    }
    if (g.N * g.OH * g.OW * g.O == 0) {
        return 0;
    }

    if (n->scratch == NULL) {
        n->scratch = calloc(1, sizeof(conv_scratch));
        n->scratch_free = scratch_free;
        if (n->scratch == NULL) {
            *err = "out of memory";
            return WTT_ENOMEM;
        }
    }
    s = n->scratch;

#ifdef HAVE_X86_TILES
    if (filters_usable(&g)) {
        Opad = (g.O + 15) / 16 * 16;
        if (pack_filters(s, n->src[1], g.KH * g.KW * g.C, g.O, Opad) != 0) {
            *err = "out of memory";
            return WTT_ENOMEM;
        }
        return conv_filters(n, &g, s, Opad, err);
    }
#endif
    if (g.O == 1) {
        /* The width that leaves less of the last tile unused. */
        ob = 1;
        tb = (g.OW + 95) / 96 * 96 - g.OW < (g.OW + 127) / 128 * 128 - g.OW
             ? 96 : 128;
    } else {
        ob = g.O >= 8 && cpu_avx512() ? 8 : 4;
        tb = 32;
    }
    Opad = (g.O + ob - 1) / ob * ob;
    if (pack_filters(s, n->src[1], g.KH * g.KW * g.C, g.O, Opad) != 0) {
        *err = "out of memory";
        return WTT_ENOMEM;
    }
    return conv_positions(n, &g, s, ob, tb, Opad, err);
}
