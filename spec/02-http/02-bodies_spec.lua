local helpers = require "spec.support.server"
local sys = require "wtt.sys"

local status_of = helpers.status_of

-- Temp files the server made for uploads (WTT_TMP_DIR is the server dir).
-- The server removes them when the request completes, just after the
-- response went out, so wait a moment for the count to settle at zero.
local function upload_leftovers(srv)
    local n
    helpers.eventually(function()
        n = 0
        for _, name in ipairs(sys.listdir(srv.dir) or {}) do
            if name:find("^wtt%-upload%-") then
                n = n + 1
            end
        end
        return n == 0
    end, 3)
    return n
end

local function multipart(boundary, parts, closing)
    local out = {}
    for _, p in ipairs(parts) do
        out[#out + 1] = "--" .. boundary .. "\r\n" .. p.head .. "\r\n\r\n"
                        .. p.body .. "\r\n"
    end
    if closing ~= false then
        out[#out + 1] = "--" .. boundary .. "--\r\n"
    end
    return table.concat(out)
end

local function post_raw(srv, path, ctype, body, extra)
    return helpers.raw(srv.port,
        "POST " .. path .. " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        .. "Content-Type: " .. ctype .. "\r\nContent-Length: " .. #body
        .. "\r\n" .. (extra or "") .. "\r\n" .. body)
end

describe("wtt serve: request bodies #http", function()
    local srv
    setup(function() srv = helpers.serve() end)
    teardown(function() if srv then srv:stop() end end)

    it("round-trips a binary body with NUL bytes", function()
        local body = "a\0b\0\255\254" .. string.rep("\0", 1000) .. "end"
        local res = assert(srv:request("POST", "/echo/body", { body = body }))
        assert.equal(200, res.status)
        assert.equal(#body, tonumber(res.headers["x-body-length"]))
        assert.equal(body, res.body)
    end)

    it("takes a chunked body", function()
        local raw = helpers.raw(srv.port,
            "POST /echo/body HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
            .. "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world"
            .. "\r\n0\r\n\r\n")
        assert.equal(200, status_of(raw))
        assert.truthy(raw:find("hello world", 1, true))
    end)

    it("answers 413 for a declared length over the route limit", function()
        local res = assert(srv:json("POST", "/echo/body",
                                    { body = string.rep("x", 70000) }))
        assert.equal(413, res.status)
        assert.equal("too_large", res.json.error)
    end)

    it("answers 413 for a chunked body that grows past the limit", function()
        local conn = assert(sys.tcp_connect("127.0.0.1", srv.port))
        conn:send("POST /echo/body HTTP/1.1\r\nHost: x\r\n"
                  .. "Transfer-Encoding: chunked\r\n\r\n")
        local chunk = string.format("%x\r\n%s\r\n", 16384,
                                    string.rep("z", 16384))
        for _ = 1, 8 do
            if not conn:send(chunk) then
                break
            end
        end
        local raw = conn:recv_all(5)
        conn:close()
        assert.equal(413, status_of(raw or ""))
        assert.equal(200, srv:request("GET", "/livez").status)
    end)

    it("stores multipart file parts in temp files and removes them after",
       function()
        local data = string.rep("RIFF\0\1\2", 1000)
        local res = assert(srv:json("POST", "/upload", { multipart = {
            { name = "title", value = "my song" },
            { name = "file", data = data, filename = "a.wav",
              content_type = "audio/wav" },
        } }))
        assert.equal(200, res.status)
        local f = res.json.files[1]
        assert.equal("file", f.field)
        assert.equal("a.wav", f.filename)
        assert.equal("audio/wav", f.content_type)
        assert.equal(#data, f.size)
        assert.equal(#data, f.bytes)
        assert.equal("my song", res.json.form.title)
        -- Removed when the request completes, just after the answer left.
        assert.truthy(helpers.eventually(function()
            return sys.exists(f.path) == nil
        end, 3))
        assert.equal(0, upload_leftovers(srv))
    end)

    it("takes a large file part without holding it in memory", function()
        local path = srv.dir .. "/big.bin"
        local block = string.rep("0123456789abcdef", 65536)   -- 1 MiB
        local fh = assert(io.open(path, "wb"))
        for _ = 1, 24 do
            fh:write(block)
        end
        fh:close()
        local res = assert(srv:json("POST", "/upload", { multipart = {
            { name = "file", file = path, filename = "big.bin" },
        }, timeout = 60 }))
        assert.equal(200, res.status)
        assert.equal(24 * #block, res.json.files[1].bytes)
        assert.equal(0, upload_leftovers(srv))
    end)

    it("takes many files in one request, in order", function()
        local parts = {}
        for i = 1, 40 do
            parts[i] = { name = "f" .. i, data = string.rep("x", i),
                         filename = "f" .. i .. ".bin" }
        end
        local res = assert(srv:json("POST", "/upload", { multipart = parts }))
        assert.equal(200, res.status)
        assert.equal(40, #res.json.files)
        for i = 1, 40 do
            assert.equal("f" .. i, res.json.files[i].field)
            assert.equal(i, res.json.files[i].bytes)
        end
    end)

    it("keeps a file the route takes", function()
        local res = assert(srv:json("POST", "/upload/keep", { multipart = {
            { name = "file", data = "keep me", filename = "k.txt" },
        } }))
        assert.equal(201, res.status)
        assert.equal("keep me", sys.read_file(res.json.kept[1]))
    end)

    it("answers 413 for a file part over the route's file limit", function()
        local res = assert(srv:json("POST", "/upload/small", { multipart = {
            { name = "file", data = string.rep("y", 2000), filename = "y" },
        } }))
        assert.equal(413, res and res.status)
        assert.equal(0, upload_leftovers(srv))
    end)

    it("answers 413 for an upload over the route's total limit", function()
        local res = assert(srv:json("POST", "/upload/small", { multipart = {
            { name = "file", data = string.rep("y", 5000), filename = "y" },
        } }))
        assert.equal(413, res.status)
    end)

    describe("malformed multipart (H2)", function()
        local B = "XyZzY"
        local CT = "multipart/form-data; boundary=" .. B
        local file = { head = 'Content-Disposition: form-data; name="f"; '
                              .. 'filename="a.wav"', body = "data" }

        local cases = {
            { "no boundary", "multipart/form-data",
              multipart(B, { file }) },
            { "empty boundary", "multipart/form-data; boundary=",
              multipart(B, { file }) },
            { "boundary over 70 characters",
              "multipart/form-data; boundary=" .. string.rep("b", 71),
              multipart(string.rep("b", 71), { file }) },
            { "no closing delimiter", CT, multipart(B, { file }, false) },
            { "garbage instead of parts", CT,
              "this is not multipart at all\r\n" },
            { "10k empty parts", CT, multipart(B, (function()
                local t = {}
                for i = 1, 10000 do
                    t[i] = { head = 'Content-Disposition: form-data; name="e"',
                             body = "" }
                end
                return t
            end)()) },
            { "1 MB part header", CT, multipart(B, { {
                head = 'Content-Disposition: form-data; name="f"; filename="'
                       .. string.rep("h", 1024 * 1024) .. '"',
                body = "x" } }) },
        }

        for _, case in ipairs(cases) do
            it("answers 400 or 413 for " .. case[1], function()
                local raw = post_raw(srv, "/upload", case[2], case[3])
                local status = status_of(raw)
                assert.truthy(status == 400 or status == 413,
                              case[1] .. ": got " .. tostring(status))
                assert.truthy(raw:find('"request_id"', 1, true))
                assert.equal(200, srv:request("GET", "/livez").status)
                assert.equal(0, upload_leftovers(srv))
            end)
        end

        it("treats hostile file names as data", function()
            for _, name in ipairs({ "../../etc/passwd", "a%00.wav",
                                    "\255\254bad.wav", "/abs/x.wav" }) do
                local body = multipart(B, { {
                    head = 'Content-Disposition: form-data; name="f"; '
                           .. 'filename="' .. name .. '"',
                    body = "data" } })
                local raw = post_raw(srv, "/upload", CT, body)
                assert.equal(200, status_of(raw))
                assert.equal(0, upload_leftovers(srv))
            end
        end)

        it("answers 400 for a form body on a route that needs form data",
           function()
            local raw = post_raw(srv, "/upload", "text/plain", "hello")
            assert.equal(400, status_of(raw))
        end)
    end)
end)
