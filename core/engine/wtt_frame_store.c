/*
 * wtt_frame_store.c: rows in memory or in a temporary file (see wtt_frame_store.h).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE         /* O_TMPFILE */
#endif
#include "wtt_frame_store.h"
#include "wtt_util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/*
 * Rows of at least this many bytes live in a mapping of their own, marked
 * for transparent huge pages: a minute of audio is 9.7 MB of rows, written
 * once, and faulting it in 4 KiB at a time took 25 ms of a 0.4 s run on a
 * virtual machine (about 11 us a fault), against 8 ms in 2 MiB pages. A
 * mapping of its own, not malloc's memory, so that the hint never reaches
 * memory malloc hands out again, and so that freeing it returns it all.
 */
#define MAP_MIN_BYTES ((size_t) 4 << 20)


static size_t
row_bytes(const struct wtt_frame_store *m)
{
    return m->width * sizeof(float);
}


static size_t
map_len(size_t bytes)
{
    size_t page = (size_t) sysconf(_SC_PAGESIZE);

    return (bytes + page - 1) / page * page;
}


/* Releases the rows' memory. */
static void
mem_release(struct wtt_frame_store *m)
{
    if (m->mapped) {
        munmap(m->mem, map_len(m->cap * row_bytes(m)));
    } else {
        free(m->mem);
    }
    m->mem = NULL;
    m->mapped = 0;
}


/* The rows' memory resized to `bytes`, keeping the rows held (m->cap is
 * still the old size); NULL with the old memory intact on failure. */
static float *
mem_resize(struct wtt_frame_store *m, size_t bytes)
{
    void *p;

    if (!m->mapped && bytes < MAP_MIN_BYTES) {
        return realloc(m->mem, bytes);
    }
    if (m->mapped) {
        p = mremap(m->mem, map_len(m->cap * row_bytes(m)), map_len(bytes),
                   MREMAP_MAYMOVE);
    } else {
        p = mmap(NULL, map_len(bytes), PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p != MAP_FAILED && m->n > 0) {
            memcpy(p, m->mem, m->n * row_bytes(m));
        }
    }
    if (p == MAP_FAILED) {
        return NULL;
    }
    if (!m->mapped) {
        free(m->mem);
    }
#ifdef MADV_HUGEPAGE
    (void) madvise(p, map_len(bytes), MADV_HUGEPAGE);   /* a hint only */
#endif
    m->mapped = 1;
    return p;
}


void
wtt_frame_store_init(struct wtt_frame_store *m, size_t width, size_t budget)
{
    memset(m, 0, sizeof(*m));
    m->width = width;
    m->budget = budget;
    m->fd = -1;
    for (size_t s = 0; s < WTT_FRAME_STORE_SLOTS; s++) {
        m->block[s] = WTT_FRAME_STORE_NONE;
    }
}


void
wtt_frame_store_open(struct wtt_frame_store *m, int fd, off_t base, size_t n,
              size_t width)
{
    wtt_frame_store_init(m, width, 0);
    m->fd = fd;
    m->base = base;
    m->n = n;
}


void
wtt_frame_store_free(struct wtt_frame_store *m)
{
    mem_release(m);
    free(m->slots);
    if (m->fd >= 0) {
        close(m->fd);
    }
    wtt_frame_store_init(m, m->width, m->budget);
}


/* pread/pwrite until done: 0, or -1 with errno (EIO for a short file). */
static int
full_io(int fd, void *buf, size_t len, off_t off, int write)
{
    char *p = buf;

    while (len > 0) {
        ssize_t k = write ? pwrite(fd, p, len, off) : pread(fd, p, len, off);
        if (k < 0 && errno == EINTR) {
            continue;
        }
        if (k <= 0) {
            if (k == 0) {
                errno = EIO;
            }
            return -1;
        }
        p += k;
        len -= (size_t) k;
        off += k;
    }
    return 0;
}


/* An unlinked file in $TMPDIR (or /tmp): nothing is left behind, whatever
 * happens to the process. */
