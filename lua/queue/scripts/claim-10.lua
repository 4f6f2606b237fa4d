--[[
  Claims up to ARGV[7] of the oldest claimable tasks (one when absent),
  priority lane first, then the default queue, then the bulk lane (tasks
  of clients over their share, see enqueue-5): one call takes what that
  many single claims in a row would. Skips tasks whose `retry_at` is still
  in the future (they keep their place), drops ids whose hash is gone or
  no longer pending (strays), and dead-letters a task whose attempts would
  exceed max_attempts (a poison pill is never handed out again). A task
  leaving its lane this way for the first time leaves its client's waiting
  count. A task whose key is not a hash, or whose claim counter is not an
  integer, is set aside in the dead letters. Each claimed id moves to the
  processing list with a deadline of now + its timeout_ms; its claim token
  is the task's incremented `claim` field, raised to now when below it
  (so tokens stay ahead of any a lagging replica's counter would repeat
  after a failover); attempts are counted here; each
  claim publishes its own `task:claimed`. Nothing is claimed while
  claiming is paused. Work per call is bounded by ARGV[6] entries looked
  at per lane and per task asked for.

  Input:
    KEYS[1] priority lane "task:queue:priority"
    KEYS[2] queue "task:queue"
    KEYS[3] bulk lane "task:queue:bulk"
    KEYS[4] processing list "task:processing"
    KEYS[5] deadlines zset "task:processing:time"
    KEYS[6] task key prefix "task:" (hash of id X is KEYS[6] .. X; the
            prefix carries the cluster hash tag)
    KEYS[7] pause flag "queue:paused"
    KEYS[8] dead letters "task:failed"
    KEYS[9] results backlog "task:results"
    KEYS[10] waiting tasks per client "task:clients" (hash)
    ARGV[1] now (ms, Redis TIME)
    ARGV[2] worker id
    ARGV[3] channel "task:claimed"
    ARGV[4] channel "task:failed"
    ARGV[5] dead-letter TTL (s)
    ARGV[6] entries to look at per lane and per task asked for (>= 1)
    ARGV[7] how many tasks to claim (>= 1; absent: 1)

  Output:
    {id, claim, attempts, payload, audio_midi_id, timeout_ms, ...}
                          one group of six per claimed task, in claim order
    {}                    nothing to claim
    {-7, "<key> is a <type>, not a <expected>"}  a key holds another type
                          (includes/check_types): nothing written
]]
local rcall = redis.call
local priorityKey = KEYS[1]
local queueKey = KEYS[2]
local bulkKey = KEYS[3]
local processingKey = KEYS[4]
local timeKey = KEYS[5]
local taskPrefix = KEYS[6]
local pausedKey = KEYS[7]
local failedKey = KEYS[8]
local resultsKey = KEYS[9]
local clientsKey = KEYS[10]
local now = tonumber(ARGV[1])
local workerId = ARGV[2]
local claimedChannel = ARGV[3]
local failedChannel = ARGV[4]
local deadTtl = ARGV[5]
local depth = tonumber(ARGV[6])
local want = math.max(1, tonumber(ARGV[7]) or 1)

--- @include "check_types"
--- @include "dead_letter"

local bad = checkTypes({ "list", "list", "list", "list", "zset", "prefix",
                         "string", "list", "list", "hash" })
if bad then
    return bad
end

if rcall("EXISTS", pausedKey) == 1 then
    return {}
end

-- Removes the entry at `index` of `lane` (LPOP when it is the head).
local function remove(lane, index, id)
    if index == 0 then
        rcall("LPOP", lane)
    else
        rcall("LREM", lane, 1, id)
    end
end

-- The task's first claim (or dead letter) ends its wait: its client's
-- count drops. The `waiting` flag makes this happen once per enqueue. The
-- count is read and rewritten rather than HINCRBYed, so a field that holds
-- no integer cannot fail the script after the task left its lane.
local function leaveWaiting(taskKey, waiting, client)
    if waiting and client then
        rcall("HDEL", taskKey, "waiting")
        local left = (tonumber(rcall("HGET", clientsKey, client)) or 0) - 1
        if left <= 0 then
            rcall("HDEL", clientsKey, client)
        else
            rcall("HSET", clientsKey, client, left)
        end
    end
