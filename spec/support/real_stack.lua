--- The whole service with nothing simulated, for end-to-end specs: a real
-- PostgreSQL and redis-server, `wtt migrate`, `wtt serve` with the
-- repository's routes and its subscriber thread, and real `wtt worker`
-- processes that reach web over HTTP only (no DATABASE_URL).
--
--   local stack = real_stack.start({ name = "e2e" })
--   local pid = stack:start_worker({ WTT_POLL_INTERVAL = "0.2" })
--   ... stack.srv:json("POST", "/transcribe/upload/", ...) ...
--   stack:stop()
--
-- Under WTT_SPEC_REDIS=cluster (spec/support/spec_redis.lua) the Redis is
-- a real 3-master, 3-replica cluster (stack.redis: url, client(), stop())
-- and every process gets its ?cluster=1 URL and the hash-tagged prefix
-- stack.prefix ("{wtt}:"; "" on one server), so that the queue's keys
-- share one slot.

local helpers = require "spec.support.server"
local pgh = require "spec.support.pg"
local spec_redis = require "spec.support.spec_redis"
local sys = require "wtt.sys"
local runtime = require "wtt.runtime"

local _M = {}

_M.TOKEN = "spec-real-stack-worker-token-0123"

--- The key prefix of every stack ("" on one server, "{wtt}:" on a
-- cluster) and the guard of cases that need one redis-server.
_M.PREFIX = spec_redis.PREFIX
_M.needs_single_redis = spec_redis.needs_single_redis
_M.redis_cluster = spec_redis.cluster


--- Runs `wtt ARGS...` to completion (120 s at most) with `env`, its output
-- in the file `log`. Returns its exit code (-1 when it did not exit) and
-- the output.
function _M.wtt(args, env, log)
    local argv = { runtime.exe }
    for _, a in ipairs(args) do
        argv[#argv + 1] = a
    end
    local pid = assert(sys.spawn(argv, { env = env, stdout = log, stderr = log }))
    local how, code = sys.wait(pid, 120)
    if not how then
        sys.kill(pid, "KILL")
        sys.wait(pid, 5)
    end
    return how == "exited" and code or -1, sys.read_file(log) or ""
end


local stack = {}
stack.__index = stack


--- Starts PostgreSQL, Redis (noeviction; `redis` adds redis.start options),
-- migrates, and starts `wtt serve` (`serve_env` adds to its environment)
-- and waits until it is ready. Raises with the logs when a part fails.
function _M.start(opts)
    opts = opts or {}
    local self = setmetatable({ workers = {}, prefix = _M.PREFIX }, stack)
    self.tmp = assert(sys.mkdtemp("wtt-" .. (opts.name or "stack") .. "-"))
    self.media = self.tmp .. "/media"
    assert(os.execute("mkdir -p '" .. self.media .. "'"))
    self.pg = pgh.start()
    local ropts = { args = { "--maxmemory-policy", "noeviction" } }
    for k, v in pairs(opts.redis or {}) do
        ropts[k] = v
    end
    self.redis = spec_redis.start(ropts)
    local code, out = _M.wtt({ "migrate" }, { DATABASE_URL = self.pg.url },
                             self.tmp .. "/migrate.log")
    assert(code == 0, "wtt migrate failed:\n" .. out)
    local env = {
        DATABASE_URL = self.pg.url, REDIS_URL = self.redis.url,
        WTT_MEDIA_DIR = self.media, WTT_WORKER_TOKEN = _M.TOKEN,
        WTT_SUBSCRIBER_TICK_S = "0.2",
        WTT_KEY_PREFIX = _M.PREFIX ~= "" and _M.PREFIX or false,
    }
    for k, v in pairs(opts.serve_env or {}) do
        env[k] = v
    end
    self.serve_env = env
    self.webs = {}
    self.srv = self:start_web()
    return self
end


--- Starts a `wtt serve` on this stack's PostgreSQL and Redis with the
-- environment of the first (`env` adds to it) and its own media directory,
-- and waits until it is ready. The first is self.srv; another is a replica
-- behind the same services. Returns its handle; stop() stops them all.
function stack:start_web(env)
    local n = #self.webs + 1
    local wenv = {}
    for k, v in pairs(self.serve_env) do
        wenv[k] = v
    end
    if n > 1 then
        wenv.WTT_MEDIA_DIR = self.media .. "-" .. n
        assert(os.execute("mkdir -p '" .. wenv.WTT_MEDIA_DIR .. "'"))
    end
    for k, v in pairs(env or {}) do
        wenv[k] = v
    end
    local srv = helpers.serve({ routes = runtime.source_dir .. "/routes",
                                env = wenv })
    self.webs[n] = srv
    assert(helpers.eventually(function()
        local res = srv:request("GET", "/readyz")
        return res and res.status == 200
    end, 20), "wtt serve not ready:\n" .. srv:log_text())
    return srv
end


--- Starts a `wtt worker` on the CPU against this stack (`env` adds to its
-- environment); its output goes to self.worker_log. Returns its pid.
function stack:start_worker(env)
    self.worker_log = self.tmp .. "/worker.log"
    local wenv = {
        REDIS_URL = self.redis.url, WTT_WEB_URL = self.srv.url,
        WTT_WORKER_TOKEN = _M.TOKEN, WTT_DEVICE = "cpu",
        WTT_POLL_INTERVAL = "0.5", DATABASE_URL = false,
        WTT_KEY_PREFIX = _M.PREFIX ~= "" and _M.PREFIX or false,
    }
    for k, v in pairs(env or {}) do
        wenv[k] = v
    end
    local pid = assert(sys.spawn({ runtime.exe, "worker" }, {
        env = wenv, stdout = self.worker_log, stderr = self.worker_log }))
    self.workers[#self.workers + 1] = pid
    return pid
end


--- Uploads the WAV file at `path` through web; returns the answer
-- (assert 201 and read json.audio_midi_id in the spec).
function stack:upload(path)
    return assert(self.srv:json("POST", "/transcribe/upload/", {
        multipart = { { name = "file", file = path,
                        filename = path:match("[^/]+$"),
                        content_type = "audio/wav" } },
    }))
end


--- web's and the worker's output, for assertion messages.
function stack:logs()
    local out = {}
    for i, srv in ipairs(self.webs or {}) do
        out[#out + 1] = "\n--- serve " .. (i > 1 and i or "") .. " ---\n"
                        .. srv:log_text()
    end
    return table.concat(out) .. "\n--- worker ---\n"
        .. (self.worker_log and sys.read_file(self.worker_log) or "")
end


--- Stops the workers (TERM, then KILL after 30 s), web, Redis and
-- PostgreSQL, and removes the temporary directory.
function stack:stop()
    for _, pid in ipairs(self.workers) do
        helpers.terminate(pid, 30)
    end
    self.workers = {}
    for i = #(self.webs or {}), 1, -1 do
        self.webs[i]:stop()
    end
    self.webs = {}
    if self.redis then self.redis:stop() end
    if self.pg then self.pg:stop() end
    if self.tmp then sys.rmtree(self.tmp) end
end

return _M
