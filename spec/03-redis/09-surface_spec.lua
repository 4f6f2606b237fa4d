-- wtt.redis is one module over several files (lua/wtt/redis/): this pins
-- its public surface, so a part whose export is dropped in an edit fails
-- here rather than in whichever caller happens to use it.

local redis = require "wtt.redis"
local rh = require "spec.support.redis"

describe("wtt.redis public surface #redis", function()
    it("exports the module functions and values", function()
        for _, name in ipairs({ "connect", "parse_url", "script", "is_script",
                                "backoff_delay", "explain", "probe",
                                "sha1hex" }) do
            assert.equal("function", type(redis[name]), name)
        end
        assert.is_not_nil(redis.null)
        assert.equal("table", type(redis.TLS_ENV))
    end)

    it("gives a client every command, script, pipeline and pub/sub method",
       function()
        local srv = rh.start()
        local ok, err = pcall(function()
            local r = assert(srv:client())
            for _, name in ipairs({ "call", "set_timeout", "connected",
                                    "close", "eval", "script", "pipeline",
                                    "subscribe" }) do
                assert.equal("function", type(r[name]), name)
            end
            assert.equal("PONG", r:call("PING"))
            local s = redis.script("return ARGV[1]")
            assert.equal("x", r:eval(s, {}, { "x" }))
            local replies = assert(r:pipeline(function(p)
                p:call("SET", "k", "v")
                p:call("GET", "k")
            end))
            assert.equal("v", replies[2])
            r:close()
        end)
        srv:stop()
        assert(ok, err)
    end)
end)
