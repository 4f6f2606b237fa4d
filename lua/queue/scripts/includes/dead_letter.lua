-- deadLetter(taskKey, id, now, err): the task failed for good. Marks the
-- hash failed, keeps it for `deadTtl` seconds, appends the id to the dead
-- letters and to the results backlog, and publishes a final `failed` event.
-- Needs locals: rcall, failedKey, resultsKey, deadTtl, failedChannel.
local function deadLetter(taskKey, id, now, err)
    rcall("HSET", taskKey, "status", "failed", "error", err,
          "finished_at", now)
    rcall("HDEL", taskKey, "retry_at", "worker")
    rcall("RPUSH", failedKey, id)
    rcall("RPUSH", resultsKey, id)
    rcall("EXPIRE", taskKey, deadTtl)
    rcall("PUBLISH", failedChannel, cjson.encode({
        id = id, status = "failed", error = err, final = true }))
end
