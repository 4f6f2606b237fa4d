--- Shared set-up of the fault-injection specs (spec/10-faults): nothing is
-- simulated. A real PostgreSQL (migrated), a real redis-server (AOF,
-- noeviction), `wtt serve` with the repository's routes, plugins and its
-- subscriber thread, and real `wtt worker` processes that download the
-- audio over HTTP and run the engine on the clips of spec/fixtures/clips.
--
-- Timeouts are scaled down through the policy plugins' environment
-- (WTT_TIMEOUT_*: a visibility timeout of VT_MS) and the worker options
-- (heartbeat and reaper 0.2 s). Every wait is bounded; `env:stop()` kills
-- every process started here, also after a failed assertion.

local helpers = require "spec.support.server"
local pgh = require "spec.support.pg"
local spec_redis = require "spec.support.spec_redis"
local redis = require "wtt.redis"
local httpc = require "wtt.http_client"
local json = require "wtt.json"
local pg = require "wtt.pg"
local sys = require "wtt.sys"
local runtime = require "wtt.runtime"
local migrate = require "wtt.migrate"

local _M = {}

_M.TOKEN = "spec-faults-worker-token-0123456789"
_M.PREFIX = "{flt}:"
_M.VT_MS = 1500                   -- visibility timeout of every task
_M.CLIPS = helpers.FIXTURES .. "/clips"
_M.CLIP_NAMES = { "guitar_nylon_single", "guitar_steel_single",
                  "guitar_strum", "guitar_fast_run", "piano_chords",
                  "bass_line", "guitar_bend" }

-- WTT_SPEC_REDIS=cluster (spec/support/spec_redis.lua): start() runs on a
-- real Redis Cluster; a case that needs the one redis-server begins with
-- `if support.needs_single_redis("why") then return end`.
_M.needs_single_redis = spec_redis.needs_single_redis
_M.redis_cluster = spec_redis.cluster

local env_mt = {}
env_mt.__index = env_mt


local function policy_env(t)
    t.WTT_TIMEOUT_BASE_MS = tostring(_M.VT_MS)
    t.WTT_TIMEOUT_PER_AUDIO_S_MS = "0"
    t.WTT_TIMEOUT_UNKNOWN_MS = tostring(_M.VT_MS)
    t.WTT_TIMEOUT_MIN_MS = "1"
    t.WTT_RETRY_MAX_ATTEMPTS = "3"
    t.WTT_RETRY_BACKOFF_BASE_MS = "50"
    t.WTT_RETRY_BACKOFF_MAX_MS = "200"
    t.WTT_PLUGINS_DIR = runtime.source_dir .. "/plugins"
    return t
end
_M.policy_env = policy_env


--- Waits until fn() is truthy (bounded); returns its value or nil.
local function support_eventually(fn, timeout, step)
    local deadline = sys.now() + (timeout or 5)
    repeat
        local v = fn()
        if v then
            return v
        end
        sys.sleep(step or 0.02)
    until sys.now() > deadline
    return nil
end
_M.eventually = support_eventually


