local thread = require "wtt.thread"
local sys = require "wtt.sys"

describe("wtt.thread", function()
    local dir
    before_each(function() dir = assert(sys.mkdtemp("wtt-thread-")) end)
    after_each(function() sys.rmtree(dir) end)

    it("runs a script in its own state with an argument", function()
        local path = dir .. "/t.lua"
        assert(sys.write_file(path, [[
            local thread = require "wtt.thread"
            local arg = ...
            thread.set("thread-spec:echo", "got " .. arg)
        ]]))
        local t = assert(thread.start(path, "hello"))
        assert.is_true(t:join(5))
        assert.equal("got hello", thread.get("thread-spec:echo"))
        thread.set("thread-spec:echo", nil)
        assert.is_nil(thread.get("thread-spec:echo"))
    end)

    it("runs alongside the caller and sees its shared values", function()
        local path = dir .. "/loop.lua"
        assert(sys.write_file(path, [[
            local thread = require "wtt.thread"
            local sys = require "wtt.sys"
            local n = 0
            while thread.get("thread-spec:stop") == nil do
                n = n + 1
                thread.set("thread-spec:beats", tostring(n))
                sys.sleep(0.01)
            end
        ]]))
        local t = assert(thread.start(path, ""))
        -- Two beats seen from here: it runs, and alongside this state.
        assert.truthy(require("spec.support.server").eventually(function()
            return (tonumber(thread.get("thread-spec:beats")) or 0) >= 2
        end, 5))
        assert.is_false(t:done())
        local nil_, err = t:join(0.01)
        assert.is_nil(nil_)
        assert.equal("timeout", err)
        thread.set("thread-spec:stop", "1")
        assert.is_true(t:join(5))
        assert.is_true(t:done())
        thread.set("thread-spec:stop", nil)
    end)

    it("reports a script that fails", function()
        local path = dir .. "/bad.lua"
        assert(sys.write_file(path, "error('boom')"))
        local t = assert(thread.start(path, ""))
        local ok, err = t:join(5)
        assert.is_nil(ok)
        assert.matches("thread failed", err)
    end)
end)
