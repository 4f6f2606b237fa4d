--[[
  Adds a task: creates its hash, appends its id to its lane (FIFO) and
  publishes `task:new`. Refused while a non-terminal task with that id
  exists, so a repeated submit never queues the same id twice. A terminal
  task (completed, failed) is replaced, and so is a hash that is no task
  (no status or an unknown one: a hand edit, a partial restore), which no
  script would ever claim or finish, so that the reconciler can rebuild
  the task it stands for (Q4); its claim counter carries over so
  fencing tokens stay monotonic per id, and a dead letter of that id leaves
  the dead letters. A task rebuilt after Redis lost it (the reconciler)
  passes a claim floor: its fencing tokens then start above every token
  the lost state may have handed out, so a worker still holding one of
  those is refused.

  Fairness across clients (the priority plugin): a task that names a client
  counts in that client's waiting tasks (`clients` hash, field = client,
  until its first claim: the hash's `waiting` flag); when the count, this
  task included, is over the limit, the task goes to the bulk lane, which
  is claimed only after the other two. Decided here, atomically with the
  count, so claim stays O(1) and concurrent enqueues cannot both slip
  under the limit.

  Input:
    KEYS[1] lane list ("task:queue" or "task:queue:priority")
    KEYS[2] bulk lane "task:queue:bulk"
    KEYS[3] task hash "task:{id}"
    KEYS[4] dead letters "task:failed"
    KEYS[5] waiting tasks per client "task:clients" (hash)
    ARGV[1] id
    ARGV[2] audio_midi_id
    ARGV[3] payload (JSON)
    ARGV[4] max_attempts
    ARGV[5] timeout_ms
    ARGV[6] now (ms, Redis TIME)
    ARGV[7] channel "task:new"
    ARGV[8] lane name ("default" or "priority")
    ARGV[9] versions of the policy plugins (JSON), kept as `plugins`
    ARGV[10] claim floor ("" or absent: none): the claim counter starts at
             least here
    ARGV[11] client ("" or absent: not counted)
    ARGV[12] most waiting tasks per client before the bulk lane (0: off)

  Output:
    {1, lane}         queued in lane "default", "priority" or "bulk"
    {-1, "exists"}    a pending or processing task has this id
    {-7, "<key> is a <type>, not a <expected>"}  a key holds another type
                          (includes/check_types): nothing written
]]
local rcall = redis.call
local laneKey = KEYS[1]
local bulkKey = KEYS[2]
local taskKey = KEYS[3]
local failedKey = KEYS[4]
local clientsKey = KEYS[5]
local id = ARGV[1]
local audioMidiId = ARGV[2]
local payload = ARGV[3]
local maxAttempts = ARGV[4]
local timeoutMs = ARGV[5]
local now = ARGV[6]
local newChannel = ARGV[7]
local lane = ARGV[8]
local pluginVersions = ARGV[9]
local claimFloor = tonumber(ARGV[10])
local client = ARGV[11] or ""
local maxWaiting = tonumber(ARGV[12]) or 0

--- @include "check_types"

local bad = checkTypes({ "list", "list", "hash", "list", "hash" })
if bad then
    return bad
end

local claim = 0
if rcall("EXISTS", taskKey) == 1 then
    local f = rcall("HMGET", taskKey, "status", "claim")
    if f[1] == "pending" or f[1] == "processing" then
        return { -1, "exists" }
    end
    claim = tonumber(f[2]) or 0
    rcall("DEL", taskKey)
    rcall("LREM", failedKey, 0, id)
end
if claimFloor and claimFloor > claim then
    claim = claimFloor
end

rcall("HSET", taskKey, "id", id, "audio_midi_id", audioMidiId,
      "payload", payload, "status", "pending", "attempts", 0,
      "max_attempts", maxAttempts, "timeout_ms", timeoutMs, "claim", claim,
      "lane", lane, "plugins", pluginVersions, "enqueued_at", now)
if client ~= "" then
    local waiting = rcall("HINCRBY", clientsKey, client, 1)
    rcall("HSET", taskKey, "client", client, "waiting", 1)
    if maxWaiting > 0 and waiting > maxWaiting then
        lane = "bulk"
        laneKey = bulkKey
        rcall("HSET", taskKey, "lane", lane)
    end
end
rcall("RPUSH", laneKey, id)
rcall("PUBLISH", newChannel, cjson.encode({ id = id, status = "pending" }))
return { 1, lane }
