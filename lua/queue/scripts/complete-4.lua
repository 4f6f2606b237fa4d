--[[
  Completes a task for the current claim holder: it leaves the processing
  list and the deadlines, its hash records the result (kept for
  ARGV[5] seconds), its id joins the results backlog, and `task:completed`
  is published. A stale claim changes nothing, so a worker whose claim was
  reaped cannot overwrite the newer run.

  Input:
    KEYS[1] processing list "task:processing"
    KEYS[2] deadlines zset "task:processing:time"
    KEYS[3] task hash "task:{id}"
    KEYS[4] results backlog "task:results"
    ARGV[1] id
    ARGV[2] claim token
    ARGV[3] now (ms, Redis TIME)
    ARGV[4] result (JSON)
    ARGV[5] TTL of a finished task hash (s)
    ARGV[6] channel "task:completed"

  Output:
    {1}                       completed
    {-2, "stale claim"}       not the current claim (includes/held_claim)
    {-3, "not processing"}    current claim, but the task is not processing
                              (already completed or failed)
    {-7, "<key> is a <type>, not a <expected>"}  a key holds another type
                          (includes/check_types): nothing written
]]
local rcall = redis.call
local processingKey = KEYS[1]
local timeKey = KEYS[2]
local taskKey = KEYS[3]
local resultsKey = KEYS[4]
local id = ARGV[1]
local claim = ARGV[2]
local now = ARGV[3]
local result = ARGV[4]
local finalTtl = ARGV[5]
local channel = ARGV[6]

--- @include "check_types"
--- @include "held_claim"
--- @include "complete_task"

local bad = checkTypes({ "list", "zset", "hash", "list" })
if bad then
    return bad
end

local held, code, why = heldClaim(taskKey)
if not held then
    return { code, why }
end
completeTask(taskKey, id, result)
return { 1 }
