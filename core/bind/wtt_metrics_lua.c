/*
 * wtt_metrics_lua.c: the `wtt.core.metrics` Lua module (see
 * wtt_metrics_lua.h).
 *
 * The listener is one thread serving one connection at a time: a scrape
 * is one short request every few seconds, so it needs no event loop, and
 * it runs no Lua (the store renders in C), so a worker busy in the model
 * still answers. It stops and is joined when its state closes.
 */
#include "wtt_metrics_lua.h"
#include "wtt_metrics.h"
#include "wtt_log.h"
#include "wtt_util.h"

#include <errno.h>
#include <fcntl.h>
#include <lauxlib.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define REQUEST_MAX  8192


static enum wtt_metric_type
type_arg(lua_State *L, int idx)
{
    static const char *const names[] = { "counter", "gauge", "histogram",
                                         NULL };
    return (enum wtt_metric_type) luaL_checkoption(L, idx, NULL, names);
}


/*
 * metrics.family(name, help, type, labels, buckets?) -> index | nil, err.
 * Registering a name again with the same shape returns the same index.
 */
static int
l_family(lua_State *L)
{
    const char          *name = luaL_checkstring(L, 1);
    const char          *help = luaL_checkstring(L, 2);
    enum wtt_metric_type type = type_arg(L, 3);
    const char          *labels[WTT_METRICS_MAX_LABELS];
    double               buckets[WTT_METRICS_MAX_BUCKETS];
    int                  nlabels = 0, nbuckets = 0, f;
    char                 err[256];

    if (!lua_isnoneornil(L, 4)) {
        luaL_checktype(L, 4, LUA_TTABLE);
        nlabels = (int) lua_objlen(L, 4);
        if (nlabels > WTT_METRICS_MAX_LABELS) {
            return luaL_argerror(L, 4, "too many labels");
        }
        for (int i = 0; i < nlabels; i++) {
            lua_rawgeti(L, 4, i + 1);
            labels[i] = lua_tostring(L, -1);   /* kept alive by the table */
            lua_pop(L, 1);
            if (labels[i] == NULL) {
                return luaL_argerror(L, 4, "label names must be strings");
            }
        }
    }
    if (!lua_isnoneornil(L, 5)) {
        luaL_checktype(L, 5, LUA_TTABLE);
        nbuckets = (int) lua_objlen(L, 5);
        if (nbuckets > WTT_METRICS_MAX_BUCKETS) {
            return luaL_argerror(L, 5, "too many buckets");
        }
        for (int i = 0; i < nbuckets; i++) {
            lua_rawgeti(L, 5, i + 1);
            buckets[i] = lua_tonumber(L, -1);
            lua_pop(L, 1);
        }
    }
    f = wtt_metrics_family(name, help, type, labels, nlabels, buckets,
                           nbuckets, err, sizeof(err));
    if (f < 0) {
        lua_pushnil(L);
        lua_pushstring(L, err);
        return 2;
    }
    lua_pushinteger(L, f);
    return 1;
}


/* The series of family arg 1 with the label values from arg 3 on. */
static wtt_series_t *
series_arg(lua_State *L)
{
    const char *values[WTT_METRICS_MAX_LABELS] = { NULL };
    int         f = (int) luaL_checkinteger(L, 1);
    int         n = lua_gettop(L) - 2;

    if (n > WTT_METRICS_MAX_LABELS) {
        n = WTT_METRICS_MAX_LABELS;
    }
    for (int i = 0; i < n; i++) {
        /* Numbers become strings in place (these are arguments); a
         * missing value is the empty string. */
        values[i] = lua_tostring(L, 3 + i);
    }
    return wtt_metrics_series(f, values);
}


/* metrics.add(family, v, labels...): counter or gauge. */
static int
l_add(lua_State *L)
{
    double v = luaL_checknumber(L, 2);
    wtt_metrics_add(series_arg(L), v);
    return 0;
}


/* metrics.set(family, v, labels...): gauge. */
static int
l_set(lua_State *L)
{
    double v = luaL_checknumber(L, 2);
    wtt_metrics_set(series_arg(L), v);
    return 0;
}


/* metrics.observe(family, v, labels...): histogram. */
static int
l_observe(lua_State *L)
{
    double v = luaL_checknumber(L, 2);
    wtt_metrics_observe(series_arg(L), v);
    return 0;
}


/* metrics.render() -> the store as exposition text | nil, err. */
static int
l_render(lua_State *L)
{
    size_t len;
    char  *text = wtt_metrics_render(&len);

    if (text == NULL) {
        lua_pushnil(L);
        lua_pushliteral(L, "out of memory");
        return 2;
    }
    lua_pushlstring(L, text, len);
    free(text);
    return 1;
}


/* ---------------------------------------------------------------------------
 * The listener
 * ------------------------------------------------------------------------- */

