-- The worker image's HEALTHCHECK (`wtt run worker-health.lua`): healthy
-- when a worker of this host (a container is a host: its hostname is the
-- worker id's first part, `<hostname>-<pid>`) is in the queue's live
-- workers and has not reported a device fault (docs/worker.md, "Device
-- faults"). A worker that cannot reach Redis stops heartbeating and so
-- turns unhealthy too: it is doing no work then.
--
-- Exit status: 0 healthy, 1 not (the reason on stderr).

local redis = require "wtt.redis"
local queue = require "wtt.queue"

local function die(fmt, ...)
    io.stderr:write("worker-health: ", string.format(fmt, ...), "\n")
    os.exit(1)
end

local f = io.open("/proc/sys/kernel/hostname")
local host = f and f:read("*l") or os.getenv("HOSTNAME") or ""
if f then f:close() end

local url = os.getenv("REDIS_URL") or "redis://127.0.0.1:6379"
local r, err = redis.connect(url, { timeout = 2, connect_timeout = 2 })
if not r then
    die("redis: %s", tostring(redis.explain(err, url:match("^rediss:") ~= nil)))
end
local q = queue.new(r, { prefix = os.getenv("WTT_KEY_PREFIX") or "" })
local workers
workers, err = q:workers()
if not workers then
    die("redis: %s", tostring(err))
end
local mine = os.getenv("WTT_WORKER_ID")
for _, w in ipairs(workers) do
    local ours = (mine and mine ~= "" and w.id == mine)
                 or w.host == host or w.id:sub(1, #host + 1) == host .. "-"
    if ours then
        if w.healthy == 0 then
            die("worker %s reports a device fault: %s", w.id,
                tostring(w.last_device_error))
        end
        os.exit(0)
    end
end
die("no live worker of host %s in the queue's workers", host)
