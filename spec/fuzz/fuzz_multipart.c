/*
 * fuzz_multipart.c: the form-body path of the HTTP server
 * (core/bind/http_server/wtt_http_body.c): the boundary taken from the
 * Content-Type, libmicrohttpd's post processor, wtt's part callback (file
 * parts to temp files, fields in memory, the part and size limits) and the
 * closing-delimiter watch, fed by a real libmicrohttpd connection.
 *
 * Input: the Content-Type value, a newline, then the body. The target
 * sends "POST /upload" with that Content-Type and a Content-Length to a
 * daemon without a listening socket through a socketpair
 * (MHD_add_connection, spec/fuzz/fuzz_conn.c), reads the answer, and checks it is 200 (the form
 * was whole) or 4xx. Lua is not involved: the access handler stands in
 * for wtt_http_server.c's, calling the same body functions, with the same
 * limits shrunk (1 MB body, 64 KB a file) to keep inputs fast.
 */
#include "fuzz_conn.h"
#include "wtt_http_private.h"
#include "wtt_log.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct MHD_Daemon *daemon_;
static volatile int       completed;

static void
release(req_t *r)
{
    if (r->pp != NULL) {
        MHD_destroy_post_processor(r->pp);
    }
    while (r->files != NULL) {
        upfile_t *f = r->files;
        r->files = f->next;
        if (f->fd >= 0) {
            close(f->fd);
        }
        if (f->path[0] != '\0') {
            unlink(f->path);
        }
        free(f->field);
        free(f->filename);
        free(f->ctype);
        free(f);
    }
    while (r->fields != NULL) {
        field_t *d = r->fields;
        r->fields = d->next;
        free(d->name);
        free(d->value);
        free(d);
    }
    free(r);
}

static enum MHD_Result
answer(req_t *r, int status)
{
    static const char body[] = "{}";
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        sizeof(body) - 1, (void *) body, MHD_RESPMEM_PERSISTENT);
    enum MHD_Result rc;

    if (resp == NULL) {
        return MHD_NO;
    }
    r->status = status;
    rc = MHD_queue_response(r->conn, (unsigned) status, resp);
    MHD_destroy_response(resp);
    return rc;
}

static enum MHD_Result
on_request(void *cls, struct MHD_Connection *conn, const char *url,
           const char *method, const char *version, const char *upload,
           size_t *upload_size, void **ctx)
{
    req_t *r = *ctx;

    if (r == NULL) {
        const char *ctype = MHD_lookup_connection_value(
            conn, MHD_HEADER_KIND, "Content-Type");
        r = calloc(1, sizeof(*r));
        if (r == NULL) {
            abort();
        }
        r->conn = conn;
        r->mode = BODY_FORM;
        r->max_body = 1 << 20;
        r->max_file = 64 << 10;
        strcpy(r->id, "fuzz");
        *ctx = r;
        return wtt__http_body_start_form(r, conn, ctype);
    }
    if (r->status != 0) {
        *upload_size = 0;             /* answered already */
        return MHD_YES;
    }
    if (*upload_size > 0) {
        return wtt__http_take_body(r, upload, upload_size);
    }
    return answer(r, wtt__http_end_form(r) == 0 ? 200 : 400);
}

static void
on_completed(void *cls, struct MHD_Connection *conn, void **ctx,
             enum MHD_RequestTerminationCode toe)
{
    if (*ctx != NULL) {
        release(*ctx);
        *ctx = NULL;
    }
    completed = 1;
}

static void
setup(void)
{
    const char *tmp = getenv("TMPDIR");

    /* The rejected uploads are the expected answers: not worth a line each. */
    setenv("WTT_LOG_LEVEL", "error", 0);
    wtt_log_init();
    snprintf(wtt__http_cfg.tmp_dir, sizeof(wtt__http_cfg.tmp_dir), "%s",
             tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
    daemon_ = MHD_start_daemon(MHD_USE_NO_LISTEN_SOCKET, 0, NULL, NULL,
                               on_request, NULL,
                               MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
                               MHD_OPTION_END);
    if (daemon_ == NULL) {
        abort();
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t     *nl = memchr(data, '\n', size);
    char               head[512];
    size_t             clen, hlen, total;
    int                status;
    char              *req;
    struct fuzz_answer got;

    if (daemon_ == NULL) {
        setup();
    }
    if (nl == NULL || nl - data > 200 || memchr(data, '\r', nl - data) != NULL
        || memchr(data, '\0', nl - data) != NULL)
    {
        return 0;                     /* not a header libmicrohttpd passes on */
    }
    clen = size - (size_t) (nl - data) - 1;
    hlen = (size_t) snprintf(head, sizeof(head),
        "POST /upload HTTP/1.1\r\nHost: fuzz\r\nContent-Type: %.*s\r\n"
        "Content-Length: %zu\r\nConnection: close\r\n\r\n",
        (int) (nl - data), (const char *) data, clen);
    total = hlen + clen;
    req = malloc(total);
    if (req == NULL) {
        abort();
    }
    memcpy(req, head, hlen);
    memcpy(req + hlen, nl + 1, clen);

    completed = 0;
    fuzz_conn_exchange(daemon_, 1, &completed, 0, req, total, &got);
    free(req);
    status = fuzz_conn_status(&got);
    if (getenv("WTT_FUZZ_VERBOSE") != NULL) {
        fprintf(stderr, "multipart: %d\n", status);   /* for writing seeds */
    }
    if (!completed || (status != 0 && status != 200
                       && (status < 400 || status >= 500)
                       && status != 507))
    {
        fprintf(stderr, "multipart: status %d, completed %d\n", status,
                completed);
        abort();
    }
    return 0;
}
