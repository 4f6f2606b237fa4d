local rh = require "spec.support.redis"
local qh = require "spec.support.queue"
local queue = require "wtt.queue"
local sys = require "wtt.sys"
local runtime = require "wtt.runtime"

local id = qh.id


describe("wtt queue (command line) #redis", function()
    local srv, r, q, dir
    local P = "{wtt}:"
    setup(function()
        srv = rh.start()
        r = assert(srv:client())
        dir = assert(sys.mkdtemp("wtt-queue-cli-"))
    end)
    teardown(function()
        if r then r:close() end
        if srv then srv:stop() end
        if dir then sys.rmtree(dir) end
    end)
    before_each(function()
        assert(r:call("FLUSHALL"))
        q = queue.new(r, { prefix = P, policy = qh.policy() })
    end)

    -- Runs `wtt queue ARGS...` with REDIS_URL and WTT_KEY_PREFIX set.
    -- @return exit code, stdout, stderr
    local function wtt_queue(...)
        local out, err = dir .. "/out", dir .. "/err"
        os.remove(out)
        os.remove(err)
        local argv = { runtime.exe, "queue", ... }
        local pid = assert(sys.spawn(argv, {
            env = { REDIS_URL = srv.url, WTT_KEY_PREFIX = P },
            stdout = out, stderr = err }))
        local how, code = sys.wait(pid, 30)
        assert.equal("exited", how)
        return code, sys.read_file(out) or "", sys.read_file(err) or ""
    end

    local function dead_letters(n)
        for i = 1, n do
            assert.is_true(q:enqueue({ id = id(i), payload = {} }))
            local t = assert(q:claim("w"))
            q:fail(t.id, t.claim, "bad audio " .. i, false)
        end
    end

    it("stats prints the depths", function()
        assert.is_true(q:enqueue({ id = id(1), payload = {} }))
        local code, out = wtt_queue("stats")
        assert.equal(0, code)
        assert.matches("pending%s+1", out)
        assert.matches("processing%s+0", out)
        assert.matches("paused%s+no", out)
    end)

    it("takes --redis-url and --prefix over the environment", function()
        assert.is_true(q:enqueue({ id = id(1), payload = {} }))
        local code, out = wtt_queue("--redis-url", srv.url, "--prefix",
                                    "other:", "stats")
        assert.equal(0, code)
        assert.matches("pending%s+0", out)
    end)

    it("list-dead and inspect show dead letters", function()
        dead_letters(3)
        local code, out = wtt_queue("list-dead", "2")
        assert.equal(0, code)
        assert.matches(id(1) .. "  attempts=1  bad audio 1", out, 1, true)
        assert.matches(id(2), out, 1, true)
        assert.is_nil(out:find(id(3), 1, true))
        code, out = wtt_queue("inspect", id(2))
        assert.equal(0, code)
        assert.matches("status%s+failed", out)
        assert.matches("error%s+bad audio 2", out)
        code = wtt_queue("inspect", id(9))
        assert.equal(1, code)
    end)

    it("requeue puts one dead letter back; an unknown id fails", function()
        dead_letters(2)
        local code, out = wtt_queue("requeue", id(1))
        assert.equal(0, code)
        assert.matches("requeued", out)
        assert.equal("pending", q:get(id(1)).status)
        local err
        code, out, err = wtt_queue("requeue", id(7))
        assert.equal(1, code)
        assert.matches("not found", err)
    end)

    it("requeue-all and purge-dead need --yes", function()
        dead_letters(3)
        local code, _, err = wtt_queue("requeue-all")
        assert.equal(1, code)
        assert.matches("--yes", err, 1, true)
        assert.equal(3, q:stats().failed)
        local out
        code, out = wtt_queue("requeue-all", "--yes")
        assert.equal(0, code)
        assert.matches("requeued 3", out)
        assert.equal(3, q:stats().pending)
        for _ = 1, 3 do
            local t = assert(q:claim("w"))
            q:fail(t.id, t.claim, "x", false)
        end
        code = wtt_queue("purge-dead")
        assert.equal(1, code)
        code, out = wtt_queue("purge-dead", "--yes")
        assert.equal(0, code)
        assert.matches("purged 3", out)
        assert.equal(0, q:stats().failed)
        assert.is_nil(q:get(id(1)))
    end)

    it("pause, resume and reap", function()
        assert.equal(0, (wtt_queue("pause")))
        assert.is_true(q:stats().paused)
        assert.equal(0, (wtt_queue("resume")))
        assert.is_false(q:stats().paused)
        assert.is_true(q:enqueue({ id = id(1), payload = {} }))
        assert(q:claim("w"))
        sys.sleep(0.35)
        local code, out = wtt_queue("reap")
        assert.equal(0, code)
        assert.matches("requeued 1, dead 0", out, 1, true)
    end)

    it("answers usage errors with status 2", function()
        assert.equal(2, (wtt_queue()))
        assert.equal(2, (wtt_queue("frobnicate")))
        assert.equal(2, (wtt_queue("inspect")))
        local code, out = wtt_queue("--help")
        assert.equal(0, code)
        assert.matches("requeue%-all", out)
    end)

    it("reap under a broken plugin config exits 1 with the reason, not a traceback",
       function()
        local out, err = dir .. "/out", dir .. "/err"
        local pid = assert(sys.spawn({ runtime.exe, "queue", "reap" }, {
            env = { REDIS_URL = srv.url, WTT_KEY_PREFIX = P,
                    WTT_RETRY_MAX_ATTEMPTS = "-3" },
            stdout = out, stderr = err }))
        local how, code = sys.wait(pid, 30)
        assert.equal("exited", how)
        assert.equal(1, code)
        local text = sys.read_file(err) or ""
        assert.matches("wtt queue: reap: .*retry%.max_attempts", text)
        assert.not_matches("stack traceback", text)
    end)
end)
