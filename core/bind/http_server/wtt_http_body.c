/*
 * wtt_http_body.c: request bodies. Raw bodies are buffered up to the
 * route's limit; multipart bodies go through libmicrohttpd's post processor
 * with file parts streamed to temp files. See wtt_http_private.h for the
 * other parts.
 */
#include "wtt_http_private.h"
#include "wtt_log.h"
#include "wtt_util.h"

#include <errno.h>
#include <fcntl.h>
#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define PP_BUFFER        (64 * 1024)
#define MAX_PARTS        256
#define MAX_FIELD_BYTES  (64 * 1024)


/* ---------------------------------------------------------------------------
 * Request bodies
 * ------------------------------------------------------------------------- */

static enum MHD_Result
on_part(void *cls, enum MHD_ValueKind kind, const char *key,
        const char *filename, const char *ctype, const char *encoding,
        const char *data, uint64_t off, size_t size)
{
    req_t *r = cls;

    if (key == NULL) {
        key = "";
    }
    if (filename != NULL) {
        upfile_t *f = r->cur_file;
        if (off == 0 && (f == NULL || f->size > 0
                         || strcmp(f->field, key) != 0
                         || strcmp(f->filename, filename) != 0))
        {
            if (++r->nparts > MAX_PARTS) {
                r->err_status = 400;
                r->err_code = "bad_request";
                snprintf(r->err_detail, sizeof(r->err_detail),
                         "more than %d multipart parts", MAX_PARTS);
                return MHD_NO;
            }
            if (f != NULL && f->fd >= 0) {
                close(f->fd);
                f->fd = -1;
            }
            f = wtt_calloc(1, sizeof(*f));
            f->field = wtt_strdup(key);
            f->filename = wtt_strdup(filename);
            f->ctype = wtt_strdup(ctype != NULL ? ctype : "");
            snprintf(f->path, sizeof(f->path), "%s/wtt-upload-XXXXXX",
                     wtt__http_cfg.tmp_dir);
            f->fd = mkostemp(f->path, O_CLOEXEC);
            f->next = r->files;
            r->files = f;
            r->cur_file = f;
            if (f->fd < 0) {
                f->path[0] = '\0';
                r->err_status = errno == ENOSPC ? 507 : 500;
                r->err_code = errno == ENOSPC ? "insufficient_storage"
                                              : "storage";
                snprintf(r->err_detail, sizeof(r->err_detail),
                         "cannot store upload: %s", strerror(errno));
                return MHD_NO;
            }
        }
        if (f->size + size > r->max_file) {
            r->err_status = 413;
            r->err_code = "too_large";
            snprintf(r->err_detail, sizeof(r->err_detail),
                     "file part larger than %zu bytes", r->max_file);
            return MHD_NO;
        }
        for (size_t done = 0; done < size;) {
            ssize_t n = write(f->fd, data + done, size - done);
            if (n < 0 && errno == EINTR) {
                continue;
            }
            if (n <= 0) {
                /* A full disk (507) is worth retrying later; the temp
                 * file goes with the request. */
                int e = n < 0 ? errno : ENOSPC;

                r->err_status = e == ENOSPC ? 507 : 500;
                r->err_code = e == ENOSPC ? "insufficient_storage"
                                          : "storage";
                snprintf(r->err_detail, sizeof(r->err_detail),
                         "cannot store upload: %s", strerror(e));
                return MHD_NO;
            }
            done += (size_t) n;
        }
        f->size += size;
        return MHD_YES;
    }

    /* A plain field: kept in memory, small. */
    {
        field_t *d = r->cur_field;
        if (off == 0 || d == NULL || strcmp(d->name, key) != 0) {
            if (++r->nparts > MAX_PARTS) {
                r->err_status = 400;
                r->err_code = "bad_request";
                snprintf(r->err_detail, sizeof(r->err_detail),
                         "more than %d multipart parts", MAX_PARTS);
                return MHD_NO;
            }
            d = wtt_calloc(1, sizeof(*d));
            d->name = wtt_strdup(key);
            d->next = r->fields;
            r->fields = d;
            r->cur_field = d;
        }
        if (d->len + size > MAX_FIELD_BYTES) {
            r->err_status = 413;
            r->err_code = "too_large";
            snprintf(r->err_detail, sizeof(r->err_detail),
                     "form field larger than %d bytes", MAX_FIELD_BYTES);
            return MHD_NO;
        }
        d->value = wtt_realloc(d->value, d->len + size + 1);
        memcpy(d->value + d->len, data, size);
        d->len += size;
        d->value[d->len] = '\0';
    }
    return MHD_YES;
}


/*
 * Watches a multipart body for its closing delimiter. libmicrohttpd's post
 * processor treats text without any boundary as preamble and reports
 * success, so a body that never closes is caught here.
 */
