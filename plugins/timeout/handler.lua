--- Visibility timeout policy: how long a claim lives without a heartbeat
-- or progress report, from the audio's length. Heartbeats extend the
-- deadline by this much, so it bounds silence, not the task's run time.

local floor = math.floor
local type = type

local _M = {
    VERSION = "1.0.0",
}


--- Timeout in ms for a task with `payload` ({duration_s = ...}).
function _M.timeout_ms(conf, payload)
    local d = type(payload) == "table" and payload.duration_s
    local t
    if type(d) == "number" and d >= 0 then
        t = conf.base_ms + d * conf.per_audio_s_ms
    else
        t = conf.unknown_ms
    end
    if t < conf.min_ms then
        t = conf.min_ms
    elseif t > conf.max_ms then
        t = conf.max_ms
    end
    return floor(t)
end


return _M
