-- `wtt worker` against a real redis-server and a tiny fake web (`wtt serve`
-- with throwaway routes for /media and /transcribe/_result), on real clips
-- (spec/support/worker.lua). Tasks are enqueued with wtt.queue under a
-- fixed policy.

local helpers = require "spec.support.server"
local json = require "wtt.json"
local sys = require "wtt.sys"
local wh = require "spec.support.worker"


describe("wtt worker #redis", function()
    local s, srv, r, fake, n = nil, nil, nil, nil, 0

    -- The fake web and worker starter live in spec/support/worker.lua
    -- (shared with the batch spec); these are its calls under the names
    -- the tests below use.
    setup(function()
        s = wh.stack()
        srv, r, fake = s.srv, s.r, s.fake
    end)

    teardown(function()
        if s then s:stop() end
    end)

    -- Each test gets its own key prefix.
    local function prefix()
        n = n + 1
        return "w" .. n .. ":"
    end

    local function media(data) return s:media(data) end
    local function policy(timeout_ms, max_attempts)
        return wh.policy(timeout_ms, max_attempts)
    end
    local function enqueue(pre, opts) return s:enqueue(pre, opts) end
    local function start_worker(pre, env, args)
        return s:start_worker(pre, env, args)
    end
    local function task(pre, id) return s:task(pre, id) end
    local function list_has(key, id) return s:list_has(key, id) end
    local function hits(name) return s:hits(name) end

    local function exited_ok(w, timeout)
        local how, code = w.wait(timeout)
        assert(how == "exited" and code == 0,
               "worker ended " .. tostring(how) .. " " .. tostring(code)
               .. ":\n" .. w.text())
    end


    it("downloads, transcribes, posts and completes a task, with progress "
       .. "after every window", function()
        local pre = prefix()
        local id
        local progress, w = {}, nil
        -- Subscribe first, then enqueue and start the worker.
        local sub = assert(srv:client())
        assert(sub:subscribe({}, { pre .. "task:progress:*" },
            function(_, _, payload)
                progress[#progress + 1] = payload
            end, {
                tick = 0.05,
                on_ready = function()
                    id = enqueue(pre, {
                        options = { instrument = "acoustic_grand_piano",
                                    tempo = 100 },
                        outputs = { "midi", "notes", "posteriors" } })
                    -- One inference thread: one window per callback.
                    w = start_worker(pre, { WTT_WORKER_THREADS = "1" },
                                     { "--once" })
                end,
                on_tick = function()
                    if w and sys.wait(w.pid, 0) then
                        w.exited = true
                        return false
                    end
                end,
            }))
        sub:close()
        assert.is_true(w.exited, w.text())

        local h = task(pre, id)
        assert.equal("completed", h.status, w.text())
        assert.equal("1", tostring(h.attempts))
        local result = json.decode(h.result)
        assert.is_true(result.n_notes > 0)
        assert.equal("midi/" .. id .. ".mid", result.midi)
        assert.equal("notes/" .. id .. ".json", result.notes)
        assert.is_string(result.provenance.model_sha256)
        assert.equal("cpu", result.provenance.device)
        assert.is_true(list_has(pre .. "task:results", id))

        -- What web received.
        local out = fake .. "/results/" .. id
        assert.equal(tostring(h.claim), sys.read_file(out .. "/claim"))
        assert.equal("MThd", sys.read_file(out .. "/midi"):sub(1, 4))
        local notes = json.decode(sys.read_file(out .. "/notes"))
        assert.equal(result.n_notes, #notes.notes)
        assert.equal(id, notes.task_id)
        assert.equal(result.provenance.model_sha256,
                     notes.provenance.model_sha256)
        assert.equal("\147NUMPY", sys.read_file(out .. "/posteriors"):sub(1, 6))

        -- Progress: one message per window, done counting up to total.
        assert.is_true(#progress >= 2, "progress: " .. #progress)
        local total
        for i, p in ipairs(progress) do
            local doc = json.decode(p)
            assert.equal(id, doc.id)
            local d, t = doc.progress.done, doc.progress.total
            total = total or t
            assert.equal(total, t)
            assert.equal(i, d)
        end
        assert.equal(#progress, total)
        assert.matches("task.completed", w.text(), 1, true)
        assert.matches("id=" .. id, w.text(), 1, true)
    end)


    it("--noop completes at once without downloading", function()
        local pre = prefix()
        local id = enqueue(pre, { media = "never-fetched.wav" })
        local t0 = sys.now()
        local w = start_worker(pre, { WTT_WORKER_TOKEN = false },
                               { "--noop", "--once" })
        exited_ok(w, 10)
        assert.is_true(sys.now() - t0 < 5)
        local h = task(pre, id)
        assert.equal("completed", h.status)
        assert.is_true(json.decode(h.result).noop)
        assert.equal(0, hits("media-never-fetched.wav"))
        assert.is_nil(w.text():find("model_loaded", 1, true))
    end)


    it("drops a task whose result web refuses with 409 (lost claim)",
       function()
        local pre = prefix()
        local id = wh.hex32()
        assert(sys.write_file(fake .. "/result-status-" .. id, "409"))
        enqueue(pre, { id = id })
        local w = start_worker(pre, nil, { "--once" })
        exited_ok(w)
        local h = task(pre, id)
        assert.equal("processing", h.status)     -- no complete, no fail
        assert.is_nil(h.result)
        assert.equal(1, hits("result-" .. id))   -- 409 is not retried
        assert.matches("task.lost", w.text(), 1, true)
        assert.matches("409", w.text(), 1, true)
    end)


    it("retries a failing download, then fails the task as retryable",
       function()
        local pre = prefix()
        local name = media("whatever")
        assert(sys.write_file(fake .. "/media-status-" .. name, "503"))
        local id = enqueue(pre, { media = name })
        local w = start_worker(pre, nil, { "--once" })
        exited_ok(w)
        assert.equal(3, hits("media-" .. name))
        local h = task(pre, id)
        assert.equal("pending", h.status)        -- back for another try
        assert.matches("503", h.error)
        assert.matches("task.download_retry", w.text(), 1, true)
        assert.matches("retryable=true", w.text(), 1, true)
    end)


    it("fails a task at once when the audio is gone (404)", function()
        local pre = prefix()
        local id = enqueue(pre, { media = "gone.wav" })
        local w = start_worker(pre, nil, { "--once" })
        exited_ok(w)
        assert.equal(1, hits("media-gone.wav"))
        local h = task(pre, id)
        assert.equal("failed", h.status)
        assert.matches("404", h.error)
        assert.is_true(list_has(pre .. "task:failed", id))
    end)


    it("fails bad audio for good (not retryable)", function()
        local pre = prefix()
        local id = enqueue(pre, { media = media(string.rep("not audio ",
                                                           1000)) })
        local w = start_worker(pre, nil, { "--once" })
        exited_ok(w)
        local h = task(pre, id)
        assert.equal("failed", h.status, w.text())
        assert.equal("1", tostring(h.attempts))
        assert.is_true(list_has(pre .. "task:failed", id))
        assert.matches("retryable=false", w.text(), 1, true)
    end)


    it("keeps extending the claim from its heartbeat thread while "
       .. "inference blocks (never reaped)", function()
        local pre = prefix()
        local q = require("wtt.queue").new(r, { prefix = pre,
                                                policy = policy(1000) })
        -- A 1 s visibility timeout and about 2.4 s of inference.
        local id = enqueue(pre, { timeout_ms = 1000 })
        local w = start_worker(pre, { WTT_WORKER_TEST_WINDOW_SLEEP = "0.8" },
                               { "--once" })
        local deadlines, seen_worker = {}, nil
        local requeued = 0
        while not sys.wait(w.pid, 0) do
            local d = r:call("ZSCORE", pre .. "task:processing:time", id)
            if d and d ~= deadlines[#deadlines] then
                deadlines[#deadlines + 1] = d
            end
            if not seen_worker then
                local wh = r:call("HGETALL", pre .. "worker:" .. w.id)
                if wh and #wh > 0 and r:call("HGET", pre .. "worker:" .. w.id,
                                             "task") == id then
                    seen_worker = {
                        ttl = r:call("TTL", pre .. "worker:" .. w.id),
                        device = r:call("HGET", pre .. "worker:" .. w.id,
                                        "device"),
                    }
                end
            end
            requeued = requeued + (q:reap() or 0)
            sys.sleep(0.05)
        end
        w.exited = true
        local h = task(pre, id)
        assert.equal("completed", h.status, w.text())
        assert.equal("1", tostring(h.attempts))
        assert.equal(0, requeued)
        assert.is_true(#deadlines >= 10, "deadline moved " .. #deadlines
                                         .. " times")
        assert.is_table(seen_worker)
        assert.equal("cpu", seen_worker.device)
        assert.is_true(seen_worker.ttl > 0)
        -- A clean exit removes the worker's hash.
        assert.equal(0, r:call("EXISTS", pre .. "worker:" .. w.id))
    end)


    it("on SIGTERM mid-inference cancels and releases the task, exit 0",
       function()
        local pre = prefix()
        local id = enqueue(pre)
        local w = start_worker(pre, { WTT_WORKER_TEST_WINDOW_SLEEP = "1",
                                      WTT_SHUTDOWN_GRACE = "0" })
        assert.truthy(helpers.eventually(function()
            return r:call("HGET", pre .. "task:" .. id, "progress")
        end, 20), w.text())
        local t0 = sys.now()
        sys.kill(w.pid, "TERM")
        exited_ok(w, 10)
        assert.is_true(sys.now() - t0 < 8)     -- at the next window
        local h = task(pre, id)
        assert.equal("pending", h.status)
        assert.equal(0, tonumber(h.attempts))    -- not charged
        assert.is_nil(h.error)
        assert.is_true(list_has(pre .. "task:queue", id))
        assert.is_false(list_has(pre .. "task:processing", id))
        assert.equal(0, hits("result-" .. id))
        assert.matches("task.released", w.text(), 1, true)
        assert.matches("worker.stopped", w.text(), 1, true)
    end)


    it("on SIGTERM finishes the running task within the grace period, "
       .. "claims nothing more, exit 0", function()
        local pre = prefix()
        local id = enqueue(pre)
        local other = enqueue(pre)
        local w = start_worker(pre, { WTT_WORKER_TEST_WINDOW_SLEEP = "0.4",
                                      WTT_SHUTDOWN_GRACE = "30" })
        assert.truthy(helpers.eventually(function()
            return r:call("HGET", pre .. "task:" .. id, "progress")
        end, 20), w.text())
        sys.kill(w.pid, "TERM")
        exited_ok(w, 20)
        assert.equal("completed", task(pre, id).status)
        assert.equal("pending", task(pre, other).status)
        assert.is_true(list_has(pre .. "task:queue", other))
    end)


    it("exits 0 on SIGTERM while idle", function()
        local pre = prefix()
        local w = start_worker(pre, nil, { "--noop" })
        assert.truthy(helpers.eventually(function()
            return w.text():find("worker.started", 1, true)
        end, 10))
        sys.kill(w.pid, "TERM")
        exited_ok(w, 5)
    end)
end)
