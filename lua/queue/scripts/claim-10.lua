--[[
  Claims the oldest claimable task, priority lane first, then the default
  queue, then the bulk lane (tasks of clients over their share, see
  enqueue-5). Skips tasks whose `retry_at` is still in the future (they keep
  their place), drops ids whose hash is gone or no longer pending (strays),
  and dead-letters a task whose attempts would exceed max_attempts (a poison
  pill is never handed out again). A task leaving its lane this way for
  the first time leaves its client's waiting count. The claimed id moves to the processing
  list with a deadline of now + timeout_ms; the claim token is the task's
  INCRemented `claim` field; attempts are counted here. Nothing is claimed
  while claiming is paused. Work per call is bounded by ARGV[6] entries
  looked at per lane.

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
    ARGV[6] entries to look at per lane (>= 1)

  Output:
    {id, claim, attempts, payload, audio_midi_id, timeout_ms}  claimed
    {}                                                         nothing to claim
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

--- @include "dead_letter"

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
-- count drops. The `waiting` flag makes this happen once per enqueue.
local function leaveWaiting(taskKey, waiting, client)
    if waiting and client then
        rcall("HDEL", taskKey, "waiting")
        if rcall("HINCRBY", clientsKey, client, -1) <= 0 then
            rcall("HDEL", clientsKey, client)
        end
    end
end

local FIELDS = { "status", "retry_at", "attempts", "max_attempts", "error",
                 "waiting", "client", "payload", "audio_midi_id",
                 "timeout_ms" }

local function take(lane)
    local index = 0
    local looked = 0
    while looked < depth do
        local id = rcall("LINDEX", lane, index)
        if not id then
            return nil
        end
        looked = looked + 1
        local taskKey = taskPrefix .. id
        -- One HMGET answers existence, type and every field needed.
        local f = redis.pcall("HMGET", taskKey, unpack(FIELDS))
        if f.err then
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
                return id, taskKey, attempts, f
            end
        end
    end
    return nil
end

local id, taskKey, attempts, f = take(priorityKey)
if not id then
    id, taskKey, attempts, f = take(queueKey)
end
if not id then
    id, taskKey, attempts, f = take(bulkKey)
end
if not id then
    return {}
end

local claim = rcall("HINCRBY", taskKey, "claim", 1)
rcall("HSET", taskKey, "status", "processing", "attempts", attempts,
      "worker", workerId, "claimed_at", now)
if f[2] then
    rcall("HDEL", taskKey, "retry_at")
end
local timeoutMs = tonumber(f[10]) or 0
rcall("LPUSH", processingKey, id)
rcall("ZADD", timeKey, now + timeoutMs, id)
-- Ids are hex tokens (checked by wtt.queue); only the worker id, which
-- operators choose, goes through the encoder.
rcall("PUBLISH", claimedChannel,
      '{"id":"' .. id .. '","status":"processing","attempts":' .. attempts
      .. ',"worker":' .. cjson.encode(workerId) .. ',"claim":' .. claim
      .. '}')
return { id, tostring(claim), attempts, f[8] or "", f[9] or "", timeoutMs }
