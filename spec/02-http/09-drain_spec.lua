-- The drain of `wtt serve` on SIGTERM (docs/operations.md, "Rolling
-- restart"): for WTT_DRAIN_S it is not ready but serves everything and
-- still accepts, then it stops accepting, ends event streams cleanly,
-- finishes what is in flight and exits 0.
--
-- The drain period here is long (60 s) and a second SIGTERM cuts it short
-- once the checks of the first step are done, so no assertion depends on
-- how fast this machine is.

local helpers = require "spec.support.server"
local sys = require "wtt.sys"
local json = require "wtt.json"

local DRAIN_S = "60"
local BOUNDARY = "drain-spec-boundary"


-- A multipart upload of `size` bytes for POST /upload, split in two: the
-- head (request, headers, the start of the file) and the rest.
local function split_upload(size)
    local data = string.rep("w", size)
    local body = "--" .. BOUNDARY .. "\r\n"
        .. 'Content-Disposition: form-data; name="file"; '
        .. 'filename="slow.bin"\r\n'
        .. "Content-Type: application/octet-stream\r\n\r\n"
        .. data .. "\r\n--" .. BOUNDARY .. "--\r\n"
    local head = "POST /upload HTTP/1.1\r\nHost: x\r\n"
        .. "Content-Type: multipart/form-data; boundary=" .. BOUNDARY
        .. "\r\nContent-Length: " .. #body .. "\r\n\r\n"
    local cut = math.floor(#body / 2)
    return head .. body:sub(1, cut), body:sub(cut + 1)
end


-- Status, headers (lowercased names) and body of a raw answer.
local function parse(raw)
    local status = helpers.status_of(raw)
    local head, body = raw:match("^(.-)\r\n\r\n(.*)$")
    local headers = {}
    for name, value in (head or ""):gmatch("\r\n([^:\r\n]+):%s*([^\r\n]*)") do
        headers[name:lower()] = value
    end
    return status, headers, body or ""
end


-- One request on a fresh connection, read to the server's close.
local function get(port, path)
    local raw = helpers.raw(port, "GET " .. path
                            .. " HTTP/1.1\r\nHost: x\r\n\r\n")
    return parse(raw)
end


local function log_has(srv, event)
    return srv:log_text():find("event=" .. event, 1, true) ~= nil
end


describe("wtt serve: the drain on SIGTERM #http", function()
    local srv

    before_each(function()
        srv = helpers.serve({ env = { WTT_DRAIN_S = DRAIN_S } })
    end)

    after_each(function()
        if srv and not srv.stopped then
            srv:stop()
        end
    end)

    it("answers 503 on /readyz and 200 elsewhere while draining, finishes "
       .. "an upload in flight, refuses new connections once accepting "
       .. "stops, ends an event stream cleanly and exits 0", function()
        local size = 256 * 1024
        local first, rest = split_upload(size)
        local upload = assert(sys.tcp_connect("127.0.0.1", srv.port))
        assert(upload:send(first))
        -- A keep-alive connection opened before the signal.
        local idle = assert(sys.tcp_connect("127.0.0.1", srv.port))
        assert(idle:send("GET /hello/ HTTP/1.1\r\nHost: x\r\n\r\n"))
        local before = assert(idle:recv(65536, 5))
        assert.equal(200, helpers.status_of(before))
        local stream = assert(sys.tcp_connect("127.0.0.1", srv.port))
        assert(stream:send("GET /stream/100000?tag=sse HTTP/1.1\r\n"
                           .. "Host: x\r\n\r\n"))
        -- Everything the stream sends is kept: on a quick machine the
        -- last chunk may follow this first read with no data chunk between.
        local streamed = assert(stream:recv(65536, 5))
        assert.equal(200, helpers.status_of(streamed))

        sys.kill(srv.pid, "TERM")
        assert.truthy(helpers.eventually(function()
            return log_has(srv, "serve.stopping")
        end, 10), "no serve.stopping in the log")

        -- Step 1: not ready, everything else served, connections closed
        -- after each response.
        local status, headers, body = get(srv.port, "/readyz?verbose")
        assert.equal(503, status)
        local doc = json.decode(body)
        local accepting
        for _, c in ipairs(doc.checks) do
            if c.name == "accepting" then
                accepting = c
            end
        end
        assert.is_false(accepting.ok)
        status, headers = get(srv.port, "/hello/")
        assert.equal(200, status)
        assert.equal("close", headers.connection)
        status = get(srv.port, "/livez")
        assert.equal(200, status)
        -- The connection opened before the signal is served too, and
        -- closed after its answer.
        assert(idle:send("GET /hello/ HTTP/1.1\r\nHost: x\r\n\r\n"))
        local again, how = idle:recv_all(5)
        idle:close()
        assert.equal("closed", how)
        status, headers = parse(again)
        assert.equal(200, status)
        assert.equal("close", headers.connection)
        assert.is_false(log_has(srv, "serve.not_accepting"))

        -- Step 2: the second signal ends the drain period.
        sys.kill(srv.pid, "TERM")
        assert.truthy(helpers.eventually(function()
            return log_has(srv, "serve.not_accepting")
        end, 10), "accepting never stopped")
        assert.is_nil((sys.tcp_connect("127.0.0.1", srv.port)))
        -- The event stream ended with the last chunk of its body, so an
        -- EventSource reconnects (through the load balancer, elsewhere).
        -- (The connection itself may stay open until the process exits.)
        local ended = helpers.eventually(function()
            local more = stream:recv(65536, 0.1)
            streamed = streamed .. (more or "")
            return streamed:find("\r\n0\r\n\r\n$") ~= nil
        end, 10)
        stream:close()
        assert.truthy(ended, "the stream never ended: " .. streamed:sub(-40))
        -- The upload that was in flight completes.
        assert(upload:send(rest))
        local answer = upload:recv_all(10)
        upload:close()
        status, headers, body = parse(answer)
        assert.equal(200, status)
        assert.equal(size, json.decode(body).files[1].size)

        local exit_how, code = sys.wait(srv.pid, 20)
        srv.stopped = true
        local log = srv:log_text()
        sys.rmtree(srv.dir)
        assert.equal("exited", exit_how)
        assert.equal(0, code)
        assert.truthy(log:find("event=serve.drain_cut", 1, true))
        assert.truthy(log:find("event=http.drained unfinished=0", 1, true))
    end)

    it("serves the connections still in the backlog when accepting "
       .. "stops", function()
        -- One serving thread, busy in a slow handler: a connection made
        -- meanwhile waits in the kernel's backlog, unaccepted, when the
        -- drain ends.
        srv:stop()
        srv = helpers.serve({ threads = 1, env = { WTT_DRAIN_S = DRAIN_S } })
        local busy = assert(sys.tcp_connect("127.0.0.1", srv.port))
        assert(busy:send("GET /sleep/1500?mark=busy HTTP/1.1\r\n"
                         .. "Host: x\r\n\r\n"))
        assert.truthy(helpers.eventually(function()
            return sys.exists(srv.dir .. "/busy")
        end, 5), "the slow request never reached its handler")
        sys.kill(srv.pid, "TERM")
        assert.truthy(helpers.eventually(function()
            return log_has(srv, "serve.stopping")
        end, 10))
        local queued = assert(sys.tcp_connect("127.0.0.1", srv.port))
        assert(queued:send("GET /hello/ HTTP/1.1\r\nHost: x\r\n\r\n"))
        sys.kill(srv.pid, "TERM")
        assert.truthy(helpers.eventually(function()
            return log_has(srv, "serve.not_accepting")
        end, 10), "accepting never stopped")
        local status = parse(busy:recv_all(10))
        busy:close()
        assert.equal(200, status)
        local raw, how = queued:recv_all(10)
        queued:close()
        assert.equal("closed", how)
        status = parse(raw)
        assert.equal(200, status, raw)
        local exit_how, code = sys.wait(srv.pid, 20)
        srv.stopped = true
        local log = srv:log_text()
        sys.rmtree(srv.dir)
        assert.equal("exited", exit_how)
        assert.equal(0, code)
        assert.truthy(log:find("event=serve.not_accepting backlog=1", 1,
                               true), log)
    end)

    it("stops accepting by itself once WTT_DRAIN_S has passed", function()
        srv:stop()
        srv = helpers.serve({ env = { WTT_DRAIN_S = "0.5" } })
        sys.kill(srv.pid, "TERM")
        local how, code = sys.wait(srv.pid, 20)
        srv.stopped = true
        local log = srv:log_text()
        sys.rmtree(srv.dir)
        assert.equal("exited", how)
        assert.equal(0, code)
        assert.truthy(log:find("event=serve.stopping[^\n]*drain_s=0.5"))
        assert.truthy(log:find("event=serve.not_accepting", 1, true))
        assert.is_nil(log:find("event=serve.drain_cut", 1, true))
    end)
end)
