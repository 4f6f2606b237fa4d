-- H1 (docs/reliability.md), what an over-size upload leaves behind: for a
-- declared Content-Length over the limit, a chunked body that streams past
-- it and a multipart file part over the file limit, a real `wtt serve`
-- answers 413, keeps no temp file in WTT_TMP_DIR, and its memory does not
-- grow with the body: its resident set's peak (VmHWM) and its resident set
-- after grow by less than a quarter of the bytes sent (a bound on memory,
-- not on time). spec/02-http/02-bodies_spec.lua and 04-limits_spec.lua
-- cover the status codes with small limits.

local helpers = require "spec.support.server"
local sys = require "wtt.sys"

local status_of = helpers.status_of

local MIB = 1024 * 1024

local function status_kb(pid, field)
    local s = sys.read_file("/proc/" .. pid .. "/status") or ""
    return tonumber(s:match(field .. ":%s*(%d+) kB"))
end

-- Resets the process's peak resident set to its current one (Linux 4.0+;
-- our own child, so allowed); false where the kernel refuses.
local function reset_peak(pid)
    local f = io.open("/proc/" .. pid .. "/clear_refs", "w")
    if not f then
        return false
    end
    local ok = f:write("5")
    return f:close() and ok ~= nil
end

-- WTT_TMP_DIR's upload temp files.
local function leftovers(srv)
    local n
    helpers.eventually(function()
        n = 0
        for _, name in ipairs(sys.listdir(srv.dir) or {}) do
            if name:find("^wtt%-upload%-") then
                n = n + 1
            end
        end
        return n == 0
    end, 5)
    return n
end

-- Sends `head`, then `total` bytes of body made by `piece(i, block)`
-- (nil to stop early) until the server closes; returns the answer and
-- the bytes it took.
local function stream(port, head, total, piece)
    local conn = assert(sys.tcp_connect("127.0.0.1", port))
    conn:send(head, 5)
    local block = string.rep("\0\1\2\3RIFFWAVE", MIB / 12)
    local sent, i = 0, 0
    while sent < total do
        i = i + 1
        local data = piece(i, block)
        if not data or not conn:send(data, 5) then
            break
        end
        sent = sent + #data
    end
    local out = conn:recv_all(10) or ""
    conn:close()
    return out, sent
end


describe("wtt serve: H1 over-size uploads leave no temp file and no memory "
         .. "#http", function()
    local srv
    local BODY = 128 * MIB

    setup(function()
        srv = helpers.serve({ env = {
            WTT_MAX_UPLOAD = tostring(32 * MIB),
            WTT_MAX_FILE = tostring(16 * MIB),
        } })
        -- Warm the server up with an upload within the limits, so that
        -- what it allocates once (buffers, a thread's arena) is in the
        -- baseline.
        local res = assert(srv:json("POST", "/upload", { multipart = {
            { name = "file", data = string.rep("w", MIB), filename = "w" },
        } }))
        assert.equal(200, res.status)
    end)
    teardown(function() if srv then srv:stop() end end)

    local B = "oversizeBoundary"
    local PART = "--" .. B .. "\r\nContent-Disposition: form-data; "
                 .. "name=\"file\"; filename=\"big.wav\"\r\n"
                 .. "Content-Type: audio/wav\r\n\r\n"

    for _, case in ipairs({
        { what = "a declared Content-Length of 128 MiB over the 32 MiB "
                 .. "limit", head = "POST /upload HTTP/1.1\r\nHost: x\r\n"
                 .. "Content-Type: multipart/form-data; boundary=" .. B
                 .. "\r\nContent-Length: " .. BODY .. "\r\n\r\n" .. PART,
          piece = function(_, block) return block end },
        { what = "a chunked body streaming 128 MiB past the limits",
          head = "POST /upload HTTP/1.1\r\nHost: x\r\n"
                 .. "Content-Type: multipart/form-data; boundary=" .. B
                 .. "\r\nTransfer-Encoding: chunked\r\n\r\n"
                 .. string.format("%x\r\n%s\r\n", #PART, PART),
          piece = function(_, block)
              return string.format("%x\r\n", #block) .. block .. "\r\n"
          end },
        { what = "a 28 MiB file part over the 16 MiB file limit (the body "
                 .. "within the total)",
          body = 28 * MIB,
          head = "POST /upload HTTP/1.1\r\nHost: x\r\n"
                 .. "Content-Type: multipart/form-data; boundary=" .. B
                 .. "\r\nContent-Length: "
                 .. (#PART + 28 * MIB + #("\r\n--" .. B .. "--\r\n"))
                 .. "\r\n\r\n" .. PART,
          piece = function(_, block) return block end },
    }) do
        it("answers 413 for " .. case.what .. ", keeps no temp file, and "
           .. "its memory grows by less than a quarter of the body",
           function()
            local total = case.body or BODY
            reset_peak(srv.pid)
            local rss0 = status_kb(srv.pid, "VmRSS")
            local hwm0 = status_kb(srv.pid, "VmHWM")
            local out, sent = stream(srv.port, case.head, total, case.piece)
            assert.equal(413, status_of(out), out)
            assert.equal(0, leftovers(srv))
            local rss1 = status_kb(srv.pid, "VmRSS")
            local hwm1 = status_kb(srv.pid, "VmHWM")
            print(("\n  H1 %s: sent %.1f of %d MiB; RSS %d -> %d KiB, "
                   .. "peak %d -> %d KiB"):format(case.what:sub(1, 24),
                   sent / MIB, total / MIB, rss0, rss1, hwm0, hwm1))
            local quarter = total / 4 / 1024
            assert.is_true(hwm1 - math.max(hwm0, rss0) < quarter,
                           ("peak grew by %d KiB"):format(hwm1 - hwm0))
            assert.is_true(rss1 - rss0 < quarter,
                           ("RSS grew by %d KiB"):format(rss1 - rss0))
            assert.equal(200, srv:request("GET", "/livez").status)
        end)
    end
end)
