/*
 * wtt_backend_reg.h: the backends compiled into this binary, in order of
 * preference (ggml-backend-reg's role). The CPU backend is always first and
 * always there. Adding a backend is a new CMake target and one entry in
 * wtt_backend_reg.c, the only file that knows which exist.
 */
#ifndef WTT_BACKEND_REG_H
#define WTT_BACKEND_REG_H

#include <stddef.h>

#include "wtt_backend.h"

/* Number of compiled-in backends (at least 1). */
size_t wtt_backend_count(void);

/* Backend i (0 <= i < wtt_backend_count()), or NULL past the end. The
 * tables are static: never freed. */
const struct wtt_backend *wtt_backend_get(size_t i);

/* The backend called `name`, or NULL when this build has none by that
 * name. */
const struct wtt_backend *wtt_backend_find(const char *name);

/* The backend that computes on host memory (the CPU's): constants are
 * folded with it at load time. */
const struct wtt_backend *wtt_backend_host(void);

#endif
