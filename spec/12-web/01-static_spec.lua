-- The page's routes (routes/web.lua) on a real `wtt serve`: GET / and its
-- static files with their types, Content-Security-Policy, validators (ETag,
-- 304) and gzip; alphaTab's files from this origin; path tricks answered
-- 404; the page's configuration (upload limit, history, whether the SSE
-- route is there). No database: these routes need none.

local helpers = require "spec.support.server"
local json = require "wtt.json"
local sys = require "wtt.sys"
local runtime = require "wtt.runtime"

local WEB = runtime.source_dir .. "/routes/web"
local ALPHATAB = runtime.source_dir
    .. "/tools/alphatab/node_modules/@coderline/alphatab/dist"


-- gunzip through gzip(1), an independent decoder.
local function gunzip(bytes, dir)
    local gz, out = dir .. "/body.gz", dir .. "/body"
    assert(sys.write_file(gz, bytes))
    local pid = assert(sys.spawn({ "gzip", "-dc", gz }, { stdout = out }))
    local how, code = sys.wait(pid, 20)
    assert(how == "exited" and code == 0, "gzip -dc failed")
    return assert(sys.read_file(out))
end


local function raw_get(srv, target)
    local text = helpers.raw(srv.port, "GET " .. target .. " HTTP/1.1\r\n"
        .. "Host: 127.0.0.1\r\nConnection: close\r\n\r\n")
    return helpers.status_of(text), text
end


