/*
 * wtt_util.h: small helpers shared by the core: allocation, time, hashing,
 * file reading and constant-time comparison.
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
