-- Claim tokens across a Redis failover (docs/reliability.md R4). Redis
-- replicates asynchronously, so a promoted replica may not have seen the
-- last claims of its primary: its claim counters are behind. Here the
-- replica's view is the task's keys as DUMPed before the claim and
-- RESTOREd after it (what a replica that lagged by exactly that claim
-- holds); spec/10-faults/18-redis_failover_spec.lua does it with a real
-- replica. A token handed out after the switch must be above every token
-- handed out before it, or the stale holder would pass the fence.

local rh = require "spec.support.redis"
local qh = require "spec.support.queue"
local queue = require "wtt.queue"

local id = qh.id


describe("claim tokens across a failover to a lagging replica #redis",
         function()
    local srv, r, q, P
    setup(function()
        srv = rh.start()
        r = assert(srv:client())
    end)
    teardown(function()
        if r then r:close() end
        if srv then srv:stop() end
    end)
    before_each(function()
        assert(r:call("FLUSHALL"))
        P = "{wtt}:"
        q = queue.new(r, { prefix = P, policy = qh.policy() })
    end)

    local KEYS = { "task:queue", "task:processing", "task:processing:time" }

    -- The keys of task `tid` and the lanes, as DUMP strings (false: none).
    local function snapshot(tid)
        local s = {}
        for _, k in ipairs(KEYS) do
            s[P .. k] = r:call("DUMP", P .. k) or false
        end
        s[P .. "task:" .. tid] = r:call("DUMP", P .. "task:" .. tid) or false
        return s
    end

    local function restore(s)
        for k, v in pairs(s) do
            r:call("DEL", k)
            if v then
                assert.equal("OK", r:call("RESTORE", k, 0, v))
            end
        end
    end

    -- Waits until Redis' clock (ms) is past `ms`: the failover takes time.
    local function past(ms)
        repeat
            local t = r:call("TIME")
            local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2])
                                                          / 1000)
        until now > ms
    end

    it("a claim on the promoted replica never repeats a token handed out "
       .. "before the switch", function()
        assert.is_true(q:enqueue({ id = id(1), audio_midi_id = 1,
                                   payload = {} }))
        local replica = snapshot(id(1))          -- lags: misses the claim
        local stale = assert(q:claim("w-old"))
        assert.is_true(q:heartbeat(stale.id, stale.claim))

        restore(replica)                         -- the switch
        past(tonumber(stale.claim))
        q = queue.new(r, { prefix = P, policy = qh.policy() })
        local fresh = assert(q:claim("w-new"))
        assert.equal(stale.id, fresh.id)
        assert.is_true(tonumber(fresh.claim) > tonumber(stale.claim),
            ("token %s after the switch, %s before"):format(fresh.claim,
                                                            stale.claim))
        for _, call in ipairs({
            function() return q:heartbeat(stale.id, stale.claim) end,
            function() return q:progress(stale.id, stale.claim, 1, 2) end,
            function() return q:complete(stale.id, stale.claim, {}) end,
            function() return q:fail(stale.id, stale.claim, "x", true) end,
            function() return q:release(stale.id, stale.claim) end,
        }) do
            local ok, err = call()
            assert.is_nil(ok)
            assert.equal("stale", err)
        end
        assert.is_true(q:complete(fresh.id, fresh.claim, { by = "w-new" }))
    end)

    it("also when the primary went through a reap and a second claim the "
       .. "replica never saw", function()
        q = queue.new(r, { prefix = P,
                           policy = qh.policy({ timeout_ms = 1 }) })
        assert.is_true(q:enqueue({ id = id(2), audio_midi_id = 2,
                                   payload = {} }))
        local first = assert(q:claim("w-a"))
        local replica = snapshot(id(2))          -- saw the first claim only
        past(tonumber(first.claim) + 5)
        local n = q:reap()
        assert.equal(1, n)
        local second = assert(q:claim("w-b"))
        assert.is_true(tonumber(second.claim) > tonumber(first.claim))

        restore(replica)
        past(tonumber(second.claim))
        local n2 = q:reap()                      -- the replica's view: w-a
        assert.equal(1, n2)                      -- timed out
        local third = assert(q:claim("w-c"))
        assert.is_true(tonumber(third.claim) > tonumber(second.claim),
            ("token %s after the switch, %s before"):format(third.claim,
                                                            second.claim))
        local ok, err = q:complete(second.id, second.claim, {})
        assert.is_nil(ok)
        assert.equal("stale", err)
        assert.is_true(q:complete(third.id, third.claim, {}))
    end)
end)
