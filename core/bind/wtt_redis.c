/*
 * wtt_redis.c: the `wtt.core.redis` Lua module (see wtt_redis.h).
 *
 * A connection is a socket (TCP or unix), optionally wrapped in an OpenSSL
 * session, plus a reply reader (wtt_redis_reply.c) that turns the bytes read into
 * hiredis redisReply trees; hiredis formats the commands. Every send and
 * recv is non-blocking (MSG_DONTWAIT) and every wait is a poll() with a
 * deadline on the monotonic clock, except the wait for a plain
 * connection's reply, which is one blocking recv under SO_RCVTIMEO (the
 * same bound, one system call less per round trip). No call blocks longer
 * than its timeout:
 *
 *   - connect_timeout bounds connect() and the TLS handshake together
 *     (name resolution is getaddrinfo's own business);
 *   - timeout bounds each wait for progress inside call/pipeline/write: a
 *     transfer fails when neither a byte goes out nor a byte comes in for
 *     that long (a 50 MB value on a slow link is fine, a stopped server is
 *     not);
 *   - read(timeout) is a fixed deadline for the next whole reply, for the
 *     pub/sub loop.
 *
 * A transport failure (timeout, reset, EOF, protocol or TLS error) marks
 * the connection broken and releases its socket at once: after a timeout
 * the reply may still come, so the stream can never be trusted again. An
 * error *reply* from Redis is data, not a failure, and leaves the
 * connection usable.
 *
 * TLS goes through a custom BIO that uses send(MSG_NOSIGNAL) and recv, so a
 * peer that vanished never raises SIGPIPE in a process that did not ignore
 * it (`wtt spec`, `wtt worker`).
 *
 * Reply mapping (house style 20: everything is copied into Lua values):
 * integer -> number, bulk and status -> string, nil -> nil at the top level
 * and `null` (a NULL light userdata, equal to cjson.null) inside arrays,
 * array -> table, error -> (nil, message) at the top level and {err = msg}
 * inside arrays and pipelines. Arrays nest to any depth (hiredis 0.14's own
 * reader stops at 7, which is why wtt_redis_reply.c reads replies).
 */
#include "wtt_redis.h"
#include "wtt_luax.h"
#include "wtt_redis_reply.h"
#include "wtt_util.h"

#include <lua.h>
#include <lauxlib.h>

#include <hiredis/hiredis.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>


#define CONN_MT                    "wtt.redis.conn"
#define RBUF_SIZE                  (64 * 1024)
#define WBUF_FLUSH                 (256 * 1024)   /* pipeline send batch */
#define WBUF_KEEP                  (1024 * 1024)  /* kept between calls */
#define NUM_SLOT                   32             /* one formatted number */
#define DEFAULT_TIMEOUT_S          10.0
#define DEFAULT_CONNECT_TIMEOUT_S  5.0
#define MAX_TIMEOUT_S              1e7            /* keeps ns math sane */

/* conn_t.err: what kind of failure errstr describes. */
#define ERR_NONE      0
#define ERR_IO        1
#define ERR_EOF       2
#define ERR_TIMEOUT   3
#define ERR_PROTOCOL  4
#define ERR_TLS       5
#define ERR_OOM       6


/*
 * One connection. Zero-filled on creation, so every pointer starts NULL,
 * `has_fd` says whether `fd` is ours, and __gc of a connection whose
 * connect failed releases nothing twice.
 */
typedef struct {
    int            fd;
    SSL_CTX       *ctx;        /* owned, TLS only */
    SSL           *ssl;        /* owned, TLS only; owns its BIO */
    struct wtt_redis_reply_reader *reader;  /* owned */
    redisReply    *reply;      /* owned while being converted to Lua */
    char          *rbuf;       /* owned, RBUF_SIZE bytes, reused */
    char          *wbuf;       /* owned, batched pipeline commands */
    size_t         wlen;
    size_t         wcap;
    const char   **argv;       /* owned scratch for one command */
    size_t        *argvlen;    /* owned */
    char          *nums;       /* owned, NUM_SLOT bytes per argument */
    size_t         argcap;
    double         timeout;    /* seconds without progress */
    int            rcvtimeo;   /* blocking socket with SO_RCVTIMEO set */
    unsigned       has_fd:1;
    unsigned       closed:1;   /* close() was called */
    unsigned       broken:1;   /* transport failed; fd released */
    unsigned       busy:1;     /* inside a command: still set when a Lua
                                  error unwound one, which breaks it */
    int            err;        /* ERR_* */
    char           errstr[128];
} conn_t;


/* TLS settings read from the connect options; strings borrowed from the
 * options table, which stays on the stack during connect. */
typedef struct {
    int          enabled;
    int          verify;
    const char  *ca_file;
    const char  *ca_path;
    const char  *cert;
    const char  *key;
    const char  *server_name;
} tls_opts_t;


static pthread_once_t  bio_once = PTHREAD_ONCE_INIT;
static BIO_METHOD     *bio_method;


/* ---------------------------------------------------------------------------
 * Errors and time
 * ------------------------------------------------------------------------- */

/* Records a failure on `c` (hiredis shape: a code plus errstr). */
static void
set_error(conn_t *c, int err, const char *fmt, ...)
{
    va_list ap;

    c->err = err;
    va_start(ap, fmt);
    vsnprintf(c->errstr, sizeof(c->errstr), fmt, ap);
    va_end(ap);
}


/*
 * Describes the first error on OpenSSL's queue (or `def` when it is empty)
 * into `buf`, keeping only the reason ("certificate verify failed"), and
 * empties the queue.
 */
static const char *
tls_error(char *buf, size_t len, const char *def)
{
    unsigned long  e = ERR_get_error();
    const char    *r;

    ERR_clear_error();
    if (e == 0) {
        snprintf(buf, len, "%s", def);
        return buf;
    }
    r = ERR_reason_error_string(e);
    if (r != NULL) {
        snprintf(buf, len, "%s", r);
    } else {
        ERR_error_string_n(e, buf, len);
    }
    return buf;
}


/* ---------------------------------------------------------------------------
 * The TLS socket BIO: send(MSG_NOSIGNAL) / recv on the connection's fd
 * ------------------------------------------------------------------------- */

static int
bio_write(BIO *b, const char *buf, int len)
{
    int      fd = (int) (intptr_t) BIO_get_data(b);
    ssize_t  n;

    BIO_clear_retry_flags(b);
    n = send(fd, buf, (size_t) len, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
        BIO_set_retry_write(b);
    }
    return (int) n;
}


static int
bio_read(BIO *b, char *buf, int len)
{
    int      fd = (int) (intptr_t) BIO_get_data(b);
    ssize_t  n;

    BIO_clear_retry_flags(b);
    n = recv(fd, buf, (size_t) len, MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
        BIO_set_retry_read(b);
    } else if (n == 0) {
        BIO_set_flags(b, BIO_FLAGS_IN_EOF);
    }
    return (int) n;
}


static int
bio_puts(BIO *b, const char *s)
{
    return bio_write(b, s, (int) strlen(s));
}


static long
bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    switch (cmd) {
    case BIO_CTRL_FLUSH:
        return 1;
    case BIO_CTRL_EOF:
        return BIO_test_flags(b, BIO_FLAGS_IN_EOF) != 0;
    default:
        return 0;
    }
}


