--[[
  Hands a claimed task back (worker shutdown): it goes to the FRONT of its
  lane as pending, the attempt is not charged, and the claim is invalidated
  (INCR) so nothing the old holder sends later is accepted. Publishes
  `task:new` so an idle worker picks it up at once.

  Input:
    KEYS[1] processing list "task:processing"
    KEYS[2] deadlines zset "task:processing:time"
    KEYS[3] task hash "task:{id}"
    KEYS[4] queue "task:queue"
    KEYS[5] priority lane "task:queue:priority"
    KEYS[6] bulk lane "task:queue:bulk"
    ARGV[1] id
    ARGV[2] claim token
    ARGV[3] channel "task:new"

  Output:
    {1}                   back in the queue
    {-2, "stale claim"}   not the current claim, or not processing
    {-7, "<key> is a <type>, not a <expected>"}  a key holds another type
                          (includes/check_types): nothing written
]]
local rcall = redis.call
local processingKey = KEYS[1]
local timeKey = KEYS[2]
local taskKey = KEYS[3]
local queueKey = KEYS[4]
local priorityKey = KEYS[5]
local bulkKey = KEYS[6]
local id = ARGV[1]
local claim = ARGV[2]
local newChannel = ARGV[3]

--- @include "check_types"
--- @include "held_claim"
--- @include "lane_of"

local bad = checkTypes({ "list", "zset", "hash", "list", "list", "list" })
if bad then
    return bad
end

local f = heldClaim(taskKey, "attempts")
if not f then
    return { -2, "stale claim" }
end
local attempts = (tonumber(f[3]) or 1) - 1
if attempts < 0 then
    attempts = 0
end
rcall("LREM", processingKey, 1, id)
rcall("ZREM", timeKey, id)
rcall("HINCRBY", taskKey, "claim", 1)
rcall("HSET", taskKey, "status", "pending", "attempts", attempts)
rcall("HDEL", taskKey, "worker", "retry_at")
rcall("LPUSH", laneOf(taskKey), id)
rcall("PUBLISH", newChannel, cjson.encode({ id = id, status = "pending" }))
return { 1 }