static void
scan_closing(req_t *r, const char *data, size_t n)
{
    char   join[160];
    size_t k, take;

    if (r->closed_seen || r->closing_len == 0) {
        return;
    }
    k = r->closing_len;
    take = n < k - 1 ? n : k - 1;
    memcpy(join, r->tail, r->tail_len);
    memcpy(join + r->tail_len, data, take);
    if (memmem(join, r->tail_len + take, r->closing, k) != NULL
        || memmem(data, n, r->closing, k) != NULL)
    {
        r->closed_seen = 1;
        return;
    }
    /* Keep the last k-1 bytes of everything seen so far. */
    if (n >= k - 1) {
        memcpy(r->tail, data + n - (k - 1), k - 1);
        r->tail_len = k - 1;
    } else {
        size_t keep = r->tail_len + n > k - 1 ? k - 1 - n : r->tail_len;
        memmove(r->tail, r->tail + r->tail_len - keep, keep);
        memcpy(r->tail + keep, data, n);
        r->tail_len = keep + n;
    }
}


enum MHD_Result
wtt__http_take_body(req_t *r, const char *data, size_t *size)
{
    size_t n = *size;

    *size = 0;
    r->received += n;
    if (r->mode == BODY_RAW) {
        if (r->received > r->max_body) {
            char detail[96];
            snprintf(detail, sizeof(detail), "body larger than %zu bytes",
                     r->max_body);
            return wtt__http_abort_upload(r, 413, "too_large", detail);
        }
        if (r->body_len + n > r->body_cap) {
            size_t cap = r->body_cap ? r->body_cap : 4096;
            char  *nb;
            while (cap < r->body_len + n) {
                cap *= 2;
            }
            nb = realloc(r->body, cap);
            if (nb == NULL) {
                return wtt__http_abort_upload(r, 503, "unavailable",
                                              "out of memory for the body");
            }
            r->body = nb;
            r->body_cap = cap;
        }
        memcpy(r->body + r->body_len, data, n);
        r->body_len += n;
        return MHD_YES;
    }
    if (r->received > r->max_body) {
        char detail[96];
        snprintf(detail, sizeof(detail), "upload larger than %zu bytes",
                 r->max_body);
        return wtt__http_abort_upload(r, 413, "too_large", detail);
    }
    scan_closing(r, data, n);
    if (MHD_post_process(r->pp, data, n) != MHD_YES) {
        if (r->err_status != 0) {
            return wtt__http_abort_upload(r, r->err_status, r->err_code,
                                          r->err_detail);
        }
        return wtt__http_abort_upload(r, 400, "bad_request",
                                      "malformed form body");
    }
    return MHD_YES;
}


int
wtt__http_end_form(req_t *r)
{
    enum MHD_Result ok;

    if (r->pp == NULL) {
        return 0;
    }
    ok = MHD_destroy_post_processor(r->pp);
    r->pp = NULL;
    if (r->cur_file != NULL && r->cur_file->fd >= 0) {
        close(r->cur_file->fd);
        r->cur_file->fd = -1;
    }
    return ok != MHD_YES || (r->closing_len > 0 && !r->closed_seen) ? -1 : 0;
}


/* The whole body is in: close the parser and run the continuation. */
enum MHD_Result
wtt__http_finish_body(req_t *r)
{
    lua_State *L = r->slot->L;
    int        base, rc;

    if (wtt__http_end_form(r) != 0) {
        return wtt__http_respond_error(r, 400, "bad_request",
            "malformed or truncated multipart body");
    }
    base = lua_gettop(L);
    lua_rawgeti(L, LUA_REGISTRYINDEX, r->cont_ref);
    wtt__http_tls_req = r;
    wtt_log_set_id(r->id);
    rc = wtt__http_call_lua(r->t, L, 0, 4);
    wtt__http_tls_req = NULL;
    return wtt__http_finish_lua(r, L, rc, base);
}


/*
 * Takes the boundary of a multipart Content-Type into r->closing as the
 * closing delimiter "--<boundary>--". Returns -1 when it is missing or not
 * 1..70 characters (RFC 2046).
 */
static int
take_boundary(req_t *r, const char *ctype)
{
    const char *b = strcasestr(ctype, "boundary=");
    size_t      n;

    if (b == NULL) {
        return -1;
    }
    b += 9;
    if (*b == '"') {
        const char *e = strchr(b + 1, '"');
        b++;
        n = e != NULL ? (size_t) (e - b) : 0;
    } else {
        n = strcspn(b, "; \t");
    }
    if (n == 0 || n > 70 || memchr(b, '\0', n) != NULL) {
        return -1;
    }
    r->closing_len = (size_t) snprintf(r->closing, sizeof(r->closing),
                                       "--%.*s--", (int) n, b);
    return 0;
}


enum MHD_Result
wtt__http_body_start_form(req_t *r, struct MHD_Connection *conn,
                          const char *ctype)
{
    if (ctype == NULL
        || (strncasecmp(ctype, "multipart/form-data", 19) == 0
            && take_boundary(r, ctype) != 0))
    {
        return wtt__http_respond_error(r, 400, "bad_request",
            "missing or invalid multipart boundary");
    }
    r->pp = MHD_create_post_processor(conn, PP_BUFFER, on_part, r);
    if (r->pp == NULL) {
        return wtt__http_respond_error(r, 400, "bad_request",
                                       "unsupported form encoding");
    }
    return MHD_YES;
}
