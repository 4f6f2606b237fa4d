--- What a wtt.worker holds, taken at start and given back at stop: the
-- Redis client and queue, the policy plugins, the model, and the
-- heartbeat thread (lua/wtt/heartbeat.lua). `worker` holds the methods
-- wtt.worker puts on every worker (start, stop); `hostname` is
-- wtt.worker.hostname.

local json = require "wtt.json"
local log = require "wtt.log"
local redis = require "wtt.redis"
local sys = require "wtt.sys"
local thread = require "wtt.thread"
local runtime = require "wtt.runtime"
local report_health = require("wtt.worker.device").report_health

local _M = {}

--- Worker methods; wtt.worker copies them onto its module table, which is
-- every worker's method table.
local worker = {}
_M.worker = worker


function _M.hostname()
    local h = sys.read_file("/proc/sys/kernel/hostname")
    h = h and h:gsub("%s+$", "") or os.getenv("HOSTNAME") or "localhost"
    return h ~= "" and h or "localhost"
end
local hostname = _M.hostname


--- Connects, loads the model, starts the heartbeat thread.
-- @return true | nil, err
function worker.start(self)
    local cfg = self.cfg
    sys.trap({ "TERM", "INT" })
    local lok, lerr = self:apply_limits()
    if not lok then
        return nil, lerr
    end
    math.randomseed(sys.getpid() * 1000 + math.floor(sys.time() * 1000)
                    % 1000003)
    -- A URL that cannot match the server (TLS against a plain port, a CA
    -- that does not sign its certificate) stops the start; an outage does
    -- not: the loop below retries until Redis comes back.
    local ok, perr, kind = redis.probe(cfg.redis_url)
    if not ok and kind == "config" then
        return nil, "redis: " .. perr
    elseif not ok then
        log.warn("worker.redis_unreachable", { error = perr })
    end
    -- The plugins first: a worker must not run tasks under a policy it
    -- could not load (the same loader and checks as serve's reloads).
    local policy = require "wtt.policy"
    local pok, plerr = policy.reload()
    if not pok then
        return nil, "plugins: " .. tostring(plerr)
    end
    log.info("worker.plugins", { versions = json.encode(
        policy.current().versions) })
    local r, err = redis.connect(cfg.redis_url, { lazy = true })
    if not r then
        return nil, err
    end
    self.r = r
    self.q = require("wtt.queue").new(r, { prefix = cfg.prefix })
    local warning = require("wtt.queue").eviction_warning(r)
    if warning then
        log.warn("redis.eviction_policy", { warning = warning })
    end
    local device = "none"
    if not cfg.noop then
        local model = require "wtt.model"
        local t0 = sys.now()
        local m
        m, err = model.load(nil, {
            device = cfg.device, threads = cfg.threads,
            fault_after = cfg.test_device_fault_after })
        if not m then
            return nil, "model: " .. tostring(err)
        end
        self.model = m
        device = m.device
        log.info("worker.model_loaded", { device = device,
                                          load_s = string.format(
                                              "%.3f", sys.now() - t0),
                                          batch_items = m.batch_items
                                                        and m:batch_items() })
    end
    self.device = device
    for _, k in ipairs({ ".task", ".wps", ".stale", ".stop", ".beat",
                         ".last_device_error" }) do
        thread.set(self.key .. k, nil)
    end
    report_health(self)
    local hb
    hb, err = thread.start(runtime.lua_dir .. "/wtt/heartbeat.lua",
                           json.encode({
        redis_url = cfg.redis_url, prefix = cfg.prefix,
        worker_id = cfg.id, key = self.key, interval = cfg.heartbeat,
        ttl = math.max(cfg.worker_ttl, 3 * cfg.heartbeat),
        info = { host = hostname(), pid = sys.getpid(), device = device,
                 started = math.floor(sys.time() * 1000) },   -- ms
    }))
    if not hb then
        return nil, err
    end
    self.hb = hb
    local shown = cfg.redis_url:gsub("//[^@/]*@", "//***@")
    log.info("worker.started", { worker = cfg.id, redis = shown,
                                 web = cfg.web_url,
                                 device = device, noop = cfg.noop,
                                 once = cfg.once,
                                 batch_tasks = cfg.batch_tasks })
    return true
end


function worker.stop(self)
    thread.set(self.key .. ".stop", "1")
    if self.hb then
        local ok, err = self.hb:join(math.max(2, 2 * self.cfg.heartbeat))
        if not ok then
            log.warn("worker.heartbeat_join", { error = err })
        end
    end
    if self.model and self.model.core and self.model.core.close then
        self.model.core:close()
    end
    if self.r then
        self.r:close()
    end
    log.info("worker.stopped", { tasks = self.done })
end


return _M
