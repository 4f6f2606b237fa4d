-- Redis failover to a replica under a running stack (docs/reliability.md
-- R4). A real primary and a real replica (`--replicaof`) on loopback; the
-- clients (`wtt serve`, `wtt worker`s) reach Redis through a forwarder
-- (spec/support/tcpgate.py) that the spec repoints, as a managed Redis
-- moves its address or an operator repoints clients (docs/operations.md
-- "Failing over to a replica"). The replication link goes through a second
-- forwarder, so the spec can make the replica lag on purpose. Real
-- PostgreSQL, `wtt serve` and `wtt worker` processes on real clips; the
-- invariant checker after each scenario.

local support = require "spec.support.faults"
local rh = require "spec.support.redis"
local gate = require "spec.support.tcpgate"
local json = require "wtt.json"
local sys = require "wtt.sys"

describe("Redis failover to a replica (R4) #redis #pg", function()
    if support.needs_single_redis("it fails one redis-server over to its "
                                  .. "replica behind a TCP gate (a "
                                  .. "cluster's failover is "
                                  .. "20-redis_cluster_spec.lua)") then
        return
    end

    local env, replica, link, front

    before_each(function()
        env = support.start()
        link = gate.start("127.0.0.1", env.rsrv.port)
        replica = rh.start({ appendonly = true, args = {
            "--replicaof", "127.0.0.1", tostring(link.port),
            "--maxmemory-policy", "noeviction" } })
        front = gate.start("127.0.0.1", env.rsrv.port)
        -- web through the front address
        env:serve_kill("TERM")
        env.serve_env.REDIS_URL = front.url
        env:serve_start()
        assert.truthy(support.eventually(function()
            return env.r:call("WAIT", 1, 200) == 1
        end, 20), "the replica never synced:\n"
           .. (sys.read_file(replica.log) or ""))
    end)

    after_each(function()
        local ok, err = pcall(function()
            if env then env:stop() end
        end)
        if replica then replica:stop() end
        if link then link:stop() end
        if front then front:stop() end
        env, replica, link, front = nil, nil, nil, nil
        assert(ok, err)
    end)

    local function worker(extra)
        local e = { REDIS_URL = front.url }
        for k, v in pairs(extra or {}) do
            e[k] = v
        end
        return env:worker(e)
    end

    -- The replica's replication offset has reached the primary's.
    local function caught_up()
        local function offset(info, key)
            return tonumber(info:match(key .. ":(%d+)"))
        end
        local p = offset(env.r:call("INFO", "replication"),
                         "master_repl_offset")
        local rr = assert(replica:client())
        local s = offset(rr:call("INFO", "replication"),
                         "slave_repl_offset")
        rr:close()
        return p and s and s >= p
    end

    -- The switch, in the order an operator or a sentinel makes it: the
    -- primary is gone for its clients (a silent cut, not a reset), the
    -- replica is promoted, the front address moves to it, the old primary
    -- is stopped, and traffic flows again. The spec's own client follows.
    local function failover()
        front:cut()
        local rr = assert(replica:client())
        assert.equal("OK", rr:call("REPLICAOF", "NO", "ONE"))
        front:target("127.0.0.1", replica.port)
        env.rsrv:kill("TERM")
        front:heal()
        env.r:close()
        env.r = rr
    end

    local function completions(workers, tid)
        local n = 0
        for _, w in ipairs(workers) do
            n = n + w:count("task.completed id=" .. tid)
        end
        return n
    end

    local function wait_rows(jobs, timeout)
        env:wait_rows(jobs, nil, timeout or 60, "rows")
    end


    it("R4: the replica promoted while tasks run, the clients repointed: "
       .. "every task completes once", function()
        local slow = { WTT_WORKER_TEST_WINDOW_SLEEP = "0.3",
                       WTT_HTTP_RETRIES = "8", WTT_HTTP_BACKOFF = "0.2",
                       WTT_HTTP_BACKOFF_MAX = "1" }
        local workers = { worker(slow), worker(slow) }
        local jobs = {}
        for i = 1, 6 do
            local id, tid = env:submit(support.CLIP_NAMES[i])
            jobs[#jobs + 1] = { id = id, tid = tid }
        end
        assert.truthy(support.eventually(function()
            local n = 0
            for _, j in ipairs(jobs) do
                local h = env:task(j.tid)
                local done = h.progress and tonumber(h.progress:match("^(%d+)/"))
                if h.status == "processing" and (done or 0) >= 1 then
                    n = n + 1
                end
            end
            return n >= 2
        end, 30), "two tasks never ran at once" .. env:logs())

        -- Nothing was lost in replication: a clean switch.
        front:cut()
        assert.truthy(support.eventually(caught_up, 10),
                      "the replica did not catch up")
        failover()

        wait_rows(jobs, 60)
        for _, j in ipairs(jobs) do
            assert.equal(1, completions(workers, j.tid),
                         j.tid .. " completed other than once" .. env:logs())
            local res = assert(env:http("GET", "/transcribe/midi/" .. j.id
                                        .. "/"))
            assert.equal(200, res.status, res.body)
            assert.equal("MThd", res.body:sub(1, 4))
        end
        env:check_invariants(10)
        for _, w in ipairs(workers) do
            assert.is_nil((w:wait(0)), "worker died:\n" .. w:text())
            w:signal("TERM")
            assert.same({ "exited", 0 }, { w:wait(10) })
        end
    end)


    it("R4: a replica that LAGGED is promoted: a claim token issued before "
       .. "the switch is refused after it (409, stale), the task completes "
       .. "once", function()
        local id, tid = env:submit("guitar_nylon_single")
        -- The replica has the pending task, then stops hearing the primary.
        -- (Not WAIT from env.r: it waits only for that connection's own
        -- writes, and web wrote the task.)
        assert.truthy(support.eventually(caught_up, 10),
                      "the replica did not catch up")
        link:cut()
        local a = worker({ WTT_WORKER_TEST_WINDOW_SLEEP = "1" })
        local ha = env:wait_task(tid, support.running_on(a, 1), 30,
                                 "A's first progress")
        local stale = ha.claim
        -- A task the replica never receives: generated after the cut.
        local id2, tid2 = env:submit("guitar_fast_run")
        a:signal("STOP")                      -- A holds its claim, stalled

        failover()
        -- The promoted replica never saw A's claim: its counter is behind.
        local h = env:task(tid)
        assert.equal("pending", h.status, json.encode(h))
        assert.is_true((tonumber(h.claim) or 0) < tonumber(stale),
                       "the replica did not lag: " .. json.encode(h))
        assert.same({}, env:task(tid2))       -- the reconciler's to repair

        local b = worker({ WTT_WORKER_TEST_WINDOW_SLEEP = "0.3" })
        local hb = env:wait_task(tid, support.running_on(b, 1), 30,
                                 "B's first progress")
        assert.is_true(tonumber(hb.claim) > tonumber(stale),
            ("B's token %s is not above A's %s"):format(hb.claim, stale))

        -- A's pre-failover token: web's result route and the queue
        -- (heartbeat, complete) refuse it
        env:assert_fenced(tid, stale)
        assert.equal("processing", env:task(tid).status)
        assert.equal(b.id, env:task(tid).worker)

        -- A wakes up: fenced, it drops the task; B completes it, once.
        a:signal("CONT")
        local row = env:wait_row(id, "completed", 40)
        assert.equal(tid, row.task_id)
        assert.equal(1, b:await("task.completed id=" .. tid), b:text())
        assert.equal(0, a:count("task.completed id=" .. tid), a:text())
        assert.equal(hb.claim, env:task(tid).claim)
        -- The task the switch lost entirely: re-enqueued from PostgreSQL.
        env:wait_row(id2, "completed", 40)
        local function done2()
            return a:count("task.completed id=" .. tid2)
                   + b:count("task.completed id=" .. tid2)
        end
        support.eventually(function() return done2() >= 1 end, 10)
        assert.equal(1, done2(), a:text() .. b:text())
        assert.truthy(env:serve_text():find("reconciler.reenqueued", 1,
                                            true), env:serve_text())
        env:check_invariants(10)
        for _, w in ipairs({ a, b }) do
            assert.is_nil((w:wait(0)), "worker died:\n" .. w:text())
            w:signal("TERM")
            assert.same({ "exited", 0 }, { w:wait(15) })
        end
    end)

    it("R4: a completion the old primary acknowledged and the lagging "
       .. "replica missed: the task runs again, its row stays completed "
       .. "with the same result", function()
        local w = worker({ WTT_WORKER_TEST_WINDOW_SLEEP = "0.3" })
        local id, tid = env:submit("guitar_nylon_single")
        env:wait_task(tid, support.running_on(w, 1), 30, "the first progress")
        assert.truthy(support.eventually(caught_up, 10),
                      "the replica did not catch up")
        link:cut()                      -- the replica holds the claim only
        local first = env:wait_row(id, "completed", 30)
        assert.equal(1, w:await("task.completed id=" .. tid), w:text())
        failover()
        local h = env:task(tid)
        assert.equal("processing", h.status, json.encode(h))

        -- Watch the row while the task runs again.
        local seen = {}
        local ok = support.eventually(function()
            local row = env:row(id)
            seen[row.status] = (seen[row.status] or 0) + 1
            return w:count("task.completed id=" .. tid) >= 2
                   and env:task(tid).status == "completed"
                   and row.status == "completed"
        end, 40, 0.02)
        assert(ok, "no second completion: " .. json.encode(seen)
               .. env:logs())
        -- The user never sees the completed task go back.
        assert.same({ "completed" }, (function()
            local k = {}
            for st in pairs(seen) do k[#k + 1] = st end
            return k
        end)())
        local row = env:row(id)
        assert.equal(first.midi_path, row.midi_path)
        env:check_invariants(10)
        w:signal("TERM")
        assert.same({ "exited", 0 }, { w:wait(15) })
    end)
end)