static int
temp_file(void)
{
    const char *dir = getenv("TMPDIR");
    char        path[4096];
    int         fd;

    if (dir == NULL || dir[0] == '\0') {
        dir = "/tmp";
    }
    fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd >= 0) {
        return fd;
    }
    snprintf(path, sizeof(path), "%s/wtt-rows.XXXXXX", dir);
    fd = mkostemp(path, O_CLOEXEC);
    if (fd >= 0) {
        unlink(path);
    }
    return fd;
}


/* Moves the rows held in memory to a new temporary file. */
static int
spill(struct wtt_frame_store *m, char *err, size_t errlen)
{
    int fd = temp_file();

    if (fd < 0) {
        snprintf(err, errlen, "temporary file for the posteriorgrams: %s",
                 strerror(errno));
        return -1;
    }
    if (m->n > 0 && full_io(fd, m->mem, m->n * row_bytes(m), 0, 1) != 0) {
        snprintf(err, errlen, "writing the posteriorgrams: %s",
                 strerror(errno));
        close(fd);
        return -1;
    }
    mem_release(m);
    m->cap = 0;
    m->fd = fd;
    m->base = 0;
    return 0;
}


static float *
slot_data(struct wtt_frame_store *m, size_t s)
{
    return m->slots + (s << WTT_FRAME_STORE_BLOCK_SHIFT) * m->width;
}


/* Rows of block b that exist (the last block may be short). */
static size_t
block_rows(const struct wtt_frame_store *m, size_t b)
{
    size_t first = b << WTT_FRAME_STORE_BLOCK_SHIFT;

    if (first >= m->n) {
        return 0;
    }
    return m->n - first < WTT_FRAME_STORE_BLOCK ? m->n - first : WTT_FRAME_STORE_BLOCK;
}


/* Writes slot s back if it changed; the slot stays valid. */
static int
flush_slot(struct wtt_frame_store *m, size_t s)
{
    size_t b = m->block[s];

    if (!m->dirty[s] || b == WTT_FRAME_STORE_NONE) {
        return 0;
    }
    if (full_io(m->fd, slot_data(m, s), block_rows(m, b) * row_bytes(m),
                m->base + (off_t) ((b << WTT_FRAME_STORE_BLOCK_SHIFT)
                                   * row_bytes(m)), 1) != 0)
    {
        return -1;
    }
    m->dirty[s] = 0;
    return 0;
}


/* Writes back every changed slot and forgets the ones from row `from` on
 * (they are about to change on disk). */
static int
sync_slots(struct wtt_frame_store *m, size_t from, char *err, size_t errlen)
{
    for (size_t s = 0; s < WTT_FRAME_STORE_SLOTS; s++) {
        if (flush_slot(m, s) != 0) {
            snprintf(err, errlen, "writing the posteriorgrams: %s",
                     strerror(errno));
            return -1;
        }
        if (m->block[s] != WTT_FRAME_STORE_NONE
            && ((m->block[s] + 1) << WTT_FRAME_STORE_BLOCK_SHIFT) > from)
        {
            m->block[s] = WTT_FRAME_STORE_NONE;
        }
    }
    return 0;
}


float *
wtt_frame_store_cell(struct wtt_frame_store *m, size_t r, size_t c, int write)
{
    size_t b = r >> WTT_FRAME_STORE_BLOCK_SHIFT, s = b & (WTT_FRAME_STORE_SLOTS - 1);
    float *d;

    if (m->mem != NULL) {
        return m->mem + r * m->width + c;
    }
    if (m->fd < 0 || r >= m->n || c >= m->width) {
        m->dummy = 0.0f;
        return &m->dummy;
    }
    if (m->slots == NULL) {
        m->slots = wtt_trymalloc((WTT_FRAME_STORE_SLOTS << WTT_FRAME_STORE_BLOCK_SHIFT)
                                 * row_bytes(m));
        if (m->slots == NULL) {
            m->err = m->err ? m->err : ENOMEM;
            m->dummy = 0.0f;
            return &m->dummy;
        }
    }
    if (m->block[s] != b) {
        if (flush_slot(m, s) != 0) {
            m->err = m->err ? m->err : errno;
        }
        m->block[s] = WTT_FRAME_STORE_NONE;
        if (full_io(m->fd, slot_data(m, s), block_rows(m, b) * row_bytes(m),
                    m->base + (off_t) ((b << WTT_FRAME_STORE_BLOCK_SHIFT)
                                       * row_bytes(m)), 0) != 0)
        {
            m->err = m->err ? m->err : errno;
            m->dummy = 0.0f;
            return &m->dummy;
        }
        m->block[s] = b;
    }
    d = slot_data(m, s) + (r & (WTT_FRAME_STORE_BLOCK - 1)) * m->width + c;
    if (write) {
        m->dirty[s] = 1;
    }
    return d;
}


