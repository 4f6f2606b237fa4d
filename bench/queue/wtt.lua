-- wtt half of bench/queue.sh, run with `wtt run`:
--
--   wtt run wtt.lua enqueue REDIS_URL PREFIX N        enqueue N no-op tasks (one q:enqueue each)
--   wtt run wtt.lua wait    REDIS_URL PREFIX N [TIMEOUT_S]
--                                                      wait until the queue's stats show N
--                                                      results, then read every task hash
--   wtt run wtt.lua paced   REDIS_URL PREFIX N RATE    enqueue N tasks at RATE/s (workers are
--                                                      already idle), then as `wait`
--
-- Each prints one JSON line. Task ids are derived from (PREFIX, i), so `wait`
-- finds the hashes `enqueue` made. Throughput = N / (last finished_at - first
-- claimed_at); enqueue-to-claim latency = claimed_at - enqueued_at per task,
-- all from the task hashes (ms, the queue's one clock: Redis TIME).

local redis = require "wtt.redis"
local json = require "wtt.json"
local sys = require "wtt.sys"
local queue = require "wtt.queue"

local mode, url, prefix, n, arg5 = ...
n = tonumber(n)
if not (mode and url and prefix and n) then
    io.stderr:write("usage: wtt run wtt.lua enqueue|wait|paced REDIS_URL PREFIX N [RATE|TIMEOUT]\n")
    os.exit(2)
end

local r = assert(redis.connect(url))
local q = queue.new(r, { prefix = prefix })

local function id_of(i)
    -- 32 hex: a tag from the prefix, then the index.
    local tag = 0
    for c in prefix:gmatch(".") do
        tag = (tag * 31 + c:byte()) % 0x7fffffff
    end
    return ("%08x%024x"):format(tag, i)
end

local function task(i)
    return {
        id = id_of(i),
        audio_midi_id = "bench-" .. i,
        payload = { audio_url = "/media/bench.wav", options = {},
                    outputs = { "midi" }, duration_s = 1 },
    }
end

local function enqueue_all(rate)
    local t0 = sys.now()
    for i = 1, n do
        if rate then
            local due = t0 + (i - 1) / rate
            local wait = due - sys.now()
            if wait > 0 then
                sys.sleep(wait)
            end
        end
        local ok, err = q:enqueue(task(i))
        if not ok then
            error("enqueue " .. i .. ": " .. tostring(err))
        end
    end
    return sys.now() - t0
end

local function pct(sorted, p)
    if #sorted == 0 then
        return 0
    end
    local i = math.max(1, math.min(#sorted, math.ceil(p / 100 * #sorted)))
    return sorted[i]
end

local function wait_all(timeout)
    local deadline = sys.now() + (timeout or 600)
    local st
    repeat
        st = assert(q:stats())
        if st.results >= n then
            break
        end
        sys.sleep(0.05)
    until sys.now() > deadline
    if st.results < n then
        error(("timed out: %d of %d done (pending %d, processing %d, failed %d)")
              :format(st.results, n, st.pending, st.processing, st.failed))
    end
    -- Every task hash, 1000 per round trip.
    local lat, first, last, bad = {}, math.huge, 0, 0
    local CHUNK = 1000
    for base = 1, n, CHUNK do
        local hi = math.min(n, base + CHUNK - 1)
        local res = assert(r:pipeline(function(p)
            for i = base, hi do
                p:call("HMGET", prefix .. "task:" .. id_of(i), "enqueued_at",
                       "claimed_at", "finished_at", "status")
            end
        end))
        for _, h in ipairs(res) do
            local e, c, f = tonumber(h[1]), tonumber(h[2]), tonumber(h[3])
            if h[4] ~= "completed" or not (e and c and f) then
                bad = bad + 1
            else
                lat[#lat + 1] = c - e
                if c < first then first = c end
                if f > last then last = f end
            end
        end
    end
    if bad > 0 then
        error(bad .. " of " .. n .. " tasks are not completed with timestamps")
    end
    table.sort(lat)
    local span = math.max(1, last - first)
    return {
        tasks_per_s = math.floor(n / (span / 1000) + 0.5),
        p50_ms = pct(lat, 50), p99_ms = pct(lat, 99), max_ms = lat[#lat],
        span_s = span / 1000,
    }
end

local out = { system = "wtt", mode = mode, n = n, prefix = prefix }
if mode == "enqueue" then
    local s = enqueue_all(nil)
    out.enqueue_per_s = math.floor(n / s + 0.5)
elseif mode == "wait" then
    for k, v in pairs(wait_all(tonumber(arg5))) do out[k] = v end
elseif mode == "paced" then
    local rate = assert(tonumber(arg5), "RATE expected")
    enqueue_all(rate)
    out.rate = rate
    for k, v in pairs(wait_all(120)) do out[k] = v end
    out.tasks_per_s = nil      -- paced: the rate, not a throughput
    out.span_s = nil
else
    error("unknown mode " .. mode)
end
io.stdout:write(json.encode(out), "\n")
