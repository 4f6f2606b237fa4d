--- The fan-out hub's loop (on its own thread: lua/wtt/fanout/thread.lua):
-- one Redis pub/sub connection for the whole process. It SUBSCRIBEs to
-- what clients follow and UNSUBSCRIBEs what they stopped following (as
-- wtt.core.fanout's hub_changes says), hands confirmations and messages
-- to the fan-out (hub_confirmed, hub_deliver), and waits on the Redis
-- socket and the fan-out's wake-up together (hub_wait), so a new channel
-- is subscribed at once, not at the next tick.
--
-- A lost connection resets the fan-out (every client then waits for a new
-- sync and reads the current state again) and is made again with the
-- client's backoff. A silent link is checked with PING.

local core = require "wtt.core.fanout"
local redis = require "wtt.redis"
local internal = require "wtt.redis.internal"
local log = require "wtt.log"
local sys = require "wtt.sys"

local type = type
local unpack = unpack
local now = sys.now

local _M = {}

_M.PING_INTERVAL = 30      -- s of silence before a PING
_M.BATCH = 256             -- channels per SUBSCRIBE / UNSUBSCRIBE


-- Sends `cmd` for every name in `list`, in batches.
local function send(conn, cmd, list)
    for i = 1, #list, _M.BATCH do
        local ok, err = conn:writev({ cmd, unpack(list, i,
                                                  math.min(#list, i + _M.BATCH - 1)) })
        if not ok then
            return nil, err
        end
    end
    return true
end


-- Serves one connection until it fails (nil, err) or the hub stops (true).
local function serve(conn, timeout)
    local last_rx, pong_by = now(), nil
    while true do
        local subs, unsubs = core.hub_changes()
        local ok, err = send(conn, "SUBSCRIBE", subs)
        if ok then
            ok, err = send(conn, "UNSUBSCRIBE", unsubs)
        end
        if not ok then
            return nil, err
        end
        -- Everything that arrived; a timeout leaves nothing buffered.
        while true do
            local msg, rerr = conn:read(0)
            if msg == nil then
                if rerr ~= "timeout" then
                    return nil, rerr or "connection closed"
                end
                break
            end
            last_rx = now()
            if type(msg) == "table" then
                local kind = msg[1]
                if kind == "message" then
                    core.hub_deliver(msg[2], msg[3])
                elseif kind == "subscribe" then
                    core.hub_confirmed(msg[2])
                elseif kind == "pong" then
                    pong_by = nil
                end
            elseif msg == "PONG" then
                pong_by = nil      -- no channel subscribed: a plain reply
            end
        end
        local t = now()
        if pong_by and t >= pong_by then
            return nil, "no answer to PING within " .. timeout .. " s"
        end
        if not pong_by and t - last_rx >= _M.PING_INTERVAL then
            ok, err = conn:write("PING")
            if not ok then
                return nil, err
            end
            pong_by = t + timeout
        end
        local wait = pong_by and pong_by - t or _M.PING_INTERVAL - (t - last_rx)
        if core.hub_wait(conn:fd(), wait) == "stop" then
            return true
        end
    end
end


--- Runs the hub on the Redis at `url` until wtt_fanout_stop (serve's
-- shutdown).
function _M.run(url)
    local client = assert(redis.connect(url, {
        lazy = true, connect_timeout = 3, timeout = 5, backoff_max = 2,
    }))
    local rcfg = client.cfg
    local failures = 0
    log.info("fanout.hub_starting", {})
    while not core.hub_stopping() do
        local conn, err = internal.open(rcfg)
        if conn then
            core.hub_reset()
            if failures > 0 then
                log.info("fanout.hub_reconnected", {})
            end
            failures = 0
            local ok, res, serr = pcall(serve, conn, rcfg.timeout)
            pcall(conn.close, conn)
            if not ok then
                error(res, 0)
            end
            if res then
                break
            end
            err = serr
        end
        failures = failures + 1
        log.warn("fanout.hub_disconnected", { error = tostring(err),
                                              attempt = failures })
        -- The whole delay: clients arriving meanwhile must not turn the
        -- backoff into a reconnect each.
        local retry_at = now() + internal.backoff_delay(rcfg, failures)
        while now() < retry_at
              and core.hub_wait(nil, retry_at - now()) ~= "stop" do
        end
    end
    -- Whatever stays subscribed goes with the connection.
    core.hub_reset()
    return true
end

return _M
