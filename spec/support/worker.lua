--- Spec helpers for `wtt worker`: a real redis-server, a tiny fake web
-- (`wtt serve` with throwaway routes for /media and /transcribe/_result)
-- and workers started as child processes, on real clips. Tasks are
-- enqueued with wtt.queue under a fixed policy.
--
--     local wh = require "spec.support.worker"
--     local s = wh.stack()                   -- in setup()
--     local id = s:enqueue(pre, { media = s:media(data) })
--     local w = s:start_worker(pre, { ENV = "v" }, { "--once" })
--     s:stop()                               -- in teardown()
--
-- The fake web's behaviour per test comes from files in `s.fake`:
--   media/<name>                 served by GET /media/<name>
--   media-status-<name>          answer this status instead
--   result-status-<id>           answer this status to POST _result
--   hits-media-<name>, hits-result-<id>   one line per request
--   results/<id>/<field>         what POST _result received (claim too)

local helpers = require "spec.support.server"
local rh = require "spec.support.redis"
local runtime = require "wtt.runtime"
local sys = require "wtt.sys"

local _M = {}

_M.TOKEN = "spec-worker-token"
_M.CLIP = helpers.FIXTURES .. "/clips/guitar_nylon_single.wav"

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


local stack = {}
local stack_mt = { __index = stack }


function _M.hex32()
    local t = {}
    for i = 1, 32 do
        t[i] = string.format("%x", math.random(0, 15))
    end
    return table.concat(t)
end


--- A redis-server and the fake web.
function _M.stack()
    math.randomseed(sys.getpid() + math.floor(sys.time()))
    local s = setmetatable({ workers = {} }, stack_mt)
    s.srv = rh.start()
    s.r = assert(s.srv:client())
    s.fake = assert(sys.mkdtemp("wtt-fakeweb-"))
    os.execute("mkdir -p '" .. s.fake .. "/routes' '" .. s.fake
               .. "/media'")
    assert(sys.write_file(s.fake .. "/routes/fake.lua", FAKE_ROUTES))
    s.web = helpers.serve({ routes = s.fake .. "/routes", threads = 2,
                            env = { FAKE_DIR = s.fake,
                                    FAKE_TOKEN = _M.TOKEN } })
    return s
end


--- Kills the workers still running, stops web and redis-server.
function stack.stop(self)
    for _, w in ipairs(self.workers) do
        if not w.exited then
            sys.kill(w.pid, "KILL")
            sys.wait(w.pid, 5)
        end
        sys.rmtree(w.dir)
    end
    if self.web then self.web:stop() end
    if self.r then self.r:close() end
    if self.srv then self.srv:stop() end
    if self.fake then sys.rmtree(self.fake) end
end


--- Serves `data` under /media/; @return its name.
function stack.media(self, data)
    local name = _M.hex32() .. ".wav"
    assert(sys.write_file(self.fake .. "/media/" .. name, data))
    return name
end


--- A fixed queue policy (the worker uses plugins/ defaults).
function _M.policy(timeout_ms, max_attempts)
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


--- A queue object on prefix `pre`.
function stack.queue(self, pre, timeout_ms)
    return require("wtt.queue").new(self.r, {
        prefix = pre, policy = _M.policy(timeout_ms) })
end


--- Enqueues a task (the clip unless opts.media names another file).
-- @return id, payload
function stack.enqueue(self, pre, opts)
    opts = opts or {}
    local id = opts.id or _M.hex32()
    local payload = {
        audio_url = "/media/" .. (opts.media or self:media(
            assert(sys.read_file(_M.CLIP)))),
        options = opts.options or {},
        outputs = opts.outputs or { "midi", "notes" },
        duration_s = opts.duration_s,
    }
    assert(self:queue(pre, opts.timeout_ms):enqueue({
        id = id, audio_midi_id = 1, payload = payload }))
    return id, payload
end


--- Starts `wtt worker` on prefix `pre` (env entries set to false are
-- removed). @return w { pid, log, dir, id, text(), wait(timeout) }
function stack.start_worker(self, pre, env, args)
    local dir = assert(sys.mkdtemp("wtt-worker-"))
    local e = {
        REDIS_URL = self.srv.url, WTT_WEB_URL = self.web.url,
        WTT_WORKER_TOKEN = _M.TOKEN, WTT_KEY_PREFIX = pre,
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
    self.workers[#self.workers + 1] = w
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


--- The task hash as a table.
function stack.task(self, pre, id)
    local flat = assert(self.r:call("HGETALL", pre .. "task:" .. id))
    local h = {}
    for i = 1, #flat, 2 do
        h[flat[i]] = flat[i + 1]
    end
    return h
end


function stack.list_has(self, key, id)
    for _, v in ipairs(assert(self.r:call("LRANGE", key, 0, -1))) do
        if v == id then
            return true
        end
    end
    return false
end


--- Requests the fake web got for "media-<name>" or "result-<id>".
function stack.hits(self, name)
    local s = sys.read_file(self.fake .. "/hits-" .. name) or ""
    return select(2, s:gsub("\n", ""))
end


return _M
