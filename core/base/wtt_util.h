/*
 * wtt_util.h: small helpers shared by the core: allocation, time, hashing,
 * file reading, atomic file writing, error text and constant-time
 * comparison.
 *
 * Allocation follows two rules (house style 16): wtt_malloc and friends abort
 * on out-of-memory, for small fixed-size objects where there is nothing
 * sensible left to do; wtt_trymalloc returns NULL, for sizes that come from
 * input (request bodies, files), whose callers must report the error.
 */
#ifndef WTT_UTIL_H
#define WTT_UTIL_H

#include <stddef.h>
#include <stdint.h>

#define WTT_OK   0
#define WTT_ERR -1

void *wtt_malloc(size_t size);
void *wtt_calloc(size_t n, size_t size);
void *wtt_realloc(void *p, size_t size);
char *wtt_strdup(const char *s);
char *wtt_strndup(const char *s, size_t n);
void *wtt_trymalloc(size_t size);

/* Monotonic clock in milliseconds / nanoseconds; wall clock in seconds. */
uint64_t wtt_now_ms(void);
uint64_t wtt_now_ns(void);
double   wtt_wall_time(void);

/*
 * Formats `t` (seconds since the epoch) as an RFC 3339 UTC timestamp with
 * milliseconds into `buf` (at least 32 bytes). Returns `buf`.
 */
char *wtt_iso_time(double t, char *buf, size_t len);

/*
 * Writes the lowercase hex SHA-256 of `data` into `hex` (65 bytes, NUL
 * terminated). Never fails for valid pointers.
 */
void wtt_sha256_hex(const void *data, size_t len, char hex[65]);

/*
 * Reads the whole file at `path`. Returns a malloc'd buffer (NUL terminated,
 * caller frees) and stores its length in `*len`; returns NULL on error with
 * errno set. Files larger than `max` fail with EFBIG.
 */
char *wtt_read_file(const char *path, size_t max, size_t *len);

/*
 * Atomic file writes: the bytes go to "<path>.tmp.XXXXXX" (a unique name in
 * the same directory, so two writers never share it), which is fsync'd and
 * renamed over `path`, and then the directory is fsync'd so the rename
 * survives a crash. Readers see the old content or the new, never a mix.
 * An existing regular file keeps its permission bits; a new one gets 0644.
 *
 * Every function returns 0, or -1 with errno set. After a failure of open,
 * write or commit the temporary file is gone and `f` owns nothing; abort
 * releases a file that is not committed (safe after a failure, or twice).
 * A commit that fails only at the directory fsync has put the new content
 * in place but cannot promise it survives a crash, and still returns -1.
 *
 *     struct wtt_atomic_file f;
 *     if (wtt_atomic_open(&f, path) != 0
 *         || wtt_atomic_write(&f, head, hlen) != 0
 *         || wtt_atomic_write(&f, body, blen) != 0
 *         || wtt_atomic_commit(&f) != 0)
 *     {
 *         report(path, errno);
 *     }
 */
struct wtt_atomic_file {
    int   fd;          /* -1 when not open */
    char *tmp;         /* the temporary name (owned) */
    char *path;        /* the final name (owned) */
};

int  wtt_atomic_open(struct wtt_atomic_file *f, const char *path);
int  wtt_atomic_write(struct wtt_atomic_file *f, const void *data,
                      size_t len);
int  wtt_atomic_commit(struct wtt_atomic_file *f);
void wtt_atomic_abort(struct wtt_atomic_file *f);

/* The whole of `data` written to `path` atomically (open, write, commit).
 * Returns 0, or -1 with errno set and no temporary file left behind. */
int wtt_write_file_atomic(const char *path, const void *data, size_t len);

/*
 * Copies `s` into `buf` (`len` >= 1 bytes, truncated to fit, NUL ended) in
 * lowercase: library messages in the shape of house style 14. NULL reads as
 * "unknown error". Returns `buf`.
 */
char *wtt_lowercase(const char *s, char *buf, size_t len);

/* strerror(err) in lowercase into `buf` (see wtt_lowercase); thread-safe.
 * Returns `buf`. */
char *wtt_strerror(int err, char *buf, size_t len);

/*
 * Compares two byte strings in time that depends only on their lengths, not
 * on where they differ. Returns 1 when equal, 0 otherwise.
 */
int wtt_ct_equal(const void *a, size_t alen, const void *b, size_t blen);

/* Monotonic deadline `sec` seconds from now, in nanoseconds. */
uint64_t wtt_deadline_after(double sec);

/* Milliseconds left until `deadline`, rounded up (for poll(2)); 0 when
 * passed. */
int wtt_ms_until(uint64_t deadline);

/*
 * Waits until `fd` is ready for `events` or `deadline` passes, retrying
 * after EINTR. Returns the poll revents (non-zero: ready, error or hangup),
 * 0 on timeout, or -1 with errno set.
 */
int wtt_wait_fd(int fd, short events, uint64_t deadline);

/* Environment helpers: value of `name`, or `def` when unset or empty. */
const char *wtt_env(const char *name, const char *def);
long long wtt_env_int(const char *name, long long def);

#endif
