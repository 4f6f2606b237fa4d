local rh = require "spec.support.redis"
local redis = require "wtt.redis"
local sys = require "wtt.sys"

local eventually = require("spec.support.server").eventually


-- SIGKILLs `srv` from a helper process `after` seconds from now, so that
-- the kill lands while this Lua state is blocked inside a call.
local function kill_later(srv, after)
    return assert(sys.spawn({ "sh", "-c", "sleep " .. after
                              .. "; kill -9 " .. srv.pid }))
end


describe("wtt.redis reconnect (server killed, AOF on) #redis", function()
    local srv, r
    setup(function()
        srv = rh.start({ appendonly = true, password = "s3cret" })
        r = assert(redis.connect(srv.url:gsub("/0$", "/3"), {
            backoff_base = 0.2, backoff_max = 1, timeout = 5,
        }))
    end)
    teardown(function()
        if r then r:close() end
        if srv then srv:stop() end
    end)

    it("fails the pipeline in flight and recovers after a restart",
       function()
        assert.equal("OK", r:call("SET", "before", "kept"))
        local killer = kill_later(srv, 0.3)
        local t0 = sys.now()
        local res, err = r:pipeline(function(p)
            p:call("SET", "inflight", "1")
            p:call("BLPOP", "never", 3)       -- still waiting at the kill
            p:call("PING")
        end)
        sys.wait(killer, 5)
        assert.is_nil(res)
        assert.matches("^pipeline failed: connection", err)
        assert.is_true(sys.now() - t0 < 2.5)
        srv:kill()                               -- reap it

        -- Server down: the first attempt fails, then the backoff window
        -- makes calls fail fast, saying so.
        local v
        v, err = r:call("PING")
        assert.is_nil(v)
        assert.matches("connection refused", err)
        v, err = r:call("PING")
        assert.is_nil(v)
        assert.matches("^reconnect backoff: next attempt in", err)
        assert.matches("connection refused", err)

        srv:restart()
        -- The next call after the window reconnects, AUTHs and SELECTs 3.
        assert.truthy(eventually(function()
            return r:call("PING") == "PONG"
        end, 5))
        assert.equal("kept", r:call("GET", "before"))
        assert.equal("1", r:call("GET", "inflight"))
        assert.matches("db=3", r:call("CLIENT", "INFO"))
        assert.is_true(r.reconnects >= 1)
    end)

    it("reconnects before sending when the server restarted while idle",
       function()
        assert.equal("OK", r:call("SET", "idle", "x"))
        srv:kill()
        srv:restart()
        -- No failed call: the stale connection is noticed before sending.
        assert.equal("x", r:call("GET", "idle"))
        assert.matches("db=3", r:call("CLIENT", "INFO"))
    end)

    it("reloads scripts on the new connection", function()
        local s = redis.script("return redis.call('GET', KEYS[1])")
        assert.equal("x", r:eval(s, { "idle" }))
        srv:kill()
        srv:restart()                -- the script cache is gone
        assert.equal("x", r:eval(s, { "idle" }))
    end)

    it("grows the backoff delay up to its cap, with jitter", function()
        local cfg = { backoff_base = 0.1, backoff_max = 2 }
        for n = 1, 12 do
            local full = math.min(2, 0.1 * 2 ^ (n - 1))
            for _ = 1, 20 do
                local d = redis.backoff_delay(cfg, n)
                assert.is_true(d >= full / 2 and d <= full,
                               n .. ": " .. d)
            end
        end
    end)
end)


describe("wtt.redis subscribe across a restart #redis", function()
    local srv, r
    setup(function()
        srv = rh.start({ appendonly = true })
        r = assert(srv:client({ backoff_base = 0.05, timeout = 2 }))
    end)
    teardown(function()
        if r then r:close() end
        if srv then srv:stop() end
    end)

    it("re-subscribes and receives a message published after restart",
       function()
        local got, reconnects = {}, 0
        local ok, err = r:subscribe({ "jobs" }, { "job:*" },
            function(kind, channel, payload)
                got[#got + 1] = kind .. " " .. channel .. " " .. payload
                if payload == "after" then
                    return false
                end
            end, {
                tick = 0.05,
                on_ready = function()
                    r:call("PUBLISH", "jobs", "before")
                    srv:kill()
                    srv:restart()
                end,
                on_reconnect = function()
                    reconnects = reconnects + 1
                    assert.equal(1, r:call("PUBLISH", "job:1", "x"))
                    assert.equal(1, r:call("PUBLISH", "jobs", "after"))
                end,
            })
        assert.is_nil(err)
        assert.is_true(ok)
        assert.equal(1, reconnects)
        -- "before" may or may not have been read before the kill.
        assert.equal("pmessage job:1 x", got[#got - 1])
        assert.equal("message jobs after", got[#got])
    end)

    it("keeps trying through a longer outage, ticking meanwhile",
       function()
        local ticks, down_at = 0, nil
        local ok = r:subscribe("outage", nil, function(_, _, payload)
            return payload ~= "back"
        end, {
            tick = 0.05,
            on_ready = function()
                srv:kill()
                down_at = sys.now()
            end,
            on_tick = function()
                ticks = ticks + 1
                if down_at and sys.now() - down_at > 0.5
                   and not srv:running()
                then
                    srv:restart()
                end
            end,
            on_reconnect = function()
                r:call("PUBLISH", "outage", "back")
            end,
        })
        assert.is_true(ok)
        assert.is_true(ticks >= 8, "ticks " .. ticks)
    end)

    it("gives up after max_reconnects failed attempts", function()
        local t0 = sys.now()
        local ok, err = r:subscribe("gone", nil, function() end, {
            tick = 0.05,
            max_reconnects = 3,
            on_ready = function() srv:kill() end,
        })
        assert.is_nil(ok)
        assert.matches("^subscribe failed: gave up after 3 reconnect "
                       .. "attempts: connect failed", err)
        assert.is_true(sys.now() - t0 < 3)
        srv:restart()
        assert.truthy(eventually(function()
            return r:call("PING") == "PONG"
        end, 5))
    end)
end)


describe("wtt.redis after a failover (READONLY) #redis", function()
    local a, b, r, admin
    setup(function()
        a = rh.start()
        b = rh.start()
        r = assert(a:client())
        admin = assert(a:client())
    end)
    teardown(function()
        if r then r:close() end
        if admin then admin:close() end
        if a then a:stop() end
        if b then b:stop() end
    end)

    it("retries a write once on a new connection, then reports",
       function()
        assert.equal("OK", r:call("SET", "w", "1"))
        -- Demote a: it now answers writes with READONLY.
        assert.equal("OK", admin:call("REPLICAOF", "127.0.0.1", b.port))
        local before = r.reconnects
        local v, err = r:call("SET", "w", "2")
        assert.is_nil(v)
        assert.matches("^READONLY", err)
        assert.equal(before + 1, r.reconnects)
        -- Promoted again: the same client writes.
        assert.equal("OK", admin:call("REPLICAOF", "NO", "ONE"))
        assert.equal("OK", r:call("SET", "w", "3"))
        local s = redis.script("return redis.call('SET', KEYS[1], 'e')")
        assert.equal("OK", r:eval(s, { "w" }))
    end)
end)
