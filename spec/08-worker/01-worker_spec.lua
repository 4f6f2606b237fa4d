-- `wtt worker` against a real redis-server and a tiny fake web (`wtt serve`
-- with throwaway routes for /media and /transcribe/_result), on real clips.
-- Tasks are enqueued by hand with the raw Redis commands of docs/queue.md,
-- so these specs depend only on wtt.queue's worker-side API.

local helpers = require "spec.support.server"
local rh = require "spec.support.redis"
local json = require "wtt.json"
local runtime = require "wtt.runtime"
local sys = require "wtt.sys"

local TOKEN = "spec-worker-token"
local CLIP = helpers.FIXTURES .. "/clips/guitar_nylon_single.wav"

-- The fake web. Behaviour per test comes from files in FAKE_DIR:
--   media/<name>                 served by GET /media/<name>
--   media-status-<name>          answer this status instead
--   result-status-<id>           answer this status to POST _result
--   hits-media-<name>, hits-result-<id>   one line per request
--   results/<id>/<field>         what POST _result received (claim too)
local FAKE_ROUTES = [=[
local http = require "wtt.http"
local sys = require "wtt.sys"
local DIR = os.getenv("FAKE_DIR")
local TOKEN = os.getenv("FAKE_TOKEN")

local function hit(name)
    local f = io.open(DIR .. "/hits-" .. name, "a")
    f:write("x\n")
    f:close()
end

local function forced(name)
    local s = sys.read_file(DIR .. "/" .. name)
    return s and tonumber(s)
end

-- The `auth` option (routes under /media/ and /transcribe/_result/ must
-- have one): it runs before the body is read, so it also counts the hit.
local function counted_auth(kind, param)
    return function(req)
        hit(kind .. "-" .. req.params[param])
        if req:header("authorization") ~= "Bearer " .. TOKEN then
            http.abort(401, "unauthorized", "bad worker token")
        end
    end
end

return {
    { "GET", "/livez", function() return 200, "ok" end },
    { "GET", "/media/:name", function(req)
        local name = req.params.name
        local status = forced("media-status-" .. name)
        if status then
            return status, { error = "forced" }
        end
        local path = DIR .. "/media/" .. name
        if not sys.exists(path) then
            return 404, { error = "not_found" }
        end
        return 200, sys.read_file(path),
               { ["Content-Type"] = "application/octet-stream" }
    end, { auth = counted_auth("media", "name") } },
    { "POST", "/transcribe/_result/:id/", function(req)
        local id = req.params.id
        local status = forced("result-status-" .. id)
        if status then
            return status, { error = "forced" }
        end
        local out = DIR .. "/results/" .. id
        os.execute("mkdir -p '" .. out .. "'")
        for _, f in ipairs(req.files) do
            assert(req:keep(f, out .. "/" .. f.field))
        end
        assert(sys.write_file(out .. "/claim", tostring(req.form.claim)))
        return 200, { midi = "midi/" .. id .. ".mid",
                      notes = "notes/" .. id .. ".json" }
    end, { body = "form", auth = counted_auth("result", "id") } },
}
]=]


local function hex32()
    local t = {}
    for i = 1, 32 do
        t[i] = string.format("%x", math.random(0, 15))
    end
    return table.concat(t)
end