static int
bio_create(BIO *b)
{
    BIO_set_init(b, 1);
    return 1;
}


/* The fd belongs to the connection, which closes it after SSL_free. */
static int
bio_destroy(BIO *b)
{
    return 1;
}


static void
bio_method_init(void)
{
    BIO_METHOD *m;

    m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK,
                     "wtt redis socket");
    if (m == NULL) {
        return;
    }
    if (!BIO_meth_set_write(m, bio_write)
        || !BIO_meth_set_read(m, bio_read)
        || !BIO_meth_set_puts(m, bio_puts)
        || !BIO_meth_set_ctrl(m, bio_ctrl)
        || !BIO_meth_set_create(m, bio_create)
        || !BIO_meth_set_destroy(m, bio_destroy))
    {
        BIO_meth_free(m);
        return;
    }
    bio_method = m;
}


/* ---------------------------------------------------------------------------
 * Connection lifetime
 * ------------------------------------------------------------------------- */

/*
 * Releases the socket, the TLS session and the reader (the buffers stay
 * for reuse until close). Sends a TLS close_notify first when `graceful`.
 * Safe to call any number of times.
 */
static void
release_transport(conn_t *c, int graceful)
{
    if (c->ssl != NULL) {
        if (graceful) {
            ERR_clear_error();
            (void) SSL_shutdown(c->ssl);
        }
        SSL_free(c->ssl);
        c->ssl = NULL;
    }
    ERR_clear_error();
    if (c->ctx != NULL) {
        SSL_CTX_free(c->ctx);
        c->ctx = NULL;
    }
    if (c->has_fd) {
        close(c->fd);
        c->has_fd = 0;
        c->fd = -1;
    }
    if (c->reply != NULL) {
        wtt_redis_reply_free_reply(c->reply);
        c->reply = NULL;
    }
    if (c->reader != NULL) {
        wtt_redis_reply_free(c->reader);
        free(c->reader);
        c->reader = NULL;
    }
}


/* Releases everything `c` owns. Safe to call twice. */
static void
release_all(conn_t *c)
{
    release_transport(c, !c->broken && !c->busy);
    free(c->rbuf);
    c->rbuf = NULL;
    free(c->wbuf);
    c->wbuf = NULL;
    c->wlen = c->wcap = 0;
    free(c->argv);
    c->argv = NULL;
    free(c->argvlen);
    c->argvlen = NULL;
    free(c->nums);
    c->nums = NULL;
    c->argcap = 0;
}


/* A transport failure: errstr is already set; the stream is unusable. */
static int
fail_broken(conn_t *c)
{
    c->broken = 1;
    c->busy = 0;
    release_transport(c, 0);
    return -1;
}


/* Sets TCP_NODELAY and SO_KEEPALIVE: commands are small and latency
 * bound, and a dead peer on an idle connection is found eventually. */
static void
tune_socket(int fd, int family)
{
    int one = 1;

    if (family == AF_INET || family == AF_INET6) {
        (void) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        (void) setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
    }
}


static int
set_rcvtimeo(int fd, double seconds)
{
    struct timeval tv;

    tv.tv_sec = (time_t) seconds;
    tv.tv_usec = (suseconds_t) ((seconds - (double) tv.tv_sec) * 1e6);
    if (tv.tv_sec == 0 && tv.tv_usec == 0) {
        tv.tv_usec = 1;         /* 0 would mean "forever" */
    }
    return setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
}


/*
 * Connects a fresh non-blocking socket to `sa`. Returns the fd, or -1 with
 * the reason in c->errstr ("connection refused", "timeout").
 */
static int
connect_addr(conn_t *c, int family, int socktype, int protocol,
    const struct sockaddr *sa, socklen_t salen, uint64_t deadline)
{
    socklen_t  olen = sizeof(int);
    char       ebuf[96];
    int        fd, rc, soerr = 0;

    fd = socket(family, socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, protocol);
    if (fd < 0) {
        set_error(c, ERR_IO, "socket: %s",
                  wtt_strerror(errno, ebuf, sizeof(ebuf)));
        return -1;
    }
    /* EAGAIN (a full unix-socket backlog) did not start a connect: it is
     * a failure, not something to wait for. */
    rc = connect(fd, sa, salen);
    if (rc != 0 && errno != EINPROGRESS && errno != EINTR) {
        soerr = errno;
        goto fail;
    }
    if (rc != 0) {
        rc = wtt_wait_fd(fd, POLLOUT, deadline);
        if (rc == 0) {
            close(fd);
            set_error(c, ERR_TIMEOUT, "timeout");
            return -1;
        }
        if (rc < 0
            || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &olen) != 0)
        {
            soerr = errno;
        }
        if (soerr != 0) {
            goto fail;
        }
    }
    tune_socket(fd, family);
    /* Blocking from here on: every other send and recv says MSG_DONTWAIT,
     * and the plain reply wait blocks under SO_RCVTIMEO (get_reply). */
    c->rcvtimeo = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) == 0
                  && set_rcvtimeo(fd, c->timeout) == 0;
    return fd;

fail:
    close(fd);
    set_error(c, ERR_IO, "%s", wtt_strerror(soerr, ebuf, sizeof(ebuf)));
    return -1;
}


/* Connects c->fd to host:port, trying each address in turn. 0 or -1. */
static int
tcp_connect(conn_t *c, const char *host, int port, uint64_t deadline)
{
    struct addrinfo  hints, *res = NULL, *ai;
    char             portstr[16], ebuf[96];
    int              rc, fd = -1;

    snprintf(portstr, sizeof(portstr), "%d", port);
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    rc = getaddrinfo(host, portstr, &hints, &res);
    if (rc != 0) {
        if (rc == EAI_SYSTEM) {
            wtt_strerror(errno, ebuf, sizeof(ebuf));
        } else {
            wtt_lowercase(gai_strerror(rc), ebuf, sizeof(ebuf));
        }
        set_error(c, ERR_IO, "resolve %s: %s", host, ebuf);
        return -1;
    }
    set_error(c, ERR_IO, "no address for %s", host);
    for (ai = res; ai != NULL; ai = ai->ai_next) {
        fd = connect_addr(c, ai->ai_family, ai->ai_socktype, ai->ai_protocol,
                          ai->ai_addr, ai->ai_addrlen, deadline);
        if (fd >= 0 || c->err == ERR_TIMEOUT) {
            break;
        }
    }
    freeaddrinfo(res);
    if (fd < 0) {
        return -1;
    }
    c->fd = fd;
    c->has_fd = 1;
    return 0;
}


/* Connects c->fd to the unix socket at `path`. 0 or -1. */
static int
unix_connect(conn_t *c, const char *path, uint64_t deadline)
{
    struct sockaddr_un sa;
    int                fd;

    memset(&sa, 0, sizeof(sa));
    if (strlen(path) >= sizeof(sa.sun_path)) {
        set_error(c, ERR_IO, "unix socket path too long");
        return -1;
    }
    sa.sun_family = AF_UNIX;
    memcpy(sa.sun_path, path, strlen(path));
    fd = connect_addr(c, AF_UNIX, SOCK_STREAM, 0,
                      (const struct sockaddr *) &sa, sizeof(sa), deadline);
    if (fd < 0) {
        return -1;
    }
    c->fd = fd;
    c->has_fd = 1;
    return 0;
}