--- Starts PG + Redis (AOF) + `wtt serve`.
-- @param opts { env = extra environment of `wtt serve` (false unsets),
--   redis = extra options of spec.support.redis start (tls = true: every
--   process gets the throwaway CA and client certificate through
--   WTT_REDIS_CA_FILE, WTT_REDIS_CERT, WTT_REDIS_KEY; host, wrap: on
--   another address, e.g. in a network namespace), pg = options of
--   spec.support.pg start (host, password, hba, wrap), web = { host =
--   the address `wtt serve` listens on (127.0.0.1), wrap = function(argv)
--   returning the command line to run instead }, media = the directory
--   of WTT_MEDIA_DIR (default: media/ under the env's temp dir), tmp_dir =
--   that of WTT_TMP_DIR, the server's upload temp files (default: the
--   env's temp dir), cluster = true: a 3-master, 3-replica Redis Cluster
--   (env.cluster, spec/support/redis_cluster.lua) instead of one server,
--   as every start gets under WTT_SPEC_REDIS=cluster (there env.rsrv is
--   the cluster too: url, client(), stop(), and `redis` may only hold
--   options every node can take) }
function _M.start(opts)
    opts = opts or {}
    local self = setmetatable({ workers = {}, prefix = _M.PREFIX,
                                nworkers = 0 }, env_mt)
    local ok, err = pcall(function()
        self.tmp = assert(sys.mkdtemp("wtt-faults-"))
        self.media = opts.media or (self.tmp .. "/media")
        assert(os.execute("mkdir -p '" .. self.media .. "'"))
        self.tmp_dir = opts.tmp_dir or self.tmp
        self.pgsrv = pgh.start(opts.pg)
        self.db = assert(pg.connect(self.pgsrv.url))
        assert(migrate.run(self.db, { dir = runtime.source_dir
                                             .. "/lua/migrations" }))
        local ropts = { appendonly = true, appendfsync = "everysec",
                        args = { "--maxmemory-policy", "noeviction" } }
        for k, v in pairs(opts.redis or {}) do
            ropts[k] = v
        end
        if opts.cluster then
            -- A 3-master, 3-replica Redis Cluster (spec/support/
            -- redis_cluster.lua) instead; every process gets its URL.
            local cluster = require("spec.support.redis_cluster").start({
                args = { "--appendonly", "yes",
                         "--maxmemory-policy", "noeviction" } })
            self.cluster = cluster
            self.rsrv = { url = cluster.url,
                          stop = function() cluster:stop() end }
        else
            -- One redis-server, or under WTT_SPEC_REDIS=cluster a cluster
            -- with these options on every node.
            self.rsrv = spec_redis.start(ropts)
            if spec_redis.cluster then
                self.cluster = self.rsrv
            end
        end
        self.redis_env = {}
        if self.rsrv.tls then
            self.redis_env = {
                WTT_REDIS_CA_FILE = self.rsrv.ca_file,
                WTT_REDIS_CERT = self.rsrv.tls.client.cert,
                WTT_REDIS_KEY = self.rsrv.tls.client.key,
            }
        end
        self.r = opts.cluster and assert(redis.connect(self.rsrv.url))
                 or assert(self.rsrv:client(self.rsrv.tls and {
            cert = self.rsrv.tls.client.cert,
            key = self.rsrv.tls.client.key } or nil))
        self.web = opts.web or {}
        self.host = self.web.host or "127.0.0.1"
        self.port = assert(sys.free_port())
        self.url = "http://" .. self.host .. ":" .. self.port
        self.serve_env = policy_env({
            DATABASE_URL = self.pgsrv.url,
            REDIS_URL = self.rsrv.url,
            WTT_MEDIA_DIR = self.media,
            WTT_WORKER_TOKEN = _M.TOKEN,
            WTT_KEY_PREFIX = _M.PREFIX,
            WTT_SUBSCRIBER = "on",
            WTT_SUBSCRIBER_TICK_S = "0.2",
            WTT_RECONCILE_INTERVAL_S = "0.5",
            WTT_RECONCILE_GRACE_S = "0",
            WTT_LISTEN = self.host .. ":" .. self.port,
            WTT_ROUTES_DIR = runtime.source_dir .. "/routes",
            WTT_THREADS = "2",
            WTT_ADMIN_TOKEN = helpers.ADMIN_TOKEN,
            WTT_LOG_LEVEL = "info",
            WTT_TMP_DIR = self.tmp_dir,
        })
        for k, v in pairs(self.redis_env) do
            self.serve_env[k] = v
        end
        for k, v in pairs(opts.env or {}) do
            self.serve_env[k] = v
        end
        self:serve_start()
    end)
    if not ok then
        pcall(self.stop, self)   -- the start's own failure is the news
        error(err, 0)
    end
    return self
end


--- Starts (or restarts) `wtt serve` on the env's fixed port.
function env_mt.serve_start(self, wait)
    self.serve_n = (self.serve_n or 0) + 1
    self.serve_log = self.tmp .. "/serve-" .. self.serve_n .. ".log"
    local argv = { runtime.exe, "serve" }
    if self.web.wrap then
        argv = self.web.wrap(argv)
    end
    self.serve_pid = assert(sys.spawn(argv, {
        env = self.serve_env, stdout = self.serve_log,
        stderr = self.serve_log }))
    local up = _M.eventually(function()
        local res = httpc.request({ url = self.url .. "/readyz",
                                    timeout = 1 })
        if res and res.status == 200 then
            return true
        end
        if sys.wait(self.serve_pid, 0) then
            self.serve_pid = nil
            error("wtt serve exited during start:\n" .. self:serve_text())
        end
    end, wait or 15, 0.05)
    assert(up, "wtt serve not ready:\n" .. self:serve_text())
end


function env_mt.serve_text(self)
    local out = {}
    for i = 1, self.serve_n or 0 do
        out[#out + 1] = "--- serve #" .. i .. " ---\n"
            .. (sys.read_file(self.tmp .. "/serve-" .. i .. ".log") or "")
    end
    return table.concat(out, "\n")
end


--- Kills `wtt serve` (default SIGKILL: a crash) and reaps it.
-- Returns how it ended and its code as sys.wait says ("exited", 0), or
-- nil when no serve was running; a TERM that is not obeyed in 20 s (the
-- subscriber's own stop limit is 15 s) ends in a KILL.
function env_mt.serve_kill(self, sig)
    if not self.serve_pid then
        return nil
    end
    sys.kill(self.serve_pid, sig or "KILL")
    local how, code = sys.wait(self.serve_pid, sig == "TERM" and 20 or 10)
    if not how then
        sys.kill(self.serve_pid, "KILL")
        sys.wait(self.serve_pid, 5)
        how, code = "killed after a " .. tostring(sig) .. " timeout", -1
    end
    self.serve_pid = nil
    return how, code
end


--- SIGKILLs every worker still running.
function env_mt.kill_workers(self)
    for _, w in ipairs(self.workers or {}) do
        w:kill()
    end
end


--- Everything the env started goes, whatever state it is in.
-- A serve still running must stop cleanly on SIGTERM (exit 0): under the
-- sanitizer build a leak report makes it exit non-zero, and that fails the
-- spec here, after everything else is cleaned up.
function env_mt.stop(self)
    self:kill_workers()
    local ok, how, code = pcall(env_mt.serve_kill, self, "TERM")
    local unclean
    if not ok then
        unclean = "stopping wtt serve failed: " .. tostring(how)
    elseif how and not (how == "exited" and code == 0) then
        unclean = ("wtt serve did not stop cleanly on SIGTERM (%s %s):\n%s")
            :format(how, tostring(code), self:serve_text():sub(-4000))
    end
    if self.db then pcall(self.db.close, self.db) end
    if self.r then pcall(self.r.close, self.r) end
    if self.rsrv then pcall(self.rsrv.stop, self.rsrv) end
    if self.pgsrv then pcall(self.pgsrv.stop, self.pgsrv) end
    if self.tmp and not os.getenv("WTT_FAULTS_KEEP") then
        sys.rmtree(self.tmp)
    end
    if unclean then
        error(unclean, 2)
    end
end


function env_mt.key(self, name)
    return self.prefix .. name
end


-- Workers ------------------------------------------------------------------

local worker_mt = {}
worker_mt.__index = worker_mt

--- Spawns `wtt worker` (no DATABASE_URL). env: extra environment; args:
-- extra flags; wrap: a function returning the command line to run instead
-- (e.g. inside a network namespace). Returns a handle { pid, id, log,
-- text(), wait(), kill() }.
function env_mt.worker(self, env, args, wrap)
    self.nworkers = self.nworkers + 1
    local id = "flt-w" .. self.nworkers .. "-" .. sys.getpid()
    local dir = self.tmp .. "/" .. id
    assert(os.execute("mkdir -p '" .. dir .. "'"))
    local e = policy_env({
        REDIS_URL = self.rsrv.url, WTT_WEB_URL = self.url,
        WTT_WORKER_TOKEN = _M.TOKEN, WTT_KEY_PREFIX = self.prefix,
        WTT_DEVICE = "cpu", WTT_WORKER_THREADS = "1",
        WTT_HEARTBEAT_INTERVAL = "0.2", WTT_POLL_INTERVAL = "0.5",
        WTT_REAP_INTERVAL = "0.2", WTT_WORKER_TTL = "1",
        WTT_HTTP_RETRIES = "4", WTT_HTTP_BACKOFF = "0.1",
        WTT_HTTP_BACKOFF_MAX = "0.5", WTT_HTTP_TIMEOUT = "20",
        WTT_LOG_LEVEL = "info", TMPDIR = dir, WTT_WORKER_ID = id,
        DATABASE_URL = false,
    })
    for k, v in pairs(self.redis_env or {}) do
        e[k] = v
    end
    for k, v in pairs(env or {}) do
        e[k] = v
    end
    local argv = { runtime.exe, "worker" }
    for _, a in ipairs(args or {}) do
        argv[#argv + 1] = a
    end
    if wrap then
        argv = wrap(argv)
    end
    local log = dir .. "/worker.log"
    local pid = assert(sys.spawn(argv, { env = e, stdout = log,
                                         stderr = log }))
    local w = setmetatable({ pid = pid, id = id, log = log, dir = dir },
                           worker_mt)
    self.workers[#self.workers + 1] = w
    return w
end


function worker_mt.text(self)
    return sys.read_file(self.log) or ""
end


--- Waits for the exit; returns how, code (nil on timeout).
function worker_mt.wait(self, timeout)
    if self.exited then
        return self.how, self.code
    end
    local how, code = sys.wait(self.pid, timeout or 10)
    if how then
        self.exited, self.how, self.code = true, how, code
    end
    return how, code
end


function worker_mt.signal(self, sig)
    assert(not self.exited, "worker already exited")
    return sys.kill(self.pid, sig)
end


--- SIGKILL (after SIGCONT, in case it is stopped) and reap. Safe twice.
function worker_mt.kill(self)
    if self.exited then
        return
    end
    sys.kill(self.pid, "CONT")
    sys.kill(self.pid, "KILL")
    self:wait(5)
end


--- Counts occurrences of `text` in the worker's log.
function worker_mt.count(self, text)
    local n, pos = 0, 1
    local s = self:text()
    while true do
        local i = s:find(text, pos, true)
        if not i then
            return n
        end
        n, pos = n + 1, i + #text
    end
end


--- Waits (bounded) until `text` occurs at least n times in the log (the
-- log line may follow the state change it reports); returns the count.
function worker_mt.await(self, text, n, timeout)
    n = n or 1
    support_eventually(function()
        return self:count(text) >= n
    end, timeout or 5)
    return self:count(text)
end


-- HTTP and state -------------------------------------------------------------

--- Checks the invariants (spec/support/invariants.lua) of this stack.
function env_mt.check_invariants(self, timeout, extra)
    local e = { r = self.r, prefix = self.prefix, db = self.db,
                url = self.url, media = self.media, timeout = timeout or 5 }
    for k, v in pairs(extra or {}) do
        e[k] = v
    end
    require("spec.support.invariants").check(e)
end


--- Starts `n` `wtt worker --noop` under `prefix` and waits until each has
-- a heartbeat key. Returns the workers.
function env_mt.noop_workers(self, n, prefix)
    local workers = {}
    for i = 1, n do
        workers[i] = self:worker({ WTT_KEY_PREFIX = prefix,
                                   WTT_POLL_INTERVAL = "0.2" }, { "--noop" })
    end
    assert(support_eventually(function()
        for _, w in ipairs(workers) do
            if self.r:call("EXISTS", prefix .. "worker:" .. w.id) ~= 1 then
                return false
            end
        end
        return true
    end, 15), "workers did not start" .. self:logs())
    return workers
end


--- A fixed queue policy for specs that enqueue through the queue API.
function _M.fixed_policy()
    return {
        max_attempts = function() return 3 end,
        backoff_ms = function() return 10 end,
        retryable = function(_, flag) return flag ~= false end,
        timeout_ms = function() return 30000 end,
        lane = function() return "default" end,
        dead_ttl_s = function() return 3600 end,
        final_ttl_s = function() return 3600 end,
        versions = {}, source = "spec",
    }
end


function env_mt.http(self, method, path, opts)
    opts = opts or {}
    opts.url = self.url .. path
    opts.method = method
    opts.timeout = opts.timeout or 10
    local res, err = httpc.request(opts)
    if res and res.body and res.body ~= "" then
        local ok, doc = pcall(json.decode, res.body)
        res.json = ok and doc or nil
    end
    return res, err
end


--- Uploads a clip (name in CLIP_NAMES, or a path); returns audio_midi id.
function env_mt.upload(self, clip)
    local path = clip:find("/", 1, true) and clip
                 or (_M.CLIPS .. "/" .. clip .. ".wav")
    local res, err = self:http("POST", "/transcribe/upload/", {
        multipart = { { name = "file", file = path,
                        filename = "clip.wav", content_type = "audio/wav" } },
    })
    assert(res, err)
    assert(res.status == 201, "upload: " .. res.status .. " " .. res.body)
    return res.json.audio_midi_id
end


--- POST generate; returns task id.
function env_mt.generate(self, id, options)
    local res, err = self:http("POST", "/transcribe/generate/", {
        headers = { ["Content-Type"] = "application/json" },
        body = json.encode({ audio_midi_id = id, options = options or {} }),
    })
    assert(res, err)
    assert(res.status == 202, "generate: " .. res.status .. " " .. res.body)
    return res.json.task_id
end


--- Upload + generate; returns audio_midi id, task id.
function env_mt.submit(self, clip, options)
    local id = self:upload(clip)
    return id, self:generate(id, options)
end


--- The task hash (table, empty when missing).
function env_mt.task(self, task_id)
    local flat = self.r:call("HGETALL", self:key("task:" .. task_id))
    local h = {}
    if type(flat) == "table" then
        for i = 1, #flat, 2 do
            h[flat[i]] = flat[i + 1]
        end
    end
    return h
end


function env_mt.row(self, id)
    return assert(self.db:query("SELECT * FROM audio_midi WHERE id = $1",
                                id))[1]
end


--- Waits until the task hash satisfies pred(h); returns h or raises.
function env_mt.wait_task(self, task_id, pred, timeout, what)
    local last
    local h = _M.eventually(function()
        last = self:task(task_id)
        return pred(last) and last
    end, timeout or 15, 0.02)
    if not h then
        error((what or "task state") .. " not reached for " .. task_id
              .. "; hash: " .. json.encode(last) .. self:logs(), 2)
    end
    return h
end


--- Checks that claim token `claim` of task `tid` is fenced on every write
-- path: web's result route answers 409 stale_claim, and the queue's
-- heartbeat and complete answer "stale". Raises otherwise.
function env_mt.assert_fenced(self, tid, claim)
    local midi = require "wtt.midi"
    local queue = require "wtt.queue"
    local late = assert(midi.encode({ { start_s = 0, end_s = 0.5,
                                        pitch = 61, velocity = 90 } }))
    local res = assert(self:http("POST", "/transcribe/_result/" .. tid .. "/", {
        headers = { Authorization = "Bearer " .. _M.TOKEN },
        multipart = {
            { name = "claim", value = claim },
            { name = "midi", data = late, filename = "late.mid",
              content_type = "audio/midi" },
            { name = "notes", data = json.encode({ notes = {} }),
              filename = "late.json", content_type = "application/json" },
        },
    }))
    assert(res.status == 409, "late result: " .. res.status .. " " .. res.body)
    assert(res.json and res.json.error == "stale_claim", res.body)
    local q = queue.new(self.r, { prefix = self.prefix })
    for _, call in ipairs({
        function() return q:heartbeat(tid, claim) end,
        function() return q:complete(tid, claim, { midi = "late.mid" }) end,
    }) do
        local ok, err = call()
        assert(ok == nil and err == "stale",
               "a stale token passed: " .. tostring(ok) .. " " .. tostring(err))
    end
end


--- Waits until every job's row ({ id = audio_midi id, ... }) has
-- `status` (default completed); raises with their statuses, `what` first,
-- and `extra` (more logs) after the env's logs.
function env_mt.wait_rows(self, jobs, status, timeout, what, extra)
    status = status or "completed"
    local last
    local done = support_eventually(function()
        last = {}
        local ok = true
        for _, j in ipairs(jobs) do
            local row = self:row(j.id)
            last[#last + 1] = row.status
            if row.status ~= status then
                ok = false
            end
        end
        return ok
    end, timeout or 60, 0.1)
    assert(done, (what or "rows") .. ": " .. json.encode(last)
           .. self:logs() .. (extra or ""))
end


--- Waits until the row's status is `status`; returns the row or raises.
function env_mt.wait_row(self, id, status, timeout)
    local last
    local row = _M.eventually(function()
        last = self:row(id)
        return last.status == status and last
    end, timeout or 15, 0.05)
    if not row then
        error("row " .. id .. " not " .. status .. ": " .. json.encode(last)
              .. self:logs(), 2)
    end
    return row
end


--- Every process's log, for failure messages.
function env_mt.logs(self)
    local out = { "", self:serve_text() }
    for _, w in ipairs(self.workers) do
        out[#out + 1] = "--- worker " .. w.id .. " ---\n" .. w:text()
    end
    return table.concat(out, "\n")
end


--- A progress predicate: processing under worker `w` with done >= n.
function _M.running_on(w, n)
    return function(h)
        local done = h.progress and tonumber(h.progress:match("^(%d+)/"))
        return h.status == "processing" and h.worker == w.id
               and (done or 0) >= (n or 1)
    end
end


--- The media dir's file names with extension `ext`.
function env_mt.media_files(self, ext)
    local out = {}
    for _, name in ipairs(sys.listdir(self.media) or {}) do
        if not ext or name:match("%." .. ext .. "$") then
            out[#out + 1] = name
        end
    end
    table.sort(out)
    return out
end

return _M
