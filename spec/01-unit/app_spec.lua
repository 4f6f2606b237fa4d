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

    it("validates plugin VERSION and PRIORITY", function()
        local _, err = app.build({
            file("plugins/p/handler.lua",
                 'return { VERSION = "1.0", PRIORITY = 1 }', "plugin"),
        })
        assert.equal("plugins/p/handler.lua", err.file)
        assert.matches("VERSION", err.message)
        _, err = app.build({
            file("plugins/q/handler.lua",
                 'return { VERSION = "1.0.0", PRIORITY = 1.5 }', "plugin"),
        })
        assert.matches("PRIORITY", err.message)
    end)

    it("lets routes require plugin modules", function()
        local a = assert(app.build({
            file("plugins/r/handler.lua", [[
                local pol = require "plugins.r.policies"
                return { VERSION = "1.2.3", PRIORITY = 10, pol = pol }
            ]], "plugin"),
            file("plugins/r/policies/init.lua", "return { n = 7 }", "plugin"),
            file("routes/u.lua", [[
                local r = require "plugins.r.handler"
                return { { "GET", "/n/", function() return 200, r.pol.n end } }
            ]]),
        }))
        assert.truthy(a.router:match("GET", "/n/"))
        assert.equal(7, require("wtt.plugins").get("r").pol.n)
    end)
end)
