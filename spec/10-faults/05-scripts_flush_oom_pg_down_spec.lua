-- More infrastructure faults against the real stack (docs/reliability.md):
-- Q5 (SCRIPT FLUSH every 200 ms under load), R5 (Redis out of memory under
-- noeviction; a worker warned about an evicting policy), S4 (PostgreSQL
-- stopped during completions) and S2 (the subscriber's host, `wtt serve`,
-- restarted while results flow). Real PostgreSQL, redis-server, `wtt serve`
-- and `wtt worker` processes; the invariant checker runs after each one.

local support = require "spec.support.faults"
local inv = require "spec.support.invariants"
local json = require "wtt.json"
local queue = require "wtt.queue"
local sys = require "wtt.sys"

local CLIP = "guitar_nylon_single"       -- the shortest clip

describe("more infrastructure faults #redis #pg", function()
    local env

    setup(function()
        env = support.start()
    end)

    teardown(function()
        if env then
            env:stop()
        end
    end)

    after_each(function()
        if env then
            env:kill_workers()
        end
    end)

    local function check_invariants(extra)
        env:check_invariants(8, extra)
    end

    -- Waits (bounded) until every row of `jobs` is completed.
    local function wait_all_completed(jobs, timeout, what)
        env:wait_rows(jobs, nil, timeout or 60, what)
        for _, j in ipairs(jobs) do
            local row = env:row(j.id)
            assert.equal(j.tid, row.task_id)
            local res = assert(env:http("GET", "/transcribe/midi/" .. j.id
                                        .. "/"))
            assert.equal(200, res.status, res.body)
            assert.equal("MThd", res.body:sub(1, 4))
        end
    end

    local function llen(name)
        return env.r:call("LLEN", env:key(name))
    end

    -- The subscriber recorded everything: nothing left between Redis and PG.
    local function results_drained()
        assert.truthy(support.eventually(function()
            return llen("task:results") == 0
                   and llen("task:results:processing") == 0
        end, 10), "results not drained: " .. tostring(llen("task:results"))
                  .. " / " .. tostring(llen("task:results:processing")))
    end

    local function submit_n(n)
        local jobs = {}
        for _ = 1, n do
            local id, tid = env:submit(CLIP)
            jobs[#jobs + 1] = { id = id, tid = tid }
        end
        return jobs
    end

    local function completed_rows(jobs)
        local n = 0
        for _, j in ipairs(jobs) do
            if env:row(j.id).status == "completed" then
                n = n + 1
            end
        end
        return n
    end

    local patient = { WTT_HTTP_RETRIES = "12", WTT_HTTP_BACKOFF = "0.2",
                      WTT_HTTP_BACKOFF_MAX = "1" }


    it("Q5: SCRIPT FLUSH every 200 ms while 2 noop workers run 200 tasks "
       .. "-> each completed once, nothing failed", function()
        local N, PREFIX = 200, "{nos}:"
        local workers = env:noop_workers(2, PREFIX)

        local q = queue.new(env.r, { prefix = PREFIX, policy = support.fixed_policy() })
        local flushes = 0
        local function flush()
            assert.equal("OK", env.r:call("SCRIPT", "FLUSH"))
            flushes = flushes + 1
        end
        -- Enqueued in batches of 20 with a flush between them, so the
        -- workers see flushes from the first task to the last.
        local ids = {}
        for i = 1, N do
            local id = string.format("%08x%024x", sys.getpid(), 0x5000 + i)
            ids[i] = id
            assert(q:enqueue({ id = id, audio_midi_id = i, payload = {
                audio_url = "/media/never-fetched.wav", options = {},
                outputs = { "midi" } } }))
            if i % 20 == 0 then
                flush()
                sys.sleep(0.2)
            end
        end
        local stats
        local deadline = sys.now() + 40
        repeat
            flush()
            sys.sleep(0.2)
            stats = q:stats()
        until (stats and stats.results == N and stats.pending == 0
               and stats.processing == 0) or sys.now() > deadline
        assert(stats and stats.results == N and stats.pending == 0
               and stats.processing == 0,
               "queue did not drain: " .. json.encode(stats) .. env:logs())
        assert.is_true(flushes >= 10, "only " .. flushes .. " flushes")

        local results = env.r:call("LRANGE", PREFIX .. "task:results", 0, -1)
        local seen = {}
        for _, id in ipairs(results) do
            assert.is_nil(seen[id], "task " .. id .. " completed twice")
            seen[id] = true
        end
        for _, id in ipairs(ids) do
            local h = env.r:call("HMGET", PREFIX .. "task:" .. id, "status",
                                 "attempts", "claim")
            -- claimed once (a token is the claim's time in ms:
            -- docs/queue.md "Fencing across a failover")
            assert.same({ "completed", "1" }, { h[1], h[2] }, id)
            assert.truthy(tostring(h[3]):match("^%d+$"), id)
            assert.is_true(seen[id], id)
        end
        assert.equal(0, env.r:call("LLEN", PREFIX .. "task:failed"))
        assert.equal(0, env.r:call("ZCARD", PREFIX .. "task:processing:time"))
        assert.equal(0, stats.failed)
        for _, w in ipairs(workers) do
            assert.equal(0, w:count("task.failed"), w:text())
            assert.equal(0, w:count("task.lost"), w:text())
            assert.equal(0, w:count("task.error"), w:text())
        end

        inv.check({ r = env.r, prefix = PREFIX, task_ids = ids,
                    url = env.url, timeout = 5 })
        check_invariants()
        for _, w in ipairs(workers) do
            w:signal("TERM")
            assert.same({ "exited", 0 }, { w:wait(10) }, w:text())
        end
    end)


    it("R5: Redis OOM under noeviction -> generate 503, no half-written "
       .. "task; after raising maxmemory the reconciler enqueues it; an "
       .. "evicting policy is logged by a worker", function()
        if support.needs_single_redis("it sets maxmemory on the one "
                                      .. "redis-server (CONFIG SET is per "
                                      .. "node)") then
            return
        end
        local function cfg(name)
            return env.r:call("CONFIG", "GET", name)[2]
        end
        local old_max = cfg("maxmemory")
        assert.equal("noeviction", cfg("maxmemory-policy"))
        local id = env:upload(CLIP)                     -- PostgreSQL only
        local res, tid
        local ok, err = pcall(function()
            assert.equal("OK", env.r:call("CONFIG", "SET", "maxmemory", "1"))
            -- Redis refuses writes now.
            local w, werr = env.r:call("SET", env:key("oom-probe"), "x")
            assert.is_nil(w)
            assert.truthy(tostring(werr):find("OOM", 1, true), werr)

            res = assert(env:http("POST", "/transcribe/generate/", {
                headers = { ["Content-Type"] = "application/json" },
                body = json.encode({ audio_midi_id = id, options = {} }),
            }))
            assert.equal(503, res.status, res.body)
            assert.truthy(res.headers["retry-after"]
                          or res.headers["Retry-After"])
            tid = res.json and res.json.task_id
            assert.is_string(tid, res.body)
            -- The row is recorded, pending, for the reconciler ...
            local row = env:row(id)
            assert.equal("pending", row.status)
            assert.equal(tid, row.task_id)
            -- ... and nothing of the task reached Redis: no hash, no entry.
            -- The reconciler keeps failing to enqueue while OOM lasts: two
            -- more failed sweeps logged, then the absence is checked.
            local function sweeps_failed()
                local n = 0
                for _ in env:serve_text():gmatch(
                        "event=subscriber.reconcile_failed[^\n]*OOM") do
                    n = n + 1
                end
                return n
            end
            local failed0 = sweeps_failed()
            assert.truthy(support.eventually(function()
                return sweeps_failed() >= failed0 + 2
            end, 10), "no failed reconciler sweeps" .. env:logs())
            assert.equal(0, env.r:call("EXISTS", env:key("task:" .. tid)))
            for _, lane in ipairs({ "task:queue", "task:queue:priority",
                                    "task:processing", "task:failed" }) do
                local ids = env.r:call("LRANGE", env:key(lane), 0, -1)
                for _, x in ipairs(ids) do
                    assert.not_equal(tid, x, lane)
                end
            end
            -- A repeat is refused as a conflict, not a 500.
            local again = assert(env:http("POST", "/transcribe/generate/", {
                headers = { ["Content-Type"] = "application/json" },
                body = json.encode({ audio_midi_id = id, options = {} }),
            }))
            assert.equal(409, again.status, again.body)
        end)
        env.r:call("CONFIG", "SET", "maxmemory", old_max)
        assert(ok, tostring(err) .. env:logs())

        -- The reconciler enqueues the pending row; a real worker runs it.
        env:wait_task(tid, function(h)
            return h.status ~= nil
        end, 10, "enqueue by the reconciler")
        env:worker()
        env:wait_row(id, "completed", 30)
        results_drained()
        check_invariants()

        -- A worker on a Redis that may evict keys warns at start.
        local w
        ok, err = pcall(function()
            assert.equal("OK", env.r:call("CONFIG", "SET", "maxmemory-policy",
                                          "allkeys-lru"))
            w = env:worker(nil, { "--noop" })
            assert.equal(1, w:await("redis.eviction_policy", 1, 10),
                         w:text())
        end)
        if w then
            w:kill()
        end
        env.r:call("CONFIG", "SET", "maxmemory-policy", "noeviction")
        assert(ok, err)
        assert.equal("noeviction", cfg("maxmemory-policy"))
        assert.equal(old_max, cfg("maxmemory"))
    end)


    it("S4: PostgreSQL stopped for 3 s during completions -> DB routes 503, "
       .. "/healthz 200, every row completed once", function()
        local jobs = submit_n(10)
        local workers = { env:worker(patient), env:worker(patient) }
        -- Mid-run: some completed, some still to go.
        assert.truthy(support.eventually(function()
            return completed_rows(jobs) >= 2
        end, 40, 0.1), "no completions" .. env:logs())
        assert.is_true(completed_rows(jobs) < #jobs,
                       "the run was over before PostgreSQL stopped")

        env.pgsrv:kill()                        -- pg_ctl stop -m immediate
        local t0 = sys.now()
        local statuses, health = {}, {}
        local ok, err = pcall(function()
            while sys.now() - t0 < 3 do
                local r1 = env:http("GET", "/transcribe/status/" .. jobs[1].id
                                    .. "/", { timeout = 5 })
                statuses[#statuses + 1] = r1 and r1.status or "none"
                local r2 = env:http("GET", "/healthz", { timeout = 5 })
                health[#health + 1] = r2 and r2.status or "none"
                sys.sleep(0.25)
            end
        end)
        env.pgsrv:start()
        assert(ok, err)
        for i, s in ipairs(statuses) do
            assert.equal(503, s, "status route while PG down, #" .. i .. ": "
                         .. json.encode(statuses))
        end
        for _, s in ipairs(health) do
            assert.equal(200, s, json.encode(health))
        end
        assert.is_true(#statuses >= 3)

        wait_all_completed(jobs, 60, "rows after PostgreSQL came back")
        for _, j in ipairs(jobs) do
            local h = env:task(j.tid)
            assert.equal("completed", h.status, json.encode(h))
        end
        results_drained()
        local res = assert(env:http("GET", "/readyz"))
        assert.equal(200, res.status, res.body)
        check_invariants()
        for _, w in ipairs(workers) do
            assert.is_nil((w:wait(0)), "worker died:\n" .. w:text())
            assert.equal(0, w:count("task.failed"), w:text())
        end
    end)


    it("S2: `wtt serve` (the subscriber) restarted 5 times while results "
       .. "flow -> PostgreSQL converges", function()
        local jobs = submit_n(10)
        local workers = { env:worker(patient), env:worker(patient) }
        assert.truthy(support.eventually(function()
            return completed_rows(jobs) >= 1
        end, 40, 0.1), "no completions" .. env:logs())
        local before = completed_rows(jobs)
        assert.is_true(before < #jobs,
                       "the run was over before the first restart")
        for i = 1, 5 do
            sys.sleep(0.4)
            env:serve_kill(i % 2 == 0 and "TERM" or "KILL")
            sys.sleep(0.2)
            env:serve_start()
        end
        print(("\nS2: %d/%d rows completed before the restarts, %d after")
              :format(before, #jobs, completed_rows(jobs)))
        wait_all_completed(jobs, 60, "rows after the restarts")
        results_drained()
        check_invariants()
        for _, w in ipairs(workers) do
            assert.is_nil((w:wait(0)), "worker died:\n" .. w:text())
            assert.equal(0, w:count("task.failed"), w:text())
        end
    end)
end)
