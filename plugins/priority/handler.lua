--- Priority policy: which lane a task waits in. Claim always looks at the
-- "priority" lane first, then the "default" one (task:queue), each FIFO.
-- With the default configuration every task goes to "default".

local type = type

local _M = {
    VERSION = "1.0.0",
    PRIORITY = 80,
}


--- Lane of a task: "priority" or "default".
function _M.lane(conf, payload)
    local d = type(payload) == "table" and payload.duration_s
    if conf.short_clip_s > 0 and type(d) == "number"
        and d <= conf.short_clip_s then
        return "priority"
    end
    return "default"
end


return _M
