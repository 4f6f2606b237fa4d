local helpers = require "spec.support.server"
local sys = require "wtt.sys"

local V1 = [[
local sys = require "wtt.sys"
return {
    { "GET", "/version", function() return 200, { v = 1 } end },
    { "GET", "/version/slow", function()
        sys.write_file(os.getenv("WTT_SPEC_MARK_DIR") .. "/slow-started", "1")
        sys.sleep(1)
        return 200, { v = 1 }
    end },
}
]]
local V2 = [[
return {
    { "GET", "/version", function() return 200, { v = 2 } end },
    { "GET", "/version/slow", function() return 200, { v = 2 } end },
}
]]
local BROKEN = "return {\n    { \"GET\", \"/version\" function() end },\n}\n"

local function sha256(path)
    local p = io.popen("sha256sum '" .. path .. "'")
    local out = p:read("*a")
    p:close()
    return out:match("^(%x+)")
end

describe("wtt serve: hot reload #http", function()
    local srv, file

    local function version()
        local res = srv:json("GET", "/version")
        return res and res.json and res.json.v
    end

    setup(function()
        srv = helpers.serve()
        file = srv.routes_dir .. "/version.lua"
        assert(sys.write_file(file, V1))
        assert(srv:admin("POST", "/_admin/reload").status == 200)
    end)
    teardown(function() if srv then srv:stop() end end)

    it("picks up a changed route file on SIGHUP", function()
        assert.equal(1, version())
        assert(sys.write_file(file, V2))
        sys.kill(srv.pid, "HUP")
        assert.equal(2, helpers.eventually(function()
            return version() == 2 and 2
        end))
        assert(sys.write_file(file, V1))
        sys.kill(srv.pid, "HUP")
        assert.truthy(helpers.eventually(function() return version() == 1 end))
    end)

    it("keeps the old code and reports a syntax error", function()
        assert(sys.write_file(file, BROKEN))
        local res = srv:admin("POST", "/_admin/reload")
        assert.equal(422, res.status)
        assert.equal("reload_failed", res.json.error)
        assert.matches("routes/version.lua:2:", res.json.detail, 1, true)
        assert.equal(1, version())
        -- The same failure through SIGHUP is logged and recorded.
        sys.kill(srv.pid, "HUP")
        assert.truthy(helpers.eventually(function()
            local rec = srv:admin("GET", "/_admin/reload").json
            return rec.last_failure and rec.last_failure.reason == "sighup"
        end))
        local rec = srv:admin("GET", "/_admin/reload").json
        assert.equal("routes/version.lua", rec.last_failure.file)
        assert.equal(2, rec.last_failure.line)
        assert.truthy(rec.last_failure.at)
        assert.truthy(srv:log_text():find("event=reload.failed", 1, true))
        assert.equal(1, version())
        assert(sys.write_file(file, V1))
    end)

    it("finishes requests in flight on the code they started with",
       function()
        local conn = assert(sys.tcp_connect("127.0.0.1", srv.port))
        conn:send("GET /version/slow HTTP/1.1\r\nHost: x\r\n"
                  .. "Connection: close\r\n\r\n")
        -- Reload only once the V1 handler runs.
        assert.truthy(helpers.eventually(function()
            return sys.exists(srv.dir .. "/slow-started")
        end, 5), "the slow request never reached its handler")
        assert(sys.write_file(file, V2))
        assert.equal(200, srv:admin("POST", "/_admin/reload").status)
        local out = conn:recv_all(5)
        conn:close()
        assert.equal(200, helpers.status_of(out))
        assert.truthy(out:find('{"v":1}', 1, true))
        assert.equal(2, version())
        assert(sys.write_file(file, V1))
        assert.equal(200, srv:admin("POST", "/_admin/reload").status)
    end)

    it("keeps a record of generations with file hashes", function()
        local rec = srv:admin("GET", "/_admin/reload").json
        assert.truthy(rec.active.id > rec.previous.id)
        assert.equal(sha256(file), rec.active.files["routes/version.lua"])
        local ver = srv:admin("GET", "/_admin/version").json
        assert.equal(rec.active.id, ver.generation)
        assert.equal(rec.active.sha256, ver.sha256)
    end)

    it("rolls back to the previous generation in one call", function()
        assert(sys.write_file(file, V2))
        assert.equal(200, srv:admin("POST", "/_admin/reload").status)
        assert.equal(2, version())
        local res = srv:admin("POST", "/_admin/rollback")
        assert.equal(200, res.status)
        assert.equal(1, version())
        assert(sys.write_file(file, V1))
    end)

    it("refuses admin calls without the right token", function()
        local res = srv:json("POST", "/_admin/reload")
        assert.equal(401, res.status)
        res = srv:json("POST", "/_admin/reload", { headers = {
            Authorization = "Bearer " .. helpers.ADMIN_TOKEN .. "x" } })
        assert.equal(401, res.status)
        res = srv:json("GET", "/_admin/version", { headers = {
            Authorization = "Bearer " .. helpers.ADMIN_TOKEN:sub(1, -2) } })
        assert.equal(401, res.status)
    end)
end)

describe("wtt serve: runaway routes (H9) #http", function()
    local srv
    setup(function()
        srv = helpers.serve({ env = { WTT_ROUTE_TIMEOUT_MS = "500" } })
    end)
    teardown(function() if srv then srv:stop() end end)

    it("interrupts an infinite loop and keeps the thread", function()
        local t0 = sys.now()
        local res = assert(srv:json("GET", "/loop"))
        assert.equal(503, res.status)
        assert.equal("timeout", res.json.error)
        assert.truthy(sys.now() - t0 < 5)
        -- Both threads still answer (more requests than threads).
        for _ = 1, 10 do
            assert.equal(200, srv:request("GET", "/livez").status)
        end
        res = assert(srv:json("GET", "/loop"))
        assert.equal(503, res.status)
    end)
end)

describe("wtt serve: admin routes without a token #http", function()
    it("are refused with 403", function()
        local srv = helpers.serve({ env = { WTT_ADMIN_TOKEN = false } })
        local res = srv:json("POST", "/_admin/reload")
        srv:stop()
        assert.equal(403, res.status)
    end)
end)
