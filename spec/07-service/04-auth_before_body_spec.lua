-- Worker and admin routes check the token before any body is read (the
-- route option `auth`, lua/wtt/server.lua): a caller without it gets 401
-- whatever it sends, its body is never parsed, and a large declared body
-- is refused without waiting for it. Also: the example route is not
-- served by default (it lives in docs/examples/routes/).

local helpers = require "spec.support.server"
local runtime = require "wtt.runtime"
local sys = require "wtt.sys"

local TOKEN = "spec-worker-token-0123456789"
local TASK = string.rep("a", 32)
local MiB = 1024 * 1024


-- 1 MiB that is not a multipart body (no boundary line, NULs, high bytes).
local function junk()
    local parts = {}
    for i = 1, 4096 do
        parts[i] = string.char(i % 256):rep(255) .. "\0"
    end
    return table.concat(parts)
end


local function head(path, headers, length)
    local lines = { "POST " .. path .. " HTTP/1.1", "Host: x",
                    "Content-Type: multipart/form-data; boundary=zzz",
                    "Content-Length: " .. length }
    for k, v in pairs(headers or {}) do
        lines[#lines + 1] = k .. ": " .. v
    end
    return table.concat(lines, "\r\n") .. "\r\n\r\n"
end


describe("worker and admin routes: authentication before the body #http",
         function()
    local srv

    setup(function()
        srv = helpers.serve({ env = { WTT_WORKER_TOKEN = TOKEN } })
    end)
    teardown(function() if srv then srv:stop() end end)

    -- Sends the headers and `body`, then reads the answer.
    local function post(path, headers, body)
        local conn = assert(sys.tcp_connect("127.0.0.1", srv.port))
        conn:send(head(path, headers, #body))
        conn:send(body, 5)
        local out = conn:recv_all(5)
        conn:close()
        return out or ""
    end

    local function request_id(out)
        return out:match("[Xx]%-[Rr]equest%-[Ii]d: (%w+)")
    end

    for _, case in ipairs({
        { "/transcribe/_result/" .. TASK .. "/", "no token", {} },
        { "/transcribe/_result/" .. TASK .. "/", "a wrong token",
          { Authorization = "Bearer " .. TOKEN .. "x" } },
        { "/_admin/reload", "no token", {} },
        { "/_admin/queue/pause/", "a wrong token",
          { Authorization = "Bearer wrong" } },
    }) do
        local path, what, headers = case[1], case[2], case[3]
        it("answers 401 to " .. what .. " with 1 MiB of binary junk as a "
           .. "multipart body, and parses none of it: POST " .. path,
           function()
            local out = post(path, headers, junk())
            assert.equal(401, helpers.status_of(out), out:sub(1, 300))
            assert.truthy(out:find('"error":"unauthorized"', 1, true))
            local id = assert(request_id(out))
            local log
            assert.truthy(helpers.eventually(function()
                log = srv:log_text()
                return log:find("id=" .. id, 1, true)
            end))
            for line in log:gmatch("[^\n]+") do
                if line:find(id, 1, true) then
                    assert.is_nil(line:find("upload_rejected", 1, true), line)
                    assert.is_nil(line:find("malformed", 1, true), line)
                end
            end
        end)
    end

    for _, case in ipairs({
        { "/transcribe/_result/" .. TASK .. "/", 200 * MiB },
        -- under WTT_MAX_RESULT: not a 413 either, just no wait
        { "/transcribe/_result/" .. TASK .. "/", 32 * MiB },
        { "/_admin/reload", 200 * MiB },
    }) do
        local path, length = case[1], case[2]
        it("answers 401 to a declared " .. length / MiB .. " MiB body "
           .. "without the token before any of it is sent: " .. path,
           function()
            -- Only the headers go out: any answer at all is one that did
            -- not wait for the body (a server that waits sends nothing
            -- before recv_all gives up).
            local conn = assert(sys.tcp_connect("127.0.0.1", srv.port))
            conn:send(head(path, {}, length))
            local out = conn:recv_all(5)
            conn:close()
            assert.equal(401, helpers.status_of(out or ""), out)
        end)
    end

    it("still reads the body of a request with the right token", function()
        local out = post("/transcribe/_result/" .. TASK .. "/",
                         { Authorization = "Bearer " .. TOKEN }, junk())
        -- the body reached the form parser, which refuses it
        assert.equal(400, helpers.status_of(out), out:sub(1, 300))
        assert.truthy(out:find("malformed", 1, true))
    end)
end)


describe("the example route #http", function()
    it("is not served by a default wtt serve", function()
        local srv = helpers.serve({ routes = runtime.source_dir .. "/routes" })
        local a = srv:json("GET", "/hello/")
        local b = srv:json("GET", "/hello/ada/")
        local c = srv:json("POST", "/hello/", { body = '{"name":"bo"}' })
        local live = srv:json("GET", "/livez")
        srv:stop()
        assert.equal(200, live.status)
        assert.equal(404, a.status)
        assert.equal(404, b.status)
        assert.equal(404, c.status)
    end)
end)
