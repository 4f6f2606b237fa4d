-- The full-size enqueue flood of docs/reliability.md Q6, run by
-- bench/flood.sh: a fresh PostgreSQL, redis-server and `wtt serve` (the
-- fault specs' stack, spec/support/faults.lua; no worker, so every task
-- stays pending),
-- then FLOOD_POSTS POSTs to /transcribe/generate/ on FLOOD_CONC keep-alive
-- connections (FLOOD_PROCS processes of threads,
-- spec/support/flood_client.lua). One POST in ten repeats an earlier
-- request of its connection with the same Idempotency-Key, which must
-- answer the same task id. Every POST is counted once: 202 is ok,
-- 429/503 rejected (not retried), anything else a failure.
--
-- Figures: POSTs, answers, latency percentiles, whether PostgreSQL's
-- tasks equal the queue's entries one to one, web's RSS (VmRSS, VmHWM of
-- /proc/PID/status) before and after; last line
--   RESULT flood posts=N ok=N rejected=N pg_equals_redis=yes|no
--          rss_mb_before=X rss_mb_after=Y
-- Exit 0 when every answer was allowed, PostgreSQL equals Redis and the
-- invariant checker passes; else 1 (after the RESULT line).

local support = require "spec.support.faults"
local json = require "wtt.json"
local runtime = require "wtt.runtime"
local sys = require "wtt.sys"

local POSTS = tonumber(os.getenv("FLOOD_POSTS")) or 10000
local CONC = tonumber(os.getenv("FLOOD_CONC")) or 100
local PROCS = tonumber(os.getenv("FLOOD_PROCS")) or 4
local WEB_THREADS = os.getenv("FLOOD_WEB_THREADS") or "4"
local CLIENT = runtime.source_dir .. "/spec/support/flood_client.lua"

local function say(fmt, ...)
    io.stdout:write(fmt:format(...), "\n")
    io.stdout:flush()
end


-- VmRSS and VmHWM of a process, in MB.
local function rss(pid)
    local text = sys.read_file("/proc/" .. pid .. "/status") or ""
    local function mb(field)
        local kb = tonumber(text:match(field .. ":%s*(%d+) kB"))
        return kb and kb / 1024 or -1
    end
    return mb("VmRSS"), mb("VmHWM")
end


