--[[
  Records a failed run for the current claim holder. When ARGV[5] says the
  error is retryable and attempts < max_attempts, the task goes back to the
  end of the lane it was enqueued in (includes/lane_of) as pending with
  `retry_at` = now + ARGV[6] (claim skips it until then); otherwise it is
  dead-lettered: status failed, kept for ARGV[7] seconds, id in the dead
  letters and the results backlog.
  `task:failed` is published either way, with `final` saying which.

  Input:
    KEYS[1] processing list "task:processing"
    KEYS[2] deadlines zset "task:processing:time"
    KEYS[3] task hash "task:{id}"
    KEYS[4] queue "task:queue"
    KEYS[5] priority lane "task:queue:priority"
    KEYS[6] dead letters "task:failed"
    KEYS[7] results backlog "task:results"
    KEYS[8] bulk lane "task:queue:bulk"
    ARGV[1] id
    ARGV[2] claim token
    ARGV[3] now (ms, Redis TIME)
    ARGV[4] error text
    ARGV[5] "1" retryable, "0" not
    ARGV[6] retry delay (ms)
    ARGV[7] dead-letter TTL (s)
    ARGV[8] channel "task:failed"

  Output:
    {1, "retry"}              back in the queue
    {1, "dead"}               dead-lettered
    {-2, "stale claim"}       not the current claim, or not processing
    {-7, "<key> is a <type>, not a <expected>"}  a key holds another type
                          (includes/check_types): nothing written
]]
local rcall = redis.call
local processingKey = KEYS[1]
local timeKey = KEYS[2]
local taskKey = KEYS[3]
local queueKey = KEYS[4]
local priorityKey = KEYS[5]
local failedKey = KEYS[6]
local resultsKey = KEYS[7]
local bulkKey = KEYS[8]
local id = ARGV[1]
local claim = ARGV[2]
local now = tonumber(ARGV[3])
local err = ARGV[4]
local retryable = ARGV[5] == "1"
local delay = tonumber(ARGV[6]) or 0
local deadTtl = ARGV[7]
local failedChannel = ARGV[8]

--- @include "check_types"
--- @include "dead_letter"
--- @include "held_claim"
--- @include "lane_of"

local bad = checkTypes({ "list", "zset", "hash", "list", "list", "list",
                         "list", "list" })
if bad then
    return bad
end

local f = heldClaim(taskKey, "attempts", "max_attempts")
if not f then
    return { -2, "stale claim" }
end
rcall("LREM", processingKey, 1, id)
rcall("ZREM", timeKey, id)

local attempts = tonumber(f[3]) or 0
local maxAttempts = tonumber(f[4]) or 1
if retryable and attempts < maxAttempts then
    local retryAt = now + delay
    rcall("HSET", taskKey, "status", "pending", "error", err,
          "retry_at", retryAt)
    rcall("HDEL", taskKey, "worker")
    rcall("RPUSH", laneOf(taskKey), id)
    rcall("PUBLISH", failedChannel, cjson.encode({
        id = id, status = "pending", error = err, final = false,
        retry_at = retryAt }))
    return { 1, "retry" }
end
deadLetter(taskKey, id, now, err)
return { 1, "dead" }
