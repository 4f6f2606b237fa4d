/*
 * wtt_http_peers.c: the per-address connection limit, with exemptions.
 *
 * libmicrohttpd enforces WTT_PER_IP_LIMIT itself, for every address alike.
 * Behind a reverse proxy every browser arrives from the proxy's address,
 * so a thousand open event streams would be cut at 256. WTT_PER_IP_EXEMPT
 * lists the addresses (and CIDR ranges) that limit must not apply to;
 * when it is set, libmicrohttpd's own limit is switched off and the count
 * is kept here instead: a connection from a counted address that goes
 * over the limit is cut as soon as it is accepted (the client sees the
 * connection closed, as with libmicrohttpd's refusal), and exempt
 * addresses are only held by WTT_CONN_LIMIT.
 *
 * The counts live in a small hash table under `peers_lock`, a leaf lock:
 * nothing else is called while it is held.
 */
#include "wtt_http_private.h"
#include "wtt_log.h"
#include "wtt_util.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_EXEMPT 64
#define BUCKETS    1024

typedef struct {
    int           family;          /* AF_INET or AF_INET6 */
    unsigned char addr[16];
    int           bits;            /* prefix length */
} range_t;

typedef struct peer {
    int           family;
    unsigned char addr[16];
    unsigned      count;
    struct peer  *next;
} peer_t;

static range_t         exempt[MAX_EXEMPT];
static int             n_exempt;
static unsigned        limit;
static pthread_mutex_t peers_lock = PTHREAD_MUTEX_INITIALIZER;
static peer_t         *buckets[BUCKETS];


/* Parses "a.b.c.d", "a.b.c.d/n", "::1", "fd00::/8" into `r`. 0 or -1. */
static int
parse_range(const char *s, range_t *r)
{
    char        buf[64];
    const char *slash = strchr(s, '/');
    size_t      n = slash != NULL ? (size_t) (slash - s) : strlen(s);
    int         max;

    if (n == 0 || n >= sizeof(buf)) {
        return -1;
    }
    memcpy(buf, s, n);
    buf[n] = '\0';
    memset(r, 0, sizeof(*r));
    if (inet_pton(AF_INET, buf, r->addr) == 1) {
        r->family = AF_INET;
        max = 32;
    } else if (inet_pton(AF_INET6, buf, r->addr) == 1) {
        r->family = AF_INET6;
        max = 128;
    } else {
        return -1;
    }
    r->bits = max;
    if (slash != NULL) {
        char *end;
        long  b = strtol(slash + 1, &end, 10);
        if (end == slash + 1 || *end != '\0' || b < 0 || b > max) {
            return -1;
        }
        r->bits = (int) b;
    }
    return 0;
}


/* Whether the first `bits` bits of `a` and `b` agree. */
static int
prefix_equal(const unsigned char *a, const unsigned char *b, int bits)
{
    int whole = bits / 8, rest = bits % 8;

    if (memcmp(a, b, (size_t) whole) != 0) {
        return 0;
    }
    if (rest == 0) {
        return 1;
    }
    return ((a[whole] ^ b[whole]) & (0xFF << (8 - rest)) & 0xFF) == 0;
}


/*
 * The family and address bytes of `sa`; an IPv4-mapped IPv6 address
 * (a dual-stack listener) counts as its IPv4 address. 0, or -1 for any
 * other family.
 */
static int
address_of(const struct sockaddr *sa, int *family, unsigned char addr[16])
{
    memset(addr, 0, 16);
    if (sa->sa_family == AF_INET) {
        memcpy(addr, &((const struct sockaddr_in *) sa)->sin_addr, 4);
        *family = AF_INET;
        return 0;
    }
    if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a6 = &((const struct sockaddr_in6 *) sa)
                                        ->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(a6)) {
            memcpy(addr, a6->s6_addr + 12, 4);
            *family = AF_INET;
        } else {
            memcpy(addr, a6->s6_addr, 16);
            *family = AF_INET6;
        }
        return 0;
    }
    return -1;
}