/* True when `s` is a numeric IPv4 or IPv6 address. */
static int
is_ip_literal(const char *s)
{
    unsigned char buf[sizeof(struct in6_addr)];

    return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}


/*
 * Builds the SSL_CTX for `o`: TLS 1.2 or later, peer verification against
 * o->ca_file / o->ca_path or the system store unless verify is off, and the
 * client certificate when given. Returns 0 or -1 (errstr set; c->ctx may be
 * set and is released with the connection).
 */
static int
tls_context(conn_t *c, const tls_opts_t *o)
{
    char ebuf[96];

    c->ctx = SSL_CTX_new(TLS_client_method());
    if (c->ctx == NULL) {
        set_error(c, ERR_TLS, "tls: %s",
                  tls_error(ebuf, sizeof(ebuf), "cannot create context"));
        return -1;
    }
    (void) SSL_CTX_set_min_proto_version(c->ctx, TLS1_2_VERSION);
    SSL_CTX_set_mode(c->ctx, SSL_MODE_ENABLE_PARTIAL_WRITE
                             | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);

    if (o->verify) {
        SSL_CTX_set_verify(c->ctx, SSL_VERIFY_PEER, NULL);
        if (o->ca_file != NULL || o->ca_path != NULL) {
            if (SSL_CTX_load_verify_locations(c->ctx, o->ca_file,
                                              o->ca_path) != 1)
            {
                set_error(c, ERR_TLS, "tls: cannot load ca %s: %s",
                          o->ca_file ? o->ca_file : o->ca_path,
                          tls_error(ebuf, sizeof(ebuf), "unknown error"));
                return -1;
            }
        } else if (SSL_CTX_set_default_verify_paths(c->ctx) != 1) {
            set_error(c, ERR_TLS, "tls: cannot load system ca store: %s",
                      tls_error(ebuf, sizeof(ebuf), "unknown error"));
            return -1;
        }
    } else {
        SSL_CTX_set_verify(c->ctx, SSL_VERIFY_NONE, NULL);
    }

    if (o->cert != NULL) {
        if (SSL_CTX_use_certificate_chain_file(c->ctx, o->cert) != 1) {
            set_error(c, ERR_TLS, "tls: cannot load cert %s: %s", o->cert,
                      tls_error(ebuf, sizeof(ebuf), "unknown error"));
            return -1;
        }
        if (SSL_CTX_use_PrivateKey_file(c->ctx,
                                        o->key ? o->key : o->cert,
                                        SSL_FILETYPE_PEM) != 1
            || SSL_CTX_check_private_key(c->ctx) != 1)
        {
            set_error(c, ERR_TLS, "tls: cannot load key %s: %s",
                      o->key ? o->key : o->cert,
                      tls_error(ebuf, sizeof(ebuf), "unknown error"));
            return -1;
        }
    }
    return 0;
}


/*
 * Runs the TLS handshake on c->fd. The name checked against the server's
 * certificate is o->server_name or `host`: an IP literal is matched against
 * the certificate's IP SANs and is not sent as SNI (RFC 6066), a DNS name is
 * both. Returns 0 or -1 (errstr set).
 */
static int
tls_handshake(conn_t *c, const tls_opts_t *o, const char *host,
    uint64_t deadline)
{
    const char  *name = o->server_name ? o->server_name : host;
    BIO         *bio;
    char         ebuf[96];
    long         vr;
    int          rc, e = SSL_ERROR_NONE, ip;

    pthread_once(&bio_once, bio_method_init);
    if (bio_method == NULL) {
        set_error(c, ERR_TLS, "tls: cannot create bio method");
        return -1;
    }
    if (tls_context(c, o) != 0) {
        return -1;
    }
    c->ssl = SSL_new(c->ctx);
    bio = c->ssl != NULL ? BIO_new(bio_method) : NULL;
    if (bio == NULL) {
        set_error(c, ERR_TLS, "tls: %s",
                  tls_error(ebuf, sizeof(ebuf), "out of memory"));
        return -1;
    }
    BIO_set_data(bio, (void *) (intptr_t) c->fd);
    SSL_set_bio(c->ssl, bio, bio);               /* ssl owns bio */
    SSL_set_connect_state(c->ssl);

    ip = is_ip_literal(name);
    if (!ip && SSL_set_tlsext_host_name(c->ssl, name) != 1) {
        set_error(c, ERR_TLS, "tls: bad server name %s", name);
        return -1;
    }
    if (o->verify) {
        rc = ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), name)
                : SSL_set1_host(c->ssl, name);
        if (rc != 1) {
            set_error(c, ERR_TLS, "tls: cannot verify name %s", name);
            return -1;
        }
    }

    for (;;) {
        ERR_clear_error();
        rc = SSL_connect(c->ssl);
        if (rc == 1) {
            return 0;
        }
        e = SSL_get_error(c->ssl, rc);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
            rc = wtt_wait_fd(c->fd, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT,
                         deadline);
            if (rc == 0) {
                set_error(c, ERR_TIMEOUT, "tls handshake: timeout");
                return -1;
            }
            if (rc < 0) {
                set_error(c, ERR_IO, "tls handshake: %s",
                          wtt_strerror(errno, ebuf, sizeof(ebuf)));
                return -1;
            }
            continue;
        }
        break;
    }

    vr = SSL_get_verify_result(c->ssl);
    if (o->verify && vr != X509_V_OK) {
        ERR_clear_error();
        set_error(c, ERR_TLS, "tls handshake: certificate verify failed: %s",
                  X509_verify_cert_error_string(vr));
    } else if (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0) {
        set_error(c, ERR_TLS, "tls handshake: %s",
                  errno ? wtt_strerror(errno, ebuf, sizeof(ebuf))
                        : "connection closed by server");
    } else {
        set_error(c, ERR_TLS, "tls handshake: %s",
                  tls_error(ebuf, sizeof(ebuf), "failed"));
    }
    return -1;
}


/* ---------------------------------------------------------------------------
 * Reading and writing
 * ------------------------------------------------------------------------- */

/*
 * One recv on a plain connection, fed to the reader: with MSG_DONTWAIT as
 * read_some, or (flags 0) blocking for up to c->timeout through
 * SO_RCVTIMEO, where running out of time is ERR_TIMEOUT. Returns as
 * read_some.
 */
static int
plain_recv(conn_t *c, int flags, short *want)
{
    char    ebuf[96];
    ssize_t n;

    do {
        n = recv(c->fd, c->rbuf, RBUF_SIZE, flags);
    } while (n < 0 && errno == EINTR);
    if (n == 0) {
        set_error(c, ERR_EOF, "connection closed by server");
        return -1;
    }
    if (n < 0) {
        if ((errno == EAGAIN || errno == EWOULDBLOCK)
            && (flags & MSG_DONTWAIT))
        {
            *want = POLLIN;
            return 0;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            set_error(c, ERR_TIMEOUT, "timeout");
        } else {
            set_error(c, errno == ECONNRESET ? ERR_EOF : ERR_IO, "%s",
                      wtt_strerror(errno, ebuf, sizeof(ebuf)));
        }
        return -1;
    }
    if (wtt_redis_reply_feed(c->reader, c->rbuf, (size_t) n) != 0) {
        set_error(c, ERR_OOM, "reader: %s", c->reader->errstr);
        return -1;
    }
    return 1;
}


