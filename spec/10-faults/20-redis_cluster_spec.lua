-- R7: the whole service on a real 3-master, 3-replica Redis Cluster
-- (spec/support/redis_cluster.lua), every process with
-- REDIS_URL=redis://...?cluster=1 and the `{flt}:` prefix, so that all
-- queue keys share one slot. While tasks run on two real workers, the
-- master owning that slot is failed over by hand (CLUSTER FAILOVER on its
-- replica), then the slot is migrated to another master step by step and
-- held at each step (IMPORTING/MIGRATING with keys still on the source,
-- then with every key on the target), so the clients meet MOVED and ASK
-- for real. Real PostgreSQL, `wtt serve` (with its subscriber thread) and
-- `wtt worker` processes on real clips; the invariant checker after.

local support = require "spec.support.faults"
local rc = require "spec.support.redis_cluster"

describe("R7: the service on a Redis Cluster #redis #pg", function()
    local env

    setup(function()
        env = support.start({ cluster = true })
    end)

    teardown(function()
        if env then
            env:stop()
        end
    end)

    local jobs = {}

    local function submit(n)
        for _ = 1, n do
            local clip = support.CLIP_NAMES[#jobs % #support.CLIP_NAMES + 1]
            local id, tid = env:submit(clip)
            jobs[#jobs + 1] = { id = id, tid = tid }
        end
    end

    local function completed()
        local n = 0
        for _, j in ipairs(jobs) do
            if env:task(j.tid).status == "completed" then
                n = n + 1
            end
        end
        return n
    end

    -- Waits until more than `n` tasks are completed in Redis.
    local function more_completed_than(n, what)
        assert(support.eventually(function()
            return completed() > n
        end, 90, 0.1), what .. ": no task completed (" .. n .. " before)"
                       .. env:logs())
    end

    it("R7: a manual failover and a migration of the queue's slot while "
       .. "tasks run -> no CROSSSLOT, every task completed once",
       function()
        local c = env.cluster
        local slot = c:slot(env.prefix)
        local slow = { WTT_WORKER_TEST_WINDOW_SLEEP = "0.2",
                       WTT_HTTP_RETRIES = "8", WTT_HTTP_BACKOFF = "0.2",
                       WTT_HTTP_BACKOFF_MAX = "1" }
        local workers = { env:worker(slow), env:worker(slow) }
        submit(4)
        assert(support.eventually(function()
            for _, j in ipairs(jobs) do
                if env:task(j.tid).status == "processing" then
                    return true
                end
            end
        end, 60, 0.05), "no task ever ran" .. env:logs())

        -- 1. Manual failover of the master owning the queue's slot.
        local old = c:master_of(slot)
        local new = c:replica_of(old)
        c:failover(new)
        assert.equal(new, c:master_of(slot))
        submit(3)
        more_completed_than(completed(), "after the failover")

        -- 2. Migration of the slot to another master, held at each step
        -- until the processes have been sent there with ASK (the target
        -- counts their ASKING commands). Held only that long: while a
        -- slot migrates, a script whose keys are split between the nodes,
        -- or that creates a key on the target, is refused with TRYAGAIN,
        -- which the clients retry with backoff for about 20 s.
        local function asking(n)
            local s = rc.cmd(n, "INFO", "commandstats") or ""
            return tonumber(s:match("cmdstat_asking:calls=(%d+)")) or 0
        end
        local dst = c:other_masters(new)[1]
        local before = completed()
        local a0 = asking(dst)
        c:migrate_begin(slot, new, dst)
        -- Keys still on the source: only a command on a key that is gone
        -- is ASKed, so this hold is bounded, not awaited.
        support.eventually(function() return asking(dst) > a0 end, 2, 0.05)
        local moved = c:migrate_keys(slot, new, dst)
        assert.is_true(moved > 0)
        local a1 = asking(dst)
        assert(support.eventually(function()
            return asking(dst) > a1
        end, 30, 0.05), "no process was ASKed to the target" .. env:logs())
        c:migrate_end(slot, new, dst)
        assert.equal(dst, c:master_of(slot))
        submit(2)
        more_completed_than(before, "after the migration")

        -- Every task completed once, in Redis and in PostgreSQL.
        env:wait_rows(jobs, nil, 120, "rows")
        for _, j in ipairs(jobs) do
            assert.equal("completed", env:task(j.tid).status, j.tid)
            local res = assert(env:http("GET", "/transcribe/midi/" .. j.id
                                        .. "/"))
            assert.equal(200, res.status, res.body)
            assert.equal("MThd", res.body:sub(1, 4))
            local n = 0
            for _, w in ipairs(workers) do
                n = n + w:count("task.completed id=" .. j.tid)
            end
            assert.equal(1, n, j.tid .. " completed " .. n .. " times")
        end
        -- No cluster error reached any process's log.
        local logs = { serve = env:serve_text() }
        for _, w in ipairs(workers) do
            logs[w.id] = w:text()
        end
        for name, text in pairs(logs) do
            for _, bad in ipairs({ "CROSSSLOT", "MOVED ", "ASK ",
                                   "TRYAGAIN", "CLUSTERDOWN" }) do
                assert.is_nil(text:find(bad, 1, true),
                              name .. " logged " .. bad .. ":\n" .. text)
            end
        end
        env:check_invariants(8)
        for _, w in ipairs(workers) do
            assert.is_nil((w:wait(0)), "worker died:\n" .. w:text())
            w:signal("TERM")
            assert.same({ "exited", 0 }, { w:wait(10) })
        end
    end)
end)