local function percentile(sorted, p)
    if #sorted == 0 then
        return 0
    end
    return sorted[math.max(1, math.ceil(#sorted * p))]
end


local env = support.start({ env = { WTT_THREADS = WEB_THREADS,
                                    WTT_IDEMPOTENCY_TTL_S = "600" } })
local ok, err = pcall(function()
    local per = math.floor(POSTS / CONC)
    local repeats = math.floor(per / 10)
    local distinct = per - repeats
    local res = assert(env.db:query(
        "INSERT INTO audio_midi (original_name, audio_path, duration_s) "
        .. "SELECT 'flood.wav', md5(random()::text) || '.wav', 4.0 "
        .. "FROM generate_series(1, $1::int) RETURNING id", distinct * CONC))
    local rows = {}
    for i, row in ipairs(res) do
        rows[i] = row.id
    end

    -- Lists: each connection its own rows; its first `repeats` rows are
    -- sent twice (flag r: the second must replay the first's answer).
    local n, threads_of = 0, {}
    for t = 1, CONC do
        local lines = {}
        for i = 1, distinct do
            n = n + 1
            lines[i] = rows[n] .. " flood-" .. rows[n] .. " "
                       .. (i <= repeats and "r" or "")
        end
        local base = ("%s/flood-%d"):format(env.tmp, t)
        assert(sys.write_file(base .. ".list",
                              table.concat(lines, "\n") .. "\n"))
        local p = (t - 1) % PROCS + 1
        threads_of[p] = threads_of[p] or {}
        table.insert(threads_of[p], { list = base .. ".list",
                                      out = base .. ".out" })
    end

    local pid = env.serve_pid
    local rss0, hwm0 = rss(pid)
    say("flood: web pid %d, %s threads; %d POSTs on %d connections from "
        .. "%d processes (%d rows, %d repeated with the same key)", pid,
        WEB_THREADS, per * CONC, CONC, PROCS, distinct * CONC,
        repeats * CONC)
    say("flood: web before: VmRSS %.1f MB, VmHWM %.1f MB", rss0, hwm0)

    local procs = {}
    for p, threads in ipairs(threads_of) do
        local jf = ("%s/flood-job-%d.json"):format(env.tmp, p)
        assert(sys.write_file(jf, json.encode({ url = env.url, mode = "bench",
            client = CLIENT, threads = threads })))
        local log = ("%s/flood-job-%d.log"):format(env.tmp, p)
        procs[p] = { log = log, pid = assert(sys.spawn(
            { runtime.exe, "run", CLIENT, jf },
            { stdout = log, stderr = log })) }
    end
    local t0 = sys.now()
    local clients_ok = true
    for p, proc in ipairs(procs) do
        local how, code = sys.wait(proc.pid, 600)
        if not how then
            sys.kill(proc.pid, "KILL")
            sys.wait(proc.pid, 5)
        end
        if how ~= "exited" or code ~= 0 then
            clients_ok = false
            say("flood: client process %d: %s %s\n%s", p, tostring(how),
                tostring(code), sys.read_file(proc.log) or "")
        end
    end
    local elapsed = sys.now() - t0
    local rss1, hwm1 = rss(pid)

    -- Answers.
    local posts, okn, rejected, bad, rows_ok = 0, 0, 0, 0, 0
    local lat = {}
    for _, threads in ipairs(threads_of) do
        for _, th in ipairs(threads) do
            for line in io.lines(th.out) do
                local np, nr = line:match("^posts (%d+) rejected (%d+)$")
                if np then
                    posts = posts + tonumber(np)
                    rejected = rejected + tonumber(nr)
                elseif line:match("^ok ") then
                    rows_ok = rows_ok + 1
                    okn = okn + 1 + tonumber(line:match(" (%d+)$"))
                elseif line:match("^bad ") then
                    bad = bad + 1
                    if bad <= 5 then
                        say("flood: %s", line)
                    end
                end
            end
            for ms in io.lines(th.out .. ".lat") do
                lat[#lat + 1] = tonumber(ms)
            end
        end
    end
    table.sort(lat)

    -- PostgreSQL == Redis.
    local pgc = assert(env.db:query(
        "SELECT count(*) AS n, count(DISTINCT task_id) AS d FROM audio_midi "
        .. "WHERE status = 'pending' AND task_id IS NOT NULL"))[1]
    local queued = 0
    for _, k in ipairs({ "task:queue", "task:queue:priority",
                         "task:queue:bulk", "task:processing" }) do
        queued = queued + env.r:call("LLEN", env:key(k))
    end
    local equal = pgc.n == queued and pgc.d == pgc.n and pgc.n == rows_ok
    local inv_ok, inv_err = pcall(env.check_invariants, env, 10)

    say("flood: %d POSTs in %.1f s (%.0f/s): %d answered 202 (%d rows, %d "
        .. "replays), %d rejected 429/503, %d unexpected answers", posts,
        elapsed, posts / elapsed, okn, rows_ok, okn - rows_ok, rejected, bad)
    say("flood: latency ms p50 %.1f p90 %.1f p99 %.1f max %.1f",
        percentile(lat, 0.5), percentile(lat, 0.9), percentile(lat, 0.99),
        lat[#lat] or 0)
    say("flood: PostgreSQL %d pending tasks (%d distinct), Redis %d queued",
        pgc.n, pgc.d, queued)
    say("flood: web after: VmRSS %.1f MB, VmHWM %.1f MB", rss1, hwm1)
    say("flood: invariants %s", inv_ok and "hold"
                                or ("VIOLATED: " .. tostring(inv_err)))
    say("RESULT flood posts=%d ok=%d rejected=%d pg_equals_redis=%s "
        .. "rss_mb_before=%.1f rss_mb_after=%.1f", posts, okn, rejected,
        equal and "yes" or "no", rss0, rss1)
    if not (clients_ok and bad == 0 and equal and inv_ok) then
        error("flood: failed (see above)", 0)
    end
end)
env:stop()
if not ok then
    io.stderr:write(tostring(err), "\n")
    os.exit(1)
end
