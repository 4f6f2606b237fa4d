-- Connection limits for many long-lived connections (docs/http.md
-- "Limits and hostile clients"): addresses in WTT_PER_IP_EXEMPT (reverse
-- proxies) are not held to WTT_PER_IP_LIMIT, every other address still
-- is, and `wtt serve` raises its open-file limit to the hard limit.

local ffi = require "ffi"
local helpers = require "spec.support.server"
local sse = require "spec.support.sse"      -- declares setrlimit
local sys = require "wtt.sys"

local status_of = helpers.status_of

-- A keep-alive connection from `bind` that has been answered once, or
-- nil when the server cut it.
local function connection(port, bind)
    local c = assert(sys.tcp_connect("127.0.0.1", port, { bind = bind }))
    c:send("GET /livez HTTP/1.1\r\nHost: x\r\n\r\n", 2)
    local data = c:recv(4096, 2)
    if data and status_of(data) == 200 then
        return c
    end
    c:close()
    return nil
end


describe("wtt serve: per-address limit and its exemptions #http", function()
    local srv, inherited
    setup(function()
        -- The server inherits a soft open-file limit below its hard one
        -- (a login shell's usual 1024 under a higher hard limit).
        local rl = ffi.new("struct wtt_spec_rlimit")
        assert(ffi.C.getrlimit(7, rl) == 0)
        local saved = tonumber(rl.cur)
        inherited = math.min(512, tonumber(rl.max))
        rl.cur = inherited
        assert(ffi.C.setrlimit(7, rl) == 0)
        local ok, err = pcall(function()
            srv = helpers.serve({ env = {
                WTT_PER_IP_LIMIT = "4",
                WTT_PER_IP_EXEMPT = "127.0.0.1, 10.0.0.0/8,not-an-address",
            } })
        end)
        sse.raise_nofile(saved)
        assert(ok, err)
    end)
    teardown(function() if srv then srv:stop() end end)

    it("serves more than the limit from an exempt address", function()
        local open = {}
        for i = 1, 20 do
            open[i] = connection(srv.port, "127.0.0.1")
            assert.truthy(open[i], "connection " .. i .. " was cut")
        end
        for _, c in ipairs(open) do
            c:close()
        end
    end)

    it("holds every other address to the limit, and frees its slots as "
       .. "its connections close", function()
        local open = {}
        for i = 1, 4 do
            open[i] = connection(srv.port, "127.0.0.2")
            assert.truthy(open[i], "connection " .. i .. " was cut")
        end
        assert.is_nil(connection(srv.port, "127.0.0.2"))
        -- another address is not affected
        local other = connection(srv.port, "127.0.0.3")
        assert.truthy(other)
        other:close()
        for _, c in ipairs(open) do
            c:close()
        end
        assert.truthy(helpers.eventually(function()
            local c = connection(srv.port, "127.0.0.2")
            if c then
                c:close()
            end
            return c ~= nil
        end, 5))
    end)

    it("says which entries of the list it ignored", function()
        assert.matches("event=http.per_ip_exempt_ignored entry=not%-an%-address",
                       srv:log_text())
    end)

    it("runs with its open-file limit raised to the hard limit", function()
        local limits = assert(sys.read_file("/proc/" .. srv.pid .. "/limits"))
        local soft, hard = limits:match("Max open files%s+(%S+)%s+(%S+)")
        assert.truthy(soft, limits)
        assert.equal(hard, soft)
        if hard ~= "unlimited" and tonumber(hard) > inherited then
            assert.is_true(tonumber(soft) > inherited)
        end
    end)
end)
