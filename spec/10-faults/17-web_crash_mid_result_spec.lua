-- Web crashes in the middle of a result (docs/reliability.md W6, W8):
-- `wtt serve` is killed (SIGKILL, by itself) at an exact point of the
-- result path, through the kill points of the test program
-- `wtt_failpoint` (core/app/wtt_failpoint.c, lua/wtt/failpoint.lua):
--
--   result.files_written   the route wrote the MIDI and notes files, Redis
--                          not told, the worker not answered;
--   result.stored          the result stored in the task hash (Redis), the
--                          worker not answered;
--   subscriber.committed   the worker completed the task, the subscriber
--                          committed the row, the id not acknowledged.
--
-- The worker's retries (and the subscriber's recovery after the restart)
-- must converge to exactly one result, byte-identical to what was there
-- at the kill: the same files with the same bytes, the same stored result
-- in Redis, the same row. The product `wtt` has no kill points: the first
-- case shows WTT_FAILPOINT does nothing there. Each kill point runs with
-- both media stores: files in WTT_MEDIA_DIR, and WTT_MEDIA_STORE=pg, where
-- "files written" means PostgreSQL large objects committed and Redis not
-- told. Real PostgreSQL, redis-server, `wtt serve` and `wtt worker` on a
-- real clip; the invariant checker runs after every scenario.

local support = require "spec.support.faults"
local failpoint = require "wtt.failpoint"
local json = require "wtt.json"
local pg = require "wtt.pg"
local runtime = require "wtt.runtime"
local sys = require "wtt.sys"

-- The test program, built beside wtt by the test build (WTT_BUILD_TESTS).
local function failpoint_bin()
    local path = os.getenv("WTT_FAILPOINT_BIN")
    if not path or path == "" then
        path = (runtime.exe:match("^(.*)/[^/]*$") or ".") .. "/wtt_failpoint"
    end
    local f = io.open(path, "rb")
    assert(f, "the test program " .. path .. " is missing: configure with "
              .. "-DWTT_BUILD_TESTS=ON and build the wtt_failpoint target")
    f:close()
    return path
end

-- Log lines of `text` with event `event` that name `tid`.
local function count(text, event, tid)
    local n = 0
    for line in text:gmatch("[^\n]+") do
        if line:find("event=" .. event .. " ", 1, true)
           and (not tid or line:find(tid, 1, true))
        then
            n = n + 1
        end
    end
    return n
end

