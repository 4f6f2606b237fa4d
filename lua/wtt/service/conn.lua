--- Per-Lua-state connections of the service: PostgreSQL, Redis and the
-- queue on top of Redis. Each serving thread has its own Lua state, so each
-- gets its own connections (docs/architecture.md, house style 22); they
-- are made on first use and reconnect by themselves (wtt.pg, wtt.redis).
-- Nothing here raises on an outage: callers get nil, err and answer 503.

local pg = require "wtt.pg"
local redis = require "wtt.redis"
local config = require "wtt.service.config"

local _M = {}

local db, r, q


--- The PostgreSQL handle of this state | nil, err.
function _M.pg()
    if db then
        return db
    end
    local cfg = config.get()
    if not cfg.database_url then
        return nil, "DATABASE_URL is not set"
    end
    local h, err = pg.connect(cfg.database_url, {
        connect_timeout = 3, statement_timeout_ms = 10000,
        application_name = "wtt web",
    })
    if not h then
        return nil, err
    end
    db = h
    return db
end


--- The Redis client of this state (lazy: connects on the first command).
function _M.redis()
    if r then
        return r
    end
    local cfg = config.get()
    local c, err = redis.connect(cfg.redis_url, {
        lazy = true, connect_timeout = 2, timeout = 5, backoff_max = 2,
    })
    if not c then
        return nil, err
    end
    r = c
    return r
end


--- The queue (wtt.queue) on this state's Redis client | nil, err.
function _M.queue()
    if q then
        return q
    end
    local c, err = _M.redis()
    if not c then
        return nil, err
    end
    q = require("wtt.queue").new(c, { prefix = config.get().key_prefix })
    return q
end


--- Forgets the connections (tests; after a fork).
function _M.reset()
    if db then db:close() end
    if r then r:close() end
    db, r, q = nil, nil, nil
end

return _M
