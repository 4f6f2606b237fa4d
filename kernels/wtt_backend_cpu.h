/*
 * wtt_backend_cpu.h: the CPU backend (kernels/cpu/): plain C kernels that
 * reproduce the reference's float32 rounding to the bit. Always built; the
 * engine's registry lists it first and folds constants with it.
 */
#ifndef WTT_BACKEND_CPU_H
#define WTT_BACKEND_CPU_H

#include "wtt_backend.h"

extern const struct wtt_backend wtt_backend_cpu;

#endif
