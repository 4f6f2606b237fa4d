-- A route whose database cannot be reached answers 503 with Retry-After
-- (lua/wtt/service/web.lua `db`): an outage, not a server error. Here
-- PostgreSQL refuses every connection, so the route's first connection of
-- its Lua state fails.

local helpers = require "spec.support.server"
local sys = require "wtt.sys"

local ID = "0f8e2c1a-3b4d-4e5f-8a9b-0c1d2e3f4a5b"

describe("a route whose database cannot be reached", function()
    local srv

    setup(function()
        local port = assert(sys.free_port())      -- nothing listens there
        srv = helpers.serve({ env = {
            DATABASE_URL = "postgresql://wtt@127.0.0.1:" .. port .. "/wtt",
        } })
    end)

    teardown(function()
        if srv then
            srv:stop()
        end
    end)

    it("answers 503 unavailable with Retry-After, naming the database",
       function()
        local res = assert(srv:json("GET", "/transcribe/status/" .. ID
                                           .. "/"))
        assert.equal(503, res.status, res.body)
        assert.equal("5", res.headers["retry-after"])
        assert.equal("unavailable", res.json and res.json.error, res.body)
        assert.matches("database unavailable", res.body, 1, true)
    end)
end)
