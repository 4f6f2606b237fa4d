local rh = require "spec.support.redis"
local qh = require "spec.support.queue"
local queue = require "wtt.queue"
local sys = require "wtt.sys"
local json = require "cjson"

local id = qh.id


describe("wtt.queue transitions #redis", function()
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

    local function enqueue(n, payload)
        assert.is_true(q:enqueue({ id = id(n), audio_midi_id = n,
                                   payload = payload or { duration_s = 1 } }))
    end

    it("enqueues a pending task with its hash and publishes task:new",
       function()
        enqueue(1, { audio_url = "/media/x.wav", outputs = { "midi" } })
        local h = q:get(id(1))
        assert.equal("pending", h.status)
        assert.equal("0", h.attempts)
        assert.equal("3", h.max_attempts)
        assert.equal("300", h.timeout_ms)
        assert.equal("1", h.audio_midi_id)
        assert.same({ audio_url = "/media/x.wav", outputs = { "midi" } },
                    json.decode(h.payload))
        assert.same({ retry = "test" }, json.decode(h.plugins))
        assert.same({ id(1) }, r:call("LRANGE", P .. "task:queue", 0, -1))
        assert.is_true(q:has_task(id(1)))
        assert.is_false(q:has_task(id(2)))
    end)

    it("refuses a second enqueue of a non-terminal id", function()
        enqueue(1)
        local ok, err = q:enqueue({ id = id(1), payload = {} })
        assert.is_nil(ok)
        assert.equal("exists", err)
        local t = assert(q:claim("w"))
        ok, err = q:enqueue({ id = id(1), payload = {} })
        assert.equal("exists", err)
        assert.is_true(q:complete(t.id, t.claim, {}))
        -- terminal: replaced, and the claim counter carries over
        assert.is_true(q:enqueue({ id = id(1), payload = {} }))
        local t2 = assert(q:claim("w"))
        assert.is_true(tonumber(t2.claim) > tonumber(t.claim))
        assert.equal(1, t2.attempts)
    end)

    it("claims FIFO and counts attempts at claim", function()
        for i = 1, 5 do
            enqueue(i)
        end
        local before_ms = q:now_ms() - 1000   -- the caller's clock lags <= 1 s
        for i = 1, 5 do
            local t = assert(q:claim("w1"))
            assert.equal(id(i), t.id)
            assert.equal(1, t.attempts)
            -- a token is at least the claim's time in ms (docs/queue.md)
            assert.is_true(tonumber(t.claim) >= before_ms, t.claim)
            assert.equal(300, t.timeout_ms)
            assert.equal(tostring(i), t.audio_midi_id)
            assert.same({ duration_s = 1 }, t.payload)
        end
        assert.is_nil(q:claim("w1"))
        local h = q:get(id(1))
        assert.equal("processing", h.status)
        assert.equal("w1", h.worker)
        assert.equal(5, r:call("LLEN", P .. "task:processing"))
        assert.equal(5, r:call("ZCARD", P .. "task:processing:time"))
        local deadline = tonumber(r:call("ZSCORE", P .. "task:processing:time",
                                         id(1)))
        assert.near(q:now_ms() + 300, deadline, 200)
    end)

    it("returns nil with no error on an empty queue", function()
        local t, err = q:claim("w")
        assert.is_nil(t)
        assert.is_nil(err)
    end)

    it("completes for the current claim only", function()
        enqueue(1)
        local t = assert(q:claim("w"))
        local ok, err = q:complete(t.id, "999", { midi = "x" })
        assert.is_nil(ok)
        assert.equal("stale", err)
        assert.is_true(q:complete(t.id, t.claim, { midi = "x", n_notes = 3 }))
        local h = q:get(t.id)
        assert.equal("completed", h.status)
        assert.same({ midi = "x", n_notes = 3 }, json.decode(h.result))
        assert.same({ t.id }, r:call("LRANGE", P .. "task:results", 0, -1))
        assert.equal(0, r:call("LLEN", P .. "task:processing"))
        assert.equal(0, r:call("ZCARD", P .. "task:processing:time"))
        ok, err = q:complete(t.id, t.claim, {})
        assert.is_nil(ok)
        assert.equal("not processing", err)
        -- completed hashes are kept with the final TTL
        local ttl = r:call("TTL", P .. "task:" .. t.id)
        assert.is_true(ttl > 604700 and ttl <= 604800)
    end)

    it("fail retries with retry_at, then dead-letters at the cap", function()
        q = queue.new(r, { prefix = P,
                           policy = qh.policy({ backoff_ms = 150 }) })
        enqueue(1)
        enqueue(2)
        local t = assert(q:claim("w"))
        assert.equal("retry", q:fail(t.id, t.claim, "net down", true))
        local h = q:get(t.id)
        assert.equal("pending", h.status)
        assert.equal("net down", h.error)
        -- backing off: task 2 is claimed, task 1 is skipped until retry_at
        local t2 = assert(q:claim("w"))
        assert.equal(id(2), t2.id)
        assert.is_nil(q:claim("w"))
        sys.sleep(0.2)
        t = assert(q:claim("w"))
        assert.equal(id(1), t.id)
        assert.equal(2, t.attempts)
        assert.equal("retry", q:fail(t.id, t.claim, "net down", true))
        sys.sleep(0.2)
        t = assert(q:claim("w"))
        assert.equal(3, t.attempts)
        assert.equal("dead", q:fail(t.id, t.claim, "net down", true))
        h = q:get(t.id)
        assert.equal("failed", h.status)
        assert.same({ id(1) }, q:dead(0, 10))
        assert.same({ id(1) }, r:call("LRANGE", P .. "task:results", 0, -1))
    end)

    it("fail with retryable=false dead-letters at once", function()
        enqueue(1)
        local t = assert(q:claim("w"))
        assert.equal("dead", q:fail(t.id, t.claim, "bad audio", false))
        assert.equal(1, q:stats().failed)
        local ttl = r:call("TTL", P .. "task:" .. t.id)
        assert.is_true(ttl > 86300 and ttl <= 86400)
    end)

    it("dead-letters a poison task at claim when attempts are used up",
       function()
        q = queue.new(r, { prefix = P,
                           policy = qh.policy({ max_attempts = 2,
                                                timeout_ms = 50 }) })
        enqueue(1)
        enqueue(2)
        -- simulate workers that die: claims expire and are reaped
        for _ = 1, 2 do
            local t = assert(q:claim("w"))
            assert.equal(id(1), t.id)
            sys.sleep(0.08)
            q:reap()
        end
        -- attempts 2 of 2 reaped: dead at reap time
        assert.equal("failed", q:get(id(1)).status)
        -- a hand-edited attempts count above the cap: dead at claim time
        assert.is_true(q:enqueue({ id = id(3), payload = {} }))
        r:call("HSET", P .. "task:" .. id(3), "attempts", 2)
        r:call("LREM", P .. "task:queue", 0, id(3))
        r:call("LPUSH", P .. "task:queue", id(3))
        local t = assert(q:claim("w"))
        assert.equal(id(2), t.id)
        local h = q:get(id(3))
        assert.equal("failed", h.status)
        assert.matches("attempts exhausted", h.error)
        assert.same({ id(1), id(3) }, q:dead(0, 10))
    end)

    it("heartbeat extends the deadline: a long task is not reaped, "
       .. "a stalled one is",
       function()
        enqueue(1)
        enqueue(2)
        local long = assert(q:claim("healthy"))
        local stalled = assert(q:claim("stalled"))
        for _ = 1, 8 do               -- 800 ms > 300 ms visibility timeout
            sys.sleep(0.1)
            assert.is_true(q:heartbeat(long.id, long.claim))
            q:reap()
        end
        assert.equal("processing", q:get(long.id).status)
        assert.equal("1", q:get(long.id).attempts)
        assert.equal("pending", q:get(stalled.id).status)
        assert.is_true(q:complete(long.id, long.claim, {}))
    end)

    it("progress records done/total, extends the deadline and publishes",
       function()
        enqueue(1)
        local t = assert(q:claim("w"))
        local before = tonumber(r:call("ZSCORE", P .. "task:processing:time",
                                       t.id))
        sys.sleep(0.05)
        assert.is_true(q:progress(t.id, t.claim, 3, 10))
        assert.equal("3/10", q:get(t.id).progress)
        local after = tonumber(r:call("ZSCORE", P .. "task:processing:time",
                                      t.id))
        assert.is_true(after > before)
    end)

    it("refuses every call of a stale claim after a reap (fencing)",
       function()
        enqueue(1)
        local old = assert(q:claim("zombie"))
        sys.sleep(0.35)
        local n, dead = q:reap()
        assert.equal(1, n)
        assert.equal(0, dead)
        local h = q:get(old.id)
        assert.equal("pending", h.status)
        assert.equal("timed out", h.error)
        -- invalidated by the reaper
        assert.equal(tonumber(old.claim) + 1, tonumber(h.claim))
        local new = assert(q:claim("w2"))
        assert.equal(old.id, new.id)
        assert.is_true(tonumber(new.claim) > tonumber(h.claim))
        assert.equal(2, new.attempts)
        for _, call in ipairs({
            function() return q:heartbeat(old.id, old.claim) end,
            function() return q:progress(old.id, old.claim, 1, 2) end,
            function() return q:complete(old.id, old.claim, {}) end,
            function() return q:fail(old.id, old.claim, "x", true) end,
            function() return q:release(old.id, old.claim) end,
        }) do
            local ok, err = call()
            assert.is_nil(ok)
            assert.equal("stale", err)
        end
        -- the newer run is intact
        h = q:get(old.id)
        assert.equal("processing", h.status)
        assert.equal("w2", h.worker)
        assert.is_true(q:complete(new.id, new.claim, { by = "w2" }))
    end)

    it("release puts the task first without charging an attempt", function()
        enqueue(1)
        enqueue(2)
        local t = assert(q:claim("w"))
        assert.is_true(q:release(t.id, t.claim))
        local h = q:get(t.id)
        assert.equal("pending", h.status)
        assert.equal("0", h.attempts)
        assert.same({ id(1), id(2) },
                    r:call("LRANGE", P .. "task:queue", 0, -1))
        local ok, err = q:complete(t.id, t.claim, {})
        assert.equal("stale", err)
        local again = assert(q:claim("w2"))
        assert.equal(id(1), again.id)
        assert.equal(1, again.attempts)
        assert.is_true(tonumber(again.claim) > tonumber(t.claim) + 1)
    end)

    it("pause stops claiming, resume restarts it", function()
        enqueue(1)
        assert(q:pause())
        assert.is_true(q:stats().paused)
        assert.is_nil(q:claim("w"))
        assert(q:resume())
        assert.is_false(q:stats().paused)
        assert.equal(id(1), assert(q:claim("w")).id)
    end)

    it("stats counts every list", function()
        enqueue(1); enqueue(2); enqueue(3); enqueue(4)
        local a = assert(q:claim("w"))
        local b = assert(q:claim("w"))
        q:complete(a.id, a.claim, {})
        q:fail(b.id, b.claim, "x", false)
        assert(q:worker_beat("w", { host = "h", pid = 1 }, 30))
        assert.same({ pending = 2, processing = 0, failed = 1, results = 2,
                      paused = false, workers = 1 }, q:stats())
    end)

    it("results take/ack/recover keep every id until acked", function()
        for i = 1, 3 do
            enqueue(i)
            local t = assert(q:claim("w"))
            q:complete(t.id, t.claim, {})
        end
        assert.equal(id(1), q:results_take())
        assert.equal(id(2), q:results_take())
        assert.is_true(q:results_ack(id(1)))
        -- crash: id 2 is still in results:processing
        assert.equal(1, q:results_recover())
        assert.same({ id(2), id(3) },
                    r:call("LRANGE", P .. "task:results", 0, -1))
        assert.equal(0, r:call("LLEN", P .. "task:results:processing"))
        assert.equal(id(2), q:results_take())
        assert.equal(id(3), q:results_take())
        assert.is_nil(q:results_take())
    end)

    it("requeues, requeues all and purges dead letters", function()
        for i = 1, 4 do
            enqueue(i)
            local t = assert(q:claim("w"))
            q:fail(t.id, t.claim, "bad", false)
        end
        assert.same({ id(1), id(2), id(3), id(4) }, q:dead(0, 10))
        assert.same({ id(2), id(3) }, q:dead(1, 2))
        assert.is_true(q:requeue_dead(id(1)))
        local h = q:get(id(1))
        assert.equal("pending", h.status)
        assert.equal("0", h.attempts)
        assert.is_nil(h.error)
        assert.equal(-1, r:call("TTL", P .. "task:" .. id(1)))
        local ok, err = q:requeue_dead(id(1))
        assert.is_nil(ok)
        assert.equal("not found", err)
        assert.equal(3, q:purge_dead())
        assert.is_nil(q:get(id(2)))
        assert.equal(0, q:stats().failed)
        assert.equal(id(1), assert(q:claim("w")).id)
        assert.is_nil(q:claim("w"))
    end)

    it("starts a new run on requeue: claim up, last run cleared, row told",
       function()
        enqueue(1)
        local t = assert(q:claim("w"))
        r:call("HSET", P .. "task:" .. t.id, "upload_fp", "fp",
               "uploads", "{}", "result", "{}")
        assert.equal("dead", q:fail(t.id, t.claim, "bad", false))
        assert.equal(t.id, q:results_take())
        assert(q:results_ack(t.id))
        assert.is_true(q:requeue_dead(t.id))
        local h = q:get(t.id)
        assert.equal(tostring(tonumber(t.claim) + 1), h.claim)
        assert.is_nil(h.upload_fp)
        assert.is_nil(h.uploads)
        assert.is_nil(h.result)
        -- the subscriber's durable path: the row leaves `failed`
        assert.same({ t.id }, r:call("LRANGE", P .. "task:results", 0, -1))
        -- the dead run's token is refused, the next claim is above both
        local ok, err = q:complete(t.id, t.claim, {})
        assert.is_nil(ok)
        assert.equal("stale", err)
        local t2 = assert(q:claim("w"))
        assert.equal(tonumber(t.claim) + 2, tonumber(t2.claim))
    end)

    it("raises on bad arguments, naming the transition", function()
        local cases = {
            { "heartbeat", { 42, "1" }, "#1 to 'heartbeat'" },
            { "progress", { id(1), {} }, "#2 to 'progress'" },
            { "complete", { id(1), "1", { f = print } }, "#3 to 'complete'" },
            { "fail", { "a b", "1" }, "#1 to 'fail'" },
            { "release", { id(1), true }, "#2 to 'release'" },
            { "complete_and_claim", { id(1), "1", { f = print }, "w" },
              "#3 to 'complete_and_claim'" },
        }
        for _, c in ipairs(cases) do
            local ok, err = pcall(function()
                local res = q[c[1]](q, unpack(c[2]))   -- no tail call
                return res
            end)
            assert.is_false(ok)
            assert.matches("bad argument " .. c[3], err, 1, true)
            -- the caller's line, not the queue's
            assert.matches("01%-transitions_spec%.lua", err)
        end
    end)

    it("requeue-all moves every dead letter back", function()
        for i = 1, 3 do
            enqueue(i)
            local t = assert(q:claim("w"))
            q:fail(t.id, t.claim, "bad", false)
        end
        assert.equal(3, q:requeue_all_dead())
        assert.equal(3, q:stats().pending)
        assert.equal(0, q:stats().failed)
    end)

    it("expires dead letters after the dead-letter TTL", function()
        q = queue.new(r, { prefix = P, policy = qh.policy({ dead_ttl_s = 1 }) })
        enqueue(1)
        local t = assert(q:claim("w"))
        q:fail(t.id, t.claim, "bad", false)
        assert.is_true(q:has_task(t.id))
        sys.sleep(1.2)
        assert.is_false(q:has_task(t.id))
        local ok, err = q:requeue_dead(t.id)
        assert.equal("not found", err)
        assert.same({}, q:dead(0, 10))
    end)

    it("drops stray ids whose hash is gone instead of handing them out",
       function()
        enqueue(1)
        enqueue(2)
        r:call("DEL", P .. "task:" .. id(1))
        assert.equal(id(2), assert(q:claim("w")).id)
        assert.equal(0, r:call("LLEN", P .. "task:queue"))
    end)

    it("leaves state unchanged when a task key holds garbage (Q4)",
       function()
        enqueue(1)
        local t = assert(q:claim("w"))
        r:call("DEL", P .. "task:" .. t.id)
        r:call("SET", P .. "task:" .. t.id, "garbage")
        local ok, err = q:complete(t.id, t.claim, {})
        assert.is_nil(ok)
        assert.matches("WRONGTYPE", err)
        assert.equal("garbage", r:call("GET", P .. "task:" .. t.id))
        assert.equal(1, r:call("LLEN", P .. "task:processing"))
        assert.equal(0, r:call("LLEN", P .. "task:results"))
        local bad
        bad, err = q:enqueue({ id = t.id, payload = {} })
        assert.is_nil(bad)
        assert.equal("WRONGTYPE " .. P .. "task:" .. t.id
                     .. " is a string, not a hash", err)
    end)

    it("publishes every transition", function()
        local got = {}
        local sub = assert(srv:client())
        local chans = { q:channel("task:new"), q:channel("task:claimed"),
                        q:channel("task:completed"), q:channel("task:failed") }
        local done = false
        local steps = {
            function() enqueue(1) enqueue(2) end,
            function()
                local t = assert(q:claim("w"))
                q:progress(t.id, t.claim, 1, 2)
                q:complete(t.id, t.claim, {})
                t = assert(q:claim("w"))
                q:fail(t.id, t.claim, "boom", false)
            end,
        }
        assert(sub:subscribe(chans, { q:channel("task:progress:*") },
            function(_, channel, payload)
                got[#got + 1] = { channel:sub(#P + 1), json.decode(payload) }
                if #got == 7 then
                    return false
                end
            end, {
                tick = 0.05,
                on_ready = function() steps[1](); steps[2]() end,
                on_tick = function() return not done end,
            }))
        sub:close()
        local seen = {}
        for _, m in ipairs(got) do
            seen[#seen + 1] = m[1] .. ":" .. m[2].status
                              .. (m[2].final and ":final" or "")
        end
        assert.same({
            "task:new:pending", "task:new:pending",
            "task:claimed:processing", "task:progress:" .. id(1)
                .. ":processing",
            "task:completed:completed:final", "task:claimed:processing",
            "task:failed:failed:final",
        }, seen)
        assert.same({ done = 1, total = 2 }, got[4][2].progress)
        assert.equal("boom", got[7][2].error)
    end)

    it("runs after SCRIPT FLUSH (NOSCRIPT reloaded)", function()
        enqueue(1)
        assert(r:call("SCRIPT", "FLUSH"))
        local t = assert(q:claim("w"))
        assert(r:call("SCRIPT", "FLUSH"))
        assert.is_true(q:complete(t.id, t.claim, {}))
    end)

    it("claims the priority lane first when the priority policy says so",
       function()
        q = queue.new(r, { prefix = P, policy = qh.policy({
            lane = function(p)
                return p.duration_s <= 10 and "priority" or "default"
            end }) })
        enqueue(1, { duration_s = 100 })
        enqueue(2, { duration_s = 5 })
        enqueue(3, { duration_s = 200 })
        enqueue(4, { duration_s = 6 })
        assert.equal(4, q:stats().pending)
        local order = {}
        for _ = 1, 4 do
            order[#order + 1] = assert(q:claim("w")).id
        end
        assert.same({ id(2), id(4), id(1), id(3) }, order)
        -- a released priority task goes back to its own lane, first
        local t = assert(q:get(id(4)))
        assert.is_true(q:release(id(4), t.claim))
        assert.same({ id(4) }, r:call("LRANGE", P .. "task:queue:priority",
                                      0, -1))
    end)

    it("keeps worker heartbeats with a TTL and lists live workers",
       function()
        assert(q:worker_beat("w1", { host = "h1", pid = 42, device = "cpu",
                                     task = id(1), started = 1000,
                                     windows_per_s = 12.5 }, 1))
        assert(q:worker_beat("w2", { host = "h2", pid = 43 }, 30))
        local ws = q:workers()
        table.sort(ws, function(a, b) return a.id < b.id end)
        assert.equal(2, #ws)
        assert.same({ id = "w1", host = "h1", pid = 42, device = "cpu",
                      task = id(1), started = 1000, windows_per_s = 12.5 },
                    { id = ws[1].id, host = ws[1].host, pid = ws[1].pid,
                      device = ws[1].device, task = ws[1].task,
                      started = ws[1].started,
                      windows_per_s = ws[1].windows_per_s })
        assert.is_true(r:call("TTL", P .. "worker:w1") <= 1)
        sys.sleep(1.1)
        ws = q:workers()
        assert.equal(1, #ws)
        assert.equal("w2", ws[1].id)
        assert.equal(1, q:stats().workers)
        q:worker_gone("w2")
        assert.equal(0, #q:workers())
    end)
end)
