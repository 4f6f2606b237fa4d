--- Redis client: commands, pipelines, scripts by SHA, a pub/sub loop and
-- reconnection with backoff, over TCP, unix sockets or TLS.
--
--     local redis = require "wtt.redis"
--     local r = assert(redis.connect(os.getenv("REDIS_URL")))
--     r:call("SET", "k", "v")
--     local list = r:pipeline(function(p) p:call("INCR", "n") end)
--     local claim = redis.script("return redis.call('GET', KEYS[1])")
--     local v = r:eval(claim, { "k" }, {})
--
-- Runtime failures return `nil, err`; wrong argument types raise. A client
-- owns one connection and must stay in the Lua state (thread) that made it.
-- The C half is `wtt.core.redis` (core/bind/wtt_redis.c); docs/redis.md has the
-- whole contract.
--
-- This file holds connections and commands; each other job is a module in
-- lua/wtt/redis/ (url, scripts, pipeline, subscribe, startup, and internal
-- for the helpers they share), and this module is the one public surface
-- over them all.

local core = require "wtt.core.redis"
local sys = require "wtt.sys"
local internal = require "wtt.redis.internal"
local scripts = require "wtt.redis.scripts"
local pipeline = require "wtt.redis.pipeline"
local subscribe = require "wtt.redis.subscribe"
local startup = require "wtt.redis.startup"
local cluster = require "wtt.redis.cluster"

local type = type
local error = error
local pairs = pairs
local ipairs = ipairs
local tostring = tostring
local setmetatable = setmetatable
local str_format = string.format
local now = sys.now
local open = internal.open
local backoff_delay = internal.backoff_delay
local check_timeout = internal.check_timeout
local check_command = internal.check_command
local is_readonly = internal.is_readonly
local parse_url = require("wtt.redis.url").parse_url

local _M = {}

--- Sentinel for a nil element inside an array or pipeline reply (equal to
-- cjson.null).
_M.null = core.null

--- Lowercase hex SHA1 of a string, as Redis names scripts.
_M.sha1hex = core.sha1hex

--- Delay before a reconnect attempt (lua/wtt/redis/internal.lua).
_M.backoff_delay = backoff_delay

--- Parses a Redis URL (lua/wtt/redis/url.lua).
_M.parse_url = parse_url

--- Script values (lua/wtt/redis/scripts.lua).
_M.script = scripts.script
_M.is_script = scripts.is_script

--- The cluster slot of a key (lua/wtt/redis/cluster.lua).
_M.keyslot = cluster.keyslot

--- The start-up check (lua/wtt/redis/startup.lua).
_M.explain = startup.explain
_M.probe = startup.probe

local DEFAULTS = {
    connect_timeout = 5,
    timeout = 10,
    backoff_base = 0.1,       -- first delay after a failed reconnect
    backoff_max = 5,          -- cap of the exponential delay
}

-- Options accepted by connect(); the TLS ones go to the C module as is.
local KNOWN_OPTS = {
    connect_timeout = true, timeout = true, ca_file = true, ca_path = true,
    verify = true, server_name = true, cert = true, key = true,
    user = true, password = true, db = true, lazy = true,
    backoff_base = true, backoff_max = true,
}

local client = {}
local client_mt = { __index = client }

-- The methods of the other jobs (eval, pipeline, subscribe...) join the
-- ones below on the one method table every client uses.
for _, part in ipairs { scripts, pipeline, subscribe } do
    for name, fn in pairs(part.client) do
        client[name] = fn
    end
end


-- TLS settings of `rediss://` connections that the caller leaves unset come
-- from the environment, as libpq reads PGSSLROOTCERT: every process and
-- thread that connects (web, its subscriber, the worker and its heartbeat
-- thread, `wtt queue`) then trusts the same CA without each passing it.
local TLS_ENV = {
    ca_file = "WTT_REDIS_CA_FILE",
    ca_path = "WTT_REDIS_CA_PATH",
    cert = "WTT_REDIS_CERT",
    key = "WTT_REDIS_KEY",
    server_name = "WTT_REDIS_SERVER_NAME",
}
_M.TLS_ENV = TLS_ENV

local function env_opt(name)
    local v = name and os.getenv(name)
    if v == nil or v == "" then
        return nil
    end
    return v
end


