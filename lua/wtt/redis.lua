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

local core = require "wtt.core.redis"
local sys = require "wtt.sys"

local type = type
local error = error
local pairs = pairs
local pcall = pcall
local ipairs = ipairs
local select = select
local tonumber = tonumber
local tostring = tostring
local setmetatable = setmetatable
local getmetatable = getmetatable
local floor = math.floor
local min = math.min
local str_byte = string.byte
local str_char = string.char
local str_find = string.find
local str_format = string.format
local str_gsub = string.gsub
local str_match = string.match
local str_sub = string.sub
local str_upper = string.upper
local now = sys.now
local sleep = sys.sleep
local sha1hex = core.sha1hex

local _M = {}

--- Sentinel for a nil element inside an array or pipeline reply (equal to
-- cjson.null).
_M.null = core.null

--- Lowercase hex SHA1 of a string, as Redis names scripts.
_M.sha1hex = sha1hex

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

-- Commands that would turn the command connection into something else.
local REFUSED = {
    SUBSCRIBE = "use r:subscribe", PSUBSCRIBE = "use r:subscribe",
    SSUBSCRIBE = "use r:subscribe", MONITOR = "not supported",
}
local REFUSED_FIRST = { [115] = true, [83] = true, [112] = true, [80] = true,
                        [109] = true, [77] = true }   -- s S p P m M

local client = {}
local client_mt = { __index = client }
local pipe = {}
local pipe_mt = { __index = pipe }
local script_mt = {}
script_mt.__index = script_mt


-- Reconnect jitter (wtt.jitter), so that processes restarted together do
-- not retry in step.
local random = require("wtt.jitter").random


--- Delay before reconnect attempt `n + 1` after `n` failed ones: an
-- exponential backoff with "equal jitter" (half fixed, half random).
-- @param cfg client config (backoff_base, backoff_max)
-- @param n failed attempts so far (>= 1)
-- @return seconds
function _M.backoff_delay(cfg, n)
    local d = cfg.backoff_base * 2 ^ (n - 1)
    if d > cfg.backoff_max then
        d = cfg.backoff_max
    end
    return d / 2 + random() * d / 2
end
local backoff_delay = _M.backoff_delay


-- ---------------------------------------------------------------------------
-- URLs
-- ---------------------------------------------------------------------------

local function unescape(s)
    return (str_gsub(s, "%%(%x%x)", function(h)
        return str_char(tonumber(h, 16))
    end))
end


local function parse_query(cfg, q)
    for pair in q:gmatch("[^&]+") do
        local k, v = str_match(pair, "^([^=]*)=(.*)$")
        if not k then
            return nil, "bad query parameter '" .. pair .. "'"
        end
        v = unescape(v)
        if k == "db" then
            cfg.db = v
        elseif k == "user" or k == "username" then
            cfg.user = v
        elseif k == "password" then
            cfg.password = v
        else
            return nil, "unknown query parameter '" .. k .. "'"
        end
    end
    return true
end


-- Splits `s` by `pattern` (captures: the userinfo, the rest of `s`),
-- records the user and password in `cfg`, and returns the rest: all of
-- `s` when the pattern finds no userinfo.
local function take_userinfo(cfg, s, pattern)
    local info, rest = str_match(s, pattern)
    if not info then
        return s
    end
    local user, pass = str_match(info, "^([^:]*):(.*)$")
    if user then
        cfg.user = user ~= "" and unescape(user) or nil
        cfg.password = unescape(pass)
    elseif info ~= "" then
        -- "redis://secret@host": a bare userinfo is a password (no ACL
        -- user is ever sent without one).
        cfg.password = unescape(info)
    end
    return rest
end


