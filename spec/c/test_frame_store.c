/*
 * test_frame_store.c: wtt_frame_store in memory, spilling to its file, and through the
 * block cache (eviction, write-back, views of a file).
 */
#include "test.h"
#include "wtt_frame_store.h"

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#define W 3

static float
cell(size_t r, size_t c)
{
    return (float) (r * 10 + c);
}


/* Appends n rows of cell() values in chunks of `chunk`. */
static int
fill(struct wtt_frame_store *m, size_t n, size_t chunk)
{
    float buf[64 * W];
    char  err[256];

    for (size_t r = 0; r < n; r += chunk) {
        size_t k = n - r < chunk ? n - r : chunk;
        for (size_t i = 0; i < k; i++) {
            for (size_t c = 0; c < W; c++) {
                buf[i * W + c] = cell(r + i, c);
            }
        }
        if (wtt_frame_store_append(m, buf, k, err, sizeof(err)) != 0) {
            fprintf(stderr, "append: %s\n", err);
            return -1;
        }
    }
    return 0;
}


int
test_rows_spill(void)
{
    struct wtt_frame_store m;
    char            err[256];

    /* 100 rows fit in 1,200 bytes; the 101st moves them to the file. */
    wtt_frame_store_init(&m, W, 100 * W * sizeof(float));
    ASSERT(fill(&m, 100, 7) == 0);
    ASSERT(wtt_frame_store_in_memory(&m));
    ASSERT(fill(&m, 1, 1) == 0);
    ASSERT(!wtt_frame_store_in_memory(&m));
    ASSERT(m.n == 101);
    ASSERT(wtt_frame_store_get(&m, 99, 2) == cell(99, 2));
    ASSERT(wtt_frame_store_get(&m, 0, 1) == 100.0f * 0 + 1);
    /* A reserve beyond the budget goes straight to the file. */
    wtt_frame_store_free(&m);
    wtt_frame_store_init(&m, W, 1000);
    ASSERT(wtt_frame_store_reserve(&m, 1000, err, sizeof(err)) == 0);
    ASSERT(!wtt_frame_store_in_memory(&m));
    ASSERT(wtt_frame_store_check(&m, err, sizeof(err)) == 0);
    wtt_frame_store_free(&m);
    return 0;
}


int
test_rows_cache(void)
{
    /* Ten times the rows the cache holds, written and read in an order
     * that evicts dirty blocks and brings them back. */
    size_t          n = 10 * WTT_FRAME_STORE_SLOTS * WTT_FRAME_STORE_BLOCK + 5;
    struct wtt_frame_store m;
    float           row[W];
    char            err[256];

    wtt_frame_store_init(&m, W, 0);
    ASSERT(fill(&m, n, 64) == 0);
    for (size_t r = 0; r < n; r += 3) {
        wtt_frame_store_set(&m, r, 1, -cell(r, 1));
    }
    for (size_t i = n; i-- > 0;) {
        float want = i % 3 == 0 ? -cell(i, 1) : cell(i, 1);
        ASSERT(wtt_frame_store_get(&m, i, 1) == want);
        ASSERT(wtt_frame_store_get(&m, i, 2) == cell(i, 2));
    }
    /* read() sees the writes still in the cache. */
    wtt_frame_store_set(&m, n - 1, 0, 42.0f);
    ASSERT(wtt_frame_store_read(&m, n - 1, 1, row, err, sizeof(err)) == 0);
    ASSERT(row[0] == 42.0f && row[2] == cell(n - 1, 2));
    ASSERT(wtt_frame_store_read(&m, n - 1, 2, row, err, sizeof(err)) == -1);
    /* An append after cached reads is not hidden by a stale block. */
    ASSERT(wtt_frame_store_get(&m, n - 1, 2) == cell(n - 1, 2));
    row[0] = row[1] = row[2] = 7.0f;
    ASSERT(wtt_frame_store_append(&m, row, 1, err, sizeof(err)) == 0);
    ASSERT(wtt_frame_store_get(&m, n, 2) == 7.0f);
    ASSERT(wtt_frame_store_get(&m, n - 1, 0) == 42.0f);
    wtt_frame_store_truncate(&m, 10);
    ASSERT(m.n == 10);
    ASSERT(wtt_frame_store_check(&m, err, sizeof(err)) == 0);
    wtt_frame_store_free(&m);
    return 0;
}


