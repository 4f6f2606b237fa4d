-- wtt.jitter: the one Park-Miller generator behind the queue's retry
-- backoff and the Redis client's reconnect delays.
local jitter = require "wtt.jitter"

describe("wtt.jitter", function()
    it("is the minimal standard generator (Park and Miller's check value)",
       function()
        -- Park & Miller (1988): from seed 1, the 10000th state is 1043618065.
        local g = jitter.new(0)       -- reduced to state 1
        local state
        for _ = 1, 10000 do
            _, state = g()
        end
        assert.equal(1043618065, state)
    end)

    it("draws numbers strictly inside (0, 1)", function()
        local seen = {}
        for _ = 1, 1000 do
            local x = jitter.random()
            assert.is_true(x > 0 and x < 1)
            seen[x] = true
        end
        local n = 0
        for _ in pairs(seen) do
            n = n + 1
        end
        assert.equal(1000, n)
    end)

    it("is the source of both users", function()
        local queue_src = require("wtt.sys").read_file(
            require("wtt.runtime").lua_dir .. "/wtt/queue/held.lua")
        local redis_src = require("wtt.sys").read_file(
            require("wtt.runtime").lua_dir .. "/wtt/redis/internal.lua")
        for _, src in ipairs({ queue_src, redis_src }) do
            assert.matches('require%("wtt.jitter"%)', src)
            assert.is_nil(src:find("16807", 1, true))
        end
    end)
end)
