-- GET /transcribe/metrics/ (docs/api.md): queue depths, live workers,
-- Redis INFO (a chosen subset), the generation's plugins and the rows by
-- status. Each part is best effort: an outage leaves its part out (or
-- says why) instead of failing the whole answer.
--
-- GET /metrics (docs/metrics.md): the same state for Prometheus, in its
-- text exposition format: what every web replica sees alike (queue
-- depths, workers, rows by status, subscriber lag) is read here at scrape
-- time; what this process counts (requests, tasks it recorded, memory)
-- comes from the process's store (lua/wtt/metrics.lua).

local json = require "wtt.json"
local plugins = require "wtt.plugins"
local conn = require "wtt.service.conn"
local wtt_metrics = require "wtt.metrics"

local INFO_SECTIONS = { "server", "clients", "memory", "stats" }
local INFO_KEYS = {
    server = { redis_version = true, uptime_in_seconds = true, redis_mode = true },
    clients = { connected_clients = true, blocked_clients = true,
                pubsub_clients = true },
    memory = { used_memory = true, used_memory_human = true, maxmemory = true,
               maxmemory_policy = true, mem_fragmentation_ratio = true },
    stats = { total_commands_processed = true, instantaneous_ops_per_sec = true,
              pubsub_channels = true, pubsub_patterns = true,
              evicted_keys = true, rejected_connections = true },
}

local function metrics(req)
    local out = { redis = {}, plugins = {} }
    local q, qerr = conn.queue()
    if q then
        local ok, stats, serr = pcall(q.stats, q)
        out.queue = ok and stats or json.null
        if not ok or not stats then
            out.queue_error = tostring(ok and serr or stats)
        end
        local wok, workers = pcall(q.workers, q)
        if wok and type(workers) == "table" then
            out.workers = workers
            out.workers_alive = #workers
            -- Workers that reported a device fault (docs/worker.md
            -- "Device faults") and their faults in a row, summed.
            local unhealthy, faults = 0, 0
            for _, w in ipairs(workers) do
                if w.healthy == 0 then
                    unhealthy = unhealthy + 1
                end
                faults = faults + (tonumber(w.device_faults) or 0)
            end
            out.workers_unhealthy = unhealthy
            out.worker_device_faults = faults
        end
    else
        out.queue_error = tostring(qerr)
    end
    local r = conn.redis()
    for _, section in ipairs(INFO_SECTIONS) do
        local text = r and r:call("INFO", section)
        if type(text) == "string" and text:find(":", 1, true) then
            local s = {}
            for k, v in text:gmatch("([%w_]+):([^\r\n]*)") do
                if INFO_KEYS[section][k] then
                    s[k] = tonumber(v) or v
                end
            end
            out.redis[section] = s
        end
    end
    local set = plugins.active()
    for _, p in ipairs(set and set.plugins or {}) do
        out.plugins[#out.plugins + 1] = { name = p.name, version = p.version,
                                          shipped = p.shipped }
    end
    if #out.plugins == 0 then
        out.plugins = nil
    end
    local db = conn.pg()
    if db then
        local rows = db:read("SELECT status, count(*) AS n FROM audio_midi GROUP BY status")
        if rows then
            out.db = {}
            for _, row in ipairs(rows) do
                out.db[row.status] = row.n
            end
        end
    end
    return 200, out
end


-- Families whose updates may not have happened yet in this process:
-- declared, so they show (at zero) from the first scrape.
local DECLARED = {
    "wtt_tasks_enqueued_total", "wtt_tasks_completed_total",
    "wtt_tasks_failed_total", "wtt_tasks_retried_total",
    "wtt_tasks_dead_lettered_total", "wtt_task_wait_seconds",
    "wtt_task_run_seconds", "wtt_inference_realtime_factor",
}

local STATUSES = { "pending", "processing", "completed", "failed" }


