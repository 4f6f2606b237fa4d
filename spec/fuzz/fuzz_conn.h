/*
 * fuzz_conn.h: one HTTP exchange with a libmicrohttpd daemon over a
 * socketpair, for the fuzz targets that drive a real daemon
 * (fuzz_multipart.c, fuzz_server.c). The daemon gets the server end
 * through MHD_add_connection with a loopback peer address, as if it had
 * accepted it; the target writes the request bytes and reads the answer
 * until the daemon closes the connection.
 */
#ifndef FUZZ_CONN_H
#define FUZZ_CONN_H

#include <stddef.h>
#include <microhttpd.h>

struct fuzz_answer {
    char   head[1024];   /* the answer's first bytes, NUL-terminated */
    size_t len;          /* bytes kept in head */
    size_t total;        /* bytes received in all */
    int    closed;       /* the daemon closed the connection */
    int    cut;          /* the exchange hung up first (below) */
};

/*
 * Sends `req` (`len` bytes) on a new connection to `d` and collects the
 * answer into `a`.
 *
 * A daemon without threads of its own (MHD_USE_NO_LISTEN_SOCKET alone) is
 * run here (`run_daemon` 1) until it closed the connection and `*done`
 * (set by its completion callback) is non-zero. A threaded daemon (the
 * server of `wtt serve`) runs by itself: the exchange half-closes the
 * connection once the request is sent, so the daemon answers what it has
 * and closes; when no byte and no close came for `timeout_ms`, the
 * exchange closes its end instead and sets a->cut.
 *
 * Aborts when the socketpair cannot be made or the daemon refuses the
 * connection: the fuzz run would be meaningless.
 */
void fuzz_conn_exchange(struct MHD_Daemon *d, int run_daemon,
                        const volatile int *done, int timeout_ms,
                        const void *req, size_t len, struct fuzz_answer *a);

/* The status of the first "HTTP/1.x NNN" answer in `a`, or 0. */
int fuzz_conn_status(const struct fuzz_answer *a);

#endif
