/*
 * fuzz_resp.c: the RESP2 reply reader (core/bind/wtt_redis_reply.c), the
 * parser of everything a Redis server, or whatever answers on its port,
 * sends to wtt.
 *
 * Input: one byte choosing the size of the pieces the stream is fed in
 * (the reader is resumable, and a reply split at any byte must parse as
 * the whole does), then the byte stream. Every whole reply is taken,
 * walked (so a tree with a wrong element count or length is read by ASan)
 * and freed; the stream ends at the first protocol error, as a connection
 * does.
 */
#include "wtt_redis_reply.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Reads every byte the tree claims to hold, without recursion. */
static size_t
walk(const redisReply *top)
{
    const redisReply **stack;
    size_t             n = 0, cap = 64, sum = 0;

    stack = malloc(cap * sizeof(*stack));
    if (stack == NULL) {
        return 0;
    }
    stack[n++] = top;
    while (n > 0) {
        const redisReply *r = stack[--n];
        switch (r->type) {
        case REDIS_REPLY_STRING:
        case REDIS_REPLY_STATUS:
        case REDIS_REPLY_ERROR:
            for (size_t i = 0; i < r->len; i++) {
                sum += (unsigned char) r->str[i];
            }
            /* hiredis terminates every string */
            sum += (unsigned char) r->str[r->len];
            break;
        case REDIS_REPLY_INTEGER:
            sum += (size_t) r->integer;
            break;
        case REDIS_REPLY_ARRAY:
            for (size_t i = 0; i < r->elements; i++) {
                if (n == cap) {
                    const redisReply **s;
                    cap *= 2;
                    s = realloc(stack, cap * sizeof(*stack));
                    if (s == NULL) {
                        free(stack);
                        return sum;
                    }
                    stack = s;
                }
                stack[n++] = r->element[i];
            }
            break;
        default:
            break;
        }
    }
    free(stack);
    return sum;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct wtt_redis_reply_reader rd;
    size_t                        piece, off = 1;
    volatile size_t               sink = 0;
    int                           failed = 0;

    if (size < 1) {
        return 0;
    }
    piece = (size_t) data[0] + 1;
    wtt_redis_reply_init(&rd);
    while (off < size && !failed) {
        size_t n = size - off < piece ? size - off : piece;
        if (wtt_redis_reply_feed(&rd, (const char *) data + off, n) != 0) {
            break;
        }
        off += n;
        for (;;) {
            redisReply *reply = NULL;
            if (wtt_redis_reply_get(&rd, &reply) != 0) {
                failed = 1;
                break;
            }
            if (reply == NULL) {
                break;
            }
            sink += walk(reply);
            wtt_redis_reply_free_reply(reply);
        }
    }
    wtt_redis_reply_free(&rd);
    (void) sink;
    return 0;
}
