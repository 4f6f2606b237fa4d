/*
 * wtt_sys_net.c: `wtt.sys` network for tests: a free loopback port and the
 * raw TCP client (sys.tcp_connect, userdata "wtt.sys.conn") that protocol
 * specs use to send deliberately malformed or slow requests.
 */
#include "wtt_sys_private.h"
#include "wtt_luax.h"
#include "wtt_util.h"

#include <lauxlib.h>
#include <lua.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>


#define SYS_CONN_MT          "wtt.sys.conn"
#define SYS_RECV_DEFAULT     65536
#define SYS_RECV_ALL_MAX     (16 * 1024 * 1024)


/* A raw TCP connection. Zero-filled on creation, so `open` starts at 0 and
 * a userdata whose connect failed owns nothing (fd 0 is never closed). */
typedef struct {
    int fd;
    int open;
} sys_conn_t;


/* Returns the number option `name` (absent: `def`); raises when negative. */
static double
opt_field_timeout(lua_State *L, int idx, const char *name, double def)
{
    double t;

    if (idx == 0) {
        return def;
    }
    lua_getfield(L, idx, name);                      /* v */
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        return def;
    }
    if (lua_type(L, -1) != LUA_TNUMBER || !(lua_tonumber(L, -1) >= 0)) {
        luaL_argerror(L, idx,
                      lua_pushfstring(L, "'%s' must be a number >= 0", name));
    }
    t = lua_tonumber(L, -1);
    lua_pop(L, 1);
    return t > SYS_MAX_TIMEOUT ? SYS_MAX_TIMEOUT : t;
}


/* sys.free_port() -> port on 127.0.0.1 that is free right now | nil, err */
static int
l_free_port(lua_State *L)
{
    struct sockaddr_in sa;
    socklen_t          slen = sizeof(sa);
    int                fd, saved;

    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return wtt_lua_push_errno(L, "free_port", NULL, errno);
    }
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa.sin_port = 0;
    if (bind(fd, (struct sockaddr *) &sa, sizeof(sa)) != 0
        || getsockname(fd, (struct sockaddr *) &sa, &slen) != 0)
    {
        saved = errno;
        close(fd);
        return wtt_lua_push_errno(L, "free_port", NULL, saved);
    }
    close(fd);
    lua_pushinteger(L, ntohs(sa.sin_port));
    return 1;
}


/*
 * Connects a non-blocking socket to `ai`, first binding it to `src` (port 0)
 * when `src` is not NULL. Returns the fd, or -1 with a reason written to
 * `err` ("connection refused", "timeout", "bind: ...").
 */
static int
connect_one(const struct addrinfo *ai, const struct sockaddr_storage *src,
    socklen_t srclen, uint64_t deadline, char *err, size_t errlen)
{
    socklen_t  olen = sizeof(int);
    const char *s;
    char       reason[128];
    int        fd, rc, soerr = 0, one = 1;

    if (src != NULL && src->ss_family != ai->ai_family) {
        snprintf(err, errlen, "bind address family does not match host");
        return -1;
    }
    fd = socket(ai->ai_family,
                ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
                ai->ai_protocol);
    if (fd < 0) {
        soerr = errno;
        s = "socket: ";
        goto fail;
    }
    if (src != NULL && bind(fd, (const struct sockaddr *) src, srclen) != 0) {
        soerr = errno;
        s = "bind: ";
        goto fail;
    }

    rc = connect(fd, ai->ai_addr, ai->ai_addrlen);
    if (rc != 0 && errno != EINPROGRESS && errno != EINTR) {
        soerr = errno;
        s = "";
        goto fail;
    }
    if (rc != 0) {
        rc = wtt_wait_fd(fd, POLLOUT, deadline);
        if (rc == 0) {
            snprintf(err, errlen, "timeout");
            close(fd);
            return -1;
        }
        if (rc < 0
            || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &olen) != 0)
        {
            soerr = errno;
        }
        if (soerr != 0) {
            s = "";
            goto fail;
        }
    }

    /* Protocol tests send deliberately tiny pieces; do not coalesce them. */
    (void) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;

fail:
    snprintf(err, errlen, "%s%s", s,
             wtt_strerror(soerr, reason, sizeof(reason)));
    if (fd >= 0) {
        close(fd);
    }
    return -1;
}


