/*
 * wtt_heap.c: periodic malloc_trim (see wtt_heap.h).
 */
#include "wtt_heap.h"

#include <malloc.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define WTT_HEAP_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define WTT_HEAP_ASAN 1
#endif

/* Under ASan, glibc's malloc_trim would set up arenas of its own that a
 * thread's exit then finds inconsistent (an abort, "malloc assertion
 * failure in __malloc_arena_thread_freeres"). */
#if defined(__GLIBC__) && !defined(WTT_HEAP_ASAN)
#define CAN_TRIM 1
#else
#define CAN_TRIM 0
#endif

/* Interval in milliseconds; 0: paused. Read by the trimming thread. */
static _Atomic long long interval_ms;
static pthread_once_t    started_once = PTHREAD_ONCE_INIT;
static int               start_error;


int
wtt_heap_trim(void)
{
#if CAN_TRIM
    return malloc_trim(0) ? 1 : 0;
#else
    return -1;
#endif
}


static void
sleep_ms(long long ms)
{
    struct timespec ts = { (time_t) (ms / 1000), (long) (ms % 1000) * 1000000L };

    while (nanosleep(&ts, &ts) != 0) {
    }
}


/* Sleeps in steps of at most a second so that a shorter interval set
 * later takes effect soon. */
static void *
trim_loop(void *arg)
{
    long long waited = 0;

    (void) arg;
    for (;;) {
        long long every = atomic_load(&interval_ms);
        long long step = 1000;

        if (every > 0 && waited >= every) {
            (void) wtt_heap_trim();
            waited = 0;
            continue;
        }
        if (every > 0 && every - waited < step) {
            step = every - waited;
        }
        sleep_ms(step);
        waited += step;
    }
    return NULL;
}


static void
start_thread(void)
{
    pthread_t      t;
    pthread_attr_t attr;

    start_error = pthread_attr_init(&attr);
    if (start_error != 0) {
        return;
    }
    (void) pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    (void) pthread_attr_setstacksize(&attr, 64 * 1024);
    start_error = pthread_create(&t, &attr, trim_loop, NULL);
    pthread_attr_destroy(&attr);
}


int
wtt_heap_trim_every(double interval_s, char *err, size_t errlen)
{
    if (!isfinite(interval_s) || interval_s < 0 || interval_s > 86400) {
        snprintf(err, errlen, "heap trim interval must be 0 to 86400 s, "
                 "not %g", interval_s);
        return -1;
    }
    atomic_store(&interval_ms, (long long) (interval_s * 1000));
    if (interval_s == 0 || !CAN_TRIM) {
        return 0;
    }
    (void) pthread_once(&started_once, start_thread);
    if (start_error != 0) {
        snprintf(err, errlen, "heap trim thread: %s", strerror(start_error));
        return -1;
    }
    return 0;
}
