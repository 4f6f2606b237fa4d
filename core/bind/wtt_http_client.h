/*
 * wtt_http_client.h: the `wtt.http_client` Lua module, an HTTP client on libcurl.
 *
 * Lua API (errors follow house style 13: wrong argument types raise, network
 * and file failures return nil, err with err = "request failed: ..."):
 *
 *     local httpc = require "wtt.http_client"
 *     local res, err = httpc.request{ url = "http://127.0.0.1:8008/x",
 *                                     method = "POST", body = "...",
 *                                     timeout = 10, max_size = 1e6 }
 *     -- res.status, res.headers["content-type"], res.body, res.size, ...
 *     local c = httpc.new()          -- own handle and connection cache
 *     res, err = c:request{ url = ... }
 *     c:close()
 *     httpc.escape(s), httpc.unescape(s)
 *
 * The full option list is documented above l_request in the .c file.
 *
 * Thread-safety: curl_global_init runs once per process (pthread_once) the
 * first time any lua_State opens the module. Each lua_State keeps its own
 * default easy handle in its registry, so states on different threads never
 * share a handle; a lua_State itself must not be used by two threads (house
 * style 22).
 */
#ifndef WTT_HTTP_CLIENT_H
#define WTT_HTTP_CLIENT_H

#include <lua.h>

/*
 * Opens the `wtt.http_client` module: makes sure libcurl is initialised, registers
 * the "wtt.http_client.client" and "wtt.http_client.request" metatables and pushes a new
 * module table (request, new, escape, unescape). Returns 1 (the table).
 * Raises a Lua error when curl_global_init failed. Owns nothing it returns:
 * the table and the handles it later creates belong to the Lua state.
 */
int luaopen_wtt_http_client(lua_State *L);

#endif
