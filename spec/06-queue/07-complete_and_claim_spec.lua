-- complete_and_claim: one round trip, same effect as complete then claim.
local rh = require "spec.support.redis"
local queue = require "wtt.queue"

describe("queue complete_and_claim #redis", function()
    local srv, r, q
    setup(function()
        srv = rh.start()
        r = assert(srv:client())
        q = queue.new(r, { prefix = "{cc}:" })
    end)
    teardown(function()
        if r then r:close() end
        if srv then srv:stop() end
    end)

    local function add(id)
        assert(q:enqueue({ id = id, audio_midi_id = "x",
                           payload = { audio_url = "/media/x.wav" } }))
    end

    it("completes the task and hands out the next in FIFO order", function()
        add("a1")
        add("a2")
        local t = assert(q:claim("w"))
        assert.equal("a1", t.id)
        local ok, err, nxt = q:complete_and_claim(t.id, t.claim, { n = 1 }, "w")
        assert.is_true(ok, err)
        assert.equal("completed", q:get("a1").status)
        assert.equal("a2", nxt.id)
        assert.equal("processing", q:get("a2").status)
        ok, err, nxt = q:complete_and_claim(nxt.id, nxt.claim, {}, "w")
        assert.is_true(ok, err)
        assert.is_nil(nxt)
        local st = q:stats()
        assert.equal(0, st.pending)
        assert.equal(0, st.processing)
    end)

    it("refuses a stale claim and still claims the next", function()
        add("b1")
        add("b2")
        local t = assert(q:claim("w"))
        local ok, err, nxt = q:complete_and_claim(t.id, t.claim .. "0", {}, "w")
        assert.is_nil(ok)
        assert.equal("stale", err)
        assert.equal("processing", q:get("b1").status)
        assert.equal("b2", nxt.id)
    end)
end)
