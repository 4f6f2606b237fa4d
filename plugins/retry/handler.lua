--- Retry policy: how many attempts a task gets, how long it waits before
-- the next one (exponential backoff with "equal jitter"), and which errors
-- are worth retrying at all. See docs/plugins.md.

local floor = math.floor
local min = math.min
local find = string.find
local ipairs = ipairs

local _M = {
    VERSION = "1.0.0",
}


--- Claims a task may get (counted at claim time).
function _M.max_attempts(conf, payload)
    return conf.max_attempts
end


--- Delay in ms before a task that failed its `attempts`-th run may be
-- claimed again: d = min(max, base * 2^(attempts-1)), drawn in [d/2, d].
-- @param rand a number in [0, 1) from the caller's jitter source
function _M.backoff_ms(conf, attempts, rand)
    local d = min(conf.backoff_max_ms,
                  conf.backoff_base_ms * 2 ^ ((attempts or 1) - 1))
    return floor(d / 2 + (rand or 0.5) * d / 2)
end


--- Whether a failure may be retried: the worker's own flag first, then
-- the never_retry patterns.
function _M.retryable(conf, err, flag)
    if flag == false then
        return false
    end
    for _, pat in ipairs(conf.never_retry) do
        if find(err or "", pat) then
            return false
        end
    end
    return true
end


return _M
