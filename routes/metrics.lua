-- GET /transcribe/metrics/ (docs/api.md): queue depths, live workers,
-- Redis INFO (a chosen subset), the generation's plugins and the rows by
-- status. Each part is best effort: an outage leaves its part out (or
-- says why) instead of failing the whole answer.

local json = require "wtt.json"
local plugins = require "wtt.plugins"
local conn = require "wtt.service.conn"

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


return {
    { "GET", "/transcribe/metrics/", metrics },
}
