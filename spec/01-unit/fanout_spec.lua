-- wtt.core.fanout without its thread: the spec plays the hub's part
-- (hub_changes, hub_confirmed, hub_deliver, hub_reset), so the fan-out's
-- bookkeeping is checked exactly. The hub loop with a real Redis and real
-- streams is in spec/07-service/08-events_spec.lua.

local fanout = require "wtt.core.fanout"

-- Channel names unique to this spec, so counts of other specs in the same
-- process never mix in.
local P = "unit:" .. require("wtt.sys").getpid() .. ":"

local function set(list)
    local s = {}
    for _, v in ipairs(list) do
        s[v] = true
    end
    return s
end

local function confirm_all(subs)
    for _, ch in ipairs(subs) do
        fanout.hub_confirmed(ch)
    end
end

local function take_all(c)
    local out = {}
    while true do
        local kind, stamp, channel, payload = c:take()
        if not kind then
            return out
        end
        out[#out + 1] = { kind = kind, stamp = stamp, channel = channel,
                          payload = payload }
        if kind == "dropped" then
            return out
        end
    end
end


describe("wtt.core.fanout", function()
    it("subscribes a channel for its first client, syncs once confirmed, "
       .. "and unsubscribes with the last", function()
        local a = fanout.open({ { P .. "progress:t1" },
                                { P .. "completed", "t1" } }, 4096)
        local subs, unsubs = fanout.hub_changes()
        assert.same(set({ P .. "progress:t1", P .. "completed" }), set(subs))
        assert.same({}, unsubs)
        assert.same({}, take_all(a))          -- nothing confirmed yet
        fanout.hub_confirmed(P .. "progress:t1")
        assert.same({}, take_all(a))          -- one still due
        fanout.hub_confirmed(P .. "completed")
        local got = take_all(a)
        assert.equal(1, #got)
        assert.equal("sync", got[1].kind)

        -- A second client of the same channels: nothing to send, and its
        -- sync comes at once.
        local b = fanout.open({ { P .. "progress:t1" },
                                { P .. "completed", "t1" } }, 4096)
        subs, unsubs = fanout.hub_changes()
        assert.same({}, subs)
        assert.same({}, unsubs)
        assert.equal("sync", take_all(b)[1].kind)

        a:close()
        subs, unsubs = fanout.hub_changes()
        assert.same({}, unsubs)               -- b still follows them
        b:close()
        b:close()                             -- twice is fine
        subs, unsubs = fanout.hub_changes()
        assert.same({}, subs)
        assert.same(set({ P .. "progress:t1", P .. "completed" }), set(unsubs))
    end)

    it("delivers a keyed channel's messages only to the clients of the id "
       .. "the payload names, in order, with the hub's time", function()
        local a = fanout.open({ { P .. "done", "aa11" } }, 4096)
        local b = fanout.open({ { P .. "done", "bb22" } }, 4096)
        local all = fanout.open({ { P .. "done" } }, 4096)
        confirm_all((fanout.hub_changes()))
        take_all(a); take_all(b); take_all(all)
        local t0 = require("wtt.sys").now()
        assert.equal(2, fanout.hub_deliver(P .. "done", '{"id":"aa11","x":1}'))
        assert.equal(2, fanout.hub_deliver(P .. "done", "bb22"))   -- bare id
        assert.equal(2, fanout.hub_deliver(P .. "done",
                                           '{"status":"pending","id":"aa11"}'))
        -- an "id" inside a string value is no key
        assert.equal(1, fanout.hub_deliver(P .. "done",
                                           '{"error":"\\"id\\":\\"aa11\\""}'))
        assert.equal(0, fanout.hub_deliver(P .. "elsewhere", "aa11"))
        local ga, gb, gall = take_all(a), take_all(b), take_all(all)
        assert.equal(2, #ga)
        assert.equal('{"id":"aa11","x":1}', ga[1].payload)
        assert.equal('{"status":"pending","id":"aa11"}', ga[2].payload)
        assert.equal(P .. "done", ga[1].channel)
        assert.is_true(ga[1].stamp >= t0 - 0.001 and ga[1].stamp <= ga[2].stamp)
        assert.equal(1, #gb)
        assert.equal("bb22", gb[1].payload)
        assert.equal(4, #gall)
        a:close(); b:close(); all:close()
        fanout.hub_changes()
    end)

    it("drops a client whose buffer would overflow, and only that one",
       function()
        local slow = fanout.open({ { P .. "flood" } }, 1024)
        local fast = fanout.open({ { P .. "flood" } }, 1024)
        confirm_all((fanout.hub_changes()))
        take_all(slow); take_all(fast)
        local msg = string.rep("x", 200)
        local dropped_before = fanout.stats().dropped
        for i = 1, 20 do
            fanout.hub_deliver(P .. "flood", msg .. i)
            -- the fast client keeps up
            local got = take_all(fast)
            assert.equal(1, #got)
            assert.equal(msg .. i, got[1].payload)
        end
        assert.equal(1, fanout.stats().dropped - dropped_before)
        local got = take_all(slow)
        -- whatever it had is gone: dropped is all it learns
        assert.equal("dropped", got[#got].kind)
        assert.equal("dropped", slow:take())
        slow:close(); fast:close()
        fanout.hub_changes()
    end)

    it("makes every client wait for a new sync after the connection "
       .. "was lost", function()
        local a = fanout.open({ { P .. "r1" }, { P .. "r2", "k" } }, 4096)
        confirm_all((fanout.hub_changes()))
        assert.equal("sync", take_all(a)[1].kind)
        fanout.hub_reset()
        local subs = fanout.hub_changes()
        assert.same(set({ P .. "r1", P .. "r2" }), set(subs))
        fanout.hub_confirmed(P .. "r1")
        assert.same({}, take_all(a))
        fanout.hub_confirmed(P .. "r2")
        assert.equal("sync", take_all(a)[1].kind)
        a:close()
        fanout.hub_changes()
    end)

    it("keeps a channel whose last client left and a new one came before "
       .. "the hub acted, and resubscribes one that left and came back",
       function()
        local a = fanout.open({ { P .. "back" } }, 4096)
        confirm_all((fanout.hub_changes()))
        a:close()
        local b = fanout.open({ { P .. "back" } }, 4096)
        local subs, unsubs = fanout.hub_changes()
        assert.same({}, subs)
        assert.same({}, unsubs)
        assert.equal("sync", take_all(b)[1].kind)
        b:close()
        subs, unsubs = fanout.hub_changes()
        assert.same({ P .. "back" }, unsubs)
        local c = fanout.open({ { P .. "back" } }, 4096)
        subs = fanout.hub_changes()
        assert.same({ P .. "back" }, subs)
        fanout.hub_confirmed(P .. "back")
        assert.equal("sync", take_all(c)[1].kind)
        c:close()
        fanout.hub_changes()
    end)

    it("refuses bad routes and capacities", function()
        assert.has_error(function() fanout.open({}, 4096) end)
        assert.has_error(function() fanout.open({ { "" } }, 4096) end)
        assert.has_error(function() fanout.open({ { "x", "" } }, 4096) end)
        assert.has_error(function() fanout.open({ { "x" } }, 10) end)
        assert.has_error(function() fanout.open({ "x" }, 4096) end)
        assert.has_error(function() fanout.open({ { "x" } }, 4096, {}) end)
        local c = fanout.open({ { "x" } }, 4096)
        c:close()
        assert.has_error(function() c:take() end)
        fanout.hub_changes()
    end)
end)