/*
 * One read from the connection, fed to the reader. Returns 1 when bytes
 * arrived, 0 when it would block (*want says what to wait for: POLLIN, or
 * POLLOUT when TLS must write first), or -1 with errstr set.
 */
static int
read_some(conn_t *c, short *want)
{
    char    ebuf[96];
    ssize_t n;
    int     e;

    if (c->ssl != NULL) {
        ERR_clear_error();
        n = SSL_read(c->ssl, c->rbuf, RBUF_SIZE);
        if (n <= 0) {
            e = SSL_get_error(c->ssl, (int) n);
            switch (e) {
            case SSL_ERROR_WANT_READ:
                *want = POLLIN;
                return 0;
            case SSL_ERROR_WANT_WRITE:
                *want = POLLOUT;
                return 0;
            case SSL_ERROR_ZERO_RETURN:
                set_error(c, ERR_EOF, "connection closed by server");
                return -1;
            case SSL_ERROR_SYSCALL:
                if (ERR_peek_error() == 0) {
                    if (n == 0 || errno == 0) {
                        set_error(c, ERR_EOF, "connection closed by server");
                    } else {
                        set_error(c, ERR_IO, "%s",
                                  wtt_strerror(errno, ebuf, sizeof(ebuf)));
                    }
                    return -1;
                }
                /* fall through */
            default:
                if (BIO_eof(SSL_get_rbio(c->ssl))) {
                    ERR_clear_error();
                    set_error(c, ERR_EOF, "connection closed by server");
                } else {
                    set_error(c, ERR_TLS, "tls: %s",
                              tls_error(ebuf, sizeof(ebuf), "read failed"));
                }
                return -1;
            }
        }
    } else {
        return plain_recv(c, MSG_DONTWAIT, want);
    }

    if (wtt_redis_reply_feed(c->reader, c->rbuf, (size_t) n) != 0) {
        set_error(c, ERR_OOM, "reader: %s", c->reader->errstr);
        return -1;
    }
    return 1;
}


/*
 * One write of up to `len` bytes. Returns the byte count (> 0), 0 when it
 * would block (*want set), or -1 with errstr set.
 */
