/*
 * wtt_shape.h: TensorFlow's shape rules for the ops of wtt_tensor.h, written
 * once for every backend. For a node, each function here computes the
 * output shape and the index plan a kernel walks (broadcast strides, slice
 * begins and steps, paddings, permuted strides, reduced axes, convolution
 * geometry) from the node's parameters and its sources' shapes, and checks
 * them; a backend keeps only its data movement. Two copies of these rules
 * would drift apart, and a backend that disagrees with the CPU on a shape
 * is wrong in a way no kernel test catches.
 *
 * Plain C over wtt_tensor.h, callable from C++ and CUDA sources. A plan is
 * a plain struct with no pointers: a device backend computes it on the host
 * and passes it by value into its kernels.
 *
 * Integer operands (Reshape's target, axes, permutations, paddings, slice
 * bounds) are read by the backend, which knows where their data lives,
 * into a struct wtt_shape_ints: wtt_shape_ints_read does it from host
 * memory.
 *
 * Errors: every function returns 0, or WTT_EFAIL with a static reason in
 * *err: the CPU backend's messages where it checked, and those of the
 * checks only the CUDA backend made (a permutation out of range, slice
 * lists of different lengths, a bias that does not match the filters),
 * which both backends now make, and ExpandDims' axis range, which neither
 * checked. On failure the plan is undefined.
 */
#ifndef WTT_SHAPE_H
#define WTT_SHAPE_H

#include <stdint.h>

#include "wtt_backend.h"
#include "wtt_tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Helpers the kernels call per element, on the device too. */
#ifdef __CUDACC__
#define WTT_SHAPE_HD __host__ __device__
#else
#define WTT_SHAPE_HD
#endif

/* Values of one integer operand: a shape or a parameter list, never data. */
#define WTT_SHAPE_MAX_INTS 64

struct wtt_shape_ints {
    int64_t n;
    int64_t v[WTT_SHAPE_MAX_INTS];
};

/* An output shape. */
struct wtt_shape {
    int     rank;
    int64_t ne[WTT_MAX_RANK];
};


/*
 * Reads integer operand t (int32, or float32 truncated toward zero) from
 * `data`, host memory holding t's elements (t->data for a host tensor, a
 * copy for a device one). Fails with more than WTT_SHAPE_MAX_INTS values.
 */
int wtt_shape_ints_read(const struct wtt_tensor *t, const void *data,
                        struct wtt_shape_ints *out, const char **err);


/* ---------------------------------------------------------------------------
 * Views: Reshape (target shape, one -1 inferred), ExpandDims (axis),
 * Squeeze (n->squeeze_dims, or every dimension of size 1).
 * ------------------------------------------------------------------------- */

int wtt_shape_reshape(const struct wtt_node *n,
                      const struct wtt_shape_ints *target,
                      struct wtt_shape *out, const char **err);
int wtt_shape_expand_dims(const struct wtt_node *n,
                          const struct wtt_shape_ints *axis,
                          struct wtt_shape *out, const char **err);
int wtt_shape_squeeze(const struct wtt_node *n, struct wtt_shape *out,
                      const char **err);


/* ---------------------------------------------------------------------------
 * Binary ops (Add, Sub, Mul, DivNoNan): NumPy broadcasting.
 * ------------------------------------------------------------------------- */

/* How output element o finds its operands. */
enum wtt_shape_bcast {
    WTT_BCAST_SAME = 0,     /* both have the output's elements: o, o */
    WTT_BCAST_A_ONE,        /* a is one element: 0, o */
    WTT_BCAST_B_ONE,        /* b is one element: o, 0 */
    WTT_BCAST_ANY,          /* by index: sum of idx[i] * sa[i] (sb[i]) */
};

struct wtt_shape_binary {
    struct wtt_shape out;
    int64_t          total;             /* output elements */
    int              mode;              /* enum wtt_shape_bcast */
    int64_t          sa[WTT_MAX_RANK];  /* a's stride per output dim, */
    int64_t          sb[WTT_MAX_RANK];  /* 0 where it is broadcast */
};

int wtt_shape_binary(const struct wtt_node *n, struct wtt_shape_binary *p,
                     const char **err);


/* ---------------------------------------------------------------------------
 * Layout: Transpose, Pad / MirrorPad, StridedSlice, Pack / ConcatV2.
 * ------------------------------------------------------------------------- */

struct wtt_shape_transpose {
    struct wtt_shape out;
    int64_t          pst[WTT_MAX_RANK]; /* input stride of each output dim */
};

int wtt_shape_transpose(const struct wtt_node *n,
                        const struct wtt_shape_ints *perm,
                        struct wtt_shape_transpose *p, const char **err);


