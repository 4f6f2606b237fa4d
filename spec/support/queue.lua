-- Shared by the queue specs: a fixed test policy with scaled-down timeouts.
local _M = {}

--- A policy table (the shape of wtt.policy.current()) with `over` fields.
function _M.policy(over)
    over = over or {}
    local p = {
        versions = { retry = "test" },
        source = "test",
        max_attempts = function() return over.max_attempts or 3 end,
        backoff_ms = function() return over.backoff_ms or 0 end,
        retryable = function(_, flag) return flag ~= false end,
        timeout_ms = function() return over.timeout_ms or 300 end,
        lane = over.lane or function() return "default" end,
        dead_ttl_s = function() return over.dead_ttl_s or 86400 end,
        final_ttl_s = function() return over.final_ttl_s or 604800 end,
    }
    return p
end

function _M.id(n)
    return string.format("%032x", n)
end

--- The KEYS indexes a queue script's header declares as the task key
-- prefix (a key name prefix, not a key: "KEYS[6] task key prefix ...").
-- @param src the script's text
-- @return set { [index] = true }
function _M.prefix_keys(src)
    local out = {}
    for i, line in src:gmatch("\n%s*KEYS%[(%d+)%]([^\n]*)") do
        if line:find("task key prefix", 1, true) then
            out[tonumber(i)] = true
        end
    end
    return out
end

return _M
