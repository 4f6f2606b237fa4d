/*
 * wtt_redis_reply.c: RESP2 reply reader (see wtt_redis_reply.h).
 */
#include "wtt_redis_reply.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A buffer this large is given back once it has been consumed. */
#define KEEP_BYTES (1u << 20)


void
wtt_redis_reply_init(struct wtt_redis_reply_reader *r)
{
    memset(r, 0, sizeof(*r));
}


void
wtt_redis_reply_free(struct wtt_redis_reply_reader *r)
{
    free(r->buf);
    free(r->stack);
    memset(r, 0, sizeof(*r));
}


int
wtt_redis_reply_feed(struct wtt_redis_reply_reader *r, const char *data, size_t n)
{
    /* Consumed bytes are dropped before growing. */
    if (r->pos > 0 && (r->pos == r->len || r->len + n > r->cap)) {
        memmove(r->buf, r->buf + r->pos, r->len - r->pos);
        r->len -= r->pos;
        r->scan -= r->pos;
        r->pos = 0;
    }
    if (r->len + n > r->cap) {
        size_t cap = r->cap ? r->cap : 16384;
        char  *b;
        while (cap < r->len + n) {
            cap *= 2;        /* doubling: a 50 MB value arrives in O(n) */
        }
        b = realloc(r->buf, cap);
        if (b == NULL) {
            snprintf(r->errstr, sizeof(r->errstr), "out of memory");
            return -1;
        }
        r->buf = b;
        r->cap = cap;
    }
    memcpy(r->buf + r->len, data, n);
    r->len += n;
    return 0;
}


/* Parses the decimal after the type byte at `p` up to CRLF. */
static int
line_int(const char *p, const char *end, long long *v)
{
    long long x = 0;
    int       neg = 0;

    if (p < end && *p == '-') {
        neg = 1;
        p++;
    }
    if (p == end) {
        return -1;
    }
    for (; p < end; p++) {
        if (*p < '0' || *p > '9' || x > (LLONG_MAX - 9) / 10) {
            return -1;
        }
        x = x * 10 + (*p - '0');
    }
    *v = neg ? -x : x;
    return 0;
}


/* The CRLF ending the line at `from`, or NULL when not there yet. */
static const char *
find_crlf(const struct wtt_redis_reply_reader *r, size_t from)
{
    const char *p = r->buf + from, *end = r->buf + r->len;

    while (p < end) {
        const char *cr = memchr(p, '\r', (size_t) (end - p));
        if (cr == NULL || cr + 1 >= end) {
            return NULL;
        }
        if (cr[1] == '\n') {
            return cr;
        }
        p = cr + 1;
    }
    return NULL;
}


static int
protocol_error(struct wtt_redis_reply_reader *r, const char *what)
{
    snprintf(r->errstr, sizeof(r->errstr), "%s", what);
    return -1;
}


/*
 * Advances the scanner. Returns 1 when a whole reply spans [pos, scan),
 * 0 when more bytes are needed, -1 on a protocol error.
 */
static int
scan(struct wtt_redis_reply_reader *r)
{
    for (;;) {
        const char *crlf;
        long long   v;
        char        type;
        int         done = 0;

        if (r->scan >= r->len) {
            return 0;
        }
        crlf = find_crlf(r, r->scan + 1);
        if (crlf == NULL) {
            return 0;
        }
        type = r->buf[r->scan];
        switch (type) {
        case '+':
        case '-':
            done = 1;
            r->scan = (size_t) (crlf - r->buf) + 2;
            break;
        case ':':
            if (line_int(r->buf + r->scan + 1, crlf, &v) != 0) {
                return protocol_error(r, "bad integer");
            }
            done = 1;
            r->scan = (size_t) (crlf - r->buf) + 2;
            break;
        case '$': {
            size_t body;
            if (line_int(r->buf + r->scan + 1, crlf, &v) != 0 || v < -1) {
                return protocol_error(r, "bad bulk length");
            }
            body = (size_t) (crlf - r->buf) + 2;
            if (v >= 0) {
                if (r->len < body + (size_t) v + 2) {
                    return 0;       /* payload not all here: skip it later */
                }
                if (r->buf[body + v] != '\r' || r->buf[body + v + 1] != '\n') {
                    return protocol_error(r, "bulk without CRLF");
                }
                body += (size_t) v + 2;
            }
            r->scan = body;
            done = 1;
            break;
        }
        case '*':
            if (line_int(r->buf + r->scan + 1, crlf, &v) != 0 || v < -1) {
                return protocol_error(r, "bad array length");
            }
            r->scan = (size_t) (crlf - r->buf) + 2;
            if (v <= 0) {
                done = 1;
            } else {
                if (r->depth >= WTT_REDIS_REPLY_MAX_DEPTH) {
                    return protocol_error(r, "reply nested too deeply");
                }
                if (r->depth == r->stack_cap) {
                    int      cap = r->stack_cap ? r->stack_cap * 2 : 16;
                    int64_t *s = realloc(r->stack, sizeof(int64_t)
                                                   * (size_t) cap);
                    if (s == NULL) {
                        return protocol_error(r, "out of memory");
                    }
                    r->stack = s;
                    r->stack_cap = cap;
                }
                r->stack[r->depth++] = v;
            }
            break;
        default:
            return protocol_error(r, "unknown reply type");
        }
        if (!done) {
            continue;
        }
        /* One element finished: close every array it completes. */
        while (r->depth > 0 && --r->stack[r->depth - 1] == 0) {
            r->depth--;
        }
        if (r->depth == 0) {
            return 1;
        }
    }
}


