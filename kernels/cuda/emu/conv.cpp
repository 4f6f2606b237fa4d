/*
 * The host emulation of kernels/cuda/conv.cu. cuDNN cannot run without a
 * GPU, so the sums are the CPU backend's (wtt_backend_cpu on a copy of the
 * node without its bias and Relu); everything conv.cu does around cuDNN
 * runs here as on the device: the geometry and TF's SAME split
 * (wtt_shape_conv2d), the explicit padding of an uneven split (pad_nhwc_body,
 * then a VALID convolution), and the epilogue (bias_act_body) through
 * wtt_launch, from the sums into the node's own output. The CPU adds the
 * bias to the finished sum and then clamps, as the epilogue does, so the
 * emulation gives the CPU's bits, which the tee test checks.
 */
#include "../conv_body.cuh"
#include "../ops.h"
#include "../runtime.h"
#include "wtt_backend_cpu.h"

#include <stdlib.h>
#include <string.h>


typedef struct {
    struct wtt_cuda_ctx *c;
    struct wtt_tensor    sums;          /* the CPU's output: raw sums */
    void                *cpu_scratch;   /* the CPU kernel's packed filter */
    void               (*cpu_scratch_free)(void *);
    float               *padded;
    size_t               padded_cap;
} emu_conv;


static void
emu_conv_free(void *p)
{
    emu_conv *s = (emu_conv *) p;

    if (s == NULL) {
        return;
    }
    if (s->sums.cap != 0) {
        wtt_backend_cpu.buffer_free(NULL, s->sums.data);
    }
    if (s->cpu_scratch_free != NULL) {
        s->cpu_scratch_free(s->cpu_scratch);
    }
    wtt_cuda_rt_free(s->c, s->padded);
    free(s);
}


extern "C" int
wtt_cuda_op_conv2d(struct wtt_node *n, const char **err)
{
    struct wtt_cuda_ctx  *c = (struct wtt_cuda_ctx *) n->ctx;
    struct wtt_shape_conv g;
    struct wtt_node       cpu;
    struct wtt_tensor     padded;
    emu_conv             *s = (emu_conv *) n->scratch;
    int64_t               ne[4];
    int                   rc;

    if (n->op != WTT_OP_CONV2D) {
        *err = "conv: not a convolution";
        return WTT_EFAIL;
    }
    if ((rc = wtt_shape_conv2d(n, &g, err)) != 0) {
        return rc;
    }
    if (s == NULL) {
        s = (emu_conv *) calloc(1, sizeof(*s));
        if (s == NULL) {
            *err = "out of memory";
            return WTT_ENOMEM;
        }
        s->c = c;
        n->scratch = s;
        n->scratch_free = emu_conv_free;
    }

    /* The CPU's node: sums only, into the emulation's own tensor. */
    cpu = *n;
    cpu.ctx = NULL;
    cpu.fused_bias = 0;
    cpu.fused_relu = 0;
    cpu.out = s->sums;
    cpu.scratch = s->cpu_scratch;
    cpu.scratch_free = s->cpu_scratch_free;
    if (g.explicit_pad) {
        int64_t       PH = g.H + g.pt + g.pb, PW = g.W + g.pl + g.pr;
        int64_t       total = g.N * PH * PW * g.C;
        size_t        bytes = (size_t) total * 4;
        pad_nhwc_body body;
        if (s->padded_cap < bytes) {
            wtt_cuda_rt_free(c, s->padded);
            s->padded_cap = 0;
            s->padded = (float *) wtt_cuda_rt_malloc(c, bytes);
            if (s->padded == NULL) {
                *err = "out of memory";
                return WTT_ENOMEM;
            }
            s->padded_cap = bytes;
        }
        body.src = (const float *) n->src[0]->data;
        body.dst = s->padded;
        body.H = g.H;
        body.W = g.W;
        body.C = g.C;
        body.PH = PH;
        body.PW = PW;
        body.pt = g.pt;
        body.pl = g.pl;
        if ((rc = wtt_launch(c, total, body, err)) != 0) {
            return rc;
        }
        memset(&padded, 0, sizeof(padded));
        padded.dtype = WTT_F32;
        padded.rank = 4;
        padded.ne[0] = g.N;
        padded.ne[1] = PH;
        padded.ne[2] = PW;
        padded.ne[3] = g.C;
        padded.data = s->padded;
        cpu.src[0] = &padded;
        cpu.padding = WTT_PAD_VALID;
    }
    rc = wtt_backend_cpu.compute(&cpu, err);
    s->sums = cpu.out;
    s->cpu_scratch = cpu.scratch;
    s->cpu_scratch_free = cpu.scratch_free;
    if (rc != 0) {
        return rc;
    }

    ne[0] = g.N;
    ne[1] = g.OH;
    ne[2] = g.OW;
    ne[3] = g.O;
    if (s->sums.rank != 4 || memcmp(s->sums.ne, ne, sizeof(ne)) != 0) {
        *err = "Conv2D: emulated output shape differs from the plan";
        return WTT_EFAIL;
    }
    rc = wtt_cuda_tensor_alloc(c, &n->out, WTT_F32, 4, ne, err);
    if (rc != 0) {
        return rc;
    }
    return conv_epilogue(c, n, (const float *) s->sums.data,
                         (float *) n->out.data, wtt_tensor_nelem(&n->out),
                         err);
}
