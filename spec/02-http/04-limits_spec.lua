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
end)


-- The drip client: one wtt.thread, `n` connections from `bind`, each
-- sending a request line and then one header byte every `every` seconds
-- (under the 2 s idle timeout) for `drip_s` seconds; then silence, and it
-- counts the connections the server closes. Reports through thread values
-- under `key` (opened, drips, alive, closed).
local DRIP = [[
local thread = require "wtt.thread"
local sys = require "wtt.sys"
local json = require "wtt.json"
local a = json.decode((...))
local function put(k, v) thread.set(a.key .. ":" .. k, tostring(v)) end
local conns = {}
for i = 1, a.n do
    local c = sys.tcp_connect("127.0.0.1", a.port, { timeout = 5,
                                                     bind = a.bind })
    if c and c:send("GET /livez HTTP/1.1\r\nHost: x\r\nX-Drip: ", 1) then
        conns[#conns + 1] = c
    end
end
put("opened", #conns)
local drips, t_end = 0, sys.now() + a.drip_s
while sys.now() < t_end do
    local round = sys.now()
    for _, c in ipairs(conns) do
        if c:send("d", 1) then
            drips = drips + 1
        end
    end
    put("drips", drips)
    sys.sleep(math.max(0, a.every - (sys.now() - round)))
end
-- Still open after drip_s (more than the idle timeout): the server kept
-- serving the drips, so they were load, not dead sockets.
local alive = 0
for _, c in ipairs(conns) do
    local d, why = c:recv(1024, 0)
    if d == nil and why == "timeout" then
        alive = alive + 1
    end
end
put("alive", alive)
-- Silent now: each must be closed within the idle timeout (2 s) + slack.
local closed, deadline = 0, sys.now() + a.close_s
for _, c in ipairs(conns) do
    local d, why
    repeat
        d, why = c:recv(1024, math.max(0, deadline - sys.now()))
    until d == nil or sys.now() > deadline
    if d == nil and why == "closed" then
        closed = closed + 1
    end
    c:close()
end
put("closed", closed)
]]


-- Connections waiting in the accept queue of the listening socket on
-- 127.0.0.1:port (Linux: a LISTEN row's rx_queue in /proc/net/tcp). A
-- connect() returns before the server accepts; 0 here means the server has
-- seen (and admitted or refused) every connection made so far.
local function accept_backlog(port)
    local f = assert(io.open("/proc/net/tcp", "r"))
    local text = f:read("*a")
    f:close()
    local want = ("0100007F:%04X"):format(port)
    local n, found = 0, false
    for line in text:gmatch("[^\n]+") do
        local addr, st, rx = line:match(
            "^%s*%d+: (%x+:%x+) %x+:%x+ (%x+) %x+:(%x+)")
        if addr == want and st == "0A" then
            n, found = n + tonumber(rx, 16), true
        end
    end
    assert(found, "no listening socket on port " .. port)
    return n
end


describe("wtt serve: H7 slowloris and connection floods #http", function()
    local thread = require "wtt.thread"
    local json = require "wtt.json"
    -- 320 drips from one address (127.0.0.3: the spec's own keep-alive
    -- connections come from 127.0.0.1) fill exactly its allowance; the
    -- server's total allowance (400) leaves room for everyone else.
    local THREADS, PER_THREAD = 4, 80
    local DRIPS = THREADS * PER_THREAD
    local srv
    setup(function()
        srv = helpers.serve({ env = {
            WTT_CONN_TIMEOUT = "2",
            WTT_PER_IP_LIMIT = tostring(DRIPS),
            WTT_CONN_LIMIT = "400",
        } })
    end)
    teardown(function() if srv then srv:stop() end end)

    it("keeps serving another address within 2 s while 320 connections "
       .. "drip header bytes, and closes them once they go quiet", function()
        local path = srv.dir .. "/drip.lua"
        assert(sys.write_file(path, DRIP))
        local key = "h7:" .. sys.getpid()
        local function get(i, k)
            return tonumber(thread.get(key .. i .. ":" .. k))
        end
        local threads = {}
        for i = 1, THREADS do
            threads[i] = assert(thread.start(path, json.encode({
                key = key .. i, port = srv.port, n = PER_THREAD,
                bind = "127.0.0.3",
                every = 0.5, drip_s = 6, close_s = 5 })))
        end
        local ok, err = pcall(function()
            assert.truthy(helpers.eventually(function()
                for i = 1, THREADS do
                    if not get(i, "opened") then
                        return false
                    end
                end
                return true
            end, 10), "the drip threads did not connect")
            for i = 1, THREADS do
                assert.equal(PER_THREAD, get(i, "opened"))
            end
            assert.truthy(helpers.eventually(function()
                return accept_backlog(srv.port) == 0
            end, 5), "the server did not accept the drips")
            -- This address has used its allowance: one more gets nothing.
            local extra = assert(sys.tcp_connect("127.0.0.1", srv.port,
                                                 { bind = "127.0.0.3" }))
            extra:send("GET /livez HTTP/1.1\r\nHost: x\r\n\r\n", 1)
            local data = extra:recv(1024, 1)
            extra:close()
            assert.is_nil(data and status_of(data), data)
            -- Fresh clients from 127.0.0.2 while the drips go on: each
            -- answered (connect, request, whole answer) within 2 s.
            for n = 1, 3 do
                local drips_before = 0
                for i = 1, THREADS do
                    drips_before = drips_before + (get(i, "drips") or 0)
                end
                local t0 = sys.now()
                local out = raw(srv.port,
                                "GET /livez HTTP/1.1\r\nHost: x\r\n"
                                .. "Connection: close\r\n\r\n",
                                { bind = "127.0.0.2", timeout = 3 })
                local took = sys.now() - t0
                assert.equal(200, status_of(out), out)
                assert(took <= 2, ("fresh client %d took %.3f s"):format(n, took))
                -- ...and the drips were still going meanwhile.
                assert.truthy(helpers.eventually(function()
                    local d = 0
                    for i = 1, THREADS do
                        d = d + (get(i, "drips") or 0)
                    end
                    return d > drips_before
                end, 2), "the drips stalled")
                sys.sleep(0.5)
            end
            for i = 1, THREADS do
                assert.is_true(threads[i]:join(20))
                -- Dripping kept every connection open past the idle
                -- timeout; silence got every one closed.
                assert.equal(PER_THREAD, get(i, "alive"))
                assert.equal(PER_THREAD, get(i, "closed"))
            end
        end)
        for i = 1, THREADS do
            threads[i]:join(20)
            for _, k in ipairs({ "opened", "drips", "alive", "closed" }) do
                thread.set(key .. i .. ":" .. k, nil)
            end
        end
        assert(ok, err)
        assert.equal(200, srv:request("GET", "/livez").status)
    end)
end)
