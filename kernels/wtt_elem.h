/*
 * wtt_elem.h: the per-element arithmetic of the elementwise ops, one
 * definition for every backend: the CPU's loops (kernels/cpu/eltwise.c)
 * and the CUDA kernels' bodies (kernels/cuda/eltwise.cu, compiled by nvcc
 * for the device and as C++ for its host emulation) call these, so the
 * backends cannot drift apart in what an op computes.
 *
 * Unary ops are computed in double and rounded once: the reference
 * computes them with JS (double) math on float32 values. Both builds turn
 * off contraction into fused multiply-adds (-ffp-contract=off,
 * --fmad=false), so these expressions round where they are written.
 */
#ifndef WTT_ELEM_H
#define WTT_ELEM_H

#include <math.h>
#include <stdint.h>

#include "wtt_tensor.h"

#ifdef __CUDACC__
#define WTT_ELEM_FN __host__ __device__ static inline
#else
#define WTT_ELEM_FN static inline
#endif

WTT_ELEM_FN float
wtt_elem_unary(int op, float x)
{
    double v = x;

    switch (op) {
    case WTT_OP_NEG:
        return -x;
    case WTT_OP_SQUARE:
        return (float) (v * v);
    case WTT_OP_SQRT:
        return (float) sqrt(v);
    case WTT_OP_LOG:
        return (float) log(v);
    case WTT_OP_SIGMOID:
        return (float) (1.0 / (1.0 + exp(-v)));
    default:
        return x;
    }
}


WTT_ELEM_FN float
wtt_elem_binary_f(int op, float a, float b)
{
    switch (op) {
    case WTT_OP_ADD:
        return a + b;
    case WTT_OP_SUB:
        return a - b;
    case WTT_OP_MUL:
        return a * b;
    case WTT_OP_DIV_NO_NAN:
        return b == 0.0f ? 0.0f : a / b;
    default:
        return 0.0f;
    }
}


WTT_ELEM_FN int32_t
wtt_elem_binary_i(int op, int32_t a, int32_t b)
{
    switch (op) {
    case WTT_OP_ADD:
        return a + b;
    case WTT_OP_SUB:
        return a - b;
    case WTT_OP_MUL:
        return a * b;
    case WTT_OP_DIV_NO_NAN:
        return b == 0 ? 0 : a / b;
    default:
        return 0;
    }
}

#endif