static ssize_t
write_some(conn_t *c, const char *buf, size_t len, short *want)
{
    char    ebuf[96];
    ssize_t n;
    int     e;

    if (c->ssl != NULL) {
        ERR_clear_error();
        n = SSL_write(c->ssl, buf, len > INT_MAX ? INT_MAX : (int) len);
        if (n > 0) {
            return n;
        }
        e = SSL_get_error(c->ssl, (int) n);
        if (e == SSL_ERROR_WANT_WRITE) {
            *want = POLLOUT;
            return 0;
        }
        if (e == SSL_ERROR_WANT_READ) {
            *want = POLLIN;
            return 0;
        }
        if (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0) {
            set_error(c, ERR_EOF, "%s", errno && errno != EPIPE
                      ? wtt_strerror(errno, ebuf, sizeof(ebuf))
                      : "connection closed by server");
            return -1;
        }
        set_error(c, ERR_TLS, "tls: %s",
                  tls_error(ebuf, sizeof(ebuf), "write failed"));
        return -1;
    }

    do {
        n = send(c->fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
    } while (n < 0 && errno == EINTR);
    if (n >= 0) {
        if (n == 0) {
            *want = POLLOUT;
        }
        return n;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
        *want = POLLOUT;
        return 0;
    }
    if (errno == EPIPE || errno == ECONNRESET) {
        set_error(c, ERR_EOF, "connection closed by server");
    } else {
        set_error(c, ERR_IO, "%s", wtt_strerror(errno, ebuf, sizeof(ebuf)));
    }
    return -1;
}


/*
 * Sends all `len` bytes of `buf`. While the socket is full it also reads
 * whatever replies have arrived into the reader, so a long pipeline can
 * never deadlock against a server that is itself blocked writing. Fails
 * after c->timeout seconds without progress either way. Returns 0, or -1
 * with errstr set (the caller breaks the connection).
 */
static int
send_all(conn_t *c, const char *buf, size_t len)
{
    uint64_t  deadline = wtt_deadline_after(c->timeout);
    size_t    off = 0;
    ssize_t   n;
    short     want = POLLOUT, rwant;
    char      ebuf[96];
    int       rc;

    while (off < len) {
        n = write_some(c, buf + off, len - off, &want);
        if (n < 0) {
            return -1;
        }
        if (n > 0) {
            off += (size_t) n;
            deadline = wtt_deadline_after(c->timeout);
            continue;
        }
        /* A TLS write that wants to read must be retried as is; only a
         * full socket is a moment to drain replies. */
        rc = wtt_wait_fd(c->fd, want == POLLOUT ? POLLOUT | POLLIN : POLLIN,
                     deadline);
        if (rc == 0) {
            set_error(c, ERR_TIMEOUT, "timeout");
            return -1;
        }
        if (rc < 0) {
            set_error(c, ERR_IO, "poll: %s",
                      wtt_strerror(errno, ebuf, sizeof(ebuf)));
            return -1;
        }
        if (want == POLLOUT && (rc & (POLLIN | POLLHUP | POLLERR))
            && !(rc & POLLOUT))
        {
            rc = read_some(c, &rwant);
            if (rc < 0) {
                return -1;
            }
            if (rc > 0) {
                deadline = wtt_deadline_after(c->timeout);
            }
        }
    }
    return 0;
}


/*
 * Waits for the next whole reply and stores it in *reply (owned by the
 * caller). With `idle` set, `deadline` moves forward by c->timeout after
 * every read that brings bytes; otherwise it is fixed. Returns 0, or -1
 * with errstr set (ERR_TIMEOUT for a timeout).
 */
static int
get_reply(conn_t *c, uint64_t deadline, int idle, redisReply **reply)
{
    redisReply *r = NULL;
    short       want = POLLIN;
    char        ebuf[96];
    int         rc, just_read = 0;

    for (;;) {
        if (wtt_redis_reply_get(c->reader, &r) != 0) {
            set_error(c, ERR_PROTOCOL, "protocol error: %s",
                      c->reader->errstr);
            return -1;
        }
        if (r != NULL) {
            *reply = r;
            return 0;
        }
        /* Right after a command the reply is rarely there yet: wait for
         * it in one blocking recv bounded by SO_RCVTIMEO (the same "no
         * progress for c->timeout" rule as the deadline that `idle`
         * moves), instead of a poll and then a recv: one system call less
         * per round trip, which is most of a small command's cost. More
         * of a big reply is read straight away. */
        if (!just_read && c->ssl == NULL && idle && c->rcvtimeo) {
            rc = plain_recv(c, 0, &want);
            if (rc < 0) {
                return -1;
            }
            just_read = 1;
            deadline = wtt_deadline_after(c->timeout);
            continue;
        }
        if (!just_read && c->ssl == NULL) {
            rc = wtt_wait_fd(c->fd, POLLIN, deadline);
            if (rc == 0) {
                set_error(c, ERR_TIMEOUT, "timeout");
                return -1;
            }
            if (rc < 0) {
                set_error(c, ERR_IO, "poll: %s",
                          wtt_strerror(errno, ebuf, sizeof(ebuf)));
                return -1;
            }
        }
        rc = read_some(c, &want);
        just_read = rc > 0;
        if (rc < 0) {
            return -1;
        }
        if (rc > 0) {
            if (idle) {
                deadline = wtt_deadline_after(c->timeout);
            }
            continue;
        }
        /* Decrypted bytes waiting inside OpenSSL never wake poll(). */
        if (c->ssl != NULL && want == POLLIN && SSL_pending(c->ssl) > 0) {
            continue;
        }
        rc = wtt_wait_fd(c->fd, want, deadline);
        if (rc == 0) {
            set_error(c, ERR_TIMEOUT, "timeout");
            return -1;
        }
        if (rc < 0) {
            set_error(c, ERR_IO, "poll: %s",
                      wtt_strerror(errno, ebuf, sizeof(ebuf)));
            return -1;
        }
    }
}


/* ---------------------------------------------------------------------------
 * Commands: Lua arguments to RESP
 * ------------------------------------------------------------------------- */

/* Makes room for `n` arguments in the scratch arrays. 0 or -1 (OOM). */
static int
reserve_args(conn_t *c, size_t n)
{
    const char **argv;
    size_t      *argvlen;
    char        *nums;
    size_t       cap;

    if (n <= c->argcap) {
        return 0;
    }
    cap = c->argcap ? c->argcap : 16;
    while (cap < n) {
        cap *= 2;
    }
    argv = realloc(c->argv, cap * sizeof(*argv));
    if (argv == NULL) {
        return -1;
    }
    c->argv = argv;
    argvlen = realloc(c->argvlen, cap * sizeof(*argvlen));
    if (argvlen == NULL) {
        return -1;
    }
    c->argvlen = argvlen;
    nums = realloc(c->nums, cap * NUM_SLOT);
    if (nums == NULL) {
        return -1;
    }
    c->nums = nums;
    c->argcap = cap;
    return 0;
}


/*
 * Formats a Lua number as Redis expects it: integral values without a
 * fraction or exponent (so 2^53 is "9007199254740992", not LuaJIT's
 * "9.007199254741e+15"), others with 17 significant digits, which read back
 * as the same double. Returns the length written into `buf` (NUM_SLOT).
 */
static size_t
format_number(lua_Number n, char *buf)
{
    int len;

    if (n == floor(n) && fabs(n) < 9.2e18) {
        len = snprintf(buf, NUM_SLOT, "%lld", (long long) n);
    } else if (isinf(n)) {
        len = snprintf(buf, NUM_SLOT, "%s", n > 0 ? "inf" : "-inf");
    } else {
        len = snprintf(buf, NUM_SLOT, "%.17g", n);
    }
    return (size_t) len;
}


/*
 * Raises unless every value of the command is a string or a number and
 * there is at least one. The command is the table at `t` (when t != 0) or
 * the `n` stack slots from `first`. `what` names it in the message. Stack
 * unchanged.
 */
static void
check_command(lua_State *L, int t, int first, int n, const char *what)
{
    int i, type;

    if (n < 1) {
        luaL_error(L, "%s: command name expected", what);
    }
    for (i = 0; i < n; i++) {
        if (t != 0) {
            lua_rawgeti(L, t, i + 1);                    /* ... v */
            type = lua_type(L, -1);
            lua_pop(L, 1);                               /* ... */
        } else {
            type = lua_type(L, first + i);
        }
        if (type != LUA_TSTRING && type != LUA_TNUMBER) {
            if (t == 0) {
                luaL_argerror(L, first + i,
                              "command arguments must be strings or numbers");
            }
            luaL_error(L, "%s: argument %d must be a string or number, "
                       "got %s", what, i + 1, lua_typename(L, type));
        }
    }
}


/*
 * Formats one command (see check_command for `t`, `first`, `n`, which it
 * must have passed) with redisFormatCommandArgv. Strings are referenced in
 * place: they stay anchored by the table or the stack. Stack unchanged;
 * never raises. Returns the malloc'd RESP text (caller frees with
 * redisFreeCommand) and its length in *len, or NULL (out of memory).
 */
static char *
format_command(lua_State *L, conn_t *c, int t, int first, int n, size_t *len)
{
    char  *cmd = NULL;
    int    i, rc;
    size_t l;

    if (reserve_args(c, (size_t) n) != 0) {
        return NULL;
    }
    for (i = 0; i < n; i++) {
        if (t != 0) {
            lua_rawgeti(L, t, i + 1);                    /* ... v */
        } else {
            lua_pushvalue(L, first + i);                 /* ... v */
        }
        if (lua_type(L, -1) == LUA_TNUMBER) {
            c->argv[i] = c->nums + (size_t) i * NUM_SLOT;
            c->argvlen[i] = format_number(lua_tonumber(L, -1),
                                          c->nums + (size_t) i * NUM_SLOT);
        } else {
            c->argv[i] = lua_tolstring(L, -1, &l);
            c->argvlen[i] = l;
        }
        lua_pop(L, 1);                                   /* ... */
    }
    rc = redisFormatCommandArgv(&cmd, n, c->argv, c->argvlen);
    if (rc < 0) {
        return NULL;
    }
    *len = (size_t) rc;
    return cmd;
}


/* Appends `len` bytes to c->wbuf. 0 or -1 (OOM). */
static int
wbuf_append(conn_t *c, const char *data, size_t len)
{
    size_t  cap;
    char   *p;

    if (c->wlen + len > c->wcap) {
        cap = c->wcap ? c->wcap : 16384;
        while (cap < c->wlen + len) {
            cap *= 2;
        }
        p = realloc(c->wbuf, cap);
        if (p == NULL) {
            return -1;
        }
        c->wbuf = p;
        c->wcap = cap;
    }
    memcpy(c->wbuf + c->wlen, data, len);
    c->wlen += len;
    return 0;
}


/* Empties c->wbuf, freeing it when a huge pipeline grew it. */
static void
wbuf_reset(conn_t *c)
{
    c->wlen = 0;
    if (c->wcap > WBUF_KEEP) {
        free(c->wbuf);
        c->wbuf = NULL;
        c->wcap = 0;
    }
}


/* ---------------------------------------------------------------------------
 * Replies: redisReply to Lua
 * ------------------------------------------------------------------------- */

/*
 * Pushes the Lua value of `r`. Stack: before [...], after [... value].
 * `nested`: inside an array or a pipeline, where nil is the null sentinel
 * and an error is {err = msg}. At the top level the caller handles errors
 * and nil itself. May raise a Lua memory error; the reply stays owned by
 * the connection (c->reply) so nothing leaks.
 */
static void
push_reply(lua_State *L, redisReply *r, int nested)
{
    size_t i;

    switch (r->type) {
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
        lua_pushlstring(L, r->str, r->len);              /* ... s */
        break;
    case REDIS_REPLY_INTEGER:
        lua_pushnumber(L, (lua_Number) r->integer);      /* ... n */
        break;
    case REDIS_REPLY_ERROR:
        lua_createtable(L, 0, 1);                        /* ... t */
        lua_pushlstring(L, r->str, r->len);              /* ... t msg */
        lua_setfield(L, -2, "err");                      /* ... t */
        break;
    case REDIS_REPLY_ARRAY:
        luaL_checkstack(L, 4, "redis reply nested too deep");
        lua_createtable(L, r->elements > INT_MAX ? 0 : (int) r->elements,
                        0);                              /* ... t */
        for (i = 0; i < r->elements; i++) {
            push_reply(L, r->element[i], 1);             /* ... t v */
            lua_rawseti(L, -2, (int) i + 1);             /* ... t */
        }
        break;
    case REDIS_REPLY_NIL:
    default:
        if (nested) {
            lua_pushlightuserdata(L, NULL);              /* ... null */
        } else {
            lua_pushnil(L);                              /* ... nil */
        }
        break;
    }
}


/*
 * Pushes the top-level result of `r` and frees it: the value, nil for a nil
 * reply, or nil + message for an error reply. Returns the number pushed.
 */
static int
push_top_reply(lua_State *L, conn_t *c, redisReply *r)
{
    int n = 1;

    c->reply = r;
    if (r->type == REDIS_REPLY_ERROR) {
        lua_pushnil(L);                                  /* nil */
        lua_pushlstring(L, r->str, r->len);              /* nil msg */
        n = 2;
    } else {
        push_reply(L, r, 0);                             /* v */
    }
    c->reply = NULL;
    wtt_redis_reply_free_reply(r);
    return n;
}


/* ---------------------------------------------------------------------------
 * Lua bindings
 * ------------------------------------------------------------------------- */

static conn_t *
check_conn(lua_State *L)
{
    return luaL_checkudata(L, 1, CONN_MT);
}


/*
 * Readies `c` for a command named `op`. Returns 0, or pushes nil and the
 * reason (closed, or broken with what broke it) and returns 2. A `busy`
 * left by a Lua error that unwound the previous command means replies are
 * unaccounted for, which breaks the connection.
 */
static int
enter(lua_State *L, conn_t *c, const char *op)
{
    if (c->reply != NULL) {
        wtt_redis_reply_free_reply(c->reply);
        c->reply = NULL;
    }
    if (c->busy && !c->broken && !c->closed) {
        set_error(c, ERR_PROTOCOL, "interrupted by a lua error");
        fail_broken(c);
    }
    if (c->closed) {
        lua_pushnil(L);
        lua_pushliteral(L, "closed");
        return 2;
    }
    if (c->broken) {
        lua_pushnil(L);
        lua_pushfstring(L, "%s failed: connection broken: %s", op,
                        c->errstr);
        return 2;
    }
    return 0;
}


/* Breaks `c` and pushes nil, "<op> failed: <errstr>". Returns 2. */
static int
push_broken(lua_State *L, conn_t *c, const char *op)
{
    fail_broken(c);
    lua_pushnil(L);
    lua_pushfstring(L, "%s failed: %s", op, c->errstr);
    return 2;
}


/*
 * Reads an optional timeout (seconds, > 0) from field `name` of the table
 * at `idx` (0: no table). Raises when it is not a positive number.
 */
static double
opt_timeout(lua_State *L, int idx, const char *name, double def)
{
    double t;

    if (idx == 0) {
        return def;
    }
    lua_getfield(L, idx, name);                          /* v */
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        return def;
    }
    if (lua_type(L, -1) != LUA_TNUMBER || !(lua_tonumber(L, -1) > 0)) {
        luaL_argerror(L, idx, lua_pushfstring(L,
                      "'%s' must be a number > 0", name));
    }
    t = lua_tonumber(L, -1);
    lua_pop(L, 1);                                       /* */
    return t > MAX_TIMEOUT_S ? MAX_TIMEOUT_S : t;
}


