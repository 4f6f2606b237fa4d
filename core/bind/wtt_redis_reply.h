/*
 * wtt_redis_reply.h: a RESP2 reply reader with no nesting limit.
 *
 * Debian 12's hiredis (0.14) refuses replies nested deeper than 7 arrays,
 * which a Lua script can return (EVAL of {{{{...}}}}). This reader takes
 * over that job for wtt.redis: bytes are fed as they arrive, a resumable
 * scanner finds where the next whole reply ends (bulk payloads are skipped
 * by their length, never scanned), and only then the reply is built, with
 * explicit stacks instead of recursion. Replies are hiredis `redisReply`
 * trees so the rest of wtt_redis.c keeps its types; free them with
 * wtt_redis_reply_free_reply (iterative) rather than freeReplyObject (recursive).
 *
 * Thread safety: a reader belongs to one connection.
 */
#ifndef WTT_REDIS_REPLY_H
#define WTT_REDIS_REPLY_H

#include <hiredis/hiredis.h>
#include <stddef.h>
#include <stdint.h>

#define WTT_REDIS_REPLY_MAX_DEPTH 100000

struct wtt_redis_reply_reader {
    char    *buf;
    size_t   len;          /* bytes held */
    size_t   cap;
    size_t   pos;          /* start of the next reply */
    size_t   scan;         /* where the scanner resumes */
    int64_t *stack;        /* elements still due at each open array */
    int      depth;
    int      stack_cap;
    char     errstr[128];
};

/* Zero-fills `r`; nothing is allocated until the first feed. */
void wtt_redis_reply_init(struct wtt_redis_reply_reader *r);

/* Frees the buffer and the scan stack. Safe twice. */
void wtt_redis_reply_free(struct wtt_redis_reply_reader *r);

/* Appends `n` bytes. Returns 0, or -1 (errstr: out of memory). */
int wtt_redis_reply_feed(struct wtt_redis_reply_reader *r, const char *data, size_t n);

/*
 * Takes the next whole reply: 0 with *out set, 0 with *out NULL when more
 * bytes are needed, or -1 on a protocol error (errstr set; the reader must
 * not be used again). The caller owns *out.
 */
int wtt_redis_reply_get(struct wtt_redis_reply_reader *r, redisReply **out);

/* Frees a reply tree of any depth without recursion. */
void wtt_redis_reply_free_reply(redisReply *reply);

#endif
