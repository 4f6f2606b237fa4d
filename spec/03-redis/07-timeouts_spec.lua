local rh = require "spec.support.redis"
local redis = require "wtt.redis"
local core = require "wtt.core.redis"
local sys = require "wtt.sys"


-- Runs fn() and returns its results plus the seconds it took.
local function timed(fn)
    local t0 = sys.now()
    local a, b = fn()
    return a, b, sys.now() - t0
end


describe("wtt.redis timeouts against a stopped server #redis", function()
    local srv, tls
    setup(function()
        srv = rh.start({ password = "pw" })
        tls = rh.start({ tls = true })
    end)
    after_each(function()
        for _, s in ipairs({ srv, tls }) do
            if s and s:running() then
                s:resume()
            end
        end
    end)
    teardown(function()
        if srv then srv:stop() end
        if tls then tls:stop() end
    end)

    it("fails a command after `timeout` and recovers afterwards",
       function()
        local r = assert(srv:client({ timeout = 0.3 }))
        assert.equal("PONG", r:call("PING"))
        srv:pause()
        local v, err, took = timed(function() return r:call("PING") end)
        assert.is_nil(v)
        assert.equal("call failed: timeout", err)
        assert.is_true(took >= 0.25 and took < 1.5, "took " .. took)
        srv:resume()
        assert.equal("PONG", r:call("PING"))
        r:close()
    end)

    it("fails a pipeline after `timeout`", function()
        local r = assert(srv:client({ timeout = 0.3 }))
        srv:pause()
        local v, err, took = timed(function()
            return r:pipeline(function(p)
                p:call("SET", "a", 1)
                p:call("GET", "a")
            end)
        end)
        assert.is_nil(v)
        assert.equal("pipeline failed: timeout", err)
        assert.is_true(took < 1.5, "took " .. took)
        srv:resume()
        r:close()
    end)

    it("bounds AUTH during connect by connect_timeout", function()
        srv:pause()
        local r, err, took = timed(function()
            return srv:client({ connect_timeout = 0.3 })
        end)
        assert.is_nil(r)
        assert.matches("^connect failed: auth: timeout", err)
        assert.is_true(took >= 0.25 and took < 1.5, "took " .. took)
    end)

    it("bounds the TLS handshake by connect_timeout", function()
        tls:pause()
        local r, err, took = timed(function()
            return tls:client({ connect_timeout = 0.3 })
        end)
        assert.is_nil(r)
        assert.matches("tls handshake: timeout", err)
        assert.is_true(took >= 0.25 and took < 1.5, "took " .. took)
    end)

    it("lets a blocking command run past nothing but its own time",
       function()
        local r = assert(srv:client({ timeout = 1 }))
        local v, err, took = timed(function()
            return r:call("BLPOP", "empty", 0.3)
        end)
        assert.is_nil(v)
        assert.is_nil(err)
        assert.is_true(took >= 0.25)
        assert.equal(1, r:set_timeout(2))
        r:close()
    end)

    it("reads with a deadline and stays usable after a timeout",
       function()
        local c = assert(core.connect("127.0.0.1", srv.port))
        assert.equal("OK", c:call("AUTH", "pw"))
        assert.is_true(c:write("SUBSCRIBE", "t"))
        assert.same({ "subscribe", "t", 1 }, c:read(1))
        local v, err, took = timed(function() return c:read(0.2) end)
        assert.is_nil(v)
        assert.equal("timeout", err)
        assert.is_true(took >= 0.15 and took < 1, "took " .. took)
        assert.is_false(c:broken())
        v, err = c:read(0)
        assert.equal("timeout", err)
        local pub = assert(srv:client())
        pub:call("PUBLISH", "t", "hi")
        pub:close()
        assert.same({ "message", "t", "hi" }, c:read(1))
        c:close()
    end)

    it("reports a refused connection at once", function()
        local port = sys.free_port()
        local r, err, took = timed(function()
            return redis.connect("redis://127.0.0.1:" .. port,
                                 { connect_timeout = 3 })
        end)
        assert.is_nil(r)
        assert.matches("connection refused", err)
        assert.is_true(took < 1)
    end)
end)
