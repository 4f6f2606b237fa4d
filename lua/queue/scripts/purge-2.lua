--[[
  Deletes up to ARGV[1] dead letters from the head of the list, with their
  task hashes (only hashes still marked failed are deleted).

  Input:
    KEYS[1] dead letters "task:failed"
    KEYS[2] task key prefix "task:"
    ARGV[1] batch size

  Output:
    {n_purged}
    {-7, "<key> is a <type>, not a <expected>"}  a key holds another type
                          (includes/check_types): nothing written
]]
local rcall = redis.call
local failedKey = KEYS[1]
local taskPrefix = KEYS[2]
local batch = tonumber(ARGV[1])

--- @include "check_types"

local bad = checkTypes({ "list", "prefix" })
if bad then
    return bad
end

local ids = rcall("LRANGE", failedKey, 0, batch - 1)
for _, id in ipairs(ids) do
    local taskKey = taskPrefix .. id
    local kind = rcall("TYPE", taskKey).ok
    if kind ~= "hash" or rcall("HGET", taskKey, "status") == "failed" then
        rcall("DEL", taskKey)
    end
end
rcall("LTRIM", failedKey, #ids, -1)
return { #ids }