struct wtt_shape_pad {
    struct wtt_shape out;
    int              mirror, reflect;       /* MirrorPad; REFLECT */
    int64_t          xne[WTT_MAX_RANK];     /* input shape */
    int64_t          before[WTT_MAX_RANK];  /* padding before, per dim */
    int64_t          st[WTT_MAX_RANK];      /* input strides */
};

/* paddings: [rank, 2] (before, after per dimension). */
int wtt_shape_pad(const struct wtt_node *n,
                  const struct wtt_shape_ints *paddings,
                  struct wtt_shape_pad *p, const char **err);

/* Where position j (before the start or past the end) of a mirrored
 * dimension of size d reads from. */
WTT_SHAPE_HD static inline int64_t
wtt_shape_mirror_index(int64_t j, int64_t d, int reflect)
{
    if (reflect) {
        return j < 0 ? -j : j >= d ? 2 * (d - 1) - j : j;
    }
    return j < 0 ? -j - 1 : j >= d ? 2 * d - 1 - j : j;
}


/*
 * StridedSlice, after TensorFlow's dense-spec construction. The plan is
 * over the input's dimensions: output element k of dimension d reads input
 * index b[d] + k * s[d], for k in [0, size[d]) (a shrunk dimension has size
 * 1). Walking size[] in row-major order gives the output's order, whatever
 * the masks add or remove.
 */
struct wtt_shape_slice {
    struct wtt_shape out;
    int              rank;                  /* the input's */
    int64_t          b[WTT_MAX_RANK], s[WTT_MAX_RANK];
    int64_t          size[WTT_MAX_RANK];
    int64_t          st[WTT_MAX_RANK];      /* input strides */
};

int wtt_shape_strided_slice(const struct wtt_node *n,
                            const struct wtt_shape_ints *begin,
                            const struct wtt_shape_ints *end,
                            const struct wtt_shape_ints *strides,
                            struct wtt_shape_slice *p, const char **err);


/*
 * Pack (along a new axis, n->axis) and ConcatV2 (along an existing one, the
 * last source). The output is [outer][row]: each row is every input's
 * chunk in turn.
 */
struct wtt_shape_join {
    struct wtt_shape out;
    int              k;                     /* inputs joined */
    int64_t          outer, row;
    int64_t          chunk[WTT_MAX_SRC];    /* elements of input j per row */
};

/* axis: ConcatV2's axis operand; NULL for Pack. */
int wtt_shape_join(const struct wtt_node *n, const struct wtt_shape_ints *axis,
                   struct wtt_shape_join *p, const char **err);


/* ---------------------------------------------------------------------------
 * Reductions: Sum, Min, Max over a set of axes, with n->keep_dims.
 * ------------------------------------------------------------------------- */

struct wtt_shape_reduce {
    struct wtt_shape out;
    /* Walking the input in row-major order: the output offset of input
     * index idx is the sum of idx[i] * ost[i] (0 on reduced axes). */
    int64_t          ost[WTT_MAX_RANK];
    /* Walking one output's inputs: its kept coordinates over kept_ne give
     * the first input, then the reduced ones over red_ne, the last fastest,
     * red_count inputs in all (the strides are the input's). */
    int              kept_n, red_n;
    int64_t          kept_ne[WTT_MAX_RANK], kept_st[WTT_MAX_RANK];
    int64_t          red_ne[WTT_MAX_RANK], red_st[WTT_MAX_RANK];
    int64_t          red_count;
};

int wtt_shape_reduce(const struct wtt_node *n,
                     const struct wtt_shape_ints *axes,
                     struct wtt_shape_reduce *p, const char **err);


/* ---------------------------------------------------------------------------
 * Conv2D, _FusedConv2D: NHWC input, HWIO filter, SAME / VALID padding.
 * ------------------------------------------------------------------------- */

struct wtt_shape_conv {
    int64_t N, H, W, C;         /* input, NHWC */
    int64_t KH, KW, O;          /* filter, HWIO */
    int64_t OH, OW;             /* output */
    int     sh, sw, dh, dw;
    int64_t pt, pb, pl, pr;     /* padding before/after, rows and columns */
    int     explicit_pad;       /* SAME split unevenly (TF puts the extra
                                 * row or column after): a convolution that
                                 * pads symmetrically needs it done first */
};

/* Zeroes *g whole (padding bytes too, so that plans compare with memcmp)
 * before filling it. */
int wtt_shape_conv2d(const struct wtt_node *n, struct wtt_shape_conv *g,
                     const char **err);

#ifdef __cplusplus
}
#endif

#endif