--- Parses a Redis URL.
-- Forms: `redis://[[user]:password@]host[:port][/db]`, `rediss://...` (TLS),
-- `unix://[[user]:password@]/path/to.sock[?db=N]`; a query may also give
-- `db`, `user`, `password`. IPv6 hosts go in brackets.
-- @param url string
-- @return cfg {scheme, host, port, path, tls, user, password, db} | nil, err
function _M.parse_url(url)
    if type(url) ~= "string" then
        return nil, "url must be a string"
    end
    local scheme, rest = str_match(url, "^(%a[%w+.-]*)://(.*)$")
    if not scheme then
        return nil, "bad url '" .. url .. "'"
    end
    local cfg = { scheme = scheme, db = 0 }
    local query
    rest, query = str_match(rest, "^([^?]*)%??(.*)$")

    if scheme == "unix" then
        local path = take_userinfo(cfg, rest, "^([^/]*)@(/.*)$")
        if str_sub(path, 1, 1) ~= "/" or #path < 2 then
            return nil, "unix url needs an absolute path: '" .. url .. "'"
        end
        cfg.path = unescape(path)
    elseif scheme == "redis" or scheme == "rediss" then
        cfg.tls = scheme == "rediss"
        local authority, path = str_match(rest, "^([^/]*)(.*)$")
        local hostport = take_userinfo(cfg, authority, "^(.*)@([^@]*)$")
        local host, port = str_match(hostport, "^%[([^%]]+)%]:?(%d*)$")
        if not host then
            host, port = str_match(hostport, "^([^:]+):?(%d*)$")
        end
        if not host then
            return nil, "bad host in url '" .. url .. "'"
        end
        cfg.host = host
        cfg.port = port ~= "" and tonumber(port) or 6379
        if cfg.port < 1 or cfg.port > 65535 then
            return nil, "bad port in url '" .. url .. "'"
        end
        if path ~= "" and path ~= "/" then
            local db = str_match(path, "^/(%d+)$")
            if not db then
                return nil, "bad database in url '" .. url .. "'"
            end
            cfg.db = db
        end
    else
        return nil, "unsupported url scheme '" .. scheme .. "'"
    end

    if query ~= "" then
        local ok, err = parse_query(cfg, query)
        if not ok then
            return nil, err
        end
    end
    cfg.db = tonumber(cfg.db)
    if not cfg.db or cfg.db < 0 or cfg.db ~= floor(cfg.db) then
        return nil, "bad database in url '" .. url .. "'"
    end
    return cfg
end
local parse_url = _M.parse_url


-- ---------------------------------------------------------------------------
-- Connections
-- ---------------------------------------------------------------------------

-- Opens one connection for `cfg` and runs the handshake (AUTH, SELECT),
-- all within connect_timeout. Returns a core conn or nil, err.
local function open(cfg)
    local conn, err
    if cfg.path then
        conn, err = core.connect(cfg.path, nil, cfg.core_opts)
    else
        conn, err = core.connect(cfg.host, cfg.port, cfg.core_opts)
    end
    if not conn then
        return nil, err
    end

    conn:settimeout(cfg.connect_timeout)
    local ok, step
    if cfg.password then
        step = "auth"
        if cfg.user then
            ok, err = conn:call("AUTH", cfg.user, cfg.password)
        else
            ok, err = conn:call("AUTH", cfg.password)
        end
    end
    if (ok or not step) and cfg.db ~= 0 then
        step = "select"
        ok, err = conn:call("SELECT", cfg.db)
    end
    if step and not ok then
        conn:close()
        err = str_gsub(tostring(err), "^call failed: ", "")
        return nil, "connect failed: " .. step .. ": " .. err
    end
    conn:settimeout(cfg.timeout)
    return conn
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


local function check_timeout(v, name)
    if v ~= nil and (type(v) ~= "number" or not (v > 0)) then
        error("bad option '" .. name .. "' (number > 0 expected)", 3)
    end
end


--- Connects to Redis.
-- @param url `redis://`, `rediss://` or `unix://` URL (see parse_url)
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

    if not opts.lazy then
        local conn
        conn, err = open(cfg)
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


local function check_command(cmd, level)
    if type(cmd) ~= "string" then
        error("bad argument #1 to 'call' (command name expected)", level)
    end
    if REFUSED_FIRST[str_byte(cmd, 1)] then
        local why = REFUSED[str_upper(cmd)]
        if why then
            error(str_format("%s on a command connection: %s", cmd, why),
                  level)
        end
    end
end


-- True for the error a demoted primary (failover) answers writes with:
-- the command did not run, so it is safe to retry on a new connection.
local function is_readonly(err)
    return str_byte(err, 1) == 82 and str_find(err, "^READONLY") ~= nil
end


--- Runs one command.
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


-- ---------------------------------------------------------------------------
-- Scripts
-- ---------------------------------------------------------------------------

function script_mt.__tostring(self)
    return "wtt.redis.script " .. self.sha
end


