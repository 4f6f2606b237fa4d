--- The process's metrics (docs/metrics.md): every family the code updates,
-- declared once here, over the C store of `wtt.core.metrics`, which every
-- Lua state of the process shares (web serves from several threads, each
-- with its own state; a Lua table would count per thread).
--
--     local metrics = require "wtt.metrics"
--     metrics.inc("wtt_tasks_completed_total")
--     metrics.inc("wtt_tasks_retried_total", 1, "timeout")   -- label values
--     metrics.observe("wtt_task_run_seconds", 12.5)
--     metrics.render()      -- the exposition text of the store
--
-- Counters here are per process and start at zero with it: Prometheus'
-- rate() and increase() take restarts in their stride, and sum() adds the
-- web replicas and workers. State that is the same for every replica
-- (queue depths, rows by status) is read from Redis and PostgreSQL at
-- scrape time instead (routes/metrics.lua).

local core = require "wtt.core.metrics"
local log = require "wtt.log"

local _M = {}

-- Seconds from a tenth of a second to an hour: waits and runs of a task.
local TASK_SECONDS = { 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600,
                       1800, 3600 }
-- Audio seconds per second of inference: below 1 is slower than real time.
local RTF = { 0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000 }

--- name -> { type, help, labels, buckets }
_M.FAMILIES = {
    -- task life (web: enqueue and the result subscriber; the reaper runs
    -- in every process)
    wtt_tasks_enqueued_total = { "counter",
        "Tasks this process enqueued, by lane.", { "lane" } },
    wtt_tasks_completed_total = { "counter",
        "Completed tasks this process recorded in PostgreSQL." },
    wtt_tasks_failed_total = { "counter",
        "Failed (dead-lettered) tasks this process recorded in PostgreSQL." },
    wtt_tasks_retried_total = { "counter",
        "Task runs put back in the queue for another attempt, by reason "
        .. "(error: the worker failed it; timeout: the reaper took back "
        .. "its expired claim).", { "reason" } },
    wtt_tasks_dead_lettered_total = { "counter",
        "Tasks moved to the dead letters, by reason (error, timeout).",
        { "reason" } },
    wtt_task_wait_seconds = { "histogram",
        "Time from a completed task's enqueue to its last claim.", nil,
        TASK_SECONDS },
    wtt_task_run_seconds = { "histogram",
        "Time from a completed task's last claim to its completion.", nil,
        TASK_SECONDS },
    wtt_inference_realtime_factor = { "histogram",
        "Seconds of audio transcribed per second of inference, per task.",
        nil, RTF },
    -- worker
    wtt_worker_tasks_total = { "counter",
        "Tasks this worker ran, by outcome (completed, retry, dead, "
        .. "released, lost, ...).", { "outcome" } },
    wtt_worker_windows_total = { "counter",
        "Model windows this worker ran." },
    wtt_worker_task_run_seconds = { "histogram",
        "Time this worker spent on a task, claim to outcome.", nil,
        TASK_SECONDS },
    wtt_worker_device_faults_total = { "counter",
        "Model calls that failed on the device (docs/worker.md \"Device "
        .. "faults\")." },
    wtt_worker_local_failures_total = { "counter",
        "Failures on the worker's own disk, each handing its tasks back "
        .. "uncharged (docs/worker.md \"Local failures\")." },
    wtt_worker_batch_tasks = { "histogram",
        "Tasks per claimed batch.", nil, { 1, 2, 4, 8, 16, 32, 64 } },
}

local index = {}


local function family(name)
    local f = index[name]
    if f then
        return f
    end
    local d = _M.FAMILIES[name]
    if not d then
        error("wtt.metrics: no family " .. tostring(name), 3)
    end
    local err
    f, err = core.family(name, d[2], d[1], d[3], d[4])
    if not f then
        -- Metrics never break what they measure: logged, update dropped.
        log.error("metrics.family_failed", { name = name, error = err })
        f = false
    end
    index[name] = f
    return f
end


--- Adds `n` (default 1) to a counter; label values follow.
function _M.inc(name, n, ...)
    local f = family(name)
    if f then
        core.add(f, n or 1, ...)
    end
end


--- Counts `v` into a histogram; label values follow.
function _M.observe(name, v, ...)
    local f = family(name)
    if f and type(v) == "number" and v == v then
        core.observe(f, v, ...)
    end
end


--- Registers every family, so a scrape shows them (at zero) before the
-- first update.
function _M.declare(names)
    for _, name in ipairs(names) do
        family(name)
    end
end


--- The store (with the process collectors) as exposition text.
function _M.render()
    return core.render()
end


--- Serves GET /metrics on `addr` ("HOST:PORT") from a thread of its own,
-- stopped and joined when this state closes (os.exit closes it).
-- @return port | nil, err
function _M.listen(addr)
    return core.listen(addr)
end


--- Observes the timings of a completed task from its queue hash (times
-- in ms since the epoch, as the queue scripts write them) and its result.
function _M.task_completed(t, result)
    local enq, claimed, fin = tonumber(t.enqueued_at), tonumber(t.claimed_at),
                              tonumber(t.finished_at)
    if enq and claimed and claimed >= enq then
        _M.observe("wtt_task_wait_seconds", (claimed - enq) / 1000)
    end
    if claimed and fin and fin >= claimed then
        _M.observe("wtt_task_run_seconds", (fin - claimed) / 1000)
    end
    _M.inc("wtt_tasks_completed_total")
end


return _M
