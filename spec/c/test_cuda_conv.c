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
#include "test_conv_case.h"
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
    struct test_conv_case t;
    struct wtt_node       cpu, emu;
    struct wtt_cuda_ctx   c;
    const char           *err = NULL;
    int                   rc = 1;

    memset(&c, 0, sizeof(c));
    memset(&cpu, 0, sizeof(cpu));
    memset(&emu, 0, sizeof(emu));
    if (test_conv_case_init(&t, sp, &seed) != 0) {
        fprintf(stderr, "out of memory\n");
        goto done;
    }
    cpu = t.n;
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
    test_conv_case_free(&t);
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
