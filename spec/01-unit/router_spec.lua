local router = require "wtt.router"

describe("wtt.router", function()
    local r
    before_each(function()
        r = router.new()
        assert(r:add("GET", "/a/", "static-get"))
        assert(r:add("POST", "/a/", "static-post"))
        assert(r:add("GET", "/t/status/:id/", "status"))
        assert(r:add("GET", "/m/*rest", "media"))
        assert(r:add("GET", "/x.y/", "dot"))
    end)

    it("matches static paths by method", function()
        assert.equal("static-get", (r:match("GET", "/a/")))
        assert.equal("static-post", (r:match("POST", "/a/")))
    end)

    it("answers HEAD with the GET route", function()
        assert.equal("static-get", (r:match("HEAD", "/a/")))
    end)

    it("captures named segments", function()
        local route, params = r:match("GET", "/t/status/42/")
        assert.equal("status", route)
        assert.same({ id = "42" }, params)
    end)

    it("does not let a capture span segments", function()
        assert.is_nil(r:match("GET", "/t/status/4/2/"))
    end)

    it("captures the rest of the path with *", function()
        local _, params = r:match("GET", "/m/a/b/c.wav")
        assert.same({ rest = "a/b/c.wav" }, params)
    end)

    it("treats pattern characters in paths literally", function()
        assert.equal("dot", (r:match("GET", "/x.y/")))
        assert.is_nil(r:match("GET", "/xzy/"))
    end)

    it("tells a wrong method apart from an unknown path", function()
        local route, _, allow = r:match("DELETE", "/a/")
        assert.is_nil(route)
        assert.equal("GET, HEAD, OPTIONS, POST", allow)
        local none, _, allow2 = r:match("GET", "/nope/")
        assert.is_nil(none)
        assert.is_nil(allow2)
    end)

    it("refuses a duplicate method and path", function()
        local ok, err = r:add("GET", "/a/", "again")
        assert.is_nil(ok)
        assert.matches("defined twice", err)
    end)

    it("refuses unknown methods", function()
        assert.is_nil((r:add("BREW", "/a/", "x")))
    end)
end)
