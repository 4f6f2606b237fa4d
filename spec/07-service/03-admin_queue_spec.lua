-- Queue administration over HTTP: dead letters and pausing, admin token.
local support = require "spec.support.service"
local helpers = require "spec.support.server"

describe("queue admin routes #redis #pg", function()
    local env, q
    setup(function()
        env = support.start()
        q = require("wtt.queue").new(env.r, { prefix = support.PREFIX })
    end)
    teardown(function() if env then env:stop() end end)

    local function admin(method, path, body)
        return env.srv:admin(method, path, { body = body })
    end

    local function dead_task(id)
        assert(q:enqueue({ id = id, audio_midi_id = "x",
                           payload = { audio_url = "/media/x.wav" } }))
        local t = assert(q:claim("w1"))
        -- Not retryable: straight to the dead letters.
        assert.equal("dead", q:fail(t.id, t.claim, "bad audio", false))
    end

    it("refuses requests without the admin token", function()
        local res = env.srv:json("GET", "/_admin/queue/")
        assert.equal(401, res.status)
    end)

    it("lists, inspects and requeues one dead letter", function()
        dead_task("aa01")
        local res = admin("GET", "/_admin/queue/dead/")
        assert.equal(200, res.status)
        assert.same({ "aa01" }, res.json.ids)
        res = admin("GET", "/_admin/queue/task/aa01/")
        assert.equal("failed", res.json.status)
        res = admin("POST", "/_admin/queue/dead/aa01/requeue/")
        assert.equal(200, res.status)
        assert.equal("pending", q:get("aa01").status)
        res = admin("POST", "/_admin/queue/dead/nope/requeue/")
        assert.equal(404, res.status)
        -- an id no task can have (found by spec/fuzz/fuzz_routes.c: a 500)
        res = admin("POST", "/_admin/queue/dead/a%22b%5C/requeue/")
        assert.equal(404, res.status)
        assert(q:purge_dead())
        assert.truthy(q:claim("w1"))
    end)

    it("asks for a confirmation before bulk actions", function()
        dead_task("bb01")
        dead_task("bb02")
        local res = admin("POST", "/_admin/queue/dead/requeue-all/")
        assert.equal(409, res.status)
        assert.equal("confirmation_required", res.json.error)
        assert.equal(2, #admin("GET", "/_admin/queue/dead/").json.ids)
        res = admin("POST", "/_admin/queue/dead/requeue-all/",
                    '{"confirm": "requeue-all"}')
        assert.equal(200, res.status)
        assert.equal(2, res.json.requeued)
        -- Fail them again, then purge with confirmation.
        for _ = 1, 2 do
            local t = assert(q:claim("w1"))
            q:fail(t.id, t.claim, "bad audio", false)
        end
        res = admin("POST", "/_admin/queue/dead/purge/", '{"confirm": "nope"}')
        assert.equal(409, res.status)
        res = admin("POST", "/_admin/queue/dead/purge/", '{"confirm": "purge"}')
        assert.equal(2, res.json.purged)
        assert.same({}, admin("GET", "/_admin/queue/dead/").json.ids)
    end)

    it("pauses and resumes claiming", function()
        assert.equal(200, admin("POST", "/_admin/queue/pause/").status)
        assert.is_true(admin("GET", "/_admin/queue/").json.paused)
        assert(q:enqueue({ id = "cc01", audio_midi_id = "x",
                           payload = { audio_url = "/media/x.wav" } }))
        assert.is_nil(q:claim("w1"))
        assert.equal(200, admin("POST", "/_admin/queue/resume/").status)
        assert.equal("cc01", q:claim("w1").id)
    end)
end)
