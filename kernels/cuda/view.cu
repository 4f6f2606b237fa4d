/*
 * view.cu: ops that relabel a tensor without copying it, on the CUDA
 * backend: Identity, Reshape, ExpandDims, Squeeze (views of their input)
 * and Shape (the input's shape as a small int32 tensor). No device work:
 * a shape is known on the host, and int32 tensors live in host memory
 * (tensor.cu), so Shape writes its values directly and Reshape reads its
 * target on the host (host.h). The shapes are kernels/wtt_shape.c's, as on
 * the CPU.
 */
#include "host.h"
#include "wtt_shape.h"


static int
op_shape(struct wtt_node *n, const char **err)
{
    struct wtt_cuda_ctx     *c = (struct wtt_cuda_ctx *) n->ctx;
    const struct wtt_tensor *x = n->src[0];
    int64_t                  ne = x->rank;
    int                      rc;

    rc = wtt_cuda_tensor_alloc(c, &n->out, WTT_I32, 1, &ne, err);
    if (rc != 0) {
        return rc;
    }
    for (int i = 0; i < x->rank; i++) {
        ((int32_t *) n->out.data)[i] = (int32_t) x->ne[i];
    }
    return 0;
}


/* Reshape, ExpandDims, Squeeze: the shape from wtt_shape.h, then a view. */
static int
op_relabel(struct wtt_node *n, const char **err)
{
    struct wtt_cuda_ctx  *c = (struct wtt_cuda_ctx *) n->ctx;
    struct wtt_shape_ints ints;
    struct wtt_shape      out;
    int                   rc;

    if (n->op == WTT_OP_SQUEEZE) {
        rc = wtt_shape_squeeze(n, &out, err);
    } else if ((rc = wtt_cuda_host_ints(c, n->src[1], &ints, err)) == 0) {
        rc = n->op == WTT_OP_RESHAPE ? wtt_shape_reshape(n, &ints, &out, err)
                                     : wtt_shape_expand_dims(n, &ints, &out,
                                                             err);
    }
    if (rc != 0) {
        return rc;
    }
    wtt_cuda_tensor_view(c, &n->out, n->src[0], out.rank, out.ne);
    return 0;
}


int
wtt_cuda_op_view(struct wtt_node *n, const char **err)
{
    struct wtt_cuda_ctx *c = (struct wtt_cuda_ctx *) n->ctx;

    switch (n->op) {
    case WTT_OP_IDENTITY:
        wtt_cuda_tensor_view(c, &n->out, n->src[0], n->src[0]->rank,
                             n->src[0]->ne);
        return 0;
    case WTT_OP_SHAPE:
        return op_shape(n, err);
    case WTT_OP_RESHAPE:
    case WTT_OP_EXPAND_DIMS:
    case WTT_OP_SQUEEZE:
        return op_relabel(n, err);
    default:
        *err = "view: not a view op";
        return WTT_EFAIL;
    }
}