describe("wtt worker #redis", function()
    local srv, web, r, fake, n = nil, nil, nil, nil, 0
    local workers = {}

    setup(function()
        math.randomseed(sys.getpid() + math.floor(sys.time()))
        srv = rh.start()
        r = assert(srv:client())
        fake = assert(sys.mkdtemp("wtt-fakeweb-"))
        os.execute("mkdir -p '" .. fake .. "/routes' '" .. fake .. "/media'")
        assert(sys.write_file(fake .. "/routes/fake.lua", FAKE_ROUTES))
        web = helpers.serve({ routes = fake .. "/routes", threads = 2,
                              env = { FAKE_DIR = fake, FAKE_TOKEN = TOKEN } })
    end)

    teardown(function()
        for _, w in ipairs(workers) do
            if not w.exited then
                sys.kill(w.pid, "KILL")
                sys.wait(w.pid, 5)
            end
            sys.rmtree(w.dir)
        end
        if web then web:stop() end
        if r then r:close() end
        if srv then srv:stop() end
        if fake then sys.rmtree(fake) end
    end)

    -- Each test gets its own key prefix.
    local function prefix()
        n = n + 1
        return "w" .. n .. ":"
    end

    local function media(data)
        local name = hex32() .. ".wav"
        assert(sys.write_file(fake .. "/media/" .. name, data))
        return name
    end

    -- A fixed queue policy for the spec's own queue objects (the worker
    -- uses plugins/ defaults): the visibility timeout comes from the test.
    local function policy(timeout_ms, max_attempts)
        return {
            max_attempts = function() return max_attempts or 3 end,
            backoff_ms = function() return 10 end,
            retryable = function(_, flag) return flag ~= false end,
            timeout_ms = function() return timeout_ms or 30000 end,
            lane = function() return "default" end,
            dead_ttl_s = function() return 3600 end,
            final_ttl_s = function() return 3600 end,
            versions = {}, source = "spec",
        }
    end

    local function enqueue(pre, opts)
        opts = opts or {}
        local q = require("wtt.queue").new(r, {
            prefix = pre, policy = policy(opts.timeout_ms) })
        local id = opts.id or hex32()
        local payload = {
            audio_url = "/media/" .. (opts.media or media(
                assert(sys.read_file(CLIP)))),
            options = opts.options or {},
            outputs = opts.outputs or { "midi", "notes" },
            duration_s = opts.duration_s,
        }
        assert(q:enqueue({ id = id, audio_midi_id = 1, payload = payload }))
        return id, payload
    end

    local function start_worker(pre, env, args)
        local dir = assert(sys.mkdtemp("wtt-worker-"))
        local e = {
            REDIS_URL = srv.url, WTT_WEB_URL = web.url,
            WTT_WORKER_TOKEN = TOKEN, WTT_KEY_PREFIX = pre,
            WTT_DEVICE = "cpu", WTT_WORKER_THREADS = "2",
            WTT_HEARTBEAT_INTERVAL = "0.1", WTT_POLL_INTERVAL = "0.5",
            WTT_REAP_INTERVAL = "0.2",
            WTT_HTTP_RETRIES = "3", WTT_HTTP_BACKOFF = "0.05",
            WTT_HTTP_BACKOFF_MAX = "0.2", WTT_HTTP_TIMEOUT = "20",
            WTT_LOG_LEVEL = "info", TMPDIR = dir,
            WTT_WORKER_ID = "spec-" .. pre:gsub(":", ""),
            DATABASE_URL = false,
        }
        for k, v in pairs(env or {}) do
            e[k] = v
        end
        local argv = { runtime.exe, "worker" }
        for _, a in ipairs(args or {}) do
            argv[#argv + 1] = a
        end
        local log = dir .. "/worker.log"
        local pid = assert(sys.spawn(argv, { env = e, stdout = log,
                                             stderr = log }))
        local w = { pid = pid, log = log, dir = dir, id = e.WTT_WORKER_ID }
        workers[#workers + 1] = w
        function w.text() return sys.read_file(log) or "" end
        function w.wait(timeout)
            local how, code = sys.wait(pid, timeout or 30)
            if how then
                w.exited = true
            end
            return how, code
        end
        return w
    end

    local function task(pre, id)
        local flat = assert(r:call("HGETALL", pre .. "task:" .. id))
        local h = {}
        for i = 1, #flat, 2 do
            h[flat[i]] = flat[i + 1]
        end
        return h
    end

    local function list_has(key, id)
        for _, v in ipairs(assert(r:call("LRANGE", key, 0, -1))) do
            if v == id then
                return true
            end
        end
        return false
    end

    local function hits(name)
        local s = sys.read_file(fake .. "/hits-" .. name) or ""
        return select(2, s:gsub("\n", ""))
    end

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
        local id = hex32()
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
