--- Spec helper: real `redis-server` processes on random loopback ports
-- (or on another address of this machine: opts.host, opts.wrap).
--
--     local rh = require "spec.support.redis"
--     local srv = rh.start({ appendonly = true, tls = true })
--     local r = assert(srv:client())          -- wtt.redis client
--     srv:kill(); srv:restart()               -- SIGKILL, same port + dir
--     srv:stop()                              -- also removes srv.dir
--
-- Every server gets its own temp dir (data, AOF, log, TLS files). No mocks:
-- specs talk to the redis-server binary on PATH (or $WTT_REDIS_SERVER).
-- TLS material is made with the `openssl` CLI: a throwaway CA and a server
-- certificate for 127.0.0.1 and localhost (EC P-256, valid two days).

local sys = require "wtt.sys"
local core = require "wtt.core.redis"
local redis = require "wtt.redis"

local _M = {}

_M.REDIS_SERVER = os.getenv("WTT_REDIS_SERVER") or "redis-server"
_M.OPENSSL = os.getenv("WTT_OPENSSL") or "openssl"

local server_mt = {}
server_mt.__index = server_mt

local started = {}     -- every server started by this Lua state


-- Runs argv to completion with output in `log`; raises on failure.
local function run(argv, log)
    local pid = assert(sys.spawn(argv, { stdout = log, stderr = log }))
    local how, code = sys.wait(pid, 60)
    if how ~= "exited" or code ~= 0 then
        if how == nil then
            sys.kill(pid, "KILL")
            sys.wait(pid, 5)
        end
        error(table.concat(argv, " ") .. " failed (" .. tostring(how)
              .. " " .. tostring(code) .. "):\n"
              .. (sys.read_file(log) or ""))
    end
end


local function write(path, text)
    assert(sys.write_file(path, text))
    return path
end


--- Makes a throwaway CA in `dir`.
-- @return { cert = path, key = path }
function _M.make_ca(dir, name)
    name = name or "ca"
    local cnf = write(dir .. "/" .. name .. ".cnf", table.concat({
        "[req]",
        "distinguished_name = dn",
        "prompt = no",
        "[dn]",
        "CN = wtt test " .. name,
        "[v3_ca]",
        "basicConstraints = critical,CA:TRUE",
        "keyUsage = critical,keyCertSign,cRLSign",
        "subjectKeyIdentifier = hash",
        "",
    }, "\n"))
    local ca = { cert = dir .. "/" .. name .. ".crt",
                 key = dir .. "/" .. name .. ".key" }
    run({ _M.OPENSSL, "req", "-x509", "-new", "-newkey", "ec",
          "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
          "-keyout", ca.key, "-out", ca.cert, "-days", "2",
          "-config", cnf, "-extensions", "v3_ca" },
        dir .. "/openssl.log")
    return ca
end


