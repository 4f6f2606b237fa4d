--- Spec helper: a real PostgreSQL 15 in a temp dir, on a random loopback port
-- (or on another address of this machine: opts.host, opts.wrap).
--
--     local pgh = require "spec.support.pg"
--     local srv = pgh.start()          -- initdb + pg_ctl start, trust auth
--     local db = assert(require("wtt.pg").connect(srv.url))
--     srv:restart()                    -- pg_ctl restart -m fast
--     srv:kill()                       -- pg_ctl stop -m immediate (data kept)
--     srv:start()                      -- start it again after kill()
--     local url = srv:createdb("other")
--     srv:stop()                       -- stop and remove the temp dir
--
-- The server runs Debian's binaries from /usr/lib/postgresql/15/bin with
-- fsync off, listening on 127.0.0.1 only, with its unix socket inside the
-- temp dir. initdb refuses to run as root, so when the specs run as root
-- (CI) the temp dir is given to the `postgres` user and every server
-- command runs through `runuser -u postgres --`.

local sys = require "wtt.sys"

local _M = {}

_M.BIN = os.getenv("WTT_PG_BIN") or "/usr/lib/postgresql/15/bin"

local server_mt = {}
server_mt.__index = server_mt

local IS_ROOT = (function()
    local f = io.open("/proc/self/status", "r")
    local text = f and f:read("*a") or ""
    if f then
        f:close()
    end
    return text:match("\nUid:%s+0%s") ~= nil
end)()


