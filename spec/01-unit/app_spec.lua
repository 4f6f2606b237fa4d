local app = require "wtt.app"

local function file(path, source, kind)
    return { path = path, source = source, kind = kind or "route",
             sha256 = "x" }
end

describe("wtt.app.build", function()
    it("builds routes from file sources", function()
        local a = assert(app.build({
            file("routes/a.lua", [[
                return { { "GET", "/a/", function() return 200, "a" end } }
            ]]),
        }))
        local route = a.router:match("GET", "/a/")
        assert.equal("routes/a.lua", route.file)
    end)

    it("reports a syntax error with file and line", function()
        local a, err = app.build({
            file("routes/ok.lua", "return {}"),
            file("routes/bad.lua", "return {\n  {\"GET\", \"/b\" ,, }\n}"),
        })
        assert.is_nil(a)
        assert.equal("routes/bad.lua", err.file)
        assert.equal(2, err.line)
        assert.matches("unexpected symbol", err.message)
    end)

    it("reports a runtime error while loading with file and line", function()
        local _, err = app.build({
            file("routes/boom.lua", "local x = nil\nreturn x.y"),
        })
        assert.equal("routes/boom.lua", err.file)
        assert.equal(2, err.line)
    end)

    it("refuses a route file that returns no list", function()
        local _, err = app.build({ file("routes/n.lua", "return 42") })
        assert.matches("list of routes", err.message)
    end)

    it("refuses malformed routes", function()
        local _, err = app.build({
            file("routes/m.lua", 'return { { "GET", "nopath", print } }'),
        })
        assert.matches("path must be", err.message)
        _, err = app.build({
            file("routes/m.lua", 'return { { "GET", "/p", 42 } }'),
        })
        assert.matches("handler must be a function", err.message)
    end)

    it("refuses the same route in two files", function()
        local src = 'return { { "GET", "/same/", function() end } }'
        local _, err = app.build({ file("routes/1.lua", src),
                                   file("routes/2.lua", src) })
        assert.equal("routes/2.lua", err.file)
        assert.matches("defined twice", err.message)
    end)

    it("keeps route globals out of _G", function()
        assert(app.build({
            file("routes/g.lua", "leaked_global = 1\nreturn {}"),
        }))
        assert.is_nil(rawget(_G, "leaked_global"))
    end)

    it("validates plugin VERSION", function()
        local _, err = app.build({
            file("plugins/p/handler.lua", 'return { VERSION = "1.0" }',
                 "plugin"),
        })
        assert.equal("plugins/p/handler.lua", err.file)
        assert.equal(1, err.line)
        assert.matches("VERSION", err.message)
    end)

    it("refuses a plugin folder without a handler", function()
        local _, err = app.build({
            file("plugins/h/schema.lua", "return { fields = {} }", "plugin"),
        })
        assert.equal("plugins/h", err.file)
        assert.matches("handler.lua", err.message)
    end)

    it("refuses a bad configuration value, naming the schema line",
       function()
        local _, err = app.build({
            file("plugins/retry/handler.lua", [[
                return { VERSION = "1.0.0",
                         max_attempts = function() end,
                         backoff_ms = function() end,
                         retryable = function() end }
            ]], "plugin"),
            file("plugins/retry/schema.lua", [[
return { fields = {
    { name = "backoff_base_ms", type = "integer", default = 1 },
    { name = "max_attempts", type = "integer", default = 0, min = 1 },
} }
            ]], "plugin"),
        })
        assert.equal("plugins/retry/schema.lua", err.file)
        assert.equal(3, err.line)
        assert.matches("retry.max_attempts: out of range", err.message)
    end)

    it("refuses a configuration value from the environment", function()
        local env = { WTT_RETRY_MAX_ATTEMPTS = "0" }
        local _, err = app.build({}, nil, {
            env = function(k) return env[k] end })
        assert.equal("plugins/retry/schema.lua", err.file)
        assert.is_true(err.line > 0)
        assert.matches("from WTT_RETRY_MAX_ATTEMPTS=0", err.message, 1, true)
        env.WTT_RETRY_MAX_ATTEMPTS = "many"
        _, err = app.build({}, nil, { env = function(k) return env[k] end })
        assert.matches("WTT_RETRY_MAX_ATTEMPTS: bad value 'many'",
                       err.message, 1, true)
    end)

    it("refuses a missing or non-function slot, naming the line",
       function()
        local _, err = app.build({
            file("plugins/timeout/handler.lua",
                 'return { VERSION = "1.0.0" }', "plugin"),
        })
        assert.equal("plugins/timeout/handler.lua", err.file)
        assert.matches("timeout_ms must be a function", err.message)
        _, err = app.build({
            file("plugins/timeout/handler.lua",
                 'return { VERSION = "1.0.0",\n timeout_ms = 5 }', "plugin"),
        })
        assert.equal(2, err.line)
        assert.matches("timeout_ms must be a function", err.message)
        _, err = app.build({
            file("plugins/priority/handler.lua", [[
                return { VERSION = "1.0.0", lane = function() end,
                         fair_share = "yes" }
            ]], "plugin"),
        })
        assert.matches("fair_share must be a function", err.message)
    end)

    it("fills absent slots with the shipped plugins", function()
        local a = assert(app.build({}))
        local p = a.plugins.policy
        assert.equal("serve", p.source)
        assert.equal(3, p.max_attempts({}))
        assert.is_true(p.shipped.retry)
        assert.equal(86400, p.dead_ttl_s())
    end)

    it("refuses a route under a worker or admin path without auth",
       function()
        for _, path in ipairs({ "/media/x", "/_admin/y",
                                "/transcribe/_result/:id/" }) do
            local _, err = app.build({
                file("routes/w.lua", 'return { { "GET", "' .. path
                     .. '", function() end } }'),
            })
            assert.matches("need an auth option", err.message)
        end
        assert(app.build({
            file("routes/w.lua", 'return { { "GET", "/media/x", '
                 .. 'function() end, { auth = function() end } } }'),
        }))
    end)

    it("lets routes require plugin modules", function()
        local a = assert(app.build({
            file("plugins/r/handler.lua", [[
                local pol = require "plugins.r.policies"
                return { VERSION = "1.2.3", pol = pol }
            ]], "plugin"),
            file("plugins/r/policies/init.lua", "return { n = 7 }", "plugin"),
            file("routes/u.lua", [[
                local r = require "plugins.r.handler"
                return { { "GET", "/n/", function() return 200, r.pol.n end } }
            ]]),
        }))
        assert.truthy(a.router:match("GET", "/n/"))
        assert.equal(7, a.plugins:get("r").pol.n)
        -- the set's modules stay in the set
        assert.is_nil(package.loaded["plugins.r.handler"])
    end)
end)
