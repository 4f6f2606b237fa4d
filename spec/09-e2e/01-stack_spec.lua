-- The original system's "verified end-to-end test" as a spec, with nothing
-- simulated: a real redis-server (AOF, noeviction) and PostgreSQL, `wtt
-- migrate`, `wtt serve` with the repository's routes and its subscriber
-- thread, and a real `wtt worker` process that downloads the audio over HTTP
-- and runs the engine.
--
--   upload -> generate -> progress events on task:progress:{task_id}
--   -> status completed (recorded in PostgreSQL by the subscriber)
--   -> MIDI download whose notes are those of `wtt transcribe` on the clip

local helpers = require "spec.support.server"
local pgh = require "spec.support.pg"
local rh = require "spec.support.redis"
local json = require "wtt.json"
local sys = require "wtt.sys"
local midi = require "wtt.midi"
local runtime = require "wtt.runtime"

local CLIP = helpers.FIXTURES .. "/clips/guitar_strum.wav"
local TOKEN = "spec-e2e-worker-token-0123456789"


-- Runs `wtt ARGS...` to completion; returns its exit code and output.
local function wtt(args, env, log)
    local argv = { runtime.exe }
    for _, a in ipairs(args) do
        argv[#argv + 1] = a
    end
    local pid = assert(sys.spawn(argv, { env = env, stdout = log,
                                         stderr = log }))
    local how, code = sys.wait(pid, 120)
    if not how then
        sys.kill(pid, "KILL")
        sys.wait(pid, 5)
    end
    return how == "exited" and code or -1, sys.read_file(log) or ""
end


describe("the stack end to end #redis #pg", function()
    local pgsrv, rsrv, srv, tmp, media
    local worker_pid, worker_log

    setup(function()
        tmp = assert(sys.mkdtemp("wtt-e2e-"))
        media = tmp .. "/media"
        assert(os.execute("mkdir -p '" .. media .. "'"))
        pgsrv = pgh.start()
        rsrv = rh.start({ appendonly = true,
                          args = { "--maxmemory-policy", "noeviction" } })

        local code, out = wtt({ "migrate" }, { DATABASE_URL = pgsrv.url },
                              tmp .. "/migrate.log")
        assert(code == 0, "wtt migrate failed:\n" .. out)

        srv = helpers.serve({
            routes = runtime.source_dir .. "/routes",
            env = {
                DATABASE_URL = pgsrv.url,
                REDIS_URL = rsrv.url,
                WTT_MEDIA_DIR = media,
                WTT_WORKER_TOKEN = TOKEN,
                WTT_SUBSCRIBER_TICK_S = "0.2",
                WTT_KEY_PREFIX = false,
            },
        })
        local ready = helpers.eventually(function()
            local res = srv:request("GET", "/readyz")
            return res and res.status == 200
        end, 20)
        assert(ready, "wtt serve not ready:\n" .. srv:log_text())

        -- The worker gets no DATABASE_URL: it reaches web over HTTP only.
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
            .. "\n--- worker ---\n" .. (sys.read_file(worker_log) or "")
    end

    it("upload -> generate -> progress -> completed -> the engine's MIDI",
       function()
        -- What the engine makes of the clip, offline.
        local ref_dir = tmp .. "/ref"
        assert(os.execute("mkdir -p '" .. ref_dir .. "'"))
        local code, out = wtt({ "transcribe", CLIP, "-o", ref_dir, "--midi",
                                "--quiet" }, nil, tmp .. "/transcribe.log")
        assert(code == 0, "wtt transcribe failed:\n" .. out)
        local ref = assert(midi.decode(assert(sys.read_file(
            ref_dir .. "/guitar_strum.mid"))))
        assert.is_true(#ref.notes > 0)

        -- 1. upload
        local res = assert(srv:json("POST", "/transcribe/upload/", {
            multipart = { { name = "file", file = CLIP,
                            filename = "guitar_strum.wav",
                            content_type = "audio/wav" } },
        }))
        assert.equal(201, res.status, res.body)
        local id = res.json.audio_midi_id
        assert.is_string(id)

        -- 2. generate, with a subscription to every progress channel made
        -- first (the task id, hence its channel, is known only after
        -- generate, and the worker may start at once).
        local r = assert(rsrv:client())
        local task_id, status, events, seen_done = nil, nil, {}, nil
        local deadline = sys.now() + 120
        local ok, err = r:subscribe(nil, { "task:progress:*" },
            function(_, channel, payload)
                events[#events + 1] = { channel = channel,
                                        msg = json.decode(payload) }
            end, {
                tick = 0.05,
                on_ready = function()
                    local g = assert(srv:json("POST", "/transcribe/generate/", {
                        headers = { ["Content-Type"] = "application/json" },
                        body = json.encode({ audio_midi_id = id,
                                             options = {} }),
                    }))
                    assert.equal(202, g.status, g.body)
                    task_id = g.json.task_id
                    assert.is_string(task_id)
                end,
                on_tick = function()
                    if seen_done then
                        -- a little longer, for messages already on the wire
                        return sys.now() < seen_done + 0.3
                    end
                    -- 3. poll the status, as the original's client does
                    local s = srv:json("GET", "/transcribe/status/" .. id .. "/")
                    if s and s.json and (s.json.status == "completed"
                                         or s.json.status == "failed") then
                        status = s.json
                        seen_done = sys.now()
                    end
                    if sys.now() > deadline then
                        error("task not done after 120 s" .. logs())
                    end
                end,
            })
        r:close()
        assert(ok, err)
        assert.is_table(status, logs())
        assert.equal("completed", status.status, json.encode(status) .. logs())
        assert.is_true(status.has_midi)
        assert.equal(task_id, status.task_id)
        assert.equal(#ref.notes, status.note_count)

        -- progress: on the task's channel, `done` rising to `total` (the
        -- engine runs windows in batches and reports after each batch)
        assert.is_true(#events > 0, "no progress events" .. logs())
        local total = events[#events].msg.progress.total
        local last = 0
        for _, ev in ipairs(events) do
            assert.equal("task:progress:" .. task_id, ev.channel)
            assert.equal(task_id, ev.msg.id)
            local p = ev.msg.progress
            assert.is_table(p, json.encode(ev.msg))
            assert.is_true(p.done > last, json.encode(ev.msg))
            assert.equal(total, p.total)
            last = p.done
        end
        assert.equal(total, last)

        -- 4. the MIDI file: the engine's notes
        res = assert(srv:request("GET", "/transcribe/midi/" .. id .. "/"))
        assert.equal(200, res.status, res.body)
        assert.matches("audio/midi", res.headers["content-type"] or "")
        local got = assert(midi.decode(res.body))
        assert.equal(#ref.notes, #got.notes)
        for i, n in ipairs(ref.notes) do
            local g = got.notes[i]
            assert.equal(n.pitch, g.pitch)
            assert.equal(n.velocity, g.velocity)
            assert.near(n.start_s, g.start_s, 1e-6)
            assert.near(n.end_s, g.end_s, 1e-6)
        end
        assert.equal(#ref.bends, #got.bends)
    end)
end)
