--- Pub/sub for wtt.redis: the subscribe loop on its own connection, with
-- confirmations, PING checks of a silent link and reconnects with backoff.
-- `client` holds the method wtt.redis puts on every client (subscribe).

local sys = require "wtt.sys"
local internal = require "wtt.redis.internal"

local type = type
local error = error
local pcall = pcall
local tostring = tostring
local min = math.min
local str_format = string.format
local now = sys.now
local sleep = sys.sleep
local open = internal.open
local backoff_delay = internal.backoff_delay
local check_timeout = internal.check_timeout

local _M = {}

--- Client methods; wtt.redis copies them onto its client method table.
local client = {}
_M.client = client


local function as_list(v, name)
    if v == nil then
        return {}
    end
    if type(v) == "string" then
        return { v }
    end
    if type(v) ~= "table" then
        error("bad argument to 'subscribe' (" .. name
              .. " must be a string or an array)", 3)
    end
    for i = 1, #v do
        if type(v[i]) ~= "string" then
            error("bad argument to 'subscribe' (" .. name
                  .. " must hold strings)", 3)
        end
    end
    return v
end


-- Sends `cmd` with the names in `list`; nothing when the list is empty.
local function send_names(conn, cmd, list)
    if #list == 0 then
        return true
    end
    local argv = { cmd }
    for i = 1, #list do
        argv[i + 1] = list[i]
    end
    return conn:writev(argv)
end


-- Opens a connection and sends SUBSCRIBE / PSUBSCRIBE (confirmations are
-- counted by the loop). Returns conn or nil, err.
local function sub_open(cfg, channels, patterns)
    -- cfg.open: a cluster client's opener (any node that answers).
    local conn, err = (cfg.open or open)(cfg)
    if not conn then
        return nil, err
    end
    local ok
    ok, err = send_names(conn, "SUBSCRIBE", channels)
    if ok then
        ok, err = send_names(conn, "PSUBSCRIBE", patterns)
    end
    if not ok then
        conn:close()
        return nil, err
    end
    return conn
end


local function sub_stop(st)
    local conn = st.conn
    st.conn = nil
    if conn then
        conn:write("UNSUBSCRIBE")
        conn:write("PUNSUBSCRIBE")
        conn:close()
    end
    return true
end


-- The subscribe loop proper; runs under pcall so the caller can always
-- close the connection (st.conn). Returns true | nil, err.
local function sub_loop(cfg, st, channels, patterns, on_message, opts)
    local tick = opts.tick or 1
    local on_tick = opts.on_tick
    local on_ready = opts.on_ready
    local on_reconnect = opts.on_reconnect
    local max_reconnects = opts.max_reconnects
    local ping_interval = opts.ping_interval or 30
    local nsubs = #channels + #patterns

    local conn, err = sub_open(cfg, channels, patterns)
    if not conn then
        return nil, "subscribe failed: " .. err
    end
    st.conn = conn

    local sessions = 1                 -- successful (re)subscriptions
    local pending = nsubs              -- confirmations still to come
    local confirm_by = now() + cfg.timeout
    local last_rx = now()
    local pong_by = nil                -- a PING is out, answer by then
    local attempts = 0                 -- failed reconnects in a row
    local retry_at = nil
    local last_err = nil
    local next_tick = now() + tick

    -- After a confirmed session the first attempt is immediate; a session
    -- that never got confirmed counts as a failed attempt.
    local function lost(why)
        conn:close()
        conn = nil
        st.conn = nil
        last_err = why
        retry_at = now()
        if attempts > 0 then
            retry_at = retry_at + backoff_delay(cfg, attempts)
        end
    end

    while true do
        local t = now()
        if conn then
            local wait = next_tick - t
            if confirm_by and confirm_by - t < wait then
                wait = confirm_by - t
            end
            if pong_by and pong_by - t < wait then
                wait = pong_by - t
            end
            if wait < 0 then
                wait = 0
            end
            local msg, rerr = conn:read(wait)
            if msg ~= nil then
                last_rx = now()
                local kind = msg[1]
                if kind == "message" then
                    if on_message("message", msg[2], msg[3]) == false then
                        return sub_stop(st)
                    end
                elseif kind == "pmessage" then
                    if on_message("pmessage", msg[3], msg[4], msg[2])
                       == false
                    then
                        return sub_stop(st)
                    end
                elseif kind == "subscribe" or kind == "psubscribe" then
                    pending = pending - 1
                    if pending == 0 then
                        confirm_by = nil
                        attempts = 0
                        local cb = sessions == 1 and on_ready or on_reconnect
                        if cb and cb() == false then
                            return sub_stop(st)
                        end
                    end
                elseif kind == "pong" then
                    pong_by = nil
                end
            elseif rerr ~= "timeout" then
                if not conn:broken() then
                    -- An error reply (NOPERM, ...) will not go away.
                    sub_stop(st)
                    return nil, "subscribe failed: " .. tostring(rerr)
                end
                lost(rerr)
            end

            t = now()
            if conn and confirm_by and t >= confirm_by then
                lost("subscribe failed: no confirmation within "
                     .. cfg.timeout .. "s")
            elseif conn and pong_by and t >= pong_by then
                lost("subscribe failed: no answer to ping within "
                     .. cfg.timeout .. "s")
            elseif conn and not pong_by and not confirm_by
                   and t - last_rx >= ping_interval
            then
                local ok, werr = conn:write("PING")
                if ok then
                    pong_by = t + cfg.timeout
                else
                    lost(werr)
                end
            end
        elseif t >= retry_at then
            if max_reconnects and attempts >= max_reconnects then
                return nil, str_format("subscribe failed: gave up after %d "
                                       .. "reconnect attempts: %s",
                                       attempts, tostring(last_err))
            end
            attempts = attempts + 1
            conn, err = sub_open(cfg, channels, patterns)
            if conn then
                st.conn = conn
                sessions = sessions + 1
                pending = nsubs
                confirm_by = now() + cfg.timeout
                pong_by = nil
                last_rx = now()
            else
                last_err = err
                retry_at = now() + backoff_delay(cfg, attempts)
            end
        else
            sleep(min(retry_at, next_tick) - t)
        end

        if now() >= next_tick then
            next_tick = now() + tick
            if on_tick and on_tick() == false then
                return sub_stop(st)
            end
        end
    end
