-- The worker's heartbeat thread (started by lua/wtt/worker.lua with
-- wtt.thread). It runs on its own thread, in its own Lua state, with its own
-- Redis connection, so it keeps beating while inference blocks the worker's
-- main state in C for seconds at a time.
--
-- Its argument (`...`) is JSON:
--   { redis_url, prefix, worker_id, key, interval, ttl,
--     info = { host, pid, device, started } }
--
-- It talks with the main state through wtt.thread's shared strings, all
-- under `key` (unique per worker process):
--   key .. ".task"   "<id> <claim>" while a task runs (set by the main state)
--   key .. ".wps"    windows per second of the current task (main state)
--   key .. ".stale"  "<id> <claim>" when q:heartbeat answered "stale": that
--                    claim was reaped; the main state then cancels and
--                    drops the task. The claim is part of it because the
--                    same task id may come back to this worker under a new
--                    claim (a requeue, a rebuild after Redis lost it), and
--                    that run is not stale.
--   key .. ".stop"   "1": q:worker_gone (the `worker:{id}` hash goes) and exit
--
-- Every `interval` seconds it refreshes the `worker:{id}` hash (TTL `ttl`)
-- and, when a task runs, extends its claim deadline with q:heartbeat.
-- Redis errors are logged and retried at the next beat; they never stop the
-- thread.

local json = require "wtt.json"
local log = require "wtt.log"
local redis = require "wtt.redis"
local sys = require "wtt.sys"
local thread = require "wtt.thread"

local cfg = json.decode((...))
local key = cfg.key
local interval = tonumber(cfg.interval) or 10
local ttl = math.ceil(tonumber(cfg.ttl) or 30)     -- EXPIRE takes integers

local r = assert(redis.connect(cfg.redis_url, {
    lazy = true, timeout = math.max(2, math.min(10, ttl)),
    connect_timeout = math.max(1, math.min(5, ttl)),
}))
local q = require("wtt.queue").new(r, { prefix = cfg.prefix or "" })

local step = math.min(interval, 0.05)
local last_error


local function beat()
    local info = {}
    for k, v in pairs(cfg.info or {}) do
        info[k] = v
    end
    local current = thread.get(key .. ".task")
    local id, claim
    if current then
        id, claim = current:match("^(%S+) (%S+)$")
    end
    info.task = id or ""
    info.windows_per_s = thread.get(key .. ".wps") or ""

    local ok, res, err = pcall(q.worker_beat, q, cfg.worker_id, info, ttl)
    if not ok then
        err = tostring(res)
    elseif res ~= nil then
        err = nil
    end
    if id then
        local hb, herr = q:heartbeat(id, claim)
        if not hb then
            if herr == "stale" or (herr and herr:find("stale", 1, true)) then
                if thread.get(key .. ".stale") ~= current then
                    log.warn("worker.heartbeat_stale", { task = id,
                                                         claim = claim })
                end
                thread.set(key .. ".stale", current)
            else
                err = herr
            end
        end
    end
    if err and err ~= last_error then
        log.warn("worker.heartbeat_failed", { error = err })
    end
    last_error = err
end


local next_beat = 0
while thread.get(key .. ".stop") == nil do
    local now = sys.now()
    if now >= next_beat then
        beat()
        next_beat = now + interval
    end
    sys.sleep(step)
end
-- A clean exit: the worker is gone now, not when the TTL runs out.
local ok, gone, gerr = pcall(q.worker_gone, q, cfg.worker_id)
if not ok or not gone then
    log.warn("worker.gone_failed", { error = ok and gerr or gone })
end
r:close()
