--[[
  Records progress (`done/total` windows) for the current claim holder,
  extends its deadline as a heartbeat does, and publishes
  `task:progress:{id}` with the claim, so that the subscriber can tell a
  late event of an older run from the current one.

  Input:
    KEYS[1] task hash "task:{id}"
    KEYS[2] deadlines zset "task:processing:time"
    ARGV[1] id
    ARGV[2] claim token
    ARGV[3] now (ms, Redis TIME)
    ARGV[4] windows done
    ARGV[5] windows in all
    ARGV[6] channel "task:progress:{id}"

  Output:
    {1}                   recorded
    {-2, "stale claim"}   not the current claim, or the task is not processing
    {-7, "<key> is a <type>, not a <expected>"}  a key holds another type
                          (includes/check_types): nothing written
]]
local rcall = redis.call
local taskKey = KEYS[1]
local timeKey = KEYS[2]
local id = ARGV[1]
local claim = ARGV[2]
local now = tonumber(ARGV[3])
local done = tonumber(ARGV[4])
local total = tonumber(ARGV[5])
local channel = ARGV[6]

--- @include "check_types"
--- @include "held_claim"

local bad = checkTypes({ "hash", "zset" })
if bad then
    return bad
end

local f = heldClaim(taskKey, "timeout_ms")
if not f then
    return { -2, "stale claim" }
end
rcall("HSET", taskKey, "progress", done .. "/" .. total)
rcall("ZADD", timeKey, "XX", now + (tonumber(f[3]) or 0), id)
rcall("PUBLISH", channel, cjson.encode({
    id = id, status = "processing", claim = tonumber(claim),
    progress = { done = done, total = total } }))
return { 1 }
