-- Worker faults against the real stack (docs/reliability.md W1, W2, W4, W5):
-- real PostgreSQL, redis-server, `wtt serve` (routes, subscriber, reaper,
-- reconciler) and `wtt worker` processes transcribing real clips. Tasks are
-- made through the HTTP routes (upload + generate). The visibility timeout
-- is 1.5 s, heartbeats and reaps every 0.2 s; WTT_WORKER_TEST_WINDOW_SLEEP
-- makes a 4 s clip a task of a few seconds. The invariant checker
-- (spec/support/invariants.lua) runs after every scenario.

local support = require "spec.support.faults"
local json = require "wtt.json"
local midi = require "wtt.midi"
local sys = require "wtt.sys"

local VT = support.VT_MS / 1000

describe("worker faults #redis #pg", function()
    local env

    setup(function()
        env = support.start()
    end)

    teardown(function()
        if env then
            env:stop()
        end
    end)

    -- Whatever happened, no worker outlives its scenario.
    after_each(function()
        if env then
            env:kill_workers()
        end
    end)

    local function check_invariants()
        env:check_invariants(5)
    end

    local function completed(h)
        return h.status == "completed"
    end

    local function in_list(key, id)
        for _, v in ipairs(env.r:call("LRANGE", env:key(key), 0, -1)) do
            if v == id then
                return true
            end
        end
        return false
    end

    -- The MIDI served for row `id` is a MIDI file with `n` notes.
    local function midi_served(id, n)
        local res = assert(env:http("GET", "/transcribe/midi/" .. id .. "/"))
        assert.equal(200, res.status, res.body)
        local doc = assert(midi.decode(res.body))
        assert.equal(n, #doc.notes)
        return res.body
    end


    it("W1: kill -9 mid-task -> requeued after the visibility timeout and "
       .. "completed once by another worker", function()
        local id, tid = env:submit("guitar_nylon_single")
        local a = env:worker({ WTT_WORKER_TEST_WINDOW_SLEEP = "1" })
        local h1 = env:wait_task(tid, support.running_on(a, 1), 20,
                                 "first progress on worker A")
        assert.equal("1", h1.attempts)
        a:kill()                                      -- SIGKILL, no cleanup
        local killed_at = sys.now()
        local b = env:worker()
        local h = env:wait_task(tid, completed, 20, "completion by B")
        -- Only the visibility timeout hands a killed claim on: no earlier
        -- than VT after the last heartbeat (at most 0.2 s before the kill).
        -- No upper bound: wait_task's limit guards a hang, and a loaded
        -- machine makes any tighter one flaky.
        assert.is_true(sys.now() - killed_at >= VT - 0.5,
                       "rerun after only " .. (sys.now() - killed_at) .. " s")
        assert.equal("2", h.attempts)
        assert.is_true(tonumber(h.claim) > tonumber(h1.claim))
        assert.equal(1, b:await("task.completed id=" .. tid), b:text())
        local result = json.decode(h.result)

        local row = env:wait_row(id, "completed")
        assert.equal(tid, row.task_id)
        assert.equal(result.n_notes, row.note_count)
        assert.equal(result.midi, row.midi_path)
        midi_served(id, result.n_notes)

        -- exactly one completion, by B; A's heartbeat key expires (TTL)
        assert.equal(1, b:await("task.completed"), b:text())
        assert.equal(0, a:count("task.completed"))
        assert.equal(1, #env:media_files("mid"))
        assert.truthy(support.eventually(function()
            return env.r:call("EXISTS", env:key("worker:" .. a.id)) == 0
        end, 3), "worker:" .. a.id .. " outlived its TTL")
        check_invariants()
        b:signal("TERM")
        assert.same({ "exited", 0 }, { b:wait(10) })
    end)


    it("W2: a worker SIGSTOPped past the timeout is fenced after SIGCONT: "
       .. "its late result is refused and the newer one stands", function()
        local id, tid = env:submit("guitar_steel_single")
        local a = env:worker({ WTT_WORKER_TEST_WINDOW_SLEEP = "0.6" })
        local h1 = env:wait_task(tid, support.running_on(a, 1), 20,
                                 "first progress on worker A")
        a:signal("STOP")
        local b = env:worker()
        local h = env:wait_task(tid, completed, 20, "completion by B")
        assert.equal("2", h.attempts)
        assert.are_not.equal(h1.claim, h.claim)
        assert.equal(1, b:await("task.completed id=" .. tid), b:text())
        local row = env:wait_row(id, "completed")
        local files = env:media_files()
        local served = midi_served(id, row.note_count)

        -- A's claim is refused by web's result route ...
        local late_midi = assert(midi.encode({ { start_s = 0, end_s = 0.5,
                                                 pitch = 61,
                                                 velocity = 90 } }))
        local res = assert(env:http("POST", "/transcribe/_result/" .. tid
                                    .. "/", {
            headers = { Authorization = "Bearer " .. support.TOKEN },
            multipart = {
                { name = "claim", value = tostring(h1.claim) },
                { name = "midi", data = late_midi, filename = "late.mid",
                  content_type = "audio/midi" },
                { name = "notes", data = json.encode({ notes = {} }),
                  filename = "late.json",
                  content_type = "application/json" },
            },
        }))
        assert.equal(409, res.status, res.body)
        assert.equal("stale_claim", res.json and res.json.error)
        -- ... and by the queue (complete with the old claim)
        local q = require("wtt.queue").new(env.r, { prefix = env.prefix })
        local ok, err = q:complete(tid, h1.claim, { midi = "late.mid" })
        assert.is_nil(ok)
        assert.equal("stale", err)

        -- A resumes, finds its claim stale and drops the task.
        a:signal("CONT")
        assert.truthy(support.eventually(function()
            return a:count("task.lost") >= 1
        end, 10), "A did not notice its lost claim:\n" .. a:text())

        -- The newer result stands: hash, row and files unchanged.
        local h2 = env:task(tid)
        assert.equal("completed", h2.status)
        assert.equal(h.claim, h2.claim)
        assert.equal(h.result, h2.result)
        local row2 = env:row(id)
        for _, k in ipairs({ "status", "midi_path", "notes_path",
                             "posteriors_path", "note_count", "task_id" }) do
            assert.equal(row[k], row2[k], k)
        end
        assert.equal(tostring(row.updated_at), tostring(row2.updated_at))
        assert.same(files, env:media_files())
        assert.equal(served, midi_served(id, row.note_count))
        check_invariants()

        -- A lives on and stops cleanly; its whole log never completed the
        -- task.
        a:signal("TERM")
        assert.same({ "exited", 0 }, { a:wait(10) })
        assert.equal(0, a:count("task.completed"))
        b:signal("TERM")
        assert.same({ "exited", 0 }, { b:wait(10) })
    end)


    it("W2: a SIGSTOPped worker resumed while the second still runs the "
       .. "task is fenced at once; the second completes it, once", function()
        local id, tid = env:submit("guitar_steel_single")
        local a = env:worker({ WTT_WORKER_TEST_WINDOW_SLEEP = "0.6" })
        local h1 = env:wait_task(tid, support.running_on(a, 1), 20,
                                 "first progress on worker A")
        a:signal("STOP")
        -- B takes the task over after the visibility timeout and is held
        -- in it (slow windows) while A comes back.
        local b = env:worker({ WTT_WORKER_TEST_WINDOW_SLEEP = "3" })
        local h2 = env:wait_task(tid, support.running_on(b, 1), 20,
                                 "progress on worker B")
        assert.equal("2", h2.attempts)
        assert.are_not.equal(h1.claim, h2.claim)
        a:signal("CONT")
        assert.truthy(support.eventually(function()
            return a:count("task.lost") >= 1
        end, 10), "A did not notice its lost claim:\n" .. a:text())
        -- A gave up while B still ran the task (B sleeps 3 s a window;
        -- A hears of it at its next heartbeat): B's claim stands.
        local mid = env:task(tid)
        assert.equal("processing", mid.status)
        assert.equal(h2.claim, mid.claim)
        local h = env:wait_task(tid, completed, 30, "completion by B")
        assert.equal(h2.claim, h.claim)
        assert.equal(1, b:await("task.completed id=" .. tid), b:text())
        assert.equal(0, a:count("task.completed"))
        env:wait_row(id, "completed")
        check_invariants()
        a:signal("TERM")
        assert.same({ "exited", 0 }, { a:wait(10) })
    end)

    it("W4: SIGTERM during inference (grace 0) -> the task is released and "
       .. "finished by another worker; the first exits 0", function()
        local id, tid = env:submit("guitar_strum")
        local a = env:worker({ WTT_WORKER_TEST_WINDOW_SLEEP = "0.6",
                               WTT_SHUTDOWN_GRACE = "0" })
        env:wait_task(tid, support.running_on(a, 1), 20,
                      "first progress on worker A")
        a:signal("TERM")
        local how, code = a:wait(10)
        assert.same({ "exited", 0 }, { how, code }, a:text())
        assert.equal(1, a:count("task.released"), a:text())

        -- Handed back at once (not by the reaper), attempt not charged.
        local h = env:task(tid)
        assert.equal("pending", h.status)
        assert.equal("0", h.attempts)
        assert.is_true(in_list("task:queue", tid)
                       or in_list("task:queue:priority", tid))
        assert.is_nil((h.error or ""):find("timed out", 1, true))
        assert.equal(0, env.r:call("EXISTS", env:key("worker:" .. a.id)))
        check_invariants()

        local b = env:worker()
        h = env:wait_task(tid, completed, 20, "completion by B")
        assert.equal("1", h.attempts)
        assert.equal(1, b:await("task.completed id=" .. tid), b:text())
        local row = env:wait_row(id, "completed")
        midi_served(id, row.note_count)
        assert.equal(0, a:count("task.completed"))
        check_invariants()
        b:signal("TERM")
        assert.same({ "exited", 0 }, { b:wait(10) })
    end)


    it("W5: undecodable or missing audio fails for good at the first "
       .. "attempt; the worker goes on", function()
        -- Passes upload's checks, then rots on disk: decoding fails.
        local bad_id = env:upload("guitar_fast_run")
        local name = env:row(bad_id).audio_path
        local bytes = assert(sys.read_file(env.media .. "/" .. name))
        assert(sys.write_file(env.media .. "/" .. name, bytes:sub(1, 12)
                              .. string.rep("\255\0garbage", 2000)))
        local bad_tid = env:generate(bad_id)
        -- Points to a media name that is gone (404).
        local gone_id = env:upload("piano_chords")
        os.remove(env.media .. "/" .. env:row(gone_id).audio_path)
        local gone_tid = env:generate(gone_id)

        local w = env:worker()
        for _, t in ipairs({ { bad_id, bad_tid }, { gone_id, gone_tid } }) do
            local h = env:wait_task(t[2], function(x)
                return x.status == "failed"
            end, 20, "dead letter")
            assert.equal("1", h.attempts)
            assert.is_true(in_list("task:failed", t[2]))
            local row = env:wait_row(t[1], "failed")
            assert.is_string(row.error_message)
            assert.equal(h.error, row.error_message)
        end
        assert.matches("404", env:row(gone_id).error_message)
        assert.matches("retryable=false", w:text(), 1, true)

        -- No loop: nothing claims them again; the worker still serves.
        local good_id, good_tid = env:submit("guitar_bend")
        env:wait_task(good_tid, completed, 20, "completion after poison")
        env:wait_row(good_id, "completed")
        assert.equal("1", env:task(bad_tid).attempts)
        assert.equal("1", env:task(gone_tid).attempts)
        assert.equal(2, w:count("task.failed"))
        check_invariants()
        w:signal("TERM")
        assert.same({ "exited", 0 }, { w:wait(10) })
    end)


    it("W5: a poison file that crashes its worker every time, beside 20 "
       .. "healthy tasks: the 20 complete on their first attempt, the "
       .. "poison is dead-lettered after 3 crashes, no loop", function()
        -- Two workers kept running as systemd's Restart= would: one that
        -- dies is replaced. The poison is queued first.
        local poison_id, poison_tid = env:submit("bass_line")
        local poison = env:row(poison_id).audio_path
        local healthy = {}
        for i = 1, 20 do
            local _, tid = env:submit(i % 2 == 0 and "guitar_nylon_single"
                                      or "guitar_steel_single")
            healthy[#healthy + 1] = tid
        end
        local slots, crashes = {}, 0
        local function start()
            return env:worker({ WTT_WORKER_TEST_CRASH_ON = poison })
        end
        slots[1], slots[2] = start(), start()
        local function all_done()
            for _, tid in ipairs(healthy) do
                if env:task(tid).status ~= "completed" then
                    return false
                end
            end
            return env:task(poison_tid).status == "failed"
        end
        local done = support.eventually(function()
            for i, w in ipairs(slots) do
                local how, sig = w:wait(0)
                if how then
                    assert.same({ "signaled", 9 }, { how, sig }, w:text())
                    crashes = crashes + 1
                    slots[i] = start()
                end
            end
            return all_done()
        end, 120, 0.1)
        assert.truthy(done, "not all done after 120 s; crashes " .. crashes
                      .. "\n" .. env:logs())
        for _, tid in ipairs(healthy) do
            assert.equal("1", env:task(tid).attempts, tid)
        end
        local h = env:task(poison_tid)
        assert.equal("3", h.attempts)
        assert.is_true(in_list("task:failed", poison_tid))
        env:wait_row(poison_id, "failed")
        -- No loop: three claims, three crashes, and nothing after the dead
        -- letter (the workers now idle, alive).
        assert.equal(3, crashes)
        sys.sleep(2 * VT)
        for _, w in ipairs(slots) do
            assert.is_nil((w:wait(0)), w:text())
        end
        check_invariants()
    end)

    it("W5: a task that kills its worker every time is dead-lettered "
       .. "after max attempts (counted at claim), no loop", function()
        local id, tid = env:submit("bass_line")
        for n = 1, 3 do
            local w = env:worker({ WTT_WORKER_TEST_WINDOW_SLEEP = "1" })
            local h = env:wait_task(tid, support.running_on(w, 1), 20,
                                    "claim #" .. n)
            assert.equal(tostring(n), h.attempts)
            w:kill()
        end
        -- The third claim expires: max attempts reached, dead letter.
        local h = env:wait_task(tid, function(x)
            return x.status == "failed"
        end, 10, "dead letter after 3 attempts")
        assert.equal("3", h.attempts)
        assert.is_true(in_list("task:failed", tid))
        local row = env:wait_row(id, "failed")
        assert.is_string(row.error_message)
        assert.matches("time", row.error_message)

        -- A fresh worker leaves it alone.
        local w = env:worker()
        local _, good_tid = env:submit("guitar_nylon_single")
        env:wait_task(good_tid, completed, 20, "next task")
        h = env:task(tid)
        assert.equal("failed", h.status)
        assert.equal("3", h.attempts)
        check_invariants()
        w:signal("TERM")
        assert.same({ "exited", 0 }, { w:wait(10) })
    end)
end)