static redisReply *
new_reply(int type)
{
    redisReply *x = calloc(1, sizeof(*x));

    if (x != NULL) {
        x->type = type;
    }
    return x;
}


static redisReply *
new_string(int type, const char *s, size_t n)
{
    redisReply *x = new_reply(type);

    if (x == NULL) {
        return NULL;
    }
    x->str = malloc(n + 1);
    if (x->str == NULL) {
        free(x);
        return NULL;
    }
    memcpy(x->str, s, n);
    x->str[n] = '\0';
    x->len = n;
    return x;
}


void
wtt_redis_reply_free_reply(redisReply *reply)
{
    /* Children are unlinked onto a work list: no recursion, any depth. */
    redisReply **list = NULL;
    size_t       n = 0, cap = 0;

    if (reply == NULL) {
        return;
    }
    for (redisReply *x = reply;;) {
        if (x->type == REDIS_REPLY_ARRAY) {
            for (size_t i = 0; i < x->elements; i++) {
                if (x->element[i] == NULL) {
                    continue;
                }
                if (n == cap) {
                    size_t       c = cap ? cap * 2 : 64;
                    redisReply **l = realloc(list, c * sizeof(*l));
                    if (l == NULL) {
                        /* Cannot track more: leak rather than crash. */
                        break;
                    }
                    list = l;
                    cap = c;
                }
                list[n++] = x->element[i];
            }
            free(x->element);
        } else {
            free(x->str);
        }
        free(x);
        if (n == 0) {
            break;
        }
        x = list[--n];
    }
    free(list);
}


/* Builds the reply in [pos, end) (known to be whole and valid). */
static redisReply *
build(struct wtt_redis_reply_reader *r, size_t end)
{
    typedef struct {
        redisReply *arr;
        size_t      next;
    } open_t;
    open_t     *stack = NULL;
    int         depth = 0, cap = 0;
    redisReply *root = NULL;
    size_t      p = r->pos;

    while (p < end) {
        const char *crlf = find_crlf(r, p + 1);
        const char *line = r->buf + p + 1;
        long long   v = 0;
        redisReply *x = NULL;
        char        type = r->buf[p];

        p = (size_t) (crlf - r->buf) + 2;
        switch (type) {
        case '+':
            x = new_string(REDIS_REPLY_STATUS, line, (size_t) (crlf - line));
            break;
        case '-':
            x = new_string(REDIS_REPLY_ERROR, line, (size_t) (crlf - line));
            break;
        case ':':
            line_int(line, crlf, &v);
            x = new_reply(REDIS_REPLY_INTEGER);
            if (x != NULL) {
                x->integer = v;
            }
            break;
        case '$':
            line_int(line, crlf, &v);
            if (v < 0) {
                x = new_reply(REDIS_REPLY_NIL);
            } else {
                x = new_string(REDIS_REPLY_STRING, r->buf + p, (size_t) v);
                p += (size_t) v + 2;
            }
            break;
        case '*':
            line_int(line, crlf, &v);
            if (v < 0) {
                x = new_reply(REDIS_REPLY_NIL);
            } else {
                x = new_reply(REDIS_REPLY_ARRAY);
                if (x != NULL && v > 0) {
                    x->element = calloc((size_t) v, sizeof(redisReply *));
                    if (x->element == NULL) {
                        free(x);
                        x = NULL;
                    }
                }
                if (x != NULL) {
                    x->elements = (size_t) v;
                }
            }
            break;
        }
        if (x == NULL) {
            goto oom;
        }
        if (depth == 0) {
            root = x;
        } else {
            stack[depth - 1].arr->element[stack[depth - 1].next++] = x;
        }
        if (x->type == REDIS_REPLY_ARRAY && x->elements > 0) {
            if (depth == cap) {
                int     c = cap ? cap * 2 : 16;
                open_t *s = realloc(stack, sizeof(open_t) * (size_t) c);
                if (s == NULL) {
                    goto oom;
                }
                stack = s;
                cap = c;
            }
            stack[depth].arr = x;
            stack[depth].next = 0;
            depth++;
        }
        while (depth > 0
               && stack[depth - 1].next == stack[depth - 1].arr->elements)
        {
            depth--;
        }
    }
    free(stack);
    return root;

oom:
    free(stack);
    wtt_redis_reply_free_reply(root);
    return NULL;
}


int
wtt_redis_reply_get(struct wtt_redis_reply_reader *r, redisReply **out)
{
    int rc;

    *out = NULL;
    if (r->pos == r->len) {
        return 0;
    }
    rc = scan(r);
    if (rc <= 0) {
        return rc;
    }
    *out = build(r, r->scan);
    if (*out == NULL) {
        return protocol_error(r, "out of memory");
    }
    r->pos = r->scan;
    if (r->pos == r->len && r->cap > KEEP_BYTES) {
        free(r->buf);
        r->buf = NULL;
        r->cap = 0;
        r->len = 0;
        r->pos = 0;
        r->scan = 0;
    }
    return 0;
}