local function gauge(out, name, help, samples)
    out[#out + 1] = "# HELP " .. name .. " " .. help
    out[#out + 1] = "# TYPE " .. name .. " gauge"
    for _, s in ipairs(samples) do
        out[#out + 1] = name .. (s[2] or "") .. " " .. string.format("%.17g", s[1])
    end
end


-- Redis: depths per lane, processing, dead letters, results backlog,
-- paused, workers, and the subscriber's lag (the age of the oldest result
-- not yet recorded). @return up (1|0)
local function from_redis(out)
    local q = conn.queue()
    local r = conn.redis()
    if not q or not r then
        return 0
    end
    local k = q.k
    local res = r:pipeline(function(p)
        p:call("LLEN", k.queue)
        p:call("LLEN", k.priority)
        p:call("LLEN", k.bulk)
        p:call("LLEN", k.processing)
        p:call("LLEN", k.failed)
        p:call("LLEN", k.results)
        p:call("LLEN", k.results_processing)
        p:call("EXISTS", k.paused)
        p:call("LINDEX", k.results, 0)
        p:call("TIME")
    end)
    if type(res) ~= "table" or type(res[1]) ~= "number" then
        return 0
    end
    gauge(out, "wtt_queue_depth", "Tasks waiting to be claimed, by lane.", {
        { res[1], '{lane="default"}' }, { res[2], '{lane="priority"}' },
        { res[3], '{lane="bulk"}' } })
    gauge(out, "wtt_queue_processing", "Tasks claimed by a worker.",
          { { res[4] } })
    gauge(out, "wtt_queue_dead_letters", "Tasks in the dead letters.",
          { { res[5] } })
    gauge(out, "wtt_queue_results_backlog",
          "Finished tasks not yet recorded in PostgreSQL by the subscriber.",
          { { res[6] + (tonumber(res[7]) or 0) } })
    gauge(out, "wtt_queue_paused", "1 while the queue is paused.",
          { { res[8] == 1 and 1 or 0 } })
    local lag = 0
    local now = type(res[10]) == "table"
                and tonumber(res[10][1]) * 1000 + tonumber(res[10][2]) / 1000
    if type(res[9]) == "string" and now then
        local fin = tonumber(r:call("HGET", k.task_prefix .. res[9],
                                    "finished_at"))
        if fin and now > fin then
            lag = (now - fin) / 1000
        end
    end
    gauge(out, "wtt_subscriber_lag_seconds",
          "Age of the oldest finished task the subscriber has not recorded "
          .. "(0: none waiting).", { { lag } })
    local workers = q:workers()
    if type(workers) == "table" then
        local unhealthy = 0
        for _, w in ipairs(workers) do
            if w.healthy == 0 then
                unhealthy = unhealthy + 1
            end
        end
        gauge(out, "wtt_workers_alive",
              "Workers whose heartbeat has not expired.", { { #workers } })
        gauge(out, "wtt_workers_unhealthy",
              "Live workers that reported a device fault.", { { unhealthy } })
    end
    return 1
end


-- PostgreSQL: rows by status. @return up (1|0)
local function from_pg(out)
    local db = conn.pg()
    local rows = db and db:read(
        "SELECT status, count(*) AS n FROM audio_midi GROUP BY status")
    if not rows then
        return 0
    end
    local by = {}
    for _, row in ipairs(rows) do
        by[row.status] = tonumber(row.n) or 0
    end
    local samples = {}
    for _, st in ipairs(STATUSES) do
        samples[#samples + 1] = { by[st] or 0, '{status="' .. st .. '"}' }
    end
    gauge(out, "wtt_task_rows", "Transcription rows in PostgreSQL, by status.",
          samples)
    return 1
end


local function prometheus(req)
    wtt_metrics.declare(DECLARED)
    local out = {}
    local redis_up = from_redis(out)
    local pg_up = from_pg(out)
    gauge(out, "wtt_source_up",
          "1 when this scrape could read the source (redis, postgres).", {
          { redis_up, '{source="redis"}' }, { pg_up, '{source="postgres"}' } })
    local store, err = wtt_metrics.render()
    if not store then
        return 500, { error = "internal", detail = tostring(err) }
    end
    return 200, table.concat(out, "\n") .. "\n" .. store,
           { ["Content-Type"] = "text/plain; version=0.0.4; charset=utf-8" }
end


return {
    { "GET", "/transcribe/metrics/", metrics },
    { "GET", "/metrics", prometheus },
}