static void
send_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            return;
        }
        p += w;
        n -= (size_t) w;
    }
}


static void
respond(int fd, int status, const char *reason, const char *ctype,
        const char *body, size_t len, int head)
{
    char hdr[256];
    int  h = snprintf(hdr, sizeof(hdr),
                      "HTTP/1.1 %d %s\r\nContent-Type: %s\r\n"
                      "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                      status, reason, ctype, len);
    send_all(fd, hdr, (size_t) h);
    if (!head) {
        send_all(fd, body, len);
    }
}


/* One request per connection: read its head, answer, close. */
static void
serve_one(int fd)
{
    char   req[REQUEST_MAX + 1];
    size_t got = 0;
    int    head;

    while (got < REQUEST_MAX) {
        ssize_t r = recv(fd, req + got, REQUEST_MAX - got, 0);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r <= 0) {
            return;      /* gone, or slower than the receive timeout */
        }
        got += (size_t) r;
        req[got] = '\0';
        if (strstr(req, "\r\n\r\n") != NULL || strstr(req, "\n\n") != NULL) {
            break;
        }
    }
    req[got] = '\0';
    head = strncmp(req, "HEAD ", 5) == 0;
    if (strncmp(req, "GET /metrics ", 13) == 0
        || strncmp(req, "GET /metrics?", 13) == 0
        || strncmp(req, "HEAD /metrics ", 14) == 0)
    {
        size_t len;
        char  *text = wtt_metrics_render(&len);
        if (text == NULL) {
            respond(fd, 500, "Internal Server Error", "text/plain", "", 0, 0);
            return;
        }
        respond(fd, 200, "OK", "text/plain; version=0.0.4; charset=utf-8",
                text, len, head);
        free(text);
        return;
    }
    respond(fd, 404, "Not Found", "text/plain", "only /metrics here\n", 19,
            head);
}


/* A listener: its socket, the pipe that wakes its thread to stop, and the
 * thread. The userdata lives in the registry of the state that started it,
 * so closing that state (os.exit closes it) stops the thread and joins it:
 * nothing runs on in a process that is ending. */
struct listener {
    int       fd;
    int       wake[2];
    pthread_t tid;
    int       started;
};

#define LISTENER_MT  "wtt.metrics.listener"


static void *
listener_main(void *arg)
{
    struct listener *l = arg;
    struct timeval   tv = { 2, 0 };
    char             ebuf[128];

    for (;;) {
        struct pollfd pf[2] = { { l->fd, POLLIN, 0 },
                                { l->wake[0], POLLIN, 0 } };
        int           fd;

        if (poll(pf, 2, -1) < 0) {
            if (errno == EINTR) {
                continue;
            }
            wtt_log(WTT_LOG_ERROR, "metrics.poll_failed", "error",
                    wtt_strerror(errno, ebuf, sizeof(ebuf)), NULL);
            return NULL;
        }
        if (pf[1].revents != 0) {
            return NULL;          /* stopping */
        }
        if (pf[0].revents == 0) {
            continue;
        }
        /* The listening socket is non-blocking (a connection reset between
         * poll and accept must not block the thread past a stop); the
         * accepted one is blocking, with timeouts. */
        fd = accept4(l->fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED || errno == EAGAIN
                || errno == EWOULDBLOCK || errno == EPROTO)
            {
                continue;
            }
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS
                || errno == ENOMEM)
            {
                usleep(100 * 1000);
                continue;
            }
            wtt_log(WTT_LOG_ERROR, "metrics.accept_failed", "error",
                    wtt_strerror(errno, ebuf, sizeof(ebuf)), NULL);
            return NULL;
        }
        /* A client that never sends its request cannot hold the thread
         * (nor a stop) for more than these. */
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        serve_one(fd);
        close(fd);
    }
}


/* Stops the thread, joins it and closes the sockets; again is a no-op. */
static void
listener_stop(struct listener *l)
{
    if (l->started) {
        ssize_t w;
        do {
            w = write(l->wake[1], "x", 1);
        } while (w < 0 && errno == EINTR);
        pthread_join(l->tid, NULL);
        l->started = 0;
    }
    for (int i = 0; i < 2; i++) {
        if (l->wake[i] >= 0) {
            close(l->wake[i]);
            l->wake[i] = -1;
        }
    }
    if (l->fd >= 0) {
        close(l->fd);
        l->fd = -1;
    }
}


static int
l_listener_gc(lua_State *L)
{
    listener_stop(luaL_checkudata(L, 1, LISTENER_MT));
    return 0;
}


/* nil, "<addr>: <reason>" after closing what `l` holds so far. */
static int
listen_failed(lua_State *L, struct listener *l, const char *addr,
              const char *reason)
{
    listener_stop(l);
    lua_pushnil(L);
    lua_pushfstring(L, "%s: %s", addr, reason);
    return 2;
}


