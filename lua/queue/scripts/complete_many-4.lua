--[[
  Completes several tasks, each for its own claim holder, in one call: what
  complete-4 does for one, entry by entry. Each entry is checked on its
  own: a stale claim, a run that already ended or a task key that is not a
  hash refuses that entry only (nothing of it is written) and the others
  complete. The task hashes are derived from the task key prefix (KEYS[3]),
  as claim does, because the ids come in ARGV.

  Input:
    KEYS[1] processing list "task:processing"
    KEYS[2] deadlines zset "task:processing:time"
    KEYS[3] task key prefix "task:" (hash of id X is KEYS[3] .. X; the
            prefix carries the cluster hash tag)
    KEYS[4] results backlog "task:results"
    ARGV[1] now (ms, Redis TIME)
    ARGV[2] TTL of a finished task hash (s)
    ARGV[3] channel "task:completed"
    ARGV[4 + 3k], ARGV[5 + 3k], ARGV[6 + 3k]  entry k + 1 (k >= 0): id,
            claim token, result (JSON)

  Output:
    {n_completed, code_1, ..., code_n}  one code per entry, in order:
        1   completed
        -2  stale claim: not the current claim (includes/held_claim)
        -3  not processing: current claim, run already ended
        -4  bad task: the task key holds something that is not a hash
    {-7, "<key> is a <type>, not a <expected>"}  a key holds another type
                          (includes/check_types): nothing written
]]
local rcall = redis.call
local processingKey = KEYS[1]
local timeKey = KEYS[2]
local taskPrefix = KEYS[3]
local resultsKey = KEYS[4]
local now = ARGV[1]
local finalTtl = ARGV[2]
local channel = ARGV[3]
local claim     -- the entry's token, read by heldClaim

--- @include "check_types"
--- @include "held_claim"
--- @include "complete_task"

local bad = checkTypes({ "list", "zset", "prefix", "list" })
if bad then
    return bad
end

local out = { 0 }
for i = 4, #ARGV - 2, 3 do
    local id = ARGV[i]
    claim = ARGV[i + 1]
    local taskKey = taskPrefix .. id
    local kind = rcall("TYPE", taskKey).ok
    if kind ~= "hash" and kind ~= "none" then
        out[#out + 1] = -4
    else
        local held, code = heldClaim(taskKey)
        if held then
            completeTask(taskKey, id, ARGV[i + 2])
            out[1] = out[1] + 1
            out[#out + 1] = 1
        else
            out[#out + 1] = code
        end
    end
end
return out