for _, store in ipairs({ "dir", "pg" }) do
describe("web crash mid-result (W6, W8), media store " .. store
         .. " #redis #pg", function()
    local env
    local binary = runtime.exe

    setup(function()
        env = support.start({
            env = { WTT_MEDIA_STORE = store },
            web = { wrap = function(argv)
                argv[1] = binary
                return argv
            end },
        })
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

    -- Restarts `wtt serve` as `bin` with WTT_FAILPOINT = point (or unset).
    local function restart_serve(bin, point)
        if env.serve_pid then
            local how, code = env:serve_kill("TERM")
            assert.same({ "exited", 0 }, { how, code }, env:serve_text())
        end
        binary = bin
        env.serve_env.WTT_FAILPOINT = point or false
        env:serve_start()
    end

    -- Every result file (MIDI, notes) in the media store: name -> the
    -- SHA-256 of its bytes.
    local function result_files()
        local out = {}
        if store == "pg" then
            for _, r in ipairs(assert(env.db:query(
                "SELECT name, encode(sha256(lo_get(oid)), 'hex') AS sha "
                .. "FROM media_objects WHERE name ~ '[.](mid|json|npy)$'")))
            do
                out[r.name] = r.sha
            end
            return out
        end
        for _, ext in ipairs({ "mid", "json", "npy" }) do
            for _, name in ipairs(env:media_files(ext)) do
                out[name] = pg.sha256hex(assert(sys.read_file(
                    env.media .. "/" .. name)))
            end
        end
        return out
    end

    local function check_invariants()
        env:check_invariants(8, store == "pg" and { media_store = "pg" }
                                or nil)
    end

    -- The row without its timestamps (a re-record must not change the
    -- rest; the timestamps say when, not what).
    local function row_data(id)
        local row = env:row(id)
        local out = {}
        for k, v in pairs(row) do
            if not k:match("_at$") then
                out[k] = v
            end
        end
        return out
    end

    local worker_env = { WTT_HTTP_RETRIES = "60", WTT_HTTP_BACKOFF = "0.1",
                         WTT_HTTP_BACKOFF_MAX = "0.5" }

    -- Completed once, at its first attempt, nothing left in flight.
    local function converged(id, tid, w)
        local h = env:wait_task(tid, function(x)
            return x.status == "completed"
        end, 60, "completion")
        assert.equal("1", h.attempts, w:text())
        env:wait_row(id, "completed", 30)
        assert.truthy(support.eventually(function()
            return env.r:call("LLEN", env:key("task:results")) == 0
                   and env.r:call("LLEN",
                                  env:key("task:results:processing")) == 0
        end, 20), env:logs())
        assert.equal(1, count(w:text(), "task.completed", tid), w:text())
        assert.equal(0, count(w:text(), "task.failed", tid))
        assert.equal(0, count(w:text(), "task.lost", tid))
        return h
    end

    -- The row names exactly the files in the media dir, and the MIDI web
    -- serves is their bytes.
    local function row_names_files(id, files)
        local row = env:row(id)
        local names = {}
        for name in pairs(files) do
            names[#names + 1] = name
        end
        table.sort(names)
        local want = { row.midi_path, row.notes_path }
        table.sort(want)
        assert.same(want, names)
        local res = assert(env:http("GET", "/transcribe/midi/" .. id .. "/"))
        assert.equal(200, res.status, res.body)
        assert.equal(files[row.midi_path], pg.sha256hex(res.body))
    end


    if store == "dir" then
    it("the product wtt has no kill points: WTT_FAILPOINT set, the result "
       .. "path runs through and the same process keeps serving", function()
        assert.is_false(failpoint.compiled)
        restart_serve(runtime.exe, "result.stored")
        local pid = env.serve_pid
        local id, tid = env:submit("guitar_nylon_single")
        local w = env:worker(worker_env)
        converged(id, tid, w)
        assert.is_nil(sys.wait(pid, 0))
        assert.equal(pid, env.serve_pid)
        assert.equal(0, count(env:serve_text(), "failpoint"))
        assert.is_nil(env:serve_text():find("failpoint", 1, true))
        check_invariants()
    end)
    end


    for _, point in ipairs({ "result.files_written", "result.stored",
                             "subscriber.committed" }) do
        it(point .. ": web killed at that point; the retry converges to one "
           .. "result, byte-identical to the first (files, Redis, row)",
           function()
            restart_serve(failpoint_bin(), point)
            local pid = env.serve_pid
            local before = result_files()
            local clip = ({ ["result.files_written"] = "guitar_steel_single",
                            ["result.stored"] = "guitar_strum",
                            ["subscriber.committed"] = "piano_chords" })[point]
            local id, tid = env:submit(clip)
            local w = env:worker(worker_env)

            -- It kills itself at the point.
            local how, sig = sys.wait(pid, 60)
            assert.same({ "signaled", 9 }, { how, sig },
                        env:serve_text() .. w:text())
            env.serve_pid = nil
            assert.truthy(env:serve_text():find("failpoint " .. point
                                                .. ": SIGKILL", 1, true))

            -- What the crash left: files, the Redis hash, the row.
            local at_kill = result_files()
            for name in pairs(before) do
                at_kill[name] = nil
            end
            local h_kill = env:task(tid)
            local row_kill = row_data(id)
            assert.is_true(next(at_kill) ~= nil, "no result file at the kill")
            if point == "result.files_written" then
                assert.is_nil(h_kill.uploads)
                assert.equal("processing", h_kill.status)
            elseif point == "result.stored" then
                assert.is_string(h_kill.uploads)
                assert.equal("processing", h_kill.status)
            else
                assert.equal("completed", h_kill.status)
                assert.equal("completed", row_kill.status)
            end

            -- Web comes back (without the kill point); the worker retries.
            restart_serve(failpoint_bin(), nil)
            local h = converged(id, tid, w)

            local after = result_files()
            for name in pairs(before) do
                after[name] = nil
            end
            assert.same(at_kill, after)       -- same names, same bytes
            row_names_files(id, after)
            if point ~= "result.files_written" then
                assert.equal(h_kill.uploads, h.uploads)
            end
            if point == "subscriber.committed" then
                assert.same(row_kill, row_data(id))
                assert.equal(h_kill.result, h.result)
            else
                -- The worker's POST was cut and sent again.
                assert.truthy(count(w:text(), "task.upload_retry", tid) >= 1,
                              w:text())
            end
            local up = json.decode(h.uploads)
            assert.equal(env:row(id).midi_path, up.midi)
            check_invariants()
            w:signal("TERM")
            assert.same({ "exited", 0 }, { w:wait(15) })
        end)
    end
end)
end
