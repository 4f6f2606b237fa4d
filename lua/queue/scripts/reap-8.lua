--[[
  Recovers claims past their deadline, at most ARGV[2] per call (callers
  loop while the third reply element is 1). Removing an id from the
  processing list is a list scan, so the batch also shrinks as that list
  grows: batch * LLEN(processing) stays under ARGV[6] (at least 10 ids per
  call), which bounds the time one call holds Redis (reliability Q2: a
  backlog of expired claims is worked off in many short calls, never one
  long one). Each expired id leaves the
  processing list and the deadlines; its claim is invalidated (INCR), so
  the late worker is refused; then it goes back to the FRONT of its lane as
  pending (error "timed out"), or to the dead letters when its attempts
  reached max_attempts. Safe to run from every process at once: the script
  is atomic, so an expired claim is recovered by exactly one call.

  Input:
    KEYS[1] processing list "task:processing"
    KEYS[2] deadlines zset "task:processing:time"
    KEYS[3] queue "task:queue"
    KEYS[4] priority lane "task:queue:priority"
    KEYS[5] dead letters "task:failed"
    KEYS[6] task key prefix "task:"
    KEYS[7] results backlog "task:results"
    KEYS[8] bulk lane "task:queue:bulk"
    ARGV[1] now (ms, Redis TIME)
    ARGV[2] batch size
    ARGV[3] dead-letter TTL (s)
    ARGV[4] channel "task:failed"
    ARGV[5] channel "task:new"
    ARGV[6] scan budget: list entries one call may compare (optional)

  Output:
    {n_requeued, n_dead, more}   more = 1 when the batch was full
]]
local rcall = redis.call
local processingKey = KEYS[1]
local timeKey = KEYS[2]
local queueKey = KEYS[3]
local priorityKey = KEYS[4]
local failedKey = KEYS[5]
local taskPrefix = KEYS[6]
local resultsKey = KEYS[7]
local bulkKey = KEYS[8]
local now = tonumber(ARGV[1])
local batch = tonumber(ARGV[2])
local deadTtl = ARGV[3]
local failedChannel = ARGV[4]
local newChannel = ARGV[5]
local budget = tonumber(ARGV[6])

--- @include "dead_letter"
--- @include "lane_of"

if budget then
    local len = rcall("LLEN", processingKey)
    if len > 0 and batch * len > budget then
        batch = math.max(10, math.floor(budget / len))
    end
end

local ids = rcall("ZRANGEBYSCORE", timeKey, "-inf", now, "LIMIT", 0, batch)
local requeued, dead = 0, 0
for _, id in ipairs(ids) do
    local taskKey = taskPrefix .. id
    rcall("ZREM", timeKey, id)
    -- From the tail: claims are LPUSHed, so the oldest (the ones that
    -- expire first) sit at the end; a claim is never in the list twice.
    rcall("LREM", processingKey, -1, id)
    if rcall("TYPE", taskKey).ok == "hash" then
        local f = rcall("HMGET", taskKey, "status", "attempts",
                        "max_attempts")
        if f[1] == "processing" then
            rcall("HINCRBY", taskKey, "claim", 1)
            local attempts = tonumber(f[2]) or 0
            local maxAttempts = tonumber(f[3]) or 1
            if attempts >= maxAttempts then
                deadLetter(taskKey, id, now, "timed out (attempt "
                           .. attempts .. " of " .. maxAttempts .. ")")
                dead = dead + 1
            else
                rcall("HSET", taskKey, "status", "pending",
                      "error", "timed out")
                rcall("HDEL", taskKey, "worker", "retry_at")
                rcall("LPUSH", laneOf(taskKey), id)
                rcall("PUBLISH", failedChannel, cjson.encode({
                    id = id, status = "pending", error = "timed out",
                    final = false }))
                rcall("PUBLISH", newChannel, cjson.encode({
                    id = id, status = "pending" }))
                requeued = requeued + 1
            end
        end
    end
end
return { requeued, dead, #ids == batch and 1 or 0 }