/*
 * core.connect(host, port, opts?) -> conn | nil, err
 *
 * host is a name or an IP address, or, with port nil, the path of a unix
 * socket (it must start with '/'). opts:
 *   tls              boolean, default false
 *   verify           verify the server certificate and name, default true
 *   ca_file, ca_path trust these CAs instead of the system store
 *   cert, key        client certificate chain and key (PEM; key defaults
 *                    to the cert file)
 *   server_name      name for SNI and certificate checks (default host)
 *   connect_timeout  seconds for connect + TLS handshake, default 5
 *   timeout          seconds a command may wait without progress, def. 10
 * Errors: "connect failed: <host>:<port>: <reason>".
 */
static int
l_connect(lua_State *L)
{
    static const char *const known[] = {
        "tls", "verify", "ca_file", "ca_path", "cert", "key", "server_name",
        "connect_timeout", "timeout", NULL
    };
    const char  *host = luaL_checkstring(L, 1);
    tls_opts_t   tls;
    conn_t      *c;
    uint64_t     deadline;
    double       ctimeout, timeout;
    lua_Integer  port = 0;
    int          opts = 0, rc, is_unix;

    is_unix = lua_isnoneornil(L, 2);
    if (is_unix) {
        luaL_argcheck(L, host[0] == '/', 1,
                      "unix socket path must be absolute (or give a port)");
    } else {
        port = luaL_checkinteger(L, 2);
        luaL_argcheck(L, port > 0 && port < 65536, 2,
                      "port must be 1..65535");
    }
    if (!lua_isnoneornil(L, 3)) {
        luaL_checktype(L, 3, LUA_TTABLE);
        opts = 3;
        wtt_lua_check_opts(L, opts, known);
    }
    memset(&tls, 0, sizeof(tls));
    tls.enabled = wtt_lua_opt_bool(L, opts, "tls", 0);
    tls.verify = wtt_lua_opt_bool(L, opts, "verify", 1);
    tls.ca_file = wtt_lua_opt_string(L, opts, "ca_file", NULL, NULL);
    tls.ca_path = wtt_lua_opt_string(L, opts, "ca_path", NULL, NULL);
    tls.cert = wtt_lua_opt_string(L, opts, "cert", NULL, NULL);
    tls.key = wtt_lua_opt_string(L, opts, "key", NULL, NULL);
    tls.server_name = wtt_lua_opt_string(L, opts, "server_name", NULL,
                                         NULL);
    ctimeout = opt_timeout(L, opts, "connect_timeout",
                           DEFAULT_CONNECT_TIMEOUT_S);
    timeout = opt_timeout(L, opts, "timeout", DEFAULT_TIMEOUT_S);
    luaL_argcheck(L, tls.key == NULL || tls.cert != NULL, 3,
                  "'key' needs 'cert'");

    lua_settop(L, 3);                                    /* host port opts */
    c = lua_newuserdata(L, sizeof(conn_t));              /* ... c */
    memset(c, 0, sizeof(conn_t));
    c->fd = -1;
    luaL_getmetatable(L, CONN_MT);                       /* ... c mt */
    lua_setmetatable(L, -2);                             /* ... c */
    c->timeout = timeout;

    c->rbuf = wtt_trymalloc(RBUF_SIZE);
    c->reader = calloc(1, sizeof(*c->reader));
    if (c->rbuf == NULL || c->reader == NULL) {
        set_error(c, ERR_OOM, "out of memory");
        goto fail;
    }

    deadline = wtt_deadline_after(ctimeout);
    rc = is_unix ? unix_connect(c, host, deadline)
                 : tcp_connect(c, host, (int) port, deadline);
    if (rc != 0) {
        goto fail;
    }
    if (tls.enabled
        && tls_handshake(c, &tls, is_unix ? "localhost" : host, deadline)
           != 0)
    {
        goto fail;
    }
    return 1;                                            /* ... c */

fail:
    release_all(c);
    c->closed = 1;
    lua_pushnil(L);                                      /* ... c nil */
    if (is_unix) {
        lua_pushfstring(L, "connect failed: %s: %s", host, c->errstr);
    } else {
        lua_pushfstring(L, "connect failed: %s:%d: %s", host, (int) port,
                        c->errstr);
    }                                                    /* ... c nil err */
    return 2;
}


