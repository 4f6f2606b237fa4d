-- A task that comes back to the queue (retry, timeout, release, a requeued
-- dead letter) goes back to the lane it was enqueued in: the `lane` field
-- of its hash, written by enqueue-5. Before, everything came back to the
-- default lane, so a flooding client's bulk task jumped ahead of the other
-- clients' tasks after its first failure (docs/plugins.md, fairness).
-- A real redis-server, under a {wtt}: prefix; invariants after each case.

local rh = require "spec.support.redis"
local inv = require "spec.support.invariants"
local qh = require "spec.support.queue"
local queue = require "wtt.queue"
local sys = require "wtt.sys"

local P = "{lanes}:"

describe("requeued tasks keep their lane #redis", function()
    local srv, r, q

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
        local p = qh.policy({ timeout_ms = 60, max_attempts = 9 })
        p.lane = function(payload)
            return payload.prio and "priority" or "default"
        end
        -- one waiting task per client, then the bulk lane
        p.fair_share = function(payload)
            return payload.client, 1
        end
        q = queue.new(r, { prefix = P, policy = p })
    end)

    local function where(id)
        local found = {}
        for _, lane in ipairs({ "task:queue:priority", "task:queue",
                                "task:queue:bulk", "task:processing",
                                "task:failed" }) do
            for _, v in ipairs(r:call("LRANGE", P .. lane, 0, -1)) do
                if v == id then
                    found[#found + 1] = lane
                end
            end
        end
        return table.concat(found, ",")
    end

    -- Enqueues a1 (default lane), a2 (bulk: client A over its share) and
    -- p1 (priority), then claims all three.
    local function three()
        assert.same({ true, "default" }, { q:enqueue({ id = "a1",
            payload = { client = "A" } }) })
        assert.same({ true, "bulk" }, { q:enqueue({ id = "a2",
            payload = { client = "A" } }) })
        assert.same({ true, "priority" }, { q:enqueue({ id = "p1",
            payload = { prio = true } }) })
        local t = {}
        for _ = 1, 3 do
            local c = assert(q:claim("w"))
            t[c.id] = c
        end
        return t
    end

    local function check(more)
        local ids = { "a1", "a2", "p1" }
        for _, id in ipairs(more or {}) do
            ids[#ids + 1] = id
        end
        inv.check({ r = r, prefix = P, task_ids = ids, timeout = 1 })
    end

    it("a retry goes to the end of its own lane", function()
        local t = three()
        for _, id in ipairs({ "a1", "a2", "p1" }) do
            assert.equal("retry", q:fail(id, t[id].claim, "boom", true))
        end
        assert.equal("task:queue", where("a1"))
        assert.equal("task:queue:bulk", where("a2"))
        assert.equal("task:queue:priority", where("p1"))
        -- another client's new task comes before A's bulk task
        assert.same({ true, "default" }, { q:enqueue({ id = "b1",
            payload = { client = "B" } }) })
        local order = {}
        for i = 1, 4 do
            order[i] = assert(q:claim("w")).id
        end
        assert.same({ "p1", "a1", "b1", "a2" }, order)
        check({ "b1" })
    end)

    it("a release goes to the front of its own lane", function()
        local t = three()
        -- A over its share again: a3 waits in the default lane, a4 in bulk
        assert.same({ true, "default" }, { q:enqueue({ id = "a3",
            payload = { client = "A" } }) })
        assert.same({ true, "bulk" }, { q:enqueue({ id = "a4",
            payload = { client = "A" } }) })
        for _, id in ipairs({ "a1", "a2", "p1" }) do
            assert.is_true(q:release(id, t[id].claim))
        end
        assert.equal("task:queue", where("a1"))
        assert.equal("task:queue:bulk", where("a2"))
        assert.equal("task:queue:priority", where("p1"))
        assert.same({ "a2", "a4" },
                    r:call("LRANGE", P .. "task:queue:bulk", 0, -1))
        check({ "a3", "a4" })
    end)

    it("a reaped (timed-out) claim goes to the front of its own lane",
       function()
        three()
        sys.sleep(0.1)                       -- past every 60 ms deadline
        assert.same({ 3, 0, 0 }, { q:reap() })
        assert.equal("task:queue", where("a1"))
        assert.equal("task:queue:bulk", where("a2"))
        assert.equal("task:queue:priority", where("p1"))
        assert.equal("timed out", q:get("a2").error)
        check()
    end)

    it("a requeued dead letter goes to the end of its own lane", function()
        local t = three()
        for _, id in ipairs({ "a1", "a2", "p1" }) do
            assert.equal("dead", q:fail(id, t[id].claim, "fatal", false))
        end
        assert.equal(3, q:requeue_all_dead())
        assert.equal("task:queue", where("a1"))
        assert.equal("task:queue:bulk", where("a2"))
        assert.equal("task:queue:priority", where("p1"))
        check()
    end)

    it("a task enqueued before lanes were recorded (no `lane` field) goes "
       .. "to the default lane", function()
        local t = three()
        assert(r:call("HDEL", P .. "task:a2", "lane"))
        assert.equal("retry", q:fail("a2", t.a2.claim, "boom", true))
        assert.equal("task:queue", where("a2"))
    end)
end)
