/*
 * fuzz_server.h: the server of `wtt serve`, in-process, for the fuzz
 * targets that send it whole requests (fuzz_http.c, fuzz_routes.c).
 */
#ifndef FUZZ_SERVER_H
#define FUZZ_SERVER_H

#include "fuzz_conn.h"

#include <stddef.h>

/* The bearer tokens the server is started with (WTT_WORKER_TOKEN,
 * WTT_ADMIN_TOKEN), so inputs can reach the routes behind them. */
#define FUZZ_WORKER_TOKEN "fuzz-worker-token"
#define FUZZ_ADMIN_TOKEN  "fuzz-admin-token"

/*
 * Sends `req` on a new connection to the server (started on first use)
 * and waits for the answer and for every request it carried to be
 * released. Aborts, printing the answer's start, when a request was
 * answered 500 (a Lua error or a route's bad return values: the server's
 * "internal" answer, never a documented one), when a temp file of an
 * upload is left after its request ended, or when a request it
 * carried was still in flight 8 s after the connection closed (the
 * exchange hangs up after 300 ms without a byte: fuzz_conn.h). Returns the
 * status of the first answer (0: none).
 */
int fuzz_server_send(const void *req, size_t len, struct fuzz_answer *a);

#endif