int
wtt_frame_store_reserve(struct wtt_frame_store *m, size_t rows, char *err, size_t errlen)
{
    float *a;

    if (m->fd >= 0 || rows <= m->cap) {
        return 0;
    }
    if (rows > m->budget / row_bytes(m)) {
        return spill(m, err, errlen);
    }
    a = mem_resize(m, rows * row_bytes(m));
    if (a == NULL) {
        snprintf(err, errlen, "out of memory for %zu rows", rows);
        return -1;
    }
    m->mem = a;
    m->cap = rows;
    return 0;
}


int
wtt_frame_store_append(struct wtt_frame_store *m, const float *src, size_t rows,
                char *err, size_t errlen)
{
    size_t need = m->n + rows;

    if (m->fd < 0 && need > m->cap) {
        /* Unknown length: grow by half again, within the budget. */
        size_t want = m->cap + m->cap / 2 > need ? m->cap + m->cap / 2 : need;
        size_t fit = m->budget / row_bytes(m);
        if (want > fit && need <= fit) {
            want = fit;
        }
        if (wtt_frame_store_reserve(m, want, err, errlen) != 0) {
            return -1;
        }
    }
    if (m->fd < 0) {
        memcpy(m->mem + m->n * m->width, src, rows * row_bytes(m));
    } else if (sync_slots(m, m->n, err, errlen) != 0) {
        return -1;
    } else if (full_io(m->fd, (void *) src, rows * row_bytes(m),
                       m->base + (off_t) (m->n * row_bytes(m)), 1) != 0)
    {
        snprintf(err, errlen, "writing the posteriorgrams: %s",
                 strerror(errno));
        return -1;
    }
    m->n = need;
    return 0;
}


int
wtt_frame_store_read(struct wtt_frame_store *m, size_t r, size_t count, float *dst,
              char *err, size_t errlen)
{
    if (r > m->n || count > m->n - r) {
        snprintf(err, errlen, "rows %zu..%zu out of range (%zu rows)", r,
                 r + count, m->n);
        return -1;
    }
    if (m->fd < 0) {
        if (count > 0) {
            memcpy(dst, m->mem + r * m->width, count * row_bytes(m));
        }
        return 0;
    }
    if (sync_slots(m, m->n, err, errlen) != 0) {
        return -1;
    }
    if (full_io(m->fd, dst, count * row_bytes(m),
                m->base + (off_t) (r * row_bytes(m)), 0) != 0)
    {
        snprintf(err, errlen, "reading the posteriorgrams: %s",
                 strerror(errno));
        return -1;
    }
    return 0;
}


int
wtt_frame_store_to_memory(struct wtt_frame_store *m, char *err, size_t errlen)
{
    float *mem;

    if (m->fd < 0) {
        return 0;
    }
    mem = wtt_trymalloc(m->n * row_bytes(m) + 1);
    if (mem == NULL) {
        snprintf(err, errlen, "out of memory for %zu rows", m->n);
        return -1;
    }
    if (wtt_frame_store_read(m, 0, m->n, mem, err, errlen) != 0) {
        free(mem);
        return -1;
    }
    close(m->fd);
    free(m->slots);
    m->fd = -1;
    m->slots = NULL;
    for (size_t s = 0; s < WTT_FRAME_STORE_SLOTS; s++) {
        m->block[s] = WTT_FRAME_STORE_NONE;
        m->dirty[s] = 0;
    }
    m->mem = mem;
    m->cap = m->n;
    return 0;
}


void
wtt_frame_store_truncate(struct wtt_frame_store *m, size_t n)
{
    if (n < m->n) {
        m->n = n;
    }
}


int
wtt_frame_store_check(const struct wtt_frame_store *m, char *err, size_t errlen)
{
    if (m->err == 0) {
        return 0;
    }
    snprintf(err, errlen, "posteriorgram file: %s", strerror(m->err));
    return -1;
}