end


--- Subscribes and runs the message loop until told to stop.
-- Uses its own connection (made from the client's URL and options, never
-- the command connection), so the client stays usable from callbacks.
-- @param channels channel name or array (SUBSCRIBE), may be nil
-- @param patterns pattern or array (PSUBSCRIBE), may be nil
-- @param on_message function(kind, channel, payload, pattern): kind is
--   "message" or "pmessage" (pattern set only then)
-- @param opts optional: `tick` (s, default 1): `on_tick()` runs at least
--   this often; `on_ready()` once the first subscriptions are confirmed;
--   `on_reconnect()` after the subscriptions were re-established on a new
--   connection (drain backlogs there); `max_reconnects` (consecutive
--   failed attempts before giving up; default unlimited);
--   `ping_interval` (s of silence before a PING checks the link, default
--   30). Any callback returning false ends the loop.
-- @return true when a callback returned false (unsubscribed and closed) |
--   nil, err (first connect failed, an error reply, or reconnects gave up).
--   An error raised by a callback closes the connection and propagates.
function client.subscribe(self, channels, patterns, on_message, opts)
    return client.subscribe_cfg(self, self.cfg, channels, patterns,
                                on_message, opts)
end


-- subscribe with another config: a cluster client's (lua/wtt/redis/
-- cluster.lua) opens its connections to any node of the cluster.
function client.subscribe_cfg(self, cfg, channels, patterns, on_message,
                              opts)
    channels = as_list(channels, "channels")
    patterns = as_list(patterns, "patterns")
    if #channels + #patterns == 0 then
        error("bad argument to 'subscribe' (no channels or patterns)", 2)
    end
    if type(on_message) ~= "function" then
        error("bad argument #3 to 'subscribe' (function expected)", 2)
    end
    opts = opts or {}
    if opts.tick ~= nil then
        check_timeout(opts.tick, "tick")
    end
    if opts.ping_interval ~= nil then
        check_timeout(opts.ping_interval, "ping_interval")
    end
    if self.closed then
        return nil, "closed"
    end
    local st = { conn = nil }
    local ok, res, err = pcall(sub_loop, cfg, st, channels, patterns,
                               on_message, opts)
    if st.conn then
        st.conn:close()
        st.conn = nil
    end
    if not ok then
        error(res, 0)
    end
    return res, err
end

return _M
