local rh = require "spec.support.redis"
local redis = require "wtt.redis"



-- Number of SCRIPT LOAD calls the server has seen.
local function script_loads(r)
    local info = assert(r:call("INFO", "commandstats"))
    return tonumber(info:match("cmdstat_script|load:calls=(%d+)")) or 0
end


describe("wtt.redis scripts #redis", function()
    local srv, r, other
    local ECHO = redis.script([[
        return { KEYS[1], ARGV[1], #KEYS, #ARGV }
    ]])
    local MOVE = redis.script([[
        local v = redis.call('LPOP', KEYS[1])
        if not v then return false end
        redis.call('RPUSH', KEYS[2], v)
        return v
    ]])

    setup(function()
        srv = rh.start()
        r = assert(srv:client())
        other = assert(srv:client())
    end)
    teardown(function()
        if r then r:close() end
        if other then other:close() end
        if srv then srv:stop() end
    end)

    it("names a script by the SHA1 Redis gives it", function()
        assert.equal(redis.sha1hex(ECHO.source), ECHO.sha)
        assert.equal(ECHO.sha, other:call("SCRIPT", "LOAD", ECHO.source))
        assert.is_true(redis.is_script(ECHO))
        assert.is_true(redis.is_script(r:script("return 1")))
        assert.matches(ECHO.sha, tostring(ECHO))
    end)

    it("runs with keys and args through EVALSHA", function()
        assert.same({ "k1", "a1", 2, 3 },
                    r:eval(ECHO, { "k1", "k2" }, { "a1", 2, "x\0y" }))
        -- Redis ends a Lua array at its first nil: KEYS[1] is nil here.
        assert.same({}, r:eval(ECHO))
        assert.same({ 0, 0 },
                    r:eval(redis.script("return { #KEYS, #ARGV }")))
    end)

    it("loads a script once per connection", function()
        local s = redis.script("return 'once " .. os.time() .. "'")
        local before = script_loads(other)
        for _ = 1, 5 do
            assert.matches("^once", r:eval(s))
        end
        assert.equal(before + 1, script_loads(other))
    end)

    it("reloads transparently after SCRIPT FLUSH", function()
        r:call("DEL", "src", "dst")
        r:call("RPUSH", "src", "a", "b")
        assert.equal("a", r:eval(MOVE, { "src", "dst" }))
        -- Flushed behind r's back: r still thinks MOVE is loaded, gets
        -- NOSCRIPT, loads it again and retries once.
        assert.equal("OK", other:call("SCRIPT", "FLUSH"))
        assert.same({ 0 }, other:call("SCRIPT", "EXISTS", MOVE.sha))
        local before = script_loads(other)
        assert.equal("b", r:eval(MOVE, { "src", "dst" }))
        assert.equal(before + 1, script_loads(other))
        assert.same({ "a", "b" }, r:call("LRANGE", "dst", 0, -1))
        assert.is_nil(r:eval(MOVE, { "src", "dst" }))
    end)

    it("returns a script's error reply as nil, err", function()
        local s = redis.script("return redis.error_reply('BAD thing')")
        local v, err = r:eval(s)
        assert.is_nil(v)
        assert.equal("BAD thing", err)
        s = redis.script("return redis.call('NOSUCH')")
        v, err = r:eval(s)
        assert.is_nil(v)
        assert.matches("Unknown Redis command", err)
        assert.equal("PONG", r:call("PING"))
    end)

    it("reports a script that does not compile", function()
        local v, err = r:eval(redis.script("return +"))
        assert.is_nil(v)
        assert.matches("^script load failed: ERR", err)
    end)

    it("runs scripts inside pipelines, loading them first", function()
        local s = redis.script("return ARGV[1] .. '" .. os.clock() .. "'")
        other:call("SCRIPT", "FLUSH")
        local res = assert(r:pipeline(function(p)
            p:eval(s, {}, { "x" })
            p:call("PING")
            p:eval(ECHO, { "k" }, { "v" })
        end))
        assert.matches("^x", res[1])
        assert.equal("PONG", res[2])
        assert.same({ "k", "v", 1, 1 }, res[3])
    end)

    it("raises when eval is not given a script", function()
        assert.has_error(function() r:eval("return 1") end)
        assert.has_error(function() r:eval(ECHO, "k") end)
        assert.has_error(function() redis.script(42) end)
    end)
end)