/*
 * sys.tcp_connect(host, port, opts?) -> conn | nil, err
 *
 * opts: timeout (seconds for the whole connect, default 5), bind (numeric
 * local source address, e.g. "127.0.0.2"). The socket is non-blocking,
 * close-on-exec and has TCP_NODELAY set.
 */
static int
l_tcp_connect(lua_State *L)
{
    static const char *const known[] = { "timeout", "bind", NULL };
    const char              *host = luaL_checkstring(L, 1);
    lua_Integer              port = luaL_checkinteger(L, 2);
    struct sockaddr_storage  src;
    struct sockaddr_in      *s4 = (struct sockaddr_in *) &src;
    struct sockaddr_in6     *s6 = (struct sockaddr_in6 *) &src;
    struct addrinfo          hints, *res = NULL, *ai;
    socklen_t                srclen = 0;
    sys_conn_t              *c;
    const char              *bind_addr;
    uint64_t                 deadline;
    double                   timeout;
    char                     portstr[16], err[160];
    int                      opts, fd = -1, rc;

    luaL_argcheck(L, port > 0 && port < 65536, 2, "port must be 1..65535");
    opts = wtt_lua_opt_table(L, 3);
    if (opts) {
        wtt_lua_check_opts(L, opts, known);
    }
    timeout = opt_field_timeout(L, opts, "timeout", SYS_DEFAULT_TIMEOUT);
    bind_addr = wtt_lua_opt_string(L, opts, "bind", NULL, NULL);

    memset(&src, 0, sizeof(src));
    if (bind_addr != NULL) {
        if (inet_pton(AF_INET, bind_addr, &s4->sin_addr) == 1) {
            s4->sin_family = AF_INET;
            srclen = sizeof(*s4);
        } else if (inet_pton(AF_INET6, bind_addr, &s6->sin6_addr) == 1) {
            s6->sin6_family = AF_INET6;
            srclen = sizeof(*s6);
        } else {
            return luaL_argerror(L, 3, "'bind' must be a numeric ip address");
        }
    }

    lua_settop(L, 3);
    c = lua_newuserdata(L, sizeof(sys_conn_t));      /* host port opts c */
    memset(c, 0, sizeof(*c));
    luaL_getmetatable(L, SYS_CONN_MT);               /* host port opts c mt */
    lua_setmetatable(L, -2);                         /* host port opts c */

    deadline = wtt_deadline_after(timeout);
    snprintf(portstr, sizeof(portstr), "%d", (int) port);
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    rc = getaddrinfo(host, portstr, &hints, &res);
    if (rc != 0) {
        wtt_lowercase(gai_strerror(rc), err, sizeof(err));
        lua_pushnil(L);
        lua_pushfstring(L, "connect failed: resolve %s: %s", host, err);
        return 2;
    }

    snprintf(err, sizeof(err), "no address");
    for (ai = res; ai != NULL; ai = ai->ai_next) {
        fd = connect_one(ai, bind_addr ? &src : NULL, srclen, deadline,
                         err, sizeof(err));
        if (fd >= 0 || strcmp(err, "timeout") == 0) {
            break;
        }
    }
    freeaddrinfo(res);

    if (fd < 0) {
        lua_pushnil(L);
        lua_pushfstring(L, "connect failed: %s", err);
        return 2;
    }
    c->fd = fd;
    c->open = 1;
    return 1;                                        /* ... c */
}


static sys_conn_t *
check_conn(lua_State *L)
{
    return luaL_checkudata(L, 1, SYS_CONN_MT);
}


/*
 * conn:send(data, timeout?) -> bytes | nil, "timeout", sent
 *                            | nil, "closed", sent | nil, err, sent
 *
 * Sends all of data, waiting up to timeout seconds (default 5) in total for
 * the peer to take it. A reset or broken pipe reads as "closed".
 */
