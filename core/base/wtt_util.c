/*
 * wtt_util.c: allocation, clocks, hashing and small helpers (see wtt_util.h).
 */
#include "wtt_util.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>


static void
oom(size_t size)
{
    fprintf(stderr, "wtt: out of memory allocating %zu bytes\n", size);
    abort();
}


void *
wtt_malloc(size_t size)
{
    void *p = malloc(size ? size : 1);
    if (p == NULL) {
        oom(size);
    }
    return p;
}


void *
wtt_calloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (p == NULL) {
        oom(n * size);
    }
    return p;
}


void *
wtt_realloc(void *p, size_t size)
{
    void *q = realloc(p, size ? size : 1);
    if (q == NULL) {
        oom(size);
    }
    return q;
}


char *
wtt_strndup(const char *s, size_t n)
{
    char *p = wtt_malloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}


char *
wtt_strdup(const char *s)
{
    return wtt_strndup(s, strlen(s));
}


void *
wtt_trymalloc(size_t size)
{
    return malloc(size ? size : 1);
}


uint64_t
wtt_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t) ts.tv_sec * 1000000000ull + (uint64_t) ts.tv_nsec;
}


uint64_t
wtt_now_ms(void)
{
    return wtt_now_ns() / 1000000ull;
}


double
wtt_wall_time(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}


uint64_t
wtt_deadline_after(double sec)
{
    return wtt_now_ns() + (uint64_t) (sec * 1e9);
}


int
wtt_ms_until(uint64_t deadline)
{
    uint64_t now = wtt_now_ns();
    uint64_t ms;

    if (now >= deadline) {
        return 0;
    }
    ms = (deadline - now + 999999ull) / 1000000ull;
    return ms > INT_MAX ? INT_MAX : (int) ms;
}


int
wtt_wait_fd(int fd, short events, uint64_t deadline)
{
    struct pollfd pfd;
    int           rc;

    for (;;) {
        pfd.fd = fd;
        pfd.events = events;
        pfd.revents = 0;
        rc = poll(&pfd, 1, wtt_ms_until(deadline));
        if (rc > 0) {
            return pfd.revents;
        }
        if (rc == 0) {
            if (wtt_now_ns() >= deadline) {
                return 0;
            }
            continue;
        }
        if (errno != EINTR) {
            return -1;
        }
    }
}


char *
wtt_iso_time(double t, char *buf, size_t len)
{
    time_t     secs = (time_t) t;
    int        ms = (int) ((t - (double) secs) * 1000.0);
    struct tm  tm;

    gmtime_r(&secs, &tm);
    snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
             tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
             tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
    return buf;
}


void
wtt_sha256_hex(const void *data, size_t len, char hex[65])
{
    static const char digits[] = "0123456789abcdef";
    unsigned char     md[32];
    unsigned int      mdlen = 0;

    EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL);
    for (unsigned int i = 0; i < 32; i++) {
        hex[2 * i] = digits[md[i] >> 4];
        hex[2 * i + 1] = digits[md[i] & 15];
    }
    hex[64] = '\0';
}


char *
wtt_read_file(const char *path, size_t max, size_t *len)
{
    struct stat st;
    char       *buf = NULL;
    size_t      got = 0;
    int         fd, saved;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return NULL;
    }
    if (fstat(fd, &st) != 0) {
        goto fail;
    }
    if (!S_ISREG(st.st_mode)) {
        errno = EISDIR;
        goto fail;
    }
    if ((size_t) st.st_size > max) {
        errno = EFBIG;
        goto fail;
    }
    buf = wtt_trymalloc((size_t) st.st_size + 1);
    if (buf == NULL) {
        errno = ENOMEM;
        goto fail;
    }
    while (got < (size_t) st.st_size) {
        ssize_t n = read(fd, buf + got, (size_t) st.st_size - got);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            break;   /* file shrank under us: return what is there */
        }
        got += (size_t) n;
    }
    buf[got] = '\0';
    close(fd);
    *len = got;
    return buf;

fail:
    saved = errno;
    free(buf);
    close(fd);
    errno = saved;
    return NULL;
}


int
wtt_ct_equal(const void *a, size_t alen, const void *b, size_t blen)
{
    const unsigned char *x = a, *y = b;
    unsigned char        diff = (unsigned char) (alen != blen);
    size_t               n = alen < blen ? alen : blen;

    /* Compare over the shorter length always; the length mismatch is folded
     * in above, so a wrong-length token costs the same as a wrong byte. */
    for (size_t i = 0; i < n; i++) {
        diff |= x[i] ^ y[i];
    }
    return diff == 0;
}


const char *
wtt_env(const char *name, const char *def)
{
    const char *v = getenv(name);
    return (v != NULL && v[0] != '\0') ? v : def;
}


