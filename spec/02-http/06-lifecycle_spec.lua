local helpers = require "spec.helpers"
local sys = require "wtt.sys"

describe("wtt serve: start and stop #http", function()
    it("finishes a request in flight on SIGTERM and exits 0", function()
        local srv = helpers.serve()
        local conn = assert(sys.tcp_connect("127.0.0.1", srv.port))
        conn:send("GET /sleep/1200 HTTP/1.1\r\nHost: x\r\n\r\n")
        sys.sleep(0.3)
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
