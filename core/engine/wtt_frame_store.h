/*
 * wtt_frame_store.h: a growable matrix of float rows that lives in memory while it
 * is small and in an unlinked temporary file once it passes a byte budget,
 * read and written through a small direct-mapped cache of row blocks.
 *
 * It is what keeps transcription memory flat: an hour of posteriorgrams is
 * 546 MB, but the note extraction only ever looks at a few neighbouring
 * rows at a time (and at one row per note frame for the bends), so the
 * rows stream to disk as the engine produces them and are read back in
 * blocks. Small inputs never touch the disk.
 *
 *     struct wtt_frame_store m;
 *     wtt_frame_store_init(&m, 440, 32 << 20);            // spill past 32 MiB
 *     if (wtt_frame_store_append(&m, rows, 142, err, sizeof(err)) != 0) ...
 *     float v = wtt_frame_store_get(&m, r, c);
 *     if (wtt_frame_store_check(&m, err, sizeof(err)) != 0) ...  // I/O errors
 *     wtt_frame_store_free(&m);
 *
 * wtt_frame_store_get and wtt_frame_store_set never fail: a read or write-back that fails
 * on the file is remembered (the first errno) and the access returns 0;
 * callers check once with wtt_frame_store_check after a pass. Not thread safe.
 */
#ifndef WTT_FRAME_STORE_H
#define WTT_FRAME_STORE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define WTT_FRAME_STORE_BLOCK_SHIFT 7                     /* 128 rows a block */
#define WTT_FRAME_STORE_BLOCK       ((size_t) 1 << WTT_FRAME_STORE_BLOCK_SHIFT)
#define WTT_FRAME_STORE_SLOTS       32                    /* power of two */
#define WTT_FRAME_STORE_NONE        SIZE_MAX

struct wtt_frame_store {
    size_t         n;           /* rows */
    size_t         width;       /* floats a row */
    float         *mem;         /* every row, while in memory */
    size_t         cap;         /* rows allocated in mem */
    int            mapped;      /* mem is a mapping of its own (large) */
    size_t         budget;      /* bytes allowed in memory */
    int            fd;          /* backing file, -1 while in memory */
    off_t          base;        /* byte offset of row 0 in the file */
    float         *slots;       /* WTT_FRAME_STORE_SLOTS blocks, once needed */
    size_t         block[WTT_FRAME_STORE_SLOTS];   /* block held, or NONE */
    unsigned char  dirty[WTT_FRAME_STORE_SLOTS];
    float          dummy;       /* what a failed access reads and writes */
    int            err;         /* first errno of a failed file access */
};

/* An empty matrix in memory that moves to a temporary file (in $TMPDIR,
 * else /tmp) once it would hold more than `budget` bytes; 0 puts it on
 * disk from the first row, SIZE_MAX never. */
void wtt_frame_store_init(struct wtt_frame_store *m, size_t width, size_t budget);

/* A read-only view of `n` rows stored at byte `base` of `fd` (taken over:
 * closed by wtt_frame_store_free). */
void wtt_frame_store_open(struct wtt_frame_store *m, int fd, off_t base, size_t n,
                   size_t width);

void wtt_frame_store_free(struct wtt_frame_store *m);

/* Sizes the memory for `rows` rows at once when they fit the budget, or
 * moves to the file now when they will not. Returns 0 or -1 with err. */
int wtt_frame_store_reserve(struct wtt_frame_store *m, size_t rows, char *err,
                     size_t errlen);

/* Appends `rows` contiguous rows. Returns 0 or -1 with err. */
int wtt_frame_store_append(struct wtt_frame_store *m, const float *src, size_t rows,
                    char *err, size_t errlen);

/* Copies rows [r, r + count) into dst. Returns 0 or -1 with err. */
int wtt_frame_store_read(struct wtt_frame_store *m, size_t r, size_t count, float *dst,
                  char *err, size_t errlen);

/* Reads every row of a file-backed matrix into memory and lets the file
 * go. Returns 0 or -1 with err (the matrix is unchanged then). */
int wtt_frame_store_to_memory(struct wtt_frame_store *m, char *err, size_t errlen);

/* Drops the rows from `n` on (never grows). */
void wtt_frame_store_truncate(struct wtt_frame_store *m, size_t n);

/* 0, or -1 with the first I/O error of a get or set in err. */
int wtt_frame_store_check(const struct wtt_frame_store *m, char *err, size_t errlen);

static inline int
wtt_frame_store_in_memory(const struct wtt_frame_store *m)
{
    return m->fd < 0;
}

/* The cached cell (r, c), loading its block; &m->dummy on failure. */
float *wtt_frame_store_cell(struct wtt_frame_store *m, size_t r, size_t c, int write);

static inline float
wtt_frame_store_get(struct wtt_frame_store *m, size_t r, size_t c)
{
    size_t b, s;

    if (m->mem != NULL) {
        return m->mem[r * m->width + c];
    }
    b = r >> WTT_FRAME_STORE_BLOCK_SHIFT;
    s = b & (WTT_FRAME_STORE_SLOTS - 1);
    if (m->block[s] == b) {
        return m->slots[((s << WTT_FRAME_STORE_BLOCK_SHIFT)
                         | (r & (WTT_FRAME_STORE_BLOCK - 1))) * m->width + c];
    }
    return *wtt_frame_store_cell(m, r, c, 0);
}

static inline void
wtt_frame_store_set(struct wtt_frame_store *m, size_t r, size_t c, float v)
{
    if (m->mem != NULL) {
        m->mem[r * m->width + c] = v;
        return;
    }
    *wtt_frame_store_cell(m, r, c, 1) = v;
}

#endif