long long
wtt_env_int(const char *name, long long def)
{
    const char *v = getenv(name);
    char       *end;
    long long   n;

    if (v == NULL || v[0] == '\0') {
        return def;
    }
    errno = 0;
    n = strtoll(v, &end, 10);
    if (errno != 0 || *end != '\0') {
        fprintf(stderr, "wtt: ignoring %s=%s (not an integer)\n", name, v);
        return def;
    }
    return n;
}


/* ---------------------------------------------------------------------------
 * Error text
 * ------------------------------------------------------------------------- */


char *
wtt_lowercase(const char *s, char *buf, size_t len)
{
    size_t i;

    if (s == NULL) {
        s = "unknown error";
    }
    for (i = 0; s[i] != '\0' && i + 1 < len; i++) {
        buf[i] = (char) tolower((unsigned char) s[i]);
    }
    buf[i] = '\0';
    return buf;
}


char *
wtt_strerror(int err, char *buf, size_t len)
{
    char tmp[128];

    /* The GNU strerror_r (_GNU_SOURCE) returns the text, in tmp or not. */
    return wtt_lowercase(strerror_r(err, tmp, sizeof(tmp)), buf, len);
}


/* ---------------------------------------------------------------------------
 * Atomic file writes
 * ------------------------------------------------------------------------- */


/* fsyncs the directory that holds `path`. Returns 0, or -1 with errno. */
static int
sync_dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    char       *dir;
    int         fd, rc, saved;

    if (slash == NULL) {
        dir = wtt_strdup(".");
    } else if (slash == path) {
        dir = wtt_strdup("/");
    } else {
        dir = wtt_strndup(path, (size_t) (slash - path));
    }
    fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(dir);
    if (fd < 0) {
        return -1;
    }
    rc = fsync(fd);
    saved = errno;
    close(fd);
    /* Some file systems cannot sync a directory at all: nothing to do. */
    if (rc != 0 && (saved == EINVAL || saved == ENOTSUP)) {
        rc = 0;
    }
    errno = saved;
    return rc;
}


void
wtt_atomic_abort(struct wtt_atomic_file *f)
{
    int saved = errno;

    if (f->fd >= 0) {
        close(f->fd);
        f->fd = -1;
    }
    if (f->tmp != NULL) {
        unlink(f->tmp);
        free(f->tmp);
        f->tmp = NULL;
    }
    free(f->path);
    f->path = NULL;
    errno = saved;
}


int
wtt_atomic_open(struct wtt_atomic_file *f, const char *path)
{
    static const char suffix[] = ".tmp.XXXXXX";
    struct stat       st;
    mode_t            mode = 0644;
    size_t            plen = strlen(path);

    f->fd = -1;
    f->path = wtt_strdup(path);
    f->tmp = wtt_malloc(plen + sizeof(suffix));
    memcpy(f->tmp, path, plen);
    memcpy(f->tmp + plen, suffix, sizeof(suffix));

    if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
        mode = st.st_mode & 07777;
    }
    f->fd = mkostemp(f->tmp, O_CLOEXEC);
    if (f->fd < 0) {
        free(f->tmp);            /* nothing was created: nothing to unlink */
        f->tmp = NULL;
        wtt_atomic_abort(f);
        return -1;
    }
    if (fchmod(f->fd, mode) != 0) {
        wtt_atomic_abort(f);
        return -1;
    }
    return 0;
}


int
wtt_atomic_write(struct wtt_atomic_file *f, const void *data, size_t len)
{
    const char *p = data;
    ssize_t     n;

    if (f->fd < 0) {
        errno = EBADF;
        return -1;
    }
    while (len > 0) {
        n = write(f->fd, p, len);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            wtt_atomic_abort(f);
            return -1;
        }
        p += n;
        len -= (size_t) n;
    }
    return 0;
}


int
wtt_atomic_commit(struct wtt_atomic_file *f)
{
    int fd = f->fd, rc;

    if (fd < 0) {
        errno = EBADF;
        return -1;
    }
    if (fsync(fd) != 0) {
        wtt_atomic_abort(f);
        return -1;
    }
    f->fd = -1;
    if (close(fd) != 0 || rename(f->tmp, f->path) != 0) {
        wtt_atomic_abort(f);
        return -1;
    }
    free(f->tmp);                /* renamed: nothing left to unlink */
    f->tmp = NULL;
    rc = sync_dir_of(f->path);
    wtt_atomic_abort(f);         /* frees the path; keeps errno */
    return rc;
}


int
wtt_write_file_atomic(const char *path, const void *data, size_t len)
{
    struct wtt_atomic_file f;

    if (wtt_atomic_open(&f, path) != 0 || wtt_atomic_write(&f, data, len) != 0)
    {
        return -1;
    }
    return wtt_atomic_commit(&f);
}
