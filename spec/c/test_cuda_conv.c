/*
 * test_cuda_conv.c: the CUDA convolution's own code around cuDNN, in the
 * host emulation (kernels/cuda/emu/conv.cpp, conv_body.cuh): TF's SAME
 * split (uneven splits padded explicitly, then a VALID convolution), VALID,
 * strides and dilations, and the bias/Relu epilogue, each compared bit for
 * bit with the CPU backend on random data. Basic Pitch's layers all split
 * evenly, so the golden clips (test_cuda_emu.c) never reach the explicit
 * padding; these shapes do.
 */
#include "test.h"
#include "wtt_backend_cpu.h"

/* The emulation's private entry points, under its own names. */
#include "cuda/emu/names.h"
#include "cuda/ops.h"

#include <stdint.h>
#include <stdlib.h>

/* N H W C, KH KW O, stride h w, dilation h w, SAME, bias, relu. The first
 * four split SAME unevenly in at least one dimension. */
static const int shapes[][14] = {
    { 2, 5, 6, 3,  2, 3, 4,  1, 2,  1, 1,  1, 1, 0 },
    { 1, 7, 9, 2,  4, 4, 3,  2, 3,  1, 1,  1, 1, 1 },
    { 3, 4, 4, 1,  3, 2, 5,  1, 1,  1, 1,  1, 0, 1 },
    { 1, 8, 7, 2,  2, 2, 2,  1, 1,  2, 1,  1, 1, 1 },
    { 1, 6, 6, 2,  3, 3, 4,  1, 1,  1, 1,  1, 1, 0 },
    { 2, 6, 9, 3,  3, 4, 2,  2, 2,  1, 2,  0, 1, 1 },
    { 1, 1, 40, 1, 1, 8, 6,  1, 4,  1, 1,  0, 0, 0 },
};


static int
one_shape(const int *sp, uint32_t seed)
{
    struct wtt_tensor   x, w, b;
    struct wtt_node     cpu, emu;
    struct wtt_cuda_ctx c;
    const char         *err = NULL;
    int                 rc = 1;

    memset(&x, 0, sizeof(x));
    memset(&w, 0, sizeof(w));
    memset(&b, 0, sizeof(b));
    memset(&cpu, 0, sizeof(cpu));
    memset(&c, 0, sizeof(c));
    x.dtype = w.dtype = b.dtype = WTT_F32;
    x.rank = w.rank = 4;
    b.rank = 1;
    x.ne[0] = sp[0]; x.ne[1] = sp[1]; x.ne[2] = sp[2]; x.ne[3] = sp[3];
    w.ne[0] = sp[4]; w.ne[1] = sp[5]; w.ne[2] = sp[3]; w.ne[3] = sp[6];
    b.ne[0] = sp[6];
    x.data = malloc(sizeof(float) * (size_t) wtt_tensor_nelem(&x));
    w.data = malloc(sizeof(float) * (size_t) wtt_tensor_nelem(&w));
    b.data = malloc(sizeof(float) * (size_t) wtt_tensor_nelem(&b));
    for (int64_t i = 0; i < wtt_tensor_nelem(&x); i++) {
        ((float *) x.data)[i] = test_rnd(&seed);
    }
    for (int64_t i = 0; i < wtt_tensor_nelem(&w); i++) {
        ((float *) w.data)[i] = test_rnd(&seed);
    }
    for (int64_t i = 0; i < wtt_tensor_nelem(&b); i++) {
        ((float *) b.data)[i] = test_rnd(&seed);
    }
    cpu.op = WTT_OP_CONV2D;
    cpu.name = "conv";
    cpu.nsrc = 3;
    cpu.src[0] = &x;
    cpu.src[1] = &w;
    cpu.src[2] = &b;
    cpu.strides[0] = cpu.strides[3] = 1;
    cpu.strides[1] = sp[7];
    cpu.strides[2] = sp[8];
    cpu.dilations[0] = cpu.dilations[3] = 1;
    cpu.dilations[1] = sp[9];
    cpu.dilations[2] = sp[10];
    cpu.padding = sp[11] ? WTT_PAD_SAME : WTT_PAD_VALID;
    cpu.fused_bias = sp[12];
    cpu.fused_relu = sp[13];
    emu = cpu;
    emu.ctx = &c;

    if (wtt_backend_cpu.compute(&cpu, &err) != 0) {
        fprintf(stderr, "cpu: %s\n", err);
        goto done;
    }
    if (wtt_cuda_op_conv2d(&emu, &err) != 0) {
        fprintf(stderr, "cuda-emu: %s\n", err);
        goto done;
    }
    if (emu.out.rank != 4 || memcmp(emu.out.ne, cpu.out.ne,
                                    sizeof(int64_t) * 4) != 0)
    {
        fprintf(stderr, "cuda-emu: output shape differs\n");
        goto done;
    }
    if (memcmp(emu.out.data, cpu.out.data,
               sizeof(float) * (size_t) wtt_tensor_nelem(&cpu.out)) != 0)
    {
        fprintf(stderr, "cuda-emu: output bytes differ from the CPU's\n");
        goto done;
    }
    rc = 0;
done:
    if (emu.scratch_free != NULL) {
        emu.scratch_free(emu.scratch);
    }
    if (emu.out.cap != 0) {
        wtt_cuda_buffer_free(&c, emu.out.data);
    }
    if (cpu.scratch_free != NULL) {
        cpu.scratch_free(cpu.scratch);
    }
    if (cpu.out.cap != 0) {
        wtt_backend_cpu.buffer_free(NULL, cpu.out.data);
    }
    free(x.data);
    free(w.data);
    free(b.data);
    return rc;
}


int
test_cuda_emu_conv(void)
{
    for (size_t i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++) {
        if (one_shape(shapes[i], (uint32_t) (i + 1)) != 0) {
            fprintf(stderr, "conv shape %zu\n", i);
            return 1;
        }
    }
    return 0;
}
