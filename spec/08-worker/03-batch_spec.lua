-- `wtt worker --batch-tasks N` and device faults, against a real
-- redis-server and the fake web of spec/support/worker.lua, on real clips:
-- a batch runs its tasks' windows through one model call, yet each task
-- keeps its own claim, progress and outcome; a device fault hands every
-- held task back uncharged and ends the worker with status 3 after
-- --max-device-faults in a row.

local wh = require "spec.support.worker"
local helpers = require "spec.support.server"
local json = require "wtt.json"
local model = require "wtt.model"
local notes_io = require "wtt.notes_io"
local sys = require "wtt.sys"
local worker = require "wtt.worker"

local CLIPS = helpers.FIXTURES .. "/clips/"


describe("wtt worker --batch-tasks #redis", function()
    local s, n = nil, 0
    setup(function()
        s = wh.stack()
    end)
    teardown(function()
        if s then s:stop() end
    end)

    local function prefix()
        n = n + 1
        return "b" .. n .. ":"
    end

    local function exited(w, status, timeout)
        local how, code = w.wait(timeout)
        assert(how == "exited" and code == status,
               "worker ended " .. tostring(how) .. " " .. tostring(code)
               .. " (expected exit " .. status .. "):\n" .. w.text())
    end

    local function clip(name)
        return s:media(assert(sys.read_file(CLIPS .. name)))
    end

    -- The notes the CLI path gives for a clip (one task, in this process).
    local function reference_notes(name)
        local m = assert(model.load(nil, { device = "cpu" }))
        local notes = assert(m:transcribe(CLIPS .. name, {}))
        m.core:close()
        return json.decode(notes_io.to_json(notes)).notes
    end


    it("--noop claims and completes a batch in one call each", function()
        local pre = prefix()
        local ids = {}
        for i = 1, 7 do
            ids[i] = s:enqueue(pre, { media = "never-fetched.wav" })
        end
        local w = s:start_worker(pre, { WTT_WORKER_TOKEN = false,
                                        WTT_BATCH_TASKS = "3" }, { "--noop" })
        assert.truthy(helpers.eventually(function()
            return s:queue(pre):stats().results == 7
        end, 10), w.text())
        sys.kill(w.pid, "TERM")
        exited(w, 0, 10)
        local claimed_at = {}
        for _, id in ipairs(ids) do
            local h = s:task(pre, id)
            assert.equal("completed", h.status)
            assert.is_true(json.decode(h.result).noop)
            claimed_at[h.claimed_at] = (claimed_at[h.claimed_at] or 0) + 1
        end
        -- Batches of 3, 3 and 1, each claimed by one script call (one
        -- `now` for the whole batch). `now` is in milliseconds and --noop
        -- takes no time, so two calls can fall in the same millisecond:
        -- their groups then read as one (3 + 1, 3 + 3 or all three).
        local sizes = {}
        for _, c in pairs(claimed_at) do
            sizes[#sizes + 1] = c
        end
        table.sort(sizes)
        local key = table.concat(sizes, ",")
        assert.truthy(({ ["1,3,3"] = true, ["3,4"] = true, ["1,6"] = true,
                         ["7"] = true })[key], "batch sizes " .. key)
        assert.matches("batch_tasks=3", w.text(), 1, true)
    end)


    it("runs three tasks as one batch; the corrupt one fails alone and the "
       .. "others complete with their own results", function()
        local pre = prefix()
        local good1 = s:enqueue(pre, { media = clip("guitar_nylon_single.wav") })
        local bad = s:enqueue(pre, { media = s:media(string.rep("not audio ",
                                                                1000)) })
        local good2 = s:enqueue(pre, { media = clip("piano_chords.wav") })
        local progress = {}
        local sub = assert(s.srv:client())
        local w
        assert(sub:subscribe({}, { pre .. "task:progress:*" },
            function(_, _, payload)
                local doc = json.decode(payload)
                progress[doc.id] = (progress[doc.id] or 0) + 1
            end, {
                tick = 0.05,
                on_ready = function()
                    w = s:start_worker(pre, { WTT_BATCH_TASKS = "3" },
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

        local hb = s:task(pre, bad)
        assert.equal("failed", hb.status, w.text())
        assert.equal("1", hb.attempts)
        assert.is_true(s:list_has(pre .. "task:failed", bad))
        assert.matches("retryable=false", w.text(), 1, true)

        for _, case in ipairs({ { good1, "guitar_nylon_single.wav" },
                                { good2, "piano_chords.wav" } }) do
            local id, name = case[1], case[2]
            local h = s:task(pre, id)
            assert.equal("completed", h.status, w.text())
            assert.equal("1", h.attempts)
            local result = json.decode(h.result)
            local out = s.fake .. "/results/" .. id
            assert.equal(h.claim, sys.read_file(out .. "/claim"))
            local doc = json.decode(sys.read_file(out .. "/notes"))
            assert.equal(id, doc.task_id)
            -- The same notes as the clip transcribed alone.
            assert.same(reference_notes(name), doc.notes)
            assert.equal(#doc.notes, result.n_notes)
            assert.is_true(progress[id] >= 1)
        end
        -- One claim for the three, and one complete for the two.
        assert.equal(s:task(pre, good1).claimed_at,
                     s:task(pre, good2).claimed_at)
        assert.equal(s:task(pre, good1).finished_at,
                     s:task(pre, good2).finished_at)
        assert.matches("batch=3", w.text(), 1, true)
    end)


    it("on SIGTERM mid-inference releases every task of the batch "
       .. "uncharged, exit 0", function()
        local pre = prefix()
        local ids = { (s:enqueue(pre)), (s:enqueue(pre)) }
        local w = s:start_worker(pre, { WTT_BATCH_TASKS = "2",
                                        WTT_WORKER_TEST_WINDOW_SLEEP = "1",
                                        WTT_SHUTDOWN_GRACE = "0" })
        assert.truthy(helpers.eventually(function()
            return s.r:call("HGET", pre .. "task:" .. ids[1], "progress")
                   or s.r:call("HGET", pre .. "task:" .. ids[2], "progress")
        end, 20), w.text())
        sys.kill(w.pid, "TERM")
        exited(w, 0, 15)
        for _, id in ipairs(ids) do
            local h = s:task(pre, id)
            assert.equal("pending", h.status, w.text())
            assert.equal("0", h.attempts)
            assert.is_true(s:list_has(pre .. "task:queue", id))
            assert.equal(0, s:hits("result-" .. id))
        end
        local _, released = w.text():gsub("task%.released", "")
        assert.equal(2, released)
    end)


    for _, batch in ipairs({ "1", "2" }) do
        it("--batch-tasks " .. batch .. ": a device fault releases the held "
           .. "tasks uncharged, marks the worker unhealthy, and exits "
           .. worker.EXIT_DEVICE .. " after --max-device-faults", function()
            local pre = prefix()
            local ids = { (s:enqueue(pre)), (s:enqueue(pre)) }
            -- One window per engine run: the first run succeeds, the
            -- second (still in the first task's clip) and every later one
            -- fail, so the fault strikes mid-inference and no task ends.
            local w = s:start_worker(pre, {
                WTT_BATCH_TASKS = batch,
                WTT_WORKER_THREADS = "1",
                WTT_TEST_DEVICE_FAULT_AFTER = "1",
                WTT_DEVICE_FAULT_BACKOFF = "1",
            }, { "--max-device-faults", "2" })
            local key = pre .. "worker:" .. w.id
            local seen = helpers.eventually(function()
                local h = s.r:call("HGETALL", key)
                local t = {}
                for i = 1, #(h or {}), 2 do
                    t[h[i]] = h[i + 1]
                end
                return t.healthy == "0" and t or nil
            end, 20)
            assert.is_table(seen, w.text())
            assert.equal("1", seen.device_faults)
            assert.matches("injected", seen.last_device_error)
            -- Claiming stopped for the backoff: the tasks wait, uncharged.
            if batch == "2" then
                for _, id in ipairs(ids) do
                    local h = s:task(pre, id)
                    assert.equal("pending", h.status)
                    assert.equal("0", h.attempts)
                end
            end
            exited(w, worker.EXIT_DEVICE, 30)
            for _, id in ipairs(ids) do
                local h = s:task(pre, id)
                assert.equal("pending", h.status)
                assert.equal("0", h.attempts)
                assert.is_nil(h.error)
            end
            assert.same({}, s.r:call("LRANGE", pre .. "task:failed", 0, -1))
            assert.same({}, s.r:call("LRANGE", pre .. "task:processing",
                                     0, -1))
            local text = w.text()
            assert.matches("worker.device_fault", text, 1, true)
            assert.matches("worker.device_faults_exhausted", text, 1, true)
            assert.matches("reason=\"device fault\"", text, 1, true)
            local _, faults = text:gsub("worker%.device_fault ", "")
            assert.equal(2, faults)
        end)
    end


    for _, batch in ipairs({ "1", "2" }) do
        it("--batch-tasks " .. batch .. ": a temp dir that cannot be made "
           .. "(the worker's own disk) releases the tasks uncharged, marks "
           .. "the worker unhealthy, and exits " .. worker.EXIT_LOCAL
           .. " after --max-local-failures (W9)", function()
            local pre = prefix()
            local ids = { (s:enqueue(pre)), (s:enqueue(pre)) }
            local w = s:start_worker(pre, {
                WTT_BATCH_TASKS = batch,
                TMPDIR = "/nonexistent/wtt-spec-gone",
                WTT_DEVICE_FAULT_BACKOFF = "0.1",
            }, { "--max-local-failures", "2" })
            exited(w, worker.EXIT_LOCAL, 30)
            for _, id in ipairs(ids) do
                local h = s:task(pre, id)
                assert.equal("pending", h.status, w.text())
                assert.equal("0", h.attempts)
                assert.is_nil(h.error)
            end
            assert.same({}, s.r:call("LRANGE", pre .. "task:failed", 0, -1))
            assert.same({}, s.r:call("LRANGE", pre .. "task:processing",
                                     0, -1))
            local text = w.text()
            local _, failures = text:gsub("worker%.local_failure ", "")
            assert.equal(2, failures, text)
            assert.matches("worker.local_failures_exhausted", text, 1, true)
            assert.matches("reason=\"local failure\"", text, 1, true)
            assert.is_nil(text:find("task.failed", 1, true))
        end)
    end
end)
