-- checkTypes(types): refuses a transition whose keys do not hold what the
-- script expects, before its first write. `types` names the Redis type of
-- each KEYS entry, in order ("list", "zset", "hash", "string", or "prefix"
-- for a key prefix, which names no key itself). Returns nil when every
-- key is missing or of its type, else the reply
-- {-7, "<key> is a <type>, not a <expected>"} (WRONGTYPE).
-- Why first: Redis does not undo a script's earlier writes when a later
-- command fails on a wrong-typed key, so a check in the middle would leave
-- a task half-moved (claimed, yet in no list and with no deadline).
-- Needs locals: rcall.
local function checkTypes(types)
    for i = 1, #KEYS do
        local want = types[i]
        if want ~= "prefix" then
            local kind = rcall("TYPE", KEYS[i]).ok
            if kind ~= "none" and kind ~= want then
                return { -7, KEYS[i] .. " is a " .. kind
                             .. ", not a " .. tostring(want) }
            end
        end
    end
    return nil
end