/*
 * metrics.listen("HOST:PORT") -> port | nil, err: serves GET /metrics on a
 * thread of its own until the calling state is closed (port 0: any free
 * port, the one bound is returned). "[::1]:PORT" for IPv6.
 */
static int
l_listen(lua_State *L)
{
    const char      *addr = luaL_checkstring(L, 1);
    const char      *colon = strrchr(addr, ':');
    char             host[256], port[16], bound[NI_MAXSERV];
    struct addrinfo  hints, *res = NULL;
    struct sockaddr_storage ss;
    socklen_t        sslen = sizeof(ss);
    struct listener *l;
    int              rc, one = 1;
    size_t           hl;
    char             ebuf[128];

    if (colon == NULL || colon[1] == '\0' || (size_t) (colon - addr) >= sizeof(host)
        || strlen(colon + 1) >= sizeof(port))
    {
        lua_pushnil(L);
        lua_pushfstring(L, "bad address '%s' (HOST:PORT)", addr);
        return 2;
    }
    hl = (size_t) (colon - addr);
    if (hl >= 2 && addr[0] == '[' && addr[hl - 1] == ']') {
        memcpy(host, addr + 1, hl - 2);
        host[hl - 2] = '\0';
    } else {
        memcpy(host, addr, hl);
        host[hl] = '\0';
    }
    snprintf(port, sizeof(port), "%s", colon + 1);
    /* getaddrinfo takes "99999" and binds its low 16 bits. */
    if (strspn(port, "0123456789") != strlen(port) || atol(port) > 65535) {
        lua_pushnil(L);
        lua_pushfstring(L, "bad port in '%s' (0 to 65535)", addr);
        return 2;
    }

    /* The userdata first: from here on its finalizer closes what is
     * opened, whichever step fails (or raises). */
    l = lua_newuserdata(L, sizeof(*l));
    l->fd = l->wake[0] = l->wake[1] = -1;
    l->started = 0;
    luaL_getmetatable(L, LISTENER_MT);
    lua_setmetatable(L, -2);

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV | AI_PASSIVE;
    rc = getaddrinfo(host[0] != '\0' ? host : NULL, port, &hints, &res);
    if (rc != 0 || res == NULL) {
        if (res != NULL) {
            freeaddrinfo(res);
        }
        return listen_failed(L, l, addr,
                             rc != 0 ? wtt_lowercase(gai_strerror(rc), ebuf,
                                                     sizeof(ebuf))
                                     : "no address");
    }
    l->fd = socket(res->ai_family,
                   res->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
                   res->ai_protocol);
    if (l->fd < 0) {
        int e = errno;
        freeaddrinfo(res);
        return listen_failed(L, l, addr,
                             wtt_strerror(e, ebuf, sizeof(ebuf)));
    }
    setsockopt(l->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(l->fd, res->ai_addr, res->ai_addrlen) != 0
        || listen(l->fd, 16) != 0)
    {
        int e = errno;
        freeaddrinfo(res);
        return listen_failed(L, l, addr,
                             wtt_strerror(e, ebuf, sizeof(ebuf)));
    }
    freeaddrinfo(res);
    if (getsockname(l->fd, (struct sockaddr *) &ss, &sslen) != 0
        || getnameinfo((struct sockaddr *) &ss, sslen, NULL, 0, bound,
                       sizeof(bound), NI_NUMERICSERV) != 0)
    {
        snprintf(bound, sizeof(bound), "%s", port);
    }
    if (pipe2(l->wake, O_CLOEXEC) != 0) {
        return listen_failed(L, l, addr,
                             wtt_strerror(errno, ebuf, sizeof(ebuf)));
    }
    rc = pthread_create(&l->tid, NULL, listener_main, l);
    if (rc != 0) {
        char reason[160];
        snprintf(reason, sizeof(reason), "cannot start the listener: %s",
                 wtt_strerror(rc, ebuf, sizeof(ebuf)));
        return listen_failed(L, l, addr, reason);
    }
    l->started = 1;
    /* Anchored for the state's life; its __gc runs at lua_close. */
    luaL_ref(L, LUA_REGISTRYINDEX);
    lua_pushinteger(L, atoi(bound));
    return 1;
}


int
luaopen_wtt_metrics(lua_State *L)
{
    static const luaL_Reg fns[] = {
        { "family",  l_family },
        { "add",     l_add },
        { "set",     l_set },
        { "observe", l_observe },
        { "render",  l_render },
        { "listen",  l_listen },
        { NULL, NULL },
    };

    if (luaL_newmetatable(L, LISTENER_MT)) {
        lua_pushcfunction(L, l_listener_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_pop(L, 1);
    lua_newtable(L);
    luaL_register(L, NULL, fns);
    return 1;
}
