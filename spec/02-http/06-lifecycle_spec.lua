local helpers = require "spec.support.server"
local sys = require "wtt.sys"
local notify = require "spec.support.notify"

describe("wtt serve: start and stop #http", function()
    it("finishes a request in flight on SIGTERM and exits 0", function()
        local srv = helpers.serve()
        local conn = assert(sys.tcp_connect("127.0.0.1", srv.port))
        conn:send("GET /sleep/1200?mark=in-flight HTTP/1.1\r\nHost: x\r\n\r\n")
        -- TERM only once the handler runs: the request is in flight.
        assert.truthy(helpers.eventually(function()
            return sys.exists(srv.dir .. "/in-flight")
        end, 5), "the request never reached its handler")
        sys.kill(srv.pid, "TERM")
        local out = conn:recv(65536, 5)
        conn:close()
        assert.equal(200, helpers.status_of(out or ""))
        assert.truthy(out:find('"slept":1200', 1, true))
        local how, code = sys.wait(srv.pid, 10)
        assert.equal("exited", how)
        assert.equal(0, code)
        srv.stopped = true
        assert.is_nil((sys.tcp_connect("127.0.0.1", srv.port)))
        local log = srv:log_text()
        assert.truthy(log:find("event=serve.stopped", 1, true))
        sys.rmtree(srv.dir)
    end)

    it("refuses to start when a route file is broken", function()
        local dir = assert(sys.mkdtemp("wtt-spec-"))
        assert(sys.write_file(dir .. "/bad.lua", "return {"))
        local log = dir .. "/log"
        local pid = assert(sys.spawn(
            { require("wtt.runtime").exe, "serve" },
            { env = { WTT_ROUTES_DIR = dir,
                      WTT_LISTEN = "127.0.0.1:" .. sys.free_port() },
              stdout = log, stderr = log }))
        local how, code = sys.wait(pid, 10)
        local text = sys.read_file(log)
        sys.rmtree(dir)
        assert.equal("exited", how)
        assert.equal(1, code)
        assert.truthy(text:find("routes/bad.lua:1:", 1, true))
    end)

    it("reports readiness, verbosely on request", function()
        local srv = helpers.serve()
        local res = srv:json("GET", "/readyz?verbose")
        local alias = srv:json("GET", "/healthz")
        srv:stop()
        assert.equal(200, res.status)
        assert.equal("ok", res.json.status)
        assert.equal("routes", res.json.checks[1].name)
        assert.is_true(res.json.checks[1].ok)
        assert.equal(200, alias.status)
    end)
end)

describe("wtt serve: systemd notifications #http", function()
    it("sends READY=1, RELOADING=1 and STOPPING=1", function()
        local listener = notify.listen()
        local srv = helpers.serve({ env = { NOTIFY_SOCKET = listener.socket } })
        assert.equal(200, srv:admin("POST", "/_admin/reload").status)
        local how = srv:signal_and_wait("TERM")
        srv.stopped = true
        sys.rmtree(srv.dir)
        assert.equal("exited", how)
        local text = listener:wait_for("STOPPING=1", 1, 5)
        listener:close()
        assert.truthy(text, "no STOPPING=1 received")
        local ready = text:find("READY=1", 1, true)
        local reloading = text:find("RELOADING=1", 1, true)
        assert.truthy(ready)
        assert.truthy(reloading and reloading > ready)
        assert.truthy(text:find("MONOTONIC_USEC=", 1, true))
        assert.truthy(text:find("READY=1", reloading, true))
    end)
end)

describe("wtt when installed #http", function()
    it("finds lua/, routes/ and plugins/ under <prefix>/share/wtt", function()
        local runtime = require "wtt.runtime"
        local build_dir = runtime.exe:match("^(.*)/[^/]+$")
        local prefix = assert(sys.mkdtemp("wtt-install-"))
        local ok = os.execute("cmake --install '" .. build_dir
                              .. "' --prefix '" .. prefix .. "' >/dev/null")
        assert.truthy(ok == 0 or ok == true)
        local script = prefix .. "/paths.lua"
        assert(sys.write_file(script, [[
            local rt = require "wtt.runtime"
            io.write(rt.lua_dir, "\n", rt.routes_dir, "\n", rt.plugins_dir)
        ]]))
        local out = prefix .. "/out"
        local pid = assert(sys.spawn({ prefix .. "/bin/wtt", "run", script },
            { stdout = out, cwd = "/",
              env = { WTT_LUA_DIR = false, WTT_ROUTES_DIR = false,
                      WTT_PLUGINS_DIR = false, WTT_HOME = false } }))
        local how, code = sys.wait(pid, 10)
        local text = sys.read_file(out) or ""
        local real = sys.realpath(prefix)
        sys.rmtree(prefix)
        assert.equal("exited", how)
        assert.equal(0, code)
        assert.equal(real .. "/share/wtt/lua", text:match("^[^\n]*"))
        assert.matches("/share/wtt/routes\n", text)
        assert.matches("/share/wtt/plugins$", text)
    end)
end)
