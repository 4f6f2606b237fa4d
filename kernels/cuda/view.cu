/*
 * view.cu: ops that relabel a tensor without copying it, on the CUDA
 * backend: Identity, Reshape, ExpandDims, Squeeze (views of their input)
 * and Shape (the input's shape as a small int32 tensor). No device work:
 * a shape is known on the host, and int32 tensors live in host memory
 * (tensor.cu), so Shape writes its values directly and Reshape reads its
 * target on the host (host.h). Semantics as kernels/cpu/view.c
 * (TensorFlow's).
 */
#include "host.h"


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


static int
op_reshape(struct wtt_node *n, const char **err)
{
    struct wtt_cuda_ctx     *c = (struct wtt_cuda_ctx *) n->ctx;
    const struct wtt_tensor *x = n->src[0], *shape = n->src[1];
    int64_t                  ne[WTT_MAX_RANK], known = 1, total, rank;
    int                      unknown = -1, rc;

    if (wtt_tensor_nelem(shape) > WTT_MAX_RANK) {
        *err = "Reshape: rank too large";
        return WTT_EFAIL;
    }
    rc = wtt_cuda_host_ints(c, shape, ne, WTT_MAX_RANK, &rank, err);
    if (rc != 0) {
        return rc;
    }
    total = wtt_tensor_nelem(x);
    for (int i = 0; i < rank; i++) {
        if (ne[i] == -1) {
            unknown = i;
        } else {
            known *= ne[i];
        }
    }
    if (unknown >= 0) {
        ne[unknown] = known ? total / known : 0;
    }
    wtt_cuda_tensor_view(c, &n->out, x, (int) rank, ne);
    if (wtt_tensor_nelem(&n->out) != total) {
        *err = "Reshape: element count mismatch";
        return WTT_EFAIL;
    }
    return 0;
}


static int
op_expand_dims(struct wtt_node *n, const char **err)
{
    struct wtt_cuda_ctx     *c = (struct wtt_cuda_ctx *) n->ctx;
    const struct wtt_tensor *x = n->src[0];
    int64_t                  ne[WTT_MAX_RANK], axis[WTT_MAX_RANK], k;
    int                      rc;

    if (x->rank + 1 > WTT_MAX_RANK) {
        *err = "ExpandDims: rank too large";
        return WTT_EFAIL;
    }
    rc = wtt_cuda_host_ints(c, n->src[1], axis, WTT_MAX_RANK, &k, err);
    if (rc != 0) {
        return rc;
    }
    if (k < 1) {
        *err = "ExpandDims: no axis";
        return WTT_EFAIL;
    }
    if (axis[0] < 0) {
        axis[0] += x->rank + 1;
    }
    for (int i = 0, j = 0; i <= x->rank; i++) {
        ne[i] = i == axis[0] ? 1 : x->ne[j++];
    }
    wtt_cuda_tensor_view(c, &n->out, x, x->rank + 1, ne);
    return 0;
}


static int
op_squeeze(struct wtt_node *n, const char **err)
{
    struct wtt_cuda_ctx     *c = (struct wtt_cuda_ctx *) n->ctx;
    const struct wtt_tensor *x = n->src[0];
    int64_t                  ne[WTT_MAX_RANK];
    int                      drop[WTT_MAX_RANK] = { 0 }, rank = 0;

    for (int k = 0; k < n->n_squeeze; k++) {
        int d = n->squeeze_dims[k] < 0 ? n->squeeze_dims[k] + x->rank
                                       : n->squeeze_dims[k];
        if (d < 0 || d >= x->rank || x->ne[d] != 1) {
            *err = "Squeeze: dimension is not 1";
            return WTT_EFAIL;
        }
        drop[d] = 1;
    }
    for (int i = 0; i < x->rank; i++) {
        if (n->n_squeeze == 0 ? x->ne[i] != 1 : !drop[i]) {
            ne[rank++] = x->ne[i];
        }
    }
    wtt_cuda_tensor_view(c, &n->out, x, rank, ne);
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
        return op_reshape(n, err);
    case WTT_OP_EXPAND_DIMS:
        return op_expand_dims(n, err);
    case WTT_OP_SQUEEZE:
        return op_squeeze(n, err);
    default:
        *err = "view: not a view op";
        return WTT_EFAIL;
    }
}
