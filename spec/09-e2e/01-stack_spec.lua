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
local real_stack = require "spec.support.real_stack"
local json = require "wtt.json"
local sys = require "wtt.sys"
local midi = require "wtt.midi"

local CLIP = helpers.FIXTURES .. "/clips/guitar_strum.wav"
local wtt = real_stack.wtt


-- Once with each media store (WTT_MEDIA_STORE, docs/operations.md).
for _, store in ipairs({ "dir", "pg" }) do
    describe("the stack end to end, media store " .. store .. " #redis #pg",
             function()
        local stack, srv, rsrv, tmp

        setup(function()
            stack = real_stack.start({ name = "e2e", redis = { appendonly = true },
                                       serve_env = { WTT_MEDIA_STORE = store } })
            srv, rsrv, tmp = stack.srv, stack.redis, stack.tmp
            stack:start_worker()
        end)

        teardown(function()
            if stack then stack:stop() end
        end)

        local function logs()
            return stack:logs()
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
            local res = stack:upload(CLIP)
            assert.equal(201, res.status, res.body)
            local id = res.json.audio_midi_id
            assert.is_string(id)

            -- 2. generate, with a subscription to every progress channel made
            -- first (the task id, hence its channel, is known only after
            -- generate, and the worker may start at once).
            local r = assert(rsrv:client())
            local task_id, status, events, seen_done = nil, nil, {}, nil
            local deadline = sys.now() + 120
            local ok, err = r:subscribe(nil,
                { stack.prefix .. "task:progress:*" },
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
                assert.equal(stack.prefix .. "task:progress:" .. task_id,
                             ev.channel)
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
end
