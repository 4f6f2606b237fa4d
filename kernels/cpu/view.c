/*
 * view.c: ops that relabel a tensor without copying it: Identity, Reshape,
 * ExpandDims, Squeeze (views of their input), and Shape (the input's shape as
 * a small int32 tensor). Their shapes follow TensorFlow's rules, computed by
 * kernels/wtt_shape.c.
 */
#include "ops.h"
#include "wtt_shape.h"


static int
op_shape(struct wtt_node *n, const char **err)
{
    const struct wtt_tensor *x = n->src[0];
    int64_t                  ne = x->rank;

    if (wtt_tensor_alloc(&n->out, WTT_I32, 1, &ne) != 0) {
        *err = "out of memory";
        return WTT_ENOMEM;
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
    struct wtt_shape_ints ints;
    struct wtt_shape      out;
    int                   rc;

    if (n->op == WTT_OP_SQUEEZE) {
        rc = wtt_shape_squeeze(n, &out, err);
    } else if ((rc = wtt_shape_ints_read(n->src[1], n->src[1]->data, &ints,
                                         err)) == 0)
    {
        rc = n->op == WTT_OP_RESHAPE ? wtt_shape_reshape(n, &ints, &out, err)
                                     : wtt_shape_expand_dims(n, &ints, &out,
                                                             err);
    }
    if (rc != 0) {
        return rc;
    }
    wtt_tensor_view(&n->out, n->src[0], out.rank, out.ne);
    return 0;
}


int
wtt_cpu_op_view(struct wtt_node *n, const char **err)
{
    switch (n->op) {
    case WTT_OP_IDENTITY:
        wtt_tensor_view(&n->out, n->src[0], n->src[0]->rank, n->src[0]->ne);
        return 0;
    case WTT_OP_SHAPE:
        return op_shape(n, err);
    case WTT_OP_RESHAPE:
    case WTT_OP_EXPAND_DIMS:
    case WTT_OP_SQUEEZE:
        return op_relabel(n, err);
    default:
        *err = "view: not a view op";
        return -1;
    }
}
