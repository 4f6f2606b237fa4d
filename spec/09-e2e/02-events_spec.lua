-- The event stream (GET /transcribe/events/{id}/, docs/web.md) with
-- nothing simulated: PostgreSQL, redis-server, `wtt serve` with its
-- subscriber thread, and a real `wtt worker` that fetches the clip over
-- HTTP and runs the engine. The stream must show what the worker does, in
-- order, and end with the status the status route answers.

local helpers = require "spec.support.server"
local real_stack = require "spec.support.real_stack"
local sse = require "spec.support.sse"

local CLIP = helpers.FIXTURES .. "/clips/guitar_strum.wav"

describe("the event stream of a real task #redis #pg", function()
    local stack, srv

    setup(function()
        stack = real_stack.start({ name = "e2e-events" })
        srv = stack.srv
    end)

    teardown(function()
        if stack then stack:stop() end
    end)

    local function logs()
        return stack:logs()
    end

    it("shows queued, processing, every window and completed, in order",
       function()
        local res = stack:upload(CLIP)
        assert.equal(201, res.status, res.body)
        local id = res.json.audio_midi_id
        local g = assert(srv:json("POST", "/transcribe/generate/", {
            headers = { ["Content-Type"] = "application/json" },
            body = '{"audio_midi_id":"' .. id .. '","options":{}}',
        }))
        assert.equal(202, g.status, g.body)

        local c = assert(sse.open(srv.port, "/transcribe/events/" .. id .. "/"))
        assert.truthy(sse.wait({ c }, function() return #c.events >= 1 end,
                               10), "no state" .. logs())
        assert.equal("state", c.events[1].event)
        assert.equal("queued", sse.data(c.events[1]).status)

        -- The worker starts only now, so everything it does is live.
        stack:start_worker()
        assert.truthy(sse.wait({ c }, function() return c.ended end, 120),
                      "the stream did not end" .. logs())
        assert.equal("end", c.ended)

        local names, last_done, total = {}, 0, nil
        for _, ev in ipairs(c.events) do
            if names[#names] ~= ev.event then
                names[#names + 1] = ev.event
            end
            if ev.event == "progress" then
                local p = sse.data(ev)
                assert.is_true(p.done > last_done, ev.data)
                total = total or p.total
                assert.equal(total, p.total)
                last_done = p.done
            end
        end
        assert.same({ "state", "progress", "completed" }, names)
        assert.equal("processing", sse.data(c:named("state")[2]).status)
        assert.equal(total, last_done)
        local done = sse.data(c.events[#c.events])
        local status = assert(srv:json("GET", "/transcribe/status/" .. id .. "/"))
        assert.same(status.json, done)
        assert.equal("completed", done.status)
        assert.is_true(done.has_midi)
        c:close()
    end)
end)
