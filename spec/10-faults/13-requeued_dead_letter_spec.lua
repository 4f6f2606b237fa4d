-- A requeued dead letter reaches the user (docs/queue.md "The row follows
-- the newest run"). Real stack: PostgreSQL, redis-server, `wtt serve` with
-- its subscriber, real `wtt worker` processes on a real clip.
--
-- A worker that cannot reach web fails the download on every attempt, so
-- the task ends in the dead letters and its row says `failed`. The admin
-- route requeues it: the row must leave `failed` (pending: a new run), and
-- once a healthy worker completes it, say `completed`, and GET
-- /transcribe/midi/{id}/ must answer the MIDI. Events of the dead run that
-- arrive late (a `claimed`, a `progress`, a `failed` record) must not move
-- the row back.

local support = require "spec.support.faults"
local server = require "spec.support.server"
local json = require "wtt.json"
local pg = require "wtt.pg"
local sys = require "wtt.sys"

describe("a requeued dead letter #redis #pg", function()
    local env

    setup(function()
        env = support.start()
    end)

    teardown(function()
        if env then
            env:stop()
        end
    end)

    local function in_list(list, id)
        for _, v in ipairs(env.r:call("LRANGE", env:key(list), 0, -1)) do
            if v == id then
                return true
            end
        end
        return false
    end

    it("completes in PostgreSQL too, and its MIDI is served", function()
        -- 1. dead-lettered: every download fails (nothing listens there)
        local closed = assert(sys.free_port())
        local bad = env:worker({ WTT_WEB_URL = "http://127.0.0.1:" .. closed,
                                 WTT_HTTP_RETRIES = "1" })
        local aid, tid = env:submit("guitar_nylon_single")
        local dead = env:wait_task(tid, function(h)
            return h.status == "failed"
        end, 60, "dead letter")
        assert.equal("3", dead.attempts)
        assert.is_true(in_list("task:failed", tid))
        local row = env:wait_row(aid, "failed", 15)
        assert.truthy(row.error_message)
        bad:kill()
        local dead_claim = tonumber(dead.claim)

        -- 2. requeued through the admin route: a new run, the row follows
        local res = assert(env:http("POST", "/_admin/queue/dead/" .. tid
                                    .. "/requeue/", {
            headers = { Authorization = "Bearer " .. server.ADMIN_TOKEN },
        }))
        assert.equal(200, res.status, res.body)
        local h = env:task(tid)
        assert.equal("pending", h.status)
        assert.equal(dead_claim + 1, tonumber(h.claim))
        assert.is_false(in_list("task:failed", tid))
        row = env:wait_row(aid, "pending", 15)
        assert.is_true(row.error_message == nil
                       or row.error_message == pg.null)

        -- 3. a healthy worker completes it; the row says so
        env:worker()
        env:wait_task(tid, function(t)
            return t.status == "completed"
        end, 120, "completion of the requeued run")
        row = env:wait_row(aid, "completed", 30)
        assert.truthy(row.midi_path)
        res = assert(env:http("GET", "/transcribe/midi/" .. aid .. "/"))
        assert.equal(200, res.status, res.body)
        assert.equal("MThd", res.body:sub(1, 4))
        res = assert(env:http("GET", "/transcribe/status/" .. aid .. "/"))
        assert.equal("completed", res.json.status)

        -- 4. late events of the dead run change nothing
        local done = tonumber(env:task(tid).claim)
        assert.is_true(done > dead_claim)
        env.r:call("PUBLISH", env:key("task:claimed"), json.encode({
            id = tid, status = "processing", attempts = 3, worker = "late",
            claim = dead_claim }))
        env.r:call("PUBLISH", env:key("task:progress:" .. tid), json.encode({
            id = tid, status = "processing", claim = dead_claim,
            progress = { done = 1, total = 9 } }))
        local sub = require("wtt.subscriber").new({
            db = env.db, q = require("wtt.queue").new(env.r,
                                                      { prefix = env.prefix }),
            cfg = {} })
        assert.is_true(sub:record_hash(tid, { status = "failed",
            claim = tostring(dead_claim), error = "late failure" }))
        assert.is_true(sub:record_hash(tid, { status = "failed",
            claim = tostring(done), error = "failed after completed" }))
        -- Web's subscriber handles its messages in order: once it has
        -- applied a claim published after the late events, it has seen them.
        local sentinel = require("wtt.service.tasks").new_task_id()
        assert(env.db:exec("INSERT INTO audio_midi (task_id) VALUES ($1)",
                           sentinel))
        env.r:call("PUBLISH", env:key("task:claimed"), json.encode({
            id = sentinel, status = "processing", attempts = 1,
            worker = "marker", claim = 1 }))
        assert.truthy(support.eventually(function()
            local s = env.db:query(
                "SELECT status FROM audio_midi WHERE task_id = $1", sentinel)
            return s and s[1] and s[1].status == "processing"
        end, 15, 0.05), "web's subscriber never applied the marker claim")
        assert(env.db:exec("DELETE FROM audio_midi WHERE task_id = $1",
                           sentinel))
        row = env:row(aid)
        assert.equal("completed", row.status)
        assert.equal(done, tonumber(row.task_claim))
        env:check_invariants(10)
    end)
end)
