-- A broken worker (docs/reliability.md W9): a worker whose every task fails
-- the same way through its own fault (its temp dir gone, its device
-- faulting, its model file corrupted) stops claiming after a bounded number
-- of failures in a row, hands the tasks back uncharged and exits with a
-- status its supervisor restarts it on; the queue is not drained into dead
-- letters, a healthy worker then completes every task, and a task that is
-- bad in itself is still dead-lettered. Real PostgreSQL, redis-server,
-- `wtt serve` and `wtt worker` processes on real clips; the invariant
-- checker runs after every scenario.

local support = require "spec.support.faults"
local runtime = require "wtt.runtime"
local sys = require "wtt.sys"
local worker = require "wtt.worker"

describe("broken worker (W9) #redis #pg", function()
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

    local function completed(h)
        return h.status == "completed"
    end

    local function llen(key)
        return tonumber(env.r:call("LLEN", env:key(key)))
    end

    -- Every task pending and uncharged, none dead-lettered or held.
    local function all_back(jobs, w)
        for _, j in ipairs(jobs) do
            local h = env:task(j.tid)
            assert.equal("pending", h.status, w:text())
            assert.equal("0", h.attempts)
            assert.is_nil(h.error)
        end
        assert.equal(0, llen("task:failed"))
        assert.equal(0, llen("task:processing"))
    end

    local function submit(n)
        local jobs = {}
        for i = 1, n do
            local id, tid = env:submit(support.CLIP_NAMES[i])
            jobs[i] = { id = id, tid = tid }
        end
        return jobs
    end

    -- A healthy worker completes every task at its first charged attempt.
    local function healthy_finishes(jobs)
        local w = env:worker()
        for _, j in ipairs(jobs) do
            local h = env:wait_task(j.tid, completed, 60, "completion")
            assert.equal("1", h.attempts)
            env:wait_row(j.id, "completed")
        end
        assert.equal(0, llen("task:failed"))
        env:check_invariants(8)
        w:signal("TERM")
        assert.same({ "exited", 0 }, { w:wait(15) })
    end

    local BROKEN = {
        { what = "temp dir is gone (its local disk)",
          env = function(w_dir) return { TMPDIR = w_dir .. "/gone" } end,
          status = worker.EXIT_LOCAL, event = "worker.local_failure ",
          reason = "reason=\"local failure\"" },
        { what = "every model run faults on the device",
          env = function() return { WTT_TEST_DEVICE_FAULT_AFTER = "1",
                                    WTT_WORKER_THREADS = "1" } end,
          status = worker.EXIT_DEVICE, event = "worker.device_fault ",
          reason = "reason=\"device fault\"" },
    }

    for _, b in ipairs(BROKEN) do
        it("a worker whose " .. b.what .. " stops after 3 failures in a "
           .. "row, exit " .. b.status .. "; the 3 tasks are back uncharged, "
           .. "no dead letter; a healthy worker completes them", function()
            local jobs = submit(3)
            local e = b.env(env.tmp)
            e.WTT_DEVICE_FAULT_BACKOFF = "0.1"
            e.WTT_WORKER_MAX_LOCAL_FAILURES = "3"
            e.WTT_MAX_DEVICE_FAULTS = "3"
            local w = env:worker(e)
            assert.same({ "exited", b.status }, { w:wait(60) }, w:text())
            all_back(jobs, w)
            assert.equal(3, w:count(b.event), w:text())
            assert.equal(3, w:count(b.reason))
            assert.equal(0, w:count("task.failed"))
            healthy_finishes(jobs)
        end)
    end


    it("a worker with a corrupted model file exits 1 at start and claims "
       .. "nothing", function()
        local jobs = submit(2)
        local dir = env.tmp .. "/bad-model"
        assert(os.execute("mkdir -p '" .. dir .. "'"))
        local src = runtime.source_dir .. "/models/basic-pitch"
        for _, name in ipairs(sys.listdir(src)) do
            local bytes = assert(sys.read_file(src .. "/" .. name))
            if name:match("%.bin$") then
                -- Cut in half: the weights the graph names are not there.
                bytes = bytes:sub(1, math.floor(#bytes / 2))
            end
            assert(sys.write_file(dir .. "/" .. name, bytes))
        end
        local w = env:worker({ WTT_MODEL_DIR = dir })
        assert.same({ "exited", 1 }, { w:wait(30) }, w:text())
        assert.matches("model:", w:text(), 1, true)
        all_back(jobs, w)
        healthy_finishes(jobs)
    end)


    it("beside a broken worker, a healthy one finishes every good task and "
       .. "a rotten upload is still dead-lettered at its first charged "
       .. "attempt", function()
        local jobs = submit(4)
        -- Passes upload's checks, then rots on disk: decoding fails.
        local bad_id = env:upload("guitar_fast_run")
        local name = env:row(bad_id).audio_path
        local bytes = assert(sys.read_file(env.media .. "/" .. name))
        assert(sys.write_file(env.media .. "/" .. name, bytes:sub(1, 12)
                              .. string.rep("\255\0garbage", 2000)))
        local bad_tid = env:generate(bad_id)
        -- The broken one starts first, so it meets tasks (the bad one
        -- likely among them) before the healthy one runs.
        local broken = env:worker({ TMPDIR = env.tmp .. "/gone",
                                    WTT_DEVICE_FAULT_BACKOFF = "0.2",
                                    WTT_WORKER_MAX_LOCAL_FAILURES = "3" })
        broken:await("worker.local_failure ", 1, 20)
        local healthy = env:worker()
        for _, j in ipairs(jobs) do
            local h = env:wait_task(j.tid, completed, 60, "completion")
            assert.equal("1", h.attempts)
            env:wait_row(j.id, "completed")
        end
        local h = env:wait_task(bad_tid, function(x)
            return x.status == "failed"
        end, 30, "dead letter")
        assert.equal("1", h.attempts)
        env:wait_row(bad_id, "failed")
        assert.equal(1, llen("task:failed"))
        assert.equal(0, broken:count("task.failed"))
        -- Whether the broken one reaches its limit depends on how many
        -- tasks it met before the healthy one emptied the queue: at the
        -- limit it must have stopped by itself, below it it idles.
        if broken:count("worker.local_failure ") >= 3 then
            assert.same({ "exited", worker.EXIT_LOCAL },
                        { broken:wait(60) }, broken:text())
        else
            broken:signal("TERM")
            assert.same({ "exited", 0 }, { broken:wait(15) }, broken:text())
        end
        env:check_invariants(8)
        healthy:signal("TERM")
        assert.same({ "exited", 0 }, { healthy:wait(15) })
    end)
end)
