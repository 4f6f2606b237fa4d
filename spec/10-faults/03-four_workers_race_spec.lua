-- Four real `wtt worker --noop` processes racing on 1,000 tasks enqueued
-- through the queue API (docs/reliability.md Q1; the first plan's check:
-- "4 workers racing on 1,000 tasks -> each claimed and completed exactly
-- once").
-- The tasks have no PostgreSQL rows, so they live under their own key
-- prefix (web's subscriber does not record them) and are checked from the
-- queue state and their task hashes.

local support = require "spec.support.faults"
local inv = require "spec.support.invariants"
local queue = require "wtt.queue"
local sys = require "wtt.sys"

local N = 1000
local PREFIX = "{race}:"

describe("four workers racing on 1,000 tasks #redis #pg", function()
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

    it("claims and completes each task exactly once", function()
        local workers = env:noop_workers(4, PREFIX)

        local q = queue.new(env.r, { prefix = PREFIX, policy = support.fixed_policy() })
        local ids = {}
        for i = 1, N do
            local id = string.format("%08x%024x", sys.getpid(), i)
            ids[i] = id
            assert(q:enqueue({ id = id, audio_midi_id = i, payload = {
                audio_url = "/media/never-fetched.wav", options = {},
                outputs = { "midi" } } }))
        end

        local stats
        assert.truthy(support.eventually(function()
            stats = q:stats()
            return stats and stats.results == N and stats.pending == 0
                   and stats.processing == 0
        end, 60, 0.05), "queue did not drain: "
                        .. require("wtt.json").encode(stats) .. env:logs())

        local results = env.r:call("LRANGE", PREFIX .. "task:results", 0, -1)
        local seen, completed = {}, 0
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
            assert.is_true(seen[id])
            completed = completed + 1
        end
        assert.equal(N, completed)
        assert.equal(0, env.r:call("LLEN", PREFIX .. "task:failed"))
        assert.equal(0, env.r:call("ZCARD", PREFIX .. "task:processing:time"))

        inv.check({ r = env.r, prefix = PREFIX, task_ids = ids,
                    url = env.url, timeout = 5 })
        for _, w in ipairs(workers) do
            w:signal("TERM")
            assert.same({ "exited", 0 }, { w:wait(10) }, w:text())
        end
        -- Clean exits take their heartbeat keys with them.
        for _, w in ipairs(workers) do
            assert.equal(0, env.r:call("EXISTS", PREFIX .. "worker:" .. w.id))
        end
    end)
end)
