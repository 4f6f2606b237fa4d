local helpers = require "spec.support.server"
local sys = require "wtt.sys"

local raw, status_of = helpers.raw, helpers.status_of

describe("wtt serve: limits and hostile clients #http", function()
    local srv
    setup(function()
        srv = helpers.serve({ env = {
            WTT_CONN_TIMEOUT = "2",
            WTT_PER_IP_LIMIT = "8",
            WTT_CONN_LIMIT = "64",
        } })
    end)
    teardown(function() if srv then srv:stop() end end)

    describe("H1 huge declared bodies", function()
        for _, len in ipairs({ "2147483648", "9223372036854775807" }) do
            it("answers 413 for Content-Length " .. len
               .. " without 100 Continue", function()
                local out = raw(srv.port,
                    "POST /echo/body HTTP/1.1\r\nHost: x\r\n"
                    .. "Expect: 100-continue\r\nContent-Length: " .. len
                    .. "\r\n\r\n", { timeout = 3 })
                assert.equal(413, status_of(out))
                assert.is_nil(out:find("100 Continue", 1, true))
            end)
        end

        it("answers 400 for a Content-Length beyond 64 bits", function()
            local out = raw(srv.port,
                "POST /echo/body HTTP/1.1\r\nHost: x\r\nContent-Length: "
                .. "99999999999999999999999\r\n\r\n")
            local s = status_of(out)
            assert.truthy(s == 400 or s == 413, tostring(s))
        end)
    end)

    describe("H8 oversized or ambiguous headers", function()
        it("answers 431 for 64 KB of headers", function()
            local out = raw(srv.port, "GET /livez HTTP/1.1\r\nHost: x\r\n"
                .. "X-Big: " .. string.rep("h", 64 * 1024) .. "\r\n\r\n")
            assert.equal(431, status_of(out))
        end)

        it("answers 414 for a 16 KB URL", function()
            local out = raw(srv.port, "GET /livez?" .. string.rep("q", 16384)
                            .. " HTTP/1.1\r\nHost: x\r\n\r\n")
            assert.equal(414, status_of(out))
        end)

        it("answers 400 for Content-Length with Transfer-Encoding", function()
            local out = raw(srv.port,
                "POST /echo/body HTTP/1.1\r\nHost: x\r\nContent-Length: 5"
                .. "\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0"
                .. "\r\n\r\n")
            assert.equal(400, status_of(out))
        end)

        it("refuses a Transfer-Encoding other than chunked", function()
            local out = raw(srv.port,
                "POST /echo/body HTTP/1.1\r\nHost: x\r\n"
                .. "Transfer-Encoding: gzip\r\n\r\nxxxx")
            local s = status_of(out)
            assert.truthy(s == 400 or s == 501, tostring(s))
        end)

        it("answers 400 for two different Content-Length values", function()
            local out = raw(srv.port,
                "POST /echo/body HTTP/1.1\r\nHost: x\r\nContent-Length: 3"
                .. "\r\nContent-Length: 5\r\n\r\nhello")
            assert.equal(400, status_of(out))
        end)

        it("answers 400 for a NUL byte in the URL", function()
            local out = raw(srv.port,
                "GET /echo/a%00b/c/ HTTP/1.1\r\nHost: x\r\n\r\n")
            assert.equal(400, status_of(out))
        end)

        it("is still serving afterwards", function()
            assert.equal(200, srv:request("GET", "/livez").status)
        end)
    end)

    describe("H7 slowloris and connection floods", function()
        it("closes idle drips and keeps serving fresh clients", function()
            local drips = {}
            -- Fill this address's connection allowance with half-sent
            -- requests that each drip a byte now and then.
            for i = 1, 8 do
                drips[i] = assert(sys.tcp_connect("127.0.0.1", srv.port))
                drips[i]:send("GET /livez HTTP/1.1\r\nHost: x\r\n")
            end
            -- A client from another loopback address is served at once.
            local t0 = sys.now()
            local out = raw(srv.port,
                            "GET /livez HTTP/1.1\r\nHost: x\r\n"
                            .. "Connection: close\r\n\r\n",
                            { bind = "127.0.0.2" })
            assert.equal(200, status_of(out))
            assert.truthy(sys.now() - t0 < 1)
            -- The dripping address gets nothing more than its allowance.
            local extra = assert(sys.tcp_connect("127.0.0.1", srv.port))
            extra:send("GET /livez HTTP/1.1\r\nHost: x\r\n\r\n")
            local data, how = extra:recv(1024, 2)
            assert.is_nil(data and status_of(data))
            extra:close()
            -- Idle past the timeout (2 s): the server closes the drips.
            sys.sleep(3)
            local closed = 0
            for i = 1, 8 do
                local d, why = drips[i]:recv(1024, 0.5)
                if d == nil and why == "closed" then
                    closed = closed + 1
                end
                drips[i]:close()
            end
            assert.equal(8, closed)
            assert.equal(200, srv:request("GET", "/livez").status)
        end)
    end)
end)
