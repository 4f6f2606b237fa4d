local rh = require "spec.support.redis"
local redis = require "wtt.redis"
local core = require "wtt.core.redis"
local cjson = require "cjson"

local null = redis.null


describe("wtt.redis call: reply mapping #redis", function()
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

    it("maps an integer reply to a number", function()
        assert.equal(1, r:call("INCR", "n"))
        assert.equal(-5, r:call("INCRBY", "n", -6))
        assert.equal(2 ^ 53, r:call("INCRBY", "big", 2 ^ 53))
    end)

    it("maps bulk and status replies to strings", function()
        assert.equal("OK", r:call("SET", "k", "value"))
        assert.equal("PONG", r:call("PING"))
        assert.equal("value", r:call("GET", "k"))
        assert.equal("string", r:call("TYPE", "k"))
    end)

    it("maps a nil bulk reply to a plain nil without error", function()
        local v, err = r:call("GET", "missing")
        assert.is_nil(v)
        assert.is_nil(err)
    end)

    it("keeps the empty string apart from nil", function()
        assert.equal("OK", r:call("SET", "e", ""))
        assert.equal("", r:call("GET", "e"))
        assert.equal(0, r:call("STRLEN", "e"))
    end)

    it("maps arrays to tables, empty ones included", function()
        assert.same({}, r:call("LRANGE", "nolist", 0, -1))
        r:call("RPUSH", "l", "a", "b", 3)
        assert.same({ "a", "b", "3" }, r:call("LRANGE", "l", 0, -1))
    end)

    it("maps a nil array (BLPOP timeout) to nil", function()
        local v, err = r:call("BLPOP", "nolist", 0.05)
        assert.is_nil(v)
        assert.is_nil(err)
    end)

    it("maps nested arrays with nils and errors from EVAL", function()
        local v = r:call("EVAL", [[
            return { 1, 'two', { 3, { 4, false, 'x' } }, false,
                     redis.error_reply('E1 inner'), redis.status_reply('S'),
                     {} }
        ]], 0)
        assert.same({ 1, "two", { 3, { 4, null, "x" } }, null,
                      { err = "E1 inner" }, "S", {} }, v)
    end)

    it("uses one null sentinel, equal to cjson.null", function()
        assert.equal(cjson.null, redis.null)
        assert.equal(core.null, redis.null)
        local v = r:call("MGET", "nope", "nope")
        assert.equal(null, v[1])
        assert.equal(2, #v)
    end)

    it("nests arrays to any depth", function()
        -- hiredis 0.14's own reader stops at 7; wtt's reads any depth.
        local DEPTH = 150
        local v = r:call("EVAL", [[
            local t = {'deep', false}
            for _ = 1, tonumber(ARGV[1]) do t = {t} end
            return t
        ]], 0, DEPTH)
        for _ = 1, DEPTH do
            assert.equal(1, #v)
            v = v[1]
        end
        assert.same({ "deep", null }, v)
        assert.equal("PONG", r:call("PING"))
    end)

    it("reads a deep reply split across many packets", function()
        local v = r:call("EVAL", [[
            local t = {}
            for i = 1, 2000 do t[i] = {i, {string.rep('x', 100)}} end
            return t
        ]], 0)
        assert.equal(2000, #v)
        assert.equal(2000, v[2000][1])
        assert.equal(string.rep("x", 100), v[1234][2][1])
    end)

    it("returns a large array in order", function()
        local args = {}
        for i = 1, 5000 do
            args[#args + 1] = i
        end
        assert.equal(5000, r:call("RPUSH", "big", unpack(args)))
        assert.equal(10000, r:call("RPUSH", "big", unpack(args)))
        local v = r:call("LRANGE", "big", 0, -1)
        assert.equal(10000, #v)
        assert.equal("1", v[1])
        assert.equal("5000", v[10000])
    end)
end)


describe("wtt.redis call: arguments and errors #redis", function()
    local srv, r
    setup(function()
        srv = rh.start()
        r = assert(srv:client())
    end)
    teardown(function()
        if r then r:close() end
        if srv then srv:stop() end
    end)

    it("sends integral numbers exactly, 2^53 included", function()
        r:call("SET", "n", 2 ^ 53)
        assert.equal("9007199254740992", r:call("GET", "n"))
        r:call("SET", "n", -42)
        assert.equal("-42", r:call("GET", "n"))
    end)

    it("sends fractions so that they read back as the same double",
       function()
        r:call("SET", "f", 0.1)
        assert.equal(0.1, tonumber(r:call("GET", "f")))
        r:call("SET", "f", 1.5)
        assert.equal("1.5", r:call("GET", "f"))
    end)

    it("returns an error reply as nil, err and stays usable", function()
        local v, err = r:call("NOSUCHCOMMAND", "x")
        assert.is_nil(v)
        assert.matches("^ERR unknown command", err)
        r:call("SET", "s", "x")
        v, err = r:call("LPUSH", "s", "y")
        assert.is_nil(v)
        assert.matches("^WRONGTYPE", err)
        v, err = r:call("EVAL", "return redis.error_reply('MY failure')", 0)
        assert.is_nil(v)
        assert.equal("MY failure", err)
        assert.equal("PONG", r:call("PING"))
    end)

    it("round-trips every byte value, NUL included", function()
        local bytes = {}
        for i = 0, 255 do
            bytes[#bytes + 1] = string.char(i)
        end
        local s = table.concat(bytes) .. "\0\r\n\0"
        assert.equal("OK", r:call("SET", "bin\0key", s))
        assert.equal(s, r:call("GET", "bin\0key"))
        assert.equal(#s, r:call("STRLEN", "bin\0key"))
        assert.same({ "bin\0key" }, r:call("KEYS", "bin*"))
    end)

    it("round-trips a 50 MB value", function()
        local mb = string.rep("0123456789abcd\0\r\n", 61681)   -- 1 MiB+
        mb = mb:sub(1, 1024 * 1024)
        local value = string.rep(mb, 50)
        assert.equal("OK", r:call("SET", "huge", value))
        assert.equal(#value, r:call("STRLEN", "huge"))
        local back = r:call("GET", "huge")
        assert.equal(#value, #back)
        assert.is_true(back == value)
        back = nil
        assert.equal(1, r:call("DEL", "huge"))
        collectgarbage()
    end)

    it("raises on misuse", function()
        assert.has_error(function() r:call() end)
        assert.has_error(function() r:call("SET", "a", {}) end)
        assert.has_error(function() r:call("SET", "a", nil) end)
        assert.has_error(function() r:call("SET", "a", true) end)
        assert.has_error(function() r:call("SUBSCRIBE", "ch") end)
        assert.has_error(function() redis.connect("redis://x", { bad = 1 })
        end)
        assert.has_error(function() redis.connect("redis://x",
                                                  { timeout = -1 }) end)
    end)

    it("returns nil, 'closed' after close, which is safe twice", function()
        local c = assert(srv:client())
        assert.is_true(c:close())
        assert.is_true(c:close())
        local v, err = c:call("PING")
        assert.is_nil(v)
        assert.equal("closed", err)
    end)

    it("reports a refused connection as nil, err", function()
        local port = require("wtt.sys").free_port()
        local c, err = redis.connect("redis://127.0.0.1:" .. port)
        assert.is_nil(c)
        assert.matches("^connect failed: 127.0.0.1:%d+: connection refused",
                       err)
    end)

    it("computes script SHAs as Redis does", function()
        local src = "return 'sha'"
        assert.equal(r:call("SCRIPT", "LOAD", src), redis.sha1hex(src))
        assert.equal("da39a3ee5e6b4b0d3255bfef95601890afd80709",
                     redis.sha1hex(""))
    end)
end)


describe("wtt.core.redis connection handle #redis", function()
    local srv
    setup(function() srv = rh.start() end)
    teardown(function() if srv then srv:stop() end end)

    it("calls, closes twice and answers 'closed' afterwards", function()
        local c = assert(core.connect("127.0.0.1", srv.port))
        assert.equal("PONG", c:call("PING"))
        assert.is_true(c:alive())
        assert.is_false(c:broken())
        c:close()
        c:close()
        local v, err = c:call("PING")
        assert.is_nil(v)
        assert.equal("closed", err)
        v, err = c:pipeline({ { "PING" } })
        assert.is_nil(v)
        assert.equal("closed", err)
        v, err = c:read(0)
        assert.is_nil(v)
        assert.equal("closed", err)
        assert.matches("closed", tostring(c))
    end)

    it("takes a command as an array with callv", function()
        local c = assert(core.connect("127.0.0.1", srv.port))
        local argv = { "RPUSH", "cv" }
        for i = 1, 20000 do
            argv[#argv + 1] = i
        end
        assert.equal(20000, c:callv(argv))
        assert.equal(20000, c:call("LLEN", "cv"))
        assert.has_error(function() c:callv({}) end)
        assert.has_error(function() c:callv({ "SET", "a", false }) end)
        c:close()
    end)

    it("is released by the garbage collector", function()
        for _ = 1, 50 do
            local c = assert(core.connect("127.0.0.1", srv.port))
            c:call("PING")
        end
        collectgarbage()
        collectgarbage()
        local c = assert(core.connect("127.0.0.1", srv.port))
        local list = c:call("CLIENT", "LIST")
        local n = select(2, list:gsub("\n", ""))
        assert.is_true(n < 10, "clients left open: " .. n)
        c:close()
    end)

    it("raises on bad connect arguments", function()
        assert.has_error(function() core.connect("127.0.0.1", 0) end)
        assert.has_error(function() core.connect("relative/path") end)
        assert.has_error(function()
            core.connect("127.0.0.1", 1, { nope = true })
        end)
        assert.has_error(function()
            core.connect("127.0.0.1", 1, { timeout = 0 })
        end)
    end)
end)