static int
l_conn_send(lua_State *L)
{
    sys_conn_t *c = check_conn(L);
    size_t      len, sent = 0;
    const char *data = luaL_checklstring(L, 2, &len);
    double      timeout = wtt__sys_opt_timeout(L, 3, SYS_DEFAULT_TIMEOUT);
    uint64_t    deadline;
    ssize_t     n;
    int         rc, nret;

    if (!c->open) {
        return wtt__sys_push_msg(L, "closed");
    }
    deadline = wtt_deadline_after(timeout);
    while (sent < len) {
        n = send(c->fd, data + sent, len - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n >= 0) {
            sent += (size_t) n;
            continue;
        }
        if (errno == EINTR) {
            continue;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            rc = wtt_wait_fd(c->fd, POLLOUT, deadline);
            if (rc > 0) {
                continue;
            }
            if (rc == 0) {
                nret = wtt__sys_push_msg(L, "timeout");
            } else {
                nret = wtt_lua_push_errno(L, "send", NULL, errno);
            }
        } else if (errno == EPIPE || errno == ECONNRESET) {
            nret = wtt__sys_push_msg(L, "closed");
        } else {
            nret = wtt_lua_push_errno(L, "send", NULL, errno);
        }
        lua_pushinteger(L, (lua_Integer) sent);      /* nil err sent */
        return nret + 1;
    }
    lua_pushinteger(L, (lua_Integer) sent);
    return 1;
}


/*
 * Reads what is available on `c` without blocking, up to `max` bytes, onto
 * the buffer `b`. Returns the byte count and sets `*state`: 0 more may come,
 * 1 peer closed (EOF), 2 connection reset, -1 error (errno saved in
 * `*err`).
 */
static size_t
drain(sys_conn_t *c, luaL_Buffer *b, size_t max, int *state, int *err)
{
    size_t  got = 0, want;
    ssize_t n;
    char   *p;

    *state = 0;
    while (got < max) {
        want = max - got;
        if (want > LUAL_BUFFERSIZE) {
            want = LUAL_BUFFERSIZE;
        }
        p = luaL_prepbuffer(b);
        n = recv(c->fd, p, want, MSG_DONTWAIT);
        if (n > 0) {
            luaL_addsize(b, (size_t) n);
            got += (size_t) n;
            continue;
        }
        if (n == 0) {
            *state = 1;
        } else if (errno == EINTR) {
            continue;
        } else if (errno == ECONNRESET) {
            *state = 2;
        } else if (errno != EAGAIN && errno != EWOULDBLOCK) {
            *state = -1;
            *err = errno;
        }
        break;
    }
    return got;
}


/*
 * conn:recv(max?, timeout?) -> data | nil, "timeout" | nil, "closed"[, "reset"]
 *                            | nil, err
 *
 * Waits at most timeout seconds (default 5) for data, then returns what is
 * available, up to max bytes (default 65536). Data that arrived before EOF
 * is returned first; the next call reports "closed".
 */
static int
l_conn_recv(lua_State *L)
{
    sys_conn_t *c = check_conn(L);
    lua_Integer max = luaL_optinteger(L, 2, SYS_RECV_DEFAULT);
    double      timeout = wtt__sys_opt_timeout(L, 3, SYS_DEFAULT_TIMEOUT);
    luaL_Buffer b;
    uint64_t    deadline;
    size_t      got;
    int         rc, state, err = 0;

    luaL_argcheck(L, max > 0, 2, "max must be > 0");
    if (!c->open) {
        return wtt__sys_push_msg(L, "closed");
    }
    deadline = wtt_deadline_after(timeout);
    lua_settop(L, 3);
    for (;;) {
        rc = wtt_wait_fd(c->fd, POLLIN, deadline);
        if (rc == 0) {
            return wtt__sys_push_msg(L, "timeout");
        }
        if (rc < 0) {
            return wtt_lua_push_errno(L, "recv", NULL, errno);
        }
        luaL_buffinit(L, &b);
        got = drain(c, &b, (size_t) max, &state, &err);
        luaL_pushresult(&b);                         /* ... data */
        if (got > 0) {
            return 1;
        }
        lua_pop(L, 1);
        if (state == 1) {
            return wtt__sys_push_msg(L, "closed");
        }
        if (state == 2) {
            wtt__sys_push_msg(L, "closed");
            lua_pushliteral(L, "reset");             /* nil "closed" "reset" */
            return 3;
        }
        if (state < 0) {
            return wtt_lua_push_errno(L, "recv", NULL, err);
        }
        /* woken without data: wait again until the deadline */
    }
}


