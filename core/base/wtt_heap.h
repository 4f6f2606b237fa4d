/*
 * wtt_heap.h: giving the allocator's free pages back to the kernel.
 *
 * glibc's malloc keeps freed memory in its arenas (one per thread that
 * allocated, up to 8 per core) and returns it to the kernel only from the
 * top of an arena, past a threshold it raises itself after large frees.
 * A long-running server's resident memory then follows the peak of its
 * past allocations, not what it holds (docs/operations.md, "Memory"):
 * wtt serve's soak measured 6-7 MB live and up to 5 MB free but resident.
 * A trim every minute hands free pages back (MADV_DONTNEED) at the cost
 * of a walk over the free lists: well under a millisecond here.
 */
#ifndef WTT_HEAP_H
#define WTT_HEAP_H

#include <stddef.h>

/* Gives free pages of every arena back now. Returns 1 when some memory
 * was released, 0 when none was, -1 where this build cannot (not glibc,
 * or a sanitizer's allocator replaces malloc). */
int wtt_heap_trim(void);

/* Trims every `interval_s` seconds on a thread of its own, started on the
 * first call; later calls change the interval; 0 pauses the trimming.
 * Returns 0, or -1 with `err` set (bad interval, thread not started). */
int wtt_heap_trim_every(double interval_s, char *err, size_t errlen);

#endif
