-- SSE fan-out benchmark, run by bench/web.sh: a fresh PostgreSQL,
-- redis-server, `wtt serve` (subscriber thread on) and a real `wtt
-- worker`; WEB_SSE_CLIENTS event streams of one upload, all from
-- 127.0.0.1 (WTT_PER_IP_EXEMPT, as behind one reverse proxy), opened
-- before the worker starts; then the worker runs the task.
--
-- The reference for latency is a plain Redis subscriber in this process
-- (on the task's progress channel): the time it reads a message stands
-- for the publish. Each client's read of the same event (the progress
-- `done` count) minus that time is one sample. Reads are stamped before
-- any parsing (spec/support/sse.lua), the reference first.
--
-- Output: figures, then one line
--   SSE clients=N events=E p50_ms=X p99_ms=X max_ms=X rss_growth_mb=X
--       fds_before=N fds_during=N fds_after=N ...
-- Exit 1 when a client missed an event or got one out of order, the
-- stream did not end for all, or the descriptors did not come back.

local helpers = require "spec.support.server"
local pgh = require "spec.support.pg"
local rh = require "spec.support.redis"
local S = require "spec.support.service"
local sse = require "spec.support.sse"
local core = require "wtt.core.redis"
local json = require "wtt.json"
local runtime = require "wtt.runtime"
local sys = require "wtt.sys"

local CLIENTS = tonumber(os.getenv("WEB_SSE_CLIENTS")) or 1000
local CLIP_S = tonumber(os.getenv("WEB_CLIP_S")) or 60
local THREADS = os.getenv("WEB_THREADS") or "2"
local WORKER_THREADS = os.getenv("WEB_WORKER_THREADS") or "1"
local TOKEN = "bench-web-token-0123456789abcdef"

local function say(fmt, ...)
    io.stdout:write(fmt:format(...), "\n")
    io.stdout:flush()
end


