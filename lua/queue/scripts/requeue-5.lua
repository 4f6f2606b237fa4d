--[[
  Puts one dead letter back at the end of its lane as a fresh pending task:
  attempts reset, error and retry_at cleared, TTL removed. The claim counter
  is kept, so fencing tokens stay monotonic.

  Input:
    KEYS[1] dead letters "task:failed"
    KEYS[2] queue "task:queue"
    KEYS[3] priority lane "task:queue:priority"
    KEYS[4] task hash "task:{id}"
    KEYS[5] bulk lane "task:queue:bulk"
    ARGV[1] id
    ARGV[2] now (ms, Redis TIME)
    ARGV[3] channel "task:new"

  Output:
    {1}                  requeued
    {-5, "not found"}    not a dead letter, or its hash expired (the stray
                         id is removed from the dead letters)
]]
local rcall = redis.call
local failedKey = KEYS[1]
local queueKey = KEYS[2]
local priorityKey = KEYS[3]
local taskKey = KEYS[4]
local bulkKey = KEYS[5]
local id = ARGV[1]
local now = ARGV[2]
local newChannel = ARGV[3]

--- @include "lane_of"

if rcall("LREM", failedKey, 0, id) == 0 then
    return { -5, "not found" }
end
if rcall("TYPE", taskKey).ok ~= "hash"
    or rcall("HGET", taskKey, "status") ~= "failed" then
    return { -5, "not found" }
end
rcall("PERSIST", taskKey)
rcall("HSET", taskKey, "status", "pending", "attempts", 0,
      "enqueued_at", now)
rcall("HDEL", taskKey, "error", "retry_at", "worker", "finished_at",
      "progress", "claimed_at")
rcall("RPUSH", laneOf(taskKey), id)
rcall("PUBLISH", newChannel, cjson.encode({ id = id, status = "pending" }))
return { 1 }
