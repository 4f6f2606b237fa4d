local rh = require "spec.support.redis"
local sys = require "wtt.sys"

local eventually = require("spec.support.server").eventually


-- Subscribers the server counts on `channel` (0 once ours is gone).
local function numsub(r, channel)
    local v = assert(r:call("PUBSUB", "NUMSUB", channel))
    return v[2]
end


describe("wtt.redis subscribe #redis", function()
    local srv, r
    setup(function()
        srv = rh.start()
        r = assert(srv:client())
    end)
    teardown(function()
        if r then r:close() end
        if srv then srv:stop() end
    end)

    it("delivers channel and pattern messages with their names",
       function()
        local got = {}
        local ok, err = r:subscribe({ "news" }, { "task:*" },
            function(kind, channel, payload, pattern)
                got[#got + 1] = { kind, channel, payload, pattern }
                if #got == 3 then
                    return false
                end
            end, {
                tick = 0.1,
                on_ready = function()
                    assert.equal(1, r:call("PUBLISH", "news", "hello"))
                    assert.equal(1, r:call("PUBLISH", "task:7", "p\0q"))
                    r:call("PUBLISH", "other", "ignored")
                    r:call("PUBLISH", "news", "bye")
                end,
            })
        assert.is_nil(err)
        assert.is_true(ok)
        assert.same({
            { "message", "news", "hello" },
            { "pmessage", "task:7", "p\0q", "task:*" },
            { "message", "news", "bye" },
        }, got)
    end)

    it("takes 10000 messages in order", function()
        local n, bad = 0, nil
        local ok = r:subscribe("flood", nil, function(_, _, payload)
            n = n + 1
            if payload ~= "m" .. n then
                bad = bad or (n .. " got " .. payload)
            end
            if n == 10000 then
                return false
            end
        end, {
            tick = 0.5,
            on_ready = function()
                assert(r:pipeline(function(p)
                    for i = 1, 10000 do
                        p:call("PUBLISH", "flood", "m" .. i)
                    end
                end))
            end,
        })
        assert.is_true(ok)
        assert.equal(10000, n)
        assert.is_nil(bad)
    end)

    it("unsubscribes and closes when a callback returns false", function()
        local ok = r:subscribe("leave", nil, function() return false end, {
            on_ready = function() r:call("PUBLISH", "leave", "x") end,
        })
        assert.is_true(ok)
        assert.truthy(eventually(function()
            return numsub(r, "leave") == 0
        end, 5))
        -- on_tick and on_ready can end it too.
        assert.is_true(r:subscribe("leave", nil, function() end,
                                   { on_ready = function() return false end
                                   }))
        assert.is_true(r:subscribe("leave", nil, function() end,
                                   { tick = 0.01,
                                     on_tick = function() return false end
                                   }))
        assert.truthy(eventually(function()
            return numsub(r, "leave") == 0
        end, 5))
    end)

    it("ticks at the requested cadence while idle", function()
        local times = {}
        local t0 = sys.now()
        r:subscribe("quiet", nil, function() end, {
            tick = 0.05,
            on_tick = function()
                times[#times + 1] = sys.now()
                return #times < 8
            end,
        })
        assert.equal(8, #times)
        local prev = t0
        for i = 1, #times do
            local gap = times[i] - prev
            assert.is_true(gap >= 0.045 and gap < 0.25,
                           "tick gap " .. gap)
            prev = times[i]
        end
    end)

    it("keeps ticking while messages flood in", function()
        local ticks, n, maxgap = {}, 0, 0
        local last = sys.now()
        r:subscribe("busy", nil, function()
            n = n + 1
            sys.sleep(0.001)            -- a slow consumer
            if n == 300 then
                return false
            end
        end, {
            tick = 0.05,
            on_ready = function()
                last = sys.now()
                assert(r:pipeline(function(p)
                    for i = 1, 300 do
                        p:call("PUBLISH", "busy", i)
                    end
                end))
            end,
            on_tick = function()
                local t = sys.now()
                ticks[#ticks + 1] = t
                if t - last > maxgap then
                    maxgap = t - last
                end
                last = t
            end,
        })
        assert.equal(300, n)
        assert.is_true(#ticks >= 3, "ticks: " .. #ticks)
        assert.is_true(maxgap < 0.25, "max tick gap " .. maxgap)
    end)

    it("lets the client run commands from callbacks", function()
        r:call("DEL", "seen")
        r:subscribe("cmd", nil, function(_, _, payload)
            r:call("RPUSH", "seen", payload)
            if payload == "3" then
                return false
            end
            r:call("PUBLISH", "cmd", tonumber(payload) + 1)
        end, { on_ready = function() r:call("PUBLISH", "cmd", 1) end })
        assert.same({ "1", "2", "3" }, r:call("LRANGE", "seen", 0, -1))
    end)

    it("closes its connection when a callback raises", function()
        assert.has_error(function()
            r:subscribe("boom", nil, function() error("handler broke") end,
                        { on_ready = function()
                            r:call("PUBLISH", "boom", "x")
                        end })
        end, "handler broke")
        assert.truthy(eventually(function()
            return numsub(r, "boom") == 0
        end, 5))
    end)

    it("returns nil, err when the first connect fails", function()
        local port = sys.free_port()
        local c = assert(require("wtt.redis").connect(
            "redis://127.0.0.1:" .. port, { lazy = true }))
        local ok, err = c:subscribe("x", nil, function() end)
        assert.is_nil(ok)
        assert.matches("^subscribe failed: connect failed", err)
    end)

    it("raises on bad arguments", function()
        assert.has_error(function() r:subscribe(nil, nil, function() end) end)
        assert.has_error(function() r:subscribe("a", nil, "f") end)
        assert.has_error(function() r:subscribe({ 1 }, nil, function() end)
        end)
        assert.has_error(function()
            r:subscribe("a", nil, function() end, { tick = 0 })
        end)
    end)
end)


describe("wtt.redis subscribe: silent servers #redis", function()
    local srv, r
    setup(function()
        srv = rh.start()
        r = assert(srv:client({ timeout = 0.3, connect_timeout = 0.3,
                                backoff_base = 0.05 }))
    end)
    teardown(function()
        if srv and srv:running() then srv:resume() end
        if r then r:close() end
        if srv then srv:stop() end
    end)

    it("pings a silent link and gives up after max_reconnects", function()
        local t0 = sys.now()
        local ticks = 0
        local ok, err = r:subscribe("still", nil, function() end, {
            tick = 0.05,
            ping_interval = 0.2,
            max_reconnects = 1,
            on_ready = function() srv:pause() end,
            on_tick = function() ticks = ticks + 1 end,
        })
        local took = sys.now() - t0
        srv:resume()
        assert.is_nil(ok)
        assert.matches("gave up after 1 reconnect attempts", err)
        assert.is_true(took < 3, "took " .. took)
        assert.is_true(ticks >= 10, "ticks " .. ticks)
    end)
end)
