-- The soak of docs/reliability.md §10, run by bench/soak.sh [MINUTES]:
-- mixed load on the real four services for MINUTES, faults injected on a
-- schedule, then a full audit.
--
-- The stack is the fault specs' (spec/support/faults.lua): PostgreSQL,
-- redis-server with AOF (everysec), `wtt serve` with its subscriber, and
-- two workers on the CPU engine: one runs the whole time, the other is
-- SIGKILLed and restarted every KILL_EVERY seconds (a task it held is
-- reaped after the visibility timeout and run again). The plugins are a
-- copy the run edits every RELOAD_EVERY seconds: each edit is followed by
-- a reload of web's routes and plugins (POST /_admin/reload) and a SIGHUP
-- to the real worker. Redis is SIGKILLed once, at half time, and restarted
-- on its AOF.
--
-- The load (spec/support/load_client.lua, a process of its own): CLIENTS
-- threads, half following their tasks by status polls and half by event
-- streams, each uploading a clip and generating every UPLOAD_EVERY_S, then
-- fetching the MIDI and the tab of every task once it completes, and
-- GET /healthz on every round. A 503 is allowed only while Redis is down
-- (until web is ready again), and counted as injected; so is a 5xx in
-- web's request log (the workers' requests too) in that window.
--
-- Every SAMPLE_S after the first minute (or the first third of a shorter
-- run, when the processes load their code and open their connections) the
-- resident memory and open
-- descriptors of each service are read from /proc: web, the worker that
-- is never killed, redis-server (one process; after the restart, the new
-- one), and PostgreSQL (the postmaster and its children). Resident memory
-- is the anonymous part (RssAnon): what a leak grows. The file-backed
-- part is the binary's and libraries' code, faulted in as more of it runs
-- (most of web's RSS: 14.6 of 20 MB at rest), and PostgreSQL's shared
-- buffers are counted by whichever process touched them first.
--
-- The audit: the load saw no failure, and neither it nor web's request
-- log a 5xx but the injected ones;
-- every task it generated is completed, once, in PostgreSQL and in Redis
-- (the invariant checker); every upload's audio file exists and the media
-- directory holds no file that no row names (its tab/ cache of rendered
-- tabs aside); for each service, the mean RSS and descriptor count of the
-- last third of the samples taken after JUDGE_FROM_S is within GROWTH_PCT
-- of the first third's (5 %; 20 % for a run under 10 minutes, see below).
-- The growth over all samples is printed as well.
--
-- Last line:
--   RESULT soak minutes=M tasks=N requests=N kills=N reloads=N
--     redis_restarts=1 injected_5xx=N web_log_injected_5xx=N other_5xx=N
--     failures=N
--     rss_growth_pct=web:X,worker:X,redis:X,pg:X (anonymous memory)
--     judged_from_s=S fd_growth_pct=... web_malloc_live_growth_pct=X
--     rss_growth_from_60s_pct=... (every sample) ok=yes|no
-- Exit 0 when ok=yes.

local support = require "spec.support.faults"
local load_results = require "spec.support.load_results"
local json = require "wtt.json"
local httpc = require "wtt.http_client"
local runtime = require "wtt.runtime"
local sys = require "wtt.sys"

local MINUTES = tonumber((...)) or 30
local TOTAL_S = MINUTES * 60
local SAMPLE_S = 10
local WARMUP_S = math.min(60, TOTAL_S / 3)
-- Where the judged samples begin. web's resident memory rises for its
-- first 8 to 10 minutes under this load and then holds (docs/reliability.md
-- section 10): its live malloc bytes stay flat meanwhile, the rise is the
-- free space between live blocks in its threads' malloc arenas (one per
-- serving thread, each with its own Lua state, replaced every reload)
-- growing to its steady state. A leak keeps growing after that.
local JUDGE_FROM_S = math.max(WARMUP_S, math.min(600, TOTAL_S / 3))
local RELOAD_EVERY = 60
local KILL_EVERY = math.min(180, TOTAL_S / 3)
local CLIENTS = tonumber(os.getenv("SOAK_CLIENTS")) or 4
local UPLOAD_EVERY_S = tonumber(os.getenv("SOAK_UPLOAD_EVERY_S")) or 8
-- The leak bound. Web and the worker keep filling allocator arenas and
-- LuaJIT traces for several minutes (the 30-minute run: most of web's
-- growth in its first 8), so a run under 10 minutes is still warming up;
-- its looser bound catches gross leaks only (a megabyte a reload would
-- show as about 25 % in 3 minutes).
local GROWTH_PCT = MINUTES >= 10 and 5 or 20
-- Completed tasks' hashes live this long in Redis (7 days in production:
-- the deadletter plugin's final_ttl_s), so that Redis's data, like a
-- long-running deployment's, stops growing within the run and its RSS
-- says something about leaks rather than about the data it was told to
-- keep. The audit runs on the hashes still there and on PostgreSQL.
local FINAL_TTL_S = math.floor(math.min(300, TOTAL_S / 6))
local LOAD = runtime.source_dir .. "/spec/support/load_client.lua"