/*
 * Sends one command (table at `t`, or `n` stack values from `first`) and
 * returns its reply to Lua, as conn:call and conn:callv do.
 */
static int
do_call(lua_State *L, conn_t *c, int t, int first, int n, const char *op)
{
    redisReply *reply;
    char       *cmd;
    size_t      len;
    int         rc;

    c->busy = 1;
    cmd = format_command(L, c, t, first, n, &len);
    if (cmd == NULL) {
        c->busy = 0;
        lua_pushnil(L);
        lua_pushfstring(L, "%s failed: out of memory", op);
        return 2;
    }
    rc = send_all(c, cmd, len);
    redisFreeCommand(cmd);
    if (rc != 0
        || get_reply(c, wtt_deadline_after(c->timeout), 1, &reply) != 0)
    {
        return push_broken(L, c, op);
    }
    c->busy = 0;
    return push_top_reply(L, c, reply);
}


/*
 * conn:call(cmd, ...) -> reply | nil | nil, err
 *
 * One command; arguments are strings (binary-safe) or numbers. An error
 * reply gives nil, "<redis error text>" and leaves the connection usable;
 * a transport failure gives nil, "call failed: <reason>" and breaks it
 * (conn:broken() is then true). A nil reply gives a single nil.
 */
static int
l_call(lua_State *L)
{
    conn_t *c = check_conn(L);
    int     n = lua_gettop(L) - 1, rc;

    check_command(L, 0, 2, n, "call");
    if ((rc = enter(L, c, "call")) != 0) {
        return rc;
    }
    return do_call(L, c, 0, 2, n, "call");
}


/* conn:callv(argv) -> as conn:call, with the command in an array, so that
 * any number of arguments can be sent without unpack's limits. */
static int
l_callv(lua_State *L)
{
    conn_t *c = check_conn(L);
    int     n, rc;

    luaL_checktype(L, 2, LUA_TTABLE);
    n = (int) lua_objlen(L, 2);
    check_command(L, 2, 0, n, "callv");
    if ((rc = enter(L, c, "call")) != 0) {
        return rc;
    }
    return do_call(L, c, 2, 0, n, "call");
}


/*
 * conn:pipeline(cmds) -> replies | nil, err
 *
 * cmds is an array of commands, each an array of strings/numbers. All are
 * sent (in batches, reading replies meanwhile) and all replies read; the
 * result has one entry per command: the value, `null` for a nil reply, or
 * {err = msg} for an error reply. A transport failure anywhere gives nil,
 * "pipeline failed: <reason>" and breaks the connection: which commands
 * ran is then unknown. An empty list returns an empty table.
 */
static int
l_pipeline(lua_State *L)
{
    conn_t     *c = check_conn(L);
    redisReply *reply;
    char       *cmd;
    uint64_t    deadline;
    size_t      len;
    int         n, i, m, rc;

    luaL_checktype(L, 2, LUA_TTABLE);
    lua_settop(L, 2);
    n = (int) lua_objlen(L, 2);
    for (i = 1; i <= n; i++) {
        lua_rawgeti(L, 2, i);                            /* c cmds t */
        if (!lua_istable(L, -1)) {
            luaL_error(L, "pipeline: command %d must be a table", i);
        }
        check_command(L, 3, 0, (int) lua_objlen(L, 3), "pipeline");
        lua_pop(L, 1);                                   /* c cmds */
    }
    if ((rc = enter(L, c, "pipeline")) != 0) {
        return rc;
    }
    lua_createtable(L, n, 0);                            /* c cmds res */

    c->busy = 1;
    wbuf_reset(c);
    for (i = 1; i <= n; i++) {
        lua_rawgeti(L, 2, i);                            /* c cmds res t */
        m = (int) lua_objlen(L, -1);
        cmd = format_command(L, c, lua_gettop(L), 0, m, &len);
        lua_pop(L, 1);                                   /* c cmds res */
        if (cmd == NULL) {
            set_error(c, ERR_OOM, "out of memory");
            return push_broken(L, c, "pipeline");
        }
        /* Big commands go out directly instead of being copied. */
        rc = 0;
        if (len >= WBUF_FLUSH) {
            if (c->wlen > 0) {
                rc = send_all(c, c->wbuf, c->wlen);
                c->wlen = 0;
            }
            if (rc == 0) {
                rc = send_all(c, cmd, len);
            }
        } else {
            rc = wbuf_append(c, cmd, len);
            if (rc != 0) {
                set_error(c, ERR_OOM, "out of memory");
            } else if (c->wlen >= WBUF_FLUSH) {
                rc = send_all(c, c->wbuf, c->wlen);
                c->wlen = 0;
            }
        }
        redisFreeCommand(cmd);
        if (rc != 0) {
            wbuf_reset(c);
            return push_broken(L, c, "pipeline");
        }
    }
    if (c->wlen > 0) {
        rc = send_all(c, c->wbuf, c->wlen);
        wbuf_reset(c);
        if (rc != 0) {
            return push_broken(L, c, "pipeline");
        }
    }
    wbuf_reset(c);

    deadline = wtt_deadline_after(c->timeout);
    for (i = 1; i <= n; i++) {
        if (get_reply(c, deadline, 1, &reply) != 0) {
            return push_broken(L, c, "pipeline");
        }
        deadline = wtt_deadline_after(c->timeout);
        c->reply = reply;
        push_reply(L, reply, 1);                         /* c cmds res v */
        c->reply = NULL;
        wtt_redis_reply_free_reply(reply);
        lua_rawseti(L, -2, i);                           /* c cmds res */
    }
    c->busy = 0;
    return 1;
}


/* Sends one command (see do_call for `t`, `first`, `n`) without reading
 * its reply. Returns true or nil, "write failed: ..." (broken). */
static int
do_write(lua_State *L, conn_t *c, int t, int first, int n)
{
    char   *cmd;
    size_t  len;
    int     rc;

    c->busy = 1;
    cmd = format_command(L, c, t, first, n, &len);
    if (cmd == NULL) {
        c->busy = 0;
        lua_pushnil(L);
        lua_pushliteral(L, "write failed: out of memory");
        return 2;
    }
    rc = send_all(c, cmd, len);
    redisFreeCommand(cmd);
    if (rc != 0) {
        return push_broken(L, c, "write");
    }
    c->busy = 0;
    lua_pushboolean(L, 1);
    return 1;
}


/*
 * conn:write(cmd, ...) -> true | nil, err
 *
 * Sends one command without reading its reply (SUBSCRIBE and friends; the
 * replies come through conn:read). A failure breaks the connection.
 */
static int
l_write(lua_State *L)
{
    conn_t *c = check_conn(L);
    int     n = lua_gettop(L) - 1, rc;

    check_command(L, 0, 2, n, "write");
    if ((rc = enter(L, c, "write")) != 0) {
        return rc;
    }
    return do_write(L, c, 0, 2, n);
}


