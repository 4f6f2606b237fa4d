--[[
  Adds a task: creates its hash, appends its id to its lane (FIFO) and
  publishes `task:new`. Refused while a non-terminal task with that id
  exists, so a repeated submit never queues the same id twice. A terminal
  task (completed, failed) is replaced; its claim counter carries over so
  fencing tokens stay monotonic per id, and a dead letter of that id leaves
  the dead letters. A task rebuilt after Redis lost it (the reconciler)
  passes a claim floor: its fencing tokens then start above every token
  the lost state may have handed out, so a worker still holding one of
  those is refused.

  Input:
    KEYS[1] lane list ("task:queue" or "task:queue:priority")
    KEYS[2] task hash "task:{id}"
    KEYS[3] dead letters "task:failed"
    ARGV[1] id
    ARGV[2] audio_midi_id
    ARGV[3] payload (JSON)
    ARGV[4] max_attempts
    ARGV[5] timeout_ms
    ARGV[6] now (ms, Redis TIME)
    ARGV[7] channel "task:new"
    ARGV[8] lane name ("default" or "priority")
    ARGV[9] versions of the policy plugins (JSON), kept as `plugins`
    ARGV[10] claim floor (optional): the claim counter starts at least here

  Output:
    {1}               queued
    {-1, "exists"}    a pending or processing task has this id
    {-4, "bad task"}  the task key holds another type
]]
local rcall = redis.call
local laneKey = KEYS[1]
local taskKey = KEYS[2]
local failedKey = KEYS[3]
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

local kind = rcall("TYPE", taskKey).ok
local claim = 0
if kind == "hash" then
    local f = rcall("HMGET", taskKey, "status", "claim")
    if f[1] ~= "completed" and f[1] ~= "failed" then
        return { -1, "exists" }
    end
    claim = tonumber(f[2]) or 0
    rcall("DEL", taskKey)
    rcall("LREM", failedKey, 0, id)
elseif kind ~= "none" then
    return { -4, "bad task" }
end
if claimFloor and claimFloor > claim then
    claim = claimFloor
end

rcall("HSET", taskKey, "id", id, "audio_midi_id", audioMidiId,
      "payload", payload, "status", "pending", "attempts", 0,
      "max_attempts", maxAttempts, "timeout_ms", timeoutMs, "claim", claim,
      "lane", lane, "plugins", pluginVersions, "enqueued_at", now)
rcall("RPUSH", laneKey, id)
rcall("PUBLISH", newChannel, cjson.encode({ id = id, status = "pending" }))
return { 1 }
