/*
 * fuzz_routes.c: the body, path parameters and query string of every
 * route, through the real route code: the routes/ files loaded by the
 * server of `wtt serve` in its Lua state (fuzz_server.c), each request
 * dispatched to the route's own handler with the request object the
 * server builds (no handler is called directly: the request accessors
 * work only inside a request the server is serving).
 *
 * Input:
 *   byte 0   the route (the table below, modulo its size);
 *   byte 1   flags: 1 the route's bearer token, 2 "Accept:
 *            application/json", 4 an Idempotency-Key, 8 the body chunked
 *            instead of with a Content-Length;
 *   then     what replaces "{}" in the route's path (the id, a name, a
 *            subpath, and the query string after a '?'), up to a newline;
 *            bytes an HTTP request line cannot carry are percent-encoded;
 *   then     the body (JSON for most POST routes, a multipart form for
 *            the two that take one), sent for POST routes only.
 *
 * Routes that need Redis or PostgreSQL beyond checking their input answer
 * 503 here (fuzz_server.c: neither is reachable), as in production when
 * they are down. A 500, a hang, a crash or a sanitizer report is a
 * finding.
 */
#include "fuzz_server.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FORM "multipart/form-data; boundary=fuzzb"
#define JSON "application/json"

static const struct {
    const char *method;
    const char *path;        /* "{}" is replaced by the input's line */
    const char *ctype;       /* POST: the body's type */
    const char *token;       /* sent with flag 1 */
} routes[] = {
    { "POST", "/transcribe/upload/{}",   FORM, NULL },
    { "POST", "/transcribe/generate/{}", JSON, NULL },
    { "GET",  "/transcribe/status/{}",   NULL, NULL },
    { "GET",  "/transcribe/midi/{}",     NULL, NULL },
    { "GET",  "/transcribe/notes/{}",    NULL, NULL },
    { "GET",  "/transcribe/audio/{}",    NULL, NULL },
    { "POST", "/transcribe/retune/{}",   JSON, NULL },
    { "GET",  "/transcribe/tab/{}",      NULL, NULL },
    { "GET",  "/transcribe/events/{}",   NULL, NULL },
    { "GET",  "/media/{}",               NULL, FUZZ_WORKER_TOKEN },
    { "POST", "/transcribe/_result/{}",  FORM, FUZZ_WORKER_TOKEN },
    { "GET",  "/_admin/queue/{}",        NULL, FUZZ_ADMIN_TOKEN },
    { "POST", "/_admin/queue/{}",        JSON, FUZZ_ADMIN_TOKEN },
    { "GET",  "/{}",                     NULL, NULL },
    { "POST", "/{}",                     JSON, NULL },
};
#define NROUTES (sizeof(routes) / sizeof(routes[0]))

/* Appends `n` bytes to the growing buffer. */
static void
put(char **buf, size_t *len, size_t *cap, const void *p, size_t n)
{
    if (*len + n + 1 > *cap) {
        *cap = (*len + n + 1) * 2;
        *buf = realloc(*buf, *cap);
        if (*buf == NULL) {
            abort();
        }
    }
    memcpy(*buf + *len, p, n);
    *len += n;
}

static void
puts_(char **buf, size_t *len, size_t *cap, const char *s)
{
    put(buf, len, cap, s, strlen(s));
}

/* The path line as a request target: controls, spaces, '#' and bytes
 * past ASCII percent-encoded; '%', '?', '&' and '=' kept, so the input
 * can still write escapes and a query of its own. */
static void
put_target(char **buf, size_t *len, size_t *cap, const uint8_t *s,
           size_t n)
{
    static const char hex[] = "0123456789ABCDEF";

    for (size_t i = 0; i < n; i++) {
        if (s[i] <= 0x20 || s[i] >= 0x7f || s[i] == '#') {
            char e[3] = { '%', hex[s[i] >> 4], hex[s[i] & 15] };
            put(buf, len, cap, e, 3);
        } else {
            put(buf, len, cap, s + i, 1);
        }
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t     *line, *nl, *body;
    size_t             line_len, body_len, len = 0, cap = 0;
    char              *req = NULL, num[64];
    const char        *tpl, *hole;
    unsigned           route, flags;
    struct fuzz_answer a;

    if (size < 2 || size > 256 * 1024) {
        return 0;
    }
    route = data[0] % NROUTES;
    flags = data[1];
    line = data + 2;
    nl = memchr(line, '\n', size - 2);
    line_len = nl != NULL ? (size_t) (nl - line) : size - 2;
    if (line_len > 4096) {
        return 0;                     /* the URL limit is tested by fuzz_http */
    }
    body = nl != NULL ? nl + 1 : data + size;
    body_len = (size_t) (data + size - body);

    tpl = routes[route].path;
    hole = strstr(tpl, "{}");
    puts_(&req, &len, &cap, routes[route].method);
    puts_(&req, &len, &cap, " ");
    put(&req, &len, &cap, tpl, (size_t) (hole - tpl));
    put_target(&req, &len, &cap, line, line_len);
    puts_(&req, &len, &cap, hole + 2);
    puts_(&req, &len, &cap, " HTTP/1.1\r\nHost: fuzz\r\n");
    if ((flags & 1) && routes[route].token != NULL) {
        puts_(&req, &len, &cap, "Authorization: Bearer ");
        puts_(&req, &len, &cap, routes[route].token);
        puts_(&req, &len, &cap, "\r\n");
    }
    if (flags & 2) {
        puts_(&req, &len, &cap, "Accept: application/json\r\n");
    }
    if (flags & 4) {
        puts_(&req, &len, &cap, "Idempotency-Key: fuzz-key-1\r\n");
    }
    if (routes[route].ctype != NULL) {
        puts_(&req, &len, &cap, "Content-Type: ");
        puts_(&req, &len, &cap, routes[route].ctype);
        puts_(&req, &len, &cap, "\r\n");
        if (flags & 8) {
            puts_(&req, &len, &cap, "Transfer-Encoding: chunked\r\n\r\n");
            if (body_len > 0) {
                snprintf(num, sizeof(num), "%zx\r\n", body_len);
                puts_(&req, &len, &cap, num);
                put(&req, &len, &cap, body, body_len);
                puts_(&req, &len, &cap, "\r\n");
            }
            puts_(&req, &len, &cap, "0\r\n\r\n");
        } else {
            snprintf(num, sizeof(num), "Content-Length: %zu\r\n\r\n",
                     body_len);
            puts_(&req, &len, &cap, num);
            put(&req, &len, &cap, body, body_len);
        }
    } else {
        puts_(&req, &len, &cap, "\r\n");
    }
    fuzz_server_send(req, len, &a);
    if (getenv("WTT_FUZZ_VERBOSE") != NULL) {     /* for writing seeds */
        fprintf(stderr, "routes: %s %s -> %.60s\n", routes[route].method,
                tpl, a.head);
    }
    free(req);
    return 0;
}
