/*
 * wtt_tensor.h: tensors and graph nodes shared by the engine
 * (core/engine/wtt_nn.c) and the backends (kernels/wtt_backend.h,
 * kernels/cpu/, later kernels/cuda/).
 *
 * Tensors are dense, row-major, up to WTT_MAX_RANK dimensions, float32 or
 * int32 (int32 only for shape arithmetic, which the planner folds away).
 * Every kernel has the same entry shape (house style 32): it reads its inputs
 * from node->src[] and its parameters from the node, and writes node->out,
 * whose shape the kernel sets, allocating its buffer with its backend's
 * memory. `cap` says who owns `data`: non-zero, the tensor does (its
 * backend's buffer_free releases it); 0, it is a view of another tensor.
 */
#ifndef WTT_TENSOR_H
#define WTT_TENSOR_H

#include <stddef.h>
#include <stdint.h>

#define WTT_MAX_RANK 6
#define WTT_MAX_SRC  16

enum wtt_dtype {
    WTT_F32 = 1,
    WTT_I32 = 3,
};

struct wtt_tensor {
    int      dtype;
    int      rank;
    int64_t  ne[WTT_MAX_RANK];   /* sizes, outermost first (TF order) */
    void    *data;
    size_t   cap;                /* bytes owned at data; 0 for views */
    int      lent;               /* data is a slot of an arena the engine
                                  * lent this tensor (cap bytes): used, never
                                  * freed through it */
};

enum wtt_op {
    WTT_OP_CONST = 0,
    WTT_OP_PLACEHOLDER,
    WTT_OP_IDENTITY,
    WTT_OP_SHAPE,
    WTT_OP_RESHAPE,
    WTT_OP_EXPAND_DIMS,
    WTT_OP_SQUEEZE,
    WTT_OP_STRIDED_SLICE,
    WTT_OP_PACK,
    WTT_OP_CONCAT,
    WTT_OP_TRANSPOSE,
    WTT_OP_PAD,
    WTT_OP_MIRROR_PAD,
    WTT_OP_CONV2D,
    WTT_OP_ADD,
    WTT_OP_SUB,
    WTT_OP_MUL,
    WTT_OP_DIV_NO_NAN,
    WTT_OP_NEG,
    WTT_OP_SQUARE,
    WTT_OP_SQRT,
    WTT_OP_LOG,
    WTT_OP_SIGMOID,
    WTT_OP_SUM,
    WTT_OP_MIN,
    WTT_OP_MAX,
    WTT_OP_COUNT
};

enum wtt_padding {
    WTT_PAD_VALID = 0,
    WTT_PAD_SAME,
};

struct wtt_node {
    enum wtt_op        op;
    const char        *name;
    int                nsrc;
    struct wtt_tensor *src[WTT_MAX_SRC];
    struct wtt_tensor  out;
    int                is_const;     /* folded at plan time */

    /* Parameters (which ones apply depends on op). */
    int                strides[4];
    int                dilations[4];
    enum wtt_padding   padding;
    int                fused_bias;   /* _FusedConv2D: BiasAdd */
    int                fused_relu;   /*               then Relu */
    int                begin_mask, end_mask, ellipsis_mask;
    int                new_axis_mask, shrink_axis_mask;
    int                axis;
    int                keep_dims;
    int                squeeze_dims[WTT_MAX_RANK];
    int                n_squeeze;
    int                reflect;      /* MirrorPad REFLECT (else SYMMETRIC) */

    /* The backend context of the worker that runs this node (see
     * wtt_backend.h); NULL for the CPU and for folding. */
    void              *ctx;

    /* Kernel-private data kept between runs (packed filters, buffers),
     * released with scratch_free. */
    void              *scratch;
    void             (*scratch_free)(void *);
};

/* Number of elements of `t`. */
static inline int64_t
wtt_tensor_nelem(const struct wtt_tensor *t)
{
    int64_t n = 1;
    for (int i = 0; i < t->rank; i++) {
        n *= t->ne[i];
    }
    return n;
}

#endif
