-- H10, a full disk (docs/reliability.md): the media directory, the upload
-- temp directory and Redis's AOF directory each on a small tmpfs of its
-- own, filled to the last byte by a filler file, then freed. Real
-- PostgreSQL, redis-server, `wtt serve` and `wtt worker`; the invariant
-- checker runs after each scenario, once the space is back.
--
-- Needs root (mounting a tmpfs); elsewhere every test reports "skipped,
-- because ..." with the reason. Every mount is undone in teardown, also
-- after a failure.

local support = require "spec.support.faults"
local small_fs = require "spec.support.small_fs"
local json = require "wtt.json"
local midi = require "wtt.midi"
local sys = require "wtt.sys"

local CLIP = "guitar_nylon_single"       -- the shortest clip
local WHY = small_fs.unavailable()


local function skipped(name)
    it(name, function()
        pending("skipped, because " .. WHY)
    end)
end


-- A worker that keeps retrying its result upload for as long as a spec
-- holds the disk full (bounded: 100 tries, at most 0.3 s apart).
local PATIENT = { WTT_HTTP_RETRIES = "100", WTT_HTTP_BACKOFF = "0.1",
                  WTT_HTTP_BACKOFF_MAX = "0.3" }


-- Stops the stack (if it started) and unmounts every small file system,
-- even when stopping failed; then reports either failure.
local function stop_and_unmount(env)
    local ok, err = true, nil
    if env then
        ok, err = pcall(env.stop, env)
    end
    local uerr = small_fs.unmount_all()
    assert(ok, err)
    assert(not uerr, uerr)
end


