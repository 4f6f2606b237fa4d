local rc = require "spec.support.redis_cluster"
local redis = require "wtt.redis"
local sys = require "wtt.sys"

local cmd = rc.cmd


describe("wtt.redis cluster URLs and slots #redis", function()
    it("parses cluster=1 and a list of seed nodes", function()
        local cfg = assert(redis.parse_url(
            "redis://:pw@10.0.0.1:7000,10.0.0.2,[::1]:7002?cluster=1"))
        assert.is_true(cfg.cluster)
        assert.same({ { host = "10.0.0.1", port = 7000 },
                      { host = "10.0.0.2", port = 6379 },
                      { host = "::1", port = 7002 } }, cfg.seeds)
        assert.equal("pw", cfg.password)
        assert.is_nil(redis.parse_url("redis://h:1/2?cluster=1"))
        assert.is_nil(redis.parse_url("unix:///tmp/r.sock?cluster=1"))
        assert.is_nil(redis.parse_url("redis://a:1,b:2"))
        assert.is_nil(redis.parse_url("redis://a:1?cluster=maybe"))
        assert.is_nil(redis.parse_url("redis://a:1?cluster=0").cluster)
    end)

    it("fails with the connect error when no node answers", function()
        local port = assert(sys.free_port())
        local url = "redis://127.0.0.1:" .. port .. "?cluster=1"
        local r, err = redis.connect(url)
        assert.is_nil(r)
        assert.matches("^cluster map failed: connect failed", err)
        r = assert(redis.connect(url, { lazy = true }))
        local v
        v, err = r:call("GET", "k")
        assert.is_nil(v)
        assert.matches("connect failed: 127.0.0.1", err, 1, true)
        r:close()
    end)

    it("hashes keys to the slots Redis uses (hash tags included)",
       function()
        -- Known values from the Redis Cluster specification.
        assert.equal(12182, redis.keyslot("foo"))
        assert.equal(redis.keyslot("user1000"),
                     redis.keyslot("{user1000}.following"))
        assert.equal(redis.keyslot("{}x"), redis.keyslot("{}x"))
        assert.are_not.equal(redis.keyslot("x"), redis.keyslot("{}x"))
        assert.equal(redis.keyslot("wtt"), redis.keyslot("{wtt}:task:queue"))
    end)
end)