local function say(fmt, ...)
    io.stdout:write(fmt:format(...), "\n")
    io.stdout:flush()
end


-- /proc readings --------------------------------------------------------

local function status_kb(pid, field)
    local text = sys.read_file("/proc/" .. pid .. "/status") or ""
    return tonumber(text:match(field .. ":%s*(%d+) kB"))
end


local function fd_count(pid)
    local names = sys.listdir("/proc/" .. pid .. "/fd")
    return names and #names or nil
end


-- The postmaster (first line of postmaster.pid) and its children.
local function pg_pids(data_dir)
    local text = sys.read_file(data_dir .. "/postmaster.pid") or ""
    local master = text:match("^(%d+)")
    if not master then
        return {}
    end
    local pids = { master }
    for _, name in ipairs(sys.listdir("/proc") or {}) do
        if name:match("^%d+$") then
            local stat = sys.read_file("/proc/" .. name .. "/stat") or ""
            -- the ppid is the 2nd field after the ")" that ends the name
            local ppid = stat:match("%)%s+%S+%s+(%d+)")
            if ppid == master then
                pids[#pids + 1] = name
            end
        end
    end
    return pids
end


-- One sample of every service: { name = { rss_kb, fds } }.
local function sample(env, real)
    local s = {
        web = { status_kb(env.serve_pid, "RssAnon"),
                fd_count(env.serve_pid) },
        worker = { status_kb(real.pid, "RssAnon"), fd_count(real.pid) },
        redis = { env.rsrv.pid and status_kb(env.rsrv.pid, "RssAnon"),
                  env.rsrv.pid and fd_count(env.rsrv.pid) },
    }
    local rss, fds = 0, 0
    for _, pid in ipairs(pg_pids(env.pgsrv.data)) do
        rss = rss + (status_kb(pid, "RssAnon") or 0)
        fds = fds + (fd_count(pid) or 0)
    end
    s.pg = { rss, fds }
    -- web's Lua heaps (all its states) and malloc's live and free bytes,
    -- to tell a leak (live bytes) from the allocator keeping freed memory
    local res = httpc.request({ url = env.url .. "/metrics", timeout = 10 })
    local body = res and res.body or ""
    s.web[3] = tonumber(body:match("\nwtt_lua_memory_bytes (%d+)"))
    s.web[4] = tonumber(body:match("\nwtt_malloc_in_use_bytes (%d+)"))
    s.web[5] = tonumber(body:match("\nwtt_malloc_free_bytes (%d+)"))
    return s
end


local SERVICES = { "web", "worker", "redis", "pg" }

-- Growth in % of the last third's mean over the first third's, for the
-- field `k` (1 RSS, 2 descriptors) of every service.
local function growth(samples, k, services)
    local n = #samples
    local third = math.floor(n / 3)
    local out = {}
    for _, name in ipairs(services or SERVICES) do
        local function mean(from, to)
            local sum, cnt = 0, 0
            for i = from, to do
                local v = samples[i][name][k]
                if v then
                    sum, cnt = sum + v, cnt + 1
                end
            end
            return cnt > 0 and sum / cnt or nil
        end
        local first, last = mean(1, third), mean(n - third + 1, n)
        out[name] = (third > 0 and first and last and first > 0)
                    and (last - first) / first * 100 or 0 / 0
    end
    return out
end


-- The run ------------------------------------------------------------------

local function copy_plugins(dir)
    assert(os.execute("cp -r '" .. runtime.source_dir .. "/plugins' '"
                      .. dir .. "'"))
    return dir
end


-- An edit an operator might make: a comment line appended to the retry
-- plugin, so that the file's content (and SHA-256) changes and the reload
-- really loads it again.
local function edit_plugin(dir, n)
    local path = dir .. "/retry/handler.lua"
    local text = assert(sys.read_file(path))
    assert(sys.write_file(path, text .. ("-- soak edit %d\n"):format(n)))
end


local function reload_web(env)
    local res = httpc.request({
        url = env.url .. "/_admin/reload", method = "POST", timeout = 30,
        headers = { Authorization = "Bearer "
                    .. require("spec.support.server").ADMIN_TOKEN } })
    return res and res.status == 200, res and res.status
end


local function clip_paths()
    local out = {}
    for _, name in ipairs(support.CLIP_NAMES) do
        out[#out + 1] = support.CLIPS .. "/" .. name .. ".wav"
    end
    return out
end


-- Every row's audio file exists, and every media file is named by a row.
local function audit_files(env, problems)
    local named = {}
    local rows = assert(env.db:query(
        "SELECT audio_path, midi_path, notes_path, posteriors_path "
        .. "FROM audio_midi"))
    for _, row in ipairs(rows) do
        for _, col in ipairs({ "audio_path", "midi_path", "notes_path",
                               "posteriors_path" }) do
            local v = row[col]
            if type(v) == "string" then
                named[v] = true
                if col == "audio_path"
                   and not sys.exists(env.media .. "/" .. v) then
                    problems[#problems + 1] = "audio file lost: " .. v
                end
            end
        end
    end
    for _, name in ipairs(sys.listdir(env.media) or {}) do
        if not named[name] and name ~= "tab" then
            problems[#problems + 1] = "file no row names: " .. name
        end
    end
end


local plugins = copy_plugins(assert(sys.mkdtemp("wtt-soak-plugins-"))
                             .. "/plugins")
local env = support.start({ env = {
    WTT_PLUGINS_DIR = plugins,
    WTT_DEADLETTER_FINAL_TTL_S = tostring(FINAL_TTL_S) } })
local ok, err = pcall(function()
    local wenv = { WTT_PLUGINS_DIR = plugins,
                   WTT_DEADLETTER_FINAL_TTL_S = tostring(FINAL_TTL_S) }
    local real = env:worker(wenv)
    local victim = env:worker(wenv)
    for _, w in ipairs({ real, victim }) do
        w:await("worker.started", 1, 120)
    end

    local tolerate = env.tmp .. "/injecting"
    local stop = env.tmp .. "/stop-load"
    local outs, modes = {}, {}
    for i = 1, CLIENTS do
        outs[i] = env.tmp .. "/load-" .. i .. ".json"
        modes[i] = i % 2 == 0 and "sse" or "poll"
    end
    local job = env.tmp .. "/load.json"
    assert(sys.write_file(job, json.encode({
        url = env.url, wavs = clip_paths(), stop = stop, threads = outs,
        modes = modes, tab = true, tolerate = tolerate,
        upload_every_s = UPLOAD_EVERY_S, max_uploads = 1e9, finish_s = 180,
        deadline_s = TOTAL_S + 240 })))
    local llog = env.tmp .. "/load.log"
    local load_pid = assert(sys.spawn({ runtime.exe, "run", LOAD, job },
                                      { stdout = llog, stderr = llog }))

    local t0 = sys.now()
    local samples = {}
    local next_sample, next_reload, next_kill = t0 + WARMUP_S,
                                                t0 + RELOAD_EVERY,
                                                t0 + KILL_EVERY
    local windows = {}           -- injected faults: { from, to } (UTC ISO)
    local redis_at = t0 + TOTAL_S / 2
    local kills, reloads, reload_fails, redis_restarts = 0, 0, 0, 0
    while sys.now() < t0 + TOTAL_S do
        local now = sys.now()
        if now >= next_sample then
            next_sample = next_sample + SAMPLE_S
            local smp = sample(env, real)
            smp.t = now - t0
            samples[#samples + 1] = smp
        end
        if now >= next_reload then
            next_reload = next_reload + RELOAD_EVERY
            reloads = reloads + 1
            edit_plugin(plugins, reloads)
            local good, status = reload_web(env)
            if not good then
                reload_fails = reload_fails + 1
                say("reload %d answered %s", reloads, tostring(status))
            end
            real:signal("HUP")
        end
        if now >= next_kill then
            next_kill = next_kill + KILL_EVERY
            kills = kills + 1
            victim:kill()
            victim = env:worker(wenv)
        end
        if redis_restarts == 0 and now >= redis_at then
            redis_restarts = 1
            local from = os.date("!%Y-%m-%dT%H:%M:%S")
            assert(sys.write_file(tolerate, ""))
            env.rsrv:kill("KILL")
            env.rsrv:restart()
            assert(support.eventually(function()
                local res = httpc.request({ url = env.url .. "/readyz",
                                            timeout = 1 })
                return res and res.status == 200
            end, 60, 0.1), "web not ready after the Redis restart")
            -- the clients' connections to Redis come back within their
            -- reconnect backoff
            sys.sleep(2)
            os.remove(tolerate)
            windows[#windows + 1] = { from, os.date("!%Y-%m-%dT%H:%M:%S",
                                                    os.time() + 1) }
            say("redis restarted at %.0f s", now - t0)
        end
        if real:wait(0) then
            error("the real worker exited:\n" .. real:text())
        end
        sys.sleep(0.2)
    end
    assert(sys.write_file(stop, ""))
    local how, code = sys.wait(load_pid, 300)
    if not how then
        sys.kill(load_pid, "KILL")
        sys.wait(load_pid, 5)
    end

    -- The audit.
    local counts, failures, tasks = load_results.collect(outs)
    if how ~= "exited" or code ~= 0 then
        failures[#failures + 1] = ("the load process ended %s %s:\n%s")
            :format(tostring(how), tostring(code), sys.read_file(llog) or "")
    end
    local requests, injected, other5xx = 0, 0, 0
    local keys = {}
    for k, n in pairs(counts) do
        keys[#keys + 1] = k
        if k ~= "events reopen" then
            requests = requests + n
        end
        if k:find(" 503 injected", 1, true) then
            injected = injected + n
        elseif k:match(" 5%d%d$") then
            other5xx = other5xx + n
        end
    end
    local web_injected = 0
    for line in env:serve_text():gmatch("[^\n]+") do
        local ts, st = line:match("^ts=(%S+) .*event=http%.request .* "
                                  .. "status=(5%d%d) ")
        if st then
            local inside = false
            for _, w in ipairs(windows) do
                inside = inside or (ts >= w[1] and ts <= w[2])
            end
            if inside then
                web_injected = web_injected + 1
            else
                other5xx = other5xx + 1
                say("5xx outside the injected faults: %s", line)
            end
        end
    end
    table.sort(keys)
    for _, k in ipairs(keys) do
        say("  %-24s %d", k, counts[k])
    end
    local problems = {}
    for _, f in ipairs(failures) do
        problems[#problems + 1] = f
    end
    local ids = {}
    for _, t in ipairs(tasks) do
        if t.status ~= "completed" then
            problems[#problems + 1] = "task " .. t.id .. " ended " .. t.status
        end
        ids[#ids + 1] = t.id
    end
    local rows = assert(env.db:query(
        "SELECT status, count(*)::int AS n FROM audio_midi GROUP BY status"))
    local by = {}
    for _, row in ipairs(rows) do
        by[row.status] = row.n
    end
    say("rows: %s", json.encode(by))
    if (by.completed or 0) ~= #tasks then
        problems[#problems + 1] = ("%d rows completed for %d tasks")
            :format(by.completed or 0, #tasks)
    end
    local inv_ok, inv_err = pcall(env.check_invariants, env, 60)
    if not inv_ok then
        problems[#problems + 1] = "invariants: " .. tostring(inv_err)
    end
    audit_files(env, problems)
    if other5xx > 0 then
        problems[#problems + 1] = other5xx .. " answers 5xx not injected"
    end
    if reload_fails > 0 then
        problems[#problems + 1] = reload_fails .. " reloads failed"
    end

    local judged = {}
    for _, smp in ipairs(samples) do
        if smp.t >= JUDGE_FROM_S then
            judged[#judged + 1] = smp
        end
    end
    local rss, fds = growth(judged, 1), growth(judged, 2)
    local rss_all = growth(samples, 1)
    -- Reported, not judged: web's live malloc bytes (a leak's measure;
    -- they swing with the Lua collector's cycles).
    local live = growth(judged, 4, { "web" }).web
    local rss_s, fds_s, all_s = {}, {}, {}
    for _, name in ipairs(SERVICES) do
        rss_s[#rss_s + 1] = ("%s:%.1f"):format(name, rss[name])
        all_s[#all_s + 1] = ("%s:%.1f"):format(name, rss_all[name])
        fds_s[#fds_s + 1] = ("%s:%.1f"):format(name, fds[name])
        if not (rss[name] <= GROWTH_PCT) then
            problems[#problems + 1] = ("%s RSS grew %.1f%% (last third "
                .. "over first)"):format(name, rss[name])
        end
        if not (fds[name] <= GROWTH_PCT) then
            problems[#problems + 1] = ("%s descriptors grew %.1f%%")
                :format(name, fds[name])
        end
    end
    for i, s in ipairs(samples) do
        local parts = {}
        for _, name in ipairs(SERVICES) do
            local v = s[name]
            parts[#parts + 1] = ("%s %s kB %s fd%s%s"):format(name,
                tostring(v[1]), tostring(v[2]),
                v[3] and (" (Lua %d kB)"):format(v[3] / 1024) or "",
                v[4] and (" (malloc %d kB live, %d kB free)"):format(
                    v[4] / 1024, (v[5] or 0) / 1024) or "")
        end
        say("sample %3d %5d s  %s", i, s.t or 0, table.concat(parts, "  "))
    end
    for _, p in ipairs(problems) do
        say("FAIL: %s", p)
    end
    say("RESULT soak minutes=%g tasks=%d requests=%d kills=%d reloads=%d "
        .. "redis_restarts=%d injected_5xx=%d web_log_injected_5xx=%d "
        .. "other_5xx=%d failures=%d "
        .. "judged_from_s=%d rss_growth_pct=%s fd_growth_pct=%s "
        .. "web_malloc_live_growth_pct=%.1f rss_growth_from_%ds_pct=%s "
        .. "ok=%s", MINUTES, #tasks,
        requests, kills, reloads, redis_restarts, injected, web_injected,
        other5xx, #problems, JUDGE_FROM_S, table.concat(rss_s, ","),
        table.concat(fds_s, ","), live, WARMUP_S, table.concat(all_s, ","),
        #problems == 0 and "yes" or "no")
    return #problems == 0
end)
local stopped, stop_err = pcall(env.stop, env)
sys.rmtree(plugins:match("^(.*)/plugins$"))
if not ok then
    say("FAIL: %s", tostring(err))
    say("RESULT soak minutes=%g ok=no", MINUTES)
    os.exit(1)
end
if not stopped then
    say("FAIL: %s", tostring(stop_err))
end
os.exit((err and stopped) and 0 or 1)