--- A Lua script for Redis, named by the SHA1 of its source.
-- Scripts are plain values: make them once (at module load) and run them on
-- any client with `r:eval(script, keys, args)`.
-- @param source the script text
-- @return script {source, sha}
function _M.script(source)
    if type(source) ~= "string" then
        error("bad argument #1 to 'script' (string expected)", 2)
    end
    return setmetatable({ source = source, sha = sha1hex(source) },
                        script_mt)
end


--- Same as redis.script(source).
function client.script(self, source)
    return _M.script(source)
end


--- True when `v` is a script made by redis.script.
function _M.is_script(v)
    return getmetatable(v) == script_mt
end


-- SCRIPT LOAD on `conn`, unless the script is marked loaded for this
-- connection already; marks it.
function client._load(self, conn, script)
    if self.loaded[script.sha] then
        return true
    end
    local sha, err = conn:call("SCRIPT", "LOAD", script.source)
    if not sha then
        if conn:broken() then
            self:_lost(conn)
        end
        return nil, "script load failed: " .. tostring(err)
    end
    if sha ~= script.sha then
        return nil, "script load failed: server sha " .. tostring(sha)
                    .. " differs from " .. script.sha
    end
    self.loaded[sha] = true
    return true
end


-- Appends {EVALSHA, sha, #keys, keys..., args...} to a new array.
local function evalsha_argv(script, keys, args, level)
    if getmetatable(script) ~= script_mt then
        error("bad argument #1 to 'eval' (script from redis.script "
              .. "expected)", level)
    end
    keys = keys or {}
    args = args or {}
    if type(keys) ~= "table" or type(args) ~= "table" then
        error("bad argument to 'eval' (keys and args must be arrays)",
              level)
    end
    local nk, na = #keys, #args
    local argv = { "EVALSHA", script.sha, nk }
    for i = 1, nk do
        argv[3 + i] = keys[i]
    end
    for i = 1, na do
        argv[3 + nk + i] = args[i]
    end
    return argv
end


-- A connection on which `script` is loaded (SCRIPT LOAD the first time).
-- @return conn | nil, err
function client._script_conn(self, script)
    local conn, err = self:_get()
    if not conn then
        return nil, err
    end
    local ok
    ok, err = self:_load(conn, script)
    if not ok then
        return nil, err
    end
    return conn
end


-- eval on a fresh connection after READONLY, without a further retry.
function client._eval_once(self, script, argv)
    local conn, err = self:_script_conn(script)
    if not conn then
        return nil, err
    end
    return self:_callv(conn, argv)
end


--- Runs a script with EVALSHA.
-- The script is loaded (SCRIPT LOAD) the first time this connection runs
-- it; a NOSCRIPT reply (SCRIPT FLUSH, a restarted or failed-over server)
-- loads it again and retries once, transparently. READONLY retries once
-- on a new connection, as call does.
-- @param script from redis.script
-- @param keys array of key names (KEYS)
-- @param args array of strings/numbers (ARGV)
-- @return the script's reply | nil, err (as call)
function client.eval(self, script, keys, args)
    local argv = evalsha_argv(script, keys, args, 3)
    local conn, err = self:_script_conn(script)
    if not conn then
        return nil, err
    end
    local res
    res, err = self:_callv(conn, argv)
    if res == nil and err ~= nil and self.conn == nil
       and is_readonly(err)
    then
        return self:_eval_once(script, argv)
    end
    if res == nil and err ~= nil and not conn:broken()
       and str_find(err, "^NOSCRIPT")
    then
        self.loaded[script.sha] = nil
        local ok
        ok, err = self:_load(conn, script)
        if not ok then
            return nil, err
        end
        res, err = self:_callv(conn, argv)
    end
    return res, err
end


-- ---------------------------------------------------------------------------
-- Pipelines
-- ---------------------------------------------------------------------------

local NO_SCRIPTS = {}

--- Queues a command in the pipeline (same arguments as r:call).
function pipe.call(self, cmd, ...)
    check_command(cmd, 3)
    local n = select("#", ...)
    local argv = { cmd, ... }
    for i = 2, n + 1 do
        local t = type(argv[i])
        if t ~= "string" and t ~= "number" then
            error(str_format("bad argument #%d to 'call' (string or number "
                             .. "expected, got %s)", i, t), 2)
        end
    end
    self.n = self.n + 1
    self.cmds[self.n] = argv
end


--- Queues a script run (same arguments as r:eval). The script is loaded
-- before the pipeline is sent if this connection has not loaded it yet. An
-- entry that still gets NOSCRIPT (SCRIPT FLUSH since the load) is loaded
-- again and re-run once after the rest of the pipeline, and its reply
-- takes that entry's place.
function pipe.eval(self, script, keys, args)
    local argv = evalsha_argv(script, keys, args, 3)
    self.n = self.n + 1
    self.cmds[self.n] = argv
    self.scripts = self.scripts or {}
    self.scripts[script.sha] = script
end


--- Sends many commands in one round trip.
-- @param fn function(p) that queues commands with p:call(...) and
--   p:eval(script, keys, args); it runs before anything is sent
-- @return array of replies, one per command in order: the value,
--   redis.null for a nil reply, {err = msg} for an error reply |
--   nil, err on a transport failure (which commands ran is then unknown)
function client.pipeline(self, fn)
    if type(fn) ~= "function" then
        error("bad argument #1 to 'pipeline' (function expected)", 2)
    end
    local p = setmetatable({ n = 0, cmds = {} }, pipe_mt)
    fn(p)
    if p.n == 0 then
        return {}
    end
    local conn, err = self:_get()
    if not conn then
        return nil, err
    end
    for _, script in pairs(p.scripts or NO_SCRIPTS) do
        local ok
        ok, err = self:_load(conn, script)
        if not ok then
            return nil, err
        end
    end
    local res
    res, err = conn:pipeline(p.cmds)
    if not res then
        if conn:broken() then
            self:_lost(conn)
        end
        return nil, err
    end
    -- NOSCRIPT (a SCRIPT FLUSH since this connection loaded the script):
    -- load again and re-run those entries once, in order.
    local again
    for i = 1, p.n do
        local v = res[i]
        if type(v) == "table" and type(v.err) == "string"
           and is_readonly(v.err) and self.conn == conn
        then
            -- Not retried (the other entries ran); the next command goes
            -- to a new connection.
            self:_lost(conn)
        elseif type(v) == "table" and type(v.err) == "string"
           and str_find(v.err, "^NOSCRIPT")
        then
            again = again or {}
            again[#again + 1] = i
            self.loaded[p.cmds[i][2]] = nil
        end
    end
    if not again or self.conn ~= conn then
        return res
    end
    local cmds = {}
    for j, i in ipairs(again) do
        local ok
        ok, err = self:_load(conn, p.scripts[p.cmds[i][2]])
        if not ok then
            return nil, err
        end
        cmds[j] = p.cmds[i]
    end
    local res2
    res2, err = conn:pipeline(cmds)
    if not res2 then
        if conn:broken() then
            self:_lost(conn)
        end
        return nil, err
    end
    for j, i in ipairs(again) do
        res[i] = res2[j]
    end
    return res
end


-- ---------------------------------------------------------------------------
-- Pub/sub
-- ---------------------------------------------------------------------------

local function as_list(v, name)
    if v == nil then
        return {}
    end
    if type(v) == "string" then
        return { v }
    end
    if type(v) ~= "table" then
        error("bad argument to 'subscribe' (" .. name
              .. " must be a string or an array)", 3)
    end
    for i = 1, #v do
        if type(v[i]) ~= "string" then
            error("bad argument to 'subscribe' (" .. name
                  .. " must hold strings)", 3)
        end
    end
    return v
end


-- Sends `cmd` with the names in `list`; nothing when the list is empty.
local function send_names(conn, cmd, list)
    if #list == 0 then
        return true
    end
    local argv = { cmd }
    for i = 1, #list do
        argv[i + 1] = list[i]
    end
    return conn:writev(argv)
end


-- Opens a connection and sends SUBSCRIBE / PSUBSCRIBE (confirmations are
-- counted by the loop). Returns conn or nil, err.
local function sub_open(cfg, channels, patterns)
    local conn, err = open(cfg)
    if not conn then
        return nil, err
    end
    local ok
    ok, err = send_names(conn, "SUBSCRIBE", channels)
    if ok then
        ok, err = send_names(conn, "PSUBSCRIBE", patterns)
    end
    if not ok then
        conn:close()
        return nil, err
    end
    return conn
end


local function sub_stop(st)
    local conn = st.conn
    st.conn = nil
    if conn then
        conn:write("UNSUBSCRIBE")
        conn:write("PUNSUBSCRIBE")
        conn:close()
    end
    return true
end


-- The subscribe loop proper; runs under pcall so the caller can always
-- close the connection (st.conn). Returns true | nil, err.
local function sub_loop(cfg, st, channels, patterns, on_message, opts)
    local tick = opts.tick or 1
    local on_tick = opts.on_tick
    local on_ready = opts.on_ready
    local on_reconnect = opts.on_reconnect
    local max_reconnects = opts.max_reconnects
    local ping_interval = opts.ping_interval or 30
    local nsubs = #channels + #patterns

    local conn, err = sub_open(cfg, channels, patterns)
    if not conn then
        return nil, "subscribe failed: " .. err
    end
    st.conn = conn

    local sessions = 1                 -- successful (re)subscriptions
    local pending = nsubs              -- confirmations still to come
    local confirm_by = now() + cfg.timeout
    local last_rx = now()
    local pong_by = nil                -- a PING is out, answer by then
    local attempts = 0                 -- failed reconnects in a row
    local retry_at = nil
    local last_err = nil
    local next_tick = now() + tick

    -- After a confirmed session the first attempt is immediate; a session
    -- that never got confirmed counts as a failed attempt.
    local function lost(why)
        conn:close()
        conn = nil
        st.conn = nil
        last_err = why
        retry_at = now()
        if attempts > 0 then
            retry_at = retry_at + backoff_delay(cfg, attempts)
        end
    end

    while true do
        local t = now()
        if conn then
            local wait = next_tick - t
            if confirm_by and confirm_by - t < wait then
                wait = confirm_by - t
            end
            if pong_by and pong_by - t < wait then
                wait = pong_by - t
            end
            if wait < 0 then
                wait = 0
            end
            local msg, rerr = conn:read(wait)
            if msg ~= nil then
                last_rx = now()
                local kind = msg[1]
                if kind == "message" then
                    if on_message("message", msg[2], msg[3]) == false then
                        return sub_stop(st)
                    end
                elseif kind == "pmessage" then
                    if on_message("pmessage", msg[3], msg[4], msg[2])
                       == false
                    then
                        return sub_stop(st)
                    end
                elseif kind == "subscribe" or kind == "psubscribe" then
                    pending = pending - 1
                    if pending == 0 then
                        confirm_by = nil
                        attempts = 0
                        local cb = sessions == 1 and on_ready or on_reconnect
                        if cb and cb() == false then
                            return sub_stop(st)
                        end
                    end
                elseif kind == "pong" then
                    pong_by = nil
                end
            elseif rerr ~= "timeout" then
                if not conn:broken() then
                    -- An error reply (NOPERM, ...) will not go away.
                    sub_stop(st)
                    return nil, "subscribe failed: " .. tostring(rerr)
                end
                lost(rerr)
            end

            t = now()
            if conn and confirm_by and t >= confirm_by then
                lost("subscribe failed: no confirmation within "
                     .. cfg.timeout .. "s")
            elseif conn and pong_by and t >= pong_by then
                lost("subscribe failed: no answer to ping within "
                     .. cfg.timeout .. "s")
            elseif conn and not pong_by and not confirm_by
                   and t - last_rx >= ping_interval
            then
                local ok, werr = conn:write("PING")
                if ok then
                    pong_by = t + cfg.timeout
                else
                    lost(werr)
                end
            end
        elseif t >= retry_at then
            if max_reconnects and attempts >= max_reconnects then
                return nil, str_format("subscribe failed: gave up after %d "
                                       .. "reconnect attempts: %s",
                                       attempts, tostring(last_err))
            end
            attempts = attempts + 1
            conn, err = sub_open(cfg, channels, patterns)
            if conn then
                st.conn = conn
                sessions = sessions + 1
                pending = nsubs
                confirm_by = now() + cfg.timeout
                pong_by = nil
                last_rx = now()
            else
                last_err = err
                retry_at = now() + backoff_delay(cfg, attempts)
            end
        else
            sleep(min(retry_at, next_tick) - t)
        end

        if now() >= next_tick then
            next_tick = now() + tick
            if on_tick and on_tick() == false then
                return sub_stop(st)
            end
        end
    end
end


--- Subscribes and runs the message loop until told to stop.
-- Uses its own connection (made from the client's URL and options, never
-- the command connection), so the client stays usable from callbacks.
-- @param channels channel name or array (SUBSCRIBE), may be nil
-- @param patterns pattern or array (PSUBSCRIBE), may be nil
-- @param on_message function(kind, channel, payload, pattern): kind is
--   "message" or "pmessage" (pattern set only then)
-- @param opts optional: `tick` (s, default 1): `on_tick()` runs at least
--   this often; `on_ready()` once the first subscriptions are confirmed;
--   `on_reconnect()` after the subscriptions were re-established on a new
--   connection (drain backlogs there); `max_reconnects` (consecutive
--   failed attempts before giving up; default unlimited);
--   `ping_interval` (s of silence before a PING checks the link, default
--   30). Any callback returning false ends the loop.
-- @return true when a callback returned false (unsubscribed and closed) |
--   nil, err (first connect failed, an error reply, or reconnects gave up).
--   An error raised by a callback closes the connection and propagates.
function client.subscribe(self, channels, patterns, on_message, opts)
    channels = as_list(channels, "channels")
    patterns = as_list(patterns, "patterns")
    if #channels + #patterns == 0 then
        error("bad argument to 'subscribe' (no channels or patterns)", 2)
    end
    if type(on_message) ~= "function" then
        error("bad argument #3 to 'subscribe' (function expected)", 2)
    end
    opts = opts or {}
    if opts.tick ~= nil then
        check_timeout(opts.tick, "tick")
    end
    if opts.ping_interval ~= nil then
        check_timeout(opts.ping_interval, "ping_interval")
    end
    if self.closed then
        return nil, "closed"
    end
    local st = { conn = nil }
    local ok, res, err = pcall(sub_loop, self.cfg, st, channels, patterns,
                               on_message, opts)
    if st.conn then
        st.conn:close()
        st.conn = nil
    end
    if not ok then
        error(res, 0)
    end
    return res, err
end



-- ---------------------------------------------------------------------------
-- Start-up check
-- ---------------------------------------------------------------------------

--- Says what a connection error means when it comes from a mismatch of the
-- URL and the server, not from an outage: a TLS certificate the client does
-- not trust, a TLS client on a plain port (no TLS answer, or a plain reply
-- where a handshake was expected), a plain client on a TLS-only port (the
-- server drops the connection at the first command).
-- @param err error text of connect or of a first command
-- @param tls whether the URL was rediss://
-- @return err with a hint appended, and true | err, false
function _M.explain(err, tls)
    err = tostring(err)
    if str_find(err, "certificate verify failed", 1, true) then
        return err .. " (the Redis server's certificate is not trusted: set "
               .. "WTT_REDIS_CA_FILE to the CA that signed it, and check "
               .. "that the URL's host is one of its names)", true
    end
    if str_find(err, "tls handshake", 1, true) then
        return err .. " (no TLS answer: is this a plain-TCP Redis port? "
               .. "use redis:// for it, or the server's tls-port)", true
    end
    if str_find(err, "WRONGPASS", 1, true)
       or str_find(err, "NOAUTH", 1, true)
       or str_find(err, "invalid password", 1, true) then
        return err .. " (the server refused the URL's credentials, or "
               .. "needs some: redis://user:password@host:port; check "
               .. "requirepass or the ACL user)", true
    end
    if not tls and (str_find(err, "connection reset", 1, true)
                    or str_find(err, "closed by server", 1, true)
                    or str_find(err, "protocol error", 1, true)) then
        return err .. " (the server dropped a plain connection before "
               .. "answering: a TLS-only port? use rediss://)", true
    end
    return err, false
end


--- Connects once and runs PING, to find at start-up a configuration that
-- can never work (see explain) before a process settles into retrying.
-- @param url as connect
-- @param opts as connect (lazy is ignored)
-- @return true | nil, err (with explain's hint), kind: "config" (the URL
--   and the server do not match: retrying cannot help) or "unreachable"
--   (refused, timed out, down: it may come back)
function _M.probe(url, opts)
    local o = {}
    for k, v in pairs(opts or {}) do
        o[k] = v
    end
    o.lazy = nil
    local c, err = _M.connect(url, o)
    local pong
    if c then
        pong, err = c:call("PING")
        c:close()
        if pong == "PONG" then
            return true
        end
    end
    local cfg = parse_url(url)
    if not cfg then
        return nil, err, "config"
    end
    local text, config = _M.explain(err, cfg.tls)
    return nil, text, config and "config" or "unreachable"
end

return _M
