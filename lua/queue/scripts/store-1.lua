--[[
  Records the result files a worker uploaded (POST /transcribe/_result/)
  in the task hash, for the current claim holder of a processing task, at
  most once: the first upload's names stay. A replay of the same upload
  (same fingerprint: a worker retrying its POST) gets those names back; a
  different upload is refused and also gets them, so the caller can say
  what is stored. The worker's complete-4 comes after and carries the same
  names.

  Input:
    KEYS[1] task hash "task:{id}"
    ARGV[1] claim token
    ARGV[2] fingerprint of the upload (the stored file names, hashed)
    ARGV[3] uploads (JSON: midi, notes, posteriors, n_notes, claim)

  Output:
    {1, uploads}             stored
    {2, stored uploads}      a replay of the stored upload
    {-5, "not found"}        no such task
    {-2, "stale claim"}      not the current claim
    {-6, stored uploads}     another upload is already stored for the task
    {-3, "not processing"}   current claim, but the task is not processing
    {-7, "<key> is a <type>, not a hash"}  the task key holds another
                             type (includes/check_types): nothing written
]]
local rcall = redis.call
local taskKey = KEYS[1]
local claim = ARGV[1]
local fingerprint = ARGV[2]
local uploads = ARGV[3]

--- @include "check_types"

local bad = checkTypes({ "hash" })
if bad then
    return bad
end
if rcall("EXISTS", taskKey) == 0 then
    return { -5, "not found" }
end
local f = rcall("HMGET", taskKey, "claim", "status", "upload_fp", "uploads")
if f[1] ~= claim then
    return { -2, "stale claim" }
end
if f[3] then
    if f[3] == fingerprint then
        return { 2, f[4] or "" }
    end
    return { -6, f[4] or "" }
end
if f[2] ~= "processing" then
    return { -3, "not processing" }
end
rcall("HSET", taskKey, "upload_fp", fingerprint, "uploads", uploads,
      "result", uploads)
return { 1, uploads }
