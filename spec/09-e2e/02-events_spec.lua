-- The event stream (GET /transcribe/events/{id}/, docs/web.md) with
-- nothing simulated: PostgreSQL, redis-server, `wtt serve` with its
-- subscriber thread, and a real `wtt worker` that fetches the clip over
-- HTTP and runs the engine. The stream must show what the worker does, in
-- order, and end with the status the status route answers.

local helpers = require "spec.support.server"
local pgh = require "spec.support.pg"
local rh = require "spec.support.redis"
local sse = require "spec.support.sse"
local sys = require "wtt.sys"
local runtime = require "wtt.runtime"

local CLIP = helpers.FIXTURES .. "/clips/guitar_strum.wav"
local TOKEN = "spec-e2e-events-token-0123456789"

describe("the event stream of a real task #redis #pg", function()
    local pgsrv, rsrv, srv, tmp, worker_pid, worker_log

    setup(function()
        tmp = assert(sys.mkdtemp("wtt-e2e-events-"))
        assert(os.execute("mkdir -p '" .. tmp .. "/media'"))
        pgsrv = pgh.start()
        rsrv = rh.start({ args = { "--maxmemory-policy", "noeviction" } })
        local pid = assert(sys.spawn({ runtime.exe, "migrate" }, {
            env = { DATABASE_URL = pgsrv.url },
            stdout = tmp .. "/migrate.log", stderr = tmp .. "/migrate.log" }))
        local how, code = sys.wait(pid, 60)
        assert(how == "exited" and code == 0,
               "wtt migrate failed:\n" .. (sys.read_file(tmp .. "/migrate.log") or ""))
        srv = helpers.serve({
            routes = runtime.source_dir .. "/routes",
            env = {
                DATABASE_URL = pgsrv.url, REDIS_URL = rsrv.url,
                WTT_MEDIA_DIR = tmp .. "/media", WTT_WORKER_TOKEN = TOKEN,
                WTT_SUBSCRIBER_TICK_S = "0.2", WTT_KEY_PREFIX = false,
            },
        })
    end)

    teardown(function()
        if worker_pid then
            sys.kill(worker_pid, "TERM")
            if not sys.wait(worker_pid, 30) then
                sys.kill(worker_pid, "KILL")
                sys.wait(worker_pid, 5)
            end
        end
        if srv then srv:stop() end
        if rsrv then rsrv:stop() end
        if pgsrv then pgsrv:stop() end
        if tmp then sys.rmtree(tmp) end
    end)

    local function logs()
        return "\n--- serve ---\n" .. (srv and srv:log_text() or "")
            .. "\n--- worker ---\n" .. (worker_log and sys.read_file(worker_log) or "")
    end

    it("shows queued, processing, every window and completed, in order",
       function()
        local res = assert(srv:json("POST", "/transcribe/upload/", {
            multipart = { { name = "file", file = CLIP,
                            filename = "guitar_strum.wav",
                            content_type = "audio/wav" } },
        }))
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
        worker_log = tmp .. "/worker.log"
        worker_pid = assert(sys.spawn({ runtime.exe, "worker" }, {
            env = {
                REDIS_URL = rsrv.url, WTT_WEB_URL = srv.url,
                WTT_WORKER_TOKEN = TOKEN, WTT_DEVICE = "cpu",
                WTT_POLL_INTERVAL = "0.5", DATABASE_URL = false,
                WTT_KEY_PREFIX = false,
            },
            stdout = worker_log, stderr = worker_log,
        }))
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
