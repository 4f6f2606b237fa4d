-- completeTask(taskKey, id, result): the run of a task whose claim was
-- checked (heldClaim) ends in success. It leaves the processing list and
-- the deadlines, its hash records the result (kept for `finalTtl`
-- seconds), its id joins the results backlog, and `task:completed` is
-- published.
-- Needs locals: rcall, processingKey, timeKey, resultsKey, now, finalTtl,
-- channel.
local function completeTask(taskKey, id, result)
    rcall("LREM", processingKey, 1, id)
    rcall("ZREM", timeKey, id)
    rcall("HSET", taskKey, "status", "completed", "result", result,
          "finished_at", now)
    rcall("HDEL", taskKey, "retry_at", "worker")
    rcall("RPUSH", resultsKey, id)
    rcall("EXPIRE", taskKey, finalTtl)
    -- Ids are hex tokens (checked by wtt.queue): no escaping needed, and no
    -- table built and encoded on every completion.
    rcall("PUBLISH", channel,
          '{"id":"' .. id .. '","status":"completed","final":true}')
end
