-- Redis losing data or dropping the subscriber, against the real stack
-- (docs/reliability.md R2, S3). Here `wtt serve` runs without its subscriber
-- thread and a standalone `wtt subscriber` process records results (and
-- runs the reconciler), so the subscriber alone can be stopped (SIGSTOP)
-- while web and workers go on. Real PostgreSQL, redis-server, `wtt serve`,
-- `wtt subscriber` and `wtt worker` processes on real clips; the invariant
-- checker after each scenario.

local support = require "spec.support.faults"
local json = require "wtt.json"
local runtime = require "wtt.runtime"
local sys = require "wtt.sys"

describe("Redis data loss and a dropped subscriber #redis #pg", function()
    local env, sub

    local function start_subscriber()
        local log = env.tmp .. "/subscriber-" .. sys.now() .. ".log"
        local e = {}
        for k, v in pairs(env.serve_env) do
            e[k] = v
        end
        local pid = assert(sys.spawn({ runtime.exe, "subscriber" },
                                     { env = e, stdout = log, stderr = log }))
        sub = { pid = pid, log = log }
        function sub.text()
            return sys.read_file(log) or ""
        end
        assert.truthy(support.eventually(function()
            return sub.text():find("subscriber.ready", 1, true)
        end, 15), "subscriber not ready:\n" .. sub.text())
    end

    local function stop_subscriber()
        if sub and sub.pid then
            sys.kill(sub.pid, "CONT")
            sys.kill(sub.pid, "KILL")
            sys.wait(sub.pid, 5)
            sub.pid = nil
        end
    end

    setup(function()
        env = support.start({ env = { WTT_SUBSCRIBER = "off" } })
        start_subscriber()
    end)

    teardown(function()
        stop_subscriber()
        if env then
            env:stop()
        end
    end)

    after_each(function()
        if env then
            env:kill_workers()
        end
    end)

    local function progress(h)
        local d, t = (h.progress or ""):match("^(%d+)/(%d+)$")
        return tonumber(d), tonumber(t)
    end

    local function wait_rows(jobs, status, timeout, what)
        env:wait_rows(jobs, status, timeout or 60, what,
                      "\n--- subscriber ---\n" .. sub.text())
    end

    local function llen(name)
        return env.r:call("LLEN", env:key(name))
    end


    it("R2: Redis restarted EMPTY mid-run -> the reconciler rebuilds the "
       .. "queue from PostgreSQL, fencing tokens never repeat, every task "
       .. "completes once", function()
        if support.needs_single_redis("it kills the one redis-server and "
                                      .. "restarts it empty") then
            return
        end
        local slow = { WTT_WORKER_TEST_WINDOW_SLEEP = "0.3",
                       WTT_HTTP_RETRIES = "8", WTT_HTTP_BACKOFF = "0.2",
                       WTT_HTTP_BACKOFF_MAX = "1" }
        local workers = { env:worker(slow), env:worker(slow) }
        local jobs = {}
        for i = 1, 6 do
            local id, tid = env:submit(support.CLIP_NAMES[i])
            jobs[#jobs + 1] = { id = id, tid = tid }
        end
        -- Both workers inside a task, the rest pending.
        assert.truthy(support.eventually(function()
            local n = 0
            for _, j in ipairs(jobs) do
                local h = env:task(j.tid)
                if h.status == "processing" and (progress(h) or 0) >= 1 then
                    n = n + 1
                end
            end
            return n >= 2
        end, 30), "two tasks never ran at once" .. env:logs())
        local before = {}
        for _, j in ipairs(jobs) do
            before[j.tid] = tonumber(env:task(j.tid).claim) or 0
        end

        -- SIGKILL, then the data goes: the restart finds nothing to load.
        env.rsrv:kill()
        sys.rmtree(env.rsrv.dir .. "/appendonlydir")
        os.remove(env.rsrv.dir .. "/dump.rdb")
        env.rsrv:restart()
        for _, j in ipairs(jobs) do
            local h = env:task(j.tid)
            -- at most re-enqueued already, never with the old state
            assert.is_true(h.status == nil or h.status == "pending"
                           or h.status == "processing", json.encode(h))
        end

        wait_rows(jobs, "completed", 60, "rows after the empty restart")
        for _, j in ipairs(jobs) do
            -- A hash now means the reconciler rebuilt the task: its claims
            -- must be newer than any handed out before the loss, or a
            -- worker still holding an old claim would pass the fencing.
            local h = env:task(j.tid)
            if h.status then
                assert.equal("completed", h.status, json.encode(h))
                assert.is_true(tonumber(h.claim) > before[j.tid],
                    ("task %s: claim %s after the loss, %d before")
                    :format(j.tid, h.claim, before[j.tid]))
            end
            local res = assert(env:http("GET", "/transcribe/midi/" .. j.id
                                        .. "/"))
            assert.equal(200, res.status, res.body)
            assert.equal("MThd", res.body:sub(1, 4))
        end
        -- Every task completed once across the workers' logs.
        for _, j in ipairs(jobs) do
            local n = 0
            for _, w in ipairs(workers) do
                n = n + w:count("task.completed id=" .. j.tid)
            end
            assert.is_true(n <= 1, j.tid .. " completed " .. n .. " times")
        end
        assert.is_true(sub.text():find("reconciler.reenqueued", 1, true)
                       ~= nil, "the reconciler re-enqueued nothing")
        env:check_invariants(8)
        for _, w in ipairs(workers) do
            assert.is_nil((w:wait(0)), "worker died:\n" .. w:text())
            w:signal("TERM")
            assert.same({ "exited", 0 }, { w:wait(10) })
        end
    end)


    it("S3: a stalled subscriber dropped by Redis (pubsub output buffer "
       .. "limit) reconnects, re-subscribes and drains the backlog",
       function()
        if support.needs_single_redis("it sets the pubsub buffer limit and "
                                      .. "finds the subscriber on the one "
                                      .. "redis-server (CONFIG and CLIENT "
                                      .. "LIST are per node)") then
            return
        end
        -- A tiny limit: hard 64 KB, soft 32 KB for 1 s.
        local old = env.r:call("CONFIG", "GET", "client-output-buffer-limit")[2]
        assert.equal("OK", env.r:call("CONFIG", "SET",
            "client-output-buffer-limit", "pubsub 64kb 32kb 1"))
        local ok, err = pcall(function()
            -- The subscriber's connection: the one with a pattern.
            local function sub_clients()
                local ids = {}
                local list = env.r:call("CLIENT", "LIST", "TYPE", "pubsub")
                for line in list:gmatch("[^\n]+") do
                    if line:find(" psub=1 ", 1, true) then
                        ids[#ids + 1] = line:match("^id=(%d+)")
                    end
                end
                return ids
            end
            local ids_before = sub_clients()
            assert.equal(1, #ids_before, table.concat(ids_before, ","))

            local jobs = {}
            for i = 1, 4 do
                local id, tid = env:submit(support.CLIP_NAMES[i])
                jobs[#jobs + 1] = { id = id, tid = tid }
            end
            sys.kill(sub.pid, "STOP")
            local w = env:worker()
            -- The tasks complete in Redis; PostgreSQL does not hear of it.
            for _, j in ipairs(jobs) do
                env:wait_task(j.tid, function(h)
                    return h.status == "completed"
                end, 40, "completion with the subscriber stopped")
            end
            assert.equal(#jobs, llen("task:results"))
            for _, j in ipairs(jobs) do
                assert.are_not.equal("completed", env:row(j.id).status)
            end

            -- A flood of progress events for the stopped subscriber: 8 MB
            -- against a 64 KB limit.
            local fake = string.rep("f", 32)
            local payload = json.encode({ id = fake, status = "processing",
                progress = { done = 1, total = 2 },
                pad = string.rep("x", 4000) })
            for _ = 1, 2000 do
                env.r:call("PUBLISH", env:key("task:progress:" .. fake),
                           payload)
            end
            assert.truthy(support.eventually(function()
                return #sub_clients() == 0
            end, 10), "Redis kept the stalled subscriber")

            sys.kill(sub.pid, "CONT")
            wait_rows(jobs, "completed", 30, "rows after SIGCONT")
            assert.truthy(support.eventually(function()
                local now = sub_clients()
                return #now == 1 and now[1] ~= ids_before[1]
            end, 10), "the subscriber did not subscribe again")
            assert.equal(0, llen("task:results"))
            assert.equal(0, llen("task:results:processing"))
            assert.is_nil((sys.wait(sub.pid, 0)), "subscriber died:\n"
                          .. sub.text())
            env:check_invariants(8)
            w:signal("TERM")
            assert.same({ "exited", 0 }, { w:wait(10) })
        end)
        sys.kill(sub.pid, "CONT")
        env.r:call("CONFIG", "SET", "client-output-buffer-limit", old)
        assert(ok, err)
    end)
end)
