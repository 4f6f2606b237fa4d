/*
 * wtt_fanout.h: the fan-out hub (Lua module `wtt.core.fanout`): one Redis
 * pub/sub connection per process, shared by every client that follows a
 * channel, with a bounded buffer per client.
 *
 * Three parties:
 *
 *   - clients (event streams on the serving threads): `open` a set of
 *     routes, each a channel and optionally a key (only the channel's
 *     messages whose payload names that id), then `take` what arrived;
 *   - the hub thread, which owns the Redis connection: a Lua loop
 *     (lua/wtt/fanout/hub.lua) that sends the SUBSCRIBE/UNSUBSCRIBE this
 *     module asks for (`hub_changes`), reports confirmations
 *     (`hub_confirmed`) and hands over each message (`hub_deliver`), and
 *     waits on the Redis socket and this module's wake-up descriptor
 *     together (`hub_wait`);
 *   - the HTTP server, whose wakers (wtt_http_server.h) resume a parked
 *     stream as soon as its buffer gets data, and cut one that fell behind.
 *
 * A channel is subscribed while at least one client follows it and
 * unsubscribed when the last one leaves, so Redis's PUBSUB NUMSUB returns
 * to what it was. A client's buffer holds whole records up to its capacity;
 * one that would overflow drops the client (its stream is cut and resumes
 * with Last-Event-ID) and never delays the others. After every
 * (re)subscription a client gets a `sync` record once all its channels are
 * confirmed: from then on nothing published is missed, so it reads the
 * current state then (a late subscriber misses nothing; a Redis reconnect
 * loses nothing for good).
 *
 * Lua API (docs/web.md):
 *
 *   local fanout = require "wtt.core.fanout"
 *   fanout.start(script, redis_url)      -- the hub thread, once
 *   local c = fanout.open({ { "task:progress:ab12" },
 *                           { "task:completed", "ab12" } },
 *                         65536, waker)  -- waker: httpd.waker(ctx) or nil
 *   local kind, stamp, channel, payload = c:take()
 *       -- "message" | "sync" | "dropped" | nil (empty); stamp: sys.now()
 *       -- seconds when the hub received it
 *   c:close()                            -- also __gc
 *   fanout.stats()
 *
 * Thread-safety: everything shared is under one mutex; a client userdata
 * belongs to the state that opened it. Wakers are called after the mutex
 * is released.
 */
#ifndef WTT_FANOUT_H
#define WTT_FANOUT_H

#include <lua.h>

/* Lua module `wtt.core.fanout`. */
int luaopen_wtt_fanout(lua_State *L);

/*
 * Stops the hub thread, if it was started, and waits at most `timeout_s`
 * for it (its connection closes). For `wtt serve`, after the server
 * stopped. Returns 0, or -1 when it did not stop in time.
 */
int wtt_fanout_stop(double timeout_s);

#endif
