-- laneOf(taskKey): the pending list the task goes back to: the lane it was
-- enqueued in (its `lane` field: "priority", "bulk", else the default
-- queue), so a retry, a timeout or a release does not undo the fairness
-- decided at enqueue.
-- Needs locals: rcall, queueKey, priorityKey, bulkKey.
local function laneOf(taskKey)
    local lane = rcall("HGET", taskKey, "lane")
    if lane == "priority" then
        return priorityKey
    elseif lane == "bulk" then
        return bulkKey
    end
    return queueKey
end