end

local FIELDS = { "status", "retry_at", "attempts", "max_attempts", "error",
                 "waiting", "client", "payload", "audio_midi_id",
                 "timeout_ms", "claim" }

-- Whether claim can take the task: its claim counter is absent or an
-- integer (HINCRBY on anything else would fail the script halfway).
local function usable(f)
    return not f[11] or (#f[11] <= 18 and f[11]:match("^%-?%d+$") ~= nil)
end

-- Claims the task (already out of its lane): processing list, deadline,
-- claim token, attempts, the `task:claimed` event; appends its reply group.
local function claimTask(taskKey, id, attempts, f, out)
    local timeoutMs = tonumber(f[10]) or 0
    rcall("LPUSH", processingKey, id)
    rcall("ZADD", timeKey, now + timeoutMs, id)
    -- The token never goes below the claim's time (ms): a promoted replica
    -- that missed the last claims of its primary (asynchronous
    -- replication) holds an older counter, and counting on from it would
    -- hand out a token a worker already holds. Time moves on across the
    -- switch, so tokens issued after it are above those issued before
    -- (docs/queue.md, "Fencing across a failover").
    local claim = rcall("HINCRBY", taskKey, "claim", 1)
    if claim < now then
        claim = now
        rcall("HSET", taskKey, "claim", claim)
    end
    rcall("HSET", taskKey, "status", "processing", "attempts", attempts,
          "worker", workerId, "claimed_at", now)
    if f[2] then
        rcall("HDEL", taskKey, "retry_at")
    end
    -- Ids are hex tokens (checked by wtt.queue); only the worker id, which
    -- operators choose, goes through the encoder.
    rcall("PUBLISH", claimedChannel,
          '{"id":"' .. id .. '","status":"processing","attempts":' .. attempts
          .. ',"worker":' .. cjson.encode(workerId) .. ',"claim":' .. claim
          .. '}')
    local n = #out
    out[n + 1] = id
    out[n + 2] = tostring(claim)
    out[n + 3] = attempts
    out[n + 4] = f[8] or ""
    out[n + 5] = f[9] or ""
    out[n + 6] = timeoutMs
end

-- Looks at the entries of `lane` from the left and claims from it until
-- `out` holds `want` groups or `budget` entries were looked at. Appends
-- each claimed task's reply group to `out`.
local function take(lane, out)
    local index = 0
    local looked = 0
    local budget = depth * want
    while looked < budget and #out < 6 * want do
        local id = rcall("LINDEX", lane, index)
        if not id then
            return
        end
        looked = looked + 1
        local taskKey = taskPrefix .. id
        -- One HMGET answers existence, type and every field needed.
        local f = redis.pcall("HMGET", taskKey, unpack(FIELDS))
        if f.err or (f[1] == "pending" and not usable(f)) then
            remove(lane, index, id)                  -- corrupt: set aside
            rcall("RPUSH", failedKey, id)
        elseif not f[1] then
            remove(lane, index, id)                  -- hash expired or lost
        elseif f[1] ~= "pending" then
            remove(lane, index, id)                  -- stray duplicate
        elseif (tonumber(f[2]) or 0) > now then
            index = index + 1                        -- backing off: keep
        else
            remove(lane, index, id)
            leaveWaiting(taskKey, f[6], f[7])
            local attempts = (tonumber(f[3]) or 0) + 1
            local maxAttempts = tonumber(f[4]) or 1
            if attempts > maxAttempts then
                local last = f[5] and (": " .. f[5]) or ""
                deadLetter(taskKey, id, now,
                           "attempts exhausted (" .. maxAttempts .. ")"
                           .. last)
            else
                claimTask(taskKey, id, attempts, f, out)
            end
        end
    end
end

local out = {}
take(priorityKey, out)
take(queueKey, out)
take(bulkKey, out)
return out
