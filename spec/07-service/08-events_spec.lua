-- GET /transcribe/events/{id}/ (docs/web.md "The event stream") against a
-- real stack: PostgreSQL, redis-server, `wtt serve` with its subscriber
-- thread. The worker's steps are the queue's own scripts (wtt.queue:
-- claim, progress, complete, fail: what `wtt worker` calls), so what is
-- published is exactly what a worker publishes; the same stream with a
-- real `wtt worker` is in 09-events_worker_spec.lua and bench/web.sh.

local S = require "spec.support.service"
local helpers = require "spec.support.server"
local sse = require "spec.support.sse"
local json = require "wtt.json"
local queue = require "wtt.queue"
local sys = require "wtt.sys"

local eventually = helpers.eventually
local VIEWERS = 1000

describe("event streams #redis #pg", function()
    local e, q

    setup(function()
        assert(sse.raise_nofile(VIEWERS + 512) >= VIEWERS + 64,
               "this spec needs " .. VIEWERS + 64 .. " open files")
        e = S.start({ subscriber = true, serve_env = {
            WTT_SSE_HEARTBEAT_S = "1",
            WTT_SSE_BUFFER_KB = "8",
            -- every viewer of the spec comes from 127.0.0.1, as browsers
            -- behind one reverse proxy would; the limit stays at 256
            WTT_PER_IP_EXEMPT = "127.0.0.1",
            WTT_CONN_LIMIT = "1500",
        } })
        q = queue.new(e.r, { prefix = S.PREFIX })
    end)
    teardown(function()
        if e then e:stop() end
    end)

    local function log()
        return "\n--- serve ---\n" .. e.srv:log_text()
    end

    -- An upload with a task enqueued: id, task_id.
    local function new_task()
        local up = assert(e:upload(S.wav(0.3)))
        assert.equal(201, up.status, up.body)
        local id = up.json.audio_midi_id
        local g = assert(e:generate(id, {}))
        assert.equal(202, g.status, g.body)
        return id, g.json.task_id
    end

    -- Claims the queue's next task, which must be `task_id`; its claim.
    local function claim(task_id)
        local t = assert(q:claim("spec-worker"))
        assert.equal(task_id, t.id)
        return t.claim
    end

    local function wait(clients, done, timeout)
        return sse.wait(clients, done, timeout or 10)
    end

    -- Opens a stream and waits for its first event (the current state), so
    -- that what the spec publishes next is live for it.
    local function open(id, opts)
        local c = assert(sse.open(e.srv.port, "/transcribe/events/" .. id
                                              .. "/", opts))
        if not (opts and opts.nowait) then
            assert.truthy(wait({ c }, function()
                return #c.events >= 1 or c.ended
            end), "no first event\n" .. e.srv:log_text())
        end
        return c
    end

    -- The events of `c` named `name`, their data decoded.
    local function data_of(c, name)
        local out = {}
        for _, ev in ipairs(c:named(name)) do
            out[#out + 1] = sse.data(ev)
        end
        return out
    end

    local function last_named(c, name)
        local list = c:named(name)
        return list[#list]
    end

    -- The (run, phase) of every event's id, checked increasing.
    local function assert_ids_increase(c)
        local prev_run, prev_phase
        for _, ev in ipairs(c.events) do
            local run, phase = ev.id:match("^(%d+)(%d%d%d%d%d%d)$")
            assert.truthy(run, "bad id " .. tostring(ev.id))
            run, phase = tonumber(run), tonumber(phase)
            if prev_run then
                assert.is_true(run > prev_run or (run == prev_run
                                                  and phase > prev_phase),
                               "ids not increasing: " .. ev.id)
            end
            prev_run, prev_phase = run, phase
        end
    end

    local function numsub(channel)
        return e.r:call("PUBSUB", "NUMSUB", channel)[2]
    end

    local CHANNELS = { "task:claimed", "task:completed", "task:failed",
                       "task:new" }

    -- NUMSUB of the shared channels and of `task_id`'s progress channel,
    -- and NUMPAT.
    local function subscriptions(task_id)
        local s = { numpat = e.r:call("PUBSUB", "NUMPAT"),
                    progress = numsub(e:key("task:progress:" .. task_id)) }
        for _, ch in ipairs(CHANNELS) do
            s[ch] = numsub(e:key(ch))
        end
        return s
    end

    local function open_fds()
        return #assert(sys.listdir("/proc/" .. e.srv.pid .. "/fd"))
    end

    -- True once the subscriptions are back to `before` (within `timeout` s).
    local function subscriptions_back(task_id, before, timeout)
        return eventually(function()
            local now = subscriptions(task_id)
            for k, v in pairs(before) do
                if now[k] ~= v then
                    return false
                end
            end
            return true
        end, timeout)
    end


    it("answers 404 for an unknown id, JSON like every error", function()
        for _, id in ipairs({ "8a1c2d3e-0000-4000-8000-000000000000",
                              "not-a-uuid" }) do
            local res = assert(e.srv:json("GET", "/transcribe/events/" .. id
                                                 .. "/"))
            assert.equal(404, res.status)
            assert.equal("not_found", res.json.error)
        end
    end)

    it("sends the state first, then claim, progress and completed in order, "
       .. "and ends", function()
        local id, task_id = new_task()
        local c = open(id)
        assert.equal(200, c.status)
        assert.matches("^text/event%-stream", c.headers["content-type"])
        assert.equal("no-store", c.headers["cache-control"])
        assert.equal("no", c.headers["x-accel-buffering"])
        assert.equal(2000, c.retry)
        local first = sse.data(c.events[1])
        assert.equal("state", c.events[1].event)
        assert.equal("queued", first.status)
        assert.equal(1, first.position)

        local cl = claim(task_id)
        assert.truthy(wait({ c }, function()
            return #c:named("state") >= 2
        end), log())
        assert.equal("processing", data_of(c, "state")[2].status)
        for d = 1, 3 do
            assert(q:progress(task_id, cl, d, 3))
        end
        assert.truthy(wait({ c }, function()
            return #c:named("progress") == 3
        end), log())
        assert(q:complete(task_id, cl, { n_notes = 0 }))
        assert.truthy(wait({ c }, function() return c.ended end), log())
        assert.equal("end", c.ended)

        local names = {}
        for _, ev in ipairs(c.events) do
            names[#names + 1] = ev.event
        end
        assert.same({ "state", "state", "progress", "progress", "progress",
                      "completed" }, names)
        local p = data_of(c, "progress")
        for d = 1, 3 do
            assert.equal(d, p[d].done)
            assert.equal(3, p[d].total)
        end
        assert.equal(json.null, p[1].eta_s)
        assert.is_number(p[3].eta_s)
        -- `completed` carries what the status route answers
        local done = sse.data(last_named(c, "completed"))
        local status = assert(e.srv:json("GET", "/transcribe/status/" .. id
                                                .. "/")).json
        assert.same(status, done)
        assert.equal("completed", done.status)
        assert_ids_increase(c)

        -- A late subscriber gets the end at once; one that has it already
        -- is told to stop reconnecting.
        local late = open(id)
        assert.truthy(wait({ late }, function() return late.ended end), log())
        assert.equal(1, #late.events)
        assert.equal("completed", late.events[1].event)
        assert.equal(c.events[#c.events].id, late.events[1].id)
        local again = open(id, { last_event_id = late.events[1].id,
                                 nowait = true })
        assert.truthy(wait({ again }, function() return again.ended end))
        assert.equal(204, again.status)
    end)

    it("follows a queued task's place in the line", function()
        local _, first = new_task()
        local id, second = new_task()
        local c = open(id)
        local s = sse.data(c.events[1])
        assert.equal("queued", s.status)
        assert.equal(2, s.position)
        local cl = claim(first)
        assert.truthy(wait({ c }, function()
            return #c:named("state") >= 2
        end, 10), log())
        s = data_of(c, "state")[2]
        assert.equal("queued", s.status)
        assert.equal(1, s.position)
        local cl2 = claim(second)
        assert.truthy(wait({ c }, function()
            return #c:named("state") >= 3
        end), log())
        assert.equal("processing", data_of(c, "state")[3].status)
        assert_ids_increase(c)
        assert(q:complete(first, cl, {}))
        assert(q:complete(second, cl2, {}))
        assert.truthy(wait({ c }, function() return c.ended end), log())
    end)

    it("resumes after Last-Event-ID without repeating what the client has",
       function()
        local id, task_id = new_task()
        local a = open(id)
        local cl = claim(task_id)
        assert(q:progress(task_id, cl, 1, 4))
        assert(q:progress(task_id, cl, 2, 4))
        assert.truthy(wait({ a }, function()
            return #a:named("progress") == 2
        end), log())
        local seen = a:named("progress")[1]       -- the client got 1 of 4
        a:close()

        local b = open(id, { last_event_id = seen.id })
        assert(q:progress(task_id, cl, 3, 4))
        assert.truthy(wait({ b }, function()
            return #b:named("progress") == 2
        end), log())
        -- no state (older than 1 of 4), no repeat of 1 of 4
        local p = data_of(b, "progress")
        assert.same({ 2, 3 }, { p[1].done, p[2].done })
        assert.equal(0, #b:named("state"))
        assert.equal(2, #b.events)
        assert.truthy(b.events[1].id > seen.id)
        assert(q:complete(task_id, cl, {}))
        assert.truthy(wait({ b }, function() return b.ended end), log())
        assert.equal("completed", b.events[#b.events].event)
        assert_ids_increase(b)
    end)

    it("lets go of the subscriptions and descriptors of clients that leave "
       .. "mid-task", function()
        local id, task_id = new_task()
        local cl = claim(task_id)
        assert(q:progress(task_id, cl, 1, 10))
        -- every serving thread has made its own database and Redis
        -- connections (on first use) before descriptors are counted
        local warm = {}
        for i = 1, 8 do
            warm[i] = open(id)
        end
        for _, c in ipairs(warm) do
            c:close()
        end
        local before = subscriptions(task_id)
        assert.truthy(eventually(function()
            before = subscriptions(task_id)
            return before.progress == 0
        end, 5))
        local fds = open_fds()

        local clients = {}
        for i = 1, 5 do
            clients[i] = open(id, { nowait = true })
        end
        assert.truthy(wait(clients, function()
            for _, c in ipairs(clients) do
                if #c:named("progress") < 1 then
                    return false
                end
            end
            return true
        end), log())
        -- five viewers, one subscription each: the process's one hub
        local during = subscriptions(task_id)
        assert.equal(1, during.progress)
        for _, ch in ipairs(CHANNELS) do
            assert.equal(before[ch] + 1, during[ch], ch)
        end
        assert.equal(before.numpat, during.numpat)

        -- They leave while the task runs, between two events (their
        -- streams are parked): the server notices the hang-up at once.
        for _, c in ipairs(clients) do
            c:close()
        end
        assert.truthy(subscriptions_back(task_id, before, 5), "subscriptions left: " .. json.encode(subscriptions(task_id))
                 .. log())
        assert.truthy(eventually(function() return open_fds() <= fds end, 5),
                      "descriptors: " .. open_fds() .. " > " .. fds)
        assert(q:complete(task_id, cl, {}))
    end)

    it("sends a retry as a new run, and a final failure as `failed`",
       function()
        local id, task_id = new_task()
        local c = open(id)
        local cl = claim(task_id)
        assert(q:progress(task_id, cl, 1, 2))
        assert.equal("retry", q:fail(task_id, cl, "device lost", true))
        assert.truthy(wait({ c }, function()
            local s = data_of(c, "state")
            return #s >= 3 and s[#s].status ~= "processing"
        end), log())
        local states = data_of(c, "state")
        assert.equal("queued", states[#states].status)
        -- the retry waits for its backoff; claim it now
        e.r:call("HDEL", e:key("task:" .. task_id), "retry_at")
        local cl2 = claim(task_id)
        assert.is_true(tonumber(cl2) > tonumber(cl))
        assert(q:progress(task_id, cl2, 1, 2))
        assert.equal("dead", q:fail(task_id, cl2, "decode failed: bad audio",
                                    false))
        assert.truthy(wait({ c }, function() return c.ended end), log())
        assert.equal("end", c.ended)
        local failed = c.events[#c.events]
        assert.equal("failed", failed.event)
        assert.equal("decode failed: bad audio", sse.data(failed).error)
        assert.equal(1, #c:named("failed"))
        -- the second run's progress came after the first run's
        assert.equal(2, #c:named("progress"))
        assert_ids_increase(c)
    end)

    it("drops a client that falls behind, without holding up the others, "
       .. "and it resumes with Last-Event-ID", function()
        local id, task_id = new_task()
        local cl = claim(task_id)
        local fast = open(id)
        local slow = open(id, { rcvbuf = 2048 })
        -- A flood of progress while `slow` reads nothing: its socket
        -- fills, then its 8 KB buffer, and it is cut; `fast` gets all.
        local N = 4000
        local channel = e:key("task:progress:" .. task_id)
        local sent = 0
        while sent < N do
            -- bursts a reader that keeps up absorbs (an 8 KB buffer holds
            -- about 50 of these)
            local n = math.min(20, N - sent)
            assert(e.r:pipeline(function(p)
                for d = sent + 1, sent + n do
                    p:call("PUBLISH", channel, json.encode({
                        id = task_id, status = "processing", claim = cl,
                        progress = { done = d, total = N } }))
                end
            end))
            sent = sent + n
            -- `fast` reads as a browser does
            wait({ fast }, function()
                return #fast:named("progress") >= sent
            end, 10)
        end
        e.r:call("HSET", e:key("task:" .. task_id), "progress", N .. "/" .. N)
        assert.equal(N, #fast:named("progress"), log())
        local p = data_of(fast, "progress")
        for d = 1, N do
            assert.equal(d, p[d].done)
        end
        -- `slow` now reads: what the kernel held, then the cut
        assert.truthy(wait({ slow }, function() return slow.ended end, 10),
                      "the slow client was not dropped" .. log())
        assert.not_equal("end", slow.ended)
        local got = #slow:named("progress")
        assert.is_true(got < N, "slow got " .. got)
        assert.truthy(slow.last_id)

        -- it reconnects where it stopped, as EventSource does
        local back = open(id, { last_event_id = slow.last_id })
        assert.truthy(wait({ back }, function()
            return #back:named("progress") >= 1
        end), log())
        assert.equal(N, sse.data(last_named(back, "progress")).done)
        assert.is_nil(next(back:named("state")))
        assert(q:complete(task_id, cl, {}))
        assert.truthy(wait({ back, fast }, function()
            return back.ended and fast.ended
        end), log())
        assert.equal("completed", back.events[#back.events].event)
        assert.equal("completed", fast.events[#fast.events].event)
    end)

    it("serves " .. VIEWERS .. " viewers of one task from one address, "
       .. "every one getting every event in order", function()
        local id, task_id = new_task()
        local before = subscriptions(task_id)
        local fds = open_fds()
        local clients = {}
        for i = 1, VIEWERS do
            clients[i] = open(id, { nowait = true })
        end
        local function all(pred)
            return sse.all(clients, pred)
        end
        assert.truthy(wait(clients, all(function(c)
            return #c.events >= 1
        end), 60), "not every viewer got the state" .. log())
        assert.equal(1, subscriptions(task_id).progress)

        local cl = claim(task_id)
        for d = 1, 5 do
            assert(q:progress(task_id, cl, d, 5))
        end
        assert(q:complete(task_id, cl, {}))
        assert.truthy(wait(clients, all(function(c)
            return c.ended
        end), 60), "not every viewer got to the end" .. log())
        for i, c in ipairs(clients) do
            assert.equal("end", c.ended, "viewer " .. i)
            local names = {}
            for _, ev in ipairs(c.events) do
                names[#names + 1] = ev.event
            end
            assert.same({ "state", "state", "progress", "progress",
                          "progress", "progress", "progress", "completed" },
                        names, "viewer " .. i)
            local p = data_of(c, "progress")
            for d = 1, 5 do
                assert.equal(d, p[d].done, "viewer " .. i)
            end
            assert_ids_increase(c)
            c:close()      -- as a page does once its task is done
        end
        assert.truthy(subscriptions_back(task_id, before, 10),
                      json.encode(subscriptions(task_id)))
        assert.truthy(eventually(function() return open_fds() <= fds end, 10),
                      "descriptors: " .. open_fds() .. " > " .. fds)
    end)
end)
