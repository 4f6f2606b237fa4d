local rh = require "spec.support.redis"
local redis = require "wtt.redis"


describe("wtt.redis URLs #redis", function()
    local parse = redis.parse_url

    it("parses redis:// with defaults", function()
        local c = assert(parse("redis://127.0.0.1"))
        assert.equal("127.0.0.1", c.host)
        assert.equal(6379, c.port)
        assert.equal(0, c.db)
        assert.is_false(c.tls)
        assert.is_nil(c.password)
    end)

    it("parses credentials, port and database", function()
        local c = assert(parse("rediss://al%40ice:p%3Ass@cache.example:6380/7"))
        assert.is_true(c.tls)
        assert.equal("al@ice", c.user)
        assert.equal("p:ss", c.password)
        assert.equal("cache.example", c.host)
        assert.equal(6380, c.port)
        assert.equal(7, c.db)
        c = assert(parse("redis://:only@h/"))
        assert.is_nil(c.user)
        assert.equal("only", c.password)
        c = assert(parse("redis://bare@h"))
        assert.equal("bare", c.password)
    end)

    it("parses IPv6 hosts and query parameters", function()
        local c = assert(parse("redis://[::1]:7000?db=2&password=x"))
        assert.equal("::1", c.host)
        assert.equal(7000, c.port)
        assert.equal(2, c.db)
        assert.equal("x", c.password)
    end)

    it("parses unix socket URLs", function()
        local c = assert(parse("unix:///run/redis/redis.sock?db=4"))
        assert.equal("/run/redis/redis.sock", c.path)
        assert.equal(4, c.db)
        c = assert(parse("unix://u:pw@/tmp/r.sock"))
        assert.equal("/tmp/r.sock", c.path)
        assert.equal("u", c.user)
        assert.equal("pw", c.password)
    end)

    it("rejects malformed URLs with nil, err", function()
        for _, url in ipairs({
            "127.0.0.1:6379", "http://h", "redis://h:99999",
            "redis://h/x", "redis://h/1/2", "unix://relative",
            "redis://h?nope=1", "redis://", "redis://h/-1",
        }) do
            local c, err = parse(url)
            assert.is_nil(c, url)
            assert.is_string(err)
        end
        local r, err = redis.connect("nonsense")
        assert.is_nil(r)
        assert.matches("^connect failed: bad url", err)
    end)
end)


describe("wtt.redis AUTH and SELECT #redis", function()
    local srv
    setup(function()
        srv = rh.start({ password = "hunter2", unixsocket = true })
        local admin = assert(srv:client())
        assert(admin:call("ACL", "SETUSER", "alice", "on", ">wonder",
                          "~*", "&*", "+@all"))
        admin:close()
    end)
    teardown(function() if srv then srv:stop() end end)

    local function url(auth, db)
        return "redis://" .. auth .. "127.0.0.1:" .. srv.port .. "/"
               .. (db or 0)
    end

    it("authenticates with the password from the URL", function()
        local r = assert(redis.connect(url(":hunter2@")))
        assert.equal("default", r:call("ACL", "WHOAMI"))
        r:close()
    end)

    it("authenticates an ACL user", function()
        local r = assert(redis.connect(url("alice:wonder@")))
        assert.equal("alice", r:call("ACL", "WHOAMI"))
        r:close()
        r = assert(redis.connect(url(""), { user = "alice",
                                           password = "wonder" }))
        assert.equal("alice", r:call("ACL", "WHOAMI"))
        r:close()
    end)

    it("refuses a wrong password at connect", function()
        local r, err = redis.connect(url(":wrong@"))
        assert.is_nil(r)
        assert.matches("^connect failed: auth: WRONGPASS", err)
        r, err = redis.connect(url("alice:wrong@"))
        assert.is_nil(r)
        assert.matches("^connect failed: auth: WRONGPASS", err)
    end)

    it("answers NOAUTH without a password", function()
        local r = assert(redis.connect(url("")))
        local v, err = r:call("GET", "x")
        assert.is_nil(v)
        assert.matches("^NOAUTH", err)
        r:close()
    end)

    it("selects the database named in the URL", function()
        local r5 = assert(redis.connect(url(":hunter2@", 5)))
        local r0 = assert(redis.connect(url(":hunter2@", 0)))
        assert.matches("db=5", r5:call("CLIENT", "INFO"))
        r5:call("SET", "where", "five")
        r0:call("SET", "where", "zero")
        assert.equal("five", r5:call("GET", "where"))
        assert.equal("zero", r0:call("GET", "where"))
        local r9 = assert(redis.connect(url(":hunter2@", 5), { db = 9 }))
        assert.matches("db=9", r9:call("CLIENT", "INFO"))
        r0:close()
        r5:close()
        r9:close()
    end)

    it("reports a database out of range", function()
        local r, err = redis.connect(url(":hunter2@", 99))
        assert.is_nil(r)
        assert.matches("^connect failed: select: ERR DB index", err)
    end)

    it("connects through a unix socket", function()
        local r = assert(redis.connect("unix://:hunter2@" .. srv.socket
                                       .. "?db=2"))
        assert.matches("db=2", r:call("CLIENT", "INFO"))
        assert.equal("PONG", r:call("PING"))
        r:close()
    end)

    it("connects lazily when asked", function()
        local r = assert(redis.connect(url(":hunter2@"), { lazy = true }))
        assert.is_false(r:connected())
        assert.equal("PONG", r:call("PING"))
        assert.is_true(r:connected())
        assert.equal(0, r.reconnects)
        r:close()
    end)
end)
