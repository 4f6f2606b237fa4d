--- The operator's calls of wtt.queue (`wtt queue`, /_admin, metrics): a
-- task's hash, the depths, the dead letters (list, requeue, purge), and
-- pausing claims. `queue` holds the methods wtt.queue puts on every queue.

local internal = require "wtt.queue.internal"
local S = require("wtt.queue.scripts").scripts

local ipairs = ipairs
local clock = internal.clock
local run = internal.run
local check_id = internal.check_id
local hash_table = internal.hash_table

local _M = {}

--- Queue methods; wtt.queue copies them onto its queue method table.
local queue = {}
_M.queue = queue

local PURGE_BATCH = 500


--- The task hash as a table of strings, or nil.
function queue.get(self, id)
    check_id(id, "get")
    local list, err = self.r:call("HGETALL", self.k.task_prefix .. id)
    if not list then
        return nil, err
    end
    if #list == 0 then
        return nil
    end
    return hash_table(list)
end


--- Whether the task hash exists (for the reconciler).
-- @return bool | nil, err
function queue.has_task(self, id)
    check_id(id, "has_task")
    local n, err = self.r:call("EXISTS", self.k.task_prefix .. id)
    if not n then
        return nil, err
    end
    return n == 1
end


--- Depths: { pending, processing, failed, results, paused, workers }.
-- @return table | nil, err
function queue.stats(self)
    local t, err = clock(self)
    if not t then
        return nil, err
    end
    local k = self.k
    local res
    res, err = run(self, "stats", S.stats, {
        k.queue, k.priority, k.processing, k.failed, k.results, k.paused,
        k.workers, k.bulk,
    }, { t })
    if not res then
        return nil, err
    end
    return {
        pending = res[1], processing = res[2], failed = res[3],
        results = res[4], paused = res[5] == 1, workers = res[6],
    }
end


--- Ids of dead letters, oldest first.
-- @return list | nil, err
function queue.dead(self, offset, count)
    offset = offset or 0
    count = count or 100
    return self.r:call("LRANGE", self.k.failed, offset, offset + count - 1)
end


--- Requeues one dead letter (attempts reset).
-- @return true | nil, "not found" | nil, err
function queue.requeue_dead(self, id)
    check_id(id, "requeue_dead")
    local t, err = clock(self)
    if not t then
        return nil, err
    end
    local k = self.k
    local res
    res, err = run(self, "requeue", S.requeue, {
        k.failed, k.queue, k.priority, k.task_prefix .. id, k.bulk,
        k.results,
    }, { id, t, self.ch.new })
    if not res then
        return nil, err
    end
    return true
end


--- Requeues every dead letter present when called.
-- @return n requeued | nil, err
function queue.requeue_all_dead(self)
    local ids, err = self.r:call("LRANGE", self.k.failed, 0, -1)
    if not ids then
        return nil, err
    end
    local n = 0
    for _, id in ipairs(ids) do
        local ok, rerr = self:requeue_dead(id)
        if ok then
            n = n + 1
        elseif rerr ~= "not found" then
            return nil, rerr
        end
    end
    return n
end


--- Deletes every dead letter and its hash.
-- @return n | nil, err
function queue.purge_dead(self)
    local total = 0
    while true do
        local res, err = run(self, "purge", S.purge, {
            self.k.failed, self.k.task_prefix }, { PURGE_BATCH })
        if not res then
            return nil, err
        end
        total = total + res[1]
        if res[1] < PURGE_BATCH then
            return total
        end
    end
end


--- Stops claiming (claim returns nil until resume).
function queue.pause(self)
    return self.r:call("SET", self.k.paused, "1")
end


function queue.resume(self)
    return self.r:call("DEL", self.k.paused)
end


return _M
