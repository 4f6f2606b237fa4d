--- Spec helpers: real `wtt serve` processes on random loopback ports.
--
-- Specs run inside `wtt spec`, so the binary serving is the one running the
-- spec (wtt.runtime.exe). Every server gets its own temp dir (routes copy,
-- log, scratch) that `stop()` removes.

local sys = require "wtt.sys"
local httpc = require "wtt.http_client"
local json = require "wtt.json"
local runtime = require "wtt.runtime"

local _M = {}

_M.ADMIN_TOKEN = "spec-admin-token"
_M.FIXTURES = runtime.source_dir .. "/spec/fixtures"

local server_mt = {}
server_mt.__index = server_mt


local function copy_dir(from, to)
    assert(sys.exists(to) == "dir" or os.execute("mkdir -p '" .. to .. "'"))
    for _, name in ipairs(assert(sys.listdir(from))) do
        local kind = sys.exists(from .. "/" .. name)
        if kind == "dir" then
            copy_dir(from .. "/" .. name, to .. "/" .. name)
        elseif kind == "file" then
            assert(sys.write_file(to .. "/" .. name,
                                  assert(sys.read_file(from .. "/" .. name))))
        end
    end
end
_M.copy_dir = copy_dir


--- Starts `wtt serve`.
-- @param opts { routes = dir (default fixtures/routes + routes/),
--   env = {...}, threads = n, wait = seconds, port = n (default: a free
--   one; a restarted replica keeps its address) }
-- @return server { port, url, pid, dir, routes_dir, log }
function _M.serve(opts)
    opts = opts or {}
    local dir = assert(sys.mkdtemp("wtt-spec-"))
    local routes = dir .. "/routes"
    copy_dir(opts.routes or (_M.FIXTURES .. "/routes"), routes)
    if not opts.routes then
        copy_dir(runtime.source_dir .. "/routes", routes)
    end
    local port = opts.port or assert(sys.free_port())
    local env = {
        WTT_LISTEN = "127.0.0.1:" .. port,
        WTT_ROUTES_DIR = routes,
        WTT_PLUGINS_DIR = opts.plugins or (dir .. "/plugins"),
        WTT_THREADS = tostring(opts.threads or 2),
        WTT_ADMIN_TOKEN = _M.ADMIN_TOKEN,
        WTT_LOG_LEVEL = "info",
        WTT_TMP_DIR = dir,
        WTT_SPEC_MARK_DIR = dir,
        WTT_SPEC_FILE_DIR = dir,
        WTT_SPEC_KEEP_DIR = dir,
    }
    for k, v in pairs(opts.env or {}) do
        env[k] = v
    end
    local log = dir .. "/serve.log"
    local pid = assert(sys.spawn({ runtime.exe, "serve" },
                                 { env = env, stdout = log, stderr = log }))
    local srv = setmetatable({
        port = port, url = "http://127.0.0.1:" .. port, pid = pid,
        dir = dir, routes_dir = routes, log = log,
    }, server_mt)
    local deadline = sys.now() + (opts.wait or 10)
    while sys.now() < deadline do
        local res = httpc.request({ url = srv.url .. "/livez", timeout = 1 })
        if res and res.status == 200 then
            return srv
        end
        if sys.wait(pid, 0) then
            error("wtt serve exited during start:\n" .. srv:log_text())
        end
        sys.sleep(0.05)
    end
    srv:stop()
    error("wtt serve did not become ready:\n" .. srv:log_text())
end


function server_mt.log_text(self)
    return sys.read_file(self.log) or ""
end


--- An HTTP request to this server; returns the httpc result.
function server_mt.request(self, method, path, opts)
    opts = opts or {}
    opts.url = self.url .. path
    opts.method = method
    opts.timeout = opts.timeout or 10
    return httpc.request(opts)
end


--- Like request, but decodes a JSON body into res.json.
function server_mt.json(self, method, path, opts)
    local res, err = self:request(method, path, opts)
    if res and res.body and res.body ~= "" then
        local ok, doc = pcall(json.decode, res.body)
        res.json = ok and doc or nil
    end
    return res, err
end


function server_mt.admin(self, method, path, opts)
    opts = opts or {}
    opts.headers = opts.headers or {}
    opts.headers.Authorization = "Bearer " .. _M.ADMIN_TOKEN
    return self:json(method, path, opts)
end


--- Sends a signal and waits for the exit. Returns how it ended.
function server_mt.signal_and_wait(self, sig, timeout)
    sys.kill(self.pid, sig)
    return sys.wait(self.pid, timeout or 15)
end


--- Stops the server (TERM, then KILL) and removes its temp dir. Raises
--- with the log when SIGTERM did not end it with status 0: a clean
--- shutdown is part of every spec (under the sanitizer build a leak report
--- makes the exit non-zero).
function server_mt.stop(self)
    if self.stopped then
        return
    end
    self.stopped = true
    sys.kill(self.pid, "TERM")
    local how, code = sys.wait(self.pid, 10)
    if not how then
        sys.kill(self.pid, "KILL")
        sys.wait(self.pid, 5)
    end
    local text = self:log_text()
    sys.rmtree(self.dir)
    if how and not (how == "exited" and code == 0) then
        error(("wtt serve ended %s %d after SIGTERM:\n%s"):format(how, code,
                                                                  text), 2)
    end
end


--- Waits until fn() is truthy or `timeout` seconds pass; returns fn's value.
--- Stops child `pid`: SIGTERM, up to `timeout` seconds (default 10) for it
-- to exit, then SIGKILL. Returns how it ended and its code (sys.wait's).
function _M.terminate(pid, timeout)
    sys.kill(pid, "TERM")
    local how, code = sys.wait(pid, timeout or 10)
    if not how then
        sys.kill(pid, "KILL")
        how, code = sys.wait(pid, 5)
    end
    return how, code
end


--- Runs argv to completion (20 s at most): true, output | nil, message
-- (the command line, how it ended and what it printed).
function _M.run(argv)
    local log = os.tmpname()
    local pid, err = sys.spawn(argv, { stdout = log, stderr = log })
    if not pid then
        os.remove(log)
        return nil, table.concat(argv, " ") .. ": " .. tostring(err)
    end
    local how, code = sys.wait(pid, 20)
    if not how then
        sys.kill(pid, "KILL")
        sys.wait(pid, 5)
    end
    local out = sys.read_file(log) or ""
    os.remove(log)
    if how == "exited" and code == 0 then
        return true, out
    end
    return nil, table.concat(argv, " ") .. ": " .. tostring(how) .. " "
        .. tostring(code) .. ": " .. out:gsub("%s+$", "")
end


function _M.eventually(fn, timeout)
    local deadline = sys.now() + (timeout or 5)
    repeat
        local v = fn()
        if v then
            return v
        end
        sys.sleep(0.02)
    until sys.now() > deadline
    return nil
end


--- Sends raw bytes on a fresh TCP connection and returns the raw answer.
function _M.raw(port, data, opts)
    opts = opts or {}
    local conn = assert(sys.tcp_connect("127.0.0.1", port,
                                        { bind = opts.bind }))
    if data then
        conn:send(data)
    end
    local out, how = conn:recv_all(opts.timeout or 5)
    conn:close()
    return out or "", how
end


--- Status code of a raw HTTP answer, or nil.
function _M.status_of(raw)
    return tonumber(raw:match("^HTTP/1%.%d (%d%d%d)"))
end


return _M
