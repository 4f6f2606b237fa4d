local rh = require "spec.support.redis"
local redis = require "wtt.redis"
local core = require "wtt.core.redis"
local sys = require "wtt.sys"


describe("wtt.redis over TLS (rediss://) #redis", function()
    local srv, r, dir, other_ca
    setup(function()
        srv = rh.start({ tls = true })
        r = assert(srv:client())
        dir = assert(sys.mkdtemp("wtt-redis-tls-"))
        other_ca = rh.make_ca(dir, "other")
    end)
    teardown(function()
        if r then r:close() end
        if srv then srv:stop() end
        if dir then sys.rmtree(dir) end
    end)

    it("connects with the test CA and runs commands", function()
        assert.matches("^rediss://127%.0%.0%.1:%d+/0$", srv.url)
        assert.equal("PONG", r:call("PING"))
        assert.equal("OK", r:call("SET", "t", "\0tls\0"))
        assert.equal("\0tls\0", r:call("GET", "t"))
    end)

    it("runs pipelines and scripts", function()
        local s = redis.script("return ARGV[1] * 2")
        local res = assert(r:pipeline(function(p)
            for i = 1, 500 do
                p:call("INCR", "tc")
            end
            p:eval(s, {}, { 21 })
        end))
        assert.equal(500, res[500])
        assert.equal(42, res[501])
        assert.equal(8, r:eval(s, {}, { 4 }))
    end)

    it("moves a 20 MB value", function()
        local v = string.rep("tls\0", 5 * 1024 * 1024)
        assert.equal("OK", r:call("SET", "big", v))
        assert.is_true(r:call("GET", "big") == v)
        r:call("DEL", "big")
    end)

    it("subscribes and takes 2000 messages", function()
        local n = 0
        local ok = r:subscribe({ "tls" }, { "tls:*" }, function(kind)
            n = n + 1
            if n == 2000 then
                return false
            end
        end, {
            on_ready = function()
                assert(r:pipeline(function(p)
                    for i = 1, 1000 do
                        p:call("PUBLISH", "tls", i)
                        p:call("PUBLISH", "tls:x", i)
                    end
                end))
            end,
        })
        assert.is_true(ok)
        assert.equal(2000, n)
    end)

    it("checks the name against the certificate's SANs", function()
        local c = assert(redis.connect(
            "rediss://localhost:" .. srv.port .. "/0",
            { ca_file = srv.ca_file }))
        assert.equal("PONG", c:call("PING"))
        c:close()
        c = assert(srv:client({ server_name = "localhost" }))
        assert.equal("PONG", c:call("PING"))
        c:close()
    end)

    it("refuses a server signed by another CA", function()
        local c, err = srv:client({ ca_file = other_ca.cert })
        assert.is_nil(c)
        assert.matches("certificate verify failed", err)
    end)

    it("refuses a server the system store does not trust", function()
        local c, err = redis.connect(srv.url)
        assert.is_nil(c)
        assert.matches("certificate verify failed", err)
    end)

    it("refuses a name the certificate does not carry", function()
        local c, err = srv:client({ server_name = "redis.example.com" })
        assert.is_nil(c)
        assert.matches("certificate verify failed: hostname mismatch", err)
    end)

    it("connects to anything with verify = false", function()
        local c = assert(redis.connect(srv.url, { verify = false,
                                                  ca_file = other_ca.cert }))
        assert.equal("PONG", c:call("PING"))
        c:close()
    end)

    it("reports a missing ca_file", function()
        local c, err = srv:client({ ca_file = dir .. "/none.crt" })
        assert.is_nil(c)
        assert.matches("cannot load ca", err)
    end)

    it("fails within connect_timeout against a plain-text server",
       function()
        -- Redis reads the ClientHello as an unfinished inline command and
        -- never answers: only the handshake deadline ends it.
        local plain = rh.start()
        local t0 = sys.now()
        local c, err = redis.connect("rediss://127.0.0.1:" .. plain.port,
                                     { ca_file = srv.ca_file,
                                       connect_timeout = 0.5 })
        plain:stop()
        assert.is_nil(c)
        assert.matches("^connect failed: 127%.0%.0%.1:%d+: tls handshake: "
                       .. "timeout", err)
        assert.is_true(sys.now() - t0 < 2)
    end)

    it("fails fast when a plain client talks to the TLS port", function()
        local c = assert(redis.connect("redis://127.0.0.1:" .. srv.port,
                                       { timeout = 2 }))
        local t0 = sys.now()
        local v, err = c:call("PING")
        assert.is_nil(v)
        assert.matches("^call failed: connection", err)
        assert.is_true(sys.now() - t0 < 1)
        c:close()
    end)
end)


describe("wtt.redis TLS certificate checks #redis", function()
    it("refuses a certificate made for another host", function()
        local srv = rh.start({ tls = true, tls_hosts = { "other.example" } })
        local c, err = srv:client()
        local c2 = srv:client({ server_name = "other.example" })
        local ok2 = c2 and c2:call("PING")
        if c2 then c2:close() end
        srv:stop()
        assert.is_nil(c)
        assert.matches("certificate verify failed: IP address mismatch", err)
        assert.equal("PONG", ok2)
    end)

    it("presents a client certificate when the server asks", function()
        local srv = rh.start({ tls = true, tls_auth_clients = true })
        local with = srv:client({ cert = srv.tls.client.cert,
                                  key = srv.tls.client.key })
        local pong = with and with:call("PING")
        if with then with:close() end
        -- Without one the server drops the connection during or right
        -- after the handshake (TLS 1.3 reports it on the first read).
        local without, err = srv:client()
        local v, err2
        if without then
            v, err2 = without:call("PING")
            without:close()
        end
        srv:stop()
        assert.equal("PONG", pong)
        assert.is_nil(v)
        assert.truthy(err or err2)
    end)

    it("raises on a key without a certificate", function()
        assert.has_error(function()
            core.connect("127.0.0.1", 1, { tls = true, key = "/x" })
        end)
    end)
end)
