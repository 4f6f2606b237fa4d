-- The result subscriber inside `wtt serve`: started by the serve command
-- beside the server, asked to stop and joined on SIGTERM (its state and
-- connections closed), never taking the server down.
local helpers = require "spec.support.server"
local sys = require "wtt.sys"

describe("wtt serve: the subscriber thread #http", function()
    -- Nothing listens on port 1: the subscriber keeps retrying, as it
    -- must while its backends are away.
    local env = {
        DATABASE_URL = "postgresql://127.0.0.1:1/none",
        REDIS_URL = "redis://127.0.0.1:1",
        WTT_SUBSCRIBER = "on",
    }

    it("runs beside the server and stops with it on SIGTERM", function()
        local srv = helpers.serve({ env = env })
        assert.truthy(helpers.eventually(function()
            return srv:log_text():find("subscriber.starting", 1, true)
        end, 10), srv:log_text())
        assert.equal(200, srv:request("GET", "/livez").status)
        local how, code = srv:signal_and_wait("TERM", 30)
        local text = srv:log_text()
        srv:stop()
        assert.same({ "exited", 0 }, { how, code }, text)
        local stopped = text:find("serve.stopped", 1, true)
        local joined = text:find("subscriber.stopped_by_serve", 1, true)
        assert.truthy(stopped and joined, text)
        assert.is_nil(text:find("serve.subscriber_stuck", 1, true), text)
    end)

    it("is not started with WTT_SUBSCRIBER=off", function()
        local off = {}
        for k, v in pairs(env) do off[k] = v end
        off.WTT_SUBSCRIBER = "off"
        local srv = helpers.serve({ env = off })
        assert.equal(200, srv:request("GET", "/livez").status)
        local how, code = srv:signal_and_wait("TERM", 30)
        local text = srv:log_text()
        srv:stop()
        assert.same({ "exited", 0 }, { how, code }, text)
        assert.is_nil(text:find("subscriber.starting", 1, true), text)
    end)
end)
