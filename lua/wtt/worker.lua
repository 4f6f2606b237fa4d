--- The transcription worker (`wtt worker`, see docs/worker.md).
--
--     local worker = require "wtt.worker"
--     local w = assert(worker.new(cfg))     -- cfg: see DEFAULTS
--     os.exit(w:run())                      -- 0 on a clean stop (SIGTERM too)
--
-- One worker is one process: it loads the model once, SUBSCRIBEs to
-- `task:new` (with a poll fallback) and, on every wake, reaps expired claims
-- and claims tasks until the queue is empty. A task is downloaded from web
-- (`GET /media/...`, worker token), transcribed window by window (each
-- window publishes progress), and its MIDI, notes JSON (and posteriors)
-- are POSTed to `/transcribe/_result/{id}/` before `complete`. A thread
-- (lua/wtt/heartbeat.lua) keeps the claim and the `worker:{id}` hash alive
-- while inference blocks this state. SIGTERM/SIGINT stop claiming; a running
-- task gets `grace` seconds to finish, after which it is cancelled and
-- released (requeued, attempt not charged). With `batch_tasks` N > 1 it
-- claims up to N tasks in one call, downloads them one after another,
-- runs their windows through one model call (`m:transcribe_many`, shared
-- batches) and completes the good ones in one call; each task keeps its
-- own claim, progress and outcome. A device fault (the model answers kind
-- "device") releases every held task uncharged, marks the worker
-- unhealthy, stops claiming for a backoff, and after `max_device_faults`
-- in a row ends `run` with EXIT_DEVICE. The worker never touches
-- PostgreSQL and never reads DATABASE_URL.
--
-- This file holds the options and makes workers; each job is a module in
-- lua/wtt/worker/ (stop, transfer, steps, deliver, single, batch, device,
-- loop, start), each part's methods join this module's table, and this
-- module, which is also every worker's method table, is the one public
-- surface over them all.

local sys = require "wtt.sys"
local device = require "wtt.worker.device"
local start = require "wtt.worker.start"

local _M = {}
local mt = { __index = _M }

_M.DEFAULTS = {
    redis_url = "redis://127.0.0.1:6379",
    web_url = "http://127.0.0.1:8008",
    token = nil,
    prefix = "",
    device = "auto",
    threads = nil,               -- inference threads (engine default)
    id = nil,                    -- default host-pid
    max_download = 512 * 1024 * 1024,
    grace = 30,                  -- seconds a running task gets after SIGTERM
    poll = 5,                    -- seconds between polls without task:new
    heartbeat = 10,              -- seconds between heartbeats
    worker_ttl = 30,             -- TTL of worker:{id} (at least 3 beats)
    reap_interval = 1,           -- seconds between reaps (at most)
    retries = 5,                 -- download / upload attempts
    backoff = 0.5,               -- first retry delay, doubled each time
    backoff_max = 15,
    http_timeout = 120,          -- seconds per download or upload
    connect_timeout = 5,
    noop = false,
    once = false,
    tmp_dir = nil,               -- default TMPDIR or /tmp
    batch_tasks = 1,             -- tasks claimed and inferred together
    max_device_faults = 3,       -- device faults in a row before exiting
    device_fault_backoff = 5,    -- seconds without claiming after a device
                                 -- fault, doubled each fault in a row
    device_fault_backoff_max = 60,
    max_local_failures = 3,      -- tasks in a row failing on this machine's
                                 -- disk before exiting (EXIT_LOCAL)
    -- Bounds on one task (lua/wtt/worker/limits.lua; 0: off).
    max_audio_s = 14400,         -- audio decoded per task (seconds; 0:
                                 -- the engine's own cap, 4 h)
    max_task_s = 3600,           -- wall time of one task's inference
    max_rss_mb = 4096,           -- resident memory, checked every window
    max_file_mb = 3072,          -- RLIMIT_FSIZE: any file the worker writes
    test_window_sleep = 0,       -- tests only: sleep per window
    test_device_fault_after = nil,  -- tests only: engine runs after this
                                    -- many fail as device faults
}

--- Exit status of `run` after `max_device_faults` device faults in a row
-- (a supervisor restarts the worker; docs/worker.md).
_M.EXIT_DEVICE = device.EXIT_DEVICE

--- Exit status of `run` after `max_local_failures` local failures in a
-- row (docs/worker.md "Local failures").
_M.EXIT_LOCAL = device.EXIT_LOCAL

--- The host's name (lua/wtt/worker/start.lua).
_M.hostname = start.hostname
local hostname = start.hostname

-- The methods of the parts join this table, which every worker uses.
for _, part in ipairs {
    require "wtt.worker.stop", require "wtt.worker.transfer",
    require "wtt.worker.steps", require "wtt.worker.deliver",
    require "wtt.worker.single", require "wtt.worker.batch", device,
    require "wtt.worker.loop", require "wtt.worker.limits", start,
} do
    for name, fn in pairs(part.worker) do
        assert(_M[name] == nil, "two parts of wtt.worker define " .. name)
        _M[name] = fn
    end
end


--- A new worker (nothing connected yet). cfg fields: see _M.DEFAULTS.
function _M.new(cfg)
    local self = setmetatable({ cfg = {} }, mt)
    for k, v in pairs(_M.DEFAULTS) do
        self.cfg[k] = v
    end
    for k, v in pairs(cfg or {}) do
        self.cfg[k] = v
    end
    cfg = self.cfg
    if not cfg.noop and (not cfg.token or cfg.token == "") then
        return nil, "no worker token (WTT_WORKER_TOKEN or --token)"
    end
    cfg.id = cfg.id or (hostname() .. "-" .. sys.getpid())
    cfg.web_url = cfg.web_url:gsub("/+$", "")
    self.key = "wtt.worker." .. cfg.id
    self.done = 0
    self.device_faults = 0       -- in a row; a good model run resets it
    self.local_failures = 0      -- in a row; a completed task resets it
    self.last_reap = -math.huge
    self.last_drain = sys.now()
    return self
end


return _M