--- Connects to Redis.
-- @param url `redis://`, `rediss://` or `unix://` URL (see parse_url);
--   `?cluster=1` gives a Redis Cluster client (lua/wtt/redis/cluster.lua)
--   with the same methods
-- @param opts optional table:
--   `connect_timeout` (s, default 5: connect + TLS + AUTH + SELECT),
--   `timeout` (s without progress per command, default 10; make it longer
--   than any blocking command's own timeout),
--   `ca_file`, `ca_path`, `verify` (default true), `server_name`, `cert`,
--   `key` (TLS), `user`, `password`, `db` (override the URL),
--   `backoff_base` (default 0.1 s), `backoff_max` (default 5 s),
--   `lazy` (true: do not connect now; the first command does)
-- @return client | nil, err
function _M.connect(url, opts)
    opts = opts or {}
    if type(opts) ~= "table" then
        error("bad argument #2 to 'connect' (table expected)", 2)
    end
    for k in pairs(opts) do
        if not KNOWN_OPTS[k] then
            error("bad argument #2 to 'connect' (unknown option '"
                  .. tostring(k) .. "')", 2)
        end
    end
    check_timeout(opts.connect_timeout, "connect_timeout")
    check_timeout(opts.timeout, "timeout")
    check_timeout(opts.backoff_base, "backoff_base")
    check_timeout(opts.backoff_max, "backoff_max")

    local cfg, err = parse_url(url)
    if not cfg then
        return nil, "connect failed: " .. err
    end
    if opts.user ~= nil then
        cfg.user = opts.user
    end
    if opts.password ~= nil then
        cfg.password = opts.password
    end
    if opts.db ~= nil then
        cfg.db = opts.db
    end
    for k, v in pairs(DEFAULTS) do
        cfg[k] = opts[k] or v
    end
    cfg.url = url
    local tls_env = cfg.tls and TLS_ENV or {}
    cfg.core_opts = {
        tls = cfg.tls or nil,
        verify = opts.verify,
        ca_file = opts.ca_file or env_opt(tls_env.ca_file),
        ca_path = opts.ca_path or env_opt(tls_env.ca_path),
        cert = opts.cert or env_opt(tls_env.cert),
        key = opts.key or env_opt(tls_env.key),
        server_name = opts.server_name or env_opt(tls_env.server_name),
        connect_timeout = cfg.connect_timeout,
        timeout = cfg.timeout,
    }

    if cfg.cluster then
        return cluster.new(cfg, function(host, port)
            return _M._node_client(cfg, host, port)
        end, opts.lazy)
    end
    return _M._new_client(cfg, opts.lazy)
end


-- A plain lazy client to one node of a cluster, with the cluster
-- client's settings (TLS, credentials, timeouts).
function _M._node_client(cfg, host, port)
    local c = {}
    for k, v in pairs(cfg) do
        c[k] = v
    end
    c.cluster, c.seeds = nil, nil
    c.host, c.port = host, port
    c.core_opts = {}
    for k, v in pairs(cfg.core_opts) do
        c.core_opts[k] = v
    end
    return _M._new_client(c, true)
end


-- A plain client for a parsed and completed config.
function _M._new_client(cfg, lazy)
    local self = setmetatable({
        cfg = cfg,
        conn = nil,
        loaded = {},          -- script sha -> true, for this connection
        failures = 0,         -- failed reconnect attempts in a row
        retry_at = nil,       -- no attempt before this (monotonic s)
        last_err = nil,
        reconnects = 0,       -- connections made after the first
        connected_once = false,
        closed = false,
    }, client_mt)

    if not lazy then
        local conn, err = open(cfg)
        if not conn then
            return nil, err
        end
        self.conn = conn
        self.connected_once = true
    end
    return self
end


-- Forgets a connection that failed; the next command reconnects at once.
function client._lost(self, conn)
    conn:close()
    if self.conn == conn then
        self.conn = nil
    end
end


-- Seconds of idleness after which a connection is probed before use.
local IDLE_PROBE = 0.01

-- Returns a healthy connection, reconnecting if needed (subject to the
-- backoff window after failed attempts), or nil, err.
function client._get(self)
    if self.closed then
        return nil, "closed"
    end
    local conn = self.conn
    local t = now()
    if conn then
        -- The server may have closed an idle connection (restart, timeout):
        -- find out before a command is sent into the void. A connection in
        -- steady use is not probed (that would cost a system call per
        -- command); a close shows up on its next reply instead.
        if t - (self.used_at or 0) < IDLE_PROBE or conn:alive() then
            self.used_at = t
            return conn
        end
        self:_lost(conn)
    end

    if self.retry_at and t < self.retry_at then
        return nil, str_format("reconnect backoff: next attempt in %.3fs "
                               .. "(last error: %s)", self.retry_at - t,
                               self.last_err)
    end
    local err
    conn, err = open(self.cfg)
    if not conn then
        self.failures = self.failures + 1
        self.retry_at = now() + backoff_delay(self.cfg, self.failures)
        self.last_err = err
        return nil, err
    end
    self.failures = 0
    self.retry_at = nil
    self.last_err = nil
    self.loaded = {}
    if self.connected_once then
        self.reconnects = self.reconnects + 1
    end
    self.connected_once = true
    self.conn = conn
    self.used_at = now()
    return conn
end

-- A READONLY reply (the server was demoted by a failover) drops the
-- connection and retries the command once on a new one.
-- @param cmd command name; further arguments are strings (binary-safe)
--   or numbers
-- @return the reply (number, string, table; nil for a nil reply) |
--   nil, err (an error reply's text, or a transport failure; after a
--   transport failure the next command reconnects)
function client.call(self, cmd, ...)
    check_command(cmd, 3)
    for attempt = 1, 2 do
        local conn, err = self:_get()
        if not conn then
            return nil, err
        end
        local res
        res, err = conn:call(cmd, ...)
        if res ~= nil or err == nil then
            return res
        end
        if conn:broken() then
            self:_lost(conn)
            return nil, err
        end
        if not is_readonly(err) or attempt == 2 then
            return nil, err
        end
        self:_lost(conn)
    end
end


-- Runs the command in array `argv` on `conn` (any length). A READONLY
-- reply drops the connection (the caller may retry on a new one).
function client._callv(self, conn, argv)
    local res, err = conn:callv(argv)
    if res == nil and err ~= nil
       and (conn:broken() or is_readonly(err))
    then
        self:_lost(conn)
    end
    return res, err
end


--- Sets the command timeout (seconds without progress) for this client,
-- now and after reconnects.
-- @return the previous timeout
function client.set_timeout(self, t)
    check_timeout(t, "timeout")
    local old = self.cfg.timeout
    self.cfg.timeout = t
    self.cfg.core_opts.timeout = t
    if self.conn then
        self.conn:settimeout(t)
    end
    return old
end


--- True while a connection is open (it may still turn out dead).
function client.connected(self)
    return self.conn ~= nil
end


--- Closes the connection; later calls return nil, "closed". Safe twice.
function client.close(self)
    self.closed = true
    if self.conn then
        self.conn:close()
        self.conn = nil
    end
    return true
end

return _M
