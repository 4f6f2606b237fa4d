-- laneOf(taskKey): the pending list the task goes back to (its `lane`
-- field: "priority" or the default queue).
-- Needs locals: rcall, queueKey, priorityKey.
local function laneOf(taskKey)
    if rcall("HGET", taskKey, "lane") == "priority" then
        return priorityKey
    end
    return queueKey
end