int
test_rows_view(void)
{
    char            path[] = "/tmp/wtt-test-rows.XXXXXX", err[256];
    int             fd = mkstemp(path);
    float           data[2 + 50 * W];
    struct wtt_frame_store m;

    ASSERT(fd >= 0);
    unlink(path);
    for (size_t i = 0; i < 50; i++) {
        for (size_t c = 0; c < W; c++) {
            data[2 + i * W + c] = cell(i, c);
        }
    }
    ASSERT(write(fd, data, sizeof(data)) == (ssize_t) sizeof(data));
    /* 8 bytes of header, then 50 rows. */
    wtt_frame_store_open(&m, fd, 8, 50, W);
    ASSERT(wtt_frame_store_get(&m, 49, 2) == cell(49, 2));
    ASSERT(wtt_frame_store_get(&m, 0, 0) == cell(0, 0));
    ASSERT(wtt_frame_store_check(&m, err, sizeof(err)) == 0);
    wtt_frame_store_free(&m);
    /* A file shorter than it claims: an error, remembered, not a crash. */
    fd = open("/dev/null", O_RDONLY);
    wtt_frame_store_open(&m, fd, 0, 300, W);
    ASSERT(wtt_frame_store_get(&m, 200, 0) == 0.0f);
    ASSERT(wtt_frame_store_check(&m, err, sizeof(err)) == -1);
    ASSERT(strstr(err, "posteriorgram file") != NULL);
    wtt_frame_store_free(&m);
    return 0;
}


/* Rows of 4 MiB and more live in a mapping of their own: reserved at
 * once, grown past it (the mapping moves), moved to the file when the
 * budget is passed, freed; small ones move into a mapping as they grow. */
int
test_rows_mapped(void)
{
    size_t          big = ((size_t) 5 << 20) / (W * sizeof(float));
    struct wtt_frame_store m;
    char            err[256];

    wtt_frame_store_init(&m, W, SIZE_MAX);
    ASSERT(wtt_frame_store_reserve(&m, big, err, sizeof(err)) == 0);
    ASSERT(m.mapped && m.cap == big);
    ASSERT(fill(&m, big + 1000, 64) == 0);
    ASSERT(m.mapped && m.n == big + 1000 && m.cap >= m.n);
    for (size_t r = 0; r < m.n; r += 997) {
        ASSERT(wtt_frame_store_get(&m, r, 2) == cell(r, 2));
    }
    ASSERT(wtt_frame_store_get(&m, m.n - 1, 0) == cell(m.n - 1, 0));
    wtt_frame_store_free(&m);
    ASSERT(m.mem == NULL && !m.mapped);

    /* Grown from small, in memory until the budget, then to the file. */
    wtt_frame_store_init(&m, W, 3 * big * W * sizeof(float));
    ASSERT(fill(&m, 2 * big, 64) == 0);
    ASSERT(wtt_frame_store_in_memory(&m) && m.mapped);
    ASSERT(wtt_frame_store_get(&m, big + 7, 1) == cell(big + 7, 1));
    ASSERT(fill(&m, 2 * big, 64) == 0);
    ASSERT(!wtt_frame_store_in_memory(&m) && !m.mapped);
    ASSERT(m.n == 4 * big);
    ASSERT(wtt_frame_store_get(&m, 2 * big - 1, 2) == cell(2 * big - 1, 2));
    ASSERT(wtt_frame_store_check(&m, err, sizeof(err)) == 0);
    wtt_frame_store_free(&m);
    return 0;
}
