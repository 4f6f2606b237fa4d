--[[
  Extends a claim: the task's deadline becomes now + timeout_ms, so a long
  task on a healthy worker is never reaped. Only the current claim holder
  may do this.

  Input:
    KEYS[1] deadlines zset "task:processing:time"
    KEYS[2] task hash "task:{id}"
    ARGV[1] id
    ARGV[2] claim token
    ARGV[3] now (ms, Redis TIME)

  Output:
    {1}                   deadline moved
    {-2, "stale claim"}   not the current claim, or the task is not processing
    {-7, "<key> is a <type>, not a <expected>"}  a key holds another type
                          (includes/check_types): nothing written
]]
local rcall = redis.call
local timeKey = KEYS[1]
local taskKey = KEYS[2]
local id = ARGV[1]
local claim = ARGV[2]
local now = tonumber(ARGV[3])

--- @include "check_types"
--- @include "held_claim"

local bad = checkTypes({ "zset", "hash" })
if bad then
    return bad
end

local f = heldClaim(taskKey, "timeout_ms")
if not f then
    return { -2, "stale claim" }
end
rcall("ZADD", timeKey, "XX", now + (tonumber(f[3]) or 0), id)
return { 1 }
