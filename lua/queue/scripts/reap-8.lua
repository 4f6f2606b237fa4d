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

  Orphans (reliability Q3): an id in the processing list with no deadline
  cannot come from this version, whose claim moves and stamps in one
  script, but can from an older version that moved first and recorded
  the claim in a second step, a hand edit or a partial restore. Such an
  id would never expire, so when the list is longer than the deadlines
  zset, up to ARGV[8] ids from the tail of the list (the oldest claims)
  are looked at, and each one without a deadline gets now + its
  `timeout_ms` (ARGV[7] without one): it is then treated as any claim
  and recovered once that passes, unless a live holder's heartbeat moves
  it on (heartbeats only extend an existing deadline). At expiry a
  `pending` one (moved, claim never recorded: no attempt was charged)
  goes back to the front of its lane with its claim invalidated; one
  whose hash is gone or terminal just leaves the list.

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
    ARGV[7] visibility timeout (ms) of an orphan whose hash has no
            `timeout_ms` (optional; default 60000)
    ARGV[8] orphans: list entries from the tail to look at (optional;
            default 0: none)

  Output:
    {n_requeued, n_dead, more, n_adopted}   more = 1 when the batch was
    full; n_adopted = orphans given a deadline by this call
    {-7, "<key> is a <type>, not a <expected>"}  a key holds another type
                          (includes/check_types): nothing written
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
local orphanTimeout = tonumber(ARGV[7]) or 60000
local orphanScan = tonumber(ARGV[8]) or 0

--- @include "check_types"
--- @include "dead_letter"
--- @include "lane_of"

local bad = checkTypes({ "list", "zset", "list", "list", "list", "prefix",
                         "list", "list" })
if bad then
    return bad
end

if budget then
    local len = rcall("LLEN", processingKey)
    if len > 0 and batch * len > budget then
        batch = math.max(10, math.floor(budget / len))
    end
end

-- Orphans first. Two O(1) counts keep the common case cheap: only a list
-- longer than the zset can hold an id without a deadline.
local adopted = 0
if orphanScan > 0
    and rcall("LLEN", processingKey) > rcall("ZCARD", timeKey) then
    for _, id in ipairs(rcall("LRANGE", processingKey, -orphanScan, -1)) do
        if not rcall("ZSCORE", timeKey, id) then
            local t = orphanTimeout
            if rcall("TYPE", taskPrefix .. id).ok == "hash" then
                t = tonumber(rcall("HGET", taskPrefix .. id, "timeout_ms"))
                    or orphanTimeout
            end
            rcall("ZADD", timeKey, now + t, id)
            adopted = adopted + 1
        end
    end
end

-- Moves the task's claim counter past every token handed out, fencing off
-- the worker that held it. A counter that is no integer (a hand edit, a
-- partial restore; HINCRBY would fail the script halfway, after the
-- writes above) restarts at Redis' clock in ms, as the reconciler's claim
-- floor does, so it is still above the tokens of any run that counted.
local function fence(taskKey, claim)
    if claim and #claim <= 18 and claim:match("^%-?%d+$") then
        rcall("HINCRBY", taskKey, "claim", 1)
    else
        rcall("HSET", taskKey, "claim", now)
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
                        "max_attempts", "claim")
        if f[1] == "processing" then
            fence(taskKey, f[4])
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
        elseif f[1] == "pending" then
            -- an orphan whose claim was never recorded: not charged
            fence(taskKey, f[4])
            rcall("HDEL", taskKey, "worker")
            rcall("LPUSH", laneOf(taskKey), id)
            rcall("PUBLISH", newChannel, cjson.encode({
                id = id, status = "pending" }))
            requeued = requeued + 1
        end
    end
end
return { requeued, dead, #ids == batch and 1 or 0, adopted }