/* conn:writev(argv) -> as conn:write, with the command in an array. */
static int
l_writev(lua_State *L)
{
    conn_t *c = check_conn(L);
    int     n, rc;

    luaL_checktype(L, 2, LUA_TTABLE);
    n = (int) lua_objlen(L, 2);
    check_command(L, 2, 0, n, "writev");
    if ((rc = enter(L, c, "write")) != 0) {
        return rc;
    }
    return do_write(L, c, 2, 0, n);
}


/*
 * conn:read(timeout?) -> reply | nil | nil, "timeout" | nil, err
 *
 * Waits at most `timeout` seconds (default: the connection's timeout; 0
 * only takes a reply that is already there) for the next whole reply,
 * mapped as conn:call maps it. "timeout" leaves the connection usable, and
 * bytes of a reply that was partly received are kept for the next read;
 * other failures give "read failed: <reason>" and break it.
 */
static int
l_read(lua_State *L)
{
    conn_t     *c = check_conn(L);
    redisReply *reply;
    double      t;
    int         rc;

    if (lua_isnoneornil(L, 2)) {
        t = c->timeout;
    } else {
        t = luaL_checknumber(L, 2);
        luaL_argcheck(L, t >= 0, 2, "timeout must be >= 0");
        if (t > MAX_TIMEOUT_S) {
            t = MAX_TIMEOUT_S;
        }
    }
    if ((rc = enter(L, c, "read")) != 0) {
        return rc;
    }
    c->busy = 1;
    if (get_reply(c, wtt_deadline_after(t), 0, &reply) != 0) {
        if (c->err == ERR_TIMEOUT) {
            c->busy = 0;
            lua_pushnil(L);
            lua_pushliteral(L, "timeout");
            return 2;
        }
        return push_broken(L, c, "read");
    }
    c->busy = 0;
    return push_top_reply(L, c, reply);
}


/*
 * conn:alive() -> true | false, err
 *
 * Checks, without blocking, that the server has not closed the connection
 * since the last command (a restart, an idle timeout, CLIENT KILL), so the
 * caller can reconnect before sending instead of losing a command. Data
 * nobody asked for also breaks the connection; TLS records that carry no
 * data (session tickets) do not.
 */
static int
l_alive(lua_State *L)
{
    conn_t *c = check_conn(L);
    short   want;
    int     rc;

    if ((rc = enter(L, c, "check")) != 0) {
        lua_pushboolean(L, 0);
        lua_replace(L, -3);
        return 2;
    }
    for (;;) {
        if (c->ssl == NULL || SSL_pending(c->ssl) == 0) {
            rc = wtt_wait_fd(c->fd, POLLIN, 0);
            if (rc == 0) {
                break;
            }
        }
        rc = read_some(c, &want);
        if (rc == 0) {
            break;
        }
        if (rc > 0) {
            set_error(c, ERR_PROTOCOL, "unexpected data from server");
        }
        fail_broken(c);
        lua_pushboolean(L, 0);
        lua_pushfstring(L, "connection lost: %s", c->errstr);
        return 2;
    }
    lua_pushboolean(L, 1);
    return 1;
}


/* conn:broken() -> true when a transport failure broke the connection */
static int
l_broken(lua_State *L)
{
    conn_t *c = check_conn(L);

    lua_pushboolean(L, c->broken);
    return 1;
}


/*
 * conn:fd() -> descriptor | nil: the socket, for a caller that waits on
 * it together with other descriptors (the fan-out hub, lua/wtt/fanout/).
 * Only to wait for it to become readable: every read and write still goes
 * through the connection. After a read(0) that timed out nothing is
 * buffered (not in OpenSSL either), so a readable socket is the one sign
 * of what comes next. nil once the connection is closed or broken.
 */
static int
l_fd(lua_State *L)
{
    conn_t *c = check_conn(L);

    if (!c->has_fd || c->closed || c->broken) {
        lua_pushnil(L);
        return 1;
    }
    lua_pushinteger(L, c->fd);
    return 1;
}


/* conn:settimeout(seconds) -> previous timeout */
static int
l_settimeout(lua_State *L)
{
    conn_t *c = check_conn(L);
    double  t = luaL_checknumber(L, 2);

    luaL_argcheck(L, t > 0, 2, "timeout must be > 0");
    lua_pushnumber(L, c->timeout);
    c->timeout = t > MAX_TIMEOUT_S ? MAX_TIMEOUT_S : t;
    if (c->fd >= 0 && c->rcvtimeo && set_rcvtimeo(c->fd, c->timeout) != 0) {
        c->rcvtimeo = 0;        /* the poll path still bounds the wait */
    }
    return 1;
}


/*
 * conn:close() and __gc: sends a TLS close_notify when the connection is
 * healthy, closes the socket and frees everything. Safe twice.
 */
static int
l_close(lua_State *L)
{
    conn_t *c = check_conn(L);

    release_all(c);
    c->closed = 1;
    return 0;
}


static int
l_tostring(lua_State *L)
{
    conn_t *c = check_conn(L);

    lua_pushfstring(L, "wtt.redis.conn (%s%s): %p",
                    c->closed ? "closed" : c->broken ? "broken" : "open",
                    c->ssl != NULL ? ", tls" : "", (void *) c);
    return 1;
}


/* core.sha1hex(s) -> 40 lowercase hex digits, as Redis names scripts */
static int
l_sha1hex(lua_State *L)
{
    static const char  hex[] = "0123456789abcdef";
    unsigned char      md[EVP_MAX_MD_SIZE];
    unsigned int       mdlen = 0, i;
    char               out[2 * EVP_MAX_MD_SIZE];
    size_t             len;
    const char        *s = luaL_checklstring(L, 1, &len);

    if (EVP_Digest(s, len, md, &mdlen, EVP_sha1(), NULL) != 1) {
        ERR_clear_error();
        return luaL_error(L, "sha1hex: digest failed");
    }
    for (i = 0; i < mdlen; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    lua_pushlstring(L, out, 2 * mdlen);
    return 1;
}


/* ---------------------------------------------------------------------------
 * Module
 * ------------------------------------------------------------------------- */

static const luaL_Reg conn_methods[] = {
    { "call",       l_call },
    { "callv",      l_callv },
    { "pipeline",   l_pipeline },
    { "write",      l_write },
    { "writev",     l_writev },
    { "read",       l_read },
    { "alive",      l_alive },
    { "broken",     l_broken },
    { "fd",         l_fd },
    { "settimeout", l_settimeout },
    { "close",      l_close },
    { "__gc",       l_close },
    { "__tostring", l_tostring },
    { NULL, NULL },
};


static const luaL_Reg redis_funcs[] = {
    { "connect", l_connect },
    { "sha1hex", l_sha1hex },
    { NULL, NULL },
};


/*
 * Opens `wtt.core.redis`. Stack: before [], after [module]. Registers the
 * "wtt.redis.conn" metatable and sets module.null to the
 * NULL light userdata. Returns 1.
 */
int
luaopen_wtt_redis(lua_State *L)
{
    wtt_lua_class(L, CONN_MT, conn_methods, conn_methods);

    lua_newtable(L);                                     /* m */
    luaL_register(L, NULL, redis_funcs);                 /* m */
    lua_pushlightuserdata(L, NULL);                      /* m null */
    lua_setfield(L, -2, "null");                         /* m */
    return 1;
}
