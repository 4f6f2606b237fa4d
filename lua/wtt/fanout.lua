--- Following Redis pub/sub channels from a serving thread through the
-- process's one pub/sub connection: the fan-out hub
-- (core/bind/wtt_fanout.h; docs/web.md "Fan-out").
--
--     local fanout = require "wtt.fanout"
--     local c, err = fanout.open({ { "task:progress:" .. id },
--                                  { "task:completed", id } },
--                                { capacity = 65536, waker = w,
--                                  redis_url = "redis://127.0.0.1:6379" })
--     local kind, stamp, channel, payload = c:take()
--     c:close()
--
-- The first open starts the hub thread (lua/wtt/fanout/thread.lua), which
-- connects to that open's `redis_url` and keeps exactly the channels some
-- client follows subscribed.

local core = require "wtt.core.fanout"

local _M = {}

local MIN_CAPACITY = 1024

local script


-- The hub thread's script, found where this module was.
local function hub_script()
    if not script then
        script = assert(package.searchpath("wtt.fanout.thread", package.path),
                        "lua/wtt/fanout/thread.lua not found")
    end
    return script
end


--- Opens a client on `routes` (array of { channel, key? }).
-- @param opts { capacity = bytes (default 64 KiB), waker = httpd.waker(...),
--   redis_url = the hub's Redis (used by the open that starts it) }
-- @return client | nil, err (the hub thread could not start)
function _M.open(routes, opts)
    opts = opts or {}
    local ok, err = core.start(hub_script(), opts.redis_url
                                             or "redis://127.0.0.1:6379")
    if not ok then
        return nil, err
    end
    local capacity = math.max(MIN_CAPACITY, math.floor(opts.capacity or 65536))
    return core.open(routes, capacity, opts.waker)
end


--- The hub's counters: { clients, channels, subscribed, delivered,
-- dropped, hub }.
_M.stats = core.stats

return _M
