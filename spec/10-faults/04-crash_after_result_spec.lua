-- W6: a worker crashes after its /_result/ POST was stored, before
-- `complete`. The rerun's result differs (e.g. another device): reliability.md
-- expects 409 for the rerun but the task to end acked with the first result.
local support = require "spec.support.faults"
local inv = require "spec.support.invariants"
local json = require "wtt.json"
local midi = require "wtt.midi"
local queue = require "wtt.queue"

describe("W6 #redis #pg", function()
    local env
    setup(function() env = support.start() end)
    teardown(function() if env then env:stop() end end)

    it("crash after the result was stored, rerun with different bytes", function()
        local id, tid = env:submit("guitar_nylon_single")
        -- worker A (this spec) claims, posts a valid result, then "crashes"
        local q = queue.new(env.r, { prefix = env.prefix })
        local t = assert(q:claim("spec-a"))
        assert.equal(tid, t.id)
        local res = assert(env:http("POST", "/transcribe/_result/" .. tid .. "/", {
            headers = { Authorization = "Bearer " .. support.TOKEN },
            multipart = {
                { name = "claim", value = tostring(t.claim) },
                { name = "midi", data = assert(midi.encode({ { start_s = 0,
                  end_s = 0.5, pitch = 64, velocity = 90 } })),
                  filename = "a.mid", content_type = "audio/midi" },
                { name = "notes", data = json.encode({ notes = { {} } }),
                  filename = "a.json", content_type = "application/json" },
            } }))
        assert.equal(200, res.status, res.body)
        -- a real worker B picks it up after the visibility timeout
        local b = env:worker()
        local h = support.eventually(function()
            local x = env:task(tid)
            return (x.status == "completed" or x.status == "failed") and x
        end, 20)
        print("\nfinal hash: " .. json.encode(h or env:task(tid)))
        print("B log:\n" .. b:text())
        assert.is_table(h)
        assert.equal("completed", h.status)
        env:wait_row(id, "completed")
        inv.check({ r = env.r, prefix = env.prefix, db = env.db, url = env.url,
                    media = env.media })
    end)
end)