describe("wtt.redis on a 3-master, 3-replica Redis Cluster #redis",
         function()
    local c, r
    setup(function()
        c = rc.start()
        r = assert(redis.connect(c.url, { backoff_base = 0.05,
                                          backoff_max = 0.5 }))
    end)
    teardown(function()
        if r then r:close() end
        if c then c:stop() end
    end)

    it("hashes like CLUSTER KEYSLOT", function()
        for _, k in ipairs({ "", "a", "foo", "{wtt}:", "{wtt}:task:x",
                             "{a}{b}", "x{}y", "{", "}{", "\0\255" }) do
            assert.equal(c:slot(k), redis.keyslot(k), k)
        end
    end)

    it("routes each key to the master owning its slot", function()
        -- Keys in each of the three ranges.
        local keys = { "foo", "a", "{wtt}:x", "user", "k1", "k2", "k3" }
        for _, k in ipairs(keys) do
            assert.equal("OK", r:call("SET", k, "v-" .. k))
        end
        for _, k in ipairs(keys) do
            local m = c:master_of(redis.keyslot(k))
            assert.equal("v-" .. k, cmd(m, "GET", k), k)
            assert.equal("v-" .. k, r:call("GET", k))
        end
        assert.equal(0, r.redirects)
        assert.equal("PONG", r:call("PING"))
    end)

    it("follows MOVED after a slot migration and reloads its map",
       function()
        assert.equal("OK", r:call("SET", "{m}:k", "1"))
        local slot = redis.keyslot("{m}:k")
        local src = c:master_of(slot)
        local dst = c:other_masters(src)[1]
        assert.equal(1, c:migrate(slot, src, dst))
        local before, refreshes = r.redirects, r.refreshes
        assert.equal("1", r:call("GET", "{m}:k"))
        assert.equal(before + 1, r.redirects)
        assert.equal(refreshes + 1, r.refreshes)
        assert.equal("127.0.0.1:" .. dst.port, r.slots[slot])
        assert.equal("2", tostring(r:call("INCR", "{m}:k")))
        assert.equal(before + 1, r.redirects)     -- no second redirect
        assert.equal("2", cmd(dst, "GET", "{m}:k"))
    end)

    it("follows ASK while a slot is held mid-migration, map unchanged",
       function()
        assert.equal("OK", r:call("SET", "{ask}:old", "o"))
        local slot = redis.keyslot("{ask}:old")
        local src = c:master_of(slot)
        local dst = c:other_masters(src)[1]
        c:migrate_begin(slot, src, dst)
        local before, refreshes = r.redirects, r.refreshes
        -- A key still on the source answers there; a missing one is ASKed
        -- to the target and written there.
        assert.equal("o", r:call("GET", "{ask}:old"))
        assert.equal(before, r.redirects)
        assert.equal("OK", r:call("SET", "{ask}:new", "n"))
        assert.equal(before + 1, r.redirects)
        assert.equal("127.0.0.1:" .. src.port, r.slots[slot])
        assert.equal(refreshes, r.refreshes)
        -- The target has it (ASKING needed to read it there).
        local raw = require("wtt.core.redis").connect(dst.host, dst.port)
        assert.equal("OK", raw:call("ASKING"))
        assert.equal("n", raw:call("GET", "{ask}:new"))
        raw:close()
        -- A script on a key that has gone is ASKed too.
        local s = redis.script("return redis.call('APPEND', KEYS[1], 'x')")
        assert.equal(2, r:eval(s, { "{ask}:new" }, {}))
        -- Only the old key was left on the source to move.
        assert.equal(1, c:migrate_keys(slot, src, dst))
        assert.equal("o", r:call("GET", "{ask}:old"))       -- ASK again
        c:migrate_end(slot, src, dst)
        assert.equal("nx", r:call("GET", "{ask}:new"))      -- MOVED
        assert.equal("127.0.0.1:" .. dst.port, r.slots[slot])
    end)

    it("runs a pipeline across a redirect, replies in order", function()
        local slot = redis.keyslot("{p}")
        local src = c:master_of(slot)
        local dst = c:other_masters(src)[1]
        assert.equal("OK", r:call("SET", "{p}:1", "one"))
        local s = redis.script("return redis.call('INCR', KEYS[1])")
        c:migrate_begin(slot, src, dst)
        local res = assert(r:pipeline(function(p)
            p:call("GET", "{p}:1")             -- on the source
            p:call("SET", "{p}:2", "two")      -- ASK: to the target
            p:eval(s, { "{p}:n" }, {})         -- ASK: script on the target
            p:call("GET", "foo")               -- another slot
            p:call("TIME")                     -- keyless
            p:call("GET", "{p}:missing")
        end))
        assert.equal("one", res[1])
        assert.equal("OK", res[2])
        assert.equal(1, res[3])
        assert.equal("v-foo", res[4])
        assert.equal("table", type(res[5]))
        assert.equal(redis.null, res[6])
        c:migrate_keys(slot, src, dst)
        c:migrate_end(slot, src, dst)
        -- Now every entry of the slot is MOVED from the stale map.
        local moved = r.redirects
        res = assert(r:pipeline(function(p)
            p:call("GET", "{p}:1")
            p:call("GET", "{p}:2")
            p:eval(s, { "{p}:n" }, {})
            p:call("WRONGCMD_X", "{p}:1")
        end))
        assert.same({ "one", "two", 2 }, { res[1], res[2], res[3] })
        assert.matches("^ERR unknown command", res[4].err)
        assert.is_true(r.redirects > moved)
    end)

    it("reloads a script on NOSCRIPT from the node a slot moved to",
       function()
        local s = redis.script("return 'ran ' .. KEYS[1]")
        local k = "{ns}:k"
        local slot = redis.keyslot(k)
        local src = c:master_of(slot)
        local dst = c:other_masters(src)[1]
        -- This client's connection to dst has loaded the script already...
        local on_dst
        for i = 1, 5000 do
            local key = "d" .. i
            if c:master_of(redis.keyslot(key)) == dst then
                on_dst = key
                break
            end
        end
        assert.equal("ran " .. on_dst, r:eval(s, { on_dst }, {}))
        assert.equal("ran " .. k, r:eval(s, { k }, {}))
        -- ...then dst forgets it, and the slot moves there.
        assert.equal("OK", cmd(dst, "SCRIPT", "FLUSH"))
        assert.equal("OK", r:call("SET", k, "v"))
        c:migrate(slot, src, dst)
        assert.equal("ran " .. k, r:eval(s, { k }, {}))
        assert.same({ 1 }, cmd(dst, "SCRIPT", "EXISTS", s.sha))
    end)

    it("survives a manual failover of the {wtt} slot's master", function()
        local s = redis.script("return redis.call('INCR', KEYS[1])")
        local slot = redis.keyslot("{wtt}:")
        assert.equal(1, r:eval(s, { "{wtt}:f" }, {}))
        local m = c:master_of(slot)
        local rep = c:replica_of(m)
        c:failover(rep)
        assert.equal(2, r:eval(s, { "{wtt}:f" }, {}))
        assert.equal("2", r:call("GET", "{wtt}:f"))
        assert.equal("127.0.0.1:" .. rep.port, r.slots[slot])
        local res = assert(r:pipeline(function(p)
            p:eval(s, { "{wtt}:f" }, {})
            p:call("GET", "{wtt}:f")
        end))
        assert.same({ 3, "3" }, res)
    end)

    it("rides out a killed master: retries until its replica takes over",
       function()
        -- Backoff long enough to outlast the election (node timeout 2 s).
        local r2 = assert(redis.connect(c.url, { backoff_base = 0.2,
                                                 backoff_max = 2 }))
        assert.equal("OK", r2:call("SET", "{kill}:k", "kept"))
        assert.equal(1, r2:call("WAIT", 1, 5000))    -- the replica has it
        local m = c:master_of(redis.keyslot("{kill}:k"))
        local rep = c:replica_of(m)
        m:kill()
        -- A command sent on the connection the kill closed fails (it may
        -- have run: never retried). The next one finds nothing to send to
        -- (connect refused), waits with backoff while the cluster elects
        -- the replica, and follows the new map.
        local v, err = r2:call("GET", "{kill}:k")
        if v == nil then
            assert.matches("^call failed: ", err)
            v, err = r2:call("GET", "{kill}:k")
        end
        assert.equal("kept", v, err)
        assert.equal("127.0.0.1:" .. rep.port,
                     r2.slots[redis.keyslot("{kill}:k")])
        r2:close()
        m:restart()            -- back as a replica of its old replica
        c:wait_stable()
    end)

    it("finds the other nodes when every node it talked to is gone",
       function()
        -- A client whose seed and only node so far is `m`: its URL names
        -- m alone and its one command went to m. The rest of the cluster
        -- is known to it only from the slot map.
        local m = c:master_of("lost-seed")
        local one = assert(redis.connect("redis://127.0.0.1:" .. m.port
                                         .. "?cluster=1",
                                         { backoff_base = 0.05,
                                           backoff_max = 0.5 }))
        assert.equal("OK", one:call("SET", "lost-seed", "v"))
        assert.equal(1, one:call("WAIT", 1, 5000))
        m:kill()
        -- The command sent on the connection the kill closed fails (never
        -- retried: it may have run); the next keyless one goes to a live
        -- node at once.
        local n, perr = one:call("PUBLISH", "nobody-listens", "x")
        if n == nil then
            assert.matches("^call failed: ", perr)
            n, perr = one:call("PUBLISH", "nobody-listens", "x")
        end
        assert.equal(0, n, perr)
        assert.are_not.equal("127.0.0.1:" .. m.port, one.last)
        -- The key's slot comes back once m's replica has taken over; a
        -- bound, not a timing (elections on loaded cores are slow).
        local deadline, v, err = sys.now() + 120, nil, nil
        repeat
            v, err = one:call("GET", "lost-seed")
        until v ~= nil or sys.now() > deadline
        assert.equal("v", v, err)
        one:close()
        m:restart()
        c:wait_stable()
    end)

    it("keeps pub/sub across a failover and the loss of its node",
       function()
        local pubc = assert(redis.connect(c.url))
        local phase, got, killed, reconnected = 1, {}, nil, false
        local sub = assert(redis.connect(c.url))
        -- A bound, not a timing: under ASan on two loaded cores a failover,
        -- a node's loss and the elections after it took over a minute.
        local deadline = sys.now() + 180
        local ok, err = sub:subscribe({ "news" }, nil,
            function(_, _, payload)
                got[payload] = true
            end, {
                tick = 0.05,
                on_reconnect = function() reconnected = true end,
                on_tick = function()
                    assert(sys.now() < deadline, "timed out in phase "
                           .. phase)
                    if phase == 1 then
                        pubc:call("PUBLISH", "news", "before")
                        if got.before then
                            c:failover(c:replica_of(c:master_of(
                                redis.keyslot("{wtt}:"))))
                            phase = 2
                        end
                    elseif phase == 2 then
                        pubc:call("PUBLISH", "news", "after-failover")
                        if got["after-failover"] then
                            -- Kill the node this subscriber is on.
                            for _, n in ipairs(c.nodes) do
                                local list = cmd(n, "CLIENT", "LIST")
                                if list and list:find("cmd=subscribe", 1,
                                                      true) then
                                    killed = n
                                end
                            end
                            assert(killed, "no node holds the subscriber")
                            killed:kill()
                            phase = 3
                        end
                    elseif phase == 3 then
                        pubc:call("PUBLISH", "news", "after-kill")
                        if got["after-kill"] then
                            return false
                        end
                    end
                end,
            })
        pubc:close()
        sub:close()
        assert.is_nil(err)
        assert.is_true(ok)
        assert.is_true(reconnected)
        -- The killed node comes back (nodes.conf keeps its identity) and
        -- the cluster settles, for whatever runs next.
        killed:restart()
        c:wait_stable()
    end)
end)
