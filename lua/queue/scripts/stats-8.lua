--[[
  Reads the queue's depths in one consistent snapshot.

  Input:
    KEYS[1] queue "task:queue"
    KEYS[2] priority lane "task:queue:priority"
    KEYS[3] processing list "task:processing"
    KEYS[4] dead letters "task:failed"
    KEYS[5] results backlog "task:results"
    KEYS[6] pause flag "queue:paused"
    KEYS[7] live workers zset "workers" (id -> expiry ms)
    KEYS[8] bulk lane "task:queue:bulk"
    ARGV[1] now (ms, Redis TIME)

  Output:
    {pending, processing, failed, results, paused (0|1), workers}
    {-7, "<key> is a <type>, not a <expected>"}  a key holds another type
                          (includes/check_types): nothing written
]]
local rcall = redis.call
local queueKey = KEYS[1]
local priorityKey = KEYS[2]
local processingKey = KEYS[3]
local failedKey = KEYS[4]
local resultsKey = KEYS[5]
local pausedKey = KEYS[6]
local workersKey = KEYS[7]
local bulkKey = KEYS[8]
local now = ARGV[1]

--- @include "check_types"

local bad = checkTypes({ "list", "list", "list", "list", "list", "string",
                         "zset", "list" })
if bad then
    return bad
end

return {
    rcall("LLEN", queueKey) + rcall("LLEN", priorityKey)
        + rcall("LLEN", bulkKey),
    rcall("LLEN", processingKey),
    rcall("LLEN", failedKey),
    rcall("LLEN", resultsKey),
    rcall("EXISTS", pausedKey),
    rcall("ZCOUNT", workersKey, "(" .. now, "+inf"),
}
