-- sys.trap / sys.signaled / sys.untrap: the worker's stop signals. Tested
-- with USR1/USR2 so that the spec runner's own TERM/INT stay untouched.

local sys = require "wtt.sys"
local runtime = require "wtt.runtime"
local helpers = require "spec.support.server"

describe("sys.trap and sys.signaled #redis", function()
    after_each(function()
        sys.untrap({ "USR1", "USR2" })
    end)

    it("counts trapped signals until cleared", function()
        assert.is_true(sys.trap({ "USR1", "SIGUSR2" }))
        assert.same({ false, 0 }, { sys.signaled("USR1") })
        assert(sys.kill(sys.getpid(), "USR1"))
        assert(sys.kill(sys.getpid(), "USR1"))
        assert(sys.kill(sys.getpid(), "USR2"))
        assert.same({ true, 2 }, { sys.signaled("USR1") })
        assert.same({ true, 2 }, { sys.signaled("SIGUSR1") })  -- not cleared
        assert.same({ true, 2 }, { sys.signaled("USR1", true) })
        assert.same({ false, 0 }, { sys.signaled("USR1") })
        assert.same({ true, 1 }, { sys.signaled("USR2") })
    end)

    it("re-trapping resets the count; a single name works too", function()
        sys.trap("USR1")
        sys.kill(sys.getpid(), "USR1")
        assert.is_true((sys.signaled("USR1")))
        sys.trap("USR1")
        assert.is_false((sys.signaled("USR1")))
    end)

    it("rejects unknown and untrappable signals", function()
        assert.has_error(function() sys.trap({ "NOPE" }) end)
        assert.has_error(function() sys.trap("KILL") end)
        assert.has_error(function() sys.trap("STOP") end)
        assert.has_error(function() sys.signaled("NOPE") end)
        assert.has_error(function() sys.trap(42) end)
    end)

    it("a child of a trapping process gets the default disposition",
       function()
        sys.trap("USR1")
        local script = os.tmpname()
        local up = script .. ".up"
        assert(sys.write_file(script, ("local sys = require('wtt.sys') "
            .. "sys.write_file(%q, 'up') sys.sleep(30)"):format(up)))
        local pid = assert(sys.spawn({ runtime.exe, "run", script }))
        -- Signal it once it runs its script (exec done, state built).
        local started = helpers.eventually(function()
            return sys.exists(up)
        end, 10)
        sys.kill(pid, "USR1")
        local how, sig = sys.wait(pid, 5)
        if not how then
            sys.kill(pid, "KILL")
            sys.wait(pid, 5)
        end
        os.remove(script)
        os.remove(up)
        assert.truthy(started, "the child never ran its script")
        assert.equal("signaled", how)
        assert.equal(10, sig)                  -- SIGUSR1 on Linux
        assert.is_false((sys.signaled("USR1")))
    end)
end)
