-- Infrastructure faults against the real stack (docs/reliability.md R1, W8):
-- redis-server killed and restarted on its AOF in the middle of a run,
-- and `wtt serve` killed while a worker posts its result. Real PostgreSQL,
-- redis-server, `wtt serve` and `wtt worker` processes on real clips; the
-- invariant checker runs after each scenario.

local support = require "spec.support.faults"
local json = require "wtt.json"
local sys = require "wtt.sys"

describe("infrastructure faults #redis #pg", function()
    local env

    setup(function()
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

    local function check_invariants()
        env:check_invariants(8)
    end

    local function progress(h)
        local d, t = (h.progress or ""):match("^(%d+)/(%d+)$")
        return tonumber(d), tonumber(t)
    end


    it("R1: redis-server killed (AOF everysec) and restarted mid-run -> "
       .. "web and workers reconnect, no task lost, all complete", function()
        if support.needs_single_redis("it kills the one redis-server and "
                                      .. "restarts it on its AOF") then
            return
        end
        local slow = { WTT_WORKER_TEST_WINDOW_SLEEP = "0.3",
                       WTT_HTTP_RETRIES = "8", WTT_HTTP_BACKOFF = "0.2",
                       WTT_HTTP_BACKOFF_MAX = "1" }
        local workers = { env:worker(slow), env:worker(slow) }
        local jobs = {}
        for i = 1, 6 do
            local id, tid = env:submit(support.CLIP_NAMES[i])
            jobs[#jobs + 1] = { id = id, tid = tid }
        end
        -- Both workers are inside a task.
        assert.truthy(support.eventually(function()
            local n = 0
            for _, j in ipairs(jobs) do
                local h = env:task(j.tid)
                if h.status == "processing" and (progress(h) or 0) >= 1 then
                    n = n + 1
                end
            end
            return n >= 2
        end, 20), "two tasks never ran at once" .. env:logs())

        env.rsrv:kill()                      -- SIGKILL: no final fsync
        -- Restart once the service has seen Redis gone (readiness fails).
        assert.truthy(support.eventually(function()
            local res = env:http("GET", "/readyz", { timeout = 2 })
            return res and res.status == 503
        end, 10), "web never saw Redis down" .. env:logs())
        env.rsrv:restart()                   -- same port, replays the AOF

        -- Every row completes (reconciler, reaper, retries as needed).
        env:wait_rows(jobs, nil, 60, "rows after the restart")
        for _, j in ipairs(jobs) do
            local h = env:task(j.tid)
            assert.equal("completed", h.status, json.encode(h))
            local row = env:row(j.id)
            assert.equal(j.tid, row.task_id)
            local res = assert(env:http("GET", "/transcribe/midi/" .. j.id
                                        .. "/"))
            assert.equal(200, res.status)
            assert.equal("MThd", res.body:sub(1, 4))
        end
        -- Web is ready again (Redis and PostgreSQL answer) and the workers
        -- are alive and stop cleanly.
        local res = assert(env:http("GET", "/readyz"))
        assert.equal(200, res.status, res.body)
        check_invariants()
        for _, w in ipairs(workers) do
            assert.is_nil((w:wait(0)), "worker died:\n" .. w:text())
            w:signal("TERM")
            assert.same({ "exited", 0 }, { w:wait(10) })
        end
    end)


    it("W8: web killed while a worker posts its result, restarted -> the "
       .. "upload is retried and the result stored once", function()
        local w = env:worker({ WTT_WORKER_TEST_WINDOW_SLEEP = "1",
                               WTT_HTTP_RETRIES = "10",
                               WTT_HTTP_BACKOFF = "0.2",
                               WTT_HTTP_BACKOFF_MAX = "1" })
        local id, tid = env:submit("guitar_nylon_single")
        -- In the last window: the POST comes within a second.
        env:wait_task(tid, function(h)
            local d, t = progress(h)
            return h.status == "processing" and d and t and t >= 2
                   and d == t - 1
        end, 20, "last window")
        env:serve_kill()                                  -- SIGKILL web
        assert.truthy(support.eventually(function()
            return w:count("task.upload_retry") >= 2
        end, 10), "no upload retry:\n" .. w:text())
        assert.equal("processing", env:task(tid).status)
        env:serve_start()

        local h = env:wait_task(tid, function(x)
            return x.status == "completed"
        end, 20, "completion after web restart")
        assert.equal("1", h.attempts)
        local row = env:wait_row(id, "completed")
        assert.equal(1, w:await("task.completed"), w:text())
        assert.equal(0, w:count("task.lost"))
        assert.equal(0, w:count("task.failed"))
        -- One stored result: one accepted POST, one set of files.
        local log = sys.read_file(env.serve_log) or ""
        local posts = 0
        for line in log:gmatch("[^\n]+") do
            if line:find("path=/transcribe/_result/" .. tid, 1, true)
               and line:find("status=200", 1, true) then
                posts = posts + 1
            end
        end
        assert.equal(1, posts, log)
        local up = json.decode(h.uploads)
        assert.equal(up.midi, row.midi_path)
        assert.equal(up.notes, row.notes_path)
        local res = assert(env:http("GET", "/transcribe/midi/" .. id .. "/"))
        assert.equal(200, res.status)
        check_invariants()
        w:signal("TERM")
        assert.same({ "exited", 0 }, { w:wait(10) })
    end)
end)
