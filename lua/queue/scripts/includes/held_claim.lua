-- heldClaim(taskKey, ...): the fence of every transition of a running task
-- (heartbeat, progress, complete, fail, release). Reads the task's `claim`
-- and `status`, then the fields named in `...`, in one HMGET (f[1] claim,
-- f[2] status, f[3] on: the named ones). Returns them when `claim`, the
-- caller's token, is the task's current claim and the task is processing;
-- else nil, the refusal code and its text: -2 "stale claim" (another run's
-- token, or no such task) or -3 "not processing" (the current token, but
-- its run already ended). So a worker whose claim was reaped, released or
-- already finished changes nothing.
-- Needs locals: rcall, claim.
local function heldClaim(taskKey, ...)
    local f = rcall("HMGET", taskKey, "claim", "status", ...)
    if f[1] ~= claim then
        return nil, -2, "stale claim"
    end
    if f[2] ~= "processing" then
        return nil, -3, "not processing"
    end
    return f
end
