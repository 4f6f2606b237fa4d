-- Q2 (docs/reliability.md): a reaper backlog of 10,000 expired claims at once
-- is worked off in many short script calls, never one long one. A real
-- redis-server; the claims are made through the queue API with a 1 ms
-- visibility timeout. The bound is asserted by count (ids per call, and
-- that the batch shrinks as the processing list grows), not by time: the
-- slowest call is printed for the record only.

local spec_redis = require "spec.support.spec_redis"
local inv = require "spec.support.invariants"
local support = require "spec.support.faults"
local queue = require "wtt.queue"
local sys = require "wtt.sys"

local N = 10000
local PREFIX = "{q2}:"

describe("Q2: reaper backlog #redis", function()
    local srv, r

    setup(function()
        -- One redis-server, or a cluster under WTT_SPEC_REDIS=cluster.
        srv = spec_redis.start({ args = { "--maxmemory-policy",
                                          "noeviction" } })
        r = assert(srv:client())
    end)

    teardown(function()
        if r then r:close() end
        if srv then srv:stop() end
    end)

    it("10,000 expired claims are requeued once each, in bounded batches",
       function()
        local policy = support.fixed_policy()
        policy.timeout_ms = function() return 1 end
        local q = queue.new(r, { prefix = PREFIX, policy = policy })
        local ids = {}
        for i = 1, N do
            ids[i] = string.format("%032x", 0x2000 + i)
            assert(q:enqueue({ id = ids[i], audio_midi_id = i, payload = {
                audio_url = "/media/x.wav", options = {} } }))
        end
        local claims = {}
        for _ = 1, N do
            local t = assert(q:claim("q2-worker"))
            claims[t.id] = t.claim
        end
        assert.equal(N, r:call("LLEN", PREFIX .. "task:processing"))
        sys.sleep(0.01)                    -- every deadline is past now

        local calls, requeued, dead, slowest = 0, 0, 0, 0
        local max_batch = queue.REAP_BATCH
        repeat
            local len = r:call("LLEN", PREFIX .. "task:processing")
            -- the script's bound for a list this long
            local bound = max_batch
            if len * max_batch > queue.REAP_SCAN then
                bound = math.max(10, math.floor(queue.REAP_SCAN / len))
            end
            local t0 = sys.now()
            local n, d, more = q:reap_batch()
            slowest = math.max(slowest, sys.now() - t0)
            assert(n, d)
            calls = calls + 1
            assert.is_true(n + d <= bound, ("call %d handled %d ids, "
                .. "bound %d for %d claims"):format(calls, n + d, bound, len))
            requeued, dead = requeued + n, dead + d
            assert.is_true(calls <= N, "reap does not end")
        until not more
        print(("\nQ2: %d expired claims reaped in %d calls, slowest call "
               .. "%.1f ms (round trip, for the record)")
              :format(requeued, calls, slowest * 1000))
        assert.equal(N, requeued)
        assert.equal(0, dead)
        -- 10,000 claims do not fit in a few calls: the list-length bound
        -- made the first calls smaller than REAP_BATCH.
        assert.is_true(calls > N / max_batch, calls .. " calls")
        assert.same({ 0, 0, 0 }, { q:reap() })          -- nothing left

        local stats = assert(q:stats())
        assert.equal(N, stats.pending)
        assert.equal(0, stats.processing)
        assert.equal(0, r:call("ZCARD", PREFIX .. "task:processing:time"))
        for i = 1, N, 997 do
            local h = r:call("HMGET", PREFIX .. "task:" .. ids[i], "status",
                             "claim", "error")
            -- the claim, then the reap's INCR
            assert.same({ "pending", tostring(tonumber(claims[ids[i]]) + 1),
                          "timed out" }, h)
        end
        inv.check({ r = r, prefix = PREFIX, task_ids = ids, timeout = 1 })
    end)
end)
