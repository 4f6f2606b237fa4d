local rh = require "spec.support.redis"
local redis = require "wtt.redis"
local core = require "wtt.core.redis"

local null = redis.null


describe("wtt.redis pipeline #redis", function()
    local srv, r
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
    end)

    it("returns one reply per command, in order, with every type",
       function()
        local res = assert(r:pipeline(function(p)
            p:call("SET", "a", 1)
            p:call("GET", "a")
            p:call("GET", "missing")
            p:call("LPUSH", "a", "x")          -- WRONGTYPE
            p:call("INCR", "n")
            p:call("RPUSH", "l", "p", "q")
            p:call("LRANGE", "l", 0, -1)
            p:call("MGET", "a", "missing")
            p:call("SET", "e", "")
            p:call("GET", "e")
        end))
        assert.equal(10, #res)
        assert.equal("OK", res[1])
        assert.equal("1", res[2])
        assert.equal(null, res[3])
        assert.matches("^WRONGTYPE", res[4].err)
        assert.equal(1, res[5])
        assert.equal(2, res[6])
        assert.same({ "p", "q" }, res[7])
        assert.same({ "1", null }, res[8])
        assert.equal("OK", res[9])
        assert.equal("", res[10])
    end)

    it("runs 1000 commands in one round trip", function()
        local res = assert(r:pipeline(function(p)
            for i = 1, 1000 do
                p:call("INCR", "counter")
                if i % 100 == 0 then
                    p:call("SET", "k" .. i, i)
                end
            end
        end))
        assert.equal(1010, #res)
        local n = 0
        for _, v in ipairs(res) do
            if v ~= "OK" then
                n = n + 1
                assert.equal(n, v)
            end
        end
        assert.equal(1000, n)
        assert.equal("1000", r:call("GET", "counter"))
    end)

    it("returns an empty list for an empty pipeline", function()
        assert.same({}, r:pipeline(function() end))
    end)

    it("moves values larger than its send buffer both ways", function()
        local value = string.rep("v\0", 512 * 1024)      -- 1 MiB
        local res = assert(r:pipeline(function(p)
            for i = 1, 12 do
                p:call("SET", "big" .. i, i .. value)
            end
            for i = 1, 12 do
                p:call("GET", "big" .. i)
            end
        end))
        for i = 1, 12 do
            assert.equal("OK", res[i])
            assert.is_true(res[12 + i] == i .. value)
        end
    end)

    it("carries binary arguments", function()
        local res = assert(r:pipeline(function(p)
            p:call("SET", "b\0", "\0\1\2\r\n")
            p:call("GET", "b\0")
        end))
        assert.equal("\0\1\2\r\n", res[2])
    end)

    it("sends nothing when the builder raises", function()
        assert.has_error(function()
            r:pipeline(function(p)
                p:call("INCR", "untouched")
                error("builder failed")
            end)
        end, "builder failed")
        assert.is_nil(r:call("GET", "untouched"))
        assert.equal("PONG", r:call("PING"))
    end)

    it("raises on bad commands before sending anything", function()
        assert.has_error(function()
            r:pipeline(function(p) p:call("SET", "a", nil, "b") end)
        end)
        assert.has_error(function()
            r:pipeline(function(p) p:call("SET", "a", {}) end)
        end)
        assert.has_error(function()
            r:pipeline(function(p) p:call() end)
        end)
        assert.has_error(function() r:pipeline("SET") end)
    end)

    it("keeps the connection usable after error replies", function()
        local res = assert(r:pipeline(function(p)
            p:call("NOSUCH")
            p:call("PING")
        end))
        assert.matches("^ERR unknown command", res[1].err)
        assert.equal("PONG", res[2])
        assert.equal("PONG", r:call("PING"))
    end)
end)


describe("wtt.core.redis pipeline #redis", function()
    local srv
    setup(function() srv = rh.start() end)
    teardown(function() if srv then srv:stop() end end)

    it("takes a list of argument arrays", function()
        local c = assert(core.connect("127.0.0.1", srv.port))
        local res = assert(c:pipeline({
            { "SET", "x", 5 }, { "INCRBY", "x", 2.0 }, { "GET", "nope" },
        }))
        assert.same({ "OK", 7, core.null }, res)
        assert.same({}, c:pipeline({}))
        assert.has_error(function() c:pipeline({ "SET" }) end)
        assert.has_error(function() c:pipeline({ {} }) end)
        c:close()
    end)
end)
