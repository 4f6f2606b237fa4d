--- Worker presence for wtt.queue: each worker's heartbeat hash
-- `worker:{id}` (host, device, current tasks, health) with a TTL, and the
-- `workers` zset of live ones that metrics and `wtt queue workers` list.
-- `queue` holds the methods wtt.queue puts on every queue (worker_beat,
-- worker_gone, workers).

local internal = require "wtt.queue.internal"

local type = type
local ipairs = ipairs
local tostring = tostring
local tonumber = tonumber
local unpack = unpack
local clock = internal.clock
local check_id = internal.check_id
local hash_table = internal.hash_table

local _M = {}

--- Queue methods; wtt.queue copies them onto its queue method table.
local queue = {}
_M.queue = queue

local WORKER_FIELDS = { "host", "pid", "device", "task", "started",
                        "windows_per_s", "healthy", "device_faults",
                        "last_device_error" }


--- Records a worker heartbeat: hash `worker:{id}` with TTL `ttl_s` and an
-- entry in the `workers` zset (id -> expiry).
-- @return true | nil, err
function queue.worker_beat(self, worker_id, info, ttl_s)
    check_id(worker_id, "worker_beat")
    info = info or {}
    ttl_s = ttl_s or 30
    local t, err = clock(self)
    if not t then
        return nil, err
    end
    local key = self.k.worker_prefix .. worker_id
    local args = { "HSET", key, "id", worker_id, "beat_at", t }
    for _, f in ipairs(WORKER_FIELDS) do
        args[#args + 1] = f
        args[#args + 1] = info[f] ~= nil and tostring(info[f]) or ""
    end
    local res
    res, err = self.r:pipeline(function(p)
        p:call(unpack(args))
        p:call("EXPIRE", key, ttl_s)
        p:call("ZADD", self.k.workers, t + ttl_s * 1000, worker_id)
        p:call("ZREMRANGEBYSCORE", self.k.workers, "-inf", t)
    end)
    if not res then
        return nil, err
    end
    for _, v in ipairs(res) do
        if type(v) == "table" and v.err then
            return nil, v.err
        end
    end
    return true
end


--- Removes a worker's heartbeat at once (clean shutdown).
function queue.worker_gone(self, worker_id)
    check_id(worker_id, "worker_gone")
    return self.r:pipeline(function(p)
        p:call("DEL", self.k.worker_prefix .. worker_id)
        p:call("ZREM", self.k.workers, worker_id)
    end)
end


--- Live workers: list of { id, host, pid, device, task, started,
-- windows_per_s, healthy, device_faults, last_device_error } (strings;
-- pid, started, windows_per_s, healthy and device_faults as numbers).
-- `task` is the id of the task the worker runs, or the ids of its batch
-- separated by spaces (`--batch-tasks`); `healthy` 0 after a device fault
-- (docs/worker.md "Device faults").
-- @return list | nil, err
function queue.workers(self)
    local t, err = clock(self)
    if not t then
        return nil, err
    end
    local ids
    ids, err = self.r:call("ZRANGEBYSCORE", self.k.workers, "(" .. t, "+inf")
    if not ids then
        return nil, err
    end
    if #ids == 0 then
        return {}
    end
    local res
    res, err = self.r:pipeline(function(p)
        for _, id in ipairs(ids) do
            p:call("HGETALL", self.k.worker_prefix .. id)
        end
    end)
    if not res then
        return nil, err
    end
    local list = {}
    for i, id in ipairs(ids) do
        local h = res[i]
        if type(h) == "table" and #h > 0 then
            local w = hash_table(h)
            w.id = id
            w.pid = tonumber(w.pid) or w.pid
            w.started = tonumber(w.started) or w.started
            w.windows_per_s = tonumber(w.windows_per_s) or w.windows_per_s
            -- Absent (nil) when the worker reports no health (--noop, an
            -- older version).
            w.healthy = tonumber(w.healthy)
            w.device_faults = tonumber(w.device_faults)
            if w.last_device_error == "" then
                w.last_device_error = nil
            end
            if w.task == "" then
                w.task = nil
            end
            list[#list + 1] = w
        end
    end
    return list
end


return _M
