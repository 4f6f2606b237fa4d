local helpers = require "spec.support.server"

describe("wtt serve: routing and requests #http", function()
    local srv
    setup(function() srv = helpers.serve() end)
    teardown(function() if srv then srv:stop() end end)

    it("routes with captures", function()
        local res = assert(srv:json("GET", "/echo/one/two/"))
        assert.equal(200, res.status)
        assert.same({ a = "one", b = "two" }, res.json.params)
    end)

    it("decodes percent-encoded paths before matching", function()
        local res = assert(srv:json("GET", "/echo/h%C3%A9llo/x%20y/"))
        assert.equal(200, res.status)
        assert.same({ a = "héllo", b = "x y" }, res.json.params)
    end)

    it("captures the rest of a path", function()
        local res = assert(srv:json("GET", "/files/a/b/c.wav"))
        assert.equal(200, res.status)
        assert.equal("a/b/c.wav", res.json.rest)
    end)

    it("answers unknown paths with a JSON 404", function()
        local res = assert(srv:json("GET", "/no/such/thing"))
        assert.equal(404, res.status)
        assert.equal("not_found", res.json.error)
        assert.equal(res.headers["x-request-id"], res.json.request_id)
        assert.matches("application/json", res.headers["content-type"])
    end)

    it("answers a wrong method with 405 and Allow", function()
        local res = assert(srv:json("DELETE", "/echo/headers"))
        assert.equal(405, res.status)
        assert.equal("GET, HEAD, OPTIONS", res.headers["allow"])
        assert.equal("method_not_allowed", res.json.error)
    end)

    it("answers HEAD like GET without a body", function()
        local get = assert(srv:request("GET", "/livez"))
        local head = assert(srv:request("HEAD", "/livez"))
        assert.equal(200, get.status)
        assert.equal(200, head.status)
        assert.equal("", head.body or "")
        assert.equal(get.headers["content-length"],
                     head.headers["content-length"])
    end)

    it("answers OPTIONS with the allowed methods", function()
        local res = assert(srv:request("OPTIONS", "/echo/body"))
        assert.equal(204, res.status)
        assert.equal("OPTIONS, POST, PUT", res.headers["allow"])
    end)

    it("decodes the query string, repeated keys as lists", function()
        local res = assert(srv:json("GET",
            "/echo/query?a=1&b=x+y&c=%2F%3D&a=2&flag"))
        assert.equal(200, res.status)
        assert.same({ "1", "2" }, res.json.query.a)
        assert.equal("x y", res.json.query.b)
        assert.equal("/=", res.json.query.c)
        assert.is_true(res.json.query.flag)
    end)

    it("reads headers case-insensitively", function()
        local res = assert(srv:json("GET", "/echo/headers",
                                    { headers = { ["X-Test"] = "v1" } }))
        assert.equal(200, res.status)
        assert.equal("v1", res.json.x_test)
        assert.equal("v1", res.json.via_header)
        assert.equal("v1", res.json.headers["x-test"])
        assert.equal("127.0.0.1", res.json.client)
    end)

    it("keeps a sane X-Request-Id from the client and replaces others",
       function()
        local res = assert(srv:json("GET", "/echo/headers",
            { headers = { ["X-Request-Id"] = "trace-123" } }))
        assert.equal(200, res.status)
        assert.equal("trace-123", res.json.id)
        assert.equal("trace-123", res.headers["x-request-id"])
        res = assert(srv:json("GET", "/echo/headers",
            { headers = { ["X-Request-Id"] = "bad id\"<>" } }))
        assert.equal(200, res.status)
        assert.not_equal("bad id\"<>", res.json.id)
        assert.matches("^[%w]+$", res.json.id)
    end)

    it("decodes JSON bodies and answers malformed JSON with 400", function()
        local res = assert(srv:json("POST", "/echo/json",
                                    { body = '{"k":[1,2]}' }))
        assert.same({ k = { 1, 2 } }, res.json.got)
        res = assert(srv:json("POST", "/echo/json", { body = '{"k":' }))
        assert.equal(400, res.status)
        assert.equal("bad_request", res.json.error)
        assert.matches("malformed JSON", res.json.detail)
    end)

    it("passes any status and repeated response headers", function()
        local res = assert(srv:request("GET", "/status/299"))
        assert.equal(299, res.status)
        res = assert(srv:request("GET", "/headers/multi"))
        assert.equal("one, two", res.headers["x-multi"])
        assert.equal("text/x-test", res.headers["content-type"])
    end)

    it("turns http.abort into its status", function()
        local res = assert(srv:json("GET", "/abort"))
        assert.equal(418, res.status)
        assert.same("teapot", res.json.error)
        assert.same("short and stout", res.json.detail)
    end)

    it("answers a Lua error with 500 and a request id, then goes on",
       function()
        local res = assert(srv:json("GET", "/error"))
        assert.equal(500, res.status)
        assert.equal("internal", res.json.error)
        assert.truthy(res.json.request_id)
        -- The traceback is logged with the same id, never sent.
        assert.is_nil(res.body:find("attempt to index", 1, true))
        assert.truthy(helpers.eventually(function()
            local log = srv:log_text()
            return log:find("http.route_error", 1, true)
               and log:find(res.json.request_id, 1, true)
               and log:find("special.lua", 1, true)
        end))
        res = assert(srv:json("GET", "/bad-return"))
        assert.equal(500, res.status)
        res = assert(srv:json("GET", "/echo/a/b/"))
        assert.equal(200, res.status)
    end)

    it("serves the hello example", function()
        local res = assert(srv:json("GET", "/hello/ada/?greeting=hi"))
        assert.equal("hi, ada", res.json.message)
        res = assert(srv:json("POST", "/hello/", { body = '{"name":"bo"}' }))
        assert.equal(201, res.status)
        res = assert(srv:json("POST", "/hello/", { body = '[1]' }))
        assert.equal(422, res.status)
    end)

    it("keeps connections alive", function()
        local conn = assert(require("wtt.sys").tcp_connect("127.0.0.1",
                                                           srv.port))
        for _ = 1, 3 do
            conn:send("GET /livez HTTP/1.1\r\nHost: x\r\n\r\n")
            local got = ""
            repeat
                local chunk = conn:recv(65536, 5)
                got = got .. (chunk or "")
            until not chunk or got:find('"ok"}', 1, true)
            assert.equal(200, helpers.status_of(got))
            assert.is_nil(got:lower():find("connection: close", 1, true))
        end
        conn:close()
    end)
end)
