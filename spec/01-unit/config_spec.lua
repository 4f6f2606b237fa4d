-- wtt.service.config: values that have one source elsewhere.
local sys = require "wtt.sys"
local config = require "wtt.service.config"
local http_server = require "wtt.core.http_server"

describe("wtt.service.config", function()
    local saved

    before_each(function() saved = sys.getenv("WTT_MAX_UPLOAD") end)
    after_each(function() sys.setenv("WTT_MAX_UPLOAD", saved) end)

    -- The route's upload limit and the server's multipart cap are one
    -- number: the server's (core/bind/http_server/wtt_http_server.c),
    -- default included.
    it("takes the upload limit from the HTTP server", function()
        for _, v in ipairs({ false, "1048576", "0", "-5", "1e6", "2M" }) do
            sys.setenv("WTT_MAX_UPLOAD", v or nil)
            local limit = http_server.limits().max_upload
            assert.equal(limit, config.load().max_upload, tostring(v))
        end
        sys.setenv("WTT_MAX_UPLOAD", "1048576")
        assert.equal(1048576, config.load().max_upload)
        sys.setenv("WTT_MAX_UPLOAD", nil)
        assert.equal(256 * 1024 * 1024, config.load().max_upload)
    end)
end)
