-- Batch transitions (a worker with --batch-tasks): claim_many takes what
-- that many single claims in a row would, in one script call; complete_many
-- completes several held tasks in one, each entry fenced on its own.
local rh = require "spec.support.redis"
local qh = require "spec.support.queue"
local queue = require "wtt.queue"

local id = qh.id


describe("queue batch claim and complete #redis", function()
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
        q = queue.new(r, { prefix = P, policy = qh.policy({
            lane = function(payload)
                return payload.urgent and "priority" or "default"
            end,
            max_attempts = 2,
        }) })
    end)

    local function enqueue(n, payload)
        assert.is_true(q:enqueue({ id = id(n), audio_midi_id = n,
                                   payload = payload or { n = n } }))
    end

    local function ids(tasks)
        local out = {}
        for i, t in ipairs(tasks) do
            out[i] = t.id
        end
        return out
    end

    -- Calls of a command since the last CONFIG RESETSTAT (INFO
    -- commandstats), 0 when none.
    local function calls(cmd)
        local text = assert(r:call("INFO", "commandstats"))
        return tonumber(text:match("cmdstat_" .. cmd .. ":calls=(%d+)")) or 0
    end


    it("claims up to n in priority order, then FIFO, each with its own "
       .. "claim token and deadline", function()
        for i = 1, 4 do
            enqueue(i)
        end
        -- Raise task 1's claim counter: a release bumps it.
        local t1 = assert(q:claim("w0"))
        assert.equal(id(1), t1.id)
        assert.is_true(q:release(t1.id, t1.claim))
        enqueue(5, { urgent = true })
        local tasks = assert(q:claim_many("w1", 3))
        assert.same({ id(5), id(1), id(2) }, ids(tasks))
        for _, t in ipairs(tasks) do
            local h = q:get(t.id)
            assert.equal("processing", h.status)
            assert.equal("w1", h.worker)
            assert.equal(h.claim, t.claim)
            assert.equal(1, t.attempts)
            assert.equal(300, t.timeout_ms)
            assert.is_truthy(r:call("ZSCORE", P .. "task:processing:time",
                                    t.id))
        end
        -- claimed, released (+1), claimed: above the released token
        assert.is_true(tonumber(tasks[2].claim) > tonumber(t1.claim) + 1)
        assert.same({ n = 1 }, tasks[2].payload)
        assert.same({ urgent = true }, tasks[1].payload)
        assert.same({ id(2), id(1), id(5) },
                    r:call("LRANGE", P .. "task:processing", 0, -1))
        -- The rest is still pending, in order.
        assert.same({ id(3), id(4) }, r:call("LRANGE", P .. "task:queue",
                                             0, -1))
    end)

    it("takes fewer when fewer are ready, none when the queue is empty or "
       .. "paused", function()
        assert.same({}, assert(q:claim_many("w", 4)))
        enqueue(1)
        enqueue(2)
        enqueue(3)
        -- Task 2 backs off (a retry in the future): it keeps its place.
        r:call("HSET", P .. "task:" .. id(2), "retry_at",
               assert(q:now_ms()) + 60000)
        local tasks = assert(q:claim_many("w", 4))
        assert.same({ id(1), id(3) }, ids(tasks))
        assert.same({ id(2) }, r:call("LRANGE", P .. "task:queue", 0, -1))
        enqueue(4)
        assert(q:pause())
        assert.same({}, assert(q:claim_many("w", 4)))
        assert(q:resume())
        assert.same({ id(4) }, ids(assert(q:claim_many("w", 4))))
    end)

    it("dead-letters a poison pill on its way and still claims n", function()
        enqueue(1)
        enqueue(2)
        enqueue(3)
        r:call("HSET", P .. "task:" .. id(1), "attempts", 2)   -- max 2
        local tasks = assert(q:claim_many("w", 2))
        assert.same({ id(2), id(3) }, ids(tasks))
        assert.equal("failed", q:get(id(1)).status)
        assert.same({ id(1) }, q:dead())
    end)

    it("claims n tasks with one script call", function()
        for i = 1, 5 do
            enqueue(i)
        end
        assert(q:now_ms())           -- the clock is fresh: no TIME below
        assert(q:claim_many("w", 1)) -- the script is loaded
        assert(r:call("CONFIG", "RESETSTAT"))
        local tasks = assert(q:claim_many("w", 4))
        assert.equal(4, #tasks)
        -- RESETSTAT and INFO themselves are not in the count.
        assert.equal(1, calls("evalsha"))
        assert.equal(0, calls("eval"))
        assert.equal(0, calls("time"))
    end)

    it("every held-claim transition works on each claimed task", function()
        for i = 1, 4 do
            enqueue(i)
        end
        local t = assert(q:claim_many("w", 4))
        assert.is_true(q:heartbeat(t[1].id, t[1].claim))
        assert.is_true(q:progress(t[1].id, t[1].claim, 1, 2))
        assert.is_true(q:complete(t[1].id, t[1].claim, {}))
        assert.equal("retry", q:fail(t[2].id, t[2].claim, "x", true))
        assert.is_true(q:release(t[3].id, t[3].claim))
        assert.equal("0", q:get(t[3].id).attempts)       -- not charged
        -- One task's token is no token for another.
        assert.equal("stale", select(2, q:complete(t[4].id,
                                                   t[4].claim .. "9", {})))
        assert.is_true(q:complete(t[4].id, t[4].claim, {}))
    end)

    it("complete_many completes every held entry and refuses the stale one "
       .. "alone", function()
        for i = 1, 4 do
            enqueue(i)
        end
        local t = assert(q:claim_many("w", 4))
        -- Task 2's claim was reaped meanwhile (a newer claim holds it);
        -- task 3 already completed.
        r:call("HINCRBY", P .. "task:" .. t[2].id, "claim", 1)
        assert.is_true(q:complete(t[3].id, t[3].claim, { first = true }))
        assert(r:call("CONFIG", "RESETSTAT"))
        local n, errs = q:complete_many({
            { id = t[1].id, claim = t[1].claim, result = { n = 1 } },
            { id = t[2].id, claim = t[2].claim, result = { n = 2 } },
            { id = t[3].id, claim = t[3].claim, result = { n = 3 } },
            { id = t[4].id, claim = t[4].claim, result = { n = 4 } },
        })
        assert.equal(1, calls("evalsha") + calls("eval"))
        assert.equal(2, n)
        assert.same({ [2] = "stale", [3] = "not processing" }, errs)
        assert.equal("completed", q:get(t[1].id).status)
        assert.equal('{"n":1}', q:get(t[1].id).result)
        assert.equal("processing", q:get(t[2].id).status)
        assert.is_nil(q:get(t[2].id).result)
        assert.equal('{"first":true}', q:get(t[3].id).result)
        assert.equal('{"n":4}', q:get(t[4].id).result)
        assert.same({ t[2].id }, r:call("LRANGE", P .. "task:processing",
                                        0, -1))
        assert.same({ t[3].id, t[1].id, t[4].id },
                    r:call("LRANGE", P .. "task:results", 0, -1))
    end)

    it("complete_many refuses an entry whose key is not a hash, and takes "
       .. "an empty list", function()
        enqueue(1)
        local t = assert(q:claim("w"))
        r:call("SET", P .. "task:" .. id(9), "corrupt")
        local n, errs = q:complete_many({
            { id = id(9), claim = "1", result = {} },
            { id = t.id, claim = t.claim, result = {} },
        })
        assert.equal(1, n)
        assert.same({ "bad task" }, errs)
        assert.equal("corrupt", r:call("GET", P .. "task:" .. id(9)))
        assert.same({ 0, {} }, { q:complete_many({}) })
    end)

    it("complete_many_and_claim completes a batch and claims the next in "
       .. "one round trip", function()
        for i = 1, 5 do
            enqueue(i)
        end
        local t = assert(q:claim_many("w", 2))
        local n, errs, nxt = q:complete_many_and_claim({
            { id = t[1].id, claim = t[1].claim, result = {} },
            { id = t[2].id, claim = t[2].claim .. "0", result = {} },
        }, "w", 4)
        assert.equal(1, n)
        assert.same({ [2] = "stale" }, errs)
        assert.same({ id(3), id(4), id(5) }, ids(nxt))
        assert.equal("completed", q:get(id(1)).status)
        assert.equal("processing", q:get(id(2)).status)
        -- Nothing to complete: a claim alone.
        n, errs, nxt = q:complete_many_and_claim({}, "w", 4)
        assert.equal(0, n)
        assert.same({}, nxt)
    end)

    it("raises on misuse", function()
        assert.has_error(function() q:claim_many("w", 0) end,
                         "bad argument #2 to 'claim_many' (count >= 1 "
                         .. "expected)")
        assert.has_error(function() q:claim_many(nil, 2) end,
                         "bad argument #1 to 'claim_many' (worker id "
                         .. "expected)")
        assert.has_error(function()
            q:complete_many({ { id = "bad id", claim = "1" } })
        end)
        assert.has_error(function() q:complete_many("x") end)
    end)
end)
