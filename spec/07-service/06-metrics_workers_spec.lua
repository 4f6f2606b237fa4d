-- GET /transcribe/metrics/ counts the workers that reported a device fault
-- (docs/worker.md "Device faults"): their `worker:{id}` hashes carry
-- healthy=0 and device_faults, and the route sums them. PostgreSQL is not
-- needed for this part (its part is left out when it cannot be reached).

local helpers = require "spec.support.server"
local rh = require "spec.support.redis"
local queue = require "wtt.queue"
local sys = require "wtt.sys"

describe("metrics: worker health #redis", function()
    local rs, r, srv

    setup(function()
        rs = rh.start()
        r = assert(rs:client())
        local port = assert(sys.free_port())      -- nothing listens there
        srv = helpers.serve({ env = {
            REDIS_URL = rs.url, WTT_KEY_PREFIX = "m:",
            DATABASE_URL = "postgresql://wtt@127.0.0.1:" .. port .. "/wtt",
        } })
    end)

    teardown(function()
        if srv then srv:stop() end
        if r then r:close() end
        if rs then rs:stop() end
    end)

    it("lists each worker's health and counts the unhealthy ones",
       function()
        local q = queue.new(r, { prefix = "m:" })
        assert(q:worker_beat("ok", { healthy = 1, device_faults = 0 }, 30))
        assert(q:worker_beat("sick", {
            healthy = 0, device_faults = 2,
            last_device_error = "device fault (injected for tests)" }, 30))
        assert(q:worker_beat("old", { host = "h" }, 30))  -- reports none
        local res = assert(srv:json("GET", "/transcribe/metrics/"))
        assert.equal(200, res.status, res.body)
        assert.equal(3, res.json.workers_alive)
        assert.equal(1, res.json.workers_unhealthy)
        assert.equal(2, res.json.worker_device_faults)
        local by = {}
        for _, w in ipairs(res.json.workers) do
            by[w.id] = w
        end
        assert.equal(0, by.sick.healthy)
        assert.equal("device fault (injected for tests)",
                     by.sick.last_device_error)
        assert.equal(1, by.ok.healthy)
        assert.is_nil(by.old.healthy)
    end)
end)