static int
is_exempt(int family, const unsigned char addr[16])
{
    for (int i = 0; i < n_exempt; i++) {
        if (exempt[i].family == family
            && prefix_equal(exempt[i].addr, addr, exempt[i].bits))
        {
            return 1;
        }
    }
    return 0;
}


unsigned
wtt__http_peers_init(const struct wtt_http_config *c)
{
    char  list[sizeof(c->per_ip_exempt)];
    char *save = NULL;

    limit = c->per_ip_limit;
    n_exempt = 0;
    snprintf(list, sizeof(list), "%s", c->per_ip_exempt);
    for (char *tok = strtok_r(list, ", \t", &save); tok != NULL;
         tok = strtok_r(NULL, ", \t", &save))
    {
        if (n_exempt == MAX_EXEMPT) {
            wtt_log(WTT_LOG_WARN, "http.per_ip_exempt_ignored", "entry", tok,
                    "reason", "more than 64 entries", NULL);
            break;
        }
        if (parse_range(tok, &exempt[n_exempt]) != 0) {
            wtt_log(WTT_LOG_WARN, "http.per_ip_exempt_ignored", "entry", tok,
                    "reason", "not an address or CIDR range", NULL);
            continue;
        }
        n_exempt++;
    }
    return n_exempt > 0 ? 0 : limit;
}


int
wtt__http_peers_counting(void)
{
    return n_exempt > 0;
}


static unsigned
hash_of(int family, const unsigned char addr[16])
{
    uint32_t h = 2166136261u ^ (uint32_t) family;

    for (int i = 0; i < 16; i++) {
        h = (h ^ addr[i]) * 16777619u;
    }
    return h % BUCKETS;
}


/* Counts one more connection from the address; returns its entry (held
 * in the connection's socket context) and whether it is over the limit. */
static peer_t *
peer_add(int family, const unsigned char addr[16], int *over)
{
    unsigned h = hash_of(family, addr);
    peer_t  *p;

    pthread_mutex_lock(&peers_lock);
    for (p = buckets[h]; p != NULL; p = p->next) {
        if (p->family == family && memcmp(p->addr, addr, 16) == 0) {
            break;
        }
    }
    if (p == NULL) {
        p = wtt_calloc(1, sizeof(*p));
        p->family = family;
        memcpy(p->addr, addr, 16);
        p->next = buckets[h];
        buckets[h] = p;
    }
    p->count++;
    *over = p->count > limit;
    pthread_mutex_unlock(&peers_lock);
    return p;
}


static void
peer_del(peer_t *p)
{
    unsigned h;

    pthread_mutex_lock(&peers_lock);
    if (--p->count == 0) {
        h = hash_of(p->family, p->addr);
        for (peer_t **pp = &buckets[h]; *pp != NULL; pp = &(*pp)->next) {
            if (*pp == p) {
                *pp = p->next;
                break;
            }
        }
        free(p);
    }
    pthread_mutex_unlock(&peers_lock);
}


void
wtt__http_on_connection(void *cls, struct MHD_Connection *conn,
                        void **socket_context,
                        enum MHD_ConnectionNotificationCode toe)
{
    const union MHD_ConnectionInfo *ci;
    unsigned char                   addr[16];
    int                             family, over = 0;

    (void) cls;
    if (toe == MHD_CONNECTION_NOTIFY_CLOSED) {
        if (*socket_context != NULL) {
            peer_del(*socket_context);
            *socket_context = NULL;
        }
        return;
    }
    *socket_context = NULL;
    ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (ci == NULL || ci->client_addr == NULL
        || address_of(ci->client_addr, &family, addr) != 0
        || is_exempt(family, addr))
    {
        return;
    }
    *socket_context = peer_add(family, addr, &over);
    if (over) {
        ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        if (ci != NULL) {
            shutdown(ci->connect_fd, SHUT_RDWR);
        }
    }
}