describe("H10: a full disk #disk #redis #pg", function()
    if support.needs_single_redis("its Redis keeps its AOF on a small file "
                                  .. "system of its own (--dir)") then
        return
    end

    if WHY then
        skipped("uploads answer 507 and leave no file (media dir, temp dir)")
        skipped("/_result answers 507, the worker retries and completes")
        skipped("Redis refusing writes (AOF on a full disk) gives 503")
        skipped("/_result while Redis refuses writes answers 503")
        return
    end

    local env, media_fs, tmp_fs, aof_fs

    setup(function()
        media_fs = small_fs.mount("media", "64m")
        tmp_fs = small_fs.mount("uploadtmp", "64m")
        aof_fs = small_fs.mount("aof", "64m")
        env = support.start({
            media = media_fs.dir, tmp_dir = tmp_fs.dir,
            redis = { args = { "--maxmemory-policy", "noeviction",
                               "--dir", aof_fs.dir } },
        })
    end)

    teardown(function()
        stop_and_unmount(env)
    end)

    after_each(function()
        if env then
            env:kill_workers()
        end
        for _, fs in ipairs({ media_fs, tmp_fs, aof_fs }) do
            if fs then
                fs:free()
            end
        end
    end)

    local function rows()
        return tonumber(assert(env.db:query(
            "SELECT count(*) AS n FROM audio_midi"))[1].n)
    end

    local function upload_clip()
        return env:http("POST", "/transcribe/upload/", {
            multipart = { { name = "file",
                            file = support.CLIPS .. "/" .. CLIP .. ".wav",
                            filename = "clip.wav",
                            content_type = "audio/wav" } },
        })
    end

    -- The 507 a full disk answers: a JSON body naming it, Retry-After.
    local function assert_507(res, err)
        assert(res, err)
        assert.equal(507, res.status, res.body)
        assert.is_table(res.json, res.body)
        assert.equal("insufficient_storage", res.json.error)
        assert.truthy(tostring(res.json.detail):lower():find("no space left",
                                                             1, true),
                      res.body)
    end

    for _, where in ipairs({ "media", "uploadtmp" }) do
        it("uploads answer 507 and leave no file while the " .. where
           .. " file system is full; the same upload works once space"
           .. " returns", function()
            local fs = where == "media" and media_fs or tmp_fs
            local n0 = rows()
            local media0, tmp0 = media_fs:names(), tmp_fs:names()
            assert.truthy(fs:fill() > 0)
            for _ = 1, 3 do
                assert_507(upload_clip())
            end
            -- The server removes a refused request's temp files when the
            -- connection ends, which may be just after the answer.
            assert.truthy(support.eventually(function()
                return #tmp_fs:names() == #tmp0
            end, 5, 0.02), "temp files left: "
                           .. table.concat(tmp_fs:names(), " "))
            assert.same(media0, media_fs:names())
            assert.same(tmp0, tmp_fs:names())
            assert.equal(n0, rows())
            -- The server goes on: a request that writes nothing is served.
            local res = assert(env:http("GET", "/healthz"))
            assert.equal(200, res.status)

            fs:free()
            local id = env:upload(CLIP)
            assert.equal(n0 + 1, rows())
            local row = env:row(id)
            assert.same({ row.audio_path }, (function()
                local new = {}
                for _, name in ipairs(media_fs:names()) do
                    local seen = false
                    for _, old in ipairs(media0) do
                        seen = seen or old == name
                    end
                    if not seen then
                        new[#new + 1] = name
                    end
                end
                return new
            end)())
            assert.same(tmp0, tmp_fs:names())
            env:check_invariants(8)
        end)
    end

    for _, where in ipairs({ "media", "uploadtmp" }) do
        it("/_result answers 507 while the " .. where .. " file system is"
           .. " full; the worker retries and the task completes once, with"
           .. " a whole MIDI, when space returns", function()
            local fs = where == "media" and media_fs or tmp_fs
            local id, tid = env:submit(CLIP)
            local media0, tmp0 = media_fs:names(), tmp_fs:names()
            fs:fill()
            local w = env:worker(PATIENT)
            assert(w:await("task.upload_retry", 3, 60) >= 3,
                   "the worker never retried its upload" .. env:logs())
            assert.truthy(w:text():find("HTTP 507", 1, true), env:logs())
            -- Nothing of the refused POSTs stays, and nothing is recorded.
            assert.same(media0, media_fs:names())
            assert.same(tmp0, tmp_fs:names())
            local h = env:task(tid)
            assert.equal("processing", h.status)
            assert.is_nil(h.result)
            assert.not_equal("completed", env:row(id).status)

            fs:free()
            local row = env:wait_row(id, "completed", 60)
            assert.equal(tid, row.task_id)
            local res = assert(env:http("GET", "/transcribe/midi/" .. id
                                        .. "/"))
            assert.equal(200, res.status, res.body)
            assert(midi.validate(res.body))
            assert.equal(res.body, sys.read_file(media_fs.dir .. "/"
                                                 .. row.midi_path))
            assert.equal("1", env:task(tid).attempts)
            env:check_invariants(8)
        end)
    end

    it("Redis refusing writes (its AOF on a full disk: MISCONF) gives 503"
       .. " and nothing half-done; the task runs once space returns",
       function()
        local id = env:upload(CLIP)
        aof_fs:fill()
        -- Redis finds the disk full on its next AOF write, then refuses
        -- every write until one succeeds again.
        local probe = env:key("disk-probe")
        local last
        assert(support.eventually(function()
            local ok, err = env.r:call("SET", probe, string.rep("x", 65536))
            last = err
            return not ok and tostring(err):find("MISCONF", 1, true)
        end, 10, 0.1), "Redis never refused a write: " .. tostring(last))

        local res = assert(env:http("POST", "/transcribe/generate/", {
            headers = { ["Content-Type"] = "application/json" },
            body = json.encode({ audio_midi_id = id, options = {} }),
        }))
        assert.equal(503, res.status, res.body)
        assert.equal("5", res.headers["retry-after"])
        local tid = assert(res.json.task_id, res.body)
        -- The row holds the task (the system of record, reconciled later);
        -- Redis holds nothing of it.
        local row = env:row(id)
        assert.equal(tid, row.task_id)
        assert.equal("pending", row.status)
        assert.equal(0, env.r:call("EXISTS", env:key("task:" .. tid)))

        aof_fs:free()
        assert(support.eventually(function()
            return env.r:call("SET", probe, "x") == "OK"
        end, 15, 0.1), "Redis still refuses writes after space returned")
        env.r:call("DEL", probe)
        env:worker()
        row = env:wait_row(id, "completed", 60)
        assert.equal(tid, row.task_id)
        env:check_invariants(8)
    end)

    it("Redis refusing writes while a worker posts its result: /_result"
       .. " answers 503 and keeps no file; the task completes once when"
       .. " space returns", function()
        local id, tid = env:submit(CLIP)
        local env_w = { WTT_WORKER_TEST_WINDOW_SLEEP = "0.4" }
        for k, v in pairs(PATIENT) do
            env_w[k] = v
        end
        local w = env:worker(env_w)
        env:wait_task(tid, support.running_on(w, 1), 30, "running")
        local media0 = media_fs:names()
        aof_fs:fill()
        local probe = env:key("disk-probe")
        assert(support.eventually(function()
            local ok, err = env.r:call("SET", probe, string.rep("x", 65536))
            return not ok and tostring(err):find("MISCONF", 1, true)
        end, 10, 0.1), "Redis never refused a write")
        assert(w:await("HTTP 503", 2, 60) >= 2,
               "the worker's result was never refused" .. env:logs())
        -- Refused, and nothing of it kept: no file, no result in the hash.
        assert.same(media0, media_fs:names())
        assert.is_nil(env:task(tid).result)
        assert.not_equal("completed", env:row(id).status)

        aof_fs:free()
        assert(support.eventually(function()
            return env.r:call("SET", probe, "x") == "OK"
        end, 15, 0.1), "Redis still refuses writes after space returned")
        env.r:call("DEL", probe)
        local row = env:wait_row(id, "completed", 60)
        assert.equal(tid, row.task_id)
        local res = assert(env:http("GET", "/transcribe/midi/" .. id .. "/"))
        assert.equal(200, res.status, res.body)
        assert(midi.validate(res.body))
        print(("H10 redis /_result: %d answers 503, attempts %s, %d lost"
               .. " claims"):format(w:count("HTTP 503"),
                                    tostring(env:task(tid).attempts),
                                    w:count("task.lost")))
        env:check_invariants(8)
    end)
end)


-- PostgreSQL's data directory on a small file system, with the media in
-- PostgreSQL too (WTT_MEDIA_STORE=pg: every upload writes large objects,
-- so a full disk shows at once). PostgreSQL refuses writes it cannot
-- extend a file for (53100); when it cannot write WAL it PANICs and the
-- postmaster may stop. Either way web answers 507 or 503, never 500,
-- leaves nothing half-stored, and resumes once space returns (after a
-- restart, when the postmaster went down).
describe("H10: PostgreSQL's disk full #disk #pg", function()
    if WHY then
        skipped("uploads answer 507 or 503 and store nothing; resumes")
        return
    end

    local env, pg_fs

    setup(function()
        pg_fs = small_fs.mount("pgdata", "96m", "postgres:postgres")
        env = support.start({
            pg = { data = pg_fs.dir },
            env = { WTT_MEDIA_STORE = "pg" },
        })
        env.media_store = "pg"
    end)

    teardown(function()
        stop_and_unmount(env)
    end)

    local function upload_clip()
        return env:http("POST", "/transcribe/upload/", {
            multipart = { { name = "file",
                            file = support.CLIPS .. "/" .. CLIP .. ".wav",
                            filename = "clip.wav",
                            content_type = "audio/wav" } },
        })
    end

    it("uploads answer 507 or 503 (never 500) and store nothing; every"
       .. " upload answered 201 is whole; all resumes once space returns",
       function()
        local before = env:upload(CLIP)
        local function stored()
            local r = assert(env.db:query("SELECT (SELECT count(*) FROM "
                .. "media_objects) AS named, (SELECT count(*) FROM "
                .. "pg_largeobject_metadata) AS objects"))[1]
            return tonumber(r.named), tonumber(r.objects)
        end
        local named0, objects0 = stored()
        pg_fs:fill()
        local statuses, created = {}, {}
        for _ = 1, 6 do
            local res, err = upload_clip()
            local status = res and res.status or tostring(err)
            statuses[#statuses + 1] = status
            assert(status == 201 or status == 507 or status == 503,
                   "upload answered " .. tostring(status) .. ": "
                   .. tostring(res and res.body) .. env:logs())
            if status == 201 then
                created[#created + 1] = res.json.audio_midi_id
            end
        end
        assert.truthy(#created < #statuses, "PostgreSQL never ran out of"
                      .. " space: " .. table.concat(statuses, " "))
        local up = env.pgsrv:pg_ctl("status") and true or false
        print(("H10 pg: answers while full: %s; postmaster %s")
              :format(table.concat(statuses, " "), up and "up" or "down"))

        pg_fs:free()
        -- A PANIC may have left the postmaster down: web says so with 503,
        -- and it is started again, as a supervisor would.
        if not up then
            local res = assert(env:http("GET", "/transcribe/status/"
                                        .. before .. "/"))
            assert.equal(503, res.status, res.body)
            env.pgsrv.running = false
            env.pgsrv:start()
        end
        pcall(env.db.close, env.db)
        env.db = assert(require("wtt.pg").connect(env.pgsrv.url))
        -- Nothing half-stored: one named object per upload answered 201,
        -- and no large object without a name.
        local named, objects = stored()
        assert.equal(named0 + #created, named)
        assert.equal(objects0 + #created, objects)
        local id
        assert(support.eventually(function()
            local res = upload_clip()
            if res and res.status == 201 then
                id = res.json.audio_midi_id
                return true
            end
        end, 30, 0.2), "uploads never resumed" .. env:logs())
        -- Every upload answered 201 is whole, in the row and the store.
        for _, uid in ipairs(created) do
            local res = assert(env:http("GET", "/transcribe/audio/" .. uid
                                        .. "/"))
            assert.equal(200, res.status, res.body)
            assert.equal(sys.read_file(support.CLIPS .. "/" .. CLIP
                                       .. ".wav"), res.body)
        end
        local tid = env:generate(id)
        env:worker()
        local row = env:wait_row(id, "completed", 60)
        assert.equal(tid, row.task_id)
        env:check_invariants(8, { media_store = "pg" })
    end)
end)
