-- docker/worker-health.lua, the worker image's HEALTHCHECK, against a
-- real redis-server and real `wtt worker` processes on this host: healthy
-- while a worker of this host heartbeats and reports no device fault.

local dh = require "spec.support.deploy"
local rh = require "spec.support.redis"
local runtime = require "wtt.runtime"
local sys = require "wtt.sys"
local queue = require "wtt.queue"

local SCRIPT = dh.ROOT .. "/docker/worker-health.lua"
local PREFIX = "hc:"

describe("docker/worker-health.lua", function()
    local srv, q, dir

    local function health(env)
        local e = { REDIS_URL = srv.url, WTT_KEY_PREFIX = PREFIX,
                    WTT_WORKER_ID = false }
        for k, v in pairs(env or {}) do e[k] = v end
        local code, out, err = dh.run({ runtime.exe, "run", SCRIPT }, { env = e })
        return code, out .. err
    end

    local function host()
        return (sys.read_file("/proc/sys/kernel/hostname") or ""):gsub("%s+$", "")
    end

    -- Starts `wtt worker` with its default id (<hostname>-<pid>).
    local function start_worker(args, env)
        local log = dir .. "/worker-" .. #args .. ".log"
        local argv = { runtime.exe, "worker" }
        for _, a in ipairs(args) do argv[#argv + 1] = a end
        local e = { REDIS_URL = srv.url, WTT_KEY_PREFIX = PREFIX,
                    WTT_WORKER_TOKEN = "t", WTT_WEB_URL = "http://127.0.0.1:9",
                    WTT_HEARTBEAT_INTERVAL = "0.2", WTT_WORKER_ID = false,
                    DATABASE_URL = false, TMPDIR = dir }
        for k, v in pairs(env or {}) do e[k] = v end
        local pid = assert(sys.spawn(argv, { env = e, stdout = log, stderr = log }))
        -- Wait until it is among the live workers (its first heartbeat).
        local id = host() .. "-" .. pid
        for _ = 1, 600 do
            for _, w in ipairs(assert(q:workers())) do
                if w.id == id then return pid, log end
            end
            sys.sleep(0.05)
        end
        error("worker did not register:\n" .. (sys.read_file(log) or ""))
    end

    local function stop(pid)
        sys.kill(pid, "TERM")
        local how = sys.wait(pid, 60)
        if not how then
            sys.kill(pid, "KILL")
            sys.wait(pid, 5)
        end
    end

    setup(function()
        srv = rh.start()
        q = queue.new(assert(srv:client()), { prefix = PREFIX })
        dir = assert(sys.mkdtemp("wtt-health-"))
    end)

    teardown(function()
        if srv then srv:stop() end
        if dir then sys.rmtree(dir) end
    end)

    it("is unhealthy with no worker of this host", function()
        local code, out = health()
        assert.equals(1, code)
        assert.truthy(out:find("no live worker of host", 1, true), out)
    end)

    it("is unhealthy when Redis cannot be reached", function()
        local code, out = health({ REDIS_URL = "redis://127.0.0.1:9/0" })
        assert.equals(1, code)
        assert.truthy(out:find("redis", 1, true), out)
    end)

    it("is healthy while a CPU worker of this host heartbeats, and not after it stopped", function()
        -- WTT_DEVICE=auto, as in the image: on a host without a usable
        -- GPU the worker falls back to the CPU and says so in one line.
        local pid, log = start_worker({}, { WTT_DEVICE = "auto", WTT_WORKER_THREADS = "1" })
        local code, out = health()
        assert.equals(0, code, out)
        local text = sys.read_file(log) or ""
        local lines = {}
        for l in text:gmatch("[^\n]*event=model%.device[^\n]*") do lines[#lines + 1] = l end
        assert.equals(1, #lines, text)
        if lines[1]:find("device=cpu", 1, true) then
            assert.truthy(lines[1]:find("reason=", 1, true), lines[1])
        end
        stop(pid)
        code, out = health()
        assert.equals(1, code, out)
    end)

    it("is unhealthy when this host's worker reports a device fault", function()
        assert(q:worker_beat(host() .. "-424242", { host = host(), pid = 424242,
                             healthy = "0", device_faults = "2",
                             last_device_error = "cudaErrorLaunchFailure" }, 30))
        local code, out = health()
        assert.equals(1, code)
        assert.truthy(out:find("device fault", 1, true), out)
        assert.truthy(out:find("cudaErrorLaunchFailure", 1, true), out)
        assert(q:worker_gone(host() .. "-424242"))
    end)

    it("finds the worker by WTT_WORKER_ID when the id is set", function()
        assert(q:worker_beat("gpu0", { host = "elsewhere", pid = 1, healthy = "1" }, 30))
        assert.equals(0, (health({ WTT_WORKER_ID = "gpu0" })))
        assert.equals(1, (health()))
        assert(q:worker_gone("gpu0"))
    end)
end)
