/*
 * test_heap.c: giving malloc's free pages back (core/base/wtt_heap.c).
 */
#include "test.h"
#include "wtt_heap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BLOCKS  16384
#define BLOCK   4000          /* below malloc's mmap threshold: in an arena */


int
test_heap_trim_gives_back(void)
{
    static void *blocks[BLOCKS];
    long         held, trimmed;
    int          r;

#if defined(__SANITIZE_ADDRESS__)
    ASSERT(wtt_heap_trim() == -1);
    SKIP("built with AddressSanitizer, whose allocator replaces malloc's "
         "(wtt_heap_trim says so: checked)");
#endif
    /* 64 MB of small blocks, all freed but the last: the last pins the
     * arena's top, so free() itself gives nothing back, and the pages stay
     * resident until a trim. */
    for (int i = 0; i < BLOCKS; i++) {
        blocks[i] = malloc(BLOCK);
        ASSERT(blocks[i] != NULL);
        memset(blocks[i], 1, BLOCK);
    }
    for (int i = 0; i < BLOCKS - 1; i++) {
        free(blocks[i]);
    }
    held = test_status_kib("RssAnon");
    ASSERT(held > 0);
    r = wtt_heap_trim();
    trimmed = test_status_kib("RssAnon");
    free(blocks[BLOCKS - 1]);
    ASSERT(r == 1);
    ASSERT(held - trimmed > 32 * 1024);
    return 0;
}


int
test_heap_trim_every_checks(void)
{
    char err[128];

    ASSERT(wtt_heap_trim_every(-1, err, sizeof(err)) == -1);
    ASSERT(strstr(err, "0 to 86400") != NULL);
    ASSERT(wtt_heap_trim_every(1.0 / 0.0, err, sizeof(err)) == -1);
    ASSERT(wtt_heap_trim_every(0, err, sizeof(err)) == 0);
    ASSERT(wtt_heap_trim_every(3600, err, sizeof(err)) == 0);
    ASSERT(wtt_heap_trim_every(0, err, sizeof(err)) == 0);
    return 0;
}
