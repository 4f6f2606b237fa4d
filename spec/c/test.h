/*
 * test.h: the list of C tests and the assertion macros they use.
 */
#ifndef WTT_TEST_H
#define WTT_TEST_H

#include <stdio.h>
#include <string.h>

#define WTT_TESTS(X)        \
    X(ct_equal)             \
    X(sha256)               \
    X(read_file)            \
    X(iso_time)             \
    X(atomic_write)         \
    X(atomic_write_errors)  \
    X(strerror_lower)       \
    X(rows_spill)           \
    X(rows_cache)           \
    X(rows_view)            \
    X(backend_registry)     \
    X(backend_cpu_ops)      \
    X(backend_planner)      \
    X(backend_oom_halves)   \
    X(backend_fault_kinds)  \
    X(backend_replay)       \
    X(headers_compile)

#define ASSERT(cond)                                                      \
    do {                                                                  \
        if (!(cond)) {                                                    \
            fprintf(stderr, "%s:%d: assertion failed: %s\n", __FILE__,    \
                    __LINE__, #cond);                                     \
            return 1;                                                     \
        }                                                                 \
    } while (0)

#define ASSERT_STR_EQ(a, b)                                               \
    do {                                                                  \
        const char *a_ = (a), *b_ = (b);                                  \
        if (strcmp(a_, b_) != 0) {                                        \
            fprintf(stderr, "%s:%d: \"%s\" != \"%s\"\n", __FILE__,        \
                    __LINE__, a_, b_);                                    \
            return 1;                                                     \
        }                                                                 \
    } while (0)

#endif
