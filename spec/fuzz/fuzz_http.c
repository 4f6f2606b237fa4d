/*
 * fuzz_http.c: the HTTP request line, headers and framing as the server
 * of `wtt serve` takes them: libmicrohttpd configured by wtt_http_start
 * (strict client parsing, header memory limit, connection limits), wtt's
 * access handler (URL length and NUL checks, Content-Length and
 * Transfer-Encoding rules, chunked bodies, pipelined requests on one
 * connection, body limits) and the real routes behind it
 * (fuzz_server.c).
 *
 * Input: the bytes a client writes on one connection, sent as they are;
 * then the connection is half-closed, so the server answers every whole
 * request it read and closes. Any answer is acceptable but a 500 (a Lua
 * error or a broken response), a hang, a crash or a sanitizer report.
 */
#include "fuzz_server.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_answer a;

    if (size > 256 * 1024) {
        return 0;                     /* past every limit that matters */
    }
    fuzz_server_send(data, size, &a);
    if (getenv("WTT_FUZZ_VERBOSE") != NULL) {     /* for writing seeds */
        fprintf(stderr, "http: %zu bytes back: %.80s\n", a.total, a.head);
    }
    return 0;
}
