/*
 * fuzz_conn.c: see fuzz_conn.h.
 */
#include "fuzz_conn.h"

#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static long long
now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Reads what is there without blocking; sets a->closed at EOF. Returns
 * whether any byte came. */
static int
drain(int fd, struct fuzz_answer *a)
{
    size_t before = a->total;

    while (!a->closed) {
        char    sink[4096];
        ssize_t n = recv(fd, sink, sizeof(sink), 0);
        if (n > 0) {
            size_t keep = sizeof(a->head) - 1 - a->len;
            if ((size_t) n < keep) {
                keep = (size_t) n;
            }
            memcpy(a->head + a->len, sink, keep);
            a->len += keep;
            a->total += (size_t) n;
        } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
            a->closed = 1;
        } else {
            break;
        }
    }
    return a->total != before;
}

void
fuzz_conn_exchange(struct MHD_Daemon *d, int run_daemon,
                   const volatile int *done, int timeout_ms,
                   const void *req, size_t len, struct fuzz_answer *a)
{
    struct sockaddr_in addr = { .sin_family = AF_INET };
    const char        *p = req;
    size_t             sent = 0;
    int                sv[2], half_closed = 0;
    long long          until = now_ms() + timeout_ms;

    memset(a, 0, sizeof(*a));
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0,
                   sv) != 0)
    {
        abort();
    }
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    /* MHD owns sv[1] from here, even when it refuses it. */
    if (MHD_add_connection(d, sv[1], (struct sockaddr *) &addr,
                           sizeof(addr)) != MHD_YES)
    {
        fprintf(stderr, "fuzz_conn: MHD_add_connection refused\n");
        abort();
    }
    if (run_daemon) {
        /* Bounded: each round either moves bytes or lets the daemon work. */
        for (int round = 0; round < 100000 && !(a->closed && *done);
             round++)
        {
            if (sent < len) {
                ssize_t n = send(sv[0], p + sent, len - sent, MSG_NOSIGNAL);
                if (n > 0) {
                    sent += (size_t) n;
                } else if (n < 0 && errno != EAGAIN) {
                    sent = len;       /* the server closed early */
                }
            }
            MHD_run(d);
            drain(sv[0], a);
        }
        close(sv[0]);
        for (int round = 0; round < 100 && !*done; round++) {
            MHD_run(d);
        }
        a->head[a->len] = '\0';
        return;
    }
    while (!a->closed) {
        struct pollfd pfd = { .fd = sv[0], .events = POLLIN };

        if (now_ms() >= until) {
            /* libmicrohttpd (0.9.75, epoll) can miss a half-close that
             * arrives with the last bytes of an incomplete request, and
             * then waits for the idle timeout: hang up instead, as a
             * client would. */
            a->cut = 1;
            break;
        }
        if (sent < len) {
            pfd.events |= POLLOUT;
        } else if (!half_closed) {
            /* All sent: the daemon answers what it has, then closes. */
            shutdown(sv[0], SHUT_WR);
            half_closed = 1;
            until = now_ms() + timeout_ms;
        }
        if (poll(&pfd, 1, 50) < 0 && errno != EINTR) {
            abort();
        }
        if (sent < len && (pfd.revents & (POLLOUT | POLLERR | POLLHUP))) {
            ssize_t n = send(sv[0], p + sent, len - sent, MSG_NOSIGNAL);
            if (n > 0) {
                sent += (size_t) n;
                until = now_ms() + timeout_ms;
            } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
                sent = len;           /* the server closed early */
            }
        }
        if (drain(sv[0], a)) {
            until = now_ms() + timeout_ms;    /* still answering */
        }
    }
    close(sv[0]);
    a->head[a->len] = '\0';
}

int
fuzz_conn_status(const struct fuzz_answer *a)
{
    if (a->len < 12 || memcmp(a->head, "HTTP/1.", 7) != 0) {
        return 0;
    }
    return atoi(a->head + 9);
}
