-- The worker's heartbeat thread (started by lua/wtt/worker/start.lua with
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
--   key .. ".task"   "<id> <claim>" of every task the worker holds, pairs
--                    separated by spaces (one pair, or a batch's with
--                    --batch-tasks; set by the main state)
--   key .. ".wps"    windows per second of the current task or batch
--   key .. ".stale"  the "<id> <claim>" pairs of held tasks whose
--                    q:heartbeat answered "stale": those claims were
--                    reaped; the main state then cancels and drops those
--                    tasks. The claim is part of it because the same task
--                    id may come back to this worker under a new claim (a
--                    requeue, a rebuild after Redis lost it), and that run
--                    is not stale.
--   key .. ".healthy", ".device_faults", ".last_device_error"
--                    the worker's health (main state; docs/worker.md
--                    "Device faults"), copied into `worker:{id}`
--   key .. ".beat"   "1": beat now rather than at the next interval (the
--                    main state's health changed); cleared here
--   key .. ".stop"   "1": q:worker_gone (the `worker:{id}` hash goes) and exit
--
-- Every `interval` seconds it refreshes the `worker:{id}` hash (TTL `ttl`)
-- and extends the claim deadline of every held task with q:heartbeat.
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


local HEALTH = { "healthy", "device_faults", "last_device_error" }



-- Whether a claim the heartbeat script called stale was taken away, as
-- opposed to ended by this worker. The script says "stale" for any task
-- that is no longer processing, and a task this worker has just completed
-- looks like that until the worker stops listing it (the list is cleared
-- after the result is delivered): a task no longer listed, or completed
-- under this very claim, was not taken away. (The reaper never completes
-- a task, so a reaped claim still reads as taken away.)
local function taken_away(key, id, claim)
    local now = " " .. (thread.get(key .. ".task") or "") .. " "
    if not now:find(" " .. id .. " " .. claim .. " ", 1, true) then
        return false
    end
    local h = q:get(id)
    return not (h and h.claim == claim and h.status == "completed")
end

local function beat()
    local info = {}
    for k, v in pairs(cfg.info or {}) do
        info[k] = v
    end
    for _, f in ipairs(HEALTH) do
        info[f] = thread.get(key .. "." .. f) or ""
    end
    local held = {}
    for id, claim in (thread.get(key .. ".task") or ""):gmatch("(%S+) (%S+)")
    do
        held[#held + 1] = { id = id, claim = claim }
    end
    local ids = {}
    for i, h in ipairs(held) do
        ids[i] = h.id
    end
    info.task = table.concat(ids, " ")
    info.windows_per_s = thread.get(key .. ".wps") or ""

    local ok, res, err = pcall(q.worker_beat, q, cfg.worker_id, info, ttl)
    if not ok then
        err = tostring(res)
    elseif res ~= nil then
        err = nil
    end
    -- The stale pairs among those held now (a pair no longer held is
    -- dropped, so the list stays as short as the batch).
    local before = " " .. (thread.get(key .. ".stale") or "") .. " "
    local stale = {}
    for _, h in ipairs(held) do
        local pair = h.id .. " " .. h.claim
        local was = before:find(" " .. pair .. " ", 1, true) ~= nil
        local hb, herr = true, nil
        if not was then
            hb, herr = q:heartbeat(h.id, h.claim)
        end
        local is_stale = not hb and (herr == "stale"
                                     or (herr and herr:find("stale", 1, true)))
        if is_stale and not taken_away(key, h.id, h.claim) then
            hb, herr, is_stale = true, nil, false
        end
        if was or is_stale then
            if not was then
                log.warn("worker.heartbeat_stale", { task = h.id,
                                                     claim = h.claim })
            end
            stale[#stale + 1] = pair
        elseif not hb then
            err = herr
        end
    end
    local text = #stale > 0 and table.concat(stale, " ") or nil
    if text ~= thread.get(key .. ".stale") then
        thread.set(key .. ".stale", text)
    end
    if err and err ~= last_error then
        log.warn("worker.heartbeat_failed", { error = err })
    end
    last_error = err
end


local next_beat = 0
while thread.get(key .. ".stop") == nil do
    local now = sys.now()
    if thread.get(key .. ".beat") then
        thread.set(key .. ".beat", nil)
        next_beat = now
    end
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