local function percentile(sorted, p)
    if #sorted == 0 then
        return 0
    end
    return sorted[math.max(1, math.ceil(#sorted * p))]
end


-- VmRSS of a process in MB, and its open descriptors.
local function rss_mb(pid)
    local text = sys.read_file("/proc/" .. pid .. "/status") or ""
    return (tonumber(text:match("VmRSS:%s*(%d+) kB")) or 0) / 1024
end

local function fds(pid)
    local list = sys.listdir("/proc/" .. pid .. "/fd")
    return list and #list or -1
end


local function run(argv, env, log)
    local pid = assert(sys.spawn(argv, { env = env, stdout = log, stderr = log }))
    local how, code = sys.wait(pid, 120)
    assert(how == "exited" and code == 0, table.concat(argv, " ") .. " failed:\n"
           .. (sys.read_file(log) or ""))
end


assert(sse.raise_nofile(CLIENTS + 512) >= CLIENTS + 64,
       "the benchmark needs " .. (CLIENTS + 64) .. " open files")
local tmp = assert(sys.mkdtemp("wtt-bench-web-"))
assert(os.execute("mkdir -p '" .. tmp .. "/media'"))
local pgsrv, rsrv, srv, worker_pid
local status = 0

local ok, err = pcall(function()
    pgsrv = pgh.start()
    rsrv = rh.start({ args = { "--maxmemory-policy", "noeviction" } })
    run({ runtime.exe, "migrate" }, { DATABASE_URL = pgsrv.url },
        tmp .. "/migrate.log")
    srv = helpers.serve({
        routes = runtime.source_dir .. "/routes",
        threads = tonumber(THREADS),
        env = {
            DATABASE_URL = pgsrv.url, REDIS_URL = rsrv.url,
            WTT_MEDIA_DIR = tmp .. "/media", WTT_WORKER_TOKEN = TOKEN,
            WTT_KEY_PREFIX = false, WTT_ACCESS_LOG = "off",
            WTT_PER_IP_EXEMPT = "127.0.0.1",
            WTT_CONN_LIMIT = tostring(math.max(1024, CLIENTS + 256)),
        },
    })
    say("web: wtt serve pid %d, %s threads; clients: %d streams; "
        .. "recording: %d s synthesised; worker: %s inference thread(s)",
        srv.pid, THREADS, CLIENTS, CLIP_S, WORKER_THREADS)

    -- The task: uploaded and enqueued; no worker yet.
    local clip = tmp .. "/clip.wav"
    assert(sys.write_file(clip, S.wav(CLIP_S, 22050, 440)))
    local res = assert(srv:json("POST", "/transcribe/upload/", {
        multipart = { { name = "file", file = clip, filename = "clip.wav",
                        content_type = "audio/wav" } },
    }))
    assert(res.status == 201, res.body)
    local id = res.json.audio_midi_id
    res = assert(srv:json("POST", "/transcribe/generate/", {
        headers = { ["Content-Type"] = "application/json" },
        body = json.encode({ audio_midi_id = id, options = {} }),
    }))
    assert(res.status == 202, res.body)
    local task_id = res.json.task_id
    local path = "/transcribe/events/" .. id .. "/"

    -- Before: once the server has made what it keeps for good on first
    -- use (the fan-out hub's thread and Redis connection, each serving
    -- thread's database and Redis connections): a few streams opened and
    -- closed first.
    local cold_fds, cold_rss = fds(srv.pid), rss_mb(srv.pid)
    local warm = {}
    for i = 1, 16 do
        warm[i] = assert(sse.open(srv.port, path))
    end
    assert(sse.wait(warm, function()
        for _, c in ipairs(warm) do
            if #c.events < 1 then
                return false
            end
        end
        return true
    end, 30), "the warm-up streams got no state")
    for _, c in ipairs(warm) do
        c:close()
    end
    sys.sleep(0.5)
    local fds_before, rss_before = fds(srv.pid), rss_mb(srv.pid)

    say("before: rss %.1f MB, %d descriptors (fresh server: %.1f MB, %d)",
        rss_before, fds_before, cold_rss, cold_fds)

    -- The reference subscriber.
    local mon = assert(core.connect("127.0.0.1", rsrv.port, { timeout = 5 }))
    assert(mon:write("SUBSCRIBE", "task:progress:" .. task_id))
    assert(mon:read(5))
    local published = {}          -- done -> time read here
    local function on_mon()
        while true do
            local msg = mon:read(0)
            if type(msg) ~= "table" then
                return
            end
            local t = sys.now()
            if msg[1] == "message" then
                local doc = json.decode(msg[3])
                published[doc.progress.done] = t
            end
        end
    end

    -- The viewers.
    local t0 = sys.now()
    local clients = {}
    for i = 1, CLIENTS do
        clients[i] = assert(sse.open(srv.port, path))
    end
    local peak_rss, peak_fds = rss_mb(srv.pid), fds(srv.pid)
    local function sample()
        peak_rss = math.max(peak_rss, rss_mb(srv.pid))
        peak_fds = math.max(peak_fds, fds(srv.pid))
    end
    local function all(pred)
        return sse.all(clients, pred)
    end
    assert(sse.wait(clients, all(function(c) return #c.events >= 1 end), 60),
           "not every client got the state")
    sample()
    say("connected: %d streams with their state in %.2f s; rss %.1f MB, "
        .. "%d descriptors", CLIENTS, sys.now() - t0, rss_mb(srv.pid),
        fds(srv.pid))

    -- The worker runs the task while every stream watches.
    local wlog = tmp .. "/worker.log"
    worker_pid = assert(sys.spawn({ runtime.exe, "worker" }, {
        env = { REDIS_URL = rsrv.url, WTT_WEB_URL = srv.url,
                WTT_WORKER_TOKEN = TOKEN, WTT_DEVICE = "cpu",
                WTT_WORKER_THREADS = WORKER_THREADS,
                WTT_POLL_INTERVAL = "0.2", DATABASE_URL = false,
                WTT_KEY_PREFIX = false },
        stdout = wlog, stderr = wlog,
    }))
    -- This process's own collector would pause its reads (a cycle over a
    -- thousand clients' events): it waits until the measurement is over.
    collectgarbage("collect")
    collectgarbage("stop")
    local next_sample = sys.now()
    local done = sse.wait(clients, function()
        if sys.now() >= next_sample then
            sample()
            next_sample = sys.now() + 0.2
        end
        for _, c in ipairs(clients) do
            if not c.ended then
                return false
            end
        end
        return true
    end, 600, { mon:fd() }, on_mon)
    on_mon()
    collectgarbage("restart")
    sample()
    assert(done, "not every stream ended; worker log:\n"
           .. (sys.read_file(wlog) or ""))

    -- Every client: every progress event, in order, then completed.
    local dones = {}
    for d in pairs(published) do
        dones[#dones + 1] = d
    end
    table.sort(dones)
    local bad, lat = 0, {}
    for i, c in ipairs(clients) do
        local got = {}
        for _, ev in ipairs(c:named("progress")) do
            local p = sse.data(ev)
            got[#got + 1] = p.done
            local t = published[p.done]
            if t then
                lat[#lat + 1] = (ev.t - t) * 1000
            end
        end
        local last = c.events[#c.events]
        local same = #got == #dones and c.ended == "end" and last
                     and last.event == "completed"
        for k = 1, #got do
            same = same and got[k] == dones[k]
        end
        if not same then
            bad = bad + 1
            if bad <= 3 then
                say("client %d: got %s, expected %s, ended %s", i,
                    json.encode(got), json.encode(dones), tostring(c.ended))
            end
        end
    end
    table.sort(lat)
    if os.getenv("WEB_PER_EVENT") then
        for _, d in ipairs(dones) do
            local l = {}
            for _, c in ipairs(clients) do
                for _, ev in ipairs(c:named("progress")) do
                    if sse.data(ev).done == d then
                        l[#l + 1] = (ev.t - published[d]) * 1000
                    end
                end
            end
            table.sort(l)
            say("event %d: min %.1f p50 %.1f p99 %.1f max %.1f ms", d, l[1],
                percentile(l, 0.5), percentile(l, 0.99), l[#l])
        end
    end
    local fds_during, rss_during = peak_fds, peak_rss

    -- The worker's keep-alive connection to web is no client's: it goes
    -- first.
    sys.kill(worker_pid, "TERM")
    sys.wait(worker_pid, 30)
    worker_pid = nil
    for _, c in ipairs(clients) do
        c:close()
    end
    local fds_after = fds(srv.pid)
    local settle = sys.now() + 5
    while fds_after > fds_before and sys.now() < settle do
        sys.sleep(0.1)
        fds_after = fds(srv.pid)
    end
    local rss_after = rss_mb(srv.pid)

    mon:close()

    local p50, p99 = percentile(lat, 0.50), percentile(lat, 0.99)
    say("events: %d progress events published; %d samples (client x event)",
        #dones, #lat)
    say("delivery latency (Redis publish -> client read): p50 %.2f ms, "
        .. "p99 %.2f ms, max %.2f ms", p50, p99, lat[#lat] or 0)
    say("web rss: before %.1f MB, during (peak) %.1f MB, after %.1f MB",
        rss_before, rss_during, rss_after)
    say("web descriptors: before %d, during (peak) %d, after %d",
        fds_before, fds_during, fds_after)
    say("clients with every event in order and the end: %d of %d",
        CLIENTS - bad, CLIENTS)
    if bad > 0 or fds_after > fds_before then
        status = 1
    end
    say("SSE clients=%d events=%d p50_ms=%.2f p99_ms=%.2f max_ms=%.2f "
        .. "rss_growth_mb=%.1f fds_before=%d fds_during=%d fds_after=%d "
        .. "complete=%d", CLIENTS, #dones, p50, p99, lat[#lat] or 0,
        rss_during - rss_before, fds_before, fds_during, fds_after,
        CLIENTS - bad)
end)

if worker_pid then
    sys.kill(worker_pid, "TERM")
    if not sys.wait(worker_pid, 30) then
        sys.kill(worker_pid, "KILL")
        sys.wait(worker_pid, 5)
    end
end
if srv then pcall(srv.stop, srv) end
if rsrv then rsrv:stop() end
if pgsrv then pgsrv:stop() end
sys.rmtree(tmp)
if not ok then
    io.stderr:write("bench: FAIL: ", tostring(err), "\n")
    os.exit(1)
end
os.exit(status)
