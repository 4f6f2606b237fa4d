-- Q3 (docs/reliability.md): a crash between the move to task:processing
-- and the claim record. wtt's claim is one script, so it cannot leave that
-- state, but an older version (move, then record), a hand edit or a
-- partial restore can; the reaper must then treat such an id as a claim that
-- expires after the visibility timeout, and requeue it exactly once.
--
-- Real stack (PostgreSQL, redis-server, `wtt serve`, whose subscriber
-- reaps once a second, and two `wtt worker` processes reaping every
-- 0.2 s: three reapers race). The orphans are planted with raw Redis
-- commands while claiming is paused:
--   A  moved to task:processing, claim never recorded (hash `pending`);
--   B  claim recorded in the hash (`processing`, attempt 1) but no
--      deadline in task:processing:time;
--   C  an id with no hash at all.

local support = require "spec.support.faults"
local core = require "wtt.core.redis"
local json = require "wtt.json"

describe("Q3: an id in task:processing without a deadline #redis #pg",
         function()
    local env

    setup(function()
        env = support.start()
    end)

    teardown(function()
        if env then
            env:stop()
        end
    end)

    -- A row for a copy of an uploaded clip (as an upload leaves it).
    local function row_like(src_id)
        local res = assert(env.db:query(
            "INSERT INTO audio_midi (original_name, audio_path, duration_s) "
            .. "SELECT original_name, audio_path, duration_s FROM audio_midi "
            .. "WHERE id = $1 RETURNING id", src_id))
        return res[1].id
    end

    local function redis_ms()
        local t = assert(env.r:call("TIME"))
        return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
    end

    local function count(list, id)
        local n = 0
        for _, v in ipairs(env.r:call("LRANGE", env:key(list), 0, -1)) do
            if v == id then
                n = n + 1
            end
        end
        return n
    end

    it("is requeued once after the visibility timeout, then completes",
       function()
        if support.needs_single_redis("it watches the queue's channels on a "
                                      .. "raw connection to the one "
                                      .. "redis-server's port") then
            return
        end
        local paused = env:key("queue:paused")
        assert(env.r:call("SET", paused, "1"))
        local a_row = env:upload("guitar_nylon_single")
        local b_row = row_like(a_row)
        local a = env:generate(a_row)
        local b = env:generate(b_row)
        local c = string.format("%032x", 0xC3)
        local workers = { env:worker(), env:worker() }

        -- Every event from here on (task:new is the requeue's).
        local sub = assert(core.connect("127.0.0.1", env.rsrv.port,
                                        { timeout = 5 }))
        assert(sub:write("SUBSCRIBE", env:key("task:new"),
                         env:key("task:failed")))
        for _ = 1, 2 do
            assert(sub:read(5))                 -- the confirmations
        end

        local t0 = redis_ms()
        local proc, time = env:key("task:processing"), env:key(
            "task:processing:time")
        for _, id in ipairs({ a, b }) do
            assert.equal(1, env.r:call("LREM", env:key("task:queue"), 0, id))
            assert(env.r:call("LPUSH", proc, id))
        end
        assert(env.r:call("LPUSH", proc, c))
        assert(env.r:call("HSET", env:key("task:" .. b), "status",
                          "processing", "attempts", 1, "worker", "ghost",
                          "claimed_at", t0))
        assert(env.r:call("HINCRBY", env:key("task:" .. b), "claim", 1))
        local b_claim = tonumber(env:task(b).claim)

        -- A reaper gives each a deadline of (at least) now + its timeout.
        assert.truthy(support.eventually(function()
            return env.r:call("ZCARD", time) == 3
        end, 10), "orphans were not given a deadline" .. env:logs())
        for _, id in ipairs({ a, b }) do
            local score = tonumber(env.r:call("ZSCORE", time, id))
            assert.is_true(score >= t0 + support.VT_MS,
                           ("deadline %d is before planted %d + VT %d")
                           :format(score, t0, support.VT_MS))
        end

        -- Then they are recovered: A and B back in the default lane (still
        -- paused: nobody claims them), C gone.
        assert.truthy(support.eventually(function()
            return count("task:queue", a) == 1 and count("task:queue", b) == 1
                   and env.r:call("LLEN", proc) == 0
        end, 10), "orphans not requeued" .. env:logs())
        assert.is_true(redis_ms() >= t0 + support.VT_MS)
        -- Let every reaper run many more times: still one entry each. The
        -- marker: a sentinel orphan with no hash (like C), planted now, has
        -- been given a deadline and, after the timeout, dropped.
        local d = string.format("%032x", 0xD4)
        assert(env.r:call("LPUSH", proc, d))
        assert.truthy(support.eventually(function()
            return env.r:call("ZSCORE", time, d) ~= nil
        end, 10), "the sentinel got no deadline" .. env:logs())
        assert.truthy(support.eventually(function()
            return env.r:call("ZSCORE", time, d) == nil
                   and count("task:processing", d) == 0
        end, 10), "the sentinel was not dropped" .. env:logs())
        for _, id in ipairs({ a, b }) do
            assert.equal(1, count("task:queue", id), id)
            assert.equal(0, count("task:processing", id), id)
            assert.is_nil(env.r:call("ZSCORE", time, id))
        end
        assert.equal(0, env.r:call("ZCARD", time))
        local ha, hb = env:task(a), env:task(b)
        assert.same({ "pending", "0" }, { ha.status, ha.attempts })
        assert.same({ "pending", "1", "timed out" },
                    { hb.status, hb.attempts, hb.error })
        -- the holder B's hash named is fenced off
        assert.equal(b_claim + 1, tonumber(hb.claim))

        -- Exactly one requeue each: one task:new per id (and B's
        -- "timed out" task:failed).
        local news, fails = {}, {}
        while true do
            local m = sub:read(0.2)
            if not m then
                break
            end
            local doc = json.decode(m[3])
            local t = m[2] == env:key("task:new") and news or fails
            t[doc.id] = (t[doc.id] or 0) + 1
        end
        sub:close()
        assert.same({ [a] = 1, [b] = 1 }, news)
        assert.same({ [b] = 1 }, fails)

        -- Claiming again: both complete once, on the real workers.
        assert(env.r:call("DEL", paused))
        env:wait_row(a_row, "completed", 60)
        env:wait_row(b_row, "completed", 60)
        assert.equal("1", env:task(a).attempts)
        assert.equal("2", env:task(b).attempts)
        for _, w in ipairs(workers) do
            w:signal("TERM")
            assert.same({ "exited", 0 }, { w:wait(15) }, w:text())
        end
        env:check_invariants(8)
    end)
end)
