-- `wtt worker --metrics-listen` that cannot serve is a start failure: exit
-- status 1 and a message naming the flag and the reason, before the worker
-- connects to anything (so no Redis or web is needed here). The taken port
-- is held by a metrics listener in this process, which also shows a
-- listener stopping with its state (the spec runner closes its state at
-- exit, joining the thread). Serving while tasks run is
-- spec/09-e2e/03-prometheus_spec.lua.

local cli = require "spec.support.cli"
local helpers = require "spec.support.server"
local metrics = require "wtt.core.metrics"
local sys = require "wtt.sys"


describe("wtt worker --metrics-listen", function()
    local dir

    setup(function() dir = assert(sys.mkdtemp("wtt-metrics-listen-")) end)
    teardown(function() if dir then sys.rmtree(dir) end end)

    -- Fails unless `err` has `text` (plain, not a pattern).
    local function says(err, text)
        assert(err:find(text, 1, true), "expected '" .. text .. "' in:\n" .. err)
    end

    local function start(addr)
        return cli.wtt({ "worker", "--token", "t", "--metrics-listen", addr },
                       dir, 60)
    end

    it("exits 1 on an address that is not HOST:PORT", function()
        local code, _, err = start("nope")
        assert.equal(1, code)
        says(err, "wtt worker: --metrics-listen: bad address 'nope' "
                  .. "(HOST:PORT)")
    end)

    it("exits 1 on a port out of range", function()
        local code, _, err = start("127.0.0.1:99999")
        assert.equal(1, code)
        says(err, "wtt worker: --metrics-listen: bad port in "
                  .. "'127.0.0.1:99999' (0 to 65535)")
    end)

    it("exits 1 on a host that does not resolve", function()
        local code, _, err = start("256.1.1.1:9100")
        assert.equal(1, code)
        says(err, "wtt worker: --metrics-listen: 256.1.1.1:9100: ")
    end)

    it("exits 1 on an address another process holds", function()
        local port = assert(metrics.listen("127.0.0.1:0"))
        assert.is_true(port > 0)
        local addr = "127.0.0.1:" .. port
        local code, _, err = start(addr)
        assert.equal(1, code)
        says(err, "wtt worker: --metrics-listen: " .. addr
                  .. ": address already in use")
        -- The holder still serves.
        local raw = helpers.raw(port, "GET /metrics HTTP/1.0\r\n\r\n")
        assert.equal(200, helpers.status_of(raw))
        assert.matches("wtt_process_open_fds", raw)
    end)
end)