--- Makes a certificate signed by `ca` for `hosts` (IPs and DNS names;
-- default 127.0.0.1 and localhost), usable as server and client cert.
-- @return { cert = path, key = path }
function _M.make_cert(dir, name, ca, hosts)
    hosts = hosts or { "127.0.0.1", "localhost" }
    local alt, nip, ndns = {}, 0, 0
    for _, h in ipairs(hosts) do
        if h:match("^[%d.]+$") or h:find(":", 1, true) then
            nip = nip + 1
            alt[#alt + 1] = "IP." .. nip .. " = " .. h
        else
            ndns = ndns + 1
            alt[#alt + 1] = "DNS." .. ndns .. " = " .. h
        end
    end
    local cnf = write(dir .. "/" .. name .. ".cnf", table.concat({
        "[req]",
        "distinguished_name = dn",
        "prompt = no",
        "[dn]",
        "CN = " .. hosts[1],
        "[v3_leaf]",
        "basicConstraints = CA:FALSE",
        "keyUsage = critical,digitalSignature,keyEncipherment",
        "extendedKeyUsage = serverAuth,clientAuth",
        "subjectAltName = @alt",
        "[alt]",
        table.concat(alt, "\n"),
        "",
    }, "\n"))
    local c = { cert = dir .. "/" .. name .. ".crt",
                key = dir .. "/" .. name .. ".key" }
    local csr = dir .. "/" .. name .. ".csr"
    local log = dir .. "/openssl.log"
    run({ _M.OPENSSL, "req", "-new", "-newkey", "ec",
          "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
          "-keyout", c.key, "-out", csr, "-config", cnf }, log)
    run({ _M.OPENSSL, "x509", "-req", "-in", csr, "-CA", ca.cert,
          "-CAkey", ca.key,
          "-set_serial", tostring(math.floor(sys.time() * 1000) % 2^40),
          "-out", c.cert, "-days", "2", "-extfile", cnf,
          "-extensions", "v3_leaf" }, log)
    return c
end


-- Builds the redis-server command line for `self`.
local function server_argv(self)
    local o = self.opts
    local argv = { _M.REDIS_SERVER,
        "--bind", self.host,
        "--save", "",
        "--appendonly", o.appendonly and "yes" or "no",
        "--appendfsync", o.appendfsync or "everysec",
        "--dir", self.dir,
        "--daemonize", "no",
        "--logfile", "",
        "--databases", "16",
    }
    local function add(...)
        for _, v in ipairs({ ... }) do
            argv[#argv + 1] = v
        end
    end
    if self.tls then
        add("--port", "0", "--tls-port", tostring(self.port),
            "--tls-cert-file", self.tls.server.cert,
            "--tls-key-file", self.tls.server.key,
            "--tls-ca-cert-file", self.tls.ca.cert,
            "--tls-auth-clients", o.tls_auth_clients and "yes" or "no")
    else
        add("--port", tostring(self.port))
    end
    if o.password then
        add("--requirepass", o.password)
    end
    if o.unixsocket then
        add("--unixsocket", self.dir .. "/redis.sock", "--unixsocketperm",
            "700")
    end
    for _, v in ipairs(o.args or {}) do
        add(v)
    end
    return argv
end


-- One PING through the C module (after AUTH when the server has a
-- password): "PONG" once the dataset is loaded, else an error reply text
-- ("LOADING ...") or nil.
local function probe(self)
    local c = core.connect(self.host, self.port, {
        tls = self.tls and true or nil, verify = false,
        cert = self.tls and self.tls.client.cert or nil,
        key = self.tls and self.tls.client.key or nil,
        connect_timeout = 0.5, timeout = 1,
    })
    if not c then
        return nil
    end
    local v, err = true, nil
    if self.password then
        v, err = c:call("AUTH", self.password)
    end
    if v then
        v, err = c:call("PING")
    end
    c:close()
    return v or err
end


-- Spawns redis-server on self.port and waits for an answer. Returns true,
-- or nil and the log text when the process died.
local function launch(self, wait)
    local log = self.dir .. "/redis.log"
    self.log = log
    local argv = server_argv(self)
    if self.opts.wrap then
        argv = self.opts.wrap(argv)
    end
    local pid = assert(sys.spawn(argv, { stdout = log, stderr = log }))
    self.pid = pid
    local deadline = sys.now() + (wait or 10)
    while sys.now() < deadline do
        -- LOADING: still reading the AOF; PONG: serving.
        if probe(self) == "PONG" then
            return true
        end
        if sys.wait(pid, 0) then
            self.pid = nil
            return nil, sys.read_file(log) or ""
        end
        sys.sleep(0.02)
    end
    sys.kill(pid, "KILL")
    sys.wait(pid, 5)
    self.pid = nil
    error("redis-server did not become ready:\n"
          .. (sys.read_file(log) or ""))
end


--- Starts redis-server.
-- @param opts { appendonly = bool, appendfsync = "everysec"|"always",
--   password = string, tls = bool, tls_hosts = { names for the server
--   cert }, tls_auth_clients = bool, unixsocket = bool, args = { extra
--   redis-server arguments }, wait = seconds, host = the address to bind
--   and to put in the URL (default 127.0.0.1; a private address of
--   this machine, such as a network namespace's from
--   spec/support/netns.lua: the spec must reach it), wrap = function(argv)
--   returning the command line to run instead (e.g. inside that
--   namespace: net:argv("redis", argv)) }
-- @return server { url, port, dir, ca_file, pid, password, socket, ... }
function _M.start(opts)
    opts = opts or {}
    local self = setmetatable({ opts = opts,
                                host = opts.host or "127.0.0.1" }, server_mt)
    self.dir = assert(sys.mkdtemp("wtt-redis-"))
    if opts.tls then
        local ca = _M.make_ca(self.dir, "ca")
        self.tls = {
            ca = ca,
            server = _M.make_cert(self.dir, "server", ca, opts.tls_hosts),
            client = _M.make_cert(self.dir, "client", ca, { "wtt-client" }),
        }
        self.ca_file = ca.cert
    end
    if opts.unixsocket then
        self.socket = self.dir .. "/redis.sock"
    end
    self.password = opts.password
    started[#started + 1] = self

    -- free_port() can race with another process taking the port: retry.
    local log
    for _ = 1, 5 do
        self.port = assert(sys.free_port())
        local ok
        ok, log = launch(self, opts.wait)
        if ok then
            local auth = opts.password and (":" .. opts.password .. "@") or ""
            self.url = (opts.tls and "rediss" or "redis") .. "://" .. auth
                       .. self.host .. ":" .. self.port .. "/0"
            return self
        end
        if not log:find("already in use", 1, true) then
            break
        end
    end
    sys.rmtree(self.dir)
    error("redis-server exited during start:\n" .. log)
end


--- Options for redis.connect that trust this server's CA (TLS).
function server_mt.connect_opts(self, extra)
    local o = { ca_file = self.ca_file }
    for k, v in pairs(extra or {}) do
        o[k] = v
    end
    return o
end


--- A wtt.redis client for this server (url defaults to self.url).
function server_mt.client(self, opts, url)
    return redis.connect(url or self.url, self:connect_opts(opts))
end


--- True while the process runs (not killed or stopped by us).
function server_mt.running(self)
    return self.pid ~= nil
end


--- Sends a signal without waiting ("STOP", "CONT", ...).
function server_mt.signal(self, sig)
    assert(self.pid, "redis-server is not running")
    return sys.kill(self.pid, sig)
end


--- SIGSTOP: the server stays connected but answers nothing.
function server_mt.pause(self)
    return self:signal("STOP")
end


function server_mt.resume(self)
    return self:signal("CONT")
end


--- Ends the process with `sig` (default KILL: no shutdown, no final AOF
-- fsync) and reaps it. The dir stays for restart().
function server_mt.kill(self, sig)
    if not self.pid then
        return
    end
    sys.kill(self.pid, "CONT")
    sys.kill(self.pid, sig or "KILL")
    if not sys.wait(self.pid, 10) then
        sys.kill(self.pid, "KILL")
        sys.wait(self.pid, 5)
    end
    self.pid = nil
end


--- Starts the server again on the same port and dir (AOF data survives
-- when appendonly is on). Shuts it down first (TERM) if it runs.
function server_mt.restart(self)
    self:kill("TERM")
    local ok, log = launch(self, self.opts.wait)
    if not ok then
        error("redis-server exited during restart:\n" .. log)
    end
    return self
end


--- FLUSHALL through a fresh connection.
function server_mt.flushall(self)
    local r = assert(self:client())
    assert(r:call("FLUSHALL"))
    r:close()
end


--- Stops the server (TERM, then KILL) and removes its dir. Safe twice.
function server_mt.stop(self)
    if self.stopped then
        return
    end
    self.stopped = true
    self:kill("TERM")
    sys.rmtree(self.dir)
end


--- Stops every server this Lua state started (teardown safety net).
function _M.stop_all()
    for _, srv in ipairs(started) do
        srv:stop()
    end
    started = {}
end


return _M