/*
 * conn:recv_all(timeout?, max?) -> data, "closed" | data, "timeout"
 *                                | data, "limit" | nil, err
 *
 * Reads until the peer closes (or resets), timeout seconds pass (default 5)
 * or max bytes (default 16 MiB) have been read; returns everything read and
 * which of the three ended it.
 */
static int
l_conn_recv_all(lua_State *L)
{
    sys_conn_t *c = check_conn(L);
    double      timeout = wtt__sys_opt_timeout(L, 2, SYS_DEFAULT_TIMEOUT);
    lua_Integer max = luaL_optinteger(L, 3, SYS_RECV_ALL_MAX);
    luaL_Buffer b;
    const char *why;
    uint64_t    deadline;
    size_t      total = 0;
    int         rc, state = 0, err = 0;

    luaL_argcheck(L, max > 0, 3, "max must be > 0");
    if (!c->open) {
        return wtt__sys_push_msg(L, "closed");
    }
    deadline = wtt_deadline_after(timeout);
    lua_settop(L, 3);
    luaL_buffinit(L, &b);
    for (;;) {
        if (total >= (size_t) max) {
            why = "limit";
            break;
        }
        rc = wtt_wait_fd(c->fd, POLLIN, deadline);
        if (rc == 0) {
            why = "timeout";
            break;
        }
        if (rc < 0) {
            state = -1;
            err = errno;
            why = NULL;
            break;
        }
        total += drain(c, &b, (size_t) max - total, &state, &err);
        if (state != 0) {
            why = state > 0 ? "closed" : NULL;
            break;
        }
    }
    luaL_pushresult(&b);                             /* ... data */
    if (why == NULL) {
        lua_pop(L, 1);
        return wtt_lua_push_errno(L, "recv", NULL, err);
    }
    lua_pushstring(L, why);                          /* ... data why */
    return 2;
}


/* conn:shutdown(how?) -> true | nil, err; how: "write" (default), "read",
 * "both". */
static int
l_conn_shutdown(lua_State *L)
{
    static const char *const hows[] = { "read", "write", "both", NULL };
    static const int         vals[] = { SHUT_RD, SHUT_WR, SHUT_RDWR };
    sys_conn_t              *c = check_conn(L);
    int                      how = luaL_checkoption(L, 2, "write", hows);

    if (!c->open) {
        return wtt__sys_push_msg(L, "closed");
    }
    if (shutdown(c->fd, vals[how]) != 0) {
        return wtt_lua_push_errno(L, "shutdown", NULL, errno);
    }
    lua_pushboolean(L, 1);
    return 1;
}


/* conn:close() -> true; also __gc. Safe to call any number of times. */
static int
l_conn_close(lua_State *L)
{
    sys_conn_t *c = check_conn(L);

    if (c->open) {
        close(c->fd);
        c->open = 0;
        c->fd = -1;
    }
    lua_pushboolean(L, 1);
    return 1;
}


/* conn:fd() -> descriptor number | nil, "closed" */
static int
l_conn_fd(lua_State *L)
{
    sys_conn_t *c = check_conn(L);

    if (!c->open) {
        return wtt__sys_push_msg(L, "closed");
    }
    lua_pushinteger(L, c->fd);
    return 1;
}


static int
l_conn_tostring(lua_State *L)
{
    sys_conn_t *c = check_conn(L);

    if (c->open) {
        lua_pushfstring(L, SYS_CONN_MT " (fd %d)", c->fd);
    } else {
        lua_pushliteral(L, SYS_CONN_MT " (closed)");
    }
    return 1;
}


static const luaL_Reg conn_methods[] = {
    { "send",       l_conn_send },
    { "recv",       l_conn_recv },
    { "recv_all",   l_conn_recv_all },
    { "shutdown",   l_conn_shutdown },
    { "close",      l_conn_close },
    { "fd",         l_conn_fd },
    { "__gc",       l_conn_close },
    { "__tostring", l_conn_tostring },
    { NULL, NULL },
};


static const luaL_Reg net_funcs[] = {
    { "free_port",   l_free_port },
    { "tcp_connect", l_tcp_connect },
    { NULL, NULL },
};


/* Also registers the "wtt.sys.conn" metatable (once per state). */
void
wtt__sys_open_net(lua_State *L)
{
    wtt_lua_class(L, SYS_CONN_MT, conn_methods, conn_methods);
    luaL_register(L, NULL, net_funcs);               /* sys */
}