-- Runs argv to completion with output appended to `log`; returns true or
-- nil, err naming the command. `as_pg`: as the postgres user when root.
-- `wrap`: a function returning the command line to run instead (outermost).
local function run(argv, log, timeout, as_pg, wrap)
    if as_pg and IS_ROOT then
        local wrapped = { "runuser", "-u", "postgres", "--" }
        for _, a in ipairs(argv) do
            wrapped[#wrapped + 1] = a
        end
        argv = wrapped
    end
    if wrap then
        argv = wrap(argv)
    end
    local pid, err = sys.spawn(argv, { stdout = log, stderr = log,
                                       cwd = "/" })
    if not pid then
        return nil, err
    end
    local how, code = sys.wait(pid, timeout or 60)
    if not how then
        sys.kill(pid, "KILL")
        sys.wait(pid, 5)
        return nil, table.concat(argv, " ") .. ": timed out"
    end
    if how ~= "exited" or code ~= 0 then
        return nil, table.concat(argv, " ") .. ": " .. how .. " " .. code
    end
    return true
end


function server_mt.log_text(self)
    return (sys.read_file(self.log) or "") .. "\n"
        .. (sys.read_file(self.server_log) or "")
end


-- Raises with the logs when `ok` is falsy.
local function check(self, ok, err)
    if not ok then
        error(err .. "\n--- logs ---\n" .. self:log_text(), 3)
    end
    return ok
end


function server_mt.pg_ctl(self, ...)
    local argv = { _M.BIN .. "/pg_ctl", "-D", self.data, ... }
    return run(argv, self.log, 60, true, self.wrap)
end


--- Starts the server (again, after kill()); waits until it accepts.
function server_mt.start(self)
    check(self, self:pg_ctl("-l", self.server_log, "-w", "-t", "30",
                            "start"))
    self.running = true
    return self
end


--- Restarts the server (fast shutdown: sessions are terminated).
function server_mt.restart(self)
    check(self, self:pg_ctl("-l", self.server_log, "-w", "-t", "30",
                            "-m", "fast", "restart"))
    self.running = true
    return self
end


--- Stops the server at once, as a crash would (-m immediate).
function server_mt.kill(self)
    check(self, self:pg_ctl("-w", "-t", "30", "-m", "immediate", "stop"))
    self.running = false
    return self
end


--- Creates database `name`; returns its URL.
function server_mt.createdb(self, name)
    assert(type(name) == "string" and name:match("^[%a_][%w_]*$"),
           "createdb: plain identifier expected")
    local with_password = self.password and function(argv)
        table.insert(argv, 1, "PGPASSWORD=" .. self.password)
        table.insert(argv, 1, "env")
        return argv
    end
    check(self, run({ _M.BIN .. "/createdb", "-h", self.host,
                      "-p", tostring(self.port), "-U", "postgres", name },
                    self.log, 30, false, with_password))
    return self:url_for(name)
end


--- The URL of database `name` on this server.
function server_mt.url_for(self, name)
    return ("postgresql://postgres%s@%s:%d/%s"):format(
        self.password and (":" .. self.password) or "", self.host,
        self.port, name)
end


--- Stops the server and removes its directory; safe to call twice.
function server_mt.stop(self)
    if self.stopped then
        return
    end
    self.stopped = true
    if self.running then
        local ok = self:pg_ctl("-w", "-t", "30", "-m", "fast", "stop")
        if not ok then
            self:pg_ctl("-w", "-t", "10", "-m", "immediate", "stop")
        end
        self.running = false
    end
    sys.rmtree(self.dir)
end


--- Starts a fresh server.
-- @param opts { conf = { name = value, ... } extra postgresql.conf lines,
--   host = the listen address, also in the URL (default 127.0.0.1; a
--   private address of this machine, such as a network namespace's from
--   spec/support/netns.lua: the spec must reach it), password = the
--   postgres user's password (TCP logins then need it: scram-sha-256;
--   the unix socket stays trust), hba = { extra pg_hba.conf lines, e.g.
--   "host all all 10.1.2.0/24 scram-sha-256" }, wrap = function(argv)
--   returning the command line that starts the server instead (e.g.
--   inside that namespace), data = the data directory (default data/
--   under the server's temp dir; an empty directory the postgres user
--   owns, e.g. a small file system of the disk-full spec) }
-- @return server { url, port, dir, data, log, stop, restart, kill, start,
--   createdb }
function _M.start(opts)
    opts = opts or {}
    local dir = assert(sys.mkdtemp("wtt-pg-"))
    local self = setmetatable({
        dir = dir,
        data = opts.data or (dir .. "/data"),
        log = dir .. "/ctl.log",
        server_log = dir .. "/server.log",
        port = assert(sys.free_port()),
        running = false,
        host = opts.host or "127.0.0.1",
        password = opts.password,
        wrap = opts.wrap,
    }, server_mt)
    self.url = self:url_for("postgres")

    local ok, err = pcall(function()
        if IS_ROOT then
            check(self, run({ "chown", "postgres:postgres", dir }, self.log))
        end
        local initdb = { _M.BIN .. "/initdb", "-D", self.data, "-A", "trust",
                         "-U", "postgres", "-E", "UTF8", "--locale=C",
                         "--no-sync", "--no-instructions" }
        if opts.password then
            local pwfile = dir .. "/pwfile"
            assert(sys.write_file(pwfile, opts.password .. "\n"))
            if IS_ROOT then
                check(self, run({ "chown", "postgres:postgres", pwfile },
                                self.log))
            end
            for _, a in ipairs({ "--auth-host=scram-sha-256",
                                 "--auth-local=trust",
                                 "--pwfile=" .. pwfile }) do
                initdb[#initdb + 1] = a
            end
        end
        check(self, run(initdb, self.log, 120, true))
        if opts.password then
            os.remove(dir .. "/pwfile")
        end

        local conf = {
            listen_addresses = "'" .. self.host .. "'",
            port = tostring(self.port),
            unix_socket_directories = "'" .. dir .. "'",
            fsync = "off",
            synchronous_commit = "off",
            full_page_writes = "off",
            max_connections = "40",
            shared_buffers = "16MB",
            log_min_messages = "warning",
        }
        for k, v in pairs(opts.conf or {}) do
            conf[k] = v
        end
        -- Appending keeps the file's owner (postgres) and mode.
        local f = assert(io.open(self.data .. "/postgresql.conf", "a"))
        f:write("\n# spec.support.pg\n")
        for k, v in pairs(conf) do
            f:write(k, " = ", v, "\n")
        end
        f:close()
        if opts.hba then
            f = assert(io.open(self.data .. "/pg_hba.conf", "a"))
            f:write("\n# spec.support.pg\n", table.concat(opts.hba, "\n"),
                    "\n")
            f:close()
        end
        self:start()
    end)
    if not ok then
        self:stop()
        error(err, 2)
    end
    return self
end


return _M
