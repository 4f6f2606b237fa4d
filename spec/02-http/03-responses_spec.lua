local helpers = require "spec.support.server"
local sys = require "wtt.sys"
local httpc = require "wtt.http_client"

describe("wtt serve: file and streaming responses #http", function()
    local srv
    local DATA = ("RIFF"):rep(1) .. string.rep("\0\1\2\3wave", 5000)

    setup(function()
        srv = helpers.serve()
        assert(sys.write_file(srv.dir .. "/clip.wav", DATA))
        assert(sys.symlink("/etc/passwd", srv.dir .. "/link.wav"))
    end)
    teardown(function() if srv then srv:stop() end end)

    it("streams a whole file with its length and type", function()
        local res = assert(srv:request("GET", "/file/clip.wav"))
        assert.equal(200, res.status)
        assert.equal(DATA, res.body)
        assert.equal(tostring(#DATA), res.headers["content-length"])
        assert.equal("audio/wav", res.headers["content-type"])
        assert.equal("bytes", res.headers["accept-ranges"])
        assert.equal("nosniff", res.headers["x-content-type-options"])
    end)

    it("answers a Range request with 206 and the slice", function()
        local res = assert(srv:request("GET", "/file/clip.wav",
                                       { headers = { Range = "bytes=4-13" } }))
        assert.equal(206, res.status)
        assert.equal(DATA:sub(5, 14), res.body)
        assert.equal("bytes 4-13/" .. #DATA, res.headers["content-range"])
        res = assert(srv:request("GET", "/file/clip.wav",
                                 { headers = { Range = "bytes=-6" } }))
        assert.equal(DATA:sub(-6), res.body)
    end)

    it("answers an unsatisfiable range with 416", function()
        local res = assert(srv:request("GET", "/file/clip.wav",
            { headers = { Range = "bytes=" .. #DATA .. "-" } }))
        assert.equal(416, res.status)
        assert.equal("bytes */" .. #DATA, res.headers["content-range"])
    end)

    it("refuses a symlink with nofollow and a missing file", function()
        assert.equal(404, srv:request("GET", "/file/link.wav").status)
        assert.equal(404, srv:request("GET", "/file/none.wav").status)
    end)

    it("streams chunks from a Lua producer to the end", function()
        local res = assert(srv:request("GET", "/stream/5?tag=full"))
        assert.equal(200, res.status)
        assert.equal("chunked", res.headers["transfer-encoding"])
        assert.equal("text/event-stream", res.headers["content-type"])
        local expect = {}
        for i = 1, 5 do
            expect[i] = "data: " .. i .. "\n\n"
        end
        assert.equal(table.concat(expect), res.body)
        assert.equal("finished", helpers.eventually(function()
            return sys.read_file(srv.dir .. "/full")
        end))
    end)

    it("refuses a file response longer than the file before sending it",
       function()
        local res = assert(srv:json("GET", "/file-overlong/clip.wav"))
        assert.equal(500, res.status)
        assert.equal("internal", res.json.error)
        assert.equal(200, srv:request("GET", "/livez").status)
    end)

    it("cuts the connection at once when a stream's producer fails",
       function()
        local res, err = httpc.request({
            url = srv.url .. "/stream/10?tag=fail&fail=2", timeout = 10 })
        -- The client sees an incomplete chunked body, not a clean end,
        -- and not its own timeout either.
        assert.is_nil(res)
        assert.is_string(err)
        assert.not_matches("[Tt]imed? ?out", err)
        assert.equal("aborted", helpers.eventually(function()
            return sys.read_file(srv.dir .. "/fail")
        end, 5))
        assert.equal(200, srv:request("GET", "/livez").status)
    end)

    it("ends a stream cleanly when the client goes away", function()
        local got = 0
        local res = httpc.request({
            url = srv.url .. "/stream/100000?tag=gone",
            on_data = function(chunk)
                got = got + #chunk
                return got < 30    -- disconnect after a few events
            end,
            timeout = 10,
        })
        assert.equal(200, res and res.status)
        assert.is_true(res.aborted)
        -- The server notices on its next write and runs on_close.
        assert.equal("aborted", helpers.eventually(function()
            return sys.read_file(srv.dir .. "/gone")
        end, 5))
        assert.equal(200, srv:request("GET", "/livez").status)
    end)

    it("serves other requests while streams wait", function()
        -- Four endless streams, more than the server's two threads: each
        -- has sent its first event and is waiting for the next.
        local streams = {}
        local ok, err = pcall(function()
            for i = 1, 4 do
                local c = assert(sys.tcp_connect("127.0.0.1", srv.port))
                streams[i] = c
                assert(c:send("GET /stream/100000?tag=w" .. i
                              .. " HTTP/1.1\r\nHost: x\r\n\r\n"))
                local got = ""
                repeat
                    local d = assert(c:recv(4096, 5))
                    got = got .. d
                until got:find("data: 1\n\n", 1, true)
                assert.equal(200, helpers.status_of(got))
            end
            -- A plain request is answered meanwhile (a thread held by a
            -- stream would leave it waiting until the timeout)...
            local res = srv:request("GET", "/livez", { timeout = 5 })
            assert.equal(200, res and res.status)
            -- ...and the streams were still open and go on.
            for i = 1, 4 do
                local d = assert(streams[i]:recv(4096, 5))
                assert.matches("data: %d+", d)
            end
        end)
        for _, c in ipairs(streams) do
            c:close()
        end
        assert(ok, err)
    end)
end)
