local rh = require "spec.support.redis"
local qh = require "spec.support.queue"
local queue = require "wtt.queue"
local sys = require "wtt.sys"

local id = qh.id


-- A one-node Redis Cluster owning every slot: it enforces the cluster's
-- rules (CROSSSLOT for keys of one call in different slots, also for keys
-- a script builds) while running on one process.
describe("wtt.queue on Redis Cluster with a {wtt}: prefix #redis", function()
    local srv, r
    setup(function()
        -- The cluster bus port defaults to port + 10000: give it its own.
        srv = rh.start({ args = { "--cluster-enabled", "yes",
                                  "--cluster-port",
                                  tostring(assert(sys.free_port())) } })
        r = assert(srv:client())
        assert(r:call("CLUSTER", "ADDSLOTSRANGE", 0, 16383))
        for _ = 1, 100 do
            local info = r:call("CLUSTER", "INFO")
            if info and info:find("cluster_state:ok", 1, true) then
                break
            end
            sys.sleep(0.05)
        end
    end)
    teardown(function()
        if r then r:close() end
        if srv then srv:stop() end
    end)

    it("puts every queue key in one slot", function()
        local k = queue.keys("{wtt}:")
        local slot = r:call("CLUSTER", "KEYSLOT", "{wtt}:")
        for name, key in pairs(k) do
            assert.equal(slot, r:call("CLUSTER", "KEYSLOT", key), name)
        end
        assert.equal(slot, r:call("CLUSTER", "KEYSLOT",
                                  k.task_prefix .. id(1)))
        assert.equal(slot, r:call("CLUSTER", "KEYSLOT",
                                  k.worker_prefix .. "w1"))
    end)

    it("runs every script without CROSSSLOT", function()
        local q = queue.new(r, { prefix = "{wtt}:",
                                 policy = qh.policy({ timeout_ms = 50 }) })
        for i = 1, 4 do
            assert.is_true(q:enqueue({ id = id(i), payload = {} }))
        end
        local a = assert(q:claim("w"))
        assert.is_true(q:heartbeat(a.id, a.claim))
        assert.is_true(q:progress(a.id, a.claim, 1, 2))
        assert.is_true(q:complete(a.id, a.claim, {}))
        local b = assert(q:claim("w"))
        assert.equal("dead", q:fail(b.id, b.claim, "x", false))
        local c = assert(q:claim("w"))
        assert.is_true(q:release(c.id, c.claim))
        assert(q:claim("w"))
        sys.sleep(0.08)
        assert.equal(1, (q:reap()))
        assert.is_true(q:requeue_dead(b.id))
        assert.equal(0, q:purge_dead())
        assert(q:worker_beat("w", {}, 30))
        assert.equal(1, #q:workers())
        local s = assert(q:stats())
        assert.equal(3, s.pending)
        assert.equal(0, s.processing)
        assert.equal(3, s.results)         -- completed, dead, requeued
        assert.equal(id(1), q:results_take())
        assert.is_true(q:results_ack(id(1)))
        assert.equal(0, q:results_recover())
    end)

    it("recovers an orphan claim (Q3: no deadline) without CROSSSLOT",
       function()
        assert(r:call("FLUSHALL"))
        local q = queue.new(r, { prefix = "{wtt}:",
                                 policy = qh.policy({ timeout_ms = 30 }) })
        assert.is_true(q:enqueue({ id = id(9), payload = {} }))
        -- an older version's move without the claim record
        assert.equal(id(9), r:call("LMOVE", "{wtt}:task:queue",
                                   "{wtt}:task:processing", "LEFT", "LEFT"))
        assert.same({ 0, 0, 1 }, { q:reap() })       -- given a deadline
        assert.same({ 0, 0, 0 }, { q:reap() })       -- once
        sys.sleep(0.05)
        assert.same({ 1, 0, 0 }, { q:reap() })
        assert.same({ id(9) }, r:call("LRANGE", "{wtt}:task:queue", 0, -1))
        assert.equal(0, r:call("LLEN", "{wtt}:task:processing"))
    end)

    it("fails with CROSSSLOT without a hash tag (negative twin)", function()
        local q = queue.new(r, { prefix = "", policy = qh.policy() })
        local ok, err = q:enqueue({ id = id(1), payload = {} })
        assert.is_nil(ok)
        assert.matches("CROSSSLOT", err)
    end)
end)
