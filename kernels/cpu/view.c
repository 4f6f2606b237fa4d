/*
 * view.c: ops that relabel a tensor without copying it: Identity, Reshape,
 * ExpandDims, Squeeze (views of their input), and Shape (the input's shape as
 * a small int32 tensor). Semantics follow TensorFlow's definitions.
 */
#include "ops.h"


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


static int
op_reshape(struct wtt_node *n, const char **err)
{
    const struct wtt_tensor *x = n->src[0], *shape = n->src[1];
    int64_t                  ne[WTT_MAX_RANK], known = 1, total;
    int                      rank = (int) wtt_tensor_nelem(shape), unknown = -1;

    if (rank > WTT_MAX_RANK) {
        *err = "Reshape: rank too large";
        return -1;
    }
    total = wtt_tensor_nelem(x);
    for (int i = 0; i < rank; i++) {
        ne[i] = wtt_tensor_int(shape, i);
        if (ne[i] == -1) {
            unknown = i;
        } else {
            known *= ne[i];
        }
    }
    if (unknown >= 0) {
        ne[unknown] = known ? total / known : 0;
    }
    wtt_tensor_view(&n->out, x, rank, ne);
    if (wtt_tensor_nelem(&n->out) != total) {
        *err = "Reshape: element count mismatch";
        return -1;
    }
    return 0;
}


static int
op_expand_dims(struct wtt_node *n, const char **err)
{
    const struct wtt_tensor *x = n->src[0];
    int64_t                  ne[WTT_MAX_RANK];
    int                      axis = (int) wtt_tensor_int(n->src[1], 0);

    if (x->rank + 1 > WTT_MAX_RANK) {
        *err = "ExpandDims: rank too large";
        return -1;
    }
    if (axis < 0) {
        axis += x->rank + 1;
    }
    for (int i = 0, j = 0; i <= x->rank; i++) {
        ne[i] = i == axis ? 1 : x->ne[j++];
    }
    wtt_tensor_view(&n->out, x, x->rank + 1, ne);
    return 0;
}


static int
op_squeeze(struct wtt_node *n, const char **err)
{
    const struct wtt_tensor *x = n->src[0];
    int64_t                  ne[WTT_MAX_RANK];
    int                      drop[WTT_MAX_RANK] = { 0 }, rank = 0;

    for (int k = 0; k < n->n_squeeze; k++) {
        int d = n->squeeze_dims[k] < 0 ? n->squeeze_dims[k] + x->rank
                                       : n->squeeze_dims[k];
        if (d < 0 || d >= x->rank || x->ne[d] != 1) {
            *err = "Squeeze: dimension is not 1";
            return -1;
        }
        drop[d] = 1;
    }
    for (int i = 0; i < x->rank; i++) {
        if (n->n_squeeze == 0 ? x->ne[i] != 1 : !drop[i]) {
            ne[rank++] = x->ne[i];
        }
    }
    wtt_tensor_view(&n->out, x, rank, ne);
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
        return op_reshape(n, err);
    case WTT_OP_EXPAND_DIMS:
        return op_expand_dims(n, err);
    case WTT_OP_SQUEEZE:
        return op_squeeze(n, err);
    default:
        *err = "view: not a view op";
        return -1;
    }
}
