--[[
  Puts one dead letter back at the end of its lane as a fresh pending task:
  a new run. Attempts reset; error, retry_at and the last run's uploads
  cleared; TTL removed. The claim counter goes up by one (a requeue starts
  a new run, fenced off from every token of the dead one), and the id joins
  the results backlog, so the subscriber moves the PostgreSQL row out of
  `failed` (a row follows the run with the highest claim: docs/queue.md).

  Input:
    KEYS[1] dead letters "task:failed"
    KEYS[2] queue "task:queue"
    KEYS[3] priority lane "task:queue:priority"
    KEYS[4] task hash "task:{id}"
    KEYS[5] bulk lane "task:queue:bulk"
    KEYS[6] results backlog "task:results"
    ARGV[1] id
    ARGV[2] now (ms, Redis TIME)
    ARGV[3] channel "task:new"

  Output:
    {1, claim}           requeued; claim = the new run's claim counter
    {-5, "not found"}    not a dead letter, or its hash expired (the stray
                         id is removed from the dead letters)
    {-4, "bad task"}     its claim counter is not an integer (nothing written)
    {-7, "<key> is a <type>, not a <expected>"}  a key holds another type
                         (includes/check_types): nothing written
]]
local rcall = redis.call
local failedKey = KEYS[1]
local queueKey = KEYS[2]
local priorityKey = KEYS[3]
local taskKey = KEYS[4]
local bulkKey = KEYS[5]
local resultsKey = KEYS[6]
local id = ARGV[1]
local now = ARGV[2]
local newChannel = ARGV[3]

--- @include "check_types"
--- @include "lane_of"

local bad = checkTypes({ "list", "list", "list", "hash", "list", "list" })
if bad then
    return bad
end

local f = rcall("HMGET", taskKey, "status", "claim")
if f[1] == "failed" and f[2] and not f[2]:match("^%-?%d+$") then
    return { -4, "bad task" }           -- HINCRBY would fail halfway
end
if rcall("LREM", failedKey, 0, id) == 0 or f[1] ~= "failed" then
    return { -5, "not found" }
end
rcall("PERSIST", taskKey)
local claim = rcall("HINCRBY", taskKey, "claim", 1)
rcall("HSET", taskKey, "status", "pending", "attempts", 0,
      "enqueued_at", now)
rcall("HDEL", taskKey, "error", "retry_at", "worker", "finished_at",
      "progress", "claimed_at", "result", "uploads", "upload_fp")
rcall("RPUSH", laneOf(taskKey), id)
rcall("RPUSH", resultsKey, id)
rcall("PUBLISH", newChannel, cjson.encode({ id = id, status = "pending",
                                            claim = claim }))
return { 1, claim }
