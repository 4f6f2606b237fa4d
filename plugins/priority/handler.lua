--- Priority policy: which lane a task waits in. Claim looks at the
-- "priority" lane first, then the "default" one (task:queue), then the
-- "bulk" one, each FIFO. With the default configuration every task goes to
-- "default".
--
-- Fairness across clients (`fair_max_waiting` > 0): a client that already
-- has that many tasks waiting (enqueued, not yet claimed) gets its next
-- ones in the bulk lane, so one client flooding the queue cannot starve
-- another: the other's task waits behind at most `fair_max_waiting` of the
-- flood. The count and the choice happen inside the enqueue script
-- (docs/plugins.md says why); this plugin only names the client and the
-- limit.

local type = type

local _M = {
    VERSION = "1.1.0",
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


--- Who the task is counted against, and that client's limit of waiting
-- tasks before the bulk lane. nil: not counted (fairness off, or the task
-- names no client, e.g. one the reconciler rebuilt).
function _M.fair_share(conf, payload)
    local client = type(payload) == "table" and payload.client
    if conf.fair_max_waiting > 0 and type(client) == "string"
       and client ~= "" then
        return client, conf.fair_max_waiting
    end
    return nil
end


return _M
