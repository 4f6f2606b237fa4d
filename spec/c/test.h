/*
 * test.h: the list of C tests and the assertion macros they use.
 */
#ifndef WTT_TEST_H
#define WTT_TEST_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define WTT_TESTS(X)        \
    X(ct_equal)             \
    X(cpu_quota)            \
    X(cpu_count)            \
    X(sha256)               \
    X(read_file)            \
    X(iso_time)             \
    X(atomic_write)         \
    X(atomic_write_errors)  \
    X(strerror_lower)       \
    X(rows_spill)           \
    X(rows_cache)           \
    X(rows_view)            \
    X(rows_mapped)          \
    X(backend_registry)     \
    X(backend_cpu_ops)      \
    X(backend_planner)      \
    X(backend_oom_halves)   \
    X(backend_fault_kinds)  \
    X(backend_replay)       \
    X(cuda_emu_runtime)     \
    X(cuda_emu_parity)      \
    X(cuda_emu_conv)        \
    X(cuda_status)          \
    X(cuda_device)          \
    X(shape_rules)          \
    X(eltwise_binary)       \
    X(eltwise_binary_shapes) \
    X(eltwise_unary)        \
    X(reduce_axes)          \
    X(reduce_sum)           \
    X(reduce_minmax_zeros)  \
    X(conv_rule)            \
    X(conv_layout_change)   \
    X(layout_transpose)     \
    X(layout_strided_slice) \
    X(layout_pad)           \
    X(layout_join)          \
    X(fingering_candidates) \
    X(fingering_rules)      \
    X(fingering_forbidden)  \
    X(fingering_errors)     \
    X(fingering_run_chords) \
    X(fingering_run_reduce) \
    X(fingering_run_fold)   \
    X(fingering_run_errors) \
    X(fingering_search_many) \
    X(rhythm_group)         \
    X(rhythm_envelope)      \
    X(rhythm_candidates)    \
    X(rhythm_track)         \
    X(rhythm_period)        \
    X(rhythm_complexity)    \
    X(rhythm_beats)         \
    X(rhythm_fitted_period) \
    X(rhythm_meter)         \
    X(rhythm_pickup)        \
    X(tabdoc_json)          \
    X(tabdoc_musicxml)      \
    X(tabdoc_errors)        \
    X(tabdoc_text)          \
    X(tabdoc_numbers)       \
    X(lalloc_reuse)         \
    X(lalloc_keep_limit)    \
    X(lalloc_total)         \
    X(lalloc_close_gives_back) \
    X(heap_trim_gives_back) \
    X(heap_trim_every_checks) \
    X(metrics_threads)      \
    X(metrics_escaping)     \
    X(metrics_histogram)    \
    X(metrics_counter_gauge) \
    X(metrics_series_cap)   \
    X(metrics_bad_input)    \
    X(metrics_store_full)   \
    X(notes_guitar_modes)   \
    X(notes_guitar_official_untouched) \
    X(notes_guitar_ghost)   \
    X(notes_guitar_weak)    \
    X(notes_guitar_retrigger) \
    X(notes_guitar_split)   \
    X(notes_guitar_bend)    \
    X(notes_guitar_range_register) \
    X(tabdoc_ascii)         \
    X(tabdoc_alphatex)      \
    X(tabdoc_gpif)          \
    X(tabdoc_writer_errors) \
    X(tabdoc_events)        \
    X(grid_quantise)        \
    X(grid_triplets)        \
    X(grid_join)            \
    X(grid_pieces)          \
    X(grid_pickup)          \
    X(grid_errors)          \
    X(technique_contour)    \
    X(technique_legato_kinds) \
    X(technique_pass)       \
    X(notes_guitar_strum)   \
    X(notes_guitar_keep)    \
    X(notes_guitar_chord)   \
    X(notes_guitar_bend_fall) \
    X(notes_guitar_second_onset) \
    X(headers_compile)

/*
 * A test that cannot run on this machine (no GPU, a backend this build
 * lacks) says why and returns WTT_TEST_SKIP: SKIP("no CUDA device is
 * present (device_count() = 0)") prints "skipped, because <reason>" and
 * returns it. The runner counts it as skipped, never as passed, and its
 * summary line says "N passed, M failed, K skipped". A GPU-only test
 * starts with
 *
 *     if (wtt_backend_find("cuda") == NULL) SKIP("...not compiled in...");
 *     if (wtt_backend_find("cuda")->device_count() == 0) SKIP("...");
 */
#define WTT_TEST_SKIP 77

#define SKIP(reason)                                                      \
    do {                                                                  \
        printf("skipped, because %s\n", (reason));                        \
        return WTT_TEST_SKIP;                                             \
    } while (0)

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

/* The next value in [-0.5, 0.5) of a fixed sequence (an LCG on *s): the
 * same random data on every machine and run. */
static inline float
test_rnd(uint32_t *s)
{
    *s = *s * 1664525u + 1013904223u;
    return (float) (*s >> 8) / (float) (1u << 24) - 0.5f;
}

/* A field of /proc/self/status in KiB ("VmRSS", "RssAnon"), or -1. */
static inline long
test_status_kib(const char *field)
{
    FILE  *f = fopen("/proc/self/status", "r");
    char   line[256];
    size_t n = strlen(field);
    long   kib = -1;

    if (f == NULL) {
        return -1;
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        if (strncmp(line, field, n) == 0 && line[n] == ':'
            && sscanf(line + n + 1, " %ld kB", &kib) == 1)
        {
            break;
        }
    }
    fclose(f);
    return kib;
}

#endif
