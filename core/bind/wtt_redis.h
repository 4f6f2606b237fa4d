/*
 * wtt_redis.h: the C half of wtt.redis (Lua module `wtt.core.redis`;
 * lua/wtt/redis.lua is the public API and docs/redis.md describes both).
 *
 * One userdata ("wtt.redis.conn") is one connection to one Redis server,
 * over TCP, a unix socket or TLS. hiredis (0.14, no TLS in Debian 12) is used
 * only for its reply parser (redisReader) and its command formatter
 * (redisFormatCommandArgv); the socket and TLS (OpenSSL) I/O, with poll()
 * deadlines, are done here. Lua API:
 *
 *     local core = require "wtt.core.redis"
 *     local c, err = core.connect("127.0.0.1", 6379, { tls = true,
 *         ca_file = "ca.crt", connect_timeout = 5, timeout = 10 })
 *     local v, err = c:call("GET", "k")       -- nil, nil: nil reply
 *     local list, err = c:pipeline({ { "SET", "a", 1 }, { "GET", "a" } })
 *     c:write("SUBSCRIBE", "ch"); local msg, err = c:read(1.5)
 *     c:close()
 *     core.null, core.sha1hex(s)
 *
 * The full contract is documented above each binding in the .c file.
 *
 * Thread-safety: a connection belongs to the lua_State that made it and
 * must only be used by the thread running that state (house style 22).
 * The module keeps one process-wide object, the custom OpenSSL BIO method,
 * created once under pthread_once and never freed.
 */
#ifndef WTT_REDIS_H
#define WTT_REDIS_H

#include <lua.h>

/*
 * Opens `wtt.core.redis`: registers the "wtt.redis.conn" metatable and
 * pushes the module table (connect, sha1hex, null). Stack: before [], after
 * [module]. Returns 1. Never fails short of a Lua memory error. Owns nothing
 * it returns: connections belong to the Lua state and are released by their
 * __gc (or close).
 */
int luaopen_wtt_redis(lua_State *L);

#endif