describe("the page's static routes", function()
    local srv, tmp

    setup(function()
        -- alphaTab is installed like tools/alphatab/check.sh does (npm ci).
        if sys.exists(ALPHATAB .. "/alphaTab.mjs") ~= "file" then
            local pid = assert(sys.spawn({ "sh", "-c", "cd '" .. runtime.source_dir
                .. "/tools/alphatab' && npm ci --no-audit --no-fund >/dev/null 2>&1" }))
            sys.wait(pid, 300)
        end
        tmp = assert(sys.mkdtemp("wtt-web-"))
        srv = helpers.serve({ routes = runtime.source_dir .. "/routes" })
    end)
    teardown(function()
        if srv then srv:stop() end
        if tmp then sys.rmtree(tmp) end
    end)

    it("serves the page at / with a strict Content-Security-Policy", function()
        local res = assert(srv:request("GET", "/"))
        assert.equal(200, res.status)
        assert.equal("text/html; charset=utf-8", res.headers["content-type"])
        assert.equal(sys.read_file(WEB .. "/index.html"), res.body)
        local csp = res.headers["content-security-policy"]
        assert.is_string(csp)
        -- scripts from this origin only, never inline or eval'd
        local script = csp:match("script%-src ([^;]*)")
        assert.equal("'self'", script)
        assert.falsy(csp:find("unsafe-eval", 1, true))
        assert.matches("default%-src 'self'", csp)
        assert.matches("object%-src 'none'", csp)
        assert.matches("frame%-ancestors 'none'", csp)
        assert.matches("base%-uri 'none'", csp)
        assert.equal("nosniff", res.headers["x-content-type-options"])
        assert.equal("no-referrer", res.headers["referrer-policy"])
        assert.equal("no-cache", res.headers["cache-control"])
        -- no inline script in the page itself
        for tag in res.body:gmatch("<script[^>]*>") do
            assert.matches('src="/static/[%w_%-]+%.js"', tag)
        end
        assert.falsy(res.body:find("<script>", 1, true))
        assert.falsy(res.body:find(" on%a+=\""))
    end)

    it("serves every file of routes/web/ with its type", function()
        local types = { js = "text/javascript; charset=utf-8",
                        css = "text/css; charset=utf-8",
                        svg = "image/svg+xml",
                        html = "text/html; charset=utf-8" }
        local n = 0
        for _, name in ipairs(assert(sys.listdir(WEB))) do
            local ext = name:match("%.(%w+)$")
            assert.truthy(types[ext], "unexpected file in routes/web/: " .. name)
            local res = assert(srv:request("GET", "/static/" .. name))
            assert.equal(200, res.status, name)
            assert.equal(types[ext], res.headers["content-type"], name)
            assert.equal(sys.read_file(WEB .. "/" .. name), res.body, name)
            assert.is_string(res.headers["content-security-policy"])
            n = n + 1
        end
        assert.is_true(n >= 8)
    end)

    it("revalidates with ETag: 304 for a match, 200 when the file changed", function()
        local res = assert(srv:request("GET", "/static/app.css"))
        local etag = res.headers["etag"]
        assert.matches('^"[0-9a-f]+"$', etag)
        local again = assert(srv:request("GET", "/static/app.css", {
            headers = { ["If-None-Match"] = etag } }))
        assert.equal(304, again.status)
        assert.equal("", again.body or "")
        local other = assert(srv:request("GET", "/static/app.css", {
            headers = { ["If-None-Match"] = '"0123"' } }))
        assert.equal(200, other.status)
    end)

    it("compresses text for clients that accept gzip, byte-exact", function()
        local res = assert(srv:request("GET", "/static/app.js", {
            headers = { ["Accept-Encoding"] = "gzip, br" } }))
        assert.equal(200, res.status)
        assert.equal("gzip", res.headers["content-encoding"])
        assert.equal("Accept-Encoding", res.headers["vary"])
        assert.matches('%-gz"$', res.headers["etag"])
        assert.equal(sys.read_file(WEB .. "/app.js"), gunzip(res.body, tmp))
        local again = assert(srv:request("GET", "/static/app.js", {
            headers = { ["Accept-Encoding"] = "gzip",
                        ["If-None-Match"] = res.headers["etag"] } }))
        assert.equal(304, again.status)
        -- gzip;q=0 refuses it
        local plain = assert(srv:request("GET", "/static/app.js", {
            headers = { ["Accept-Encoding"] = "gzip;q=0" } }))
        assert.is_nil(plain.headers["content-encoding"])
        assert.equal(sys.read_file(WEB .. "/app.js"), plain.body)
    end)

    it("answers 404 to path tricks and to files it does not serve", function()
        for _, target in ipairs({
            "/static/..%2Fweb.lua", "/static/%2e%2e%2fweb.lua",
            "/static/../web.lua", "/static/web.lua", "/static/.hidden.js",
            "/static/%2e%2e", "/static/app.js%2F", "/static/a%5c..%5capp.js",
            "/static/app.lua", "/static/", "/static/app.js/x",
            "/vendor/alphatab/..%2F..%2Fpackage.json",
            "/vendor/alphatab/../package.json",
            "/vendor/alphatab/%2e%2e/package.json",
            "/vendor/alphatab/font/../../package.json",
            "/vendor/alphatab/soundfont/LICENSE",
            "/vendor/alphatab/alphaTab.d.ts",
            "/vendor/alphatab/font//Bravura.woff2",
            "/vendor/alphatab/%2Fetc%2Fpasswd.svg",
        }) do
            local status, text = raw_get(srv, target)
            assert.equal(404, status, target .. "\n" .. text)
        end
        -- a NUL is refused before any route
        assert.equal(400, (raw_get(srv, "/static/app.js%00.css")))
        -- and the server serves on
        assert.equal(200, (raw_get(srv, "/static/app.js")))
    end)

    it("does not follow a symlink out of routes/web/", function()
        local dir = srv.routes_dir .. "/web"
        assert(sys.symlink("/etc/hostname", dir .. "/leak.css"))
        local res = assert(srv:request("GET", "/static/leak.css"))
        os.remove(dir .. "/leak.css")
        assert.equal(404, res.status)
    end)

    it("serves alphaTab's module, worker, font and soundfont from this origin", function()
        local res = assert(srv:request("GET", "/vendor/alphatab/alphaTab.mjs"))
        assert.equal(200, res.status)
        assert.equal("text/javascript; charset=utf-8", res.headers["content-type"])
        assert.equal(sys.read_file(ALPHATAB .. "/alphaTab.mjs"), res.body)
        assert.equal("public, max-age=86400", res.headers["cache-control"])
        for path, ctype in pairs({
            ["alphaTab.core.mjs"] = "text/javascript; charset=utf-8",
            ["alphaTab.worker.mjs"] = "text/javascript; charset=utf-8",
            ["alphaTab.worklet.mjs"] = "text/javascript; charset=utf-8",
            ["font/Bravura.woff2"] = "font/woff2",
            ["soundfont/sonivox.sf3"] = "application/octet-stream",
        }) do
            local r = assert(srv:request("HEAD", "/vendor/alphatab/" .. path))
            assert.equal(200, r.status, path)
            assert.equal(ctype, r.headers["content-type"], path)
        end
        -- the soundfont by ranges
        local part = assert(srv:request("GET", "/vendor/alphatab/soundfont/sonivox.sf3", {
            headers = { Range = "bytes=0-3" } }))
        assert.equal(206, part.status)
        assert.equal("RIFF", part.body)
    end)

    it("tells the page its limits and what the server offers", function()
        local res = assert(srv:json("GET", "/transcribe/config/"))
        assert.equal(200, res.status)
        local c = res.json
        assert.equal(256 * 1024 * 1024, c.max_upload_bytes)
        assert.equal(14400, c.max_audio_s)
        assert.is_true(c.history)
        assert.equal("/vendor/alphatab/", c.alphatab)
        assert.same({ "official", "guitar", "bass" }, c.modes)
        assert.equal("E2 A2 D3 G3 B3 E4", c.instruments.guitar.tunings.standard)
        assert.equal(6, c.instruments.guitar.strings)
        -- whether GET /transcribe/events/{id}/ reaches a route of this
        -- server (the router's own 404 says "no route")
        local r = srv:request("GET", "/transcribe/events/"
            .. "00000000-0000-0000-0000-000000000000/", { timeout = 3 })
        local routed = not (r and r.status == 404
                            and (r.body or ""):find("no route", 1, true))
        assert.equal(routed, c.events)
    end)
end)


describe("the page's settings", function()
    it("WTT_WEB_HISTORY=off, WTT_MAX_UPLOAD and a missing alphaTab reach the config", function()
        local srv = helpers.serve({
            routes = runtime.source_dir .. "/routes",
            env = { WTT_WEB_HISTORY = "off", WTT_MAX_UPLOAD = "1048576",
                    WTT_ALPHATAB_DIR = "/nonexistent" },
        })
        local ok, err = pcall(function()
            local c = assert(srv:json("GET", "/transcribe/config/")).json
            assert.is_false(c.history)
            assert.equal(1048576, c.max_upload_bytes)
            assert.is_false(c.alphatab)
            local r = assert(srv:request("GET", "/vendor/alphatab/alphaTab.mjs"))
            assert.equal(404, r.status)
        end)
        srv:stop()
        assert(ok, err)
    end)

    it("says events=true when a route answers GET /transcribe/events/{id}/", function()
        local tmp = assert(sys.mkdtemp("wtt-web-routes-"))
        helpers.copy_dir(runtime.source_dir .. "/routes", tmp)
        if sys.exists(tmp .. "/events.lua") ~= "file" then
            assert(sys.write_file(tmp .. "/zz_events_stub.lua", [[
return { { "GET", "/transcribe/events/:id/", function() return 204, "" end } }
]]))
        end
        local srv = helpers.serve({ routes = tmp })
        local ok, err = pcall(function()
            local c = assert(srv:json("GET", "/transcribe/config/")).json
            assert.is_true(c.events)
        end)
        srv:stop()
        sys.rmtree(tmp)
        assert(ok, err)
    end)
end)
