/*
 * test_conv_case.h: a convolution on random data from one shape row, for
 * the C tests that compare convolutions (test_conv.c, test_cuda_conv.c).
 * A row is N H W C, KH KW O, stride h w, dilation h w, SAME, bias, relu.
 */
#ifndef WTT_TEST_CONV_CASE_H
#define WTT_TEST_CONV_CASE_H

#include "test.h"
#include "wtt_tensor.h"

#include <stdint.h>
#include <stdlib.h>

struct test_conv_case {
    struct wtt_tensor x, w, b;
    struct wtt_node   n;        /* reads x, w and b: do not move the case */
};


/* Input, filters and bias drawn from *seed in that order, and the Conv2D
 * node over them. Returns 0, or -1 when memory runs out. */
static inline int
test_conv_case_init(struct test_conv_case *t, const int *s, uint32_t *seed)
{
    struct wtt_tensor *all[3] = { &t->x, &t->w, &t->b };
    struct wtt_node   *n = &t->n;

    memset(t, 0, sizeof(*t));
    t->x.dtype = t->w.dtype = t->b.dtype = WTT_F32;
    t->x.rank = t->w.rank = 4;
    t->b.rank = 1;
    t->x.ne[0] = s[0]; t->x.ne[1] = s[1]; t->x.ne[2] = s[2];
    t->x.ne[3] = s[3];
    t->w.ne[0] = s[4]; t->w.ne[1] = s[5]; t->w.ne[2] = s[3];
    t->w.ne[3] = s[6];
    t->b.ne[0] = s[6];
    for (int k = 0; k < 3; k++) {
        int64_t ne = wtt_tensor_nelem(all[k]);
        all[k]->data = malloc(sizeof(float) * (size_t) ne);
        if (all[k]->data == NULL) {
            return -1;
        }
        for (int64_t i = 0; i < ne; i++) {
            ((float *) all[k]->data)[i] = test_rnd(seed);
        }
    }
    n->op = WTT_OP_CONV2D;
    n->name = "test_conv";
    n->nsrc = s[12] ? 3 : 2;
    n->src[0] = &t->x;
    n->src[1] = &t->w;
    n->src[2] = &t->b;
    n->strides[0] = n->strides[3] = 1;
    n->strides[1] = s[7];
    n->strides[2] = s[8];
    n->dilations[0] = n->dilations[3] = 1;
    n->dilations[1] = s[9];
    n->dilations[2] = s[10];
    n->padding = s[11] ? WTT_PAD_SAME : WTT_PAD_VALID;
    n->fused_bias = s[12];
    n->fused_relu = s[13];
    return 0;
}


/* The inputs' memory (the node's output and scratch are the caller's). */
static inline void
test_conv_case_free(struct test_conv_case *t)
{
    free(t->x.data);
    free(t->w.data);
    free(t->b.data);
}

#endif
