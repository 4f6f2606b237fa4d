-- H7 (docs/reliability.md): a thousand sockets against the connection
-- limits of a real `wtt serve`. WTT_CONN_LIMIT bounds the connections the
-- server holds (libmicrohttpd splits it among the serving threads), so
-- beyond it the server accepts nothing more (the rest wait in the kernel's
-- accept queue) without crashing and its descriptors stay bounded; once
-- the flood closes, the client that waited and a fresh one are served. WTT_PER_IP_LIMIT bounds one address, so a
-- client from another address is served during a flood from one.

local helpers = require "spec.support.server"
local sys = require "wtt.sys"

local raw, status_of = helpers.raw, helpers.status_of

local FLOOD = 1000

-- Open descriptors of process `pid`.
local function fds(pid)
    return #(sys.listdir("/proc/" .. pid .. "/fd") or {})
end

-- The spec process holds the flood's sockets itself: raise its soft
-- RLIMIT_NOFILE to the hard limit, or say why it cannot run.
local function room_for(n)
    local soft, hard = sys.getrlimit("nofile")
    if soft < n + 200 and hard > soft then
        sys.setrlimit("nofile", hard)
        soft = hard
    end
    return soft >= n + 200, ("RLIMIT_NOFILE is %s, under the %d sockets "
                             .. "of the flood"):format(tostring(soft), n)
end

-- Opens `n` connections from the addresses in `binds` (round robin), each
-- sending an unfinished request (the server holds it open until
-- WTT_CONN_TIMEOUT). Returns the sockets that connected.
local function flood(port, n, binds)
    local conns = {}
    for i = 1, n do
        local c = sys.tcp_connect("127.0.0.1", port,
                                  { timeout = 2, bind = binds[i % #binds + 1] })
        if c then
            c:send("GET /livez HTTP/1.1\r\nHost: x\r\nX-Flood: ", 0.2)
            conns[#conns + 1] = c
        end
    end
    return conns
end

-- Of `conns`, how many the server has closed (EOF or reset) and how many
-- it left open (no answer within the poll).
local function tally(conns)
    local closed, open = 0, 0
    for _, c in ipairs(conns) do
        local d, why = c:recv(1024, 0)
        if d == nil and why == "timeout" then
            open = open + 1
        elseif d == nil then
            closed = closed + 1
        end
    end
    return closed, open
end

local function close_all(conns)
    for _, c in ipairs(conns) do
        c:close()
    end
end

local function served(port, bind)
    local out = raw(port, "GET /livez HTTP/1.1\r\nHost: x\r\n"
                    .. "Connection: close\r\n\r\n", { bind = bind,
                                                       timeout = 5 })
    return status_of(out)
end


describe("wtt serve: H7 a thousand sockets against the connection limits "
         .. "#http", function()
    local LIMIT = 200

    it("holds at most WTT_CONN_LIMIT of 1,000 connections from four "
       .. "addresses, does not crash, keeps its descriptors bounded, and "
       .. "serves a fresh client once they close", function()
        local ok, why = room_for(FLOOD)
        if not ok then
            pending("skipped, because " .. why)
            return
        end
        local srv = helpers.serve({ env = {
            WTT_CONN_LIMIT = tostring(LIMIT),
            WTT_PER_IP_LIMIT = tostring(FLOOD),
            WTT_CONN_TIMEOUT = "60",
        } })
        local conns
        local pok, err = pcall(function()
            local fds_before = fds(srv.pid)
            local rss_before = sys.rss_kb(srv.pid)
            conns = flood(srv.port, FLOOD, { "127.0.0.3", "127.0.0.4",
                                             "127.0.0.5", "127.0.0.6" })
            -- Every socket is either held by the server or refused; the
            -- server's descriptors settle under the limit plus its own.
            local peak = 0
            assert.truthy(helpers.eventually(function()
                local n = fds(srv.pid)
                peak = math.max(peak, n)
                return n >= fds_before + LIMIT * 0.9
            end, 20), "the server did not take up the flood: "
               .. fds(srv.pid) .. " descriptors")
            sys.sleep(1)
            local fds_flood = fds(srv.pid)
            peak = math.max(peak, fds_flood)
            assert.is_nil((sys.wait(srv.pid, 0)), srv:log_text())
            local closed, open = tally(conns)
            print(("\n  H7: %d sockets connected; the server holds %d "
                   .. "descriptors (%d before; limit %d), %d closed by it, "
                   .. "%d open (held or in the backlog); RSS %d -> %d KiB")
                  :format(#conns, fds_flood, fds_before, LIMIT, closed, open,
                          rss_before, sys.rss_kb(srv.pid)))
            assert.is_true(fds_flood <= fds_before + LIMIT + 8,
                           "descriptors " .. fds_flood)
            assert.is_true(peak <= fds_before + LIMIT + 8, "peak " .. peak)
            -- At the limit, nobody else gets in: a fresh client waits in
            -- the kernel's accept queue while the flood holds every slot...
            local c = assert(sys.tcp_connect("127.0.0.1", srv.port,
                                             { bind = "127.0.0.2" }))
            c:send("GET /livez HTTP/1.1\r\nHost: x\r\n"
                   .. "Connection: close\r\n\r\n", 1)
            local d = c:recv(1024, 1)
            assert.is_nil(d and status_of(d), d)
            -- ...and is answered once the flood goes (not dropped); then
            -- a fresh client is served, and the descriptors come back.
            close_all(conns)
            conns = nil
            local waited = c:recv_all(20) or ""
            c:close()
            assert.equal(200, status_of(waited), waited)
            assert.truthy(helpers.eventually(function()
                return served(srv.port, "127.0.0.2") == 200
            end, 20), "no fresh client served after the flood")
            assert.truthy(helpers.eventually(function()
                return fds(srv.pid) <= fds_before + 2
            end, 20), "descriptors after: " .. fds(srv.pid))
            assert.is_nil((sys.wait(srv.pid, 0)), srv:log_text())
        end)
        if conns then
            close_all(conns)
        end
        srv:stop()
        assert(pok, err)
    end)

    it("serves a client from another address during a flood of 1,000 from "
       .. "one address (WTT_PER_IP_LIMIT)", function()
        local ok, why = room_for(FLOOD)
        if not ok then
            pending("skipped, because " .. why)
            return
        end
        local srv = helpers.serve({ env = {
            WTT_CONN_LIMIT = "1024",
            WTT_PER_IP_LIMIT = "256",
            WTT_CONN_TIMEOUT = "60",
        } })
        local conns
        local pok, err = pcall(function()
            local fds_before = fds(srv.pid)
            conns = flood(srv.port, FLOOD, { "127.0.0.3" })
            -- The per-address limit refuses the rest at once.
            local closed, open
            assert.truthy(helpers.eventually(function()
                closed, open = tally(conns)
                return closed >= FLOOD - 256 - 8
            end, 20), "refused: " .. tostring(closed))
            assert.is_true(open <= 256, "open " .. open)
            assert.is_true(fds(srv.pid) <= fds_before + 256 + 8)
            for _ = 1, 3 do
                assert.equal(200, served(srv.port, "127.0.0.2"))
            end
            close_all(conns)
            conns = nil
            assert.equal(200, served(srv.port, "127.0.0.3"))
            assert.is_nil((sys.wait(srv.pid, 0)), srv:log_text())
        end)
        if conns then
            close_all(conns)
        end
        srv:stop()
        assert(pok, err)
    end)
end)
