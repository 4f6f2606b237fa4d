-- Audio bombs end to end (docs/reliability.md H4): small files that claim
-- hours of audio, absurd rates or channel counts, terabytes of samples,
-- thousands of chained streams or a huge tag, uploaded through a real
-- `wtt serve` and, when accepted, transcribed by a real `wtt worker`. Each
-- is refused at upload with a 4xx and a JSON reason, or transcribed within
-- the worker's documented limits (docs/worker.md "Limits"), which the
-- worker enforces: a task over one fails not retryable with the limit
-- named, is dead-lettered at once, and the worker goes on. The bombs are
-- made at run time (spec/support/bombs.lua). The invariant checker runs
-- after every case.

local support = require "spec.support.faults"
local bombs = require "spec.support.bombs"
local runtime = require "wtt.runtime"
local sys = require "wtt.sys"

describe("audio bombs (H4) end to end #redis #pg", function()
    local env

    setup(function()
        -- The CPU backstop's SIGXCPU dumps core where RLIMIT_CORE allows:
        -- none from this spec's children.
        sys.setrlimit("core", 0)
        env = support.start()
    end)

    teardown(function()
        if env then
            env:stop()
        end
    end)

    after_each(function()
        if env then
            env:kill_workers()
        end
    end)

    local function upload(name, data)
        local path = env.tmp .. "/" .. name
        bombs.write(path, data)
        local res, err = env:http("POST", "/transcribe/upload/", {
            multipart = { { name = "file", file = path, filename = name,
                            content_type = "application/octet-stream" } },
            timeout = 60,
        })
        assert(res, err)
        return res, #data
    end

    local function rows()
        return tonumber(env.db:query("SELECT count(*) AS n FROM audio_midi")
                        [1].n)
    end

    local function dead(tid, what)
        return env:wait_task(tid, function(h)
            return h.status == "failed"
        end, 60, what or "dead letter")
    end

    -- The worker's peak resident set (VmHWM) in KiB.
    local function hwm_kb(w)
        local s = sys.read_file("/proc/" .. w.pid .. "/status") or ""
        return tonumber(s:match("VmHWM:%s*(%d+) kB"))
    end

    it("refuses at upload, with a 4xx and a JSON reason, what no header can "
       .. "hold: over 4 hours, an ID3 tag declaring 256 MB before 4 KB, an "
       .. "RF64 declaring 4 TiB",
       function()
        local media_before, rows_before = #env:media_files(), rows()
        local mp3 = bombs.encode(env.tmp .. "/tone.mp3",
                                 bombs.SF.mpeg + bombs.SF.mp3, 22050, 2)
        for _, case in ipairs({
            { "long.flac", bombs.flac_silent(14401, 1000),
              "exceeds the limit of 14400 s" },
            { "tag.mp3", bombs.id3(2 ^ 28 - 1, 1000, mp3),
              "unreadable audio" },
            -- RF64 (the 64-bit WAV) is not among the accepted containers.
            { "declares4t.rf64", bombs.rf64_lying(2 ^ 42, 1000),
              "not a WAV, MP3, FLAC or Ogg file", 415,
              "unsupported_media_type" },
        }) do
            local res, size = upload(case[1], case[2])
            assert.equal(case[4] or 422, res.status, case[1] .. ": "
                         .. res.body)
            assert.equal(case[5] or "unprocessable", res.json.error,
                         res.body)
            assert.matches(case[3], res.json.detail, 1, true)
            assert.is_true(size < 5000, case[1] .. " is " .. size .. " bytes")
        end
        assert.equal(media_before, #env:media_files())
        assert.equal(rows_before, rows())
        env:check_invariants(5)
    end)

    it("transcribes what its header holds within the worker's limits: "
       .. "768 kHz, 32 channels, both, a WAV declaring 4 GiB (holding 1 s), "
       .. "2,000 chained Ogg streams, an "
       .. "MP3 behind a real 20 MB ID3 tag", function()
        local opus = bombs.encode(env.tmp .. "/tone.opus",
                                  bombs.SF.ogg + bombs.SF.opus, 48000, 0.05)
        local mp3 = bombs.encode(env.tmp .. "/tone.mp3",
                                 bombs.SF.mpeg + bombs.SF.mp3, 22050, 2)
        local cases = {
            { "rate768k.wav", bombs.wav(5, 768000, 1) },
            { "ch32.wav", bombs.wav(5, 8000, 32) },
            { "rate768k_ch32.wav", bombs.wav(0.5, 768000, 32) },
            { "declares4g.wav", bombs.wav_lying(4294967295 - 100, 16000) },
            { "chain2000.opus", bombs.ogg_chain(opus, 2000) },
            { "id3_20mb.mp3", bombs.id3(20 * 2 ^ 20, 20 * 2 ^ 20, mp3) },
        }
        local jobs = {}
        for i, case in ipairs(cases) do
            local res = upload(case[1], case[2])
            assert.equal(201, res.status, case[1] .. ": " .. res.body)
            jobs[i] = { name = case[1], id = res.json.audio_midi_id,
                        duration = res.json.duration_s,
                        tid = env:generate(res.json.audio_midi_id) }
        end
        local w = env:worker()
        for _, j in ipairs(jobs) do
            local h = env:wait_task(j.tid, function(x)
                return x.status == "completed" or x.status == "failed"
            end, 120, j.name)
            assert.equal("completed", h.status, j.name .. ": "
                         .. tostring(h.error) .. "\n" .. w:text())
            assert.equal("1", h.attempts)
            env:wait_row(j.id, "completed")
        end
        -- The lying header counts for what the file holds.
        assert.equal(1, jobs[4].duration)
        local peak = hwm_kb(w)
        print(string.format("\n  H4: worker peak RSS %.0f MiB after %d bombs",
                            peak / 1024, #jobs))
        assert.is_true(peak < 4096 * 1024, "peak RSS " .. peak .. " KiB")
        assert.equal(0, w:count("task.failed"))
        -- Every task dir goes from the worker's TMPDIR (just after its
        -- task completes in Redis).
        local left
        support.eventually(function()
            left = {}
            for _, name in ipairs(sys.listdir(w.dir) or {}) do
                if name:match("^wtt%-task%-") then
                    left[#left + 1] = name
                end
            end
            return #left == 0
        end, 10)
        assert.same({}, left)
        env:check_invariants(5)
        w:signal("TERM")
        assert.same({ "exited", 0 }, { w:wait(15) })
    end)

    it("a 4-hour silent FLAC of 3 KB is accepted (its length is within "
       .. "WTT_MAX_AUDIO_S, or unknown); a worker whose audio limit is lower "
       .. "dead-letters it at once with the reason and goes on", function()
        local known = upload("silence4h.flac", bombs.flac_silent(14400, 1000))
        assert.equal(201, known.status, known.body)
        assert.equal(14400, known.json.duration_s)
        local unknown = upload("silence4h_unknown.flac",
            bombs.flac_silent(14400, 1000, 1, { unknown = true }))
        assert.equal(201, unknown.status, unknown.body)
        assert.is_nil(unknown.json.duration_s)
        local t1 = env:generate(known.json.audio_midi_id)
        local t2 = env:generate(unknown.json.audio_midi_id)
        local w = env:worker({ WTT_WORKER_MAX_AUDIO_S = "20" })
        local h1, h2 = dead(t1), dead(t2)
        assert.equal("1", h1.attempts)
        assert.equal("1", h2.attempts)
        assert.matches("exceeds the limit of 20 s",
                       env:wait_row(known.json.audio_midi_id, "failed")
                           .error_message, 1, true)
        assert.matches("longer than the limit of 20 s",
                       env:wait_row(unknown.json.audio_midi_id, "failed")
                           .error_message, 1, true)
        assert.matches("retryable=false", w:text(), 1, true)
        assert.is_nil((w:wait(0)), "worker died:\n" .. w:text())
        env:check_invariants(5)
        w:signal("TERM")
        assert.same({ "exited", 0 }, { w:wait(15) })
    end)

    for _, case in ipairs({
        { what = "time", env = { WTT_WORKER_MAX_TASK_S = "0.000001" },
          reason = "time limit of 1e-06 s (WTT_WORKER_MAX_TASK_S)" },
        { what = "memory", env = { WTT_WORKER_MAX_RSS_MB = "1" },
          reason = "over its limit of 1 MiB (WTT_WORKER_MAX_RSS_MB)" },
        -- The resident set is the process's: every task of the batch
        -- running when it trips fails with it.
        { what = "memory (a batch of 2)", n = 2,
          env = { WTT_WORKER_MAX_RSS_MB = "1", WTT_BATCH_TASKS = "2" },
          reason = "over its limit of 1 MiB (WTT_WORKER_MAX_RSS_MB)" },
    }) do
        it("the " .. case.what .. " limit stops a task at its first window: "
           .. "dead-lettered at once with the reason; the worker goes on",
           function()
            local jobs = {}
            for i = 1, case.n or 1 do
                local id, tid = env:submit(support.CLIP_NAMES[i])
                jobs[i] = { id = id, tid = tid }
            end
            local w = env:worker(case.env)
            for _, j in ipairs(jobs) do
                local h = dead(j.tid)
                assert.equal("1", h.attempts)
                assert.matches(case.reason, h.error, 1, true)
                assert.matches(case.reason, env:wait_row(j.id, "failed")
                                                .error_message, 1, true)
            end
            if case.n then
                assert.matches("batch=" .. case.n, w:text(), 1, true)
            end
            assert.is_nil((w:wait(0)), "worker died:\n" .. w:text())
            assert.matches("retryable=false", w:text(), 1, true)
            env:check_invariants(5)
            w:signal("TERM")
            assert.same({ "exited", 0 }, { w:wait(15) })
        end)
    end

    it("the file size limit (RLIMIT_FSIZE) fails a task whose posteriors "
       .. "outgrow it, not retryable; the worker is not killed (SIGXFSZ)",
       function()
        local res = upload("twelve.wav", bombs.wav(12, 8000, 1))
        assert.equal(201, res.status, res.body)
        local id = res.json.audio_midi_id
        local tid = env:generate(id, { outputs = { "midi", "notes",
                                                   "posteriors" } })
        local w = env:worker({ WTT_WORKER_MAX_FILE_MB = "1",
                               WTT_MAX_DOWNLOAD = "1048576" })
        local h = dead(tid)
        assert.equal("1", h.attempts, tostring(h.error))
        assert.matches("file too large", env:wait_row(id, "failed")
                                             .error_message, 1, true)
        assert.is_nil((w:wait(0)), "worker died:\n" .. w:text())
        env:check_invariants(5)
        w:signal("TERM")
        assert.same({ "exited", 0 }, { w:wait(15) })
    end)

    it("refuses to start a worker whose download cap is over its file "
       .. "size limit", function()
        local w = env:worker({ WTT_WORKER_MAX_FILE_MB = "1",
                               WTT_MAX_DOWNLOAD = "2000000" })
        assert.same({ "exited", 1 }, { w:wait(30) })
        assert.matches("over the file size limit", w:text(), 1, true)
    end)

    it("the CPU backstop: a task stuck between windows burning CPU is "
       .. "killed with its worker by the kernel (SIGXCPU, the RLIMIT_CPU "
       .. "armed for it); charged at each claim, it is dead-lettered at max "
       .. "attempts, not retried forever; the next task completes",
       function()
        local id, tid = env:submit(support.CLIP_NAMES[3])
        local name = env:row(id).audio_path
        local spin = { WTT_WORKER_TEST_SPIN_ON = name,
                       WTT_WORKER_MAX_TASK_S = "1", WTT_SHUTDOWN_GRACE = "0" }
        -- A supervisor's restarts: a fresh worker after each kill.
        for attempt = 1, 3 do
            local w = env:worker(spin)
            local how, sig = w:wait(90)
            assert.same({ "signaled", 24 }, { how, sig },
                        "attempt " .. attempt .. ":\n" .. w:text())
            assert.equal(tostring(attempt), env:task(tid).attempts)
        end
        local id2, tid2 = env:submit(support.CLIP_NAMES[4])
        local ok = env:worker()
        local h = dead(tid)
        assert.equal("3", h.attempts)
        env:wait_row(id, "failed")
        env:wait_task(tid2, function(x)
            return x.status == "completed"
        end, 60, "completion")
        env:wait_row(id2, "completed")
        env:check_invariants(5)
        ok:signal("TERM")
        assert.same({ "exited", 0 }, { ok:wait(15) })
    end)

    it("the CPU backstop: the kernel kills a process that spins past the "
       .. "soft RLIMIT_CPU a task arms (SIGXCPU)", function()
        local script = env.tmp .. "/spin.lua"
        bombs.write(script, [[
local sys = require "wtt.sys"
assert(sys.setrlimit("cpu", math.ceil(sys.cpu_s()) + 1))
local x = 0
while true do x = x + 1 end
]])
        local pid = assert(sys.spawn({ runtime.exe, "run", script }))
        assert.same({ "signaled", 24 }, { sys.wait(pid, 60) })
    end)
end)
