--- Private helpers of wtt.redis shared by its parts (lua/wtt/redis.lua,
-- scripts.lua, pipeline.lua, subscribe.lua): the connection handshake,
-- the reconnect backoff, option and command checks, the READONLY test.
-- They live here, not in lua/wtt/redis.lua, because the parts need them
-- and wtt.redis requires the parts (a require back would be a cycle). Not
-- an API: only `backoff_delay` is public, re-exported as
-- `wtt.redis.backoff_delay`.

local core = require "wtt.core.redis"

local type = type
local error = error
local tostring = tostring
local str_byte = string.byte
local str_find = string.find
local str_format = string.format
local str_gsub = string.gsub
local str_upper = string.upper

local _M = {}

-- Commands that would turn the command connection into something else.
local REFUSED = {
    SUBSCRIBE = "use r:subscribe", PSUBSCRIBE = "use r:subscribe",
    SSUBSCRIBE = "use r:subscribe", MONITOR = "not supported",
}
local REFUSED_FIRST = { [115] = true, [83] = true, [112] = true, [80] = true,
                        [109] = true, [77] = true }   -- s S p P m M


-- Reconnect jitter (wtt.jitter), so that processes restarted together do
-- not retry in step.
local random = require("wtt.jitter").random


--- Delay before reconnect attempt `n + 1` after `n` failed ones: an
-- exponential backoff with "equal jitter" (half fixed, half random).
-- @param cfg client config (backoff_base, backoff_max)
-- @param n failed attempts so far (>= 1)
-- @return seconds
function _M.backoff_delay(cfg, n)
    local d = cfg.backoff_base * 2 ^ (n - 1)
    if d > cfg.backoff_max then
        d = cfg.backoff_max
    end
    return d / 2 + random() * d / 2
end


-- Opens one connection for `cfg` and runs the handshake (AUTH, SELECT),
-- all within connect_timeout. Returns a core conn or nil, err.
function _M.open(cfg)
    local conn, err
    if cfg.path then
        conn, err = core.connect(cfg.path, nil, cfg.core_opts)
    else
        conn, err = core.connect(cfg.host, cfg.port, cfg.core_opts)
    end
    if not conn then
        return nil, err
    end

    conn:settimeout(cfg.connect_timeout)
    local ok, step
    if cfg.password then
        step = "auth"
        if cfg.user then
            ok, err = conn:call("AUTH", cfg.user, cfg.password)
        else
            ok, err = conn:call("AUTH", cfg.password)
        end
    end
    if (ok or not step) and cfg.db ~= 0 then
        step = "select"
        ok, err = conn:call("SELECT", cfg.db)
    end
    if step and not ok then
        conn:close()
        err = str_gsub(tostring(err), "^call failed: ", "")
        return nil, "connect failed: " .. step .. ": " .. err
    end
    conn:settimeout(cfg.timeout)
    return conn
end


-- Raises for an option that is not a number > 0 (nil is allowed), at
-- the level of the caller of the function that checks.
function _M.check_timeout(v, name)
    if v ~= nil and (type(v) ~= "number" or not (v > 0)) then
        error("bad option '" .. name .. "' (number > 0 expected)", 3)
    end
end


-- Raises for a command name that is not a string, or that would turn the
-- command connection into something else (REFUSED).
function _M.check_command(cmd, level)
    if type(cmd) ~= "string" then
        error("bad argument #1 to 'call' (command name expected)", level)
    end
    if REFUSED_FIRST[str_byte(cmd, 1)] then
        local why = REFUSED[str_upper(cmd)]
        if why then
            error(str_format("%s on a command connection: %s", cmd, why),
                  level)
        end
    end
end


-- True for the error a demoted primary (failover) answers writes with:
-- the command did not run, so it is safe to retry on a new connection.
function _M.is_readonly(err)
    return str_byte(err, 1) == 82 and str_find(err, "^READONLY") ~= nil
end


return _M
