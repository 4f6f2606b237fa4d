-- Network partitions between a service and Redis (docs/reliability.md R6),
-- with a real cut that leaves the sockets half-open: the process under
-- test reaches Redis through a forwarder (spec/support/tcpgate.py) that
-- stops moving bytes both ways without closing anything, so the process
-- sees a silent peer (timeouts), not a reset or a stopped server. Real
-- PostgreSQL, redis-server, `wtt serve` and `wtt worker` processes on real
-- clips; the invariant checker after each scenario.

local support = require "spec.support.faults"
local gate = require "spec.support.tcpgate"
local service = require "spec.support.service"
local json = require "wtt.json"
local sys = require "wtt.sys"

describe("partitions between a service and Redis (R6) #redis #pg",
         function()
    if support.needs_single_redis("it cuts services from one redis-server's "
                                  .. "port with a TCP gate") then
        return
    end

    local env, g

    before_each(function()
        env = support.start()
        g = gate.start("127.0.0.1", env.rsrv.port)
    end)

    after_each(function()
        local ok, err = pcall(function()
            if env then env:stop() end
        end)
        if g then g:stop() end
        env, g = nil, nil
        assert(ok, err)
    end)

    -- A one-window clip (1 s), so a slowed worker still finishes soon.
    local function short_clip()
        local path = env.tmp .. "/short-" .. sys.now() .. ".wav"
        local f = assert(io.open(path, "wb"))
        f:write(service.wav(1.0, 22050, 220))
        f:close()
        return path
    end

    it("R6a: ONE worker cut from Redis while it holds a claim (web still "
       .. "reachable): the task is reaped and rerun by another worker; "
       .. "after healing, the stale worker's writes are fenced, the task "
       .. "completes once, and the stale worker goes on working", function()
        -- A reaches Redis through the gate and web directly; 3 s per window
        -- keeps its run going well past its claim's expiry (1.5 s).
        local a = env:worker({ REDIS_URL = g.url,
                               WTT_WORKER_TEST_WINDOW_SLEEP = "3" })
        local id, tid = env:submit("guitar_nylon_single")
        local ha = env:wait_task(tid, support.running_on(a, 1), 30,
                                 "A's first progress")
        local stale = ha.claim
        g:cut()

        -- Web's reaper (and B's) take the claim back; B reruns the task
        -- (slowed a little, so its run is seen under way).
        local b = env:worker({ WTT_WORKER_TEST_WINDOW_SLEEP = "0.2" })
        local hb = env:wait_task(tid, support.running_on(b, 1), 30,
                                 "the rerun on B")
        assert.is_true(tonumber(hb.claim) > tonumber(stale))
        local row = env:wait_row(id, "completed", 30)
        assert.equal(1, b:await("task.completed id=" .. tid), b:text())
        assert.equal(0, a:count("task.completed id=" .. tid),
                     "A's result came before its claim expired:\n"
                     .. a:text())

        -- Heal: A's heartbeat finds its claim stale and A drops the run.
        g:heal()
        assert.truthy(a:await("task.lost", 1, 30) >= 1,
                      "A did not drop the stale run:\n" .. a:text())
        -- A's token is refused by every write path.
        env:assert_fenced(tid, stale)
        assert.equal(0, a:count("task.completed id=" .. tid), a:text())
        local h = env:task(tid)
        assert.equal("completed", h.status)
        assert.equal(hb.claim, h.claim)
        assert.equal(row.midi_path, json.decode(h.result).midi)

        -- A goes on working: with B gone, A takes the next task.
        b:signal("TERM")
        assert.same({ "exited", 0 }, { b:wait(15) })
        local id2, tid2 = env:submit(short_clip())
        env:wait_row(id2, "completed", 40)
        assert.equal(1, a:await("task.completed id=" .. tid2, 1, 10),
                     a:text())
        env:check_invariants(10)
        assert.is_nil((a:wait(0)), "worker A died:\n" .. a:text())
        a:signal("TERM")
        assert.same({ "exited", 0 }, { a:wait(15) })
    end)


    it("R6b: web cut from Redis for a while: generate answers 503 with "
       .. "Retry-After and nothing half-done, status routes answer from "
       .. "PostgreSQL; after healing everything converges", function()
        env:serve_kill("TERM")
        env.serve_env.REDIS_URL = g.url
        env:serve_start()
        -- The worker reaches Redis directly and retries its result POST
        -- for the whole cut.
        local w = env:worker({ WTT_WORKER_TEST_WINDOW_SLEEP = "1",
                               WTT_HTTP_RETRIES = "40",
                               WTT_HTTP_BACKOFF = "0.2",
                               WTT_HTTP_BACKOFF_MAX = "1" })
        local id1, tid1 = env:submit("guitar_steel_single")
        env:wait_task(tid1, support.running_on(w, 1), 30,
                      "the first progress")
        local id2 = env:upload("guitar_strum")

        g:cut()
        -- generate: the row is recorded, the enqueue cannot be: 503.
        local res = assert(env:http("POST", "/transcribe/generate/", {
            headers = { ["Content-Type"] = "application/json" },
            body = json.encode({ audio_midi_id = id2 }), timeout = 30 }))
        assert.equal(503, res.status, res.body)
        assert.truthy(res.headers["retry-after"], json.encode(res.headers))
        local tid2 = res.json and res.json.task_id
        assert.truthy(tid2, res.body)
        local row2 = env:row(id2)
        assert.equal("pending", row2.status)
        assert.equal(tid2, row2.task_id)
        -- Nothing of it reached Redis while the cut lasts.
        assert.same({}, env:task(tid2))
        -- Uploads need PostgreSQL only.
        local id3 = env:upload("piano_chords")
        -- Status answers from the row (each Redis read waits out web's
        -- 5 s command timeout, so one task of each kind).
        for _, x in ipairs({ { id1, "processing" }, { id3, nil } }) do
            local s = assert(env:http("GET", "/transcribe/status/" .. x[1]
                                      .. "/", { timeout = 30 }))
            assert.equal(200, s.status, s.body)
            if x[2] then
                assert.equal(x[2], s.json.status, s.body)
            end
        end
        local ready = assert(env:http("GET", "/readyz", { timeout = 30 }))
        assert.equal(503, ready.status, ready.body)
        -- The worker's run ends meanwhile; its result waits for web.
        assert.truthy(support.eventually(function()
            return w:count("task.completed id=" .. tid1) == 0
                   and env:task(tid1).status == "processing"
                   and w:count("task.upload_retry") >= 1
        end, 30), "the worker never tried to deliver:\n" .. w:text())

        g:heal()
        env:wait_row(id1, "completed", 60)
        env:wait_row(id2, "completed", 60)
        assert.equal(1, w:await("task.completed id=" .. tid1, 1, 10),
                     w:text())
        assert.equal(1, w:await("task.completed id=" .. tid2, 1, 10),
                     w:text())
        assert.equal(200, assert(env:http("GET", "/readyz")).status)
        env:check_invariants(10)
        assert.is_nil((w:wait(0)), "worker died:\n" .. w:text())
        w:signal("TERM")
        assert.same({ "exited", 0 }, { w:wait(15) })
    end)
end)
